//! `checkpointer`: checkpoints (timed and requested), their write and sync
//! time and buffers, and the background writer's cleaning.
//! Sources: pg_stat_bgwriter (PostgreSQL ≤ 16); pg_stat_checkpointer plus
//! pg_stat_bgwriter (17+). Scope: cluster. PostgreSQL ≥ 14.
//!
//! PostgreSQL 17 moved the checkpointer's columns from pg_stat_bgwriter to
//! pg_stat_checkpointer under new names; the families keep one name and
//! meaning across versions. Restartpoint counters exist from 17 and
//! `checkpoints_done` from 18; on older servers they have no sample.

use crate::collectors::{num, Collector, Ctx, Fetched, Meta, Query, Scope, Source, MIN_SUPPORTED_MAJOR};
use const_format::concatcp;

use crate::error::CollectError;
use crate::metrics::{Family, Sink};

/// One row, PostgreSQL 14–16: checkpointer and bgwriter from one view.
/// Columns: timed, requested, done, write s, sync s, buffers, reset, clean,
/// maxwritten, alloc, restartpoints timed/requested/done.
const SQL_14: &str = "SELECT checkpoints_timed::float8, checkpoints_req::float8, NULL::float8,
       checkpoint_write_time / 1000, checkpoint_sync_time / 1000, buffers_checkpoint::float8,
       extract(epoch FROM stats_reset)::float8,
       buffers_clean::float8, maxwritten_clean::float8, buffers_alloc::float8,
       NULL::float8, NULL::float8, NULL::float8
  FROM pg_stat_bgwriter";

/// From PostgreSQL 17 the checkpointer has its own view; columns as SQL_14.
/// The third column (num_done) comes in 18: `SQL_17` and `SQL_18` differ
/// only there.
const CHECKPOINTER_HEAD: &str = "SELECT c.num_timed::float8, c.num_requested::float8, ";

/// The columns after num_done, and the views.
const CHECKPOINTER_TAIL: &str = ",
       c.write_time / 1000, c.sync_time / 1000, c.buffers_written::float8,
       extract(epoch FROM c.stats_reset)::float8,
       b.buffers_clean::float8, b.maxwritten_clean::float8, b.buffers_alloc::float8,
       c.restartpoints_timed::float8, c.restartpoints_req::float8, c.restartpoints_done::float8
  FROM pg_stat_checkpointer c, pg_stat_bgwriter b";

/// One row, PostgreSQL 17: no num_done yet.
const SQL_17: &str = concatcp!(CHECKPOINTER_HEAD, "NULL::float8", CHECKPOINTER_TAIL);

/// One row, PostgreSQL 18+: with num_done.
const SQL_18: &str = concatcp!(CHECKPOINTER_HEAD, "c.num_done::float8", CHECKPOINTER_TAIL);

