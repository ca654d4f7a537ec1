//! Which tables of a database get per-table series: the cardinality controls
//! shared by `tables`, `indexes` and `bloat`.
//!
//! `PGMAINT_INCLUDE_SCHEMAS` / `PGMAINT_EXCLUDE_SCHEMAS` / `PGMAINT_EXCLUDE_TABLES`
//! (full-match regexes, applied here in Rust so the syntax is one everywhere)
//! filter first; then `PGMAINT_MAX_TABLES_PER_DATABASE` keeps every table that
//! needs attention, then the largest. What is left out is counted, never
//! silently dropped. Each collector runs `query()` beside its own queries
//! (pipelined on the same connection) and calls `kept()`, so all three agree.

use std::collections::HashSet;

use crate::collectors::{num0, text, Ctx, Fetched, Query};
use crate::error::CollectError;

/// Query name used in `Fetched`.
pub const NAME: &str = "selection";

/// One row per user table or materialized view (partitioned parents have no
/// statistics of their own and are left out): schema, name, whether it needs
/// attention (past an autovacuum trigger point, or with an invalid index),
/// the age of relfrozenxid, and its size estimated from relpages (cheap: no
/// file-system calls).
const SQL: &str = "SELECT n.nspname::text, c.relname::text,
       (coalesce(s.n_dead_tup, 0) > current_setting('autovacuum_vacuum_threshold')::float8
            + current_setting('autovacuum_vacuum_scale_factor')::float8 * greatest(c.reltuples, 0)
        OR EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND NOT i.indisvalid))::bool,
       age(c.relfrozenxid)::float8,
       ((c.relpages + coalesce(t.relpages, 0)
         + coalesce((SELECT sum(ic.relpages) FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
                      WHERE i.indrelid = c.oid), 0))::float8
        * current_setting('block_size')::float8)
  FROM pg_class c
  JOIN pg_namespace n ON n.oid = c.relnamespace
  LEFT JOIN pg_class t ON t.oid = c.reltoastrelid
  LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid
 WHERE c.relkind IN ('r', 'm')
   AND n.nspname NOT IN ('pg_catalog', 'information_schema')
   AND n.nspname !~ '^pg_toast'
   AND n.nspname NOT LIKE 'pg_temp%'";

/// How many of the oldest-relfrozenxid tables always count as needing attention.
const OLDEST_FROZEN_KEPT: usize = 10;

pub fn query() -> Query {
    Query::new(NAME, SQL)
}

/// The tables that get series, and how many were left out by the cap.
#[derive(Debug, Default)]
pub struct Kept {
    set: HashSet<(String, String)>,
    /// Tables that passed the schema/table filters but not the cap.
    pub omitted: usize,
}

impl Kept {
    pub fn contains(&self, schema: &str, table: &str) -> bool {
        self.set.contains(&(schema.to_string(), table.to_string()))
    }
    pub fn len(&self) -> usize {
        self.set.len()
    }
    pub fn is_empty(&self) -> bool {
        self.set.is_empty()
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

/// Applies filters and the cap to the rows of `query()`.
pub fn kept(ctx: &Ctx, input: &Fetched) -> Result<Kept, CollectError> {
    struct Cand {
        schema: String,
        table: String,
        attention: bool,
        frozen_age: f64,
        bytes: f64,
    }
    let mut cands = Vec::new();
    for row in input.rows(NAME)? {
        let (schema, table) = (text(row, 0)?, text(row, 1)?);
        if !wanted(ctx, &schema, &table) {
            continue;
        }
        cands.push(Cand {
            schema,
            table,
            attention: row.try_get::<_, Option<bool>>(2)?.unwrap_or(false),
            frozen_age: num0(row, 3)?,
            bytes: num0(row, 4)?,
        });
    }
    // The oldest relfrozenxid tables are where wraparound hits first.
    let mut by_age: Vec<usize> = (0..cands.len()).collect();
    by_age.sort_by(|&a, &b| cands[b].frozen_age.total_cmp(&cands[a].frozen_age));
    for &i in by_age.iter().take(OLDEST_FROZEN_KEPT) {
        cands[i].attention = true;
    }
    cands.sort_by(|a, b| b.attention.cmp(&a.attention).then(b.bytes.total_cmp(&a.bytes)));
    let cap = ctx.config.max_tables_per_database;
    let omitted = cands.len().saturating_sub(cap);
    let set = cands.into_iter().take(cap).map(|c| (c.schema, c.table)).collect();
    Ok(Kept { set, omitted })
}
