//! Session rules: long queries, sessions idle in transaction, prepared
//! transactions (the root causes that hold the xmin horizon) and connection
//! slots running out (`connections_high`).

use super::super::findings::{Ctx, Draft, Row, Rule};
use super::super::text::{duration, ev, literal, sql};
use super::super::thresholds as t;
use super::super::{Object, Severity};
use crate::collectors::activity::{
    CONNECTIONS, LONG_SESSION, MAX_CONNECTIONS, PREPARED_XACT, RESERVED_CONNECTIONS,
};

pub static RULES: &[Rule] = &[
    Rule {
        kind: "long_query",
        family: &LONG_SESSION,
        alert: "PostgresLongRunningQuery",
        critical_alert: None,
        why: "A long query holds its locks and the xmin horizon: VACUUM cannot remove rows deleted since it began.",
        check: long_query,
    },
    Rule {
        kind: "idle_in_transaction",
        family: &LONG_SESSION,
        alert: "PostgresIdleInTransaction",
        critical_alert: None,
        why: "An open transaction holds its locks and the xmin horizon while the application does nothing.",
        check: idle_in_transaction,
    },
    Rule {
        kind: "connections_high",
        family: &MAX_CONNECTIONS,
        alert: "PostgresConnectionsHigh",
        critical_alert: Some("PostgresConnectionsExhausted"),
        why: "When the slots are used up, new connections fail with \"too many clients already\".",
        check: connections,
    },
    Rule {
        kind: "prepared_xact",
        family: &PREPARED_XACT,
        alert: "PostgresPreparedTransactionOld",
        critical_alert: None,
        why: "A prepared transaction survives restarts and keeps its locks and the xmin horizon until \
              someone ends it: VACUUM cannot remove rows deleted since it began.",
        check: prepared,
    },
];

/// A long session's pid, the SQL condition that finds exactly that session
/// (not a new one that got the same pid), and who runs it.
fn session(r: &Row) -> Option<(i64, String, String)> {
    let pid = r.l("pid").parse::<i64>().ok()?;
    let guard = format!(
        "FROM pg_stat_activity WHERE pid = {pid} AND backend_start = {}",
        literal(r.l("backend_start"))
    );
    let who = format!(
        "user {}, application {}",
        r.l("usename"),
        if r.l("application_name").is_empty() {
            "(none)"
        } else {
            r.l("application_name")
        }
    );
    Some((pid, guard, who))
}

fn session_object(r: &Row, pid: i64) -> Object {
    Object {
        datname: Some(r.l("datname").to_string()),
        pid: Some(pid),
        ..Default::default()
    }
}

fn long_query(c: &Ctx, r: &Row) -> Option<Draft> {
    let (pid, guard, who) = session(r)?;
    if r.l("state") != "active" {
        return None;
    }
    let mut d = Draft::new(
        Severity::Warning,
        format!("Query running for {} ({who})", duration(r.value)),
        session_object(r, pid),
    );
    d.evidence = vec![
        ev("running for", r.value, "seconds"),
        ev(
            "PGMAINT_LONG_QUERY_SECONDS",
            c.config.long_query_seconds,
            "seconds",
        ),
    ];
    d.fix = vec![sql(format!("SELECT pg_cancel_backend(pid) {guard};"))];
    d.caution = Some(format!(
        "Cancelling ends the query, not the session; if it does not stop, end the session: \
         SELECT pg_terminate_backend(pid) {guard}; The backend_start condition makes sure a \
         new session that got the same pid is left alone."
    ));
    Some(d)
}

fn idle_in_transaction(_: &Ctx, r: &Row) -> Option<Draft> {
    let (pid, guard, who) = session(r)?;
    if r.l("state") == "active" {
        return None;
    }
    let warning = r.value > t::IDLE_IN_TRANSACTION_SECONDS;
    let mut d = Draft::new(
        if warning {
            Severity::Warning
        } else {
            Severity::Info
        },
        format!("Session idle in transaction for {} ({who})", duration(r.value)),
        session_object(r, pid),
    );
    d.evidence = vec![
        ev("idle in transaction for", r.value, "seconds"),
        ev("warning from", t::IDLE_IN_TRANSACTION_SECONDS, "seconds"),
    ];
    d.fix = vec![sql(format!("SELECT pg_terminate_backend(pid) {guard};"))];
    d.caution = Some(
        "Terminating rolls the transaction back and closes the session (cancelling does nothing \
         to an idle one). Find out which application leaves transactions open; \
         idle_in_transaction_session_timeout ends them automatically."
            .into(),
    );
    Some(d)
}

/// Client sessions against the slots ordinary roles may use (the row:
/// max_connections).
fn connections(c: &Ctx, r: &Row) -> Option<Draft> {
    let (max, reserved) = (r.value, c.scalar(&RESERVED_CONNECTIONS).unwrap_or(0.0));
    let rows: Vec<Row> = c.rows(&CONNECTIONS).collect();
    if rows.is_empty() {
        return None;
    }
    let used: f64 = rows
        .iter()
        .filter(|r| r.l("backend_type") == "client backend")
        .map(|r| r.value)
        .sum();
    let usable = max - reserved;
    if usable <= 0.0 {
        return None;
    }
    let ratio = used / usable;
    if ratio <= t::CONNECTIONS_WARNING_RATIO {
        return None;
    }
    let critical = ratio > t::CONNECTIONS_CRITICAL_RATIO;
    let mut d = Draft::new(
        if critical {
            Severity::Critical
        } else {
            Severity::Warning
        },
        "Connection slots are running out",
        Object::default(),
    );
    d.evidence = vec![
        ev("client sessions", used, "sessions"),
        ev("slots for ordinary roles", usable, "sessions"),
        ev("used", ratio, "ratio"),
    ];
    d.fix = vec![sql(
        "SELECT datname, usename, application_name, state, count(*) FROM pg_stat_activity \
         WHERE backend_type = 'client backend' GROUP BY 1, 2, 3, 4 ORDER BY 5 DESC;"
            .into(),
    )];
    d.caution = Some(
        "The query shows who holds the sessions. Many idle ones point to an oversized client pool: \
         shrink it or put a pooler (PgBouncer) in front, rather than raising max_connections."
            .into(),
    );
    Some(d)
}

fn prepared(_: &Ctx, r: &Row) -> Option<Draft> {
    let (db, gid) = (r.l("datname"), r.l("gid"));
    let xid_age = r.l("xid_age").parse::<f64>().unwrap_or(0.0);
    let warning = r.value > t::PREPARED_XACT_SECONDS || xid_age > t::XMIN_HOLDER_AGE;
    let mut d = Draft::new(
        if warning {
            Severity::Warning
        } else {
            Severity::Info
        },
        format!(
            "Prepared transaction never committed or rolled back, for {} (owner {})",
            duration(r.value),
            r.l("owner")
        ),
        Object {
            datname: Some(db.to_string()),
            gid: Some(gid.to_string()),
            ..Default::default()
        },
    );
    d.evidence = vec![
        ev("prepared for", r.value, "seconds"),
        ev("transaction ID age", xid_age, "transactions"),
        ev("warning from", t::PREPARED_XACT_SECONDS, "seconds"),
    ];
    d.fix = vec![sql(format!("ROLLBACK PREPARED {};", literal(gid)))];
    d.caution = Some(format!(
        "Run it connected to database {db}, as the owner or a superuser. Ask the transaction \
         manager that prepared it first: if the transaction committed on the other participants, \
         run COMMIT PREPARED {}; instead. Without two-phase commit in use, set \
         max_prepared_transactions = 0.",
        literal(gid)
    ));
    Some(d)
}
