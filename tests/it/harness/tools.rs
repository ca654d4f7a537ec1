//! The repository checkout and the command-line tools tests run in it
//! (hadolint, kubectl-validate, docker compose, promtool, …).

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

/// The repository root (this crate's manifest directory).
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `tool` with `args` in the repository, stdin closed; panics with the
/// install advice `install` when the tool cannot be started (CI installs
/// every tool, so a missing one fails the test rather than skipping it).
pub fn run(tool: &str, args: &[&str], install: &str) -> Output {
    Command::new(tool)
        .args(args)
        .current_dir(repo())
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{tool} is needed ({install}): {e}"))
}

/// What a finished command printed: stdout, then stderr.
pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}
