//! `activity`: sessions, long queries, idle transactions, lock waits and what
//! holds back the xmin horizon.
//! Source: pg_stat_activity, pg_locks, pg_prepared_xacts, pg_replication_slots.
//! Scope: cluster. PostgreSQL ≥ 14 (`pg_locks.waitstart`).
//!
//! Without pg_monitor/pg_read_all_stats PostgreSQL shows other roles'
//! sessions with NULL state, wait events, times and xmin: they count under
//! `state=""`, and the families computed from those columns (lock waiters,
//! query and transaction ages, long queries, the `backend_xmin` horizon) are
//! not exported at all rather than silently low (see
//! `pgmaint_exporter_role_privilege`). No query text is ever used as a label.

use crate::collectors::{
    num, num_req, text, Collector, Ctx, Fetched, Meta, Param, Query, Scope, Source, MIN_SUPPORTED_MAJOR,
};
use crate::error::CollectError;
use crate::metrics::{Family, Sink};
use const_format::concatcp;

/// One row per (database, state, backend type) with its session count.
const CONNECTIONS_SQL: &str = "SELECT coalesce(datname, '')::text, coalesce(state, '')::text,
       coalesce(backend_type, '')::text, count(*)::float8
  FROM pg_stat_activity
 WHERE pid <> pg_backend_pid()
 GROUP BY 1, 2, 3";

/// One row per database: lock waiters, the oldest running query, the longest
/// idle-in-transaction spell, and how many queries run longer than $1 seconds.
/// Our own session is excluded.
const SESSIONS_SQL: &str = "SELECT coalesce(datname, '')::text,
       count(*) FILTER (WHERE wait_event_type = 'Lock')::float8,
       extract(epoch FROM max(clock_timestamp() - query_start) FILTER (WHERE state = 'active'))::float8,
       extract(epoch FROM max(clock_timestamp() - state_change) FILTER (WHERE state LIKE 'idle in transaction%'))::float8,
       count(*) FILTER (WHERE state = 'active' AND backend_type = 'client backend'
                          AND clock_timestamp() - query_start > make_interval(secs => $1))::float8
  FROM pg_stat_activity
 WHERE pid <> pg_backend_pid() AND datname IS NOT NULL
 GROUP BY 1";

/// One row per (database, transaction state): age of the oldest open transaction.
const XACTS_SQL: &str = "SELECT coalesce(datname, '')::text, state::text,
       extract(epoch FROM max(clock_timestamp() - xact_start))::float8
  FROM pg_stat_activity
 WHERE pid <> pg_backend_pid() AND xact_start IS NOT NULL
   AND state IN ('active', 'idle in transaction', 'idle in transaction (aborted)')
 GROUP BY 1, 2";

/// One row per database with a session waiting on a heavyweight lock: the
/// longest current wait. Lock waits on transaction ids have no `database` in
/// pg_locks, so the waiter's database comes from pg_stat_activity.
const LOCK_WAITS_SQL: &str = "SELECT coalesce(a.datname, '')::text,
       extract(epoch FROM max(clock_timestamp() - l.waitstart))::float8
  FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
 WHERE NOT l.granted AND l.waitstart IS NOT NULL
 GROUP BY 1";

/// One row per kind of xmin holder: the age (in transactions) of the oldest
/// one. Any of them keeps VACUUM from removing dead rows newer than it.
///
/// Sessions PostgreSQL's ComputeXidHorizons() (procarray.c) skips are left
/// out of `backend_xmin`: a VACUUM (PROC_IN_VACUUM: every pid in
/// pg_stat_progress_vacuum, manual or autovacuum; VACUUM FULL is not there
/// and does hold the horizon) and a session decoding a logical slot
/// (PROC_IN_LOGICAL_DECODING: the slot's active_pid; what it needs is the
/// slot's catalog_xmin, counted below). Both show a backend_xmin, yet neither
/// stops VACUUM elsewhere from removing rows. An autovacuum worker running
/// ANALYZE is not skipped: since PostgreSQL 14 its snapshot holds the horizon.
const HORIZON_SQL: &str = "SELECT 'backend_xmin', max(age(backend_xmin))::float8 FROM pg_stat_activity
 WHERE pid NOT IN (SELECT pid FROM pg_stat_progress_vacuum)
   AND pid NOT IN (SELECT active_pid FROM pg_replication_slots
                    WHERE slot_type = 'logical' AND active_pid IS NOT NULL)
