//! The host executor: everything collectors need from the exporter's own
//! machine rather than from PostgreSQL — listing backup directories and the
//! WAL archive, and verifying the newest backup with `pg_restore`.
//!
//! Collectors describe `HostRequest`s (`Source::Host`); `scrape.rs` hands
//! them to `execute`, which answers with `HostResult`s in the same order.
//! Listings are cheap and run in every scrape (tokio::fs, bounded by the
//! scrape deadline). Verification reads a whole archive and can take
//! minutes, so it never runs in a scrape: it is started in the background
//! (niced, `ionice -c3` where present, bounded by
//! `PGMAINT_BACKUP_VERIFY_TIMEOUT`), at most once per newest file — the cache
//! key is path + size + mtime, so a file still being written is verified
//! again once it changes — and scrapes report the cached outcome.
//!
//! Only read access is needed: nothing here writes to a backup directory.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use regex::Regex;
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tracing::{info, warn};

use crate::config::Config;

/// What a collector asks the host for.
#[derive(Debug, Clone)]
pub enum HostRequest {
    /// List backups in `dir` whose names match one of `globs`; verify the
    /// newest (in the background) when `PGMAINT_BACKUP_VERIFY` is on.
    BackupDir { dir: String, globs: Vec<String> },
    /// List WAL segments and backup-history files in a WAL archive.
    WalArchive { dir: String },
}

/// The answer to one `HostRequest`; `Err` says why the directory could not
/// be read.
#[derive(Debug, Clone)]
pub enum HostResult {
    BackupDir(Result<BackupListing, String>),
    WalArchive(Result<WalListing, String>),
}

/// One backup: a file, or a directory-format dump (a directory with toc.dat).
#[derive(Debug, Clone, PartialEq)]
pub struct BackupFile {
    pub name: String,
    pub size: u64,
    /// Unix time: from `YYYYmmdd_HHMMSS` in the name (read as UTC), else mtime.
    pub time: f64,
}

