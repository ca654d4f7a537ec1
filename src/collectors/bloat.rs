//! `bloat`: estimated wasted space per table heap and per btree index.
//! Source: pg_class, pg_attribute, pg_stats (and, in exact mode, pgstattuple).
//! Scope: every database. PostgreSQL ≥ 14 (`reltuples = -1` means "never
//! analyzed or vacuumed").
//!
//! The estimate follows the approach of ioguix's pgsql-bloat-estimation:
//! from the average row width in pg_stats and the row count in
//! pg_class.reltuples, work out how many pages the live rows need at the
//! relation's fillfactor and compare with relpages. Unlike that query the
//! heap is estimated alone: folding TOAST in (as reltuples/4 pages) made
//! toasted tables read 0 even when 45 % of the heap was dead. TOAST size is
//! published on its own. The queries only return raw inputs; the arithmetic
//! is `heap_estimate` / `btree_estimate` below, unit-tested in place.
//!
//! Without statistics there is no estimate (a never-analyzed table would
//! read 63–89 % phantom bloat): `pg_table_bloat_statistics_missing` says so.
//! The inputs change only when VACUUM or ANALYZE refresh pg_class and
//! pg_stats, so new dead space shows after the next (auto)ANALYZE or VACUUM.
//! Both estimate queries take about a second at 10,000 tables, so results
//! are cached (`PGMAINT_BLOAT_CACHE_SECONDS`, default 300 s).
//!
//! `PGMAINT_BLOAT_EXACT=on` adds measured values from pgstattuple (when the
//! extension is installed in that database) for the largest tables and for
//! btree indexes under a size cap; those queries are optional and read the
//! relations, so they cost I/O.

use std::time::Duration;

use crate::collectors::{num, num0, selection, text, Collector, Ctx, Fetched, Param, Query, Scope, Source};
use crate::config::Config;
use crate::error::CollectError;
use crate::metrics::{Family, Sink};

/// Relations smaller than this get no ratio: a few pages of slack are
/// normal and their ratio is noise.
const MIN_PAGES: f64 = 10.0;
/// Exact mode: how many of the largest tables pgstattuple_approx reads.
const EXACT_TABLES: i64 = 50;
/// Exact mode: how many btree indexes pgstatindex reads, and the size cap
/// (pgstatindex reads the whole index).
const EXACT_INDEXES: i64 = 50;
const EXACT_INDEX_MAX_BYTES: f64 = 1024.0 * 1024.0 * 1024.0;

/// One row per user table or materialized view: schema, name, heap pages,
/// reltuples (-1: never analyzed or vacuumed), TOAST pages, fillfactor, then
/// over its live columns: how many there are, how many have a pg_stats row,
/// the largest null fraction and the average data width of a row
/// (sum of (1 - null_frac) * avg_width), and the block size.
/// pg_stats only shows columns the role may SELECT.
const HEAP_SQL: &str = "WITH rel AS (
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
const BTREE_SQL: &str = "WITH idx AS (
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
const EXACT_HEAP_SQL: &str = "SELECT n.nspname::text, c.relname::text,
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
const EXACT_BTREE_SQL: &str = "SELECT n.nspname::text, t.relname::text, ic.relname::text,
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

const TABLE_LABELS: &[&str] = &["datname", "schemaname", "relname"];
const INDEX_LABELS: &[&str] = &["datname", "schemaname", "relname", "indexrelname"];

