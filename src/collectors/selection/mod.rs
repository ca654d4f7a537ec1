//! Which tables of a database get per-table series, and when autovacuum will
//! act on each: the cardinality controls and trigger points shared by
//! `tables`, `indexes` and `bloat`.
//!
//! `PGMAINT_INCLUDE_SCHEMAS` / `PGMAINT_EXCLUDE_SCHEMAS` / `PGMAINT_EXCLUDE_TABLES`
//! (full-match regexes, applied here in Rust so the syntax is one everywhere)
//! filter first; then `PGMAINT_MAX_TABLES_PER_DATABASE` keeps every table that
//! needs attention, then the largest. What is left out is counted, never
//! silently dropped. Each collector runs `query()` beside its own queries
//! (pipelined on the same connection) and calls `kept()`, so all three agree.
//!
//! "Needs attention" uses the same per-table trigger points `tables` publishes
//! (`Autovacuum`): they are computed once, here, from the global settings and
//! the table's reloptions, following `relation_needs_vacanalyze()` in
//! PostgreSQL's src/backend/postmaster/autovacuum.c.

use rustc_hash::FxHashMap;

use crate::collectors::{num, num_req, text_ref, Ctx, Fetched, Query};
use crate::error::CollectError;

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
/// the heap and the TOAST table. The counters are read with the pg_stat_get_* functions, not
/// pg_stat_user_tables, whose per-table index join we do not need here.
///
/// NULL only means "does not exist" here: relallfrozen before 18,
/// autovacuum_vacuum_max_threshold before 18, and the TOAST columns of a
/// table without one. Every other column is never NULL and read with
/// `num_req`: pg_class.reltuples/relpages are NOT NULL, the pg_stat_get_*
/// counters return 0 without a statistics entry (pgstatfuncs.c), age() and
/// mxid_age() return INT_MAX for a permanent id (xid.c), current_setting()
/// without missing_ok errors instead of returning NULL, and the size
/// coalesces the TOAST and index pages to 0 because a table without a TOAST
/// table or indexes has no pages there.
const SQL: &str = "WITH g AS (
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
  SELECT i.indrelid, sum(ic.relpages)::float8 AS relpages
    FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
   GROUP BY i.indrelid
)
SELECT n.nspname::text, c.relname::text, c.reltuples::float8, c.reloptions::text[],
       pg_stat_get_dead_tuples(c.oid)::float8,
       pg_stat_get_ins_since_vacuum(c.oid)::float8,
       pg_stat_get_mod_since_analyze(c.oid)::float8,
       (v.indrelid IS NOT NULL),
       age(c.relfrozenxid)::float8,
       -- No TOAST table or no index: no pages there, 0.
       (c.relpages + coalesce(t.relpages, 0) + coalesce(idx.relpages, 0))::float8
         * current_setting('block_size')::float8,
       c.relpages::float8,
       CASE WHEN g.has_allfrozen THEN (to_jsonb(c) ->> 'relallfrozen')::float8 END,
       g.active, g.vac_thresh, g.vac_scale, g.ins_thresh, g.ins_scale,
       g.anl_thresh, g.anl_scale, g.freeze_max_age, g.vac_max_thresh,
       age(t.relfrozenxid)::float8, t.reloptions::text[],
       g.mxid_freeze_max_age, mxid_age(c.relminmxid)::float8, mxid_age(t.relminmxid)::float8
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

/// How many of the oldest-relfrozenxid tables always count as needing attention.
const OLDEST_FROZEN_KEPT: usize = 10;

pub fn query() -> Query {
    Query::new(NAME, SQL)
}

/// The server-wide autovacuum settings (GUCs).
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// `autovacuum` and `track_counts` both on (PostgreSQL's AutoVacuumingActive()).
    pub active: bool,
    pub vacuum_threshold: f64,
    pub vacuum_scale_factor: f64,
    /// -1 disables insert-triggered vacuums.
    pub insert_threshold: f64,
    pub insert_scale_factor: f64,
    pub analyze_threshold: f64,
    pub analyze_scale_factor: f64,
    pub freeze_max_age: f64,
    /// `autovacuum_vacuum_max_threshold` (PostgreSQL 18+; -1 disables the cap).
    pub vacuum_max_threshold: Option<f64>,
    /// `autovacuum_multixact_freeze_max_age`.
    pub multixact_freeze_max_age: f64,
}

