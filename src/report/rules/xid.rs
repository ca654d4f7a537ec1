//! Wraparound rules: database XID age (`xid_wraparound`), a table's XID age
//! (`table_xid_age`) and MultiXact age (`multixact_wraparound`), against the
//! server's freeze and failsafe settings.

use super::super::findings::{by_labels, rows, scalar, table_object, New, Out, Row};
use super::super::text::{ev, qualified, shell, shell_word, sql};
use super::super::thresholds as t;
use super::super::{Command, Object, Severity};
use crate::scrape::Snapshot;

/// Past this XID age the forced vacuums are not finishing (PostgresXidAgeHigh).
fn xid_limit(freeze_max_age: f64) -> f64 {
    freeze_max_age + t::XID_AGE_MARGIN_SHARE * 2f64.powi(31)
}

/// PostgreSQL's effective failsafe age (PostgresXidWraparoundImminent).
fn failsafe(failsafe_age: f64, freeze_max_age: f64) -> f64 {
    failsafe_age.max(t::FAILSAFE_FREEZE_FACTOR * freeze_max_age)
}

/// The server's `freeze_setting` (PostgreSQL's default when the settings
/// collector gave none) and the effective failsafe age the alerts use:
/// `failsafe_setting`, never below 1.05 × the freeze setting; PostgreSQL's
/// default failsafe age without the settings.
fn freeze_limits(
    snap: &Snapshot,
    freeze_setting: &str,
    failsafe_setting: &str,
    default_freeze: f64,
) -> (f64, f64) {
    match scalar(snap, freeze_setting) {
        Some(fma) => (fma, failsafe(scalar(snap, failsafe_setting).unwrap_or(0.0), fma)),
        None => (default_freeze, t::DEFAULT_FAILSAFE_AGE),
    }
}

pub(crate) fn wraparound(snap: &Snapshot, out: &mut Out) {
    let (setting, failsafe_age) = freeze_limits(
        snap,
        "pg_settings_autovacuum_freeze_max_age",
        "pg_settings_vacuum_failsafe_age",
        t::DEFAULT_FREEZE_MAX_AGE,
    );
    let limit = xid_limit(setting);
    let tables = rows(snap, "pg_table_frozen_xid_age");
    let mut flagged = Vec::new();
    for r in rows(snap, "pg_database_frozen_xid_age") {
        if r.value <= limit.min(failsafe_age) {
            continue;
        }
        let db = r.l("datname");
        flagged.push(db.to_string());
        let mut oldest: Vec<&Row> = tables.iter().filter(|t| t.l("datname") == db).collect();
        oldest.sort_by(|a, b| b.value.total_cmp(&a.value));
        let mut fix: Vec<Command> = oldest
            .iter()
            .take(5)
            .map(|t| {
                sql(format!(
                    "VACUUM (FREEZE, VERBOSE) {};",
                    qualified(t.l("schemaname"), t.l("relname"))
                ))
            })
            .collect();
        if fix.is_empty() && db == "template0" {
            // template0 takes no connections (datallowconn = false): vacuumdb
            // would fail. Autovacuum freezes it on its own; by hand, allow
            // connections for the freeze and forbid them again.
            fix.push(sql("ALTER DATABASE template0 ALLOW_CONNECTIONS true;".to_string()));
            fix.push(shell(
                "vacuumdb --freeze --verbose --dbname template0".to_string(),
            ));
            fix.push(sql(
                "ALTER DATABASE template0 ALLOW_CONNECTIONS false;".to_string()
            ));
        } else if fix.is_empty() {
            fix.push(shell(format!(
                "vacuumdb --freeze --verbose --dbname {}",
                shell_word(db)
            )));
        }
        let critical = r.value > failsafe_age;
        out.push_row(
            &r,
            New {
                kind: "xid_wraparound",
                severity: if critical { Severity::Critical } else { Severity::Warning },
                title: "Transaction ID age is far past autovacuum_freeze_max_age".into(),
                object: Object {
                    datname: Some(db.to_string()),
                    ..Default::default()
                },
                evidence: vec![
                    ev("datfrozenxid age", r.value, "transactions"),
                    ev("autovacuum_freeze_max_age", setting, "transactions"),
                    ev("share of the 2^31 limit", r.value / 2f64.powi(31), "ratio"),
                ],
                why: "At about 2.1 billion PostgreSQL stops assigning transaction IDs: the database takes no more writes.",
                fix,
                caution: Some(
                    "The commands freeze the tables with the oldest relfrozenxid in this database first (the \
                     exporter sees those it keeps); anti-wraparound autovacuums that keep being cancelled, \
                     or a long transaction, are the usual cause."
                        .into(),
                ),
                alert: if critical {
                    "PostgresXidWraparoundImminent"
                } else {
                    "PostgresXidAgeHigh"
                },
            },
        );
    }
    let table_max = by_labels(snap, "pg_table_autovacuum_freeze_max_age");
    for r in tables
        .iter()
        .filter(|r| !flagged.iter().any(|d| d == r.l("datname")))
    {
        let fma = table_max.get(r.labels).copied().unwrap_or(setting);
        if r.value <= xid_limit(fma) {
            continue;
        }
        let name = qualified(r.l("schemaname"), r.l("relname"));
        out.push_row(
            r,
            New {
                kind: "table_xid_age",
                severity: Severity::Warning,
                title: "A table's transaction ID age is far past its freeze max age".into(),
                object: table_object(r),
                evidence: vec![
                    ev("XID age (heap or TOAST)", r.value, "transactions"),
                    ev("freeze max age", fma, "transactions"),
                ],
                why: "Its anti-wraparound vacuum is not finishing; the database's age cannot drop below this table's.",
                fix: vec![sql(format!("VACUUM (FREEZE, VERBOSE) {name};"))],
                caution: None,
                alert: "PostgresTableXidAgeHigh",
            },
        );
    }
}

