//! The `bloat` collector's queries: raw catalog inputs per heap and btree
//! index, and the pgstattuple measurements of exact mode. The arithmetic
//! that turns them into estimates is in `estimate.rs`.
//!
//! Every `coalesce(…, 0)` here is a true zero, not an unknown read as 0: a
//! column without a (visible) pg_stats row adds nothing to `nstats`, and the
//! estimate is then refused (`Input::has_statistics`, exported as
//! `pg_table_bloat_statistics_missing` 1), so its 0 null fraction and width
//! are never used; a relation without columns has 0 of them; a table without
//! a TOAST table has 0 TOAST pages. An unset fillfactor is the access
//! method's default (heap 100, btree 90), not 0.

/// One row per user table or materialized view: schema, name, heap pages,
/// reltuples (-1: never analyzed or vacuumed), TOAST pages, fillfactor, then
/// over its live columns: how many there are, how many have a pg_stats row,
/// the largest null fraction and the average data width of a row
/// (sum of (1 - null_frac) * avg_width), and the block size.
/// pg_stats only shows columns the role may SELECT.
pub(super) const HEAP_SQL: &str = "WITH rel AS (
  SELECT c.oid, n.nspname, c.relname, c.relpages, c.reltuples, c.reltoastrelid,
         coalesce((SELECT o.option_value FROM pg_options_to_table(c.reloptions) o
                    WHERE o.option_name = 'fillfactor'), '100')::float8 AS ff
    FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE c.relkind IN ('r', 'm') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
     AND n.nspname !~ '^pg_toast' AND n.nspname NOT LIKE 'pg_temp%'
), cols AS (
  SELECT r.oid, count(*) AS ncols, count(s.attname) AS nstats,
         max(coalesce(s.null_frac, 0)) AS max_null,
         sum((1 - coalesce(s.null_frac, 0)) * coalesce(s.avg_width, 0)) AS width
    FROM rel r
    JOIN pg_attribute a ON a.attrelid = r.oid AND a.attnum > 0 AND NOT a.attisdropped
    LEFT JOIN pg_stats s ON s.schemaname = r.nspname AND s.tablename = r.relname
                        AND s.attname = a.attname AND NOT s.inherited
   GROUP BY r.oid
)
SELECT r.nspname::text, r.relname::text, r.relpages::float8, r.reltuples::float8,
       coalesce(t.relpages, 0)::float8, r.ff,
       coalesce(k.ncols, 0)::float8, coalesce(k.nstats, 0)::float8,
       coalesce(k.max_null, 0)::float8, coalesce(k.width, 0)::float8,
       current_setting('block_size')::float8
  FROM rel r
  LEFT JOIN cols k ON k.oid = r.oid
  LEFT JOIN pg_class t ON t.oid = r.reltoastrelid";

/// One row per valid btree index on a user table or materialized view:
/// schema, table, index, index pages, index reltuples, fillfactor (btree
/// default 90), then over the columns stored in its leaf tuples (key and
/// INCLUDE columns): how many, how many have statistics, the largest null
/// fraction, the average data width, and the block size. Plain columns take
/// the table's statistics; expression columns the index's own (ANALYZE
/// stores them under the index name).
pub(super) const BTREE_SQL: &str = "WITH idx AS (
  SELECT i.indexrelid, i.indrelid, i.indkey, n.nspname, t.relname AS tbl, ic.relname AS idx,
         ic.relpages, ic.reltuples,
         coalesce((SELECT o.option_value FROM pg_options_to_table(ic.reloptions) o
                    WHERE o.option_name = 'fillfactor'), '90')::float8 AS ff
    FROM pg_index i
    JOIN pg_class ic ON ic.oid = i.indexrelid
    JOIN pg_class t ON t.oid = i.indrelid
    JOIN pg_namespace n ON n.oid = t.relnamespace
    JOIN pg_am am ON am.oid = ic.relam
   WHERE am.amname = 'btree' AND ic.relkind = 'i' AND i.indisvalid AND i.indisready
     AND t.relkind IN ('r', 'm') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
     AND n.nspname !~ '^pg_toast' AND n.nspname NOT LIKE 'pg_temp%'
), cols AS (
  SELECT x.indexrelid, x.nspname,
         CASE WHEN x.indkey[ia.attnum - 1] = 0 THEN x.idx ELSE x.tbl END AS stat_rel,
         coalesce(ta.attname, ia.attname) AS stat_att
    FROM idx x
    JOIN pg_attribute ia ON ia.attrelid = x.indexrelid AND ia.attnum > 0
    LEFT JOIN pg_attribute ta ON ta.attrelid = x.indrelid AND ta.attnum = x.indkey[ia.attnum - 1]
                             AND x.indkey[ia.attnum - 1] <> 0
), agg AS (
  SELECT c.indexrelid, count(*) AS ncols, count(s.attname) AS nstats,
         max(coalesce(s.null_frac, 0)) AS max_null,
         sum((1 - coalesce(s.null_frac, 0)) * coalesce(s.avg_width, 0)) AS width
    FROM cols c
    LEFT JOIN pg_stats s ON s.schemaname = c.nspname AND s.tablename = c.stat_rel
                        AND s.attname = c.stat_att AND NOT s.inherited
   GROUP BY c.indexrelid
)
SELECT x.nspname::text, x.tbl::text, x.idx::text, x.relpages::float8, x.reltuples::float8, x.ff,
       coalesce(g.ncols, 0)::float8, coalesce(g.nstats, 0)::float8,
       coalesce(g.max_null, 0)::float8, coalesce(g.width, 0)::float8,
       current_setting('block_size')::float8
  FROM idx x
  LEFT JOIN agg g ON g.indexrelid = x.indexrelid";

