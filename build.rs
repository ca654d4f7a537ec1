//! Records the git commit for `--version` and `pgmaint_exporter_build_info`.
use std::process::Command;

fn main() {
    let revision = std::env::var("PGMAINT_REVISION").ok().or_else(|| {
        Command::new("git")
            .args(["rev-parse", "--short=12", "HEAD"])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    });
    println!(
        "cargo:rustc-env=PGMAINT_REVISION={}",
        revision.unwrap_or_else(|| "unknown".into())
    );
    // Only watch files that exist: a missing path makes cargo rerun this
    // script (and rebuild the crate) on every build, e.g. in a git worktree
    // where .git is a file, or in a source tarball.
    for path in [".git/HEAD", ".git/refs/heads"] {
        if std::path::Path::new(path).exists() {
            println!("cargo:rerun-if-changed={path}");
        }
    }
    println!("cargo:rerun-if-env-changed=PGMAINT_REVISION");
}
