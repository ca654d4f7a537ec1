//! Which tables of a database get per-table series, and when autovacuum will
//! act on each: the cardinality controls and trigger points shared by
//! `tables`, `indexes`, `sizes` and `bloat`. The same single pass over
//! pg_class also reads every pg_stat_user_tables column `tables` publishes,
//! so `tables` has no query of its own (`stats()`).
//!
//! `PGMAINT_INCLUDE_SCHEMAS` / `PGMAINT_EXCLUDE_SCHEMAS` / `PGMAINT_EXCLUDE_TABLES`
//! (full-match regexes, applied here in Rust so the syntax is one everywhere)
//! filter first; then `PGMAINT_MAX_TABLES_PER_DATABASE` keeps every table that
//! needs attention, then the largest. What is left out is counted, never
//! silently dropped. Each collector runs `query()` beside its own queries
//! (pipelined on the same connection) and calls `kept()`, so they all agree.
//!
//! "Needs attention" uses the same per-table trigger points `tables` publishes
//! (`Autovacuum`): they are computed once, here, from the global settings and
//! the table's reloptions, following `relation_needs_vacanalyze()` in
//! PostgreSQL's src/backend/postmaster/autovacuum.c.

mod autovacuum;

use const_format::concatcp;
use rustc_hash::FxHashMap;

use crate::collectors::{num, num_req, text_ref, Ctx, Fetched, Query};
use crate::error::CollectError;
use crate::rows::Row;

pub use autovacuum::{
    age_forces_vacuum, freeze_max_age, multixact_freeze_max_age, Autovacuum, RelOptions, Settings,
};

/// Query name used in `Fetched`.
pub const NAME: &str = "selection";

/// One row per user table or materialized view (partitioned parents have no
/// statistics of their own and are left out): schema, name, reltuples,
/// reloptions, the three autovacuum counters, whether it has an invalid index,
/// the age of relfrozenxid, its size estimated from relpages (cheap: no
/// file-system calls, no locks), relpages and relallfrozen (PostgreSQL 18+,
/// read through to_jsonb so one text serves every version), then the global
/// autovacuum settings (the same on every row), then the TOAST table's
/// relfrozenxid age and reloptions (NULL without one: autovacuum vacuums a
/// TOAST table on its own, with its own reloptions, or its parent's when it
/// has none), autovacuum_multixact_freeze_max_age, and the relminmxid ages of
/// the heap and the TOAST table; then (`STATS`) the rest of what `tables`
/// publishes from pg_stat_user_tables, and (`SQL_14`/`SQL_18`) the four
/// vacuum/analyze time totals. The counters are read with the pg_stat_get_*
/// functions that define pg_stat_all_tables (system_views.sql), not the
/// view: the view's rewrite and its GROUP BY over pg_index cost planning
/// time on every fresh connection, and `tables` needs no second pass over
/// pg_class (issue 22).
///
/// NULL only means "does not exist" or "never" here: relallfrozen before 18,
/// autovacuum_vacuum_max_threshold before 18, the TOAST columns of a
/// table without one, the last vacuum/analyze timestamps of a table never
/// vacuumed/analyzed, idx_scan of a table without indexes (the view's
/// sum() over no pg_index rows) and the time totals before 18. Every other
/// column is never NULL and read with `num_req`: pg_class.reltuples/relpages
/// are NOT NULL, the pg_stat_get_* counters return 0 without a statistics
/// entry (pgstatfuncs.c), age() and mxid_age() return INT_MAX for a
/// permanent id (xid.c), current_setting() without missing_ok errors instead
/// of returning NULL, and the size coalesces the TOAST and index pages to 0
/// because a table without a TOAST table or indexes has no pages there.
const HEAD: &str = "WITH g AS (
  SELECT current_setting('autovacuum')::bool AND current_setting('track_counts')::bool AS active,
         current_setting('autovacuum_vacuum_threshold')::float8 AS vac_thresh,
         current_setting('autovacuum_vacuum_scale_factor')::float8 AS vac_scale,
         current_setting('autovacuum_vacuum_insert_threshold')::float8 AS ins_thresh,
         current_setting('autovacuum_vacuum_insert_scale_factor')::float8 AS ins_scale,
         current_setting('autovacuum_analyze_threshold')::float8 AS anl_thresh,
         current_setting('autovacuum_analyze_scale_factor')::float8 AS anl_scale,
         current_setting('autovacuum_freeze_max_age')::float8 AS freeze_max_age,
         current_setting('autovacuum_multixact_freeze_max_age')::float8 AS mxid_freeze_max_age,
         current_setting('autovacuum_vacuum_max_threshold', true)::float8 AS vac_max_thresh,
         current_setting('server_version_num')::int >= 180000 AS has_allfrozen
), invalid AS (
  SELECT DISTINCT indrelid FROM pg_index WHERE NOT indisvalid
), idx AS (
  SELECT i.indrelid, sum(ic.relpages)::float8 AS relpages,
         /* an index lives in its table's schema: no statistics look-up for
            the catalogs' and TOAST tables' indexes, whose rows are left out */
         (sum(pg_stat_get_numscans(i.indexrelid))
            FILTER (WHERE ic.relnamespace NOT IN ('pg_catalog'::regnamespace, 'pg_toast'::regnamespace)))::float8 AS scans
    FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
   GROUP BY i.indrelid
)
SELECT n.nspname::text, c.relname::text, c.reltuples::float8, c.reloptions::text[],
       pg_stat_get_dead_tuples(c.oid)::float8,
       pg_stat_get_ins_since_vacuum(c.oid)::float8,
       pg_stat_get_mod_since_analyze(c.oid)::float8,
       (v.indrelid IS NOT NULL),
       age(c.relfrozenxid)::float8,
       /* no TOAST table or no index: no pages there */
       (c.relpages + coalesce(t.relpages, 0) + coalesce(idx.relpages, 0))::float8
         * current_setting('block_size')::float8,
       c.relpages::float8,
       CASE WHEN g.has_allfrozen THEN (to_jsonb(c) ->> 'relallfrozen')::float8 END,
       g.active, g.vac_thresh, g.vac_scale, g.ins_thresh, g.ins_scale,
       g.anl_thresh, g.anl_scale, g.freeze_max_age, g.vac_max_thresh,
       age(t.relfrozenxid)::float8, t.reloptions::text[],
       g.mxid_freeze_max_age, mxid_age(c.relminmxid)::float8, mxid_age(t.relminmxid)::float8,
       ";

