//! `backup`: logical backups (`pg_dump` archives) in backup directories —
//! how many, how big, how fresh, and whether the newest one reads back.
//! Source: the files in `PGMAINT_BACKUP_DIRS` (host, read-only), and
//! `pg_restore` for verification (see `host/`). Scope: cluster. Off unless
//! `PGMAINT_BACKUP_DIRS` is set.
//!
//! A backup's time comes from a `YYYYmmdd_HHMMSS` timestamp in its name
//! (read as UTC) when there is one, else from its mtime: copying a dump to
//! another disk changes its mtime, not its name.

use crate::collectors::{Collector, Ctx, Fetched, Meta, Scope, Source, MIN_SUPPORTED_MAJOR};
use crate::error::CollectError;
use crate::host::{HostRequest, HostResult, Outcome};
use crate::metrics::{Family, Sink};

pub static READABLE: Family = Family::gauge(
    "pg_backup_directory_readable",
    "1 if the backup directory could be listed in this scrape, 0 if it is missing or unreadable (PGMAINT_BACKUP_DIRS).",
    &["dir"],
);
pub static FILES: Family = Family::gauge(
    "pg_backup_files",
    "Backups in the directory: files (and directory-format dumps) matching its globs.",
    &["dir"],
);
static SIZE: Family = Family::gauge(
    "pg_backup_size_bytes",
    "Total size of the backups in the directory.",
    &["dir"],
);
pub static NEWEST: Family = Family::gauge(
    "pg_backup_newest_timestamp_seconds",
    "Unix time of the newest backup: YYYYmmdd_HHMMSS in its name (UTC), else its mtime; absent without backups.",
    &["dir"],
);
static OLDEST: Family = Family::gauge(
    "pg_backup_oldest_timestamp_seconds",
    "Unix time of the oldest backup (name timestamp, else mtime); absent without backups.",
    &["dir"],
);
static NEWEST_SIZE: Family = Family::gauge(
    "pg_backup_newest_size_bytes",
    "Size of the newest backup; absent without backups.",
    &["dir"],
);
static PREVIOUS_SIZE: Family = Family::gauge(
    "pg_backup_previous_size_bytes",
    "Size of the backup before the newest; absent with fewer than two backups.",
    &["dir"],
);
pub static VERIFIED: Family = Family::gauge(
    "pg_backup_newest_verified",
    "1 if the newest backup read back whole (pg_restore -f /dev/null; plain SQL: its completion trailer), 0 if truncated or corrupt (the log says why). Checked once per new file in the background; absent until then, when PGMAINT_BACKUP_VERIFY is off, or without pg_restore.",
    &["dir"],
);
pub static UNVERIFIABLE: Family = Family::gauge(
    "pg_backup_newest_unverifiable",
    "1 if the newest backup could not be checked here (written by a newer pg_dump than the installed pg_restore reads, or the check timed out), else 0. Not a failed backup.",
    &["dir"],
);
static TOC_ENTRIES: Family = Family::gauge(
    "pg_backup_newest_toc_entries",
    "Entries in the newest archive's table of contents (pg_restore --list); absent for plain SQL dumps.",
    &["dir"],
);
static NEWEST_INFO: Family = Family::gauge(
    "pg_backup_newest_info",
    "Always 1; labels name the newest backup's file, format (custom, directory, tar, plain, unknown) and the database it holds (empty when unknown). Present once verified.",
    &["dir", "file", "format", "datname"],
);

static FAMILIES: &[&Family] = &[
    &READABLE,
    &FILES,
    &SIZE,
    &NEWEST,
    &OLDEST,
    &NEWEST_SIZE,
    &PREVIOUS_SIZE,
    &VERIFIED,
    &UNVERIFIABLE,
    &TOC_ENTRIES,
    &NEWEST_INFO,
];

/// What `backup` is, once (see `Meta`).
const META: Meta = Meta {
    name: "backup",
    description: "pg_dump backups in PGMAINT_BACKUP_DIRS: count, size, age, and verification of the newest.",
    scope: Scope::Cluster,
    families: FAMILIES,
    min_major: MIN_SUPPORTED_MAJOR,
    // Switched on by PGMAINT_BACKUP_DIRS (config/sections.rs).
    default_enabled: false,
};

pub struct Backup;

impl Collector for Backup {
    fn meta(&self) -> &'static Meta {
        &META
    }
    fn source(&self, ctx: &Ctx) -> Source {
        Source::Host(
            ctx.config
                .backup_dirs
                .iter()
                .map(|d| HostRequest::BackupDir {
                    dir: d.dir.clone(),
                    globs: d.globs.clone(),
                })
                .collect(),
        )
    }
    fn map(&self, ctx: &Ctx, input: &Fetched, out: &mut Sink) -> Result<(), CollectError> {
        for (d, result) in ctx.config.backup_dirs.iter().zip(&input.host) {
            let dir = d.dir.as_str();
            let HostResult::BackupDir(result) = result else {
                return Err(CollectError::Other("backup: unexpected host result".into()));
            };
            let listing = match result {
                Ok(l) => l,
                // host/mod.rs logs the reason when the directory becomes unreadable.
                Err(_) => {
                    out.gauge(&READABLE, &[dir], 0.0);
                    continue;
                }
            };
            out.gauge(&READABLE, &[dir], 1.0);
            out.gauge(&FILES, &[dir], listing.files.len() as f64);
            out.gauge(&SIZE, &[dir], listing.files.iter().map(|f| f.size as f64).sum());
            let (Some(oldest), Some(newest)) = (listing.files.first(), listing.files.last()) else {
                continue;
            };
            out.gauge(&NEWEST, &[dir], newest.time);
            out.gauge(&OLDEST, &[dir], oldest.time);
            out.gauge(&NEWEST_SIZE, &[dir], newest.size as f64);
            if listing.files.len() >= 2 {
                let previous = &listing.files[listing.files.len() - 2];
                out.gauge(&PREVIOUS_SIZE, &[dir], previous.size as f64);
            }
            if let Some(v) = &listing.newest {
                let (verified, unverifiable) = match v.outcome {
                    Outcome::Verified => (Some(1.0), 0.0),
                    Outcome::Failed(_) => (Some(0.0), 0.0),
                    Outcome::Unverifiable(_) => (None, 1.0),
                };
                out.gauge_opt(&VERIFIED, &[dir], verified);
                out.gauge(&UNVERIFIABLE, &[dir], unverifiable);
                out.gauge_opt(&TOC_ENTRIES, &[dir], v.toc_entries.map(|n| n as f64));
                out.gauge(
                    &NEWEST_INFO,
                    &[dir, &newest.name, v.format, v.dbname.as_deref().unwrap_or("")],
                    1.0,
                );
            }
        }
        Ok(())
    }
}
