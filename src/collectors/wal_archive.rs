//! `wal_archive`: point-in-time recovery readiness as seen in the WAL
//! archive itself — the newest physical base backup, and whether every WAL
//! segment from its start to the newest archived one is there.
//! Source: the files in `PGMAINT_WAL_ARCHIVE_DIR` (host, read-only): WAL
//! segments and the backup-history files (`*.backup`) that pg_basebackup /
//! pg_backup_stop() archive. Scope: cluster. Off unless the variable is set.
//!
//! A `pg_dump` archive is a logical snapshot; point-in-time recovery needs a
//! base backup plus an unbroken chain of WAL after it. One missing segment
//! and recovery stops there.
//!
//! Segments of any timeline at or after the base backup's count (a promoted
//! standby continues the chain on a new timeline). The segment size is read
//! from an uncompressed segment's file size (16 MiB when all are compressed).

use crate::collectors::{Collector, Ctx, Fetched, Scope, Source};
use crate::error::CollectError;
use crate::host::{HostRequest, HostResult, WalSegment};
use crate::metrics::{Family, Sink};

static READABLE: Family = Family::gauge(
    "pg_wal_archive_readable",
    "1 if the WAL archive directory (PGMAINT_WAL_ARCHIVE_DIR) could be listed in this scrape, 0 if missing or unreadable.",
    &[],
);
static SEGMENTS: Family = Family::gauge(
    "pg_wal_archive_segments",
    "WAL segment files in the archive (24 hex digits, optionally .gz/.zst/.lz4/.xz/.bz2).",
    &[],
);
static SIZE: Family = Family::gauge(
    "pg_wal_archive_size_bytes",
    "Total size of the WAL segment files in the archive.",
    &[],
);
static LAST_SEGMENT: Family = Family::gauge(
    "pg_wal_archive_last_segment_timestamp_seconds",
    "Unix mtime of the newest (highest-numbered) archived WAL segment; absent when there is none.",
    &[],
);
static BASE_BACKUP: Family = Family::gauge(
    "pg_wal_archive_base_backup_timestamp_seconds",
    "Unix time the newest physical base backup finished (STOP TIME of the newest *.backup history file when in UTC, else its mtime); absent when there is none.",
    &[],
);
static CONTINUOUS: Family = Family::gauge(
    "pg_wal_archive_continuous",
    "1 if every WAL segment from the newest base backup's start segment to the newest archived segment is in the archive, else 0 (recovery would stop at the gap); absent without a base backup.",
    &[],
);
static MISSING: Family = Family::gauge(
    "pg_wal_archive_missing_segments",
    "WAL segments missing between the newest base backup's start segment and the newest archived segment; absent without a base backup.",
    &[],
);

static FAMILIES: &[&Family] = &[
    &READABLE,
    &SEGMENTS,
    &SIZE,
    &LAST_SEGMENT,
    &BASE_BACKUP,
    &CONTINUOUS,
    &MISSING,
];

const DEFAULT_SEGMENT_SIZE: u64 = 16 * 1024 * 1024;

/// (timeline, position) of a segment name; position counts segments from
/// the start of WAL.
fn position(name: &str, segments_per_log: u64) -> Option<(u32, u64)> {
    let tli = u32::from_str_radix(&name[0..8], 16).ok()?;
    let log = u64::from_str_radix(&name[8..16], 16).ok()?;
    let seg = u64::from_str_radix(&name[16..24], 16).ok()?;
    Some((tli, log * segments_per_log + seg))
}