static TIMED: Family = Family::counter(
    "pg_checkpointer_checkpoints_timed_total",
    "Checkpoints started because checkpoint_timeout elapsed, including skipped ones on an idle server (pg_stat_bgwriter.checkpoints_timed; pg_stat_checkpointer.num_timed from 17).",
    &[],
);
static REQUESTED: Family = Family::counter(
    "pg_checkpointer_checkpoints_requested_total",
    "Checkpoints requested by CHECKPOINT, max_wal_size, CREATE DATABASE, shutdown and the like (pg_stat_bgwriter.checkpoints_req; pg_stat_checkpointer.num_requested from 17).",
    &[],
);
static DONE: Family = Family::counter(
    "pg_checkpointer_checkpoints_done_total",
    "Checkpoints actually performed, i.e. not skipped (pg_stat_checkpointer.num_done, PostgreSQL 18+).",
    &[],
);
static WRITE_TIME: Family = Family::counter(
    "pg_checkpointer_write_time_seconds_total",
    "Time checkpoints and restartpoints spent writing files (pg_stat_bgwriter.checkpoint_write_time; pg_stat_checkpointer.write_time from 17; ms converted to s).",
    &[],
);
static SYNC_TIME: Family = Family::counter(
    "pg_checkpointer_sync_time_seconds_total",
    "Time checkpoints and restartpoints spent syncing files to disk (pg_stat_bgwriter.checkpoint_sync_time; pg_stat_checkpointer.sync_time from 17; ms converted to s).",
    &[],
);
static BUFFERS_WRITTEN: Family = Family::counter(
    "pg_checkpointer_buffers_written_total",
    "Buffers written by checkpoints and restartpoints (pg_stat_bgwriter.buffers_checkpoint; pg_stat_checkpointer.buffers_written from 17).",
    &[],
);
static STATS_RESET: Family = Family::gauge(
    "pg_checkpointer_stats_reset_timestamp_seconds",
    "Unix time the checkpointer statistics were last reset (pg_stat_bgwriter.stats_reset; pg_stat_checkpointer.stats_reset from 17).",
    &[],
);
static RESTARTPOINTS_TIMED: Family = Family::counter(
    "pg_checkpointer_restartpoints_timed_total",
    "Restartpoints scheduled by timeout on a standby (pg_stat_checkpointer.restartpoints_timed, PostgreSQL 17+).",
    &[],
);
static RESTARTPOINTS_REQUESTED: Family = Family::counter(
    "pg_checkpointer_restartpoints_requested_total",
    "Restartpoints requested on a standby (pg_stat_checkpointer.restartpoints_req, PostgreSQL 17+).",
    &[],
);
static RESTARTPOINTS_DONE: Family = Family::counter(
    "pg_checkpointer_restartpoints_done_total",
    "Restartpoints performed on a standby (pg_stat_checkpointer.restartpoints_done, PostgreSQL 17+).",
    &[],
);
static BUFFERS_CLEAN: Family = Family::counter(
    "pg_bgwriter_buffers_clean_total",
    "Buffers written by the background writer (pg_stat_bgwriter.buffers_clean).",
    &[],
);
static MAXWRITTEN_CLEAN: Family = Family::counter(
    "pg_bgwriter_maxwritten_clean_total",
    "Times the background writer stopped a cleaning scan at bgwriter_lru_maxpages (pg_stat_bgwriter.maxwritten_clean).",
    &[],
);
static BUFFERS_ALLOC: Family = Family::counter(
    "pg_bgwriter_buffers_alloc_total",
    "Buffers allocated (pg_stat_bgwriter.buffers_alloc).",
    &[],
);

static FAMILIES: &[&Family] = &[
    &TIMED,
    &REQUESTED,
    &DONE,
    &WRITE_TIME,
    &SYNC_TIME,
    &BUFFERS_WRITTEN,
    &STATS_RESET,
    &RESTARTPOINTS_TIMED,
    &RESTARTPOINTS_REQUESTED,
    &RESTARTPOINTS_DONE,
    &BUFFERS_CLEAN,
    &MAXWRITTEN_CLEAN,
    &BUFFERS_ALLOC,
];

/// What `checkpointer` is, once (see `Meta`).
const META: Meta = Meta {
    name: "checkpointer",
    description:
        "Checkpoints timed and requested, their write/sync time and buffers; background writer cleaning.",
    scope: Scope::Cluster,
    families: FAMILIES,
    min_major: MIN_SUPPORTED_MAJOR,
    default_enabled: true,
};

pub struct Checkpointer;

impl Collector for Checkpointer {
    fn meta(&self) -> &'static Meta {
        &META
    }
    fn source(&self, ctx: &Ctx) -> Source {
        let sql = match ctx.server.major() {
            ..=16 => SQL_14,
            17 => SQL_17,
            _ => SQL_18,
        };
        Source::Sql(vec![Query::new("checkpointer", sql)])
    }
    fn map(&self, _ctx: &Ctx, input: &Fetched, out: &mut Sink) -> Result<(), CollectError> {
        for row in input.rows("checkpointer")? {
            out.counter_opt(&TIMED, &[], num(row, 0)?);
            out.counter_opt(&REQUESTED, &[], num(row, 1)?);
            out.counter_opt(&DONE, &[], num(row, 2)?);
            out.counter_opt(&WRITE_TIME, &[], num(row, 3)?);
            out.counter_opt(&SYNC_TIME, &[], num(row, 4)?);
            out.counter_opt(&BUFFERS_WRITTEN, &[], num(row, 5)?);
            out.gauge_opt(&STATS_RESET, &[], num(row, 6)?);
            out.counter_opt(&BUFFERS_CLEAN, &[], num(row, 7)?);
            out.counter_opt(&MAXWRITTEN_CLEAN, &[], num(row, 8)?);
            out.counter_opt(&BUFFERS_ALLOC, &[], num(row, 9)?);
            out.counter_opt(&RESTARTPOINTS_TIMED, &[], num(row, 10)?);
            out.counter_opt(&RESTARTPOINTS_REQUESTED, &[], num(row, 11)?);
            out.counter_opt(&RESTARTPOINTS_DONE, &[], num(row, 12)?);
        }
        Ok(())
    }
}