pub static TABLE_RATIO: Family = Family::gauge(
    "pg_table_bloat_ratio",
    "Estimated share (0-1) of the table's heap (TOAST excluded) that its live rows do not need at its fillfactor: 1 - pages needed / pg_class.relpages, pages needed from reltuples and pg_stats.avg_width/null_frac. Only sees dead space after VACUUM or ANALYZE; absent without statistics or under 10 pages. Cached 300s by default (PGMAINT_BLOAT_CACHE_SECONDS).",
    TABLE_LABELS,
);
pub static TABLE_BYTES: Family = Family::gauge(
    "pg_table_bloat_bytes",
    "Estimated bytes of the table's heap (TOAST excluded) beyond what its live rows need at its fillfactor (pg_class.relpages vs reltuples and pg_stats.avg_width). Only sees dead space after VACUUM or ANALYZE; absent without statistics or under 10 pages. Cached 300s by default.",
    TABLE_LABELS,
);
static TOAST_BYTES: Family = Family::gauge(
    "pg_table_toast_bytes",
    "Size of the table's TOAST table (pg_class.relpages of reltoastrelid * block_size, as of its last VACUUM); not part of the bloat estimate. Absent for tables without a TOAST table. Cached 300s by default.",
    TABLE_LABELS,
);
static STATS_MISSING: Family = Family::gauge(
    "pg_table_bloat_statistics_missing",
    "1 if the table cannot be estimated: never analyzed (pg_class.reltuples < 0) or some column has no pg_stats row (not analyzed since it was added, statistics target 0, or the role lacks SELECT on it); 0 otherwise. Cached 300s by default.",
    TABLE_LABELS,
);
pub static INDEX_RATIO: Family = Family::gauge(
    "pg_index_bloat_ratio",
    "Estimated share (0-1) of the btree index that its entries do not need at its fillfactor: 1 - pages needed / pg_class.relpages, from reltuples and pg_stats.avg_width. Only sees dead space after VACUUM or ANALYZE; absent without statistics or under 10 pages. Cached 300s by default (PGMAINT_BLOAT_CACHE_SECONDS).",
    INDEX_LABELS,
);
pub static INDEX_BYTES: Family = Family::gauge(
    "pg_index_bloat_bytes",
    "Estimated bytes of the btree index beyond what its entries need at its fillfactor (pg_class.relpages vs reltuples and pg_stats.avg_width). Only sees dead space after VACUUM or ANALYZE; absent without statistics or under 10 pages. Cached 300s by default.",
    INDEX_LABELS,
);
static TABLE_EXACT_RATIO: Family = Family::gauge(
    "pg_table_bloat_exact_ratio",
    "Measured share (0-1) of the heap its live rows do not need at its fillfactor: 1 - (table_len - approx_free_space - dead_tuple_len) / (table_len * fillfactor/100) from pgstattuple_approx. Only with PGMAINT_BLOAT_EXACT=on and pgstattuple installed, for the 50 largest tables. Cached 300s by default.",
    TABLE_LABELS,
);
static TOAST_EXACT_RATIO: Family = Family::gauge(
    "pg_table_toast_bloat_exact_ratio",
    "Measured share (0-1) of the TOAST table that is free or dead: (approx_free_space + dead_tuple_len) / table_len from pgstattuple_approx. Only with PGMAINT_BLOAT_EXACT=on and pgstattuple installed, for the 50 largest tables. Cached 300s by default.",
    TABLE_LABELS,
);
static INDEX_EXACT_RATIO: Family = Family::gauge(
    "pg_index_bloat_exact_ratio",
    "Measured share (0-1) of the btree index its entries do not need at its fillfactor: 1 - (1 + internal_pages + leaf_pages * avg_leaf_density / fillfactor) / total pages, from pgstatindex. Only with PGMAINT_BLOAT_EXACT=on and pgstattuple installed, for the 50 largest btree indexes up to 1 GiB. Cached 300s by default.",
    INDEX_LABELS,
);

static FAMILIES: &[&Family] = &[
    &TABLE_RATIO,
    &TABLE_BYTES,
    &TOAST_BYTES,
    &STATS_MISSING,
    &INDEX_RATIO,
    &INDEX_BYTES,
    &TABLE_EXACT_RATIO,
    &TOAST_EXACT_RATIO,
    &INDEX_EXACT_RATIO,
];

