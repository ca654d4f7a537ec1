//! `tables`: per-table tuple counts, vacuum/analyze history, frozen-xid
//! age and — what no peer exporter publishes — the points at which autovacuum
//! will act on each table, honouring its reloptions.
//! Source: pg_stat_user_tables' columns (read with the pg_stat_get_*
//! functions that define the view), pg_class, the autovacuum settings.
//! Scope: every database. PostgreSQL 14+ (vacuum/analyze time totals 18+).
//!
//! No query of its own: `selection::query()` reads everything in its one
//! pass over pg_class (`selection::stats()`), so a fresh connection plans
//! one statement for both. Sizes are the cached `sizes` collector's: size
//! functions lock and stat files, ~1 s per 10,000 tables, too slow for every
//! scrape.
//!
//! Only tables `selection::kept()` keeps get series (filters and the
//! per-database cap); `pgmaint_exporter_tables_omitted` counts the rest.
//! Partitioned parents have no statistics or storage of their own: their
//! partitions are reported instead. The trigger points come from `selection`,
//! so the cap's "needs attention" and these series never disagree.

use crate::collectors::selection;
use crate::collectors::{text_ref, Collector, Ctx, Fetched, Meta, Scope, Source, MIN_SUPPORTED_MAJOR};
use crate::error::CollectError;
use crate::metrics::{Family, Sink};

const L: &[&str] = &["datname", "schemaname", "relname"];