pub(crate) fn multixact(snap: &Snapshot, out: &mut Out) {
    let (setting, failsafe_age) = freeze_limits(
        snap,
        "pg_settings_autovacuum_multixact_freeze_max_age",
        "pg_settings_vacuum_multixact_failsafe_age",
        t::DEFAULT_MULTIXACT_FREEZE_MAX_AGE,
    );
    let limit = xid_limit(setting);
    for r in rows(snap, "pg_database_min_mxid_age") {
        // Past the setting anti-wraparound autovacuum is due (info: it should
        // be running); the margin past it means it is not finishing
        // (warning, PostgresMultixactAgeHigh); past the failsafe, critical.
        if r.value <= setting {
            continue;
        }
        let db = r.l("datname");
        let critical = r.value > failsafe_age;
        let warning = r.value > limit.min(failsafe_age);
        out.push_row(
            &r,
            New {
                kind: "multixact_wraparound",
                severity: if critical {
                    Severity::Critical
                } else if warning {
                    Severity::Warning
                } else {
                    Severity::Info
                },
                title: if warning {
                    "MultiXact ID age is far past autovacuum_multixact_freeze_max_age".into()
                } else {
                    "MultiXact ID age is past autovacuum_multixact_freeze_max_age: forced vacuums are due"
                        .into()
                },
                object: Object {
                    datname: Some(db.to_string()),
                    ..Default::default()
                },
                evidence: vec![
                    ev("datminmxid age", r.value, "multixacts"),
                    ev("autovacuum_multixact_freeze_max_age", setting, "multixacts"),
                    ev("share of the 2^31 limit", r.value / 2f64.powi(31), "ratio"),
                ],
                why: "MultiXact IDs (row locks shared by several transactions: SELECT … FOR SHARE, foreign \
                      key checks) wrap around like transaction IDs: near 2^31 writes that need one fail.",
                fix: vec![shell(format!(
                    "vacuumdb --dbname={} --jobs 4 --min-mxid-age {} --verbose",
                    shell_word(db),
                    setting.round() as i64
                ))],
                caution: Some(
                    "Anti-wraparound autovacuum should have done this: end the sessions and prepared \
                     transactions this report lists first (a transaction still in a MultiXact keeps it \
                     from being frozen), then vacuum the tables past autovacuum_multixact_freeze_max_age, \
                     as a superuser so the catalogs are included. See the runbook's wraparound procedure."
                        .into(),
                ),
                alert: if critical {
                    "PostgresMultixactWraparoundImminent"
                } else {
                    "PostgresMultixactAgeHigh"
                },
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xid_limits_follow_the_settings() {
        // Past autovacuum_freeze_max_age by 0.1 * 2^31, whatever it is set to.
        assert_eq!(xid_limit(200_000_000.0), 200_000_000.0 + 0.1 * 2f64.powi(31));
        assert!(xid_limit(1_000_000_000.0) > 1_000_000_000.0);
        // The failsafe age is never below 1.05 × autovacuum_freeze_max_age.
        assert_eq!(failsafe(1.6e9, 200e6), 1.6e9);
        assert_eq!(failsafe(1.6e9, 1.6e9), 1.05 * 1.6e9);
    }
}