/// What the catalogs say about one relation (heap or btree index).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Input {
    pub pages: f64,
    /// pg_class.reltuples; negative: never analyzed or vacuumed.
    pub tuples: f64,
    /// Fillfactor in percent.
    pub fillfactor: f64,
    /// Columns stored in a tuple, and how many of them have statistics.
    pub columns: f64,
    pub columns_with_stats: f64,
    pub max_null_frac: f64,
    /// Average bytes of column data per tuple: Σ (1 - null_frac) · avg_width.
    pub width: f64,
    pub block_size: f64,
}

/// An estimate: pages the live tuples need and what is beyond that.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Estimate {
    pub needed_pages: f64,
    pub wasted_bytes: f64,
    /// wasted / size, 0–1; None under `MIN_PAGES`.
    pub ratio: Option<f64>,
}

const MAXALIGN: f64 = 8.0;
const PAGE_HEADER: f64 = 24.0;
const LINE_POINTER: f64 = 4.0;
/// BTPageOpaqueData at the end of every btree page.
const BTREE_OPAQUE: f64 = 16.0;
/// Internal btree pages are built 70 % full (BTREE_NONLEAF_FILLFACTOR).
const BTREE_NONLEAF_FILLFACTOR: f64 = 70.0;

fn maxalign(n: f64) -> f64 {
    (n.ceil() / MAXALIGN).ceil() * MAXALIGN
}

impl Input {
    /// Whether an estimate is possible: rows counted and every column's width known.
    pub fn has_statistics(&self) -> bool {
        self.tuples >= 0.0 && (self.tuples == 0.0 || self.columns_with_stats >= self.columns)
    }

    /// Tuples of `tuple` bytes (line pointer included) that fit on a page
    /// when `reserve` bytes must stay free (the fillfactor rule of heap
    /// insertion and of CREATE INDEX).
    fn per_page(&self, usable: f64, reserve: f64, tuple: f64) -> f64 {
        ((usable - reserve) / tuple).floor().max(1.0)
    }

    fn finish(&self, needed_pages: f64) -> Estimate {
        let wasted_pages = (self.pages - needed_pages).max(0.0);
        Estimate {
            needed_pages,
            wasted_bytes: wasted_pages * self.block_size,
            ratio: (self.pages >= MIN_PAGES).then(|| wasted_pages / self.pages),
        }
    }
}

/// Heap pages the live rows need at the table's fillfactor, TOAST excluded
/// (a toasted value counts with its 18-byte pointer, which is what
/// pg_stats.avg_width measures). None without statistics.
pub fn heap_estimate(i: &Input) -> Option<Estimate> {
    if !i.has_statistics() {
        return None;
    }
    // HeapTupleHeader is 23 bytes, plus a null bitmap when any column has NULLs.
    let bitmap = if i.max_null_frac > 0.0 {
        ((i.columns + 7.0) / 8.0).floor()
    } else {
        0.0
    };
    let tuple = maxalign(23.0 + bitmap) + maxalign(i.width) + LINE_POINTER;
    let usable = i.block_size - PAGE_HEADER;
    let reserve = i.block_size * (100.0 - i.fillfactor) / 100.0;
    // MaxHeapTuplesPerPage caps very narrow rows.
    let max_per_page = (usable / (maxalign(23.0) + LINE_POINTER)).floor();
    let per_page = i.per_page(usable, reserve, tuple).min(max_per_page);
    Some(i.finish((i.tuples / per_page).ceil()))
}

/// Btree pages the entries need at the index's fillfactor: the meta page,
/// leaf pages filled as CREATE INDEX fills them, and the internal levels
/// above. None without statistics.
pub fn btree_estimate(i: &Input) -> Option<Estimate> {
    if !i.has_statistics() {
        return None;
    }
    // IndexTupleData is 8 bytes, plus a 4-byte null bitmap when any column has NULLs.
    let header = if i.max_null_frac > 0.0 { 12.0 } else { 8.0 };
    let tuple = maxalign(header) + maxalign(i.width) + LINE_POINTER;
    let usable = i.block_size - PAGE_HEADER - BTREE_OPAQUE;
    let reserve = i.block_size * (100.0 - i.fillfactor) / 100.0;
    let leaf = (i.tuples / i.per_page(usable, reserve, tuple)).ceil();
    let mut needed = 1.0 + leaf;
    let fanout = i.per_page(
        usable,
        i.block_size * (100.0 - BTREE_NONLEAF_FILLFACTOR) / 100.0,
        tuple,
    );
    let mut level = leaf;
    while level > 1.0 {
        level = (level / fanout.max(2.0)).ceil();
        needed += level;
    }
    Some(i.finish(needed))
}

