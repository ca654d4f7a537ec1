//! `sequences`: how much of each sequence's range is used, and how much of the
//! range of the integer column each sequence feeds.
//! Source: pg_sequence, pg_sequence_last_value(), pg_depend, pg_attrdef,
//! pg_attribute. Scope: every database. PostgreSQL ≥ 10 (tested on 15).
//!
//! The classic outage is not the sequence running out but the column: a
//! `bigint` sequence (the default for a plain `CREATE SEQUENCE`) feeding an
//! `integer` key fails at 2147483647 long before the sequence does. So the
//! column ratio divides by the column type's limit, not the sequence's.
//!
//! Only sequences the role may read (SELECT or USAGE) are reported; others
//! are skipped, never shown as 0. CYCLE sequences wrap around instead of
//! failing; they are reported the same way.
//!
//! `pg_sequence_last_value()` is NULL whenever `is_called` is false: for a
//! sequence never called, but also right after `ALTER SEQUENCE … RESTART
//! [WITH n]` or `setval(…, n, false)`, when the next value may be right at
//! the limit. The ratios then read the sequence relation's own `last_value`
//! (the next value to be handed out) and count up to the value before it, so
//! a never-called sequence has used nothing (0) and one restarted at
//! 2147000000 has used almost all of an integer column. Reading the relation
//! takes SELECT on the sequence and a small dynamic query per such sequence
//! (`query_to_xml`, about 0.15 ms each); with USAGE only, the ratios of such
//! a sequence are absent, never 0. `pg_sequence_last_value` stays what
//! `pg_sequences.last_value` says: absent until the next `nextval()`.

use crate::collectors::selection::wanted;
use crate::collectors::{
    num, text, Collector, Ctx, Fetched, Meta, Query, Scope, Source, MIN_SUPPORTED_MAJOR,
};
use crate::error::CollectError;
use crate::metrics::{Family, Sink};

/// One statement per database (issue 22): the readable sequences (`seq`,
/// computed once and read by both parts), then the integer columns they
/// feed. Every row starts with `is_column`; sequence rows are (false,
/// schema, sequence, NULL, NULL, last value, min, max, used share), column
/// rows (true, schema, table, column, sequence, NULL, NULL, NULL, used share
/// of the column type's range).
///
/// `seq`: schema, name, last value (NULL if not called since creation or
/// the last RESTART/`setval(…, false)`), bounds, increment and `pos`: the
/// last value handed out, or, when `is_called` is false, the relation's
/// `last_value` (the next one) minus the increment: see the module docs.
/// The privilege check is guarded by relkind because the planner may run it
/// on every pg_class row before the join, and it raises an error on
/// non-sequences; pg_sequence_last_value() raises without privilege, so it
/// must only see rows that passed. Other sessions' temporary sequences
/// cannot be read; unlogged ones cannot be read on a standby.
///
/// Sequence rows: the used share of its range (NULL when unknown). Numeric
/// arithmetic because `max - min` overflows bigint.
///
/// Column rows: one per (table column, sequence feeding it) where the
/// column is smallint, integer or bigint (or a domain over one), with the
/// used share of the column type's range in the sequence's direction (NULL
/// when unknown). A column is fed by a sequence that is its identity
/// (pg_depend 'i'), owns it (serial or OWNED BY: 'a'), or is named in its
/// DEFAULT (nextval: the pg_attrdef entry depends on the sequence).
/// Partitions are left out: their parent carries the same column and
/// sequence.
const SQL: &str = "WITH seq AS (
  SELECT oid, schemaname, sequencename, min_value, max_value, increment, last_value,
         coalesce(last_value::numeric,
           CASE WHEN has_sequence_privilege(oid, 'SELECT') THEN
             (xpath('/row/last_value/text()',
                query_to_xml(format('SELECT last_value FROM %I.%I', schemaname, sequencename),
                             false, true, '')))[1]::text::numeric - increment
           END) AS pos
    FROM (SELECT n.nspname::text AS schemaname, c.relname::text AS sequencename, c.oid,
                 s.seqmin AS min_value, s.seqmax AS max_value, s.seqincrement AS increment,
                 pg_sequence_last_value(c.oid) AS last_value
            FROM pg_sequence s
            JOIN pg_class c ON c.oid = s.seqrelid
            JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE NOT pg_is_other_temp_schema(n.oid)
             AND NOT (c.relpersistence = 'u' AND pg_is_in_recovery())
             AND CASE WHEN c.relkind = 'S' THEN has_sequence_privilege(c.oid, 'SELECT,USAGE') END) q
), feeds AS (
  SELECT d.objid AS seqoid, d.refobjid AS reloid, d.refobjsubid::int2 AS attnum
    FROM pg_depend d
   WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass
     AND d.deptype IN ('a', 'i') AND d.refobjsubid > 0
  UNION
  SELECT d.refobjid, ad.adrelid, ad.adnum
    FROM pg_attrdef ad
    JOIN pg_depend d ON d.classid = 'pg_attrdef'::regclass AND d.objid = ad.oid
   WHERE d.refclassid = 'pg_class'::regclass
)
SELECT false, schemaname, sequencename, NULL::text, NULL::text,
       last_value::float8, min_value::float8, max_value::float8,
       CASE WHEN pos IS NOT NULL THEN
         greatest(CASE WHEN increment > 0 THEN (pos - min_value) / (max_value::numeric - min_value)
                       ELSE (max_value - pos) / (max_value::numeric - min_value) END, 0) END::float8
  FROM seq
