//! Replication slot rules: slots holding the xmin horizon
//! (`replication_slot_xmin`) and inactive slots retaining WAL
//! (`replication_slot_inactive`).

use super::super::findings::{Ctx, Draft, Row, Rule};
use super::super::text::{ev, literal, sql};
use super::super::thresholds as t;
use super::super::{Object, Severity};
use crate::collectors::replication::{SLOT_ACTIVE, SLOT_CATALOG_XMIN_AGE, SLOT_RETAINED, SLOT_XMIN_AGE};

pub static RULES: &[Rule] = &[
    Rule {
        kind: "replication_slot_xmin",
        family: &SLOT_ACTIVE,
        alert: "PostgresXminHorizonHeldBack",
        critical_alert: None,
        why: "VACUUM cannot remove rows (catalog_xmin: catalog rows) deleted after the slot's xmin, in \
              any database, and the database's transaction ID age keeps growing.",
        check: xmin_holder,
    },
    Rule {
        kind: "replication_slot_inactive",
        family: &SLOT_RETAINED,
        alert: "PostgresReplicationSlotInactive",
        critical_alert: None,
        why:
            "PostgreSQL keeps every WAL segment the slot's consumer has not confirmed, until the disk fills.",
        check: inactive,
    },
];

/// The slot's xmin and catalog_xmin ages (each absent when not set).
fn xmins(c: &Ctx, labels: &[String]) -> (Option<f64>, Option<f64>) {
    (
        c.get(&SLOT_XMIN_AGE, labels),
        c.get(&SLOT_CATALOG_XMIN_AGE, labels),
    )
}

/// The row: whether the slot is in use.
fn xmin_holder(c: &Ctx, r: &Row) -> Option<Draft> {
    let (x, cx) = xmins(c, r.labels);
    let age = x.into_iter().chain(cx).reduce(f64::max)?;
    let inactive = r.value == 0.0;
    let old = age > t::XMIN_HOLDER_AGE;
    // An active standby with hot_standby_feedback holds a young xmin: normal.
    if !inactive && !old {
        return None;
    }
    let slot = r.l("slot_name");
    let wal = c.get(&SLOT_RETAINED, r.labels);
    let mut evidence = vec![];
    if let Some(x) = x {
        evidence.push(ev("xmin age", x, "transactions"));
    }
    if let Some(cx) = cx {
        evidence.push(ev("catalog_xmin age", cx, "transactions"));
    }
    evidence.push(ev("slot in use", r.value, "flag"));
    if let Some(w) = wal {
        evidence.push(ev("WAL retained", w, "bytes"));
    }
    let (fix, caution) = if inactive {
        (
            vec![sql(format!(
                "SELECT pg_drop_replication_slot({});",
                literal(slot)
            ))],
            "Nothing uses the slot, yet it keeps its xmin (and its WAL) for the day its consumer comes \
             back. Drop it only if that standby or subscriber is gone for good: it then has to be \
             rebuilt or resynchronised. Otherwise bring the consumer back.",
        )
    } else {
        (
            vec![sql(format!(
                "SELECT application_name, client_addr, backend_xmin FROM pg_stat_replication \
                 WHERE pid = (SELECT active_pid FROM pg_replication_slots WHERE slot_name = {});",
                literal(slot)
            ))],
            "The consumer is connected: with hot_standby_feedback a standby sends the xmin of its own \
             oldest query or transaction here. End that on the standby (the query shows which one), \
             or turn hot_standby_feedback off there and accept query cancellations on the standby.",
        )
    };
    let database = r.l("database");
    let severity = if old || wal.is_some_and(|w| w > t::SLOT_RETAINED_WAL_BYTES) {
        Severity::Warning
    } else {
        Severity::Info
    };
    let title = if inactive {
        "An unused replication slot holds the xmin horizon"
    } else {
        "A replication slot holds the xmin horizon far back"
    };
    let object = Object {
        datname: (!database.is_empty()).then(|| database.to_string()),
        slot_name: Some(slot.to_string()),
        ..Default::default()
    };
    let mut d = Draft::new(severity, title, object);
    d.evidence = evidence;
    d.fix = fix;
    d.caution = Some(caution.to_string());
    Some(d)
}

/// The row: WAL the slot retains. An inactive slot that also holds an xmin
/// is reported by `xmin_holder` (its finding shows the WAL too).
fn inactive(c: &Ctx, r: &Row) -> Option<Draft> {
    let holds_xmin = xmins(c, r.labels) != (None, None);
    if r.value <= t::SLOT_RETAINED_WAL_BYTES || c.get(&SLOT_ACTIVE, r.labels) != Some(0.0) || holds_xmin {
        return None;
    }
    let slot = r.l("slot_name");
    let mut d = Draft::new(
        Severity::Warning,
        "An inactive replication slot retains WAL",
        Object {
            slot_name: Some(slot.to_string()),
            ..Default::default()
        },
    );
    d.evidence = vec![ev("WAL retained", r.value, "bytes")];
    d.fix = vec![sql(format!(
        "SELECT pg_drop_replication_slot({});",
        literal(slot)
    ))];
    d.caution = Some(
        "Only if its consumer (a standby, a logical subscriber) is gone for good: once dropped it \
         has to be rebuilt or resynchronised. Otherwise bring the consumer back."
            .into(),
    );
    Some(d)
}
