//! `vacuum_progress`: running VACUUMs (manual and autovacuum) per table, and
//! how many autovacuum workers are busy in each database.
//! Sources: pg_stat_progress_vacuum, pg_stat_activity, pg_class, pg_namespace.
//! Scope: every database (table names resolve only in their own database).
//! PostgreSQL ≥ 14; PG 17 replaced max_dead_tuples/num_dead_tuples with
//! max_dead_tuple_bytes/dead_tuple_bytes/num_dead_item_ids and added
//! indexes_total/indexes_processed.
//!
//! Series exist only while a VACUUM runs. One table cannot be vacuumed twice
//! at once, so (datname, schemaname, relname) is unique. VACUUM FULL reports
//! in pg_stat_progress_cluster, not here. Without pg_read_all_stats only the
//! exporter role's own VACUUMs are visible (others have no relid and are left
//! out), and `pg_autovacuum_workers_busy` is absent: PostgreSQL hides other
//! roles' backend_type (autovacuum workers run as the bootstrap superuser),
//! so the count would read 0 whatever runs.

use crate::collectors::{
    num, num_req, text, Collector, Ctx, Fetched, Meta, Query, Scope, Source, MIN_SUPPORTED_MAJOR,
};
use const_format::concatcp;

use crate::error::CollectError;
use crate::metrics::{Family, Sink};

/// One row per VACUUM running in the current database: table, phase, whether
/// it is an autovacuum worker, how long it has run (its transaction: VACUUM
/// of several tables, and autovacuum, use one transaction per table), block
/// progress and index cycles (`PROGRESS_HEAD`), then the dead tuples
/// collected so far and the room for them, whose columns depend on the
/// version, and the tables (`PROGRESS_FROM`).
const PROGRESS_HEAD: &str = "SELECT n.nspname::text, c.relname::text, p.phase::text,
       (a.backend_type = 'autovacuum worker' OR a.query LIKE 'autovacuum:%') IS TRUE,
       extract(epoch FROM clock_timestamp() - coalesce(a.xact_start, a.query_start))::float8,
       p.heap_blks_total::float8, p.heap_blks_scanned::float8, p.heap_blks_vacuumed::float8,
       p.index_vacuum_count::float8,
       ";

/// The progress rows of this database's VACUUMs, with their table and
/// session, then the autovacuum workers working in the current database
/// (last column). One statement per database (issue 22): the progress rows
/// are LEFT JOINed to the one-row count, so with no VACUUM running there is
/// still one row, whose progress columns are all NULL. The count is only
/// read with pg_read_all_stats: without it backend_type is NULL for the
/// workers (see the module docs).
const PROGRESS_FROM: &str = ",
       w.busy
  FROM (SELECT count(*)::float8 AS busy FROM pg_stat_activity
         WHERE backend_type = 'autovacuum worker' AND datname = current_database()) w
  LEFT JOIN (pg_stat_progress_vacuum p
    JOIN pg_class c ON c.oid = p.relid
    JOIN pg_namespace n ON n.oid = c.relnamespace
    LEFT JOIN pg_stat_activity a ON a.pid = p.pid)
    ON p.datid = (SELECT oid FROM pg_database WHERE datname = current_database())";

/// PG 14–16: dead tuples counted against max_dead_tuples; no byte or index
/// progress.
const PROGRESS_SQL: &str = concatcp!(
    PROGRESS_HEAD,
    "p.num_dead_tuples::float8, p.max_dead_tuples::float8,
       NULL::float8, NULL::float8, NULL::float8",
    PROGRESS_FROM
);

/// PG ≥ 17: dead items are counted in num_dead_item_ids and their memory in
/// bytes; index progress is reported.
const PROGRESS_17_SQL: &str = concatcp!(
    PROGRESS_HEAD,
    "p.num_dead_item_ids::float8, NULL::float8,
       p.dead_tuple_bytes::float8, p.max_dead_tuple_bytes::float8,
       (p.indexes_total - p.indexes_processed)::float8",
    PROGRESS_FROM
);

const LABELS: &[&str] = &["datname", "schemaname", "relname"];

