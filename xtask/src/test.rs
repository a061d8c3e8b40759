//! `cargo xtask test`: every check, in order, each reported with its outcome and time, and a
//! closing line `summary: N passed, M failed` counting individual tests and checks.
//! Checks after a failure still run where they can, so one run shows every problem.

use std::process::Command;
use std::time::Instant;

use crate::process::{self, run_watching};

/// Tests passed and failed, as read from the runners' own summary lines.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub passed: u64,
    pub failed: u64,
}

impl Counts {
    /// Turns a test runner's exit into this step's result: its counts when it ran tests (a
    /// failing test is counted, not an error), an error when it ran none or could not run.
    pub fn settle(self, outcome: Result<(), String>, what: &str) -> Result<Counts, String> {
        match outcome {
            Ok(()) if self.passed > 0 => Ok(self),
            Ok(()) => Err(format!("{what} ran no test")),
            Err(e) if self.failed > 0 => {
                println!("xtask: {e}");
                Ok(self)
            }
            Err(e) => Err(e),
        }
    }

    /// Reads libtest's `test result: ok. 12 passed; 0 failed; …` lines.
    pub fn read_cargo_line(&mut self, line: &str) {
        if let Some(rest) = line.strip_prefix("test result: ") {
            for part in rest.split([';', '.']) {
                let mut words = part.split_whitespace();
                if let (Some(n), Some(kind)) = (words.next(), words.next()) {
                    match (n.parse::<u64>(), kind) {
                        (Ok(n), "passed") => self.passed += n,
                        (Ok(n), "failed") => self.failed += n,
                        _ => {}
                    }
                }
            }
        }
    }

    /// Reads node's closing `ℹ pass 3` / `ℹ fail 0` (spec) or `# pass 3` (tap) lines.
    pub fn read_node_line(&mut self, line: &str) {
        let mut words = line.split_whitespace();
        let (Some(mark), Some(kind), Some(n), None) =
            (words.next(), words.next(), words.next(), words.next())
        else {
            return;
        };
        if mark != "ℹ" && mark != "#" {
            return;
        }
        match (kind, n.parse::<u64>()) {
            ("pass", Ok(n)) => self.passed += n,
            ("fail", Ok(n)) => self.failed += n,
            _ => {}
        }
    }
}

struct Step {
    name: &'static str,
    outcome: Result<Counts, String>,
    seconds: f64,
}

pub fn run() -> Result<(), String> {
    let root = process::workspace_root();
    let cargo = process::cargo();
    let mut steps: Vec<Step> = Vec::new();
    let mut step = |name: &'static str, f: &mut dyn FnMut() -> Result<Counts, String>| {
        println!("\n== {name}");
        let started = Instant::now();
        let outcome = f();
        if let Err(e) = &outcome {
            println!("xtask: {name} FAILED: {e}");
        }
        steps.push(Step {
            name,
            outcome,
            seconds: started.elapsed().as_secs_f64(),
        });
    };
    let check = |r: Result<(), String>| {
        r.map(|()| Counts {
            passed: 1,
            failed: 0,
        })
    };

    step("format", &mut || {
        check(process::run(
            Command::new(&cargo)
                .current_dir(&root)
                .args(["fmt", "--all", "--", "--check"]),
        ))
    });
    step("clippy", &mut || {
        check(process::run(Command::new(&cargo).current_dir(&root).args(
            [
                "clippy",
                "--workspace",
                "--all-targets",
                "--",
                "-D",
                "warnings",
            ],
        )))
    });
    step("native tests", &mut || {
        let mut counts = Counts::default();
        let outcome = run_watching(
            Command::new(&cargo)
                .current_dir(&root)
                .args(["test", "--workspace"]),
            |line| counts.read_cargo_line(line),
        );
        counts.settle(outcome, "the native tests")
    });
    let mut dist = None;
    let mut wasm = None;
    step("wasm build", &mut || {
        let toolchain = crate::toolchain::wasm_toolchain()?;
        crate::toolchain::ensure_web_tools()?;
        dist = Some(crate::site::dist_with(&toolchain)?);
        wasm = Some(toolchain);
        Ok(Counts {
            passed: 1,
            failed: 0,
        })
    });
    step("wasm tests", &mut || match &wasm {
        Some(toolchain) => wasm_tests(&root, toolchain),
        None => Err("skipped: no wasm toolchain".into()),
    });
    step("browser tests", &mut || match &dist {
        Some(dist) => crate::e2e::run_browser_tests(dist),
        None => Err("skipped: the wasm build failed".into()),
    });

    println!("\n== results");
    let mut total = Counts::default();
    for s in &steps {
        let verdict = match &s.outcome {
            Ok(c) if c.failed == 0 => format!("ok ({} passed)", c.passed),
            Ok(c) => format!("FAILED ({} passed, {} failed)", c.passed, c.failed),
            Err(e) => format!("FAILED: {}", e.lines().next().unwrap_or_default()),
        };
        println!("{:<14} {:>7.1}s  {verdict}", s.name, s.seconds);
        match &s.outcome {
            Ok(c) => {
                total.passed += c.passed;
                total.failed += c.failed;
            }
            Err(_) => total.failed += 1,
        }
    }
    println!("summary: {} passed, {} failed", total.passed, total.failed);
    if total.failed == 0 {
        Ok(())
    } else {
        // Empty: the summary above is the last word, so main adds nothing after it.
        Err(String::new())
    }
}

/// The determinism tests compiled to wasm and run in node by wasm-bindgen-test-runner; they
/// assert the same pinned digests as the native run.
fn wasm_tests(
    root: &std::path::Path,
    toolchain: &crate::toolchain::WasmToolchain,
) -> Result<Counts, String> {
    let mut counts = Counts::default();
    let mut cmd = Command::new(&toolchain.cargo);
    cmd.current_dir(root)
        .args(["test", "-p", "faultline-tests", "--test", "determinism"])
        .args(["--target", crate::toolchain::WASM_TARGET])
        .env(
            "CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER",
            "wasm-bindgen-test-runner",
        );
    toolchain.apply(&mut cmd);
    if toolchain.builds_std {
        // The test harness is a standard crate too.
        cmd.env("CARGO_UNSTABLE_BUILD_STD", "std,panic_abort,test");
    }
    let outcome = run_watching(&mut cmd, |line| counts.read_cargo_line(line));
    counts.settle(outcome, "the wasm tests")
}

#[cfg(test)]
mod tests {
    use super::Counts;

    #[test]
    fn reads_cargo_and_node_summaries() {
        let mut c = Counts::default();
        c.read_cargo_line("test result: ok. 12 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.01s");
        c.read_cargo_line("test result: FAILED. 3 passed; 2 failed; 0 ignored");
        c.read_node_line("ℹ pass 4");
        c.read_node_line("ℹ fail 1");
        c.read_node_line("# pass 2");
        c.read_node_line("ℹ passes are great"); // prose, not a count
        assert_eq!(
            c,
            Counts {
                passed: 21,
                failed: 3
            }
        );
    }
}