impl Default for Settings {
    /// PostgreSQL's defaults (for tests).
    fn default() -> Settings {
        Settings {
            active: true,
            vacuum_threshold: 50.0,
            vacuum_scale_factor: 0.2,
            insert_threshold: 1000.0,
            insert_scale_factor: 0.2,
            analyze_threshold: 50.0,
            analyze_scale_factor: 0.1,
            freeze_max_age: 200_000_000.0,
            vacuum_max_threshold: None,
            multixact_freeze_max_age: 400_000_000.0,
        }
    }
}

/// The autovacuum storage parameters set on one table (pg_class.reloptions).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RelOptions {
    pub enabled: Option<bool>,
    pub vacuum_threshold: Option<f64>,
    pub vacuum_scale_factor: Option<f64>,
    pub vacuum_max_threshold: Option<f64>,
    pub insert_threshold: Option<f64>,
    pub insert_scale_factor: Option<f64>,
    pub analyze_threshold: Option<f64>,
    pub analyze_scale_factor: Option<f64>,
    pub freeze_max_age: Option<f64>,
    pub multixact_freeze_max_age: Option<f64>,
}

impl RelOptions {
    /// Parses `{autovacuum_vacuum_threshold=10,fillfactor=90}`-style entries;
    /// other options and unparsable values are ignored (PostgreSQL validated
    /// them when they were set).
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> RelOptions {
        let mut o = RelOptions::default();
        for e in entries {
            let Some((k, v)) = e.as_ref().split_once('=') else {
                continue;
            };
            let f = v.trim().parse::<f64>().ok();
            match k.trim() {
                "autovacuum_enabled" => o.enabled = parse_bool(v),
                "autovacuum_vacuum_threshold" => o.vacuum_threshold = f,
                "autovacuum_vacuum_scale_factor" => o.vacuum_scale_factor = f,
                "autovacuum_vacuum_max_threshold" => o.vacuum_max_threshold = f,
                "autovacuum_vacuum_insert_threshold" => o.insert_threshold = f,
                "autovacuum_vacuum_insert_scale_factor" => o.insert_scale_factor = f,
                "autovacuum_analyze_threshold" => o.analyze_threshold = f,
                "autovacuum_analyze_scale_factor" => o.analyze_scale_factor = f,
                "autovacuum_freeze_max_age" => o.freeze_max_age = f,
                "autovacuum_multixact_freeze_max_age" => o.multixact_freeze_max_age = f,
                _ => {}
            }
        }
        o
    }
}

/// PostgreSQL's parse_bool: true/false/yes/no/on/off/1/0 and unique prefixes,
/// case-insensitive.
fn parse_bool(v: &str) -> Option<bool> {
    let v = v.trim().to_ascii_lowercase();
    let prefix_of = |word: &str, min: usize| v.len() >= min && word.starts_with(v.as_str());
    if prefix_of("true", 1) || prefix_of("yes", 1) || prefix_of("on", 2) || v == "1" {
        Some(true)
    } else if prefix_of("false", 1) || prefix_of("no", 1) || prefix_of("off", 2) || v == "0" {
        Some(false)
    } else {
        None
    }
}

/// When autovacuum will act on one table.
#[derive(Debug, Clone, PartialEq)]
pub struct Autovacuum {
    /// Global autovacuum active and the table's `autovacuum_enabled` not false.
    pub enabled: bool,
    /// Dead tuples above this start a vacuum.
    pub vacuum_trigger: f64,
    /// Tuples inserted since the last vacuum above this start a vacuum (None: disabled).
    pub insert_trigger: Option<f64>,
    /// Tuples changed since the last analyze above this start an analyze.
    pub analyze_trigger: f64,
    /// relfrozenxid age at which an anti-wraparound vacuum of the heap is
    /// forced (its TOAST table may have a reloption of its own).
    pub freeze_max_age: f64,
    /// relminmxid age at which an anti-wraparound vacuum is forced: the
    /// setting, or a lower reloption. PostgreSQL lowers it further while the
    /// MultiXact member space is over half full
    /// (`pg_multixact_members_freeze_threshold`).
    pub multixact_freeze_max_age: f64,
}

