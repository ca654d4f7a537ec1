//! `statements` (off by default): the statements that take the most execution
//! time in each database.
//! Source: pg_stat_statements (the extension), pg_database, pg_roles.
//! Scope: cluster (the view covers every database, so it is read once, in the
//! DSN's database). PostgreSQL ≥ 14 (`toplevel`); PG 17 renamed
//! `blk_read_time`/`blk_write_time` to `shared_blk_read_time`/`..._write_time`.
//!
//! An entry is keyed by (userid, dbid, queryid, toplevel), so all four are
//! labels; queryid alone is not unique. Only the top `PGMAINT_STATEMENTS_LIMIT`
//! entries per database by total execution time are exported (ranked in SQL).
//! The query text is never a label of these families: it goes in
//! `pg_stat_statements_query_info`, only with `PGMAINT_STATEMENTS_QUERY_TEXT=on`,
//! and otherwise is not even read from PostgreSQL's query-text file
//! (`pg_stat_statements(showtext => false)`).
//!
//! The extension must be created in the DSN's database and preloaded
//! (`shared_preload_libraries`); without it the collector fails with an error
//! that says what to run.

use crate::collectors::{
    num, num_req, text, Collector, Ctx, Fetched, Meta, Param, Query, Scope, Source, MIN_SUPPORTED_MAJOR,
};
use const_format::concatcp;

use crate::error::CollectError;
use crate::metrics::{Family, Sink};

/// One row: whether the view is visible on the search path, and the
/// installed extension version (NULL when not installed in this database).
const INSTALLED_SQL: &str = "SELECT to_regclass('pg_stat_statements') IS NOT NULL,
       (SELECT extversion::text FROM pg_extension WHERE extname = 'pg_stat_statements')";

/// One row per entry among the top $1 of its database by total execution
/// time: database, role (its oid when the role was dropped), queryid,
/// toplevel, counters (times converted from ms to seconds), and the query text
/// (whitespace collapsed, first 200 characters) only when $2 = 1. Entries of
/// dropped databases are left out, and so are other roles' entries when the
/// role lacks pg_read_all_stats (their queryid is NULL, so they have no key).
/// Built from the columns every version has (`STATEMENTS_HEAD`), the two
/// block I/O times, whose names depend on the version, and the text and
/// ranking (`STATEMENTS_TAIL`).
const STATEMENTS_HEAD: &str =
    "SELECT d.datname::text, coalesce(r.rolname::text, s.userid::text), s.queryid::text,
       s.toplevel::text, s.calls::float8, (s.total_exec_time / 1000)::float8, s.rows::float8,
       s.shared_blks_hit::float8, s.shared_blks_read::float8, s.temp_blks_written::float8,
       s.wal_bytes::float8, (s.mean_exec_time / 1000)::float8,
       ";

/// The query text column, and the top $1 per database.
const STATEMENTS_TAIL: &str = ",
       left(regexp_replace(s.query, '\\s+', ' ', 'g'), 200)
  FROM (SELECT p.*, row_number() OVER (PARTITION BY p.dbid ORDER BY p.total_exec_time DESC, p.queryid, p.userid, p.toplevel) AS rank
          FROM pg_stat_statements($2::int8 = 1) p
         WHERE p.queryid IS NOT NULL) s
  JOIN pg_database d ON d.oid = s.dbid
  LEFT JOIN pg_roles r ON r.oid = s.userid
 WHERE s.rank <= $1";

/// PostgreSQL 14–16 (extension 1.9/1.10): blk_read_time, blk_write_time.
const STATEMENTS_SQL_14: &str = concatcp!(
    STATEMENTS_HEAD,
    "(s.blk_read_time / 1000)::float8, (s.blk_write_time / 1000)::float8",
    STATEMENTS_TAIL
);

/// PostgreSQL ≥ 17 (extension ≥ 1.11): shared_blk_read_time,
/// shared_blk_write_time.
const STATEMENTS_SQL_17: &str = concatcp!(
    STATEMENTS_HEAD,
    "(s.shared_blk_read_time / 1000)::float8, (s.shared_blk_write_time / 1000)::float8",
    STATEMENTS_TAIL
);

