//! `database_size`: disk space of each database, from `pg_database_size()`.
//! Source: pg_database. Scope: cluster. PostgreSQL 14+.
//!
//! `pg_database_size()` stats every file of every database: 436 ms for one
//! database of 10,000 tables (30,000 relations) on the benchmark machine,
//! as much as the per-table statistics of that database. A database's size
//! moves slowly, so this collector is cached like `sizes`
//! (`PGMAINT_SIZE_CACHE_SECONDS`, default 60 s) and refreshed beside the
//! scrape, never in it. It was part of `database` until the benchmark of
//! issue 6 showed it dominating the per-scrape server time.

use std::time::Duration;

use crate::collectors::{
    num, text, Collector, Ctx, Fetched, Meta, Query, Scope, Source, MIN_SUPPORTED_MAJOR,
};
use crate::config::Config;
use crate::error::CollectError;
use crate::metrics::{Family, Sink};

/// One row per non-template database: bytes on disk, NULL (no sample) for a
/// database the role may not size — pg_database_size() needs CONNECT on it or
/// pg_read_all_stats, and would fail the whole query otherwise. Invalid
/// databases (datconnlimit -2, an interrupted DROP DATABASE) are skipped.
const SQL: &str = "SELECT datname::text,
       CASE WHEN has_database_privilege(oid, 'CONNECT')
              OR pg_has_role('pg_read_all_stats', 'MEMBER')
            THEN pg_database_size(oid) END::float8
  FROM pg_database
 WHERE NOT datistemplate AND datconnlimit <> -2";

static SIZE: Family = Family::gauge(
    "pg_database_size_bytes",
    "Disk space used by the database (pg_database_size()); cached 60s by default (PGMAINT_SIZE_CACHE_SECONDS); absent without CONNECT on the database or pg_read_all_stats.",
    &["datname"],
);

static FAMILIES: &[&Family] = &[&SIZE];

/// What `database_size` is, once (see `Meta`).
const META: Meta = Meta {
    name: "database_size",
    description: "Disk space of each database in bytes (cached, refreshed in the background).",
    scope: Scope::Cluster,
    families: FAMILIES,
    min_major: MIN_SUPPORTED_MAJOR,
    default_enabled: true,
};

pub struct DatabaseSize;

impl Collector for DatabaseSize {
    fn meta(&self) -> &'static Meta {
        &META
    }
    fn cache_ttl(&self, config: &Config) -> Duration {
        config.size_cache
    }
    fn source(&self, _ctx: &Ctx) -> Source {
        Source::Sql(vec![Query::new("sizes", SQL)])
    }
    fn map(&self, _ctx: &Ctx, input: &Fetched, out: &mut Sink) -> Result<(), CollectError> {
        for row in input.rows("sizes")? {
            out.gauge_opt(&SIZE, &[&text(row, 0)?], num(row, 1)?);
        }
        Ok(())
    }
}
