//! Running commands: each is echoed before it runs, may carry extra environment, may be bounded
//! in time, and may have its output watched line by line while it still streams to the terminal.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The workspace root: xtask's manifest sits one folder below it.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask sits inside the workspace")
        .to_path_buf()
}

/// The cargo that runs this xtask (`$CARGO`), so the same toolchain builds everything.
pub fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

/// Prints a command the way a shell would show it, with the environment it adds.
pub fn echo(cmd: &Command) {
    let envs: Vec<String> = cmd
        .get_envs()
        .filter_map(|(k, v)| Some(format!("{}={}", k.to_string_lossy(), v?.to_string_lossy())))
        .collect();
    let args: Vec<String> = cmd
        .get_args()
        .map(|a| {
            let a = a.to_string_lossy();
            if a.contains(' ') {
                format!("'{a}'")
            } else {
                a.into_owned()
            }
        })
        .collect();
    let prefix = if envs.is_empty() {
        String::new()
    } else {
        format!("{} ", envs.join(" "))
    };
    println!(
        "$ {prefix}{} {}",
        cmd.get_program().to_string_lossy(),
        args.join(" ")
    );
}

/// Runs a command to completion, inheriting the terminal. Err names the command on failure.
pub fn run(cmd: &mut Command) -> Result<(), String> {
    echo(cmd);
    let status = cmd.status().map_err(|e| {
        format!(
            "could not start {}: {e}",
            cmd.get_program().to_string_lossy()
        )
    })?;
    if status.success() {
        Ok(())
    } else {
        Err(format!(
            "{} failed ({status})",
            cmd.get_program().to_string_lossy()
        ))
    }
}

/// Runs a command and returns its trimmed standard output, or None if it could not run or failed.
pub fn output(cmd: &mut Command) -> Option<String> {
    let out = cmd.stderr(Stdio::null()).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// What became of a command run with a time limit.
#[derive(Debug, PartialEq, Eq)]
pub enum Bounded {
    Succeeded,
    Failed(String),
    TimedOut,
}

/// Runs a command, killing it (and reporting `TimedOut`) if it outlives `limit`.
pub fn run_bounded(cmd: &mut Command, limit: Duration) -> Bounded {
    echo(cmd);
    let mut child = match cmd.spawn() {
        Ok(child) => child,
        Err(e) => return Bounded::Failed(format!("could not start: {e}")),
    };
    let started = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => return Bounded::Succeeded,
            Ok(Some(status)) => return Bounded::Failed(status.to_string()),
            Ok(None) if started.elapsed() >= limit => {
                kill(&mut child);
                return Bounded::TimedOut;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(200)),
            Err(e) => return Bounded::Failed(e.to_string()),
        }
    }
}

fn kill(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// Runs a command with its stdout piped through us: every line is printed as it comes and also
/// handed to `watch` (to count test results). Stderr goes straight to the terminal.
pub fn run_watching(cmd: &mut Command, mut watch: impl FnMut(&str)) -> Result<(), String> {
    echo(cmd);
    let mut child = cmd.stdout(Stdio::piped()).spawn().map_err(|e| {
        format!(
            "could not start {}: {e}",
            cmd.get_program().to_string_lossy()
        )
    })?;
    if let Some(stdout) = child.stdout.take() {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            println!("{line}");
            watch(&line);
        }
    }
    let status = child.wait().map_err(|e| e.to_string())?;
    if status.success() {
        Ok(())
    } else {
        Err(format!(
            "{} failed ({status})",
            cmd.get_program().to_string_lossy()
        ))
    }
}

/// Whether a program can be found on PATH.
pub fn on_path(program: &str) -> bool {
    find_on_path(program).is_some()
}

pub fn find_on_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

/// Whether we may install Debian packages: apt-get exists and we are root.
pub fn can_apt() -> bool {
    on_path("apt-get") && output(Command::new("id").arg("-u")).as_deref() == Some("0")
}

/// `apt-get update` once per xtask run, then `apt-get install -y` the packages.
pub fn apt_install(packages: &[&str]) -> Result<(), String> {
    use std::sync::atomic::{AtomicBool, Ordering};
    static UPDATED: AtomicBool = AtomicBool::new(false);
    if !can_apt() {
        return Err(format!(
            "cannot install {} here (needs apt-get as root); install them and run again",
            packages.join(" ")
        ));
    }
    if !UPDATED.swap(true, Ordering::SeqCst) {
        run(Command::new("apt-get").arg("update").arg("-q"))?;
    }
    run(Command::new("apt-get")
        .args(["install", "-y", "-q"])
        .args(packages)
        .env("DEBIAN_FRONTEND", "noninteractive"))
}
