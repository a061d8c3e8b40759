//! Building the app into `dist/` with trunk (release, offline) and serving it.
//! Prints the size of the wasm bundle, raw and gzipped, after every build.

use std::io::Write;
use std::path::PathBuf;
use std::process::Command;

use crate::process::{self, run};
use crate::server::StaticServer;
use crate::toolchain;

/// Builds `dist/`: finds a wasm toolchain, installs trunk and wasm-bindgen if needed, runs trunk.
pub fn dist() -> Result<PathBuf, String> {
    let wasm = toolchain::wasm_toolchain()?;
    toolchain::ensure_web_tools()?;
    dist_with(&wasm)
}

/// Builds `dist/` with a toolchain already found and the web tools already installed.
pub fn dist_with(wasm: &toolchain::WasmToolchain) -> Result<PathBuf, String> {
    let root = process::workspace_root();
    if wasm.builds_std {
        // build-std needs the standard library's own dependencies (dlmalloc and others) from
        // the registry, and trunk runs cargo offline: build once online so trunk finds them.
        let mut prebuild = Command::new(&wasm.cargo);
        prebuild.current_dir(&root).args([
            "build",
            "--release",
            "--target",
            toolchain::WASM_TARGET,
            "--manifest-path",
            "app/Cargo.toml",
            "--bin",
            "faultline-app",
        ]);
        wasm.apply(&mut prebuild);
        run(&mut prebuild)?;
    }
    let mut cmd = Command::new("trunk");
    cmd.current_dir(&root)
        .args(["build", "--release", "--offline"]);
    wasm.apply(&mut cmd);
    run(&mut cmd)?;
    let dist = root.join("dist");
    report_sizes(&dist)?;
    println!(
        "xtask: dist/ is ready ({}); any static host can serve it",
        wasm.route
    );
    Ok(dist)
}

/// Builds, then serves `dist/` on 127.0.0.1 until interrupted.
pub fn serve(port: u16) -> Result<(), String> {
    let dist = dist()?;
    let server = StaticServer::start(&dist, port)?;
    println!("xtask: Faultline is at {} (Ctrl+C stops it)", server.url());
    server.wait();
    Ok(())
}

/// Prints each wasm file's size raw and gzipped (level 9, as a static host would serve it).
fn report_sizes(dist: &std::path::Path) -> Result<(), String> {
    let entries = std::fs::read_dir(dist).map_err(|e| format!("{}: {e}", dist.display()))?;
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "wasm") {
            let bytes = std::fs::read(&path).map_err(|e| e.to_string())?;
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
            gz.write_all(&bytes).map_err(|e| e.to_string())?;
            let gzipped = gz.finish().map_err(|e| e.to_string())?.len();
            println!(
                "xtask: wasm size: {} KB raw, {} KB gzipped ({})",
                bytes.len() / 1024,
                gzipped / 1024,
                path.file_name().unwrap_or_default().to_string_lossy()
            );
        }
    }
    Ok(())
}