/// pg_stat_all_tables' n_live_tup, last_(auto)vacuum/(auto)analyze as epoch
/// seconds, the four counts, seq_scan and idx_scan (from 26 on).
const STATS: &str = "pg_stat_get_live_tuples(c.oid)::float8,
       extract(epoch FROM pg_stat_get_last_vacuum_time(c.oid))::float8,
       extract(epoch FROM pg_stat_get_last_autovacuum_time(c.oid))::float8,
       extract(epoch FROM pg_stat_get_last_analyze_time(c.oid))::float8,
       extract(epoch FROM pg_stat_get_last_autoanalyze_time(c.oid))::float8,
       pg_stat_get_vacuum_count(c.oid)::float8, pg_stat_get_autovacuum_count(c.oid)::float8,
       pg_stat_get_analyze_count(c.oid)::float8, pg_stat_get_autoanalyze_count(c.oid)::float8,
       pg_stat_get_numscans(c.oid)::float8, idx.scans,
       ";

/// The tables, with their TOAST table and index aggregates.
const TAIL: &str = "
  FROM pg_class c
  JOIN pg_namespace n ON n.oid = c.relnamespace
  CROSS JOIN g
  LEFT JOIN pg_class t ON t.oid = c.reltoastrelid
  LEFT JOIN invalid v ON v.indrelid = c.oid
  LEFT JOIN idx ON idx.indrelid = c.oid
 WHERE c.relkind IN ('r', 'm')
   AND n.nspname NOT IN ('pg_catalog', 'information_schema')
   AND n.nspname !~ '^pg_toast'
   AND n.nspname NOT LIKE 'pg_temp%'";

/// PostgreSQL 14–17: no vacuum/analyze time totals.
const SQL_14: &str = concatcp!(
    HEAD,
    STATS,
    "NULL::float8, NULL::float8, NULL::float8, NULL::float8",
    TAIL
);

/// PostgreSQL 18+: the time spent in each kind of vacuum and analyze (ms
/// converted to s), as pg_stat_all_tables.total_*_time.
const SQL_18: &str = concatcp!(
    HEAD,
    STATS,
    "pg_stat_get_total_vacuum_time(c.oid) / 1000, pg_stat_get_total_autovacuum_time(c.oid) / 1000,
       pg_stat_get_total_analyze_time(c.oid) / 1000, pg_stat_get_total_autoanalyze_time(c.oid) / 1000",
    TAIL
);

/// How many of the oldest-relfrozenxid tables always count as needing attention.
const OLDEST_FROZEN_KEPT: usize = 10;

/// The selection for this server. Every collector that needs it asks for
/// the same text, so a scrape runs it once per database.
pub fn query(ctx: &Ctx) -> Query {
    Query::new(NAME, if ctx.server.major() >= 18 { SQL_18 } else { SQL_14 })
}

