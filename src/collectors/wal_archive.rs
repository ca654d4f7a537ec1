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
//! standby continues the chain on a new timeline).
//!
//! A segment file is only as good as its bytes: `cp` interrupted halfway
//! leaves a short file, and the archive command PostgreSQL's documentation
//! shows (`test ! -f …/%f && cp %p …/%f`) then refuses to overwrite it,
//! forever. An uncompressed segment whose size differs from the server's
//! `wal_segment_size` is counted as incomplete once it is older than
//! `PGMAINT_BACKUP_MIN_AGE` (a copy may still be under way), and an
//! incomplete segment in the chain breaks continuity as a missing one does.
//! Compressed segments cannot be judged by their size. Without the server's
//! setting the segment size is read from the archive (the size of an
//! uncompressed segment that is a power of two of at least 1 MiB; 16 MiB when
//! there is none).

use crate::collectors::{Collector, Ctx, Fetched, Meta, Scope, Source, MIN_SUPPORTED_MAJOR};
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
pub static CONTINUOUS: Family = Family::gauge(
    "pg_wal_archive_continuous",
    "1 if every WAL segment from the newest base backup's start segment to the newest archived segment is in the archive and complete, else 0 (recovery would stop at the gap or the incomplete segment); absent without a base backup.",
    &[],
);
pub static MISSING: Family = Family::gauge(
    "pg_wal_archive_missing_segments",
    "WAL segments missing between the newest base backup's start segment and the newest archived segment; absent without a base backup.",
    &[],
);
pub static INCOMPLETE: Family = Family::gauge(
    "pg_wal_archive_incomplete_segments",
    "Uncompressed WAL segment files in the archive whose size differs from the server's wal_segment_size and that are older than PGMAINT_BACKUP_MIN_AGE (an interrupted copy: recovery cannot use them).",
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
    &INCOMPLETE,
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

/// The segment size when the server's is unknown: an uncompressed segment's
/// size that is a power of two of at least 1 MiB, else 16 MiB.
fn archive_segment_size(segments: &[WalSegment]) -> u64 {
    segments
        .iter()
        .find(|s| !s.compressed && s.size.is_power_of_two() && s.size >= 1024 * 1024)
        .map(|s| s.size)
        .unwrap_or(DEFAULT_SEGMENT_SIZE)
}

/// Whether a segment file is an interrupted copy: uncompressed, not
/// `seg_size` bytes, and last modified at least `grace` seconds before `now`.
pub fn is_incomplete(s: &WalSegment, seg_size: u64, now: f64, grace: f64) -> bool {
    !s.compressed && s.size != seg_size && now - s.mtime >= grace
}

/// What the archive holds from `start` (a segment name) to the highest
/// archived segment, counting segments of the start timeline or later.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chain {
    /// Segments with no file at all.
    pub missing: u64,
    /// Segments whose only files are incomplete (see `is_incomplete`).
    pub incomplete: u64,
}

/// Walks the chain from `start`; `incomplete` tells an interrupted copy.
pub fn chain(
    segments: &[WalSegment],
    start: &str,
    seg_size: u64,
    incomplete: impl Fn(&WalSegment) -> bool,
) -> Chain {
    let per_log = 0x1_0000_0000 / seg_size.max(1);
    let Some((start_tli, start_pos)) = position(start, per_log) else {
        return Chain {
            missing: 0,
            incomplete: 0,
        };
    };
    // (position, usable): a position is usable if any of its files is.
    let mut present: Vec<(u64, bool)> = segments
        .iter()
        .filter_map(|s| Some((position(&s.name, per_log)?, s)))
        .filter(|((tli, pos), _)| *tli >= start_tli && *pos >= start_pos)
        .map(|((_, pos), s)| (pos, !incomplete(s)))
        .collect();
    // Usable files first, so dedup keeps them.
    present.sort_unstable_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
    present.dedup_by_key(|p| p.0);
    let incomplete = present.iter().filter(|(_, usable)| !usable).count() as u64;
    match present.last() {
        // Not even the start segment is archived yet: one missing.
        None => Chain {
            missing: 1,
            incomplete: 0,
        },
        Some((last, _)) => Chain {
            missing: (last - start_pos + 1) - present.len() as u64,
            incomplete,
        },
    }
}