/// Exact mode, one row per table among the $1 largest (by relpages):
/// schema, name, fillfactor, then pgstattuple_approx of the heap (length,
/// free space, dead tuple bytes) and of its TOAST table (NULL without one).
/// Tables someone holds an ACCESS EXCLUSIVE lock on are skipped rather than
/// waited for. Fails (optional query) without the pgstattuple extension.
pub(super) const EXACT_HEAP_SQL: &str = "SELECT n.nspname::text, c.relname::text,
       coalesce((SELECT o.option_value FROM pg_options_to_table(c.reloptions) o
                  WHERE o.option_name = 'fillfactor'), '100')::float8,
       h.table_len::float8, h.approx_free_space::float8, h.dead_tuple_len::float8,
       tt.table_len::float8, tt.approx_free_space::float8, tt.dead_tuple_len::float8
  FROM pg_class c
  JOIN pg_namespace n ON n.oid = c.relnamespace
  CROSS JOIN LATERAL pgstattuple_approx(c.oid) h
  LEFT JOIN LATERAL pgstattuple_approx(nullif(c.reltoastrelid, 0)) tt ON true
 WHERE c.oid IN (
   SELECT c2.oid FROM pg_class c2 JOIN pg_namespace n ON n.oid = c2.relnamespace
    WHERE c2.relkind IN ('r', 'm') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
      AND n.nspname !~ '^pg_toast' AND n.nspname NOT LIKE 'pg_temp%'
      AND NOT EXISTS (SELECT 1 FROM pg_locks l
                       WHERE l.relation IN (c2.oid, c2.reltoastrelid) AND l.mode = 'AccessExclusiveLock')
    ORDER BY c2.relpages DESC LIMIT $1)";

/// Exact mode, one row per btree index among the $1 largest of at most $2
/// bytes: schema, table, index, fillfactor, and pgstatindex's total size,
/// internal and leaf page counts and average leaf density (percent).
pub(super) const EXACT_BTREE_SQL: &str = "SELECT n.nspname::text, t.relname::text, ic.relname::text,
       coalesce((SELECT o.option_value FROM pg_options_to_table(ic.reloptions) o
                  WHERE o.option_name = 'fillfactor'), '90')::float8,
       s.index_size::float8, s.internal_pages::float8, s.leaf_pages::float8,
       s.avg_leaf_density::float8, current_setting('block_size')::float8
  FROM pg_index i
  JOIN pg_class ic ON ic.oid = i.indexrelid
  JOIN pg_class t ON t.oid = i.indrelid
  JOIN pg_namespace n ON n.oid = t.relnamespace
  CROSS JOIN LATERAL pgstatindex(ic.oid) s
 WHERE ic.oid IN (
   SELECT i2.indexrelid FROM pg_index i2
     JOIN pg_class ic2 ON ic2.oid = i2.indexrelid
     JOIN pg_class t2 ON t2.oid = i2.indrelid
     JOIN pg_namespace n ON n.oid = t2.relnamespace
     JOIN pg_am am ON am.oid = ic2.relam
    WHERE am.amname = 'btree' AND ic2.relkind = 'i' AND i2.indisvalid AND i2.indisready
      AND t2.relkind IN ('r', 'm') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
      AND n.nspname !~ '^pg_toast' AND n.nspname NOT LIKE 'pg_temp%'
      AND ic2.relpages::float8 * current_setting('block_size')::float8 <= $2
      AND NOT EXISTS (SELECT 1 FROM pg_locks l
                       WHERE l.relation IN (i2.indexrelid, i2.indrelid) AND l.mode = 'AccessExclusiveLock')
    ORDER BY ic2.relpages DESC LIMIT $1)";
