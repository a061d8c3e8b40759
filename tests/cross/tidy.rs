//! Repository rules checked as plain tests: module headers, the engine's boundaries, the shape of
//! the README and CI script, and the presence of the shared fixtures.

use faultline_tests::{files_with_suffix, shared_fixtures, workspace_root};

#[test]
fn every_rust_module_starts_with_a_header() {
    let root = workspace_root();
    let missing: Vec<String> = files_with_suffix(&root, ".rs")
        .into_iter()
        .filter(|path| {
            let text = std::fs::read_to_string(path).unwrap_or_default();
            !text.starts_with("//!")
        })
        .map(|path| {
            path.strip_prefix(&root)
                .unwrap_or(&path)
                .display()
                .to_string()
        })
        .collect();
    assert!(
        missing.is_empty(),
        "modules without a //! header: {missing:#?}"
    );
}

#[test]
fn engine_has_no_browser_crates() {
    let manifest = std::fs::read_to_string(workspace_root().join("engine/Cargo.toml")).unwrap();
    for name in ["web-sys", "wasm-bindgen", "js-sys", "gloo", "yew"] {
        let hit = manifest
            .lines()
            .any(|line| line.trim_start().starts_with(name));
        assert!(!hit, "engine/Cargo.toml depends on {name}");
    }
}

#[test]
fn engine_uses_nothing_nondeterministic() {
    let root = workspace_root();
    let forbidden = [
        "HashMap",
        "HashSet",
        "thread_rng",
        "SystemTime",
        "Instant::now",
        "from_entropy",
        "getrandom",
    ];
    let mut hits = Vec::new();
    for path in files_with_suffix(&root.join("engine/src"), ".rs") {
        // The one hash map allowed: a fixed hash, and no way to walk it in order (see there).
        if path.ends_with("engine/src/lookup.rs") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        for (n, line) in text.lines().enumerate() {
            if let Some(word) = forbidden.iter().find(|w| line.contains(*w)) {
                hits.push(format!("{}:{}: {word}", path.display(), n + 1));
            }
        }
    }
    assert!(hits.is_empty(), "nondeterminism in the engine: {hits:#?}");
}

#[test]
fn ci_runs_the_readme_test_command() {
    let root = workspace_root();
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let ci = std::fs::read_to_string(root.join(".ci/run")).unwrap();
    assert!(
        readme.contains("cargo xtask test"),
        "README names the test command"
    );
    assert!(
        readme.contains("cargo xtask serve"),
        "README names the serve command"
    );
    let commands: Vec<&str> = ci
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with("set "))
        .collect();
    assert_eq!(
        commands.last(),
        Some(&"cargo xtask test"),
        ".ci/run: {commands:?}"
    );
}

#[test]
fn shared_fixtures_are_beside_the_checkout() {
    let traces = shared_fixtures().join("traces");
    let files = files_with_suffix(&traces, ".json");
    assert!(
        files.len() >= 4,
        "expected the trace fixtures in {}, found {files:?}",
        traces.display()
    );
}