/// Segments missing from `start` (a segment name) to the highest archived
/// one, counting segments of the start timeline or later.
pub fn missing_segments(segments: &[WalSegment], start: &str) -> u64 {
    let seg_size = segments
        .iter()
        .find(|s| !s.compressed && s.size.is_power_of_two() && s.size >= 1024 * 1024)
        .map(|s| s.size)
        .unwrap_or(DEFAULT_SEGMENT_SIZE);
    let per_log = 0x1_0000_0000 / seg_size;
    let Some((start_tli, start_pos)) = position(start, per_log) else {
        return 0;
    };
    let mut present: Vec<u64> = segments
        .iter()
        .filter_map(|s| position(&s.name, per_log))
        .filter(|(tli, pos)| *tli >= start_tli && *pos >= start_pos)
        .map(|(_, pos)| pos)
        .collect();
    present.sort_unstable();
    present.dedup();
    match present.last() {
        // Not even the start segment is archived yet: one missing.
        None => 1,
        Some(last) => (last - start_pos + 1) - present.len() as u64,
    }
}

pub struct WalArchive;

impl Collector for WalArchive {
    fn name(&self) -> &'static str {
        "wal_archive"
    }
    fn description(&self) -> &'static str {
        "PITR readiness from PGMAINT_WAL_ARCHIVE_DIR: newest base backup and WAL continuity since it."
    }
    fn scope(&self) -> Scope {
        Scope::Cluster
    }
    fn default_enabled(&self) -> bool {
        // Switched on by PGMAINT_WAL_ARCHIVE_DIR (config.rs).
        false
    }
    fn families(&self) -> &'static [&'static Family] {
        FAMILIES
    }
    fn source(&self, ctx: &Ctx) -> Source {
        Source::Host(
            ctx.config
                .wal_archive_dir
                .iter()
                .map(|dir| HostRequest::WalArchive { dir: dir.clone() })
                .collect(),
        )
    }
    fn map(&self, _ctx: &Ctx, input: &Fetched, out: &mut Sink) -> Result<(), CollectError> {
        for result in &input.host {
            let HostResult::WalArchive(result) = result else {
                return Err(CollectError::Other("wal_archive: unexpected host result".into()));
            };
            let listing = match result {
                Ok(l) => l,
                // host.rs logs the reason when the directory becomes unreadable.
                Err(_) => {
                    out.gauge(&READABLE, &[], 0.0);
                    continue;
                }
            };
            out.gauge(&READABLE, &[], 1.0);
            out.gauge(&SEGMENTS, &[], listing.segments.len() as f64);
            out.gauge(&SIZE, &[], listing.segments.iter().map(|s| s.size as f64).sum());
            out.gauge_opt(&LAST_SEGMENT, &[], listing.segments.last().map(|s| s.mtime));
            if let Some(b) = &listing.newest_base_backup {
                out.gauge(&BASE_BACKUP, &[], b.time);
                let missing = missing_segments(&listing.segments, &b.start_segment);
                out.gauge(&MISSING, &[], missing as f64);
                out.gauge(&CONTINUOUS, &[], if missing == 0 { 1.0 } else { 0.0 });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(name: &str) -> WalSegment {
        WalSegment {
            name: name.into(),
            size: DEFAULT_SEGMENT_SIZE,
            mtime: 0.0,
            compressed: false,
        }
    }

    #[test]
    fn continuity_across_log_boundaries_and_timelines() {
        let start = "0000000100000000000000FE";
        let full = [
            seg("0000000100000000000000FD"), // before the backup: ignored
            seg("0000000100000000000000FE"),
            seg("0000000100000000000000FF"),
            seg("000000010000000100000000"),
            seg("000000020000000100000001"), // after a promotion
        ];
        assert_eq!(missing_segments(&full, start), 0);
        let gap = [full[1].clone(), full[2].clone(), full[4].clone()];
        assert_eq!(missing_segments(&gap, start), 1);
        assert_eq!(missing_segments(&[], start), 1);
        // 64 MiB segments: 0x3F is the last of a log file.
        let big = |n: &str| WalSegment {
            size: 64 * 1024 * 1024,
            ..seg(n)
        };
        let s = [big("00000001000000000000003F"), big("000000010000000100000000")];
        assert_eq!(missing_segments(&s, "00000001000000000000003F"), 0);
    }
}