static LIVE: Family = Family::gauge(
    "pg_table_live_tuples",
    "Estimated live rows (pg_stat_user_tables.n_live_tup).",
    L,
);
pub static DEAD: Family = Family::gauge(
    "pg_table_dead_tuples",
    "Estimated dead rows (pg_stat_user_tables.n_dead_tup); autovacuum vacuums when it exceeds pg_table_autovacuum_vacuum_trigger_tuples.",
    L,
);
pub static MODIFIED: Family = Family::gauge(
    "pg_table_modified_since_analyze_tuples",
    "Rows inserted, updated or deleted since the last analyze (pg_stat_user_tables.n_mod_since_analyze); autovacuum analyzes when it exceeds pg_table_autovacuum_analyze_trigger_tuples.",
    L,
);
pub static INSERTED: Family = Family::gauge(
    "pg_table_inserted_since_vacuum_tuples",
    "Rows inserted since the last vacuum (pg_stat_user_tables.n_ins_since_vacuum); autovacuum vacuums when it exceeds pg_table_autovacuum_insert_trigger_tuples.",
    L,
);
pub static LAST_VACUUM: Family = Family::gauge(
    "pg_table_last_vacuum_timestamp_seconds",
    "Unix time of the last manual VACUUM (pg_stat_user_tables.last_vacuum); absent if never.",
    L,
);
pub static LAST_AUTOVACUUM: Family = Family::gauge(
    "pg_table_last_autovacuum_timestamp_seconds",
    "Unix time of the last autovacuum (pg_stat_user_tables.last_autovacuum); absent if never.",
    L,
);
pub static LAST_ANALYZE: Family = Family::gauge(
    "pg_table_last_analyze_timestamp_seconds",
    "Unix time of the last manual ANALYZE (pg_stat_user_tables.last_analyze); absent if never.",
    L,
);
pub static LAST_AUTOANALYZE: Family = Family::gauge(
    "pg_table_last_autoanalyze_timestamp_seconds",
    "Unix time of the last autoanalyze (pg_stat_user_tables.last_autoanalyze); absent if never.",
    L,
);
static VACUUMS: Family = Family::counter(
    "pg_table_vacuums_total",
    "Manual VACUUMs of the table (pg_stat_user_tables.vacuum_count).",
    L,
);
static AUTOVACUUMS: Family = Family::counter(
    "pg_table_autovacuums_total",
    "Autovacuums of the table (pg_stat_user_tables.autovacuum_count).",
    L,
);
static ANALYZES: Family = Family::counter(
    "pg_table_analyzes_total",
    "Manual ANALYZEs of the table (pg_stat_user_tables.analyze_count).",
    L,
);
static AUTOANALYZES: Family = Family::counter(
    "pg_table_autoanalyzes_total",
    "Autoanalyzes of the table (pg_stat_user_tables.autoanalyze_count).",
    L,
);
static VACUUM_TIME: Family = Family::counter(
    "pg_table_vacuum_time_seconds_total",
    "Time spent in manual VACUUMs of the table (pg_stat_user_tables.total_vacuum_time, PostgreSQL 18+; ms converted to s).",
    L,
);
static AUTOVACUUM_TIME: Family = Family::counter(
    "pg_table_autovacuum_time_seconds_total",
    "Time spent in autovacuums of the table (pg_stat_user_tables.total_autovacuum_time, PostgreSQL 18+; ms converted to s).",
    L,
);
static ANALYZE_TIME: Family = Family::counter(
    "pg_table_analyze_time_seconds_total",
    "Time spent in manual ANALYZEs of the table (pg_stat_user_tables.total_analyze_time, PostgreSQL 18+; ms converted to s).",
    L,
);
static AUTOANALYZE_TIME: Family = Family::counter(
    "pg_table_autoanalyze_time_seconds_total",
    "Time spent in autoanalyzes of the table (pg_stat_user_tables.total_autoanalyze_time, PostgreSQL 18+; ms converted to s).",
    L,
);
static SEQ_SCANS: Family = Family::counter(
    "pg_table_seq_scans_total",
    "Sequential scans of the table (pg_stat_user_tables.seq_scan).",
    L,
);
static IDX_SCANS: Family = Family::counter(
    "pg_table_idx_scans_total",
    "Index scans on the table's indexes (pg_stat_user_tables.idx_scan); absent for a table without indexes.",
    L,
);
pub static FROZEN_AGE: Family = Family::gauge(
    "pg_table_frozen_xid_age",
    "Transactions since the table was last fully frozen: the greater of age(pg_class.relfrozenxid) of the heap and of its TOAST table; an anti-wraparound vacuum is forced past pg_table_autovacuum_freeze_max_age.",
    L,
);
static MIN_MXID_AGE: Family = Family::gauge(
    "pg_table_min_mxid_age",
    "MultiXact IDs since the table's oldest multixact: the greater of mxid_age(pg_class.relminmxid) of the heap and of its TOAST table; an anti-wraparound vacuum is forced past pg_table_autovacuum_multixact_freeze_max_age (earlier while the member space is over half full: pg_multixact_members_freeze_threshold).",
    L,
);
pub static VACUUM_TRIGGER: Family = Family::gauge(
    "pg_table_autovacuum_vacuum_trigger_tuples",
    "Dead tuples above which autovacuum vacuums the table: autovacuum_vacuum_threshold + autovacuum_vacuum_scale_factor * max(reltuples, 0), capped by autovacuum_vacuum_max_threshold on PostgreSQL 18+ (table reloptions override the settings).",
    L,
);
static INSERT_TRIGGER: Family = Family::gauge(
    "pg_table_autovacuum_insert_trigger_tuples",
    "Inserts since the last vacuum above which autovacuum vacuums the table: autovacuum_vacuum_insert_threshold + autovacuum_vacuum_insert_scale_factor * max(reltuples, 0) (times the unfrozen share of pages on PostgreSQL 18+); absent when the insert threshold is -1 (reloptions override the settings).",
    L,
);
static ANALYZE_TRIGGER: Family = Family::gauge(
    "pg_table_autovacuum_analyze_trigger_tuples",
    "Changed tuples since the last analyze above which autovacuum analyzes the table: autovacuum_analyze_threshold + autovacuum_analyze_scale_factor * max(reltuples, 0) (reloptions override the settings).",
    L,
);
pub static FREEZE_MAX_AGE: Family = Family::gauge(
    "pg_table_autovacuum_freeze_max_age",
    "The table's effective autovacuum_freeze_max_age (a reloption can only lower the setting); pg_table_frozen_xid_age / this is the way to a forced anti-wraparound vacuum.",
    L,
);
static MXID_FREEZE_MAX_AGE: Family = Family::gauge(
    "pg_table_autovacuum_multixact_freeze_max_age",
    "The table's autovacuum_multixact_freeze_max_age (a reloption can only lower the setting); PostgreSQL uses the lower of this and pg_multixact_members_freeze_threshold.",
    L,
);
pub static ENABLED: Family = Family::gauge(
    "pg_table_autovacuum_enabled",
    "1 if autovacuum may vacuum/analyze the table on its trigger points (autovacuum and track_counts on, reloption autovacuum_enabled not false), else 0; anti-wraparound vacuums run regardless.",
    L,
);
static OMITTED: Family = Family::gauge(
    "pgmaint_exporter_tables_omitted",
    "Tables that passed the schema/table filters but got no per-table series because of PGMAINT_MAX_TABLES_PER_DATABASE.",
    &["datname"],
);

