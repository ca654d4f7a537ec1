//! Table maintenance rules: dead tuples past the autovacuum trigger
//! (`vacuum_overdue`, `vacuum_needed_autovacuum_off`), and changing tables
//! not vacuumed or analyzed for days (`not_vacuumed`, `not_analyzed`).

use super::super::findings::{by_labels, rows, table_object, New, Out};
use super::super::text::{ev, qualified, sql};
use super::super::thresholds as t;
use super::super::Severity;
use crate::scrape::Snapshot;

pub(crate) fn tables(snap: &Snapshot, out: &mut Out) {
    let trigger = by_labels(snap, "pg_table_autovacuum_vacuum_trigger_tuples");
    let enabled = by_labels(snap, "pg_table_autovacuum_enabled");
    let inserted = by_labels(snap, "pg_table_inserted_since_vacuum_tuples");
    let modified = by_labels(snap, "pg_table_modified_since_analyze_tuples");
    let ts = |f: &str| by_labels(snap, f);
    let (vac, avac, ana, aana) = (
        ts("pg_table_last_vacuum_timestamp_seconds"),
        ts("pg_table_last_autovacuum_timestamp_seconds"),
        ts("pg_table_last_analyze_timestamp_seconds"),
        ts("pg_table_last_autoanalyze_timestamp_seconds"),
    );
    let newest = |a: Option<&f64>, b: Option<&f64>| match (a, b) {
        (Some(a), Some(b)) => Some(a.max(*b)),
        (a, b) => a.or(b).copied(),
    };
    for r in rows(snap, "pg_table_dead_tuples") {
        let dead = r.value;
        let name = qualified(r.l("schemaname"), r.l("relname"));
        let on = enabled.get(r.labels).copied().unwrap_or(1.0) == 1.0;
        let last_vacuum = newest(vac.get(r.labels), avac.get(r.labels));
        let mut vacuum_due = false;
        if let Some(&trig) = trigger.get(r.labels) {
            if dead > trig && dead > t::VACUUM_MIN_DEAD_TUPLES {
                vacuum_due = true;
                let overdue = dead > t::VACUUM_OVERDUE_TRIGGER_FACTOR * trig;
                let mut fix = vec![sql(format!("VACUUM (ANALYZE, VERBOSE) {name};"))];
                let caution;
                if !on {
                    fix.push(sql(t::LOCK_TIMEOUT.into()));
                    fix.push(sql(format!("ALTER TABLE {name} RESET (autovacuum_enabled);")));
                    caution = Some(
                        "Autovacuum is off for this table (reloption autovacuum_enabled, or autovacuum / \
                         track_counts off server-wide). The ALTER TABLE turns the reloption back on \
                         (lock_timeout: it gives up rather than queue the table's queries behind it; retry \
                         if it times out); skip it if the table is vacuumed by a job of its own."
                            .to_string(),
                    );
                } else if overdue {
                    fix.push(sql(t::LOCK_TIMEOUT.into()));
                    fix.push(sql(format!(
                        "ALTER TABLE {name} SET ({});",
                        t::HOT_TABLE_RELOPTIONS
                    )));
                    caution = Some(
                        "Autovacuum falls behind on this table: the ALTER TABLE makes it start earlier \
                         (1 % of the rows instead of 20 %) and work faster (lock_timeout: it gives up \
                         rather than queue the table's queries behind it; retry if it times out). Check first that no long \
                         transaction holds the xmin horizon back (a VACUUM then removes nothing)."
                            .to_string(),
                    );
                } else {
                    caution = Some(
                        "Autovacuum should pick this table up within autovacuum_naptime; run VACUUM now \
                         only if it does not."
                            .to_string(),
                    );
                }
                out.push_row(
                    &r,
                    New {
                        kind: if on {
                            "vacuum_overdue"
                        } else {
                            "vacuum_needed_autovacuum_off"
                        },
                        severity: if !on || overdue {
                            Severity::Warning
                        } else {
                            Severity::Info
                        },
                        title: "Dead tuples past the autovacuum trigger point".into(),
                        object: table_object(&r),
                        evidence: vec![
                            ev("dead tuples", dead, "tuples"),
                            ev("autovacuum vacuum trigger", trig, "tuples"),
                            ev(
                                "autovacuum enabled for the table",
                                if on { 1.0 } else { 0.0 },
                                "flag",
                            ),
                        ],
                        why: "Dead rows take space and slow scans until VACUUM removes them.",
                        fix,
                        caution,
                        alert: if on {
                            "PostgresTableVacuumOverdue"
                        } else {
                            "PostgresTableAutovacuumDisabled"
                        },
                    },
                );
            }
        }
        let changing = dead > 0.0 || inserted.get(r.labels).is_some_and(|v| *v > 0.0);
        if let Some(last) = last_vacuum {
            let age = out.now - last;
            if !vacuum_due && changing && age > t::NOT_MAINTAINED_SECONDS {
                out.push_row(
                    &r,
                    New {
                        kind: "not_vacuumed",
                        severity: Severity::Warning,
                        title: "A changing table has not been vacuumed for days".into(),
                        object: table_object(&r),
                        evidence: vec![
                            ev("last vacuum", last, "unix_time"),
                            ev("since last vacuum", age, "seconds"),
                            ev("dead tuples", dead, "tuples"),
                        ],
                        why: "Without VACUUM the table's free space is not reused and its visibility map goes stale.",
                        fix: vec![sql(format!("VACUUM (ANALYZE, VERBOSE) {name};"))],
                        caution: None,
                        alert: "PostgresTableNotVacuumed",
                    },
                );
            }
        }
        let last_analyze = newest(ana.get(r.labels), aana.get(r.labels));
        let mods = modified.get(r.labels).copied().unwrap_or(0.0);
        if let Some(last) = last_analyze {
            let age = out.now - last;
            if !vacuum_due && mods > 0.0 && age > t::NOT_MAINTAINED_SECONDS {
                out.push_row(
                    &r,
                    New {
                        kind: "not_analyzed",
                        severity: Severity::Warning,
                        title: "A changing table has not been analyzed for days".into(),
                        object: table_object(&r),
                        evidence: vec![
                            ev("last analyze", last, "unix_time"),
                            ev("since last analyze", age, "seconds"),
                            ev("rows changed since", mods, "tuples"),
                        ],
                        why: "The planner chooses plans from statistics that no longer describe the table.",
                        fix: vec![sql(format!("ANALYZE (VERBOSE) {name};"))],
                        caution: None,
                        alert: "PostgresTableNotAnalyzed",
                    },
                );
            }
        }
    }
}