/// Exact heap ratio from pgstattuple: the share of the heap its live
/// tuples (with their page overhead) do not need at the fillfactor.
pub fn heap_exact_ratio(table_len: f64, free: f64, dead: f64, fillfactor: f64) -> Option<f64> {
    (table_len > 0.0)
        .then(|| (1.0 - (table_len - free - dead) / (table_len * fillfactor / 100.0)).clamp(0.0, 1.0))
}

/// Exact btree ratio from pgstatindex: leaf pages shrunk to the fillfactor
/// density, plus internal pages and the meta page, against the total
/// (deleted and empty pages count as wasted).
pub fn btree_exact_ratio(
    index_size: f64,
    block_size: f64,
    internal: f64,
    leaf: f64,
    density_pct: f64,
    fillfactor: f64,
) -> Option<f64> {
    let total = index_size / block_size;
    (total > 0.0 && density_pct.is_finite())
        .then(|| (1.0 - (1.0 + internal + leaf * density_pct / fillfactor) / total).clamp(0.0, 1.0))
}

fn input(row: crate::rows::Row<'_>, first: usize, pages: f64, tuples: f64) -> Result<Input, CollectError> {
    Ok(Input {
        pages,
        tuples,
        fillfactor: num0(row, first)?,
        columns: num0(row, first + 1)?,
        columns_with_stats: num0(row, first + 2)?,
        max_null_frac: num0(row, first + 3)?,
        width: num0(row, first + 4)?,
        block_size: num0(row, first + 5)?,
    })
}

pub struct Bloat;

