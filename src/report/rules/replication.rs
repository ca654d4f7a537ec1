//! Replication slot rules: slots holding the xmin horizon
//! (`replication_slot_xmin`) and inactive slots retaining WAL
//! (`replication_slot_inactive`).

use super::super::findings::{by_labels, rows, New, Out};
use super::super::text::{ev, literal, sql};
use super::super::thresholds as t;
use super::super::{Object, Severity};
use crate::scrape::Snapshot;

pub(crate) fn slots(snap: &Snapshot, out: &mut Out) {
    let active = by_labels(snap, "pg_replication_slot_active");
    let retained = by_labels(snap, "pg_replication_slot_retained_wal_bytes");
    let xmin = by_labels(snap, "pg_replication_slot_xmin_age");
    let catalog_xmin = by_labels(snap, "pg_replication_slot_catalog_xmin_age");
    // Slots reported below as xmin holders (their finding shows the WAL too).
    let mut holders: Vec<&[String]> = vec![];
    for r in rows(snap, "pg_replication_slot_active") {
        let (x, cx) = (xmin.get(r.labels).copied(), catalog_xmin.get(r.labels).copied());
        let Some(age) = x.into_iter().chain(cx).reduce(f64::max) else {
            continue;
        };
        let inactive = r.value == 0.0;
        let old = age > t::XMIN_HOLDER_AGE;
        // An active standby with hot_standby_feedback holds a young xmin: normal.
        if !inactive && !old {
            continue;
        }
        let slot = r.l("slot_name");
        let wal = retained.get(r.labels).copied();
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
        let (fix, caution) =
            if inactive {
                holders.push(r.labels);
                (
                vec![sql(format!("SELECT pg_drop_replication_slot({});", literal(slot)))],
                "Nothing uses the slot, yet it keeps its xmin (and its WAL) for the day its consumer comes \
                 back. Drop it only if that standby or subscriber is gone for good: it then has to be \
                 rebuilt or resynchronised. Otherwise bring the consumer back."
                    .to_string(),
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
                 or turn hot_standby_feedback off there and accept query cancellations on the standby."
                    .to_string(),
            )
            };
        let database = r.l("database");
        out.push_row(
            &r,
            New {
                kind: "replication_slot_xmin",
                severity: if old || wal.is_some_and(|w| w > t::SLOT_RETAINED_WAL_BYTES) {
                    Severity::Warning
                } else {
                    Severity::Info
                },
                title: if inactive {
                    "An unused replication slot holds the xmin horizon".into()
                } else {
                    "A replication slot holds the xmin horizon far back".into()
                },
                object: Object {
                    datname: (!database.is_empty()).then(|| database.to_string()),
                    slot_name: Some(slot.to_string()),
                    ..Default::default()
                },
                evidence,
                why: "VACUUM cannot remove rows (catalog_xmin: catalog rows) deleted after the slot's xmin, in \
                      any database, and the database's transaction ID age keeps growing.",
                fix,
                caution: Some(caution),
                alert: "PostgresXminHorizonHeldBack",
            },
        );
    }
    for r in rows(snap, "pg_replication_slot_retained_wal_bytes") {
        if r.value <= t::SLOT_RETAINED_WAL_BYTES
            || active.get(r.labels) != Some(&0.0)
            || holders.contains(&r.labels)
        {
            continue;
        }
        let slot = r.l("slot_name");
        out.push_row(
            &r,
            New {
                kind: "replication_slot_inactive",
                severity: Severity::Warning,
                title: "An inactive replication slot retains WAL".into(),
                object: Object {
                    slot_name: Some(slot.to_string()),
                    ..Default::default()
                },
                evidence: vec![ev("WAL retained", r.value, "bytes")],
                why: "PostgreSQL keeps every WAL segment the slot's consumer has not confirmed, until the disk fills.",
                fix: vec![sql(format!("SELECT pg_drop_replication_slot({});", literal(slot)))],
                caution: Some(
                    "Only if its consumer (a standby, a logical subscriber) is gone for good: once dropped it \
                     has to be rebuilt or resynchronised. Otherwise bring the consumer back."
                        .into(),
                ),
                alert: "PostgresReplicationSlotInactive",
            },
        );
    }
}
