//! Verifying a dump: its format from the first bytes, then `pg_restore
//! --list` (archives) or the trailer (plain SQL), niced and bounded by
//! `PGMAINT_BACKUP_VERIFY_TIMEOUT`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tracing::{info, warn};

use super::{HostState, NewestBackup, Outcome, Verification};
use crate::config::Config;

#[derive(Debug, Clone)]
pub(super) struct Tools {
    pg_restore: Option<PathBuf>,
    pg_restore_version: String,
    nice: Option<PathBuf>,
    ionice: Option<PathBuf>,
}

impl HostState {
    fn tools(&self, config: &Config) -> &Tools {
        self.tools.get_or_init(|| {
            let pg_restore = find_pg_restore(config.pg_restore.as_deref());
            let pg_restore_version = pg_restore
                .as_ref()
                .and_then(|p| std::process::Command::new(p).arg("--version").output().ok())
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
                .unwrap_or_default();
            match &pg_restore {
                Some(p) => info!(pg_restore = %p.display(), version = %pg_restore_version, "backup verification uses pg_restore"),
                None => warn!(
                    configured = ?config.pg_restore,
                    "pg_restore not found (PGMAINT_PG_RESTORE, PATH, /usr/lib/postgresql/*/bin): custom, directory and tar archives are not verified"
                ),
            }
            Tools {
                pg_restore,
                pg_restore_version,
                nice: which("nice"),
                ionice: which("ionice"),
            }
        })
    }
}

/// An executable named `program` on PATH (the `which` crate: unlike a plain
/// `is_file` test it skips a non-executable file of that name).
fn which(program: &str) -> Option<PathBuf> {
    which::which(program).ok()
}

/// `PGMAINT_PG_RESTORE` (a path, or a name looked up on PATH), else
/// `pg_restore` on PATH, else the newest /usr/lib/postgresql/*/bin/pg_restore.
pub fn find_pg_restore(configured: Option<&str>) -> Option<PathBuf> {
    if let Some(c) = configured {
        return if c.contains('/') {
            Some(PathBuf::from(c)).filter(|p| p.is_file())
        } else {
            which(c)
        };
    }
    which("pg_restore").or_else(|| {
        let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let v = e.file_name().to_string_lossy().parse::<u32>().ok()?;
                let p = e.path().join("bin/pg_restore");
                p.is_file().then_some((v, p))
            })
            .collect();
        found.sort();
        found.pop().map(|(_, p)| p)
    })
}

const PLAIN_TRAILER: &str = "-- PostgreSQL database dump complete";

/// Reads up to `n` bytes from `offset`.
async fn read_at(path: &Path, offset: u64, n: usize) -> std::io::Result<Vec<u8>> {
    let mut f = tokio::fs::File::open(path).await?;
    f.seek(std::io::SeekFrom::Start(offset)).await?;
    let mut buf = vec![0; n];
    let mut got = 0;
    while got < n {
        let k = f.read(&mut buf[got..]).await?;
        if k == 0 {
            break;
        }
        got += k;
    }
    buf.truncate(got);
    Ok(buf)
}

/// The archive format and header version (`K_VERS` major.minor.rev) of a
/// dump, from its first bytes; `None`: not a pg_dump archive.
pub fn archive_kind(head: &[u8], is_dir: bool) -> Option<(&'static str, Option<String>)> {
    let version = |h: &[u8]| (h.len() >= 8).then(|| format!("{}.{}.{}", h[5], h[6], h[7]));
    if head.starts_with(b"PGDMP") {
        return Some((if is_dir { "directory" } else { "custom" }, version(head)));
    }
    // Tar: the first member (toc.dat) holds the custom-format header.
    if head.len() >= 517 && &head[257..262] == b"ustar" && &head[512..517] == b"PGDMP" {
        return Some(("tar", version(&head[512..])));
    }
    let text = String::from_utf8_lossy(&head[..head.len().min(1024)]);
    text.contains("PostgreSQL database dump")
        .then_some(("plain", None))
}

/// Verifies the newest backup of a directory and logs the outcome; `None`
/// when it is an archive and no pg_restore exists. Slow (reads the whole
/// archive): the scrape layer runs it off the scrape path.
pub async fn verify_backup(
    state: &HostState,
    config: &Config,
    backup: &NewestBackup,
) -> Option<Verification> {
    let tools = state.tools(config);
    let v = verify(tools, &backup.path, backup.is_dir, config.backup_verify_timeout).await?;
    let file = backup.path.display().to_string();
    match &v.outcome {
        Outcome::Verified => {
            info!(file, format = v.format, toc_entries = ?v.toc_entries, "backup verified")
        }
        Outcome::Failed(why) => {
            warn!(file, format = v.format, "backup failed verification: {why}")
        }
        Outcome::Unverifiable(why) => {
            warn!(file, format = v.format, "backup cannot be verified here: {why}")
        }
    }
    Some(v)
}

