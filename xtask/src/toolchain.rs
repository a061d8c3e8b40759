//! Getting a Rust that builds for wasm32, plus trunk and wasm-bindgen-cli. Tried in order:
//! the active toolchain's wasm32 std; `rustup target add` bounded to 60 s (it can hang here);
//! Debian's `rustc-web` with build-std and LLVM's wasm-ld; else a message saying what to install.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::process::{self, Bounded, apt_install, can_apt, output, run, run_bounded};

pub const WASM_TARGET: &str = "wasm32-unknown-unknown";
pub const TRUNK_VERSION: &str = "0.22.1";
/// Trunk 0.22.1's own minimum Rust version.
const TRUNK_MIN_RUSTC: (u32, u32, u32) = (1, 96, 1);
const DEBIAN_PACKAGES: [&str; 4] = ["rustc-web", "cargo-web", "rust-web-src", "lld-19"];
const DEBIAN_WASM_LD: &str = "/usr/lib/llvm-19/bin/wasm-ld";

/// Environment under which `cargo build --target wasm32-unknown-unknown` works.
#[derive(Debug, Clone)]
pub struct WasmToolchain {
    /// Extra variables for every command that builds wasm (cargo, trunk).
    pub env: Vec<(String, String)>,
    /// The cargo that drives such a build (Debian's for build-std, else the one running xtask).
    pub cargo: String,
    /// Human name of the route taken, for the log.
    pub route: &'static str,
    /// The standard library is compiled from source (`-Zbuild-std`) for each build.
    pub builds_std: bool,
}

impl WasmToolchain {
    pub fn apply(&self, cmd: &mut Command) {
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
    }
}

/// Finds or installs a wasm32 toolchain. `FAULTLINE_WASM_TOOLCHAIN=debian` forces the Debian
/// route, to test it on a machine where rustup works.
pub fn wasm_toolchain() -> Result<WasmToolchain, String> {
    let forced_debian = std::env::var("FAULTLINE_WASM_TOOLCHAIN").as_deref() == Ok("debian");
    if !forced_debian {
        println!("xtask: looking for the wasm32 standard library in the active toolchain");
        if has_wasm_std() {
            println!("xtask: found it; building with the active toolchain");
            return Ok(WasmToolchain {
                env: vec![],
                cargo: process::cargo(),
                route: "active toolchain",
                builds_std: false,
            });
        }
        if process::on_path("rustup") {
            println!("xtask: adding it with rustup (bounded to 60 s: on some days this hangs)");
            let outcome = run_bounded(
                Command::new("rustup").args(["target", "add", WASM_TARGET]),
                Duration::from_secs(60),
            );
            match outcome {
                Bounded::Succeeded if has_wasm_std() => {
                    return Ok(WasmToolchain {
                        env: vec![],
                        cargo: process::cargo(),
                        route: "rustup target",
                        builds_std: false,
                    });
                }
                Bounded::Succeeded => {
                    println!("xtask: rustup finished but the std is still missing")
                }
                Bounded::Failed(why) => println!("xtask: rustup target add failed: {why}"),
                Bounded::TimedOut => println!("xtask: rustup target add hung for 60 s; stopped it"),
            }
        }
    }
    debian_toolchain()
}

fn has_wasm_std() -> bool {
    let Some(libdir) =
        output(Command::new("rustc").args(["--print", "target-libdir", "--target", WASM_TARGET]))
    else {
        return false;
    };
    std::fs::read_dir(&libdir).is_ok_and(|entries| {
        entries
            .flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with("libstd-"))
    })
}

/// Debian's Rust for the web (1.96, with its source): build-std makes the wasm32 std on the fly.
fn debian_toolchain() -> Result<WasmToolchain, String> {
    let installed = Path::new(DEBIAN_WASM_LD).exists() && debian_rust_src().is_some();
    if !installed {
        if !can_apt() {
            return Err(format!(
                "no Rust toolchain here can build for {WASM_TARGET}. Either run \
                 `rustup target add {WASM_TARGET}`, or install Debian's packages \
                 `{}` (as root: apt-get install {}), then run again",
                DEBIAN_PACKAGES.join(" "),
                DEBIAN_PACKAGES.join(" ")
            ));
        }
        println!(
            "xtask: installing Debian's Rust for the web: {}",
            DEBIAN_PACKAGES.join(" ")
        );
        apt_install(&DEBIAN_PACKAGES)?;
    }
    if debian_rust_src().is_none() {
        return Err(
            "Debian's rust-web-src is installed but its library source was not found \
                    under /usr/lib/rustlib/src"
                .into(),
        );
    }
    let path = format!("/usr/bin:{}", std::env::var("PATH").unwrap_or_default());
    println!("xtask: building with Debian's rustc, build-std and {DEBIAN_WASM_LD}");
    Ok(WasmToolchain {
        env: vec![
            ("PATH".into(), path),
            ("RUSTC".into(), "/usr/bin/rustc".into()),
            ("RUSTC_BOOTSTRAP".into(), "1".into()),
            ("CARGO_UNSTABLE_BUILD_STD".into(), "std,panic_abort".into()),
            (
                "CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER".into(),
                DEBIAN_WASM_LD.into(),
            ),
        ],
        cargo: "/usr/bin/cargo".into(),
        route: "Debian rustc-web + build-std",
        builds_std: true,
    })
}

