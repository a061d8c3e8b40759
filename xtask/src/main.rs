//! `cargo xtask`: the project's scripts, in Rust. `serve` builds the app and serves it, `test`
//! runs every check CI runs, `dist` writes a static site. Each step echoes what it runs, and
//! missing tools (wasm std, trunk, wasm-bindgen, Chromium, npm packages) are installed first.

mod e2e;
mod process;
mod server;
mod site;
mod test;
mod toolchain;

use std::process::ExitCode;

const USAGE: &str = "\
usage: cargo xtask <command>

commands:
  serve [--port N]   build the app (release) and serve it on http://127.0.0.1:N (default 8080)
  test               fmt, clippy, native tests, the wasm build and the browser tests
  dist               build the static site into dist/ (any static host can serve it)
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("serve") => parse_port(&args[1..]).and_then(site::serve),
        Some("test") => test::run(),
        Some("dist") => site::dist().map(|_| ()),
        Some("help" | "--help" | "-h") | None => {
            print!("{USAGE}");
            Ok(())
        }
        Some(other) => Err(format!("unknown command `{other}`\n\n{USAGE}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            if !message.is_empty() {
                eprintln!("xtask: error: {message}");
            }
            ExitCode::FAILURE
        }
    }
}

fn parse_port(args: &[String]) -> Result<u16, String> {
    match args {
        [] => Ok(8080),
        [flag, value] if flag == "--port" => value
            .parse()
            .map_err(|_| format!("--port takes a number from 0 to 65535, not `{value}`")),
        [flag] if flag == "--port" => Err("--port needs a number".into()),
        other => Err(format!("serve takes only --port N, not {other:?}")),
    }
}
