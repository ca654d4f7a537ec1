//! `indexes`: per-index scans and three verdicts — unused, invalid,
//! duplicate — for the indexes of the tables `selection::kept()` keeps.
//! Source: pg_stat_user_indexes, pg_index, pg_constraint,
//! pg_stat_database.stats_reset. Scope: every database. PostgreSQL 14+.
//!
//! "Unused" means no scan since the statistics were last reset, so the reset
//! time is published too (`pg_index_stats_reset_timestamp_seconds`): an index
//! unused for a day after a reset says little.

use std::collections::HashSet;

use rustc_hash::FxHashMap;

use crate::collectors::selection;
use crate::collectors::{num, num0, text_ref, Collector, Ctx, Fetched, Query, Scope, Source};
use crate::error::CollectError;
use crate::metrics::{Family, Sink};

/// One row per index of a user table: its counters, whether it is
/// valid, what it enforces, and what it is made of (columns, operator
/// classes, collations, sort options, expressions, predicate) for finding
/// duplicates. No size functions here: they take locks and stat files, so
/// sizes come from the cached `sizes` collector.
const SQL: &str = "WITH constraint_indexes AS (
  SELECT DISTINCT conindid FROM pg_constraint WHERE conindid <> 0
)
SELECT s.schemaname::text, s.relname::text, s.indexrelname::text,
       s.idx_scan::float8, s.idx_tup_read::float8, s.idx_tup_fetch::float8,
       i.indisvalid, i.indisprimary, i.indisunique, i.indisexclusion,
       (k.conindid IS NOT NULL),
       i.indexrelid, i.indrelid,
       i.indkey::text, i.indclass::text, i.indcollation::text, i.indoption::text,
       coalesce(pg_get_expr(i.indexprs, i.indrelid), ''),
       coalesce(pg_get_expr(i.indpred, i.indrelid), '')
  FROM pg_stat_user_indexes s
  JOIN pg_index i ON i.indexrelid = s.indexrelid
  LEFT JOIN constraint_indexes k ON k.conindid = s.indexrelid
 WHERE s.schemaname !~ '^pg_toast'
   AND s.schemaname NOT LIKE 'pg_temp%'";

/// PostgreSQL 15+: unique indexes declared NULLS NOT DISTINCT (stricter than
/// an otherwise identical one, so that is the one to keep).
const NULLS_NOT_DISTINCT_SQL: &str = "SELECT indexrelid FROM pg_index WHERE indnullsnotdistinct";

/// One row: when this database's statistics were last reset (NULL: never).
const STATS_RESET_SQL: &str = "SELECT extract(epoch FROM stats_reset)::float8
  FROM pg_stat_database WHERE datname = current_database()";

const L: &[&str] = &["datname", "schemaname", "relname", "indexrelname"];

static SCANS: Family = Family::counter(
    "pg_index_scans_total",
    "Index scans initiated on the index (pg_stat_user_indexes.idx_scan).",
    L,
);
static TUP_READ: Family = Family::counter(
    "pg_index_tuples_read_total",
    "Index entries returned by scans of the index (pg_stat_user_indexes.idx_tup_read).",
    L,
);
static TUP_FETCH: Family = Family::counter(
    "pg_index_tuples_fetched_total",
    "Live table rows fetched by simple scans of the index (pg_stat_user_indexes.idx_tup_fetch).",
    L,
);
static UNUSED: Family = Family::gauge(
    "pg_index_unused",
    "1 if the index was never scanned since the statistics reset (pg_stat_user_indexes.idx_scan = 0) and enforces no constraint (not unique, primary key, exclusion or constraint-backing), else 0.",
    L,
);
static INVALID: Family = Family::gauge(
    "pg_index_invalid",
    "1 if the index is invalid (NOT pg_index.indisvalid, e.g. left by a failed CREATE INDEX CONCURRENTLY): not used by queries but still maintained on writes.",
    L,
);
static DUPLICATE: Family = Family::gauge(
    "pg_index_duplicate",
    "1 if another index of the same table has the same columns, expressions, predicate, operator classes, collations and sort options and this is not the one to keep (keep order: primary key, constraint-backing, unique, NULLS NOT DISTINCT, valid, oldest), else 0.",
    L,
);
static STATS_RESET: Family = Family::gauge(
    "pg_index_stats_reset_timestamp_seconds",
    "Unix time this database's statistics were last reset (pg_stat_database.stats_reset), from when pg_index_unused counts; absent if never reset.",
    &["datname"],
);