UNION ALL SELECT 'prepared_xact', max(age(transaction))::float8 FROM pg_prepared_xacts
UNION ALL SELECT 'replication_slot_xmin', max(age(xmin))::float8 FROM pg_replication_slots
UNION ALL SELECT 'replication_slot_catalog_xmin', max(age(catalog_xmin))::float8 FROM pg_replication_slots";

/// One row: prepared transactions and the age of the oldest.
const PREPARED_SQL: &str = "SELECT count(*)::float8,
       extract(epoch FROM clock_timestamp() - min(prepared))::float8
  FROM pg_prepared_xacts";

/// For the report only (never exported): one row per client session running
/// a query, or idle in a transaction, for longer than $1 seconds — the 50
/// oldest. `backend_start` (ISO 8601 whatever DateStyle says) lets the fix
/// command target this very session, not a later one that reuses the pid.
/// No query text.
const LONG_SESSIONS_SQL: &str = "SELECT datname::text, pid::float8, state::text,
       coalesce(usename::text, ''), coalesce(application_name, ''),
       to_json(backend_start) #>> '{}',
       extract(epoch FROM clock_timestamp()
         - CASE WHEN state = 'active' THEN query_start ELSE state_change END)::float8
  FROM pg_stat_activity
 WHERE pid <> pg_backend_pid() AND datname IS NOT NULL AND backend_type = 'client backend'
   AND ((state = 'active' AND clock_timestamp() - query_start > make_interval(secs => $1))
     OR (state LIKE 'idle in transaction%' AND clock_timestamp() - state_change > make_interval(secs => $1)))
 ORDER BY 7 DESC
 LIMIT 50";

/// For the report only (never exported): one row per prepared transaction
/// older than $1 seconds — the 50 oldest — with what `ROLLBACK PREPARED`
/// needs: its gid, the database to run it in, and its owner.
const PREPARED_LIST_SQL: &str = "SELECT database::text, gid, owner::text,
       age(transaction)::text,
       extract(epoch FROM clock_timestamp() - prepared)::float8
  FROM pg_prepared_xacts
 WHERE clock_timestamp() - prepared > make_interval(secs => $1)
 ORDER BY prepared
 LIMIT 50";

/// One row: the connection limits. reserved_connections exists from
/// PostgreSQL 16; before that no slots are reserved for
/// pg_use_reserved_connections, so its coalesce to 0 is a true 0.
const LIMITS_SQL: &str = "SELECT current_setting('max_connections')::float8,
       current_setting('superuser_reserved_connections')::float8
         + coalesce(current_setting('reserved_connections', true), '0')::float8";

/// `HORIZON_SQL`'s four rows, each with `PREPARED_SQL`'s and `LIMITS_SQL`'s
/// one row beside it: three single-row reads in one statement (issue 22:
/// fewer statements per scrape).
const HORIZON_PREPARED_LIMITS_SQL: &str = concatcp!(
    "SELECT h.*, p.*, l.* FROM (",
    HORIZON_SQL,
    ") h CROSS JOIN (",
    PREPARED_SQL,
    ") p CROSS JOIN (",
    LIMITS_SQL,
    ") l"
);

