//! The browser tests: Debian's Chromium driven by playwright-core under node's test runner.
//! Installs what is missing (chromium, node, the locked npm packages), serves `dist/` on a free
//! port of 127.0.0.1 for the run, and stops the server afterwards whatever the outcome.

use std::path::Path;
use std::process::Command;

use crate::process::{self, apt_install, on_path, run, run_watching};
use crate::server::StaticServer;
use crate::test::Counts;

pub const CHROMIUM: &str = "/usr/bin/chromium";

/// Runs every `*.test.mjs` under tests/e2e against `dist`; returns the pass and fail counts.
pub fn run_browser_tests(dist: &Path) -> Result<Counts, String> {
    let root = process::workspace_root();
    let e2e = root.join("tests/e2e");
    ensure_browser_and_node()?;
    ensure_npm_packages(&e2e)?;
    let screenshots = root.join("target/e2e");
    std::fs::create_dir_all(&screenshots).map_err(|e| e.to_string())?;

    let server = StaticServer::start(dist, 0)?;
    println!(
        "xtask: serving dist/ at {} for the browser tests",
        server.url()
    );
    let mut files: Vec<String> = std::fs::read_dir(&e2e)
        .map_err(|e| e.to_string())?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".test.mjs"))
        .collect();
    files.sort();
    let mut counts = Counts::default();
    let mut cmd = Command::new("node");
    cmd.current_dir(&e2e)
        .args(["--test", "--test-reporter=spec", "--test-concurrency=1"])
        .args(&files)
        .env("FAULTLINE_URL", server.url())
        .env("FAULTLINE_SCREENSHOTS", &screenshots)
        .env("FAULTLINE_CHROMIUM", CHROMIUM);
    let outcome = run_watching(&mut cmd, |line| counts.read_node_line(line));
    drop(server); // stop serving before reporting, also when the tests failed
    counts.settle(outcome, "the browser tests")
}

fn ensure_browser_and_node() -> Result<(), String> {
    let mut missing = Vec::new();
    if !Path::new(CHROMIUM).exists() {
        missing.push("chromium");
    }
    if !on_path("node") {
        missing.push("nodejs");
    }
    if !on_path("npm") {
        missing.push("npm");
    }
    if missing.is_empty() {
        return Ok(());
    }
    println!(
        "xtask: installing {} for the browser tests",
        missing.join(" ")
    );
    apt_install(&missing)
}

/// `npm ci` from the committed package-lock.json, skipped when node_modules already matches it.
fn ensure_npm_packages(e2e: &Path) -> Result<(), String> {
    let lock = std::fs::read(e2e.join("package-lock.json"))
        .map_err(|e| format!("tests/e2e/package-lock.json: {e}"))?;
    let installed_copy = e2e.join("node_modules/.package-lock.json");
    let marker = e2e.join("node_modules/.faultline-lock");
    if std::fs::read(&marker).ok().as_deref() == Some(lock.as_slice()) && installed_copy.exists() {
        println!("xtask: npm packages match package-lock.json");
        return Ok(());
    }
    run(Command::new("npm").current_dir(e2e).args([
        "ci",
        "--no-audit",
        "--no-fund",
        "--ignore-scripts",
    ]))?;
    std::fs::write(&marker, &lock).map_err(|e| e.to_string())
}
