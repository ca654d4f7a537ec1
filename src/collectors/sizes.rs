//! `sizes`: on-disk size of each table (heap, TOAST, all indexes) and of each
//! index, for the tables `selection::kept()` keeps.
//! Source: pg_relation_size, pg_total_relation_size, pg_indexes_size over
//! pg_class. Scope: every database. PostgreSQL 14+.
//!
//! Size functions stat every file of every relation and open each one under
//! a short AccessShareLock: ~1–3 s per 10,000 tables, too slow for every
//! scrape. So this collector is cached (`PGMAINT_SIZE_CACHE_SECONDS`, default
//! 60 s) and refreshed beside the scrape, never in it. A relation with a
//! granted or queued AccessExclusiveLock (VACUUM FULL, ALTER TABLE, REINDEX…)
//! gets no size sample that round: asking would queue behind the lock until
//! lock_timeout and fail the whole query.

use std::time::Duration;

use crate::collectors::selection;
use crate::collectors::{
    num, text, Collector, Ctx, Fetched, Meta, Query, Scope, Source, MIN_SUPPORTED_MAJOR,
};
use crate::config::Config;
use crate::error::CollectError;
use crate::metrics::{Family, Sink};

/// One row per user table or materialized view (kind 'table': heap, TOAST
/// with its index — NULL without a TOAST table — and all indexes) and one per
/// index of such a table (kind 'index'). Relations behind a granted or queued
/// AccessExclusiveLock are skipped, and so are the tables, TOAST tables and
/// indexes that belong to them.
const SQL: &str = "WITH locks AS MATERIALIZED (
  SELECT l.relation FROM pg_locks l
   WHERE l.locktype = 'relation' AND l.mode = 'AccessExclusiveLock'
     AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
), busy AS (
  SELECT relation AS relid FROM locks
  UNION SELECT i.indrelid FROM pg_index i JOIN locks ON locks.relation = i.indexrelid
  UNION SELECT t.oid FROM pg_class t JOIN locks ON locks.relation = t.reltoastrelid
  UNION SELECT i.indexrelid FROM pg_index i JOIN locks ON locks.relation = i.indrelid
), tables AS (
  SELECT c.oid, n.nspname, c.relname, c.reltoastrelid
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE c.relkind IN ('r', 'm')
     AND n.nspname NOT IN ('pg_catalog', 'information_schema')
     AND n.nspname !~ '^pg_toast' AND n.nspname NOT LIKE 'pg_temp%'
)
SELECT 'table', t.nspname::text, t.relname::text, '',
       pg_relation_size(t.oid)::float8,
       CASE WHEN t.reltoastrelid <> 0 THEN pg_total_relation_size(t.reltoastrelid)::float8 END,
       pg_indexes_size(t.oid)::float8
  FROM tables t WHERE t.oid NOT IN (SELECT relid FROM busy)
UNION ALL
SELECT 'index', t.nspname::text, t.relname::text, c.relname::text,
       pg_relation_size(c.oid)::float8, NULL, NULL
  FROM tables t JOIN pg_index i ON i.indrelid = t.oid JOIN pg_class c ON c.oid = i.indexrelid
 WHERE i.indexrelid NOT IN (SELECT relid FROM busy)";

const T: &[&str] = &["datname", "schemaname", "relname"];

static HEAP_BYTES: Family = Family::gauge(
    "pg_table_size_bytes",
    "Size of the table's main fork (pg_relation_size); cached 60s by default (PGMAINT_SIZE_CACHE_SECONDS); absent while an AccessExclusiveLock is held or awaited on the table or its indexes.",
    T,
);
static TOAST_BYTES: Family = Family::gauge(
    "pg_table_toast_size_bytes",
    "Size of the table's TOAST table including its index (pg_total_relation_size(reltoastrelid)); cached 60s by default; absent without a TOAST table or while an AccessExclusiveLock is held or awaited.",
    T,
);
static INDEXES_BYTES: Family = Family::gauge(
    "pg_table_indexes_size_bytes",
    "Total size of the table's indexes (pg_indexes_size); cached 60s by default; absent while an AccessExclusiveLock is held or awaited on the table or its indexes.",
    T,
);
pub static INDEX_BYTES: Family = Family::gauge(
    "pg_index_size_bytes",
    "Size of the index (pg_relation_size); cached 60s by default; absent while an AccessExclusiveLock is held or awaited on it or its table.",
    &["datname", "schemaname", "relname", "indexrelname"],
);

static FAMILIES: &[&Family] = &[&HEAP_BYTES, &TOAST_BYTES, &INDEXES_BYTES, &INDEX_BYTES];

/// What `sizes` is, once (see `Meta`).
const META: Meta = Meta {
    name: "sizes",
    description: "Table, TOAST and index sizes in bytes (cached, refreshed in the background).",
    scope: Scope::PerDatabase,
    families: FAMILIES,
    min_major: MIN_SUPPORTED_MAJOR,
    default_enabled: true,
};

pub struct Sizes;

impl Collector for Sizes {
    fn meta(&self) -> &'static Meta {
        &META
    }
    fn cache_ttl(&self, config: &Config) -> Duration {
        config.size_cache
    }
    fn source(&self, ctx: &Ctx) -> Source {
        Source::Sql(vec![selection::query(ctx), Query::new("sizes", SQL)])
    }
    fn map(&self, ctx: &Ctx, input: &Fetched, out: &mut Sink) -> Result<(), CollectError> {
        let kept = selection::kept(ctx, input)?;
        let db = ctx.datname;
        for row in input.rows("sizes")? {
            let (kind, schema, table) = (text(row, 0)?, text(row, 1)?, text(row, 2)?);
            if !kept.contains(&schema, &table) {
                continue;
            }
            if kind == "index" {
                out.gauge_opt(&INDEX_BYTES, &[db, &schema, &table, &text(row, 3)?], num(row, 4)?);
            } else {
                let l = &[db, schema.as_str(), table.as_str()];
                out.gauge_opt(&HEAP_BYTES, l, num(row, 4)?);
                out.gauge_opt(&TOAST_BYTES, l, num(row, 5)?);
                out.gauge_opt(&INDEXES_BYTES, l, num(row, 6)?);
            }
        }
        Ok(())
    }
}