/// Report detail (not exported, see `Sink::details`): for each duplicate,
/// the index of its group that is kept.
pub static DUPLICATE_OF: Family = Family::gauge(
    "pgmaint_report_index_duplicate_of",
    "Report only: 1 for each duplicate index, naming the identical index that is kept.",
    &["datname", "schemaname", "relname", "indexrelname", "kept"],
);

static FAMILIES: &[&Family] = &[
    &SCANS,
    &TUP_READ,
    &TUP_FETCH,
    &UNUSED,
    &INVALID,
    &DUPLICATE,
    &STATS_RESET,
];

/// What makes two indexes interchangeable, and what decides which to keep.
#[derive(Debug, Clone)]
struct IndexDef<'a> {
    oid: u32,
    table: u32,
    /// indkey, indclass, indcollation, indoption, expressions, predicate
    /// (borrowed from the query's rows).
    shape: [&'a str; 6],
    primary: bool,
    constraint: bool,
    unique: bool,
    nulls_not_distinct: bool,
    valid: bool,
}

/// The oids of indexes that duplicate another index of their table. Per
/// group of identical indexes one is kept: a primary key first, then one
/// backing a constraint (dropping it means dropping the constraint), then a
/// unique one (it enforces something the plain one does not), then NULLS NOT
/// DISTINCT (stricter), then a valid one, then the oldest (lowest oid).
#[cfg(test)]
fn duplicates(defs: &[IndexDef<'_>]) -> HashSet<u32> {
    duplicates_of(defs).into_keys().collect()
}

/// Each duplicate's oid, with the oid of the index kept in its group.
fn duplicates_of(defs: &[IndexDef<'_>]) -> FxHashMap<u32, u32> {
    // Duplicates share a table: sorted by table, then shape, each group of
    // identical indexes is a run of neighbours. (Hashing every index's six
    // shape strings into one map was ~6 % of a 10,000-table scrape's CPU;
    // the sort mostly compares table oids.)
    let mut order: Vec<&IndexDef> = defs.iter().collect();
    order.sort_unstable_by(|a, b| (a.table, &a.shape).cmp(&(b.table, &b.shape)));
    let mut dups = FxHashMap::default();
    for group in order.chunk_by(|a, b| a.table == b.table && a.shape == b.shape) {
        if group.len() < 2 {
            continue;
        }
        let mut members = group.to_vec();
        members.sort_by_key(|d| {
            (
                !d.primary,
                !d.constraint,
                !d.unique,
                !d.nulls_not_distinct,
                !d.valid,
                d.oid,
            )
        });
        dups.extend(members[1..].iter().map(|d| (d.oid, members[0].oid)));
    }
    dups
}

pub struct Indexes;

impl Collector for Indexes {
    fn name(&self) -> &'static str {
        "indexes"
    }
    fn description(&self) -> &'static str {
        "Per-index scans; unused, invalid and duplicate indexes."
    }
    fn scope(&self) -> Scope {
        Scope::PerDatabase
    }
    fn families(&self) -> &'static [&'static Family] {
        FAMILIES
    }
    fn source(&self, ctx: &Ctx) -> Source {
        let mut queries = vec![
            selection::query(),
            Query::new("indexes", SQL),
            Query::new("stats_reset", STATS_RESET_SQL),
        ];
        if ctx.server.major() >= 15 {
            queries.push(Query::new("nulls_not_distinct", NULLS_NOT_DISTINCT_SQL).optional());
        }
        Source::Sql(queries)
    }
    fn map(&self, ctx: &Ctx, input: &Fetched, out: &mut Sink) -> Result<(), CollectError> {
        let db = ctx.datname;
        for row in input.rows("stats_reset")? {
            out.gauge_opt(&STATS_RESET, &[db], num(row, 0)?);
        }
        let kept = selection::kept(ctx, input)?;
        let nnd: HashSet<u32> = match input.optional("nulls_not_distinct") {
            Some(rows) => rows.iter().map(|r| r.try_get(0)).collect::<Result<_, _>>()?,
            None => HashSet::new(),
        };
        let rows = input.rows("indexes")?;
        let mut defs = Vec::with_capacity(rows.len());
        for row in rows {
            let oid: u32 = row.try_get(11)?;
            defs.push(IndexDef {
                oid,
                table: row.try_get(12)?,
                shape: [
                    text_ref(row, 13)?,
                    text_ref(row, 14)?,
                    text_ref(row, 15)?,
                    text_ref(row, 16)?,
                    text_ref(row, 17)?,
                    text_ref(row, 18)?,
                ],
                primary: row.try_get(7)?,
                unique: row.try_get(8)?,
                constraint: row.try_get(10)?,
                nulls_not_distinct: nnd.contains(&oid),
                valid: row.try_get(6)?,
            });
        }
        let dups = duplicates_of(&defs);
        // Names only of the indexes kept in a duplicate group.
        let kept_oids: HashSet<u32> = dups.values().copied().collect();
        let names: FxHashMap<u32, &str> = rows
            .iter()
            .zip(&defs)
            .filter(|(_, def)| kept_oids.contains(&def.oid))
            .map(|(row, def)| Ok((def.oid, text_ref(row, 2)?)))
            .collect::<Result<_, CollectError>>()?;
        for (row, def) in rows.iter().zip(&defs) {
            let (schema, table, index) = (text_ref(row, 0)?, text_ref(row, 1)?, text_ref(row, 2)?);
            if !kept.contains(schema, table) {
                continue;
            }
            let l = &[db, schema, table, index];
            let scans = num0(row, 3)?;
            out.counter(&SCANS, l, scans);
            out.counter(&TUP_READ, l, num0(row, 4)?);
            out.counter(&TUP_FETCH, l, num0(row, 5)?);
            // Unique, primary-key, exclusion and constraint-backing indexes
            // enforce a rule on every write even if no query ever scans them:
            // dropping them would change behaviour, so they are never "unused".
            let exclusion: bool = row.try_get(9)?;
            let enforces = def.primary || def.unique || exclusion || def.constraint;
            out.gauge(&UNUSED, l, flag(scans == 0.0 && !enforces));
            out.gauge(&INVALID, l, flag(!def.valid));
            out.gauge(&DUPLICATE, l, flag(dups.contains_key(&def.oid)));
            if let Some(kept) = dups.get(&def.oid).and_then(|k| names.get(k)) {
                out.detail(&DUPLICATE_OF, &[db, schema, table, index, kept], 1.0);
            }
        }
        Ok(())
    }
}