fn debian_rust_src() -> Option<PathBuf> {
    let sysroot = output(Command::new("/usr/bin/rustc").args(["--print", "sysroot"]))?;
    let src = Path::new(&sysroot).join("lib/rustlib/src/rust/library");
    src.is_dir().then_some(src)
}

/// The wasm-bindgen version in Cargo.lock: the CLI must match it exactly.
pub fn locked_wasm_bindgen_version() -> Result<String, String> {
    let lock_path = process::workspace_root().join("Cargo.lock");
    let lock =
        std::fs::read_to_string(&lock_path).map_err(|e| format!("{}: {e}", lock_path.display()))?;
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line.trim() == "name = \"wasm-bindgen\"" {
            if let Some(version) = lines
                .next()
                .and_then(|l| l.trim().strip_prefix("version = \""))
                .and_then(|v| v.strip_suffix('"'))
            {
                return Ok(version.to_string());
            }
        }
    }
    Err(format!("{}: no wasm-bindgen package", lock_path.display()))
}

/// The `[tools] wasm_bindgen` pin in Trunk.toml, which must equal the Cargo.lock version.
fn trunk_wasm_bindgen_pin() -> Result<String, String> {
    let path = process::workspace_root().join("Trunk.toml");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    text.lines()
        .find_map(|l| {
            let (key, value) = l.split_once('=')?;
            (key.trim() == "wasm_bindgen").then(|| value.trim().trim_matches('"').to_string())
        })
        .ok_or_else(|| {
            format!(
                "{}: no `wasm_bindgen = \"…\"` under [tools]",
                path.display()
            )
        })
}

/// Makes sure `trunk` (exactly TRUNK_VERSION) and `wasm-bindgen` (the Cargo.lock version) are
/// on PATH, installing them with cargo when missing or of another version.
pub fn ensure_web_tools() -> Result<(), String> {
    let bindgen = locked_wasm_bindgen_version()?;
    let pin = trunk_wasm_bindgen_pin()?;
    if pin != bindgen {
        return Err(format!(
            "Trunk.toml pins wasm_bindgen = \"{pin}\" but Cargo.lock has wasm-bindgen {bindgen}; \
             set the pin to \"{bindgen}\""
        ));
    }
    let have_bindgen = output(Command::new("wasm-bindgen").arg("--version"));
    if have_bindgen.as_deref() == Some(&format!("wasm-bindgen {bindgen}")) {
        println!("xtask: wasm-bindgen {bindgen} is installed");
    } else {
        println!(
            "xtask: installing wasm-bindgen-cli {bindgen} (have: {})",
            have_bindgen.as_deref().unwrap_or("none")
        );
        // Not --locked: one of its locked dependencies is missing from the registry.
        let mut cmd = Command::new(process::cargo());
        cmd.args([
            "install",
            "wasm-bindgen-cli",
            "--version",
            &format!("={bindgen}"),
            "--force",
        ]);
        run(&mut cmd)?;
    }
    let have_trunk = output(Command::new("trunk").arg("--version"));
    if have_trunk.as_deref() == Some(&format!("trunk {TRUNK_VERSION}")) {
        println!("xtask: trunk {TRUNK_VERSION} is installed");
        return Ok(());
    }
    println!(
        "xtask: installing trunk {TRUNK_VERSION} (have: {}); this takes several minutes",
        have_trunk.as_deref().unwrap_or("none")
    );
    let toolchain = trunk_capable_toolchain()?;
    let mut cmd = Command::new("cargo");
    if let Some(name) = &toolchain {
        cmd.arg(format!("+{name}"));
    }
    cmd.args([
        "install",
        "--locked",
        "trunk",
        "--version",
        TRUNK_VERSION,
        "--force",
    ]);
    run(&mut cmd)
}

/// A rustup toolchain new enough to compile trunk: None means the default one.
fn trunk_capable_toolchain() -> Result<Option<String>, String> {
    if rustc_version(&mut Command::new("rustc")).is_some_and(|v| v >= TRUNK_MIN_RUSTC) {
        return Ok(None);
    }
    let listed = output(Command::new("rustup").args(["toolchain", "list"])).unwrap_or_default();
    for line in listed.lines() {
        let name = line.split_whitespace().next().unwrap_or_default();
        let mut probe = Command::new("rustc");
        probe.arg(format!("+{name}"));
        if rustc_version(&mut probe).is_some_and(|v| v >= TRUNK_MIN_RUSTC) {
            println!("xtask: the default rustc is older than trunk needs; using toolchain {name}");
            return Ok(Some(name.to_string()));
        }
    }
    let (a, b, c) = TRUNK_MIN_RUSTC;
    Err(format!(
        "trunk {TRUNK_VERSION} needs rustc {a}.{b}.{c} or newer to install and no toolchain here \
         has it; run `rustup toolchain install nightly` (or stable once it reaches {a}.{b}.{c}), \
         then run again"
    ))
}

fn rustc_version(cmd: &mut Command) -> Option<(u32, u32, u32)> {
    let text = output(cmd.arg("--version"))?;
    let version = text.split_whitespace().nth(1)?;
    let mut parts = version.split(['.', '-']).map(|p| p.parse::<u32>().ok());
    Some((parts.next()??, parts.next()??, parts.next()??))
}
