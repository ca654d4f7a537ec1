//! `locks`: heavyweight locks held and awaited, by database, mode and granted.
//! Sources: pg_locks, pg_stat_activity, pg_database. Scope: cluster.
//! PostgreSQL ≥ 14.
//!
//! A lock counts under the database it applies to (pg_locks.database). Locks
//! with no database of their own — transactionid, virtualxid, and locks on
//! shared catalogs (database 0) — count under the database of the session
//! that holds or awaits them (pg_stat_activity), so a blocked `UPDATE` and
//! the transaction it waits for land in the same database. Only locks of
//! prepared transactions (no session) have datname "". The exporter's own
//! locks are left out. Every non-template database gets all eight table lock
//! modes × granted, 0 when absent, so `rate()` and alerts see stable series;
//! other modes (SIReadLock) appear when present.

use crate::collectors::{
    num_req, text, Collector, Ctx, Fetched, Meta, Query, Scope, Source, MIN_SUPPORTED_MAJOR,
};
use crate::error::CollectError;
use crate::metrics::{Family, Sink};

/// One row per (database, mode, granted) with its lock count; zero rows are
/// added for the standard modes of every non-template database (the grid:
/// `coalesce(held.n, 0)` because no lock of that kind is held, a true 0).
const LOCKS_SQL: &str = "WITH held AS (
  SELECT coalesce(d.datname, a.datname, '')::text AS datname, l.mode::text AS mode, l.granted,
         count(*)::float8 AS n
    FROM pg_locks l
    LEFT JOIN pg_database d ON d.oid = l.database
    LEFT JOIN pg_stat_activity a ON a.pid = l.pid
   WHERE l.pid IS DISTINCT FROM pg_backend_pid()
   GROUP BY 1, 2, 3),
grid AS (
  SELECT d.datname::text AS datname, m.mode, g.granted
    FROM pg_database d
   CROSS JOIN unnest('{AccessShareLock,RowShareLock,RowExclusiveLock,ShareUpdateExclusiveLock,
                       ShareLock,ShareRowExclusiveLock,ExclusiveLock,AccessExclusiveLock}'::text[]) AS m(mode)
   CROSS JOIN (VALUES (true), (false)) AS g(granted)
   WHERE NOT d.datistemplate)
SELECT datname, mode, CASE WHEN granted THEN 'true' ELSE 'false' END, coalesce(held.n, 0)
  FROM held FULL JOIN grid USING (datname, mode, granted)
 ORDER BY 1, 2, 3";

static LOCKS: Family = Family::gauge(
    "pg_locks",
    "Heavyweight locks by database, mode and granted (pg_locks); locks without a database (transactionid, virtualxid, shared catalogs) count under the holder's session database (pg_stat_activity.datname).",
    &["datname", "mode", "granted"],
);

static FAMILIES: &[&Family] = &[&LOCKS];

/// What `locks` is, once (see `Meta`).
const META: Meta = Meta {
    name: "locks",
    description: "Heavyweight locks held and awaited, by database, mode and granted.",
    scope: Scope::Cluster,
    families: FAMILIES,
    min_major: MIN_SUPPORTED_MAJOR,
    default_enabled: true,
};

pub struct Locks;

impl Collector for Locks {
    fn meta(&self) -> &'static Meta {
        &META
    }
    fn source(&self, _ctx: &Ctx) -> Source {
        Source::Sql(vec![Query::new("locks", LOCKS_SQL)])
    }
    fn map(&self, _ctx: &Ctx, input: &Fetched, out: &mut Sink) -> Result<(), CollectError> {
        for row in input.rows("locks")? {
            let (db, mode, granted) = (text(row, 0)?, text(row, 1)?, text(row, 2)?);
            out.gauge(&LOCKS, &[&db, &mode, &granted], num_req(row, 3)?);
        }
        Ok(())
    }
}