fn flag(b: bool) -> f64 {
    if b {
        1.0
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def(oid: u32, cols: &str) -> IndexDef<'_> {
        IndexDef {
            oid,
            table: 1,
            shape: [cols, "1978", "0", "0", "", ""],
            primary: false,
            constraint: false,
            unique: false,
            nulls_not_distinct: false,
            valid: true,
        }
    }

    #[test]
    fn keeps_the_oldest_of_plain_twins() {
        let d = duplicates(&[def(20, "2"), def(10, "2"), def(30, "2 3")]);
        assert_eq!(d, HashSet::from([20]));
    }

    #[test]
    fn keeps_the_constraint_or_unique_one() {
        let plain = def(10, "2");
        let unique = IndexDef {
            unique: true,
            ..def(20, "2")
        };
        let constraint = IndexDef {
            unique: true,
            constraint: true,
            ..def(30, "2")
        };
        assert_eq!(duplicates(&[plain.clone(), unique.clone()]), HashSet::from([10]));
        assert_eq!(duplicates(&[plain, unique, constraint]), HashSet::from([10, 20]));
    }

    #[test]
    fn different_predicate_table_or_opclass_is_not_a_duplicate() {
        let mut partial = def(20, "2");
        partial.shape[5] = "(b > 0)";
        let mut other_table = def(30, "2");
        other_table.table = 2;
        let mut hash = def(40, "2");
        hash.shape[1] = "1977";
        assert!(duplicates(&[def(10, "2"), partial, other_table, hash]).is_empty());
    }

    #[test]
    fn valid_beats_invalid_and_primary_beats_all() {
        let invalid = IndexDef {
            valid: false,
            ..def(10, "1")
        };
        assert_eq!(duplicates(&[invalid, def(20, "1")]), HashSet::from([10]));
        let pk = IndexDef {
            primary: true,
            unique: true,
            constraint: true,
            ..def(90, "1")
        };
        let uc = IndexDef {
            unique: true,
            constraint: true,
            ..def(5, "1")
        };
        assert_eq!(duplicates(&[uc, pk]), HashSet::from([5]));
    }
}