/// What `tables` publishes of a selection row beside the trigger points:
/// pg_stat_user_tables' columns and the XID/MultiXact ages.
#[derive(Debug)]
pub struct Stats {
    pub live: f64,
    pub dead: f64,
    pub modified: f64,
    pub inserted: f64,
    /// Epoch seconds; None: never.
    pub last_vacuum: Option<f64>,
    pub last_autovacuum: Option<f64>,
    pub last_analyze: Option<f64>,
    pub last_autoanalyze: Option<f64>,
    pub vacuums: f64,
    pub autovacuums: f64,
    pub analyzes: f64,
    pub autoanalyzes: f64,
    pub seq_scans: f64,
    /// None: the table has no index.
    pub idx_scans: Option<f64>,
    /// Seconds; None before PostgreSQL 18.
    pub vacuum_time: Option<f64>,
    pub autovacuum_time: Option<f64>,
    pub analyze_time: Option<f64>,
    pub autoanalyze_time: Option<f64>,
    /// The older of the heap's and the TOAST table's relfrozenxid.
    pub frozen_age: f64,
    /// The older of the heap's and the TOAST table's relminmxid.
    pub min_mxid_age: f64,
}

/// Reads `Stats` from a row of `query()`.
pub fn stats(row: Row<'_>) -> Result<Stats, CollectError> {
    let older = |heap: f64, toast: Option<f64>| toast.map_or(heap, |t| t.max(heap));
    Ok(Stats {
        live: num_req(row, 26)?,
        dead: num_req(row, 4)?,
        modified: num_req(row, 6)?,
        inserted: num_req(row, 5)?,
        last_vacuum: num(row, 27)?,
        last_autovacuum: num(row, 28)?,
        last_analyze: num(row, 29)?,
        last_autoanalyze: num(row, 30)?,
        vacuums: num_req(row, 31)?,
        autovacuums: num_req(row, 32)?,
        analyzes: num_req(row, 33)?,
        autoanalyzes: num_req(row, 34)?,
        seq_scans: num_req(row, 35)?,
        idx_scans: num(row, 36)?,
        vacuum_time: num(row, 37)?,
        autovacuum_time: num(row, 38)?,
        analyze_time: num(row, 39)?,
        autoanalyze_time: num(row, 40)?,
        frozen_age: older(num_req(row, 8)?, num(row, 21)?),
        min_mxid_age: older(num_req(row, 24)?, num(row, 25)?),
    })
}

/// The tables that get series, their trigger points, and how many were left
/// out by the cap.
#[derive(Debug, Default)]
pub struct Kept<'a> {
    /// schema → table → trigger points, borrowing the names from the
    /// selection's rows (nested so lookups by `&str` allocate nothing).
    tables: FxHashMap<&'a str, FxHashMap<&'a str, Autovacuum>>,
    kept: usize,
    /// Tables that passed the schema/table filters but not the cap.
    pub omitted: usize,
}

impl Kept<'_> {
    pub fn contains(&self, schema: &str, table: &str) -> bool {
        self.autovacuum(schema, table).is_some()
    }
    /// The autovacuum trigger points of a kept table.
    pub fn autovacuum(&self, schema: &str, table: &str) -> Option<&Autovacuum> {
        self.tables.get(schema)?.get(table)
    }
    pub fn len(&self) -> usize {
        self.kept
    }
    pub fn is_empty(&self) -> bool {
        self.kept == 0
    }
}

/// Whether the schema/table filters let a table through.
pub fn wanted(ctx: &Ctx, schema: &str, table: &str) -> bool {
    let c = ctx.config;
    (c.include_schemas.is_empty() || c.include_schemas.iter().any(|r| r.is_match(schema)))
        && !c.exclude_schemas.iter().any(|r| r.is_match(schema))
        && !c
            .exclude_tables
            .iter()
            .any(|r| r.is_match(table) || r.is_match(&format!("{schema}.{table}")))
}

/// One table as `kept()` weighs it.
struct Cand<'a> {
    key: (&'a str, &'a str),
    av: Autovacuum,
    attention: bool,
    frozen_age: f64,
    bytes: f64,
}