impl Collector for Bloat {
    fn name(&self) -> &'static str {
        "bloat"
    }
    fn description(&self) -> &'static str {
        "Estimated wasted bytes and bloat ratio per table heap and btree index (from statistics; optional pgstattuple exact mode)."
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
            Query::new("heap", HEAP_SQL),
            Query::new("btree", BTREE_SQL),
        ];
        if ctx.config.bloat_exact {
            queries.push(
                Query::new("exact_heap", EXACT_HEAP_SQL)
                    .param(Param::Int(EXACT_TABLES))
                    .optional(),
            );
            queries.push(
                Query::new("exact_btree", EXACT_BTREE_SQL)
                    .param(Param::Int(EXACT_INDEXES))
                    .param(Param::Float(EXACT_INDEX_MAX_BYTES))
                    .optional(),
            );
        }
        Source::Sql(queries)
    }
    fn map(&self, ctx: &Ctx, input_rows: &Fetched, out: &mut Sink) -> Result<(), CollectError> {
        let kept = selection::kept(ctx, input_rows)?;
        let db = ctx.datname;
        for row in input_rows.rows("heap")? {
            let (schema, table) = (text(row, 0)?, text(row, 1)?);
            if !kept.contains(&schema, &table) {
                continue;
            }
            let labels = [db, schema.as_str(), table.as_str()];
            let heap = input(row, 5, num0(row, 2)?, num(row, 3)?.unwrap_or(-1.0))?;
            let toast_pages = num0(row, 4)?;
            if toast_pages > 0.0 {
                out.gauge(&TOAST_BYTES, &labels, toast_pages * heap.block_size);
            }
            out.gauge(
                &STATS_MISSING,
                &labels,
                if heap.has_statistics() { 0.0 } else { 1.0 },
            );
            if let Some(Estimate {
                wasted_bytes,
                ratio: Some(ratio),
                ..
            }) = heap_estimate(&heap)
            {
                out.gauge(&TABLE_RATIO, &labels, ratio);
                out.gauge(&TABLE_BYTES, &labels, wasted_bytes);
            }
        }
        for row in input_rows.rows("btree")? {
            let (schema, table, index) = (text(row, 0)?, text(row, 1)?, text(row, 2)?);
            if !kept.contains(&schema, &table) {
                continue;
            }
            let idx = input(row, 5, num0(row, 3)?, num(row, 4)?.unwrap_or(-1.0))?;
            if let Some(Estimate {
                wasted_bytes,
                ratio: Some(ratio),
                ..
            }) = btree_estimate(&idx)
            {
                let labels = [db, schema.as_str(), table.as_str(), index.as_str()];
                out.gauge(&INDEX_RATIO, &labels, ratio);
                out.gauge(&INDEX_BYTES, &labels, wasted_bytes);
            }
        }
        if let Some(rows) = input_rows.optional("exact_heap") {
            for row in rows {
                let (schema, table) = (text(row, 0)?, text(row, 1)?);
                if !kept.contains(&schema, &table) {
                    continue;
                }
                let labels = [db, schema.as_str(), table.as_str()];
                let ff = num0(row, 2)?;
                let heap = heap_exact_ratio(num0(row, 3)?, num0(row, 4)?, num0(row, 5)?, ff);
                out.gauge_opt(&TABLE_EXACT_RATIO, &labels, heap);
                if let (Some(len), Some(free), Some(dead)) = (num(row, 6)?, num(row, 7)?, num(row, 8)?) {
                    out.gauge_opt(
                        &TOAST_EXACT_RATIO,
                        &labels,
                        heap_exact_ratio(len, free, dead, 100.0),
                    );
                }
            }
        }
        if let Some(rows) = input_rows.optional("exact_btree") {
            for row in rows {
                let (schema, table, index) = (text(row, 0)?, text(row, 1)?, text(row, 2)?);
                if !kept.contains(&schema, &table) {
                    continue;
                }
                let ratio = btree_exact_ratio(
                    num0(row, 4)?,
                    num0(row, 8)?,
                    num0(row, 5)?,
                    num0(row, 6)?,
                    num0(row, 7)?,
                    num0(row, 3)?,
                );
                out.gauge_opt(
                    &INDEX_EXACT_RATIO,
                    &[db, schema.as_str(), table.as_str(), index.as_str()],
                    ratio,
                );
            }
        }
        Ok(())
    }
    fn cache_ttl(&self, config: &Config) -> Duration {
        config.bloat_cache
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn narrow(pages: f64, tuples: f64) -> Input {
        Input {
            pages,
            tuples,
            fillfactor: 100.0,
            columns: 2.0,
            columns_with_stats: 2.0,
            max_null_frac: 0.0,
            width: 8.0,
            block_size: 8192.0,
        }
    }

    #[test]
    fn heap_of_two_ints_matches_the_page_layout() {
        // 24-byte header + 8 bytes data + 4-byte line pointer: 226 rows per 8 kB page,
        // so 60,000 rows need the 266 pages a fresh load really takes.
        let e = heap_estimate(&narrow(266.0, 60000.0)).unwrap();
        assert_eq!(e.needed_pages, 266.0);
        assert_eq!(e.ratio, Some(0.0));
        // 60 % deleted: the same pages, 24,000 rows.
        let e = heap_estimate(&narrow(266.0, 24000.0)).unwrap();
        assert_eq!(e.needed_pages, 107.0);
        assert_eq!(e.wasted_bytes, 159.0 * 8192.0);
        assert!((e.ratio.unwrap() - 159.0 / 266.0).abs() < 1e-9);
    }

    #[test]
    fn fillfactor_nulls_and_the_narrow_row_cap() {
        let ff70 = Input {
            fillfactor: 70.0,
            ..narrow(100.0, 10000.0)
        };
        // 8168 - 2457.6 reserved = 5710.4 usable: 158 rows per page.
        assert_eq!(heap_estimate(&ff70).unwrap().needed_pages, 64.0);
        // Any NULL adds the bitmap; 23 + 1 still aligns to 24.
        let nulls = Input {
            max_null_frac: 0.3,
            columns: 9.0,
            columns_with_stats: 9.0,
            ..narrow(100.0, 10000.0)
        };
        // 23 + 2 bitmap bytes → 32-byte header: 8168 / 44 = 185 rows per page.
        assert_eq!(heap_estimate(&nulls).unwrap().needed_pages, 55.0);
        // No columns at all: MaxHeapTuplesPerPage (291) caps rows per page.
        let empty = Input {
            columns: 0.0,
            columns_with_stats: 0.0,
            width: 0.0,
            ..narrow(100.0, 2910.0)
        };
        assert_eq!(heap_estimate(&empty).unwrap().needed_pages, 10.0);
    }

    #[test]
    fn no_estimate_without_statistics_and_no_ratio_when_small() {
        assert_eq!(heap_estimate(&narrow(100.0, -1.0)), None);
        let unanalyzed = Input {
            columns_with_stats: 0.0,
            ..narrow(100.0, 5000.0)
        };
        assert!(!unanalyzed.has_statistics());
        assert_eq!(heap_estimate(&unanalyzed), None);
        assert_eq!(btree_estimate(&unanalyzed), None);
        // Everything deleted and vacuumed: no rows, no widths needed, all wasted.
        let emptied = Input {
            columns_with_stats: 0.0,
            ..narrow(50.0, 0.0)
        };
        assert_eq!(heap_estimate(&emptied).unwrap().ratio, Some(1.0));
        let small = heap_estimate(&narrow(9.0, 100.0)).unwrap();
        assert_eq!(small.ratio, None);
        assert_eq!(small.wasted_bytes, 8.0 * 8192.0);
    }

    #[test]
    fn btree_of_bigints() {
        let pk = Input {
            fillfactor: 90.0,
            columns: 1.0,
            columns_with_stats: 1.0,
            ..narrow(112.0, 40000.0)
        };
        // 8 + 8 + 4 = 20 bytes; (8152 - 819.2) / 20 = 366 per leaf; 110 leaves,
        // one root above them, one meta page.
        let e = btree_estimate(&pk).unwrap();
        assert_eq!(e.needed_pages, 112.0);
        assert_eq!(e.ratio, Some(0.0));
        let bloated = btree_estimate(&Input { pages: 224.0, ..pk }).unwrap();
        assert_eq!(bloated.ratio, Some(0.5));
    }

    #[test]
    fn exact_ratios() {
        // Fresh fillfactor-70 heap: 30 % free is the reserve, not bloat.
        assert_eq!(heap_exact_ratio(1000.0, 300.0, 0.0, 70.0), Some(0.0));
        // 60 % of its rows deleted: 72 % free, of which 60 % of the table is waste.
        let r = heap_exact_ratio(1000.0, 720.0, 0.0, 70.0).unwrap();
        assert!((r - 0.6).abs() < 1e-9, "{r}");
        assert_eq!(heap_exact_ratio(0.0, 0.0, 0.0, 100.0), None);
        // 100 leaf pages at 45 % density (half of 90), 1 internal, 1 meta.
        let r = btree_exact_ratio(102.0 * 8192.0, 8192.0, 1.0, 100.0, 45.0, 90.0).unwrap();
        assert!((r - (1.0 - 52.0 / 102.0)).abs() < 1e-9, "{r}");
        assert_eq!(btree_exact_ratio(8192.0, 8192.0, 0.0, 0.0, f64::NAN, 90.0), None);
    }

    #[test]
    fn cached_for_the_configured_time() {
        let c = Config::from_vars([
            (
                "PGMAINT_DATABASE_URL".to_string(),
                "postgresql://u@h/db".to_string(),
            ),
            ("PGMAINT_BLOAT_CACHE_SECONDS".to_string(), "120".to_string()),
        ])
        .unwrap();
        assert_eq!(Bloat.cache_ttl(&c), Duration::from_secs(120));
    }
}