/// Segments missing from `start` to the highest archived one (sizes are not
/// judged; see `chain`).
pub fn missing_segments(segments: &[WalSegment], start: &str) -> u64 {
    chain(segments, start, archive_segment_size(segments), |_| false).missing
}

/// What `wal_archive` is, once (see `Meta`).
const META: Meta = Meta {
    name: "wal_archive",
    description:
        "PITR readiness from PGMAINT_WAL_ARCHIVE_DIR: newest base backup and WAL continuity since it.",
    scope: Scope::Cluster,
    families: FAMILIES,
    min_major: MIN_SUPPORTED_MAJOR,
    // Switched on by PGMAINT_WAL_ARCHIVE_DIR (config/sections.rs).
    default_enabled: false,
};

pub struct WalArchive;

impl Collector for WalArchive {
    fn meta(&self) -> &'static Meta {
        &META
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
    fn map(&self, ctx: &Ctx, input: &Fetched, out: &mut Sink) -> Result<(), CollectError> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or_default();
        let grace = ctx.config.backup_min_age.as_secs_f64();
        for result in &input.host {
            let HostResult::WalArchive(result) = result else {
                return Err(CollectError::Other("wal_archive: unexpected host result".into()));
            };
            let listing = match result {
                Ok(l) => l,
                // host/mod.rs logs the reason when the directory becomes unreadable.
                Err(_) => {
                    out.gauge(&READABLE, &[], 0.0);
                    continue;
                }
            };
            out.gauge(&READABLE, &[], 1.0);
            out.gauge(&SEGMENTS, &[], listing.segments.len() as f64);
            out.gauge(&SIZE, &[], listing.segments.iter().map(|s| s.size as f64).sum());
            out.gauge_opt(&LAST_SEGMENT, &[], listing.segments.last().map(|s| s.mtime));
            let seg_size = ctx
                .server
                .wal_segment_size
                .unwrap_or_else(|| archive_segment_size(&listing.segments));
            let incomplete = |s: &WalSegment| is_incomplete(s, seg_size, now, grace);
            let broken = listing.segments.iter().filter(|s| incomplete(s)).count();
            out.gauge(&INCOMPLETE, &[], broken as f64);
            if let Some(b) = &listing.newest_base_backup {
                out.gauge(&BASE_BACKUP, &[], b.time);
                let c = chain(&listing.segments, &b.start_segment, seg_size, incomplete);
                out.gauge(&MISSING, &[], c.missing as f64);
                let whole = c.missing == 0 && c.incomplete == 0;
                out.gauge(&CONTINUOUS, &[], if whole { 1.0 } else { 0.0 });
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

    #[test]
    fn a_short_old_segment_is_incomplete_a_fresh_one_is_in_progress() {
        let size = DEFAULT_SEGMENT_SIZE;
        let short = WalSegment {
            size: size / 2,
            mtime: 1000.0,
            ..seg("000000010000000000000002")
        };
        assert!(is_incomplete(&short, size, 1100.0, 60.0));
        assert!(!is_incomplete(&short, size, 1030.0, 60.0), "still being copied");
        let gz = WalSegment {
            compressed: true,
            ..short.clone()
        };
        assert!(
            !is_incomplete(&gz, size, 1100.0, 60.0),
            "compressed: size says nothing"
        );
        assert!(!is_incomplete(
            &seg("000000010000000000000002"),
            size,
            1100.0,
            60.0
        ));

        let segs = [
            seg("000000010000000000000001"),
            short.clone(),
            seg("000000010000000000000003"),
        ];
        let judge = |s: &WalSegment| is_incomplete(s, size, 1100.0, 60.0);
        let c = chain(&segs, "000000010000000000000001", size, judge);
        assert_eq!(
            c,
            Chain {
                missing: 0,
                incomplete: 1
            }
        );
        // A complete copy on a later timeline covers the same position.
        let mut healed = segs.to_vec();
        healed.push(seg("000000020000000000000002"));
        let c = chain(&healed, "000000010000000000000001", size, judge);
        assert_eq!(
            c,
            Chain {
                missing: 0,
                incomplete: 0
            }
        );
    }
}