/// Applies filters and the cap to the rows of `query()`.
pub fn kept<'a>(ctx: &Ctx, input: &'a Fetched) -> Result<Kept<'a>, CollectError> {
    let rows = input.rows(NAME)?;
    let mut cands = Vec::with_capacity(rows.len());
    for row in rows {
        let (schema, table) = (text_ref(row, 0)?, text_ref(row, 1)?);
        if !wanted(ctx, schema, table) {
            continue;
        }
        let g = Settings {
            active: row.try_get::<_, bool>(12)?,
            vacuum_threshold: num_req(row, 13)?,
            vacuum_scale_factor: num_req(row, 14)?,
            insert_threshold: num_req(row, 15)?,
            insert_scale_factor: num_req(row, 16)?,
            analyze_threshold: num_req(row, 17)?,
            analyze_scale_factor: num_req(row, 18)?,
            freeze_max_age: num_req(row, 19)?,
            vacuum_max_threshold: num(row, 20)?,
            multixact_freeze_max_age: num_req(row, 23)?,
        };
        let opts: Vec<&str> = row.try_get::<_, Option<Vec<&str>>>(3)?.unwrap_or_default();
        let av = Autovacuum::compute(
            &g,
            &RelOptions::parse(&opts),
            num_req(row, 2)?,
            num_req(row, 10)?,
            num(row, 11)?,
        );
        let (dead, inserted, modified) = (num_req(row, 4)?, num_req(row, 5)?, num_req(row, 6)?);
        let invalid_index = row.try_get::<_, bool>(7)?;
        let heap_age = num_req(row, 8)?;
        // A TOAST table's own reloptions, else its heap's (do_autovacuum()).
        let toast_opts: Option<RelOptions> = row
            .try_get::<_, Option<Vec<&str>>>(22)?
            .map(|o| RelOptions::parse(&o));
        let toast = match num(row, 21)? {
            Some(age) => {
                let max = match &toast_opts {
                    Some(o) => freeze_max_age(&g, o),
                    None => av.freeze_max_age,
                };
                Some((age, max))
            }
            None => None,
        };
        let toast_mxid = match num(row, 25)? {
            Some(age) => {
                let max = match &toast_opts {
                    Some(o) => multixact_freeze_max_age(&g, o),
                    None => av.multixact_freeze_max_age,
                };
                Some((age, max))
            }
            None => None,
        };
        // The age `tables` exports: the older of heap and TOAST.
        let frozen_age = toast.map_or(heap_age, |(age, _)| age.max(heap_age));
        let attention = dead > av.vacuum_trigger
            || av.insert_trigger.is_some_and(|t| inserted > t)
            || modified > av.analyze_trigger
            || age_forces_vacuum(heap_age, av.freeze_max_age, toast)
            || age_forces_vacuum(num_req(row, 24)?, av.multixact_freeze_max_age, toast_mxid)
            || invalid_index;
        cands.push(Cand {
            key: (schema, table),
            av,
            attention,
            frozen_age,
            bytes: num_req(row, 9)?,
        });
    }
    Ok(cap(cands, ctx.config.max_tables_per_database))
}

/// Keeps tables needing attention (plus the oldest relfrozenxid ones, where
/// wraparound hits first), then the largest, up to `cap`.
fn cap(mut cands: Vec<Cand<'_>>, cap: usize) -> Kept<'_> {
    let mut by_age: Vec<usize> = (0..cands.len()).collect();
    by_age.sort_by(|&a, &b| cands[b].frozen_age.total_cmp(&cands[a].frozen_age));
    for &i in by_age.iter().take(OLDEST_FROZEN_KEPT) {
        cands[i].attention = true;
    }
    cands.sort_by(|a, b| b.attention.cmp(&a.attention).then(b.bytes.total_cmp(&a.bytes)));
    let omitted = cands.len().saturating_sub(cap);
    let mut tables: FxHashMap<&str, FxHashMap<&str, Autovacuum>> = FxHashMap::default();
    let mut kept = 0;
    for c in cands.into_iter().take(cap) {
        let (schema, table) = c.key;
        tables.entry(schema).or_default().insert(table, c.av);
        kept += 1;
    }
    Kept {
        tables,
        omitted,
        kept,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn av(o: &[&str], reltuples: f64) -> Autovacuum {
        Autovacuum::compute(&Settings::default(), &RelOptions::parse(o), reltuples, 0.0, None)
    }

    fn cand(name: &str, attention: bool, frozen_age: f64, bytes: f64) -> Cand<'_> {
        Cand {
            key: ("public", name),
            av: av(&[], 0.0),
            attention,
            frozen_age,
            bytes,
        }
    }

    #[test]
    fn cap_keeps_attention_then_oldest_then_largest() {
        let names: Vec<String> = (0..30).map(|i| format!("big{i}")).collect();
        let mut cands: Vec<Cand> = names
            .iter()
            .enumerate()
            .map(|(i, n)| cand(n, false, 100.0, 1e6 + i as f64))
            .collect();
        cands.push(cand("small_dirty", true, 100.0, 8192.0));
        cands.push(cand("small_old", false, 1e9, 8192.0));
        let k = cap(cands, 12);
        assert_eq!((k.len(), k.omitted), (12, 20));
        assert!(k.contains("public", "small_dirty") && k.contains("public", "small_old"));
        assert!(k.autovacuum("public", "small_dirty").is_some());
    }
}