UNION ALL
SELECT * FROM (
SELECT DISTINCT ON (2, 3, 4, 5) true, n.nspname::text, c.relname::text, a.attname::text, q.sequencename,
       NULL::float8, NULL::float8, NULL::float8,
       CASE WHEN q.pos IS NOT NULL THEN greatest(q.pos
         / CASE WHEN q.increment > 0
                THEN CASE coalesce(nullif(t.typbasetype, 0), t.oid)
                          WHEN 'int2'::regtype THEN 32767::numeric
                          WHEN 'int4'::regtype THEN 2147483647::numeric
                          ELSE 9223372036854775807::numeric END
                ELSE CASE coalesce(nullif(t.typbasetype, 0), t.oid)
                          WHEN 'int2'::regtype THEN -32768::numeric
                          WHEN 'int4'::regtype THEN -2147483648::numeric
                          ELSE -9223372036854775808::numeric END
           END, 0) END::float8
  FROM feeds f
  JOIN seq q ON q.oid = f.seqoid
  JOIN pg_class c ON c.oid = f.reloid AND c.relkind IN ('r', 'p') AND NOT c.relispartition
  JOIN pg_namespace n ON n.oid = c.relnamespace
  JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = f.attnum AND NOT a.attisdropped
  JOIN pg_type t ON t.oid = a.atttypid
 WHERE coalesce(nullif(t.typbasetype, 0), t.oid) IN ('int2'::regtype, 'int4'::regtype, 'int8'::regtype)
   AND NOT pg_is_other_temp_schema(n.oid)
 ORDER BY 2, 3, 4, 5) cols";

const SEQ_LABELS: &[&str] = &["datname", "schemaname", "sequencename"];

pub static USED: Family = Family::gauge(
    "pg_sequence_used_ratio",
    "Share of the sequence's range already handed out (pg_sequence_last_value(), pg_sequence.seqmin/seqmax): (last_value - min_value) / (max_value - min_value) ascending, the mirror descending; 0 if never called. After RESTART or setval(…, false) the sequence relation's own last_value (the next value) minus the increment is used (needs SELECT; else absent). Readable sequences only.",
    SEQ_LABELS,
);
pub static LAST_VALUE: Family = Family::gauge(
    "pg_sequence_last_value",
    "Last value the sequence handed out (pg_sequences.last_value); absent if never called.",
    SEQ_LABELS,
);
static MIN_VALUE: Family = Family::gauge(
    "pg_sequence_min_value",
    "Minimum value of the sequence (pg_sequences.min_value).",
    SEQ_LABELS,
);
pub static MAX_VALUE: Family = Family::gauge(
    "pg_sequence_max_value",
    "Maximum value of the sequence (pg_sequences.max_value).",
    SEQ_LABELS,
);
pub static COLUMN_USED: Family = Family::gauge(
    "pg_sequence_column_used_ratio",
    "Share of the column type's range used by the sequence feeding it (identity, serial/OWNED BY or DEFAULT nextval(); pg_depend, pg_attrdef): last_value / 32767, 2147483647 or 9223372036854775807 for smallint, integer, bigint (the negative limit for descending sequences); 0 if never called; after RESTART or setval(…, false), from the sequence relation's own last_value as pg_sequence_used_ratio.",
    &["datname", "schemaname", "relname", "attname", "sequencename"],
);

static FAMILIES: &[&Family] = &[&USED, &LAST_VALUE, &MIN_VALUE, &MAX_VALUE, &COLUMN_USED];

/// What `sequences` is, once (see `Meta`).
const META: Meta = Meta {
    name: "sequences",
    description: "Used share of each sequence's range and of the integer column type each sequence feeds.",
    scope: Scope::PerDatabase,
    families: FAMILIES,
    min_major: MIN_SUPPORTED_MAJOR,
    default_enabled: true,
};

pub struct Sequences;

impl Collector for Sequences {
    fn meta(&self) -> &'static Meta {
        &META
    }
    fn source(&self, _ctx: &Ctx) -> Source {
        Source::Sql(vec![Query::new("sequences", SQL)])
    }
    fn map(&self, ctx: &Ctx, input: &Fetched, out: &mut Sink) -> Result<(), CollectError> {
        let db = ctx.datname;
        let rows = input.rows("sequences")?;
        // Sequence rows first (as before: all of them, then the columns).
        for row in rows {
            if row.try_get::<_, bool>(0)? {
                continue;
            }
            let (schema, seq) = (text(row, 1)?, text(row, 2)?);
            let labels = [db, schema.as_str(), seq.as_str()];
            out.gauge_opt(&LAST_VALUE, &labels, num(row, 5)?);
            out.gauge_opt(&MIN_VALUE, &labels, num(row, 6)?);
            out.gauge_opt(&MAX_VALUE, &labels, num(row, 7)?);
            out.gauge_opt(&USED, &labels, num(row, 8)?);
        }
        for row in rows {
            if !row.try_get::<_, bool>(0)? {
                continue;
            }
            let (schema, table) = (text(row, 1)?, text(row, 2)?);
            if !wanted(ctx, &schema, &table) {
                continue;
            }
            let (column, seq) = (text(row, 3)?, text(row, 4)?);
            out.gauge_opt(&COLUMN_USED, &[db, &schema, &table, &column, &seq], num(row, 8)?);
        }
        Ok(())
    }
}
