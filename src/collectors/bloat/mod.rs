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
//! is `heap_estimate` / `btree_estimate` in `estimate.rs`, unit-tested there;
//! the SQL is in `sql.rs`.
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

use crate::collectors::{
    num, num_req, selection, text, Collector, Ctx, Fetched, Meta, Param, Query, Scope, Source,
    MIN_SUPPORTED_MAJOR,
};
use crate::config::Config;
use crate::error::CollectError;
use crate::metrics::{Family, Sink};

mod estimate;
mod sql;

pub use estimate::{btree_estimate, btree_exact_ratio, heap_estimate, heap_exact_ratio, Estimate, Input};
use sql::{BTREE_SQL, EXACT_BTREE_SQL, EXACT_HEAP_SQL, HEAP_SQL};

/// Exact mode: how many of the largest tables pgstattuple_approx reads.
const EXACT_TABLES: i64 = 50;
/// Exact mode: how many btree indexes pgstatindex reads, and the size cap
/// (pgstatindex reads the whole index).
const EXACT_INDEXES: i64 = 50;
const EXACT_INDEX_MAX_BYTES: f64 = 1024.0 * 1024.0 * 1024.0;

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

fn input(row: crate::rows::Row<'_>, first: usize, pages: f64, tuples: f64) -> Result<Input, CollectError> {
    Ok(Input {
        pages,
        tuples,
        fillfactor: num_req(row, first)?,
        columns: num_req(row, first + 1)?,
        columns_with_stats: num_req(row, first + 2)?,
        max_null_frac: num_req(row, first + 3)?,
        width: num_req(row, first + 4)?,
        block_size: num_req(row, first + 5)?,
    })
}

/// What `bloat` is, once (see `Meta`).
const META: Meta = Meta {
    name: "bloat",
    description: "Estimated wasted bytes and bloat ratio per table heap and btree index (from statistics; optional pgstattuple exact mode).",
    scope: Scope::PerDatabase,
    families: FAMILIES,
    min_major: MIN_SUPPORTED_MAJOR,
    default_enabled: true,
};

pub struct Bloat;

impl Collector for Bloat {
    fn meta(&self) -> &'static Meta {
        &META
    }
    fn source(&self, ctx: &Ctx) -> Source {
        let mut queries = vec![
            selection::query(ctx),
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
            let heap = input(row, 5, num_req(row, 2)?, num(row, 3)?.unwrap_or(-1.0))?;
            let toast_pages = num_req(row, 4)?;
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
            let idx = input(row, 5, num_req(row, 3)?, num(row, 4)?.unwrap_or(-1.0))?;
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
                let ff = num_req(row, 2)?;
                let heap = heap_exact_ratio(num_req(row, 3)?, num_req(row, 4)?, num_req(row, 5)?, ff);
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
                    num_req(row, 4)?,
                    num_req(row, 8)?,
                    num_req(row, 5)?,
                    num_req(row, 6)?,
                    num_req(row, 7)?,
                    num_req(row, 3)?,
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