pub static CONNECTIONS: Family = Family::gauge(
    "pg_activity_connections",
    "Sessions by database, state and backend_type (pg_stat_activity; state is empty for background processes and for sessions hidden by missing privileges).",
    &["datname", "state", "backend_type"],
);
pub static MAX_CONNECTIONS: Family = Family::gauge(
    "pg_activity_max_connections",
    "The max_connections setting: the server's connection limit.",
    &[],
);
pub static RESERVED_CONNECTIONS: Family = Family::gauge(
    "pg_activity_reserved_connections",
    "Connections reserved for superusers and pg_use_reserved_connections (superuser_reserved_connections + reserved_connections).",
    &[],
);
static LOCK_WAITING: Family = Family::gauge(
    "pg_activity_lock_waiting_sessions",
    "Sessions waiting on a heavyweight lock (pg_stat_activity.wait_event_type = 'Lock').",
    &["datname"],
);
static LOCK_WAIT_MAX: Family = Family::gauge(
    "pg_activity_lock_wait_max_seconds",
    "Longest current wait for a heavyweight lock (pg_locks.waitstart); absent when nobody waits.",
    &["datname"],
);
static OLDEST_QUERY: Family = Family::gauge(
    "pg_activity_oldest_query_age_seconds",
    "Age of the oldest running query (state 'active', now - query_start); absent when none runs.",
    &["datname"],
);
static IDLE_IN_XACT: Family = Family::gauge(
    "pg_activity_idle_in_transaction_max_seconds",
    "Longest time a session has sat idle inside an open transaction (now - state_change for 'idle in transaction%').",
    &["datname"],
);
static LONG_QUERIES: Family = Family::gauge(
    "pg_activity_long_running_queries",
    "Client queries running longer than PGMAINT_LONG_QUERY_SECONDS.",
    &["datname"],
);
static OLDEST_XACT: Family = Family::gauge(
    "pg_activity_oldest_xact_age_seconds",
    "Age of the oldest open transaction by session state (now - xact_start).",
    &["datname", "state"],
);
static HORIZON: Family = Family::gauge(
    "pg_xmin_horizon_age",
    "Age in transactions of the oldest xmin held by each kind of holder (backend_xmin, prepared_xact, replication_slot_xmin, replication_slot_catalog_xmin); VACUUM cannot remove rows newer than it. backend_xmin leaves out running VACUUMs and logical decoding, which PostgreSQL ignores too.",
    &["holder"],
);
static PREPARED: Family = Family::gauge(
    "pg_prepared_xacts",
    "Prepared (two-phase) transactions waiting for COMMIT/ROLLBACK PREPARED (pg_prepared_xacts).",
    &[],
);
static PREPARED_AGE: Family = Family::gauge(
    "pg_prepared_xacts_oldest_age_seconds",
    "Age of the oldest prepared transaction; absent when there is none.",
    &[],
);

/// Report detail (not exported, see `Sink::details`): a session from
/// LONG_SESSIONS_SQL; the value is how long it has been in its state.
pub static LONG_SESSION: Family = Family::gauge(
    "pgmaint_report_long_session_seconds",
    "Report only: a client session active or idle in transaction for longer than PGMAINT_LONG_QUERY_SECONDS.",
    &[
        "datname",
        "pid",
        "state",
        "usename",
        "application_name",
        "backend_start",
    ],
);

/// Report detail: a prepared transaction from PREPARED_LIST_SQL; the value
/// is its age in seconds, `xid_age` the age of its transaction id.
pub static PREPARED_XACT: Family = Family::gauge(
    "pgmaint_report_prepared_xact_seconds",
    "Report only: a prepared transaction older than PGMAINT_LONG_QUERY_SECONDS.",
    &["datname", "gid", "owner", "xid_age"],
);

static FAMILIES: &[&Family] = &[
    &CONNECTIONS,
    &MAX_CONNECTIONS,
    &RESERVED_CONNECTIONS,
    &LOCK_WAITING,
    &LOCK_WAIT_MAX,
    &OLDEST_QUERY,
    &IDLE_IN_XACT,
    &LONG_QUERIES,
    &OLDEST_XACT,
    &HORIZON,
    &PREPARED,
    &PREPARED_AGE,
];

/// What `activity` is, once (see `Meta`).
const META: Meta = Meta {
    name: "activity",
    description: "Sessions by state, long queries, idle transactions, lock waits, xmin horizon holders.",
    scope: Scope::Cluster,
    families: FAMILIES,
    min_major: MIN_SUPPORTED_MAJOR,
    default_enabled: true,
};

