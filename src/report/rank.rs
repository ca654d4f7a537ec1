//! Ranking: root causes (what holds the xmin horizon back) before the
//! findings whose VACUUM they block, then severity, kind and size.

use super::Finding;
use super::Severity;

/// Findings that hold the xmin horizon back: while one of them lasts, VACUUM
/// cannot remove dead rows or advance relfrozenxid, so the report puts them
/// before what they block.
pub const ROOT_CAUSES: &[&str] = &[
    "idle_in_transaction",
    "long_query",
    "prepared_xact",
    "replication_slot_xmin",
];

/// Findings whose fix is a VACUUM, and so waits for the root causes.
const NEEDS_VACUUM: &[&str] = &[
    "vacuum_overdue",
    "vacuum_needed_autovacuum_off",
    "not_vacuumed",
    "xid_wraparound",
    "table_xid_age",
    "multixact_wraparound",
];

/// Whether the xmin a root cause holds keeps VACUUM from working on `other`.
/// PostgreSQL ≥ 14 keeps per-database horizons (procarray.c
/// ComputeXidHorizons): a session's or prepared transaction's xmin holds back
/// its own database's tables and, in every database, the shared catalogs;
/// a replication slot's xmin holds back everything.
fn blocks(cause: &Finding, other: &Finding) -> bool {
    if !NEEDS_VACUUM.contains(&other.kind) {
        return false;
    }
    match cause.kind {
        // A slot's xmin holds back every database.
        "replication_slot_xmin" => true,
        // Sessions and prepared transactions: their own database's tables,
        // and in every database the shared catalogs, whose relfrozenxid
        // counts towards each database's datfrozenxid / datminmxid.
        _ => {
            cause.object.datname == other.object.datname
                || matches!(other.kind, "xid_wraparound" | "multixact_wraparound")
        }
    }
}

/// How big the problem is within its kind: the finding's first measured
/// quantity (dead tuples, bytes, seconds, transactions), skipping
/// timestamps, flags and counts of scans.
pub fn impact(f: &Finding) -> f64 {
    f.evidence
        .iter()
        .find(|e| !matches!(e.unit, "unix_time" | "flag" | "scans"))
        .map(|e| e.value)
        .unwrap_or(0.0)
}

/// Orders findings by impact, root causes first: a root cause is as urgent
/// as the most urgent finding it blocks and comes before findings of that
/// severity; then severity, then kind, then size or age within the kind.
pub fn rank(all: &mut [Finding]) {
    let urgency: Vec<(Severity, usize)> = all
        .iter()
        .map(|f| {
            if !ROOT_CAUSES.contains(&f.kind) {
                return (f.severity, 0);
            }
            let blocked: Vec<Severity> = all.iter().filter(|o| blocks(f, o)).map(|o| o.severity).collect();
            let most = blocked
                .iter()
                .copied()
                .chain([f.severity])
                .min()
                .unwrap_or(f.severity);
            (most, blocked.len())
        })
        .collect();
    let mut keyed: Vec<(Severity, bool, f64, String, Finding)> = all
        .iter()
        .zip(urgency)
        .map(|(f, (u, n))| {
            let mut f = f.clone();
            f.blocks = n;
            (
                u,
                !ROOT_CAUSES.contains(&f.kind),
                impact(&f),
                f.object.display(),
                f,
            )
        })
        .collect();
    keyed.sort_by(|a, b| {
        (a.0, a.1, a.4.kind)
            .cmp(&(b.0, b.1, b.4.kind))
            .then(b.2.total_cmp(&a.2))
            .then_with(|| a.3.cmp(&b.3))
    });
    for (slot, k) in all.iter_mut().zip(keyed) {
        *slot = k.4;
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Evidence, Object};
    use super::*;

    fn finding(kind: &'static str, severity: Severity, datname: &str, first: f64) -> Finding {
        Finding {
            kind,
            severity,
            title: String::new(),
            object: Object {
                datname: Some(datname.into()),
                ..Default::default()
            },
            evidence: vec![Evidence {
                name: "x".into(),
                value: first,
                unit: "tuples",
                text: String::new(),
            }],
            why: String::new(),
            fix: vec![],
            fallback: vec![],
            on_primary: vec![],
            blocks: 0,
            caution: None,
            runbook: String::new(),
            collector: "",
            collected_at: 0.0,
            data_age_seconds: 0.0,
            cached_up_to_seconds: 0.0,
        }
    }

    #[test]
    fn root_causes_come_before_what_they_block_and_size_orders_a_kind() {
        let mut all = vec![
            finding("vacuum_overdue", Severity::Warning, "a", 20_000.0),
            finding("vacuum_overdue", Severity::Warning, "a", 90_000.0),
            finding("backup_too_old", Severity::Critical, "", 1.0),
            finding("idle_in_transaction", Severity::Info, "a", 5.0),
            // In another database, blocking nothing there: stays info.
            finding("idle_in_transaction", Severity::Info, "b", 50.0),
        ];
        rank(&mut all);
        let order: Vec<(&str, f64)> = all.iter().map(|f| (f.kind, f.evidence[0].value)).collect();
        assert_eq!(
            order,
            [
                ("backup_too_old", 1.0),
                ("idle_in_transaction", 5.0),
                ("vacuum_overdue", 90_000.0),
                ("vacuum_overdue", 20_000.0),
                ("idle_in_transaction", 50.0),
            ]
        );
        assert_eq!(all[1].blocks, 2);
        assert_eq!(all[4].blocks, 0);
    }
}
