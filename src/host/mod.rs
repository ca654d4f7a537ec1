//! The host executor: everything collectors need from the exporter's own
//! machine rather than from PostgreSQL — listing backup directories and the
//! WAL archive, and verifying the newest backup with `pg_restore`.
//!
//! Collectors describe `HostRequest`s (`Source::Host`); `scrape/` hands
//! them to `execute`, which answers with `HostResult`s in the same order.
//! Everything here is I/O on request; what outlives a scrape (verification
//! results, when to start one) is the scrape layer's (`scrape/host_cache.rs`).
//! Listings are cheap and run in every scrape (tokio::fs, bounded by the
//! scrape deadline). Verification (`verify_backup`) reads a whole archive
//! and can take minutes, so the scrape layer runs it in the background
//! (niced, `ionice -c3` where present, bounded by
//! `PGMAINT_BACKUP_VERIFY_TIMEOUT`), at most once per newest file — the cache
//! key is path + size + mtime, so a file still being written is verified
//! again once it changes — and scrapes report the cached outcome.
//!
//! Only read access is needed: nothing here writes to a backup directory.
//!
//! Layout: `backup.rs` (backup directories), `pg_restore.rs` (verifying a
//! dump), `wal.rs` (the WAL archive).

mod backup;
mod pg_restore;
mod wal;

pub use backup::{glob_match, name_timestamp};
pub use pg_restore::{archive_kind, find_pg_restore, verify_backup};
pub use wal::history_stop_time;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use tracing::{info, warn};

use crate::config::Config;

use backup::backup_dir;
use pg_restore::Tools;
use wal::wal_archive;

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
    /// The newest backup, when `PGMAINT_BACKUP_VERIFY` is on.
    pub to_verify: Option<NewestBackup>,
    /// The newest backup's verification, once it has run (filled in by the
    /// scrape layer); `None` while it runs, when verification is off, or for
    /// an archive without pg_restore.
    pub newest: Option<Verification>,
}

/// The newest backup of a directory, as `verify_backup` needs it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NewestBackup {
    pub path: PathBuf,
    pub size: u64,
    pub mtime: SystemTime,
    /// A directory-format dump.
    pub is_dir: bool,
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

/// What the host executor remembers: the programs found, and which
/// directories were unreadable (so that is logged once per change).
#[derive(Default)]
pub struct HostState {
    /// Directories unreadable in the last scrape.
    unreadable: Mutex<HashSet<PathBuf>>,
    tools: OnceLock<Tools>,
}

/// Runs host requests; results in request order.
pub async fn execute(state: &HostState, config: &Config, requests: Vec<HostRequest>) -> Vec<HostResult> {
    let mut out = Vec::with_capacity(requests.len());
    for r in requests {
        out.push(match r {
            HostRequest::BackupDir { dir, globs } => {
                let r = backup_dir(config, Path::new(&dir), &globs).await;
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

/// Six captured ASCII digit groups → a UTC time; `None`, never a panic, for
/// anything else (`\d` would also match Arabic-Indic and other Unicode
/// digits, which `parse` refuses: the patterns say `[0-9]`).
fn fields(c: &regex::Captures<'_>) -> Option<f64> {
    let f = |i: usize| c.get(i)?.as_str().parse::<i64>().ok();
    utc(f(1)?, f(2)?, f(3)?, f(4)?, f(5)?, f(6)?)
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
}

#[cfg(test)]
mod tests {
    use super::wal::segment_name;
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
