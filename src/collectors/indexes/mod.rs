//! `indexes`: per-index scans and the verdicts — unused, invalid (and
//! whether still maintained), duplicate, supporting a foreign key — for the
//! indexes of the tables `selection::kept()` keeps.
//! Source: pg_stat_user_indexes, pg_index, pg_class, pg_constraint,
//! pg_stat_database.stats_reset. Scope: every database; one statement.
//! PostgreSQL 14+.
//!
//! "Unused" means no scan since the statistics were last reset, so the reset
//! time is published too (`pg_index_stats_reset_timestamp_seconds`): an index
//! unused for a day after a reset says little.
//!
//! Partitions: an index attached to a partitioned index cannot be dropped
//! on its own (DROP INDEX refuses: "index … requires it"), so its verdicts
//! are given at the root partitioned index of its tree (which has no
//! statistics of its own: it is "unused" when no attached index was
//! scanned), and the attached index itself is never unused or duplicate.

use std::collections::HashSet;

use rustc_hash::FxHashMap;

use crate::collectors::selection;
use crate::collectors::{
    num, num_req, text_ref, Collector, Ctx, Fetched, Meta, Query, Scope, Source, MIN_SUPPORTED_MAJOR,
};
use crate::error::CollectError;
use crate::metrics::{Family, Sink};
use crate::rows::Row;
use const_format::concatcp;

mod duplicates;

use duplicates::{duplicates_of, IndexDef};

/// One row per index of a user table (from pg_stat_user_indexes) and per
/// root partitioned index (relkind 'I' attached to nothing; no statistics,
/// so columns 3-5 are NULL): its counters, whether it is valid and ready,
/// what it enforces, and what it is made of (columns, operator classes,
/// collations, sort options, expressions, predicate) for finding
/// duplicates. Then: immediate (not DEFERRABLE), the exclusion operators of
/// the constraint it backs, indisready, whether its leading key columns are
/// the referencing columns of a foreign key of its table (non-partial), whether
/// a foreign key depends on it (the index a foreign key's `conindid` names is
/// the one its pg_depend entry points at: read from pg_constraint, which is
/// far smaller than pg_depend),
/// whether it is a partitioned index, the root partitioned index it is
/// attached to (0: none), and whether it is NULLS NOT DISTINCT (`SQL_14`,
/// `SQL_15`). No size functions here: they take locks and stat
/// files, so sizes come from the cached `sizes` collector.
///
/// One statement per database (issue 22): the database's statistics reset
/// time (NULL: never reset) is the last column, from a one-row subquery the
/// indexes are LEFT JOINed to, so a database without indexes still gives one
/// row, whose index columns are all NULL.
const SQL_HEAD: &str = "WITH backing AS (
  SELECT conindid, conrelid, contype, conexclop FROM pg_constraint
   WHERE contype IN ('p', 'u', 'x') AND conindid <> 0
), fk_support AS (
  SELECT DISTINCT i.indexrelid
    FROM pg_constraint f
    JOIN pg_index i ON i.indrelid = f.conrelid
   WHERE f.contype = 'f' AND i.indpred IS NULL
     AND cardinality(f.conkey) <= i.indnkeyatts
     AND f.conkey <@ (i.indkey::int2[])[0:cardinality(f.conkey) - 1]
     AND (i.indkey::int2[])[0:cardinality(f.conkey) - 1] <@ f.conkey
), depended AS (
  SELECT DISTINCT conindid AS refobjid FROM pg_constraint WHERE contype = 'f'
), idx AS (
  SELECT s.schemaname::text AS nsp, s.relname::text AS tbl, s.indexrelname::text AS name,
         s.idx_scan::float8 AS scans, s.idx_tup_read::float8 AS rd, s.idx_tup_fetch::float8 AS ft,
         s.indexrelid
    FROM pg_stat_user_indexes s
   WHERE s.schemaname !~ '^pg_toast' AND s.schemaname NOT LIKE 'pg_temp%'
  UNION ALL
  SELECT n.nspname::text, t.relname::text, pc.relname::text, NULL, NULL, NULL, pc.oid
    FROM pg_class pc
    JOIN pg_index pi ON pi.indexrelid = pc.oid
    JOIN pg_class t ON t.oid = pi.indrelid
    JOIN pg_namespace n ON n.oid = t.relnamespace
   WHERE pc.relkind = 'I' AND NOT pc.relispartition
     AND n.nspname NOT IN ('pg_catalog', 'information_schema')
     AND n.nspname NOT LIKE 'pg_temp%'
)
SELECT x.nsp, x.tbl, x.name, x.scans, x.rd, x.ft,
       i.indisvalid, i.indisprimary, i.indisunique, i.indisexclusion,
       (k.conindid IS NOT NULL),
       i.indexrelid, i.indrelid,
       i.indkey::text, i.indclass::text, i.indcollation::text, i.indoption::text,
       coalesce(pg_get_expr(i.indexprs, i.indrelid), ''),
       coalesce(pg_get_expr(i.indpred, i.indrelid), ''),
       i.indimmediate,
       coalesce(CASE WHEN k.contype = 'x' THEN k.conexclop::text END, ''),
       i.indisready,
       (fs.indexrelid IS NOT NULL),
       (d.refobjid IS NOT NULL),
       (ic.relkind = 'I'),
       CASE WHEN ic.relispartition THEN pg_partition_root(i.indexrelid)::oid ELSE 0::oid END,
       ";