#[derive(Debug, Clone)]
pub struct BackupListing {
    /// Oldest first.
    pub files: Vec<BackupFile>,
    /// The newest backup's verification, once it has run; `None` while it
    /// runs, when verification is off, or for an archive without pg_restore.
    pub newest: Option<Verification>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Verified,
    /// Truncated, corrupt, or not a dump at all: the reason.
    Failed(String),
    /// Could not be checked here (archive from a newer pg_dump, timeout): the reason.
    Unverifiable(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Verification {
    /// custom, directory, tar or plain.
    pub format: &'static str,
    pub outcome: Outcome,
    /// Entries in the archive's table of contents (pg_restore --list).
    pub toc_entries: Option<u64>,
    /// The database the archive was dumped from.
    pub dbname: Option<String>,
}

/// One WAL archive file the continuity check needs.
#[derive(Debug, Clone, PartialEq)]
pub struct WalSegment {
    /// The 24 hex digits: timeline, log, segment.
    pub name: String,
    pub size: u64,
    pub mtime: f64,
    /// Stored compressed (`.gz`, `.zst`, …): its size is not the segment size.
    pub compressed: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct BaseBackup {
    /// The segment the backup started in (from the history file's name).
    pub start_segment: String,
    /// STOP TIME from the history file when in UTC/GMT, else the file's mtime.
    pub time: f64,
}

#[derive(Debug, Clone)]
pub struct WalListing {
    pub segments: Vec<WalSegment>,
    /// The newest backup-history file (`*.backup`), if any.
    pub newest_base_backup: Option<BaseBackup>,
}

type VerifyKey = (PathBuf, u64, SystemTime);

/// Host state that outlives scrapes: verification results and the programs found.
#[derive(Default)]
pub struct HostState {
    verified: Mutex<HashMap<VerifyKey, Verification>>,
    running: Mutex<HashSet<VerifyKey>>,
    /// Directories unreadable in the last scrape (logged once per change).
    unreadable: Mutex<HashSet<PathBuf>>,
    tools: OnceLock<Tools>,
}

#[derive(Debug, Clone)]
struct Tools {
    pg_restore: Option<PathBuf>,
    pg_restore_version: String,
    nice: Option<PathBuf>,
    ionice: Option<PathBuf>,
}

/// Runs host requests; results in request order.
pub async fn execute(state: &Arc<HostState>, config: &Config, requests: Vec<HostRequest>) -> Vec<HostResult> {
    let mut out = Vec::with_capacity(requests.len());
    for r in requests {
        out.push(match r {
            HostRequest::BackupDir { dir, globs } => {
                let r = backup_dir(state, config, Path::new(&dir), &globs).await;
                state.log_readability(&dir, r.as_ref().err());
                HostResult::BackupDir(r)
            }
            HostRequest::WalArchive { dir } => {
                let r = wal_archive(Path::new(&dir)).await;
                state.log_readability(&dir, r.as_ref().err());
                HostResult::WalArchive(r)
            }
        });
    }
    out
}

fn unix(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Shell globs (`*`, `?`, `[abc]`) on a file name, by the `glob` crate;
/// `PGMAINT_BACKUP_DIRS` is checked to compile at start-up, so a pattern that
/// does not compile here matches nothing.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    glob::Pattern::new(pattern).is_ok_and(|p| p.matches(name))
}

/// Unix time of a UTC date and time, if the fields are a real time (the
/// `time` crate rejects 31 February and the like; years before 1970 are not
/// backup times).
fn utc(y: i64, mo: i64, d: i64, h: i64, mi: i64, s: i64) -> Option<f64> {
    let small = |v: i64| u8::try_from(v).ok();
    let year = i32::try_from(y).ok().filter(|y| (1970..=9999).contains(y))?;
    let month = time::Month::try_from(small(mo)?).ok()?;
    let date = time::Date::from_calendar_date(year, month, small(d)?).ok()?;
    let clock = time::Time::from_hms(small(h)?, small(mi)?, small(s)?).ok()?;
    Some(date.with_time(clock).assume_utc().unix_timestamp() as f64)
}

/// The `YYYYmmdd_HHMMSS` timestamp in a backup's name, read as UTC.
pub fn name_timestamp(name: &str) -> Option<f64> {
    static RE: OnceLock<Regex> = OnceLock::new();
    let re = RE.get_or_init(|| {
        Regex::new(r"([0-9]{4})([0-9]{2})([0-9]{2})_([0-9]{2})([0-9]{2})([0-9]{2})").unwrap()
    });
    fields(&re.captures(name)?)
}

/// Six captured ASCII digit groups → a UTC time; `None`, never a panic, for
/// anything else (`\d` would also match Arabic-Indic and other Unicode
/// digits, which `parse` refuses: the patterns say `[0-9]`).
fn fields(c: &regex::Captures<'_>) -> Option<f64> {
    let f = |i: usize| c.get(i)?.as_str().parse::<i64>().ok();
    utc(f(1)?, f(2)?, f(3)?, f(4)?, f(5)?, f(6)?)
}

async fn backup_dir(
    state: &Arc<HostState>,
    config: &Config,
    dir: &Path,
    globs: &[String],
) -> Result<BackupListing, String> {
    let mut rd = tokio::fs::read_dir(dir)
        .await
        .map_err(|e| format!("cannot read backup directory {}: {e}", dir.display()))?;
    // (file, path, is a directory dump, mtime)
    let mut found: Vec<(BackupFile, PathBuf, bool, SystemTime)> = Vec::new();
    loop {
        let entry = match rd.next_entry().await {
            Ok(Some(e)) => e,
            Ok(None) => break,
            Err(e) => return Err(format!("cannot read backup directory {}: {e}", dir.display())),
        };
        let name = entry.file_name().to_string_lossy().into_owned();
        if !globs.iter().any(|g| glob_match(g, &name)) {
            continue;
        }
        let path = entry.path();
        let Ok(meta) = tokio::fs::metadata(&path).await else {
            continue;
        };
        let mtime = meta.modified().unwrap_or(UNIX_EPOCH);
        // Still being written (pg_dump runs for minutes): not a backup yet,
        // neither for the counts and sizes nor for verification.
        if SystemTime::now().duration_since(mtime).unwrap_or_default() < config.backup_min_age {
            continue;
        }
        let (size, is_dir) = if meta.is_file() {
            (meta.len(), false)
        } else if meta.is_dir() && tokio::fs::metadata(path.join("toc.dat")).await.is_ok() {
            (dir_size(&path).await, true)
        } else {
            continue;
        };
        let time = name_timestamp(&name).unwrap_or_else(|| unix(mtime));
        found.push((BackupFile { name, size, time }, path, is_dir, mtime));
    }
    found.sort_by(|a, b| {
        a.0.time
            .total_cmp(&b.0.time)
            .then_with(|| a.0.name.cmp(&b.0.name))
    });
    let newest = match found.last() {
        Some((f, path, is_dir, mtime)) if config.backup_verify => {
            state.verification(config, (path.clone(), f.size, *mtime), *is_dir)
        }
        _ => None,
    };
    Ok(BackupListing {
        files: found.into_iter().map(|f| f.0).collect(),
        newest,
    })
}

async fn dir_size(dir: &Path) -> u64 {
    let mut total = 0;
    if let Ok(mut rd) = tokio::fs::read_dir(dir).await {
        while let Ok(Some(e)) = rd.next_entry().await {
            if let Ok(m) = e.metadata().await {
                total += m.len();
            }
        }
    }
    total
}

impl HostState {
    /// Warns when a directory becomes unreadable, and says when it is back.
    fn log_readability(&self, dir: &str, error: Option<&String>) {
        let mut unreadable = self.unreadable.lock().unwrap();
        match error {
            Some(e) if unreadable.insert(PathBuf::from(dir)) => warn!(dir, "{e}"),
            None if unreadable.remove(Path::new(dir)) => info!(dir, "directory is readable again"),
            _ => {}
        }
    }

    /// The cached verification of this exact file, or `None` after starting
    /// one in the background (unless one is running already).
    fn verification(self: &Arc<Self>, config: &Config, key: VerifyKey, is_dir: bool) -> Option<Verification> {
        if let Some(v) = self.verified.lock().unwrap().get(&key) {
            return Some(v.clone());
        }
        if !self.running.lock().unwrap().insert(key.clone()) {
            return None;
        }
        let this = self.clone();
        let tools = self.tools(config).clone();
        let timeout = config.backup_verify_timeout;
        tokio::spawn(async move {
            let result = verify(&tools, &key.0, is_dir, timeout).await;
            if let Some(v) = result {
                let file = key.0.display().to_string();
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
                let mut cache = this.verified.lock().unwrap();
                // Only the newest file of each directory matters: drop
                // results for older versions of this path and for files in
                // the same directory.
                let parent = key.0.parent().map(Path::to_path_buf);
                cache.retain(|k, _| k.0.parent().map(Path::to_path_buf) != parent);
                cache.insert(key.clone(), v);
            }
            this.running.lock().unwrap().remove(&key);
        });
        None
    }

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

/// Verifies one backup; `None` when it is an archive and no pg_restore exists.
async fn verify(tools: &Tools, path: &Path, is_dir: bool, timeout: Duration) -> Option<Verification> {
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

/// A WAL segment file name, possibly compressed.
fn segment_name(name: &str) -> Option<(&str, bool)> {
    static RE: OnceLock<Regex> = OnceLock::new();
    let re = RE.get_or_init(|| Regex::new(r"^([0-9A-F]{24})(\.gz|\.zst|\.lz4|\.xz|\.bz2)?$").unwrap());
    let c = re.captures(name)?;
    Some((c.get(1)?.as_str(), c.get(2).is_some()))
}

/// `STOP TIME: 2026-11-25 19:20:31 UTC` → Unix time; only UTC/GMT are read.
pub fn history_stop_time(content: &str) -> Option<f64> {
    static RE: OnceLock<Regex> = OnceLock::new();
    let re = RE.get_or_init(|| {
        Regex::new(r"(?m)^STOP TIME: ([0-9]{4})-([0-9]{2})-([0-9]{2}) ([0-9]{2}):([0-9]{2}):([0-9]{2}) (UTC|GMT)\s*$")
            .unwrap()
    });
    fields(&re.captures(content)?)
}

async fn wal_archive(dir: &Path) -> Result<WalListing, String> {
    static HISTORY: OnceLock<Regex> = OnceLock::new();
    let history = HISTORY.get_or_init(|| Regex::new(r"^([0-9A-F]{24})\.[0-9A-F]{8}\.backup$").unwrap());
    let mut rd = tokio::fs::read_dir(dir)
        .await
        .map_err(|e| format!("cannot read WAL archive {}: {e}", dir.display()))?;
    let mut segments = Vec::new();
    let mut newest_history: Option<(String, PathBuf, SystemTime)> = None;
    loop {
        let entry = match rd.next_entry().await {
            Ok(Some(e)) => e,
            Ok(None) => break,
            Err(e) => return Err(format!("cannot read WAL archive {}: {e}", dir.display())),
        };
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some((seg, compressed)) = segment_name(&name) {
            if let Ok(m) = entry.metadata().await {
                segments.push(WalSegment {
                    name: seg.to_string(),
                    size: m.len(),
                    mtime: unix(m.modified().unwrap_or(UNIX_EPOCH)),
                    compressed,
                });
            }
        } else if history.is_match(&name) && newest_history.as_ref().map_or(true, |(n, _, _)| name > *n) {
            let mtime = entry
                .metadata()
                .await
                .ok()
                .and_then(|m| m.modified().ok())
                .unwrap_or(UNIX_EPOCH);
            newest_history = Some((name, entry.path(), mtime));
        }
    }
    segments.sort_by(|a, b| a.name.cmp(&b.name));
    let newest_base_backup = match newest_history {
        None => None,
        Some((name, path, mtime)) => {
            let content = tokio::fs::read_to_string(&path).await.unwrap_or_default();
            Some(BaseBackup {
                start_segment: name[..24].to_string(),
                time: history_stop_time(&content).unwrap_or_else(|| unix(mtime)),
            })
        }
    };
    Ok(WalListing {
        segments,
        newest_base_backup,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        for (pattern, name, matches) in [
            ("backup_*", "backup_20261125_010000", true),
            ("*.dump", "app.dump", true),
            ("*.dump", "app.dump.tmp", false),
            ("b?ckup*", "backup", true),
            ("backup_*", "xbackup_1", false),
            ("*", "", true),
            ("a*b*c", "aXXbYYc", true),
            ("a*b*c", "aXXbYY", false),
            ("backup_[0-9]*", "backup_2026", true),
            ("backup_[0-9]*", "backup_latest", false),
        ] {
            assert_eq!(glob_match(pattern, name), matches, "{pattern} on {name}");
        }
    }

    #[test]
    fn timestamps_in_names_are_utc() {
        assert_eq!(name_timestamp("backup_20261125_013000"), Some(1_795_570_200.0));
        assert_eq!(name_timestamp("backup_19700101_000000.dump"), Some(0.0));
        assert_eq!(name_timestamp("backup_20261325_013000"), None);
        assert_eq!(name_timestamp("backup_20260231_013000"), None);
        assert_eq!(name_timestamp("backup_20240229_000000"), Some(1_709_164_800.0));
        assert_eq!(name_timestamp("backup_latest.dump"), None);
        // Arabic-Indic and full-width digits are digits to `\\d`, not to `parse`.
        assert_eq!(name_timestamp("backup_٢٠٢٦١١٢٥_٠١٣٠٠٠.dump"), None);
        assert_eq!(name_timestamp("backup_２０２６１１２５_０１３０００.dump"), None);
        assert_eq!(history_stop_time("STOP TIME: ٢٠٢٦-١١-٢٥ ٠١:٣٠:٠٠ UTC\n"), None);
        assert_eq!(segment_name("٠٠٠٠٠٠٠١٠٠٠٠٠٠٠٠٠٠٠٠٠٠٠١"), None);
    }

    #[test]
    fn history_stop_time_in_utc_only() {
        let content = "START WAL LOCATION: 0/2000028 (file 000000010000000000000002)\n\
                       STOP TIME: 2026-11-25 01:30:00 UTC\n";
        assert_eq!(history_stop_time(content), Some(1_795_570_200.0));
        assert_eq!(history_stop_time("STOP TIME: 2026-11-25 01:30:00 CET\n"), None);
    }

    #[test]
    fn archive_kinds() {
        assert_eq!(
            archive_kind(b"PGDMP\x01\x0e\x00\x04\x08\x01", false),
            Some(("custom", Some("1.14.0".into())))
        );
        assert_eq!(
            archive_kind(b"--\n-- PostgreSQL database dump\n--\n", false),
            Some(("plain", None))
        );
        assert_eq!(archive_kind(b"\x00\x01garbage", false), None);
        let mut tar = vec![0u8; 600];
        tar[257..262].copy_from_slice(b"ustar");
        tar[512..520].copy_from_slice(b"PGDMP\x01\x0f\x00");
        assert_eq!(archive_kind(&tar, false), Some(("tar", Some("1.15.0".into()))));
    }
}