impl Autovacuum {
    /// The trigger points of relation_needs_vacanalyze(). A reloption set to
    /// a negative value (only possible for the insert and max thresholds,
    /// where -1 means "disabled") is honoured, otherwise the GUC applies.
    /// `reltuples` < 0 (never vacuumed or analyzed) counts as 0. On
    /// PostgreSQL 18 the insert scale factor applies to the unfrozen part of
    /// the table only (`relallfrozen` / `relpages`).
    pub fn compute(
        g: &Settings,
        o: &RelOptions,
        reltuples: f64,
        relpages: f64,
        relallfrozen: Option<f64>,
    ) -> Autovacuum {
        let or = |opt: Option<f64>, global: f64| opt.filter(|v| *v >= 0.0).unwrap_or(global);
        let reltuples = reltuples.max(0.0);
        let unfrozen = match relallfrozen {
            Some(frozen) if relpages > 0.0 && frozen > 0.0 => 1.0 - frozen.min(relpages) / relpages,
            _ => 1.0,
        };

        let mut vacuum_trigger = or(o.vacuum_threshold, g.vacuum_threshold)
            + or(o.vacuum_scale_factor, g.vacuum_scale_factor) * reltuples;
        let max = o
            .vacuum_max_threshold
            .filter(|v| *v >= -1.0)
            .or(g.vacuum_max_threshold);
        if let Some(max) = max.filter(|m| *m >= 0.0) {
            vacuum_trigger = vacuum_trigger.min(max);
        }

        let insert_threshold = o
            .insert_threshold
            .filter(|v| *v >= -1.0)
            .unwrap_or(g.insert_threshold);
        let insert_trigger = (insert_threshold >= 0.0).then(|| {
            insert_threshold + or(o.insert_scale_factor, g.insert_scale_factor) * reltuples * unfrozen
        });

        Autovacuum {
            enabled: g.active && o.enabled.unwrap_or(true),
            vacuum_trigger,
            insert_trigger,
            analyze_trigger: or(o.analyze_threshold, g.analyze_threshold)
                + or(o.analyze_scale_factor, g.analyze_scale_factor) * reltuples,
            freeze_max_age: freeze_max_age(g, o),
            multixact_freeze_max_age: multixact_freeze_max_age(g, o),
        }
    }
}

/// relation_needs_vacanalyze()'s freeze_max_age: a reloption can only lower
/// the setting.
pub fn freeze_max_age(g: &Settings, o: &RelOptions) -> f64 {
    match o.freeze_max_age.filter(|v| *v >= 0.0) {
        Some(v) => v.min(g.freeze_max_age),
        None => g.freeze_max_age,
    }
}

/// relation_needs_vacanalyze()'s multixact_freeze_max_age, before the
/// member-space lowering: a reloption can only lower the setting.
pub fn multixact_freeze_max_age(g: &Settings, o: &RelOptions) -> f64 {
    match o.multixact_freeze_max_age.filter(|v| *v >= 0.0) {
        Some(v) => v.min(g.multixact_freeze_max_age),
        None => g.multixact_freeze_max_age,
    }
}

