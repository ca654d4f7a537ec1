//! Session rules: long queries, sessions idle in transaction, prepared
//! transactions (the root causes that hold the xmin horizon) and connection
//! slots running out (`connections_high`).

use super::super::findings::{rows, scalar, New, Out};
use super::super::text::{duration, ev, literal, sql};
use super::super::thresholds as t;
use super::super::{Object, Severity};
use crate::scrape::Snapshot;

pub(crate) fn sessions(snap: &Snapshot, out: &mut Out) {
    let long_query = out.config.long_query_seconds;
    for r in rows(snap, "pgmaint_report_long_session_seconds") {
        let Ok(pid) = r.l("pid").parse::<i64>() else {
            continue;
        };
        let guard = format!(
            "FROM pg_stat_activity WHERE pid = {pid} AND backend_start = {}",
            literal(r.l("backend_start"))
        );
        let object = Object {
            datname: Some(r.l("datname").to_string()),
            pid: Some(pid),
            ..Default::default()
        };
        let who = format!(
            "user {}, application {}",
            r.l("usename"),
            if r.l("application_name").is_empty() {
                "(none)"
            } else {
                r.l("application_name")
            }
        );
        if r.l("state") == "active" {
            out.push_row(
                &r,
                New {
                    kind: "long_query",
                    severity: Severity::Warning,
                    title: format!("Query running for {} ({who})", duration(r.value)),
                    object,
                    evidence: vec![
                        ev("running for", r.value, "seconds"),
                        ev("PGMAINT_LONG_QUERY_SECONDS", long_query, "seconds"),
                    ],
                    why: "A long query holds its locks and the xmin horizon: VACUUM cannot remove rows deleted since it began.",
                    fix: vec![sql(format!("SELECT pg_cancel_backend(pid) {guard};"))],
                    caution: Some(format!(
                        "Cancelling ends the query, not the session; if it does not stop, end the session: \
                         SELECT pg_terminate_backend(pid) {guard}; The backend_start condition makes sure a \
                         new session that got the same pid is left alone."
                    )),
                    alert: "PostgresLongRunningQuery",
                },
            );
        } else {
            let warning = r.value > t::IDLE_IN_TRANSACTION_SECONDS;
            out.push_row(
                &r,
                New {
                    kind: "idle_in_transaction",
                    severity: if warning { Severity::Warning } else { Severity::Info },
                    title: format!("Session idle in transaction for {} ({who})", duration(r.value)),
                    object,
                    evidence: vec![
                        ev("idle in transaction for", r.value, "seconds"),
                        ev("warning from", t::IDLE_IN_TRANSACTION_SECONDS, "seconds"),
                    ],
                    why: "An open transaction holds its locks and the xmin horizon while the application does nothing.",
                    fix: vec![sql(format!("SELECT pg_terminate_backend(pid) {guard};"))],
                    caution: Some(
                        "Terminating rolls the transaction back and closes the session (cancelling does nothing \
                         to an idle one). Find out which application leaves transactions open; \
                         idle_in_transaction_session_timeout ends them automatically."
                            .into(),
                    ),
                    alert: "PostgresIdleInTransaction",
                },
            );
        }
    }
}

pub(crate) fn connections(snap: &Snapshot, out: &mut Out) {
    let (Some(max), reserved) = (
        scalar(snap, "pg_activity_max_connections"),
        scalar(snap, "pg_activity_reserved_connections").unwrap_or(0.0),
    ) else {
        return;
    };
    let rows_ = rows(snap, "pg_activity_connections");
    let Some(first) = rows_.first().copied() else {
        return;
    };
    let used: f64 = rows_
        .iter()
        .filter(|r| r.l("backend_type") == "client backend")
        .map(|r| r.value)
        .sum();
    let usable = max - reserved;
    if usable <= 0.0 {
        return;
    }
    let ratio = used / usable;
    if ratio <= t::CONNECTIONS_WARNING_RATIO {
        return;
    }
    let critical = ratio > t::CONNECTIONS_CRITICAL_RATIO;
    out.push_row(
        &first,
        New {
            kind: "connections_high",
            severity: if critical {
                Severity::Critical
            } else {
                Severity::Warning
            },
            title: "Connection slots are running out".into(),
            object: Object::default(),
            evidence: vec![
                ev("client sessions", used, "sessions"),
                ev("slots for ordinary roles", usable, "sessions"),
                ev("used", ratio, "ratio"),
            ],
            why: "When the slots are used up, new connections fail with \"too many clients already\".",
            fix: vec![sql(
                "SELECT datname, usename, application_name, state, count(*) FROM pg_stat_activity \
                 WHERE backend_type = 'client backend' GROUP BY 1, 2, 3, 4 ORDER BY 5 DESC;"
                    .into(),
            )],
            caution: Some(
                "The query shows who holds the sessions. Many idle ones point to an oversized client pool: \
                 shrink it or put a pooler (PgBouncer) in front, rather than raising max_connections."
                    .into(),
            ),
            alert: if critical {
                "PostgresConnectionsExhausted"
            } else {
                "PostgresConnectionsHigh"
            },
        },
    );
}

pub(crate) fn prepared(snap: &Snapshot, out: &mut Out) {
    for r in rows(snap, "pgmaint_report_prepared_xact_seconds") {
        let (db, gid) = (r.l("datname"), r.l("gid"));
        let xid_age = r.l("xid_age").parse::<f64>().unwrap_or(0.0);
        let warning = r.value > t::PREPARED_XACT_SECONDS || xid_age > t::XMIN_HOLDER_AGE;
        out.push_row(
            &r,
            New {
                kind: "prepared_xact",
                severity: if warning {
                    Severity::Warning
                } else {
                    Severity::Info
                },
                title: format!(
                    "Prepared transaction never committed or rolled back, for {} (owner {})",
                    duration(r.value),
                    r.l("owner")
                ),
                object: Object {
                    datname: Some(db.to_string()),
                    gid: Some(gid.to_string()),
                    ..Default::default()
                },
                evidence: vec![
                    ev("prepared for", r.value, "seconds"),
                    ev("transaction ID age", xid_age, "transactions"),
                    ev("warning from", t::PREPARED_XACT_SECONDS, "seconds"),
                ],
                why:
                    "A prepared transaction survives restarts and keeps its locks and the xmin horizon until \
                      someone ends it: VACUUM cannot remove rows deleted since it began.",
                fix: vec![sql(format!("ROLLBACK PREPARED {};", literal(gid)))],
                caution: Some(format!(
                    "Run it connected to database {db}, as the owner or a superuser. Ask the transaction \
                     manager that prepared it first: if the transaction committed on the other participants, \
                     run COMMIT PREPARED {}; instead. Without two-phase commit in use, set \
                     max_prepared_transactions = 0.",
                    literal(gid)
                )),
                alert: "PostgresPreparedTransactionOld",
            },
        );
    }
}