/// The indexes and their facts, LEFT JOINed to the one-row reset time.
const SQL_TAIL: &str = ",
       r.reset
  FROM (SELECT (SELECT extract(epoch FROM stats_reset)::float8 FROM pg_stat_database
                 WHERE datname = current_database()) AS reset) r
  LEFT JOIN (idx x
    JOIN pg_index i ON i.indexrelid = x.indexrelid
    JOIN pg_class ic ON ic.oid = x.indexrelid
    LEFT JOIN backing k ON k.conindid = i.indexrelid AND k.conrelid = i.indrelid
    LEFT JOIN fk_support fs ON fs.indexrelid = i.indexrelid
    LEFT JOIN depended d ON d.refobjid = i.indexrelid) ON true";

/// PostgreSQL 14: no NULLS NOT DISTINCT.
const SQL_14: &str = concatcp!(SQL_HEAD, "false", SQL_TAIL);

/// PostgreSQL 15+: unique indexes declared NULLS NOT DISTINCT (a different
/// rule from an otherwise identical unique index: never its duplicate).
const SQL_15: &str = concatcp!(SQL_HEAD, "i.indnullsnotdistinct", SQL_TAIL);

const L: &[&str] = &["datname", "schemaname", "relname", "indexrelname"];

pub static SCANS: Family = Family::counter(
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
pub static UNUSED: Family = Family::gauge(
    "pg_index_unused",
    "1 if the index was never scanned since the statistics reset (pg_stat_user_indexes.idx_scan = 0) and enforces no constraint (not unique, primary key, exclusion or constraint-backing), else 0. A partitioned index: 1 if none of its partitions' indexes was scanned; an index attached to one: always 0 (reported at the partitioned index). Foreign-key indexes are marked by pg_index_supports_foreign_key.",
    L,
);
pub static INVALID: Family = Family::gauge(
    "pg_index_invalid",
    "1 if the index is invalid (NOT pg_index.indisvalid, e.g. left by a failed CREATE INDEX or REINDEX CONCURRENTLY): queries do not use it; writes still maintain it only if pg_index_ready is 1.",
    L,
);
pub static READY: Family = Family::gauge(
    "pg_index_ready",
    "1 if writes maintain the index (pg_index.indisready), else 0: a CREATE INDEX CONCURRENTLY that failed in its first build (e.g. a UNIQUE index on duplicate keys) leaves it 0.",
    L,
);
pub static DUPLICATE: Family = Family::gauge(
    "pg_index_duplicate",
    "1 if another index of the same table does everything this one does and this is not the one to keep, else 0: the same columns, expressions, predicate, operator classes, collations and sort options, and the same rule (uniqueness, NULLS NOT DISTINCT, DEFERRABLE, exclusion operators) — or this one enforces nothing and the other is valid. Kept: the one a foreign key depends on, then primary key, constraint-backing, attached to a partitioned index, valid, oldest.",
    L,
);
pub static SUPPORTS_FK: Family = Family::gauge(
    "pg_index_supports_foreign_key",
    "1 if the index's leading key columns are the referencing columns of a foreign key of its table (pg_constraint.conkey; not partial), else 0: it is scanned only when referenced rows are deleted or their keys updated, and without it each of those scans the whole table.",
    L,
);
pub static STATS_RESET: Family = Family::gauge(
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

/// Report detail: what the report must know to suggest only commands
/// PostgreSQL accepts, for indexes where one of these holds: `constraint`
/// "1" if it backs a primary key, unique or exclusion constraint (DROP INDEX
/// refuses); `referenced` "1" if a foreign key depends on it; `partitioned`
/// "1" for a partitioned index (no DROP INDEX CONCURRENTLY); `attached_to`
/// the root partitioned index it is attached to (it cannot be dropped alone).
pub static FACTS: Family = Family::gauge(
    "pgmaint_report_index_facts",
    "Report only: 1 per index that backs a constraint, is referenced by a foreign key, is partitioned or is attached to a partitioned index.",
    &[
        "datname",
        "schemaname",
        "relname",
        "indexrelname",
        "constraint",
        "referenced",
        "partitioned",
        "attached_to",
    ],
);

static FAMILIES: &[&Family] = &[
    &SCANS,
    &TUP_READ,
    &TUP_FETCH,
    &UNUSED,
    &INVALID,
    &READY,
    &DUPLICATE,
    &SUPPORTS_FK,
    &STATS_RESET,
];

/// What `indexes` is, once (see `Meta`).
const META: Meta = Meta {
    name: "indexes",
    description: "Per-index scans; unused, invalid, duplicate and foreign-key indexes.",
    scope: Scope::PerDatabase,
    families: FAMILIES,
    min_major: MIN_SUPPORTED_MAJOR,
    default_enabled: true,
};

pub struct Indexes;

impl Collector for Indexes {
    fn meta(&self) -> &'static Meta {
        &META
    }
    fn source(&self, ctx: &Ctx) -> Source {
        let sql = match ctx.server.major() {
            ..=14 => SQL_14,
            _ => SQL_15,
        };
        Source::Sql(vec![selection::query(ctx), Query::new("indexes", sql)])
    }
    fn map(&self, ctx: &Ctx, input: &Fetched, out: &mut Sink) -> Result<(), CollectError> {
        let db = ctx.datname;
        let all = input.rows("indexes")?;
        // Every row carries the reset time; with no index, one row with
        // only that.
        if let Some(row) = all.first() {
            out.gauge_opt(&STATS_RESET, &[db], num(row, 27)?);
        }
        // The index rows: those with an index (a NULL oid is the lone row
        // of a database without any).
        let rows: Vec<Row> = all
            .iter()
            .filter_map(|row| match row.try_get::<_, Option<u32>>(11) {
                Ok(Some(_)) => Some(Ok(row)),
                Ok(None) => None,
                Err(e) => Some(Err(e)),
            })
            .collect::<Result<_, _>>()?;
        let kept = selection::kept(ctx, input)?;
        let mut defs = Vec::with_capacity(rows.len());
        // Root partitioned index → (a partition of it is kept, scans of
        // its attached indexes).
        let mut roots: FxHashMap<u32, (bool, f64)> = FxHashMap::default();
        for &row in &rows {
            let oid: u32 = row.try_get(11)?;
            let root: u32 = row.try_get(25)?;
            if root != 0 {
                let e = roots.entry(root).or_insert((false, 0.0));
                e.0 |= kept.contains(text_ref(row, 0)?, text_ref(row, 1)?);
                e.1 += num_req(row, 3)?;
            }
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
                exclop: text_ref(row, 20)?,
                unique: row.try_get(8)?,
                nulls_not_distinct: row.try_get(26)?,
                immediate: row.try_get(19)?,
                exclusion: row.try_get(9)?,
                primary: row.try_get(7)?,
                constraint: row.try_get(10)?,
                referenced: row.try_get(23)?,
                attached: root != 0,
                valid: row.try_get(6)?,
                ready: row.try_get(21)?,
            });
        }
        let dups = duplicates_of(&defs);
        // Names of the indexes kept in a duplicate group and of the roots.
        let named: HashSet<u32> = dups.values().copied().chain(roots.keys().copied()).collect();
        let names: FxHashMap<u32, &str> = rows
            .iter()
            .zip(&defs)
            .filter(|(_, def)| named.contains(&def.oid))
            .map(|(&row, def)| Ok((def.oid, text_ref(row, 2)?)))
            .collect::<Result<_, CollectError>>()?;
        for (&row, def) in rows.iter().zip(&defs) {
            let (schema, table, index) = (text_ref(row, 0)?, text_ref(row, 1)?, text_ref(row, 2)?);
            let partitioned: bool = row.try_get(24)?;
            let root: u32 = row.try_get(25)?;
            // A root partitioned index has no statistics: its partitions' say.
            // One with nothing attached yet (ON ONLY, or no partitions) is
            // still reported (invalid, say), but never "unused".
            let mut judged = true;
            let scans = if partitioned {
                match roots.get(&def.oid) {
                    Some(&(true, scans)) => Some(scans),
                    Some(_) => continue,
                    None => {
                        judged = false;
                        Some(0.0)
                    }
                }
            } else if kept.contains(schema, table) {
                None
            } else {
                continue;
            };
            let l = &[db, schema, table, index];
            let scans = match scans {
                Some(s) => s,
                None => {
                    let s = num_req(row, 3)?;
                    out.counter(&SCANS, l, s);
                    out.counter(&TUP_READ, l, num_req(row, 4)?);
                    out.counter(&TUP_FETCH, l, num_req(row, 5)?);
                    s
                }
            };
            // Unique, primary-key, exclusion and constraint-backing indexes
            // enforce a rule on every write even if no query ever scans them:
            // dropping them would change behaviour, so they are never "unused".
            // An attached index is judged at its root.
            let enforces = def.primary || def.unique || def.exclusion || def.constraint;
            out.gauge(
                &UNUSED,
                l,
                flag(scans == 0.0 && !enforces && !def.attached && judged),
            );
            out.gauge(&INVALID, l, flag(!def.valid));
            out.gauge(&READY, l, flag(def.ready));
            out.gauge(&DUPLICATE, l, flag(dups.contains_key(&def.oid)));
            out.gauge(&SUPPORTS_FK, l, flag(row.try_get(22)?));
            if let Some(kept) = dups.get(&def.oid).and_then(|k| names.get(k)) {
                out.detail(&DUPLICATE_OF, &[db, schema, table, index, kept], 1.0);
            }
            let root_name = if root != 0 {
                names.get(&root).copied().unwrap_or_default()
            } else {
                ""
            };
            if def.constraint || def.referenced || partitioned || root != 0 {
                let yes = |b: bool| if b { "1" } else { "" };
                out.detail(
                    &FACTS,
                    &[
                        db,
                        schema,
                        table,
                        index,
                        yes(def.constraint),
                        yes(def.referenced),
                        yes(partitioned),
                        root_name,
                    ],
                    1.0,
                );
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
