//! Wraparound rules: database XID age (`xid_wraparound`), a table's XID age
//! (`table_xid_age`) and MultiXact age (`multixact_wraparound`), against the
//! server's freeze and failsafe settings.

use super::super::findings::{table_object, Ctx, Draft, Row, Rule};
use super::super::text::{ev, qualified, shell, shell_word, sql};
use super::super::thresholds as t;
use super::super::{Command, Object, Severity};
use crate::collectors::database::{FROZEN_XID_AGE, MIN_MXID_AGE};
use crate::collectors::settings::{
    AV_FREEZE_MAX_AGE, AV_MXID_FREEZE_MAX_AGE, VAC_FAILSAFE_AGE, VAC_MXID_FAILSAFE_AGE,
};
use crate::collectors::tables::{FREEZE_MAX_AGE, FROZEN_AGE};
use crate::metrics::Family;

pub static RULES: &[Rule] = &[
    Rule {
        kind: "xid_wraparound",
        family: &FROZEN_XID_AGE,
        alert: "PostgresXidAgeHigh",
        critical_alert: Some("PostgresXidWraparoundImminent"),
        why: "At about 2.1 billion PostgreSQL stops assigning transaction IDs: the database takes no more writes.",
        check: database_xid,
    },
    Rule {
        kind: "table_xid_age",
        family: &FROZEN_AGE,
        alert: "PostgresTableXidAgeHigh",
        critical_alert: None,
        why: "Its anti-wraparound vacuum is not finishing; the database's age cannot drop below this table's.",
        check: table_xid,
    },
    Rule {
        kind: "multixact_wraparound",
        family: &MIN_MXID_AGE,
        alert: "PostgresMultixactAgeHigh",
        critical_alert: Some("PostgresMultixactWraparoundImminent"),
        why: "MultiXact IDs (row locks shared by several transactions: SELECT … FOR SHARE, foreign \
              key checks) wrap around like transaction IDs: near 2^31 writes that need one fail.",
        check: multixact,
    },
];

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
    c: &Ctx,
    freeze_setting: &Family,
    failsafe_setting: &Family,
    default_freeze: f64,
) -> (f64, f64) {
    match c.scalar(freeze_setting) {
        Some(fma) => (fma, failsafe(c.scalar(failsafe_setting).unwrap_or(0.0), fma)),
        None => (default_freeze, t::DEFAULT_FAILSAFE_AGE),
    }
}

/// `autovacuum_freeze_max_age` and the effective failsafe age.
fn xid_limits(c: &Ctx) -> (f64, f64) {
    freeze_limits(
        c,
        &AV_FREEZE_MAX_AGE,
        &VAC_FAILSAFE_AGE,
        t::DEFAULT_FREEZE_MAX_AGE,
    )
}

/// Whether a database's XID age is past the limit of `xid_wraparound`
/// (its tables are then listed in that finding, not one by one).
fn database_past_limit(setting: f64, failsafe_age: f64, age: f64) -> bool {
    age > xid_limit(setting).min(failsafe_age)
}

fn database_xid(c: &Ctx, r: &Row) -> Option<Draft> {
    let (setting, failsafe_age) = xid_limits(c);
    if !database_past_limit(setting, failsafe_age, r.value) {
        return None;
    }
    let db = r.l("datname");
    let mut oldest: Vec<Row> = c.rows(&FROZEN_AGE).filter(|t| t.l("datname") == db).collect();
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
    let mut d = Draft::new(
        if critical {
            Severity::Critical
        } else {
            Severity::Warning
        },
        "Transaction ID age is far past autovacuum_freeze_max_age",
        Object {
            datname: Some(db.to_string()),
            ..Default::default()
        },
    );
    d.evidence = vec![
        ev("datfrozenxid age", r.value, "transactions"),
        ev("autovacuum_freeze_max_age", setting, "transactions"),
        ev("share of the 2^31 limit", r.value / 2f64.powi(31), "ratio"),
    ];
    d.fix = fix;
    d.caution = Some(
        "The commands freeze the tables with the oldest relfrozenxid in this database first (the \
         exporter sees those it keeps); anti-wraparound autovacuums that keep being cancelled, \
         or a long transaction, are the usual cause."
            .into(),
    );
    Some(d)
}

fn table_xid(c: &Ctx, r: &Row) -> Option<Draft> {
    let (setting, failsafe_age) = xid_limits(c);
    let db = r.l("datname");
    let flagged = c
        .rows(&FROZEN_XID_AGE)
        .any(|d| d.l("datname") == db && database_past_limit(setting, failsafe_age, d.value));
    let fma = c.get(&FREEZE_MAX_AGE, r.labels).unwrap_or(setting);
    if flagged || r.value <= xid_limit(fma) {
        return None;
    }
    let name = qualified(r.l("schemaname"), r.l("relname"));
    let mut d = Draft::new(
        Severity::Warning,
        "A table's transaction ID age is far past its freeze max age",
        table_object(r),
    );
    d.evidence = vec![
        ev("XID age (heap or TOAST)", r.value, "transactions"),
        ev("freeze max age", fma, "transactions"),
    ];
    d.fix = vec![sql(format!("VACUUM (FREEZE, VERBOSE) {name};"))];
    Some(d)
}

fn multixact(c: &Ctx, r: &Row) -> Option<Draft> {
    let (setting, failsafe_age) = freeze_limits(
        c,
        &AV_MXID_FREEZE_MAX_AGE,
        &VAC_MXID_FAILSAFE_AGE,
        t::DEFAULT_MULTIXACT_FREEZE_MAX_AGE,
    );
    let limit = xid_limit(setting);
    // Past the setting anti-wraparound autovacuum is due (info: it should
    // be running); the margin past it means it is not finishing
    // (warning, PostgresMultixactAgeHigh); past the failsafe, critical.
    if r.value <= setting {
        return None;
    }
    let db = r.l("datname");
    let critical = r.value > failsafe_age;
    let warning = r.value > limit.min(failsafe_age);
    let severity = if critical {
        Severity::Critical
    } else if warning {
        Severity::Warning
    } else {
        Severity::Info
    };
    let title = if warning {
        "MultiXact ID age is far past autovacuum_multixact_freeze_max_age"
    } else {
        "MultiXact ID age is past autovacuum_multixact_freeze_max_age: forced vacuums are due"
    };
    let object = Object {
        datname: Some(db.to_string()),
        ..Default::default()
    };
    let mut d = Draft::new(severity, title, object);
    d.evidence = vec![
        ev("datminmxid age", r.value, "multixacts"),
        ev("autovacuum_multixact_freeze_max_age", setting, "multixacts"),
        ev("share of the 2^31 limit", r.value / 2f64.powi(31), "ratio"),
    ];
    d.fix = vec![shell(format!(
        "vacuumdb --dbname={} --jobs 4 --min-mxid-age {} --verbose",
        shell_word(db),
        setting.round() as i64
    ))];
    d.caution = Some(
        "Anti-wraparound autovacuum should have done this: end the sessions and prepared \
         transactions this report lists first (a transaction still in a MultiXact keeps it \
         from being frozen), then vacuum the tables past autovacuum_multixact_freeze_max_age, \
         as a superuser so the catalogs are included. See the runbook's wraparound procedure."
            .into(),
    );
    Some(d)
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
