//! `archiver`: WAL archiving progress and failures, the archive backlog and
//! the size of the WAL directory.
//! Sources: pg_stat_archiver, pg_ls_archive_statusdir(), pg_ls_waldir().
//! Scope: cluster. PostgreSQL ≥ 14.
//!
//! The directory listings need superuser or pg_monitor: they are optional
//! queries, so an unprivileged role still gets the archiver counters and the
//! directory families are simply absent.

use crate::collectors::{
    num, num_req, Collector, Ctx, Fetched, Meta, Query, Scope, Source, MIN_SUPPORTED_MAJOR,
};
use crate::error::CollectError;
use crate::metrics::{Family, Sink};
use const_format::concatcp;

/// One row: archive counters, the last success and failure as Unix time and
/// as age (NULL when it never happened), and the last statistics reset.
const ARCHIVER_SQL: &str = "SELECT archived_count::float8, failed_count::float8,
       extract(epoch FROM last_archived_time)::float8,
       extract(epoch FROM now() - last_archived_time)::float8,
       extract(epoch FROM last_failed_time)::float8,
       extract(epoch FROM now() - last_failed_time)::float8,
       extract(epoch FROM stats_reset)::float8
  FROM pg_stat_archiver";

/// One row: total size of pg_wal (segments, history and backup files) and
/// the number of WAL segment files in it (24 hex digits). sum() is NULL only
/// when the directory lists no file: then it holds 0 bytes (coalesce).
const WALDIR_SQL: &str = "SELECT coalesce(sum(size), 0)::float8,
       count(*) FILTER (WHERE name ~ '^[0-9A-F]{24}$')::float8
  FROM pg_ls_waldir()";

/// One row: segments waiting for archive_command (`.ready` files in
/// pg_wal/archive_status).
const READY_SQL: &str = "SELECT count(*)::float8 FROM pg_ls_archive_statusdir() WHERE name LIKE '%.ready'";

/// `WALDIR_SQL` and `READY_SQL` in one statement (issue 22: fewer statements
/// per scrape). Both functions need the same privilege (superuser or
/// pg_monitor, which PostgreSQL grants EXECUTE on both), so the optional
/// query fails or succeeds as the two did.
const WAL_FILES_SQL: &str = concatcp!(
    "SELECT w.*, r.* FROM (",
    WALDIR_SQL,
    ") w CROSS JOIN (",
    READY_SQL,
    ") r"
);

static ARCHIVED: Family = Family::counter(
    "pg_archiver_archived_total",
    "WAL files archived successfully (pg_stat_archiver.archived_count).",
    &[],
);
static FAILED: Family = Family::counter(
    "pg_archiver_failed_total",
    "Failed attempts to archive WAL files (pg_stat_archiver.failed_count).",
    &[],
);
pub static LAST_ARCHIVED: Family = Family::gauge(
    "pg_archiver_last_archive_timestamp_seconds",
    "Unix time of the last successful archive (pg_stat_archiver.last_archived_time); absent if none yet.",
    &[],
);
static LAST_ARCHIVED_AGE: Family = Family::gauge(
    "pg_archiver_last_archive_age_seconds",
    "Seconds since the last successful archive (now() - pg_stat_archiver.last_archived_time); absent if none yet.",
    &[],
);
pub static LAST_FAILED: Family = Family::gauge(
    "pg_archiver_last_failure_timestamp_seconds",
    "Unix time of the last failed archive attempt (pg_stat_archiver.last_failed_time); absent if none.",
    &[],
);
static LAST_FAILED_AGE: Family = Family::gauge(
    "pg_archiver_last_failure_age_seconds",
    "Seconds since the last failed archive attempt (now() - pg_stat_archiver.last_failed_time); absent if none.",
    &[],
);
static STATS_RESET: Family = Family::gauge(
    "pg_archiver_stats_reset_timestamp_seconds",
    "Unix time the archiver statistics were last reset (pg_stat_archiver.stats_reset); absent if never.",
    &[],
);
pub static READY: Family = Family::gauge(
    "pg_archiver_ready_segments",
    "WAL files waiting to be archived (.ready files from pg_ls_archive_statusdir()); absent without superuser or pg_monitor.",
    &[],
);
static WALDIR_SIZE: Family = Family::gauge(
    "pg_wal_directory_size_bytes",
    "Total size of the files in pg_wal (pg_ls_waldir()); absent without superuser or pg_monitor.",
    &[],
);
static WALDIR_SEGMENTS: Family = Family::gauge(
    "pg_wal_directory_segments",
    "WAL segment files in pg_wal (pg_ls_waldir()); absent without superuser or pg_monitor.",
    &[],
);

static FAMILIES: &[&Family] = &[
    &ARCHIVED,
    &FAILED,
    &LAST_ARCHIVED,
    &LAST_ARCHIVED_AGE,
    &LAST_FAILED,
    &LAST_FAILED_AGE,
    &STATS_RESET,
    &READY,
    &WALDIR_SIZE,
    &WALDIR_SEGMENTS,
];

/// What `archiver` is, once (see `Meta`).
const META: Meta = Meta {
    name: "archiver",
    description: "WAL archiving successes, failures and backlog; size of pg_wal.",
    scope: Scope::Cluster,
    families: FAMILIES,
    min_major: MIN_SUPPORTED_MAJOR,
    default_enabled: true,
};

pub struct Archiver;

impl Collector for Archiver {
    fn meta(&self) -> &'static Meta {
        &META
    }
    fn source(&self, _ctx: &Ctx) -> Source {
        Source::Sql(vec![
            Query::new("archiver", ARCHIVER_SQL),
            Query::new("waldir", WAL_FILES_SQL).optional(),
        ])
    }
    fn map(&self, _ctx: &Ctx, input: &Fetched, out: &mut Sink) -> Result<(), CollectError> {
        for row in input.rows("archiver")? {
            out.counter(&ARCHIVED, &[], num_req(row, 0)?);
            out.counter(&FAILED, &[], num_req(row, 1)?);
            out.gauge_opt(&LAST_ARCHIVED, &[], num(row, 2)?);
            out.gauge_opt(&LAST_ARCHIVED_AGE, &[], num(row, 3)?);
            out.gauge_opt(&LAST_FAILED, &[], num(row, 4)?);
            out.gauge_opt(&LAST_FAILED_AGE, &[], num(row, 5)?);
            out.gauge_opt(&STATS_RESET, &[], num(row, 6)?);
        }
        for row in input.optional("waldir").unwrap_or_default() {
            out.gauge(&WALDIR_SIZE, &[], num_req(row, 0)?);
            out.gauge(&WALDIR_SEGMENTS, &[], num_req(row, 1)?);
            out.gauge(&READY, &[], num_req(row, 2)?);
        }
        Ok(())
    }
}