static FAMILIES: &[&Family] = &[
    &LIVE,
    &DEAD,
    &MODIFIED,
    &INSERTED,
    &LAST_VACUUM,
    &LAST_AUTOVACUUM,
    &LAST_ANALYZE,
    &LAST_AUTOANALYZE,
    &VACUUMS,
    &AUTOVACUUMS,
    &ANALYZES,
    &AUTOANALYZES,
    &VACUUM_TIME,
    &AUTOVACUUM_TIME,
    &ANALYZE_TIME,
    &AUTOANALYZE_TIME,
    &SEQ_SCANS,
    &IDX_SCANS,
    &FROZEN_AGE,
    &VACUUM_TRIGGER,
    &INSERT_TRIGGER,
    &ANALYZE_TRIGGER,
    &FREEZE_MAX_AGE,
    &MIN_MXID_AGE,
    &MXID_FREEZE_MAX_AGE,
    &ENABLED,
    &OMITTED,
];

/// What `tables` is, once (see `Meta`).
const META: Meta = Meta {
    name: "tables",
    description: "Per-table tuples, vacuum/analyze history, frozen-xid age and autovacuum trigger points.",
    scope: Scope::PerDatabase,
    families: FAMILIES,
    min_major: MIN_SUPPORTED_MAJOR,
    default_enabled: true,
};

pub struct Tables;

impl Collector for Tables {
    fn meta(&self) -> &'static Meta {
        &META
    }
    fn source(&self, ctx: &Ctx) -> Source {
        Source::Sql(vec![selection::query(ctx)])
    }
    fn map(&self, ctx: &Ctx, input: &Fetched, out: &mut Sink) -> Result<(), CollectError> {
        let kept = selection::kept(ctx, input)?;
        let db = ctx.datname;
        out.gauge(&OMITTED, &[db], kept.omitted as f64);
        for row in input.rows(selection::NAME)? {
            let (schema, table) = (text_ref(row, 0)?, text_ref(row, 1)?);
            let Some(av) = kept.autovacuum(schema, table) else {
                continue;
            };
            let s = selection::stats(row)?;
            let l = &[db, schema, table];
            out.gauge(&LIVE, l, s.live);
            out.gauge(&DEAD, l, s.dead);
            out.gauge(&MODIFIED, l, s.modified);
            out.gauge(&INSERTED, l, s.inserted);
            // Never vacuumed/analyzed → no sample, never a 1970 timestamp.
            out.gauge_opt(&LAST_VACUUM, l, s.last_vacuum);
            out.gauge_opt(&LAST_AUTOVACUUM, l, s.last_autovacuum);
            out.gauge_opt(&LAST_ANALYZE, l, s.last_analyze);
            out.gauge_opt(&LAST_AUTOANALYZE, l, s.last_autoanalyze);
            out.counter(&VACUUMS, l, s.vacuums);
            out.counter(&AUTOVACUUMS, l, s.autovacuums);
            out.counter(&ANALYZES, l, s.analyzes);
            out.counter(&AUTOANALYZES, l, s.autoanalyzes);
            out.counter(&SEQ_SCANS, l, s.seq_scans);
            out.counter_opt(&IDX_SCANS, l, s.idx_scans);
            out.gauge(&FROZEN_AGE, l, s.frozen_age);
            out.counter_opt(&VACUUM_TIME, l, s.vacuum_time);
            out.counter_opt(&AUTOVACUUM_TIME, l, s.autovacuum_time);
            out.counter_opt(&ANALYZE_TIME, l, s.analyze_time);
            out.counter_opt(&AUTOANALYZE_TIME, l, s.autoanalyze_time);
            out.gauge(&VACUUM_TRIGGER, l, av.vacuum_trigger);
            out.gauge_opt(&INSERT_TRIGGER, l, av.insert_trigger);
            out.gauge(&ANALYZE_TRIGGER, l, av.analyze_trigger);
            out.gauge(&FREEZE_MAX_AGE, l, av.freeze_max_age);
            out.gauge(&MIN_MXID_AGE, l, s.min_mxid_age);
            out.gauge(&MXID_FREEZE_MAX_AGE, l, av.multixact_freeze_max_age);
            out.gauge(&ENABLED, l, if av.enabled { 1.0 } else { 0.0 });
        }
        Ok(())
    }
}