static INFO: Family = Family::gauge(
    "pg_vacuum_progress_info",
    "Always 1 per running VACUUM; phase from pg_stat_progress_vacuum.phase, autovacuum true for autovacuum workers (pg_stat_activity.backend_type).",
    &["datname", "schemaname", "relname", "phase", "autovacuum"],
);
static RUNNING: Family = Family::gauge(
    "pg_vacuum_progress_running_seconds",
    "How long the VACUUM of this table has run (now - pg_stat_activity.xact_start).",
    LABELS,
);
static HEAP_TOTAL: Family = Family::gauge(
    "pg_vacuum_progress_heap_blocks",
    "Heap blocks of the table when the scan began (pg_stat_progress_vacuum.heap_blks_total).",
    LABELS,
);
static HEAP_SCANNED: Family = Family::gauge(
    "pg_vacuum_progress_heap_blocks_scanned",
    "Heap blocks scanned so far (pg_stat_progress_vacuum.heap_blks_scanned).",
    LABELS,
);
static HEAP_VACUUMED: Family = Family::gauge(
    "pg_vacuum_progress_heap_blocks_vacuumed",
    "Heap blocks vacuumed so far (pg_stat_progress_vacuum.heap_blks_vacuumed).",
    LABELS,
);
static INDEX_CYCLES: Family = Family::gauge(
    "pg_vacuum_progress_index_vacuum_cycles",
    "Completed index vacuum cycles (pg_stat_progress_vacuum.index_vacuum_count); more than 1 means maintenance_work_mem was too small for the dead tuples.",
    LABELS,
);
static DEAD_TUPLES: Family = Family::gauge(
    "pg_vacuum_progress_dead_tuples",
    "Dead item identifiers collected since the last index vacuum cycle (pg_stat_progress_vacuum.num_dead_tuples; num_dead_item_ids on PG 17+).",
    LABELS,
);
static MAX_DEAD_TUPLES: Family = Family::gauge(
    "pg_vacuum_progress_max_dead_tuples",
    "Dead tuples that fit before an index vacuum cycle is needed (pg_stat_progress_vacuum.max_dead_tuples, PG 14-16).",
    LABELS,
);
static DEAD_TUPLE_BYTES: Family = Family::gauge(
    "pg_vacuum_progress_dead_tuple_bytes",
    "Memory used by dead item identifiers collected since the last index vacuum cycle (pg_stat_progress_vacuum.dead_tuple_bytes, PG 17+).",
    LABELS,
);
static MAX_DEAD_TUPLE_BYTES: Family = Family::gauge(
    "pg_vacuum_progress_max_dead_tuple_bytes",
    "Memory available for dead item identifiers before an index vacuum cycle is needed (pg_stat_progress_vacuum.max_dead_tuple_bytes, PG 17+).",
    LABELS,
);
static INDEXES_LEFT: Family = Family::gauge(
    "pg_vacuum_progress_indexes_remaining",
    "Indexes still to vacuum or clean up in the current phase (pg_stat_progress_vacuum.indexes_total - indexes_processed, PG 17+).",
    LABELS,
);
static WORKERS_BUSY: Family = Family::gauge(
    "pg_autovacuum_workers_busy",
    "Autovacuum workers working in this database (pg_stat_activity.backend_type = 'autovacuum worker'); compare with autovacuum_max_workers. Absent without pg_read_all_stats or pg_monitor.",
    &["datname"],
);

static FAMILIES: &[&Family] = &[
    &INFO,
    &RUNNING,
    &HEAP_TOTAL,
    &HEAP_SCANNED,
    &HEAP_VACUUMED,
    &INDEX_CYCLES,
    &DEAD_TUPLES,
    &MAX_DEAD_TUPLES,
    &DEAD_TUPLE_BYTES,
    &MAX_DEAD_TUPLE_BYTES,
    &INDEXES_LEFT,
    &WORKERS_BUSY,
];

/// What `vacuum_progress` is, once (see `Meta`).
const META: Meta = Meta {
    name: "vacuum_progress",
    description: "Running VACUUMs per table (phase, blocks, duration) and busy autovacuum workers.",
    scope: Scope::PerDatabase,
    families: FAMILIES,
    min_major: MIN_SUPPORTED_MAJOR,
    default_enabled: true,
};

pub struct VacuumProgress;

/// True when the scrape's server facts show no VACUUM and no autovacuum
/// worker in this database: nothing to ask it (issue 22: one statement and
/// a fresh backend's planning of two statistics views saved per database).
/// A VACUUM that starts after those facts were read shows from the next
/// scrape on.
fn quiet(ctx: &Ctx) -> bool {
    ctx.server
        .vacuuming
        .as_ref()
        .is_some_and(|dbs| !dbs.iter().any(|d| d == ctx.datname))
}

impl Collector for VacuumProgress {
    fn meta(&self) -> &'static Meta {
        &META
    }
    fn source(&self, ctx: &Ctx) -> Source {
        if quiet(ctx) {
            return Source::Sql(vec![]);
        }
        let progress = match ctx.server.major() {
            ..=16 => PROGRESS_SQL,
            _ => PROGRESS_17_SQL,
        };
        Source::Sql(vec![Query::new("progress", progress)])
    }
    fn map(&self, ctx: &Ctx, input: &Fetched, out: &mut Sink) -> Result<(), CollectError> {
        let db = ctx.datname;
        if quiet(ctx) {
            if ctx.server.read_all_stats {
                out.gauge(&WORKERS_BUSY, &[db], 0.0);
            }
            return Ok(());
        }
        let rows = input.rows("progress")?;
        // Other roles' sessions hide backend_type: no count rather than 0.
        if ctx.server.read_all_stats {
            if let Some(row) = rows.first() {
                out.gauge(&WORKERS_BUSY, &[db], num_req(row, 14)?);
            }
        }
        for row in rows {
            // The lone row of a database where no VACUUM runs.
            if row.try_get::<_, Option<&str>>(0)?.is_none() {
                continue;
            }
            let (schema, table) = (text(row, 0)?, text(row, 1)?);
            let autovacuum: bool = row.try_get(3)?;
            let l = [db, &schema, &table];
            out.gauge(
                &INFO,
                &[
                    db,
                    &schema,
                    &table,
                    &text(row, 2)?,
                    if autovacuum { "true" } else { "false" },
                ],
                1.0,
            );
            out.gauge_opt(&RUNNING, &l, num(row, 4)?);
            out.gauge_opt(&HEAP_TOTAL, &l, num(row, 5)?);
            out.gauge_opt(&HEAP_SCANNED, &l, num(row, 6)?);
            out.gauge_opt(&HEAP_VACUUMED, &l, num(row, 7)?);
            out.gauge_opt(&INDEX_CYCLES, &l, num(row, 8)?);
            out.gauge_opt(&DEAD_TUPLES, &l, num(row, 9)?);
            out.gauge_opt(&MAX_DEAD_TUPLES, &l, num(row, 10)?);
            out.gauge_opt(&DEAD_TUPLE_BYTES, &l, num(row, 11)?);
            out.gauge_opt(&MAX_DEAD_TUPLE_BYTES, &l, num(row, 12)?);
            out.gauge_opt(&INDEXES_LEFT, &l, num(row, 13)?);
        }
        Ok(())
    }
}