/// One row: entries evicted because pg_stat_statements.max was reached.
const INFO_SQL: &str = "SELECT dealloc::float8 FROM pg_stat_statements_info";

/// The extension version a server's query needs (`ALTER EXTENSION ... UPDATE`
/// after a major upgrade brings it there).
fn needed_version(major: i32) -> (u32, u32) {
    if major >= 17 {
        (1, 11)
    } else {
        (1, 9)
    }
}

/// "1.10" → (1, 10); anything else → None.
fn parse_version(v: &str) -> Option<(u32, u32)> {
    let (a, b) = v.split_once('.')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

const LABELS: &[&str] = &["datname", "user", "queryid", "toplevel"];

static CALLS: Family = Family::counter(
    "pg_stat_statements_calls_total",
    "Times the statement was executed (pg_stat_statements.calls); top PGMAINT_STATEMENTS_LIMIT per database by total_exec_time.",
    LABELS,
);
static EXEC_TIME: Family = Family::counter(
    "pg_stat_statements_exec_time_seconds_total",
    "Total time spent executing the statement (pg_stat_statements.total_exec_time, converted from ms).",
    LABELS,
);
static ROWS: Family = Family::counter(
    "pg_stat_statements_rows_total",
    "Rows retrieved or affected by the statement (pg_stat_statements.rows).",
    LABELS,
);
static SHARED_HIT: Family = Family::counter(
    "pg_stat_statements_shared_blks_hit_total",
    "Shared buffer hits of the statement, in blocks (pg_stat_statements.shared_blks_hit).",
    LABELS,
);
static SHARED_READ: Family = Family::counter(
    "pg_stat_statements_shared_blks_read_total",
    "Shared blocks the statement read from outside shared buffers (pg_stat_statements.shared_blks_read).",
    LABELS,
);
static TEMP_WRITTEN: Family = Family::counter(
    "pg_stat_statements_temp_blks_written_total",
    "Temporary-file blocks the statement wrote (pg_stat_statements.temp_blks_written).",
    LABELS,
);
static WAL_BYTES: Family = Family::counter(
    "pg_stat_statements_wal_bytes_total",
    "WAL the statement generated, in bytes (pg_stat_statements.wal_bytes).",
    LABELS,
);
static READ_TIME: Family = Family::counter(
    "pg_stat_statements_shared_blk_read_time_seconds_total",
    "Time the statement spent reading shared blocks (pg_stat_statements.shared_blk_read_time, blk_read_time before PG 17; ms converted); 0 unless track_io_timing is on.",
    LABELS,
);
static WRITE_TIME: Family = Family::counter(
    "pg_stat_statements_shared_blk_write_time_seconds_total",
    "Time the statement spent writing shared blocks (pg_stat_statements.shared_blk_write_time, blk_write_time before PG 17; ms converted); 0 unless track_io_timing is on.",
    LABELS,
);
static MEAN_TIME: Family = Family::gauge(
    "pg_stat_statements_mean_exec_time_seconds",
    "Mean execution time of the statement since its entry was created or reset (pg_stat_statements.mean_exec_time, converted from ms).",
    LABELS,
);
static QUERY_INFO: Family = Family::gauge(
    "pg_stat_statements_query_info",
    "Always 1; query is the normalized statement text (pg_stat_statements.query, whitespace collapsed, first 200 characters). Only with PGMAINT_STATEMENTS_QUERY_TEXT=on.",
    &["datname", "user", "queryid", "toplevel", "query"],
);
static DEALLOC: Family = Family::counter(
    "pg_stat_statements_dealloc_total",
    "Entries evicted because pg_stat_statements.max was reached (pg_stat_statements_info.dealloc); when it grows, rarely run statements lose their history.",
    &[],
);

static FAMILIES: &[&Family] = &[
    &CALLS,
    &EXEC_TIME,
    &ROWS,
    &SHARED_HIT,
    &SHARED_READ,
    &TEMP_WRITTEN,
    &WAL_BYTES,
    &READ_TIME,
    &WRITE_TIME,
    &MEAN_TIME,
    &QUERY_INFO,
    &DEALLOC,
];

/// What `statements` is, once (see `Meta`).
const META: Meta = Meta {
    name: "statements",
    description: "Top statements per database by total execution time (pg_stat_statements; off by default).",
    scope: Scope::Cluster,
    families: FAMILIES,
    min_major: MIN_SUPPORTED_MAJOR,
    default_enabled: false,
};

pub struct Statements;

impl Collector for Statements {
    fn meta(&self) -> &'static Meta {
        &META
    }
    fn source(&self, ctx: &Ctx) -> Source {
        let major = ctx.server.major();
        let sql = if major >= 17 {
            STATEMENTS_SQL_17
        } else {
            STATEMENTS_SQL_14
        };
        let limit = i64::try_from(ctx.config.statements_limit).unwrap_or(i64::MAX);
        Source::Sql(vec![
            Query::new("installed", INSTALLED_SQL),
            // Optional so that `map` can explain a missing extension instead of
            // passing on "relation does not exist".
            Query::new("statements", sql)
                .param(Param::Int(limit))
                .param(Param::Int(i64::from(ctx.config.statements_query_text)))
                .optional(),
            Query::new("info", INFO_SQL).optional(),
        ])
    }
    fn map(&self, ctx: &Ctx, input: &Fetched, out: &mut Sink) -> Result<(), CollectError> {
        let (visible, version) = match input.rows("installed")?.first() {
            Some(row) => (row.try_get::<_, bool>(0)?, row.try_get::<_, Option<String>>(1)?),
            None => (false, None),
        };
        let Some(version) = version.filter(|_| visible) else {
            return Err(CollectError::Other(format!(
                "pg_stat_statements is not installed in database {:?} (the exporter's DSN database): \
                 run CREATE EXTENSION pg_stat_statements there, with pg_stat_statements in shared_preload_libraries \
                 (if it is installed in another schema, put that schema on the exporter role's search_path)",
                ctx.datname
            )));
        };
        let rows = input.rows("statements").map_err(|e| {
            let needed = needed_version(ctx.server.major());
            match parse_version(&version) {
                Some(v) if v < needed => CollectError::Other(format!(
                    "pg_stat_statements {version} in database {:?} is older than this server needs ({}.{}): \
                     run ALTER EXTENSION pg_stat_statements UPDATE ({e})",
                    ctx.datname, needed.0, needed.1
                )),
                _ => e,
            }
        })?;
        for row in rows {
            let (db, user, queryid, toplevel) = (text(row, 0)?, text(row, 1)?, text(row, 2)?, text(row, 3)?);
            let labels = [db.as_str(), user.as_str(), queryid.as_str(), toplevel.as_str()];
            out.counter(&CALLS, &labels, num_req(row, 4)?);
            out.counter_opt(&EXEC_TIME, &labels, num(row, 5)?);
            out.counter_opt(&ROWS, &labels, num(row, 6)?);
            out.counter_opt(&SHARED_HIT, &labels, num(row, 7)?);
            out.counter_opt(&SHARED_READ, &labels, num(row, 8)?);
            out.counter_opt(&TEMP_WRITTEN, &labels, num(row, 9)?);
            out.counter_opt(&WAL_BYTES, &labels, num(row, 10)?);
            out.gauge_opt(&MEAN_TIME, &labels, num(row, 11)?);
            out.counter_opt(&READ_TIME, &labels, num(row, 12)?);
            out.counter_opt(&WRITE_TIME, &labels, num(row, 13)?);
            if ctx.config.statements_query_text {
                if let Some(query) = row.try_get::<_, Option<String>>(14)? {
                    out.gauge(&QUERY_INFO, &[&db, &user, &queryid, &toplevel, &query], 1.0);
                }
            }
        }
        if let Some(row) = input.optional("info").and_then(|r| r.first()) {
            out.counter_opt(&DEALLOC, &[], num(row, 0)?);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extension_versions() {
        assert_eq!(parse_version("1.10"), Some((1, 10)));
        assert_eq!(parse_version("1.9"), Some((1, 9)));
        assert_eq!(parse_version("banana"), None);
        assert!(parse_version("1.10").unwrap() > parse_version("1.9").unwrap());
        assert!(parse_version("1.10").unwrap() < needed_version(17));
        assert!(parse_version("1.9").unwrap() >= needed_version(14));
    }
}