pub struct Activity;

impl Collector for Activity {
    fn meta(&self) -> &'static Meta {
        &META
    }
    fn source(&self, ctx: &Ctx) -> Source {
        Source::Sql(vec![
            Query::new("connections", CONNECTIONS_SQL),
            Query::new("sessions", SESSIONS_SQL).param(Param::Float(ctx.config.long_query_seconds)),
            Query::new("xacts", XACTS_SQL),
            Query::new("lock_waits", LOCK_WAITS_SQL),
            Query::new("horizon", HORIZON_PREPARED_LIMITS_SQL),
            Query::new("prepared_list", PREPARED_LIST_SQL)
                .param(Param::Float(ctx.config.long_query_seconds))
                .optional(),
            Query::new("long_sessions", LONG_SESSIONS_SQL)
                .param(Param::Float(ctx.config.long_query_seconds))
                .optional(),
        ])
    }
    fn map(&self, ctx: &Ctx, input: &Fetched, out: &mut Sink) -> Result<(), CollectError> {
        // Other roles' sessions hide these columns from us: absent, not low.
        let sees_all = ctx.server.read_all_stats;
        for row in input.rows("connections")? {
            let (db, state, kind) = (text(row, 0)?, text(row, 1)?, text(row, 2)?);
            out.gauge(&CONNECTIONS, &[&db, &state, &kind], num_req(row, 3)?);
        }
        for row in input.rows("sessions")?.iter().filter(|_| sees_all) {
            let db = text(row, 0)?;
            out.gauge(&LOCK_WAITING, &[&db], num_req(row, 1)?);
            out.gauge_opt(&OLDEST_QUERY, &[&db], num(row, 2)?);
            out.gauge_opt(&IDLE_IN_XACT, &[&db], num(row, 3)?);
            out.gauge(&LONG_QUERIES, &[&db], num_req(row, 4)?);
        }
        for row in input.rows("xacts")?.iter().filter(|_| sees_all) {
            out.gauge_opt(&OLDEST_XACT, &[&text(row, 0)?, &text(row, 1)?], num(row, 2)?);
        }
        for row in input.rows("lock_waits")? {
            out.gauge_opt(&LOCK_WAIT_MAX, &[&text(row, 0)?], num(row, 1)?);
        }
        let horizon = input.rows("horizon")?;
        for row in horizon {
            let holder = text(row, 0)?;
            if holder == "backend_xmin" && !sees_all {
                continue;
            }
            out.gauge_opt(&HORIZON, &[&holder], num(row, 1)?);
        }
        // The prepared transactions and the limits: the same on every row.
        if let Some(row) = horizon.first() {
            out.gauge(&PREPARED, &[], num_req(row, 2)?);
            out.gauge_opt(&PREPARED_AGE, &[], num(row, 3)?);
            out.gauge(&MAX_CONNECTIONS, &[], num_req(row, 4)?);
            out.gauge(&RESERVED_CONNECTIONS, &[], num_req(row, 5)?);
        }
        for row in input
            .optional("long_sessions")
            .unwrap_or_default()
            .iter()
            .filter(|_| sees_all)
        {
            let pid = format!("{}", num_req(row, 1)? as i64);
            let l = [
                text(row, 0)?,
                pid,
                text(row, 2)?,
                text(row, 3)?,
                text(row, 4)?,
                text(row, 5)?,
            ];
            let l: Vec<&str> = l.iter().map(String::as_str).collect();
            out.detail(&LONG_SESSION, &l, num_req(row, 6)?);
        }
        for row in input.optional("prepared_list").unwrap_or_default().iter() {
            let l = [text(row, 0)?, text(row, 1)?, text(row, 2)?, text(row, 3)?];
            let l: Vec<&str> = l.iter().map(String::as_str).collect();
            out.detail(&PREPARED_XACT, &l, num_req(row, 4)?);
        }
        Ok(())
    }
}