/// Verifies one backup; `None` when it is an archive and no pg_restore exists.
pub(super) async fn verify(
    tools: &Tools,
    path: &Path,
    is_dir: bool,
    timeout: Duration,
) -> Option<Verification> {
    let header_file = if is_dir {
        path.join("toc.dat")
    } else {
        path.to_path_buf()
    };
    let head = match read_at(&header_file, 0, 1024).await {
        Ok(h) => h,
        Err(e) => {
            return Some(Verification {
                format: "unknown",
                outcome: Outcome::Failed(format!("cannot read {}: {e}", header_file.display())),
                toc_entries: None,
                dbname: None,
            })
        }
    };
    let Some((format, version)) = archive_kind(&head, is_dir) else {
        return Some(Verification {
            format: "unknown",
            outcome: Outcome::Failed("not a pg_dump archive: no PGDMP header and no SQL dump header".into()),
            toc_entries: None,
            dbname: None,
        });
    };
    if format == "plain" {
        let len = tokio::fs::metadata(path).await.map(|m| m.len()).unwrap_or(0);
        let tail = read_at(path, len.saturating_sub(4096), 4096)
            .await
            .unwrap_or_default();
        let complete = String::from_utf8_lossy(&tail).contains(PLAIN_TRAILER);
        return Some(Verification {
            format,
            outcome: if complete {
                Outcome::Verified
            } else {
                Outcome::Failed(format!(
                    "the trailer {PLAIN_TRAILER:?} is missing: the dump is incomplete"
                ))
            },
            toc_entries: None,
            dbname: None,
        });
    }
    let pg_restore = tools.pg_restore.as_ref()?;
    let version = version.unwrap_or_else(|| "?".into());
    let mut v = Verification {
        format,
        outcome: Outcome::Verified,
        toc_entries: None,
        dbname: None,
    };
    let newer = |stderr: &str| {
        stderr.contains("unsupported version").then(|| {
            Outcome::Unverifiable(format!(
                "archive version {version} was written by a newer pg_dump than {} can read; install a newer pg_restore or set PGMAINT_PG_RESTORE",
                tools.pg_restore_version
            ))
        })
    };
    // The table of contents: entries and database name.
    match run(tools, pg_restore, &["--list"], path, timeout).await {
        Ok(stdout) => {
            v.toc_entries = Some(
                stdout
                    .lines()
                    .filter(|l| !l.trim().is_empty() && !l.starts_with(';'))
                    .count() as u64,
            );
            v.dbname = stdout.lines().find_map(|l| {
                let (key, value) = l.trim_start_matches(';').split_once(':')?;
                key.trim()
                    .eq_ignore_ascii_case("dbname")
                    .then(|| value.trim().to_string())
            });
        }
        Err(RunError::Failed(stderr)) => {
            v.outcome = newer(&stderr).unwrap_or(Outcome::Failed(format!("pg_restore --list: {stderr}")));
            return Some(v);
        }
        Err(RunError::Other(why)) => {
            v.outcome = Outcome::Unverifiable(why);
            return Some(v);
        }
    }
    // The whole archive, data included, restored into nothing.
    v.outcome = match run(tools, pg_restore, &["-f", "/dev/null"], path, timeout).await {
        Ok(_) => Outcome::Verified,
        Err(RunError::Failed(stderr)) => {
            newer(&stderr).unwrap_or(Outcome::Failed(format!("pg_restore -f /dev/null: {stderr}")))
        }
        Err(RunError::Other(why)) => Outcome::Unverifiable(why),
    };
    Some(v)
}

enum RunError {
    /// The program ran and failed: its stderr.
    Failed(String),
    /// It could not run or did not finish.
    Other(String),
}

/// Runs pg_restore at the lowest CPU and I/O priority, killed at `timeout`.
async fn run(
    tools: &Tools,
    pg_restore: &Path,
    args: &[&str],
    file: &Path,
    timeout: Duration,
) -> Result<String, RunError> {
    let mut argv: Vec<std::ffi::OsString> = Vec::new();
    if let Some(n) = &tools.nice {
        argv.extend([n.as_os_str().into(), "-n".into(), "19".into()]);
    }
    if let Some(i) = &tools.ionice {
        argv.extend([i.as_os_str().into(), "-c".into(), "3".into()]);
    }
    argv.push(pg_restore.as_os_str().into());
    argv.extend(args.iter().map(|a| a.into()));
    argv.push(file.as_os_str().into());
    let mut cmd = tokio::process::Command::new(&argv[0]);
    cmd.args(&argv[1..])
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    let out = match tokio::time::timeout(timeout, cmd.output()).await {
        Err(_) => {
            return Err(RunError::Other(format!(
                "pg_restore did not finish within PGMAINT_BACKUP_VERIFY_TIMEOUT ({}s)",
                timeout.as_secs()
            )))
        }
        Ok(Err(e)) => {
            return Err(RunError::Other(format!(
                "cannot run {}: {e}",
                pg_restore.display()
            )))
        }
        Ok(Ok(o)) => o,
    };
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let msg = stderr
            .lines()
            .map(|l| l.trim_start_matches("pg_restore: ").trim())
            .filter(|l| !l.is_empty())
            .take(3)
            .collect::<Vec<_>>()
            .join("; ");
        Err(RunError::Failed(if msg.is_empty() {
            format!("exited with {}", out.status)
        } else {
            msg
        }))
    }
}