/// Whether a table's XID (or MultiXact) age forces an anti-wraparound
/// vacuum: its heap's age past the heap's freeze max age, or its TOAST
/// table's past the TOAST table's (its own reloptions, else the heap's, as
/// do_autovacuum() does).
pub fn age_forces_vacuum(heap_age: f64, heap_max: f64, toast: Option<(f64, f64)>) -> bool {
    heap_age > heap_max || toast.is_some_and(|(age, max)| age > max)
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

    #[test]
    fn defaults_follow_the_gucs() {
        let a = av(&[], 1000.0);
        assert_eq!(a.vacuum_trigger, 50.0 + 0.2 * 1000.0);
        assert_eq!(a.insert_trigger, Some(1000.0 + 0.2 * 1000.0));
        assert_eq!(a.analyze_trigger, 50.0 + 0.1 * 1000.0);
        assert_eq!(a.freeze_max_age, 200_000_000.0);
        assert!(a.enabled);
    }

    #[test]
    fn never_analyzed_counts_as_empty() {
        let a = av(&[], -1.0);
        assert_eq!((a.vacuum_trigger, a.analyze_trigger), (50.0, 50.0));
        assert_eq!(a.insert_trigger, Some(1000.0));
    }

    #[test]
    fn reloptions_override_the_gucs() {
        let a = av(
            &[
                "fillfactor=90",
                "autovacuum_vacuum_threshold=10",
                "autovacuum_vacuum_scale_factor=0",
                "autovacuum_analyze_threshold=5",
                "autovacuum_analyze_scale_factor=0.5",
                "autovacuum_vacuum_insert_threshold=-1",
                "autovacuum_enabled=OFF",
            ],
            1000.0,
        );
        assert_eq!(a.vacuum_trigger, 10.0);
        assert_eq!(a.analyze_trigger, 505.0);
        assert_eq!(a.insert_trigger, None);
        assert!(!a.enabled);
    }

    #[test]
    fn freeze_max_age_reloption_can_only_lower_it() {
        assert_eq!(
            av(&["autovacuum_freeze_max_age=150000000"], 0.0).freeze_max_age,
            150e6
        );
        assert_eq!(
            av(&["autovacuum_freeze_max_age=900000000"], 0.0).freeze_max_age,
            200e6
        );
    }

    #[test]
    fn global_switch_and_insert_disable() {
        let g = Settings {
            active: false,
            insert_threshold: -1.0,
            ..Settings::default()
        };
        let a = Autovacuum::compute(&g, &RelOptions::default(), 10.0, 0.0, None);
        assert!(!a.enabled);
        assert_eq!(a.insert_trigger, None);
        // A table can switch insert vacuums back on for itself.
        let o = RelOptions::parse(&["autovacuum_vacuum_insert_threshold=100"]);
        assert_eq!(
            Autovacuum::compute(&g, &o, 10.0, 0.0, None).insert_trigger,
            Some(102.0)
        );
    }

    #[test]
    fn pg18_max_threshold_and_unfrozen_share() {
        let g = Settings {
            vacuum_max_threshold: Some(100_000_000.0),
            ..Settings::default()
        };
        let big = 1e10;
        let a = Autovacuum::compute(&g, &RelOptions::default(), big, 0.0, None);
        assert_eq!(a.vacuum_trigger, 100_000_000.0);
        // The table's own max threshold wins; -1 disables the cap.
        let o = RelOptions::parse(&["autovacuum_vacuum_max_threshold=500"]);
        assert_eq!(Autovacuum::compute(&g, &o, big, 0.0, None).vacuum_trigger, 500.0);
        let o = RelOptions::parse(&["autovacuum_vacuum_max_threshold=-1"]);
        assert_eq!(
            Autovacuum::compute(&g, &o, big, 0.0, None).vacuum_trigger,
            50.0 + 0.2 * big
        );
        // Three quarters all-frozen: the insert scale factor applies to a quarter.
        let a = Autovacuum::compute(&g, &RelOptions::default(), 1000.0, 100.0, Some(75.0));
        assert_eq!(a.insert_trigger, Some(1000.0 + 0.2 * 1000.0 * 0.25));
        let a = Autovacuum::compute(&g, &RelOptions::default(), 1000.0, 100.0, Some(500.0));
        assert_eq!(a.insert_trigger, Some(1000.0));
    }

    #[test]
    fn booleans_like_postgres() {
        for (v, b) in [
            ("on", true),
            ("t", true),
            ("YES", true),
            ("1", true),
            ("of", false),
            ("f", false),
        ] {
            assert_eq!(parse_bool(v), Some(b), "{v}");
        }
        assert_eq!(parse_bool("o"), None);
        assert_eq!(parse_bool("maybe"), None);
    }

    #[test]
    fn multixact_freeze_max_age_reloption_can_only_lower_it() {
        assert_eq!(av(&[], 0.0).multixact_freeze_max_age, 400e6);
        let low = av(&["autovacuum_multixact_freeze_max_age=10000"], 0.0);
        assert_eq!(low.multixact_freeze_max_age, 10_000.0);
        // A relminmxid age past it forces a vacuum (the same test as xids).
        assert!(age_forces_vacuum(12_000.0, low.multixact_freeze_max_age, None));
        let high = av(&["autovacuum_multixact_freeze_max_age=900000000"], 0.0);
        assert_eq!(high.multixact_freeze_max_age, 400e6);
    }

    #[test]
    fn a_toast_table_past_its_own_freeze_max_age_forces_a_vacuum() {
        // Heap freshly frozen, TOAST table old: that is a forced vacuum.
        assert!(age_forces_vacuum(10.0, 200e6, Some((250e6, 200e6))));
        // A TOAST table with a lower reloption of its own.
        let g = Settings::default();
        let toast_max = freeze_max_age(&g, &RelOptions::parse(&["autovacuum_freeze_max_age=100000"]));
        assert_eq!(toast_max, 100_000.0);
        assert!(age_forces_vacuum(10.0, 200e6, Some((150_000.0, toast_max))));
        assert!(!age_forces_vacuum(10.0, 200e6, Some((50_000.0, toast_max))));
        assert!(!age_forces_vacuum(10.0, 200e6, None));
        assert!(age_forces_vacuum(300e6, 200e6, None));
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
