//! Table maintenance rules: dead tuples past the autovacuum trigger
//! (`vacuum_overdue`, `vacuum_needed_autovacuum_off`), and changing tables
//! not vacuumed or analyzed for days (`not_vacuumed`, `not_analyzed`).

use super::super::findings::{table_object, Ctx, Draft, Row, Rule};
use super::super::text::{ev, qualified, sql};
use super::super::thresholds as t;
use super::super::Severity;
use crate::collectors::tables::{
    DEAD, ENABLED, INSERTED, LAST_ANALYZE, LAST_AUTOANALYZE, LAST_AUTOVACUUM, LAST_VACUUM, MODIFIED,
    VACUUM_TRIGGER,
};
use crate::metrics::Family;

pub static RULES: &[Rule] = &[
    Rule {
        kind: "vacuum_overdue",
        family: &DEAD,
        alert: "PostgresTableVacuumOverdue",
        critical_alert: None,
        why: DEAD_WHY,
        check: |c, r| dead_tuples(c, r, true),
    },
    Rule {
        kind: "vacuum_needed_autovacuum_off",
        family: &DEAD,
        alert: "PostgresTableAutovacuumDisabled",
        critical_alert: None,
        why: DEAD_WHY,
        check: |c, r| dead_tuples(c, r, false),
    },
    Rule {
        kind: "not_vacuumed",
        family: &DEAD,
        alert: "PostgresTableNotVacuumed",
        critical_alert: None,
        why: "Without VACUUM the table's free space is not reused and its visibility map goes stale.",
        check: not_vacuumed,
    },
    Rule {
        kind: "not_analyzed",
        family: &DEAD,
        alert: "PostgresTableNotAnalyzed",
        critical_alert: None,
        why: "The planner chooses plans from statistics that no longer describe the table.",
        check: not_analyzed,
    },
];

const DEAD_WHY: &str = "Dead rows take space and slow scans until VACUUM removes them.";

/// Whether autovacuum is on for the table (no sample: on).
fn autovacuum_on(c: &Ctx, r: &Row) -> bool {
    c.get(&ENABLED, r.labels).unwrap_or(1.0) == 1.0
}

/// The autovacuum trigger point, when the dead tuples are past it (then the
/// table needs a VACUUM, which also brings its statistics up to date).
fn vacuum_due(c: &Ctx, r: &Row) -> Option<f64> {
    c.get(&VACUUM_TRIGGER, r.labels)
        .filter(|trig| r.value > *trig && r.value > t::VACUUM_MIN_DEAD_TUPLES)
}

/// The newer of a manual and an automatic timestamp.
fn newest(c: &Ctx, r: &Row, manual: &Family, auto: &Family) -> Option<f64> {
    match (c.get(manual, r.labels), c.get(auto, r.labels)) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

/// Dead tuples past the trigger, on a table with autovacuum `on` (or off).
fn dead_tuples(c: &Ctx, r: &Row, on: bool) -> Option<Draft> {
    let trig = vacuum_due(c, r)?;
    if autovacuum_on(c, r) != on {
        return None;
    }
    let dead = r.value;
    let name = qualified(r.l("schemaname"), r.l("relname"));
    let overdue = dead > t::VACUUM_OVERDUE_TRIGGER_FACTOR * trig;
    let mut fix = vec![sql(format!("VACUUM (ANALYZE, VERBOSE) {name};"))];
    let caution;
    if !on {
        fix.push(sql(t::LOCK_TIMEOUT.into()));
        fix.push(sql(format!("ALTER TABLE {name} RESET (autovacuum_enabled);")));
        caution = "Autovacuum is off for this table (reloption autovacuum_enabled, or autovacuum / \
                   track_counts off server-wide). The ALTER TABLE turns the reloption back on \
                   (lock_timeout: it gives up rather than queue the table's queries behind it; retry \
                   if it times out); skip it if the table is vacuumed by a job of its own.";
    } else if overdue {
        fix.push(sql(t::LOCK_TIMEOUT.into()));
        fix.push(sql(format!(
            "ALTER TABLE {name} SET ({});",
            t::HOT_TABLE_RELOPTIONS
        )));
        caution = "Autovacuum falls behind on this table: the ALTER TABLE makes it start earlier \
                   (1 % of the rows instead of 20 %) and work faster (lock_timeout: it gives up \
                   rather than queue the table's queries behind it; retry if it times out). Check first that no long \
                   transaction holds the xmin horizon back (a VACUUM then removes nothing).";
    } else {
        caution = "Autovacuum should pick this table up within autovacuum_naptime; run VACUUM now \
                   only if it does not.";
    }
    let severity = if !on || overdue {
        Severity::Warning
    } else {
        Severity::Info
    };
    let mut d = Draft::new(
        severity,
        "Dead tuples past the autovacuum trigger point",
        table_object(r),
    );
    d.evidence = vec![
        ev("dead tuples", dead, "tuples"),
        ev("autovacuum vacuum trigger", trig, "tuples"),
        ev(
            "autovacuum enabled for the table",
            if on { 1.0 } else { 0.0 },
            "flag",
        ),
    ];
    d.fix = fix;
    d.caution = Some(caution.to_string());
    Some(d)
}

fn not_vacuumed(c: &Ctx, r: &Row) -> Option<Draft> {
    let dead = r.value;
    let changing = dead > 0.0 || c.get(&INSERTED, r.labels).is_some_and(|v| v > 0.0);
    let last = newest(c, r, &LAST_VACUUM, &LAST_AUTOVACUUM)?;
    let age = c.now - last;
    if vacuum_due(c, r).is_some() || !changing || age <= t::NOT_MAINTAINED_SECONDS {
        return None;
    }
    let name = qualified(r.l("schemaname"), r.l("relname"));
    let mut d = Draft::new(
        Severity::Warning,
        "A changing table has not been vacuumed for days",
        table_object(r),
    );
    d.evidence = vec![
        ev("last vacuum", last, "unix_time"),
        ev("since last vacuum", age, "seconds"),
        ev("dead tuples", dead, "tuples"),
    ];
    d.fix = vec![sql(format!("VACUUM (ANALYZE, VERBOSE) {name};"))];
    Some(d)
}

fn not_analyzed(c: &Ctx, r: &Row) -> Option<Draft> {
    let mods = c.get(&MODIFIED, r.labels).unwrap_or(0.0);
    let last = newest(c, r, &LAST_ANALYZE, &LAST_AUTOANALYZE)?;
    let age = c.now - last;
    if vacuum_due(c, r).is_some() || mods <= 0.0 || age <= t::NOT_MAINTAINED_SECONDS {
        return None;
    }
    let name = qualified(r.l("schemaname"), r.l("relname"));
    let mut d = Draft::new(
        Severity::Warning,
        "A changing table has not been analyzed for days",
        table_object(r),
    );
    d.evidence = vec![
        ev("last analyze", last, "unix_time"),
        ev("since last analyze", age, "seconds"),
        ev("rows changed since", mods, "tuples"),
    ];
    d.fix = vec![sql(format!("ANALYZE (VERBOSE) {name};"))];
    Some(d)
}
