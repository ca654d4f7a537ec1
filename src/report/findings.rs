//! Findings: the snapshot's samples turned into things to do.
//!
//! Each rule reads exported families (and the report-only details of
//! `activity` and `indexes`), compares them with `thresholds.rs` and writes
//! the command that fixes the object, identifiers quoted with `quote_ident`.
//! Nothing here touches the database.

use std::collections::HashMap;

use super::thresholds as t;
use super::{cache_ttl, unix, Command, Evidence, Finding, Object, Severity, RUNBOOK};
use crate::config::Config;
use crate::keywords::quote_ident;
use crate::scrape::{Run, Snapshot};

/// One sample with its label names and the run that produced it.
#[derive(Clone, Copy)]
pub struct Row<'a> {
    names: &'static [&'static str],
    pub labels: &'a [String],
    pub value: f64,
    pub run: &'a Run,
}

impl<'a> Row<'a> {
    /// The value of the row of `others` with the same labels (0 if none).
    pub fn value_of(&self, others: &[Row]) -> f64 {
        others
            .iter()
            .find(|o| o.labels == self.labels)
            .map(|o| o.value)
            .unwrap_or(0.0)
    }
    /// The value of label `name` ("" when the family has no such label).
    pub fn l(&self, name: &str) -> &'a str {
        self.names
            .iter()
            .position(|n| *n == name)
            .map(|i| self.labels[i].as_str())
            .unwrap_or("")
    }
}

/// Every sample (or report detail) of one family, across all runs.
pub fn rows<'a>(snap: &'a Snapshot, family: &str) -> Vec<Row<'a>> {
    let mut out = Vec::new();
    for run in &snap.runs {
        for fs in run.sink.families.iter().chain(&run.sink.details) {
            if fs.family.name != family {
                continue;
            }
            out.extend(fs.samples.iter().map(|s| Row {
                names: fs.family.labels,
                labels: &s.labels,
                value: s.value,
                run,
            }));
        }
    }
    out
}

/// A family's values keyed by their label values (all families of one object
/// kind share the label order, so the keys join).
fn by_labels<'a>(snap: &'a Snapshot, family: &str) -> HashMap<&'a [String], f64> {
    rows(snap, family)
        .into_iter()
        .map(|r| (r.labels, r.value))
        .collect()
}

/// The single value of a family without labels.
fn scalar(snap: &Snapshot, family: &str) -> Option<f64> {
    rows(snap, family).first().map(|r| r.value)
}

/// `"schema"."name"`, each part quoted only where PostgreSQL needs it.
pub fn qualified(schema: &str, name: &str) -> String {
    format!("{}.{}", quote_ident(schema), quote_ident(name))
}

/// A SQL string literal.
pub fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// A shell word in single quotes.
fn shell_word(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

fn sql(text: String) -> Command {
    Command { kind: "sql", text }
}

fn shell(text: String) -> Command {
    Command { kind: "shell", text }
}

pub fn runbook(alert: &str) -> String {
    format!("{RUNBOOK}#{}", alert.to_lowercase())
}

/// `12,345`
pub fn count(v: f64) -> String {
    let s = format!("{}", v.round() as i64);
    let (sign, digits) = s.strip_prefix('-').map(|d| ("-", d)).unwrap_or(("", &s));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    format!("{sign}{out}")
}

/// `1.5 GiB`
pub fn bytes(v: f64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut x = v;
    let mut i = 0;
    while x.abs() >= 1024.0 && i < units.len() - 1 {
        x /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{} B", v as i64)
    } else {
        format!("{x:.1} {}", units[i])
    }
}

/// `3 d 4 h`, `12 min 5 s`, `45 s`
pub fn duration(secs: f64) -> String {
    let s = secs.max(0.0).round() as u64;
    let (d, h, m, sec) = (s / 86400, s % 86400 / 3600, s % 3600 / 60, s % 60);
    if d > 0 {
        format!("{d} d {h} h")
    } else if h > 0 {
        format!("{h} h {m} min")
    } else if m > 0 {
        format!("{m} min {sec} s")
    } else {
        format!("{sec} s")
    }
}

fn ev(name: &str, value: f64, unit: &'static str) -> Evidence {
    let text = match unit {
        "bytes" => bytes(value),
        "seconds" => duration(value),
        "ratio" => format!("{:.1} %", value * 100.0),
        "unix_time" => super::html::utc(value),
        "flag" => (if value == 1.0 { "yes" } else { "no" }).to_string(),
        _ => format!("{} {unit}", count(value)),
    };
    Evidence {
        name: name.to_string(),
        value,
        unit,
        text,
    }
}

/// Builds findings with the collection time of the run behind them.
struct Out<'a> {
    config: &'a Config,
    now: f64,
    taken: f64,
    list: Vec<Finding>,
}

struct New {
    kind: &'static str,
    severity: Severity,
    title: String,
    object: Object,
    evidence: Vec<Evidence>,
    why: &'static str,
    fix: Vec<Command>,
    caution: Option<String>,
    alert: &'static str,
}

impl Out<'_> {
    fn push(&mut self, collector: &'static str, from_cache: bool, n: New) {
        let cached = if from_cache {
            cache_ttl(self.config, collector)
        } else {
            0.0
        };
        self.list.push(Finding {
            kind: n.kind,
            severity: n.severity,
            title: n.title,
            object: n.object,
            evidence: n.evidence,
            why: n.why.to_string(),
            fix: n.fix,
            fallback: vec![],
            on_primary: vec![],
            blocks: 0,
            caution: n.caution,
            runbook: runbook(n.alert),
            collector,
            collected_at: self.taken,
            data_age_seconds: (self.now - self.taken).max(0.0),
            cached_up_to_seconds: cached,
        });
    }
    fn push_row(&mut self, row: &Row, n: New) {
        self.push(row.run.collector, row.run.duration.is_zero(), n);
    }
    /// Gives the finding pushed last its fallback commands.
    fn fallback(&mut self, commands: Vec<Command>) {
        if let Some(f) = self.list.last_mut() {
            f.fallback = commands;
        }
    }
}

fn table_object(r: &Row) -> Object {
    Object {
        datname: Some(r.l("datname").to_string()),
        schemaname: Some(r.l("schemaname").to_string()),
        relname: Some(r.l("relname").to_string()),
        ..Default::default()
    }
}

fn index_object(r: &Row) -> Object {
    Object {
        indexrelname: Some(r.l("indexrelname").to_string()),
        ..table_object(r)
    }
}

/// Every finding in the snapshot, unsorted and unfiltered.
pub fn all(snap: &Snapshot, config: &Config, now: f64) -> Vec<Finding> {
    let mut out = Out {
        config,
        now,
        taken: unix(snap.taken_at),
        list: Vec::new(),
    };
    if !snap.up {
        out.push(
            "",
            false,
            New {
                kind: "postgres_down",
                severity: Severity::Critical,
                title: "PostgreSQL does not answer the exporter".into(),
                object: Object::default(),
                evidence: vec![],
                why: "No other part of this report can be checked while the server is unreachable.",
                fix: vec![shell("pg_isready -h <host> -p <port>".into())],
                caution: Some("The exporter log says why the connection failed.".into()),
                alert: "PostgresDown",
            },
        );
        return out.list;
    }
    tables(snap, &mut out);
    wraparound(snap, &mut out);
    indexes(snap, &mut out);
    bloat(snap, &mut out);
    sessions(snap, &mut out);
    connections(snap, &mut out);
    backups(snap, &mut out);
    archiving(snap, &mut out);
    slots(snap, &mut out);
    prepared(snap, &mut out);
    multixact(snap, &mut out);
    sequences(snap, &mut out);
    out.list
}

fn tables(snap: &Snapshot, out: &mut Out) {
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

fn wraparound(snap: &Snapshot, out: &mut Out) {
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

/// Said of every CONCURRENTLY command.
const CONCURRENTLY: &str = "CONCURRENTLY waits for every transaction open in the database when it starts: \
    end the long or idle-in-transaction sessions this report lists first, or it waits for them.";

/// What the `indexes` collector knows about an index beyond its verdicts
/// (`pgmaint_report_index_facts`), to suggest only commands PostgreSQL accepts.
#[derive(Default, Clone, Copy)]
struct IndexFacts<'a> {
    /// Backs a primary key, unique or exclusion constraint: DROP INDEX refuses.
    constraint: bool,
    /// A foreign key depends on it.
    referenced: bool,
    /// A partitioned index: DROP INDEX CONCURRENTLY refuses.
    partitioned: bool,
    /// The root partitioned index it is attached to ("" if none).
    attached_to: &'a str,
}

/// A failed `REINDEX CONCURRENTLY` leaves `<name>_ccnew[N]` (the new copy,
/// never finished) or `<name>_ccold[N]` (the old index, swapped out but not
/// dropped): `ChooseRelationName()` appends digits when the name is taken.
/// Returns the suffix kind and the name of the index it was made for.
fn reindex_leftover(name: &str) -> Option<(&'static str, &str)> {
    for kind in ["_ccnew", "_ccold"] {
        if let Some(pos) = name.rfind(kind) {
            let tail = &name[pos + kind.len()..];
            if pos > 0 && tail.chars().all(|c| c.is_ascii_digit()) {
                return Some((kind, &name[..pos]));
            }
        }
    }
    None
}

/// The command that drops an index that may be dropped on its own.
fn drop_index(name: &str, partitioned: bool) -> String {
    if partitioned {
        // DROP INDEX CONCURRENTLY refuses partitioned indexes.
        format!("SET lock_timeout = '5s'; DROP INDEX {name};")
    } else {
        format!("DROP INDEX CONCURRENTLY {name};")
    }
}

/// The alternative to REINDEX for an invalid index.
fn or_drop(name: &str, attached_to: &str) -> String {
    if attached_to.is_empty() {
        format!("Or drop it (DROP INDEX CONCURRENTLY {name};) and create it again.")
    } else {
        format!(
            "It is attached to the partitioned index {attached_to}, so it cannot be dropped on its own \
             (only with that index)."
        )
    }
}

/// Said of a DROP INDEX on a partitioned index.
const PARTITIONED_DROP: &str = "A partitioned index cannot be dropped CONCURRENTLY: DROP INDEX takes an \
    ACCESS EXCLUSIVE lock on the partitioned table and every partition for the (short) catalog change; \
    lock_timeout makes it give up rather than queue every query behind it. Run it when the tables are quiet.";

fn indexes(snap: &Snapshot, out: &mut Out) {
    let invalid = by_labels(snap, "pg_index_invalid");
    let duplicate = by_labels(snap, "pg_index_duplicate");
    let ready = by_labels(snap, "pg_index_ready");
    let supports_fk = by_labels(snap, "pg_index_supports_foreign_key");
    let size = by_labels(snap, "pg_index_size_bytes");
    let scans = by_labels(snap, "pg_index_scans_total");
    let reset: HashMap<&str, f64> = rows(snap, "pg_index_stats_reset_timestamp_seconds")
        .into_iter()
        .map(|r| (r.l("datname"), r.value))
        .collect();
    let dup_rows = rows(snap, "pgmaint_report_index_duplicate_of");
    let kept: HashMap<&[String], &str> = dup_rows.iter().map(|r| (&r.labels[..4], r.l("kept"))).collect();
    // Kept index (datname, schemaname, relname, indexrelname) → the
    // duplicates the report says to drop in its favour.
    let mut kept_for: HashMap<(&str, &str, &str, &str), Vec<&str>> = HashMap::new();
    for r in &dup_rows {
        kept_for
            .entry((r.l("datname"), r.l("schemaname"), r.l("relname"), r.l("kept")))
            .or_default()
            .push(r.l("indexrelname"));
    }
    let facts_rows = rows(snap, "pgmaint_report_index_facts");
    let facts: HashMap<&[String], IndexFacts> = facts_rows
        .iter()
        .map(|r| {
            (
                &r.labels[..4],
                IndexFacts {
                    constraint: r.l("constraint") == "1",
                    referenced: r.l("referenced") == "1",
                    partitioned: r.l("partitioned") == "1",
                    attached_to: r.l("attached_to"),
                },
            )
        })
        .collect();
    let facts_of = |r: &Row| facts.get(r.labels).copied().unwrap_or_default();
    for r in rows(snap, "pg_index_invalid")
        .into_iter()
        .filter(|r| r.value == 1.0)
    {
        let name = qualified(r.l("schemaname"), r.l("indexrelname"));
        let f = facts_of(&r);
        let is_ready = ready.get(r.labels).copied().unwrap_or(1.0) == 1.0;
        let leftover = reindex_leftover(r.l("indexrelname"));
        let (title, why, fix, caution) = if f.partitioned {
            (
                "Invalid partitioned index".to_string(),
                "A partitioned index is invalid until every partition has an index attached to it \
                 (it was created with ON ONLY, or an attach is missing); queries on the partitions \
                 still use the partitions' own indexes.",
                vec![sql(format!(
                    "SELECT c.oid::regclass FROM pg_inherits p JOIN pg_class c ON c.oid = p.inhrelid \
                     WHERE p.inhparent = (SELECT indrelid FROM pg_index WHERE indexrelid = {idx}::regclass) \
                     AND NOT EXISTS (SELECT 1 FROM pg_inherits a JOIN pg_index x ON x.indexrelid = a.inhrelid \
                     WHERE a.inhparent = {idx}::regclass AND x.indrelid = c.oid);",
                    idx = literal(&name)
                ))],
                Some(format!(
                    "The query lists the partitions without an attached index: on each, CREATE INDEX \
                     CONCURRENTLY a matching index (on a partition that is itself partitioned: CREATE \
                     INDEX … ON ONLY it, and the same one level down), then ALTER INDEX {name} ATTACH \
                     PARTITION <that index>; the partitioned index becomes valid with the last attach."
                )),
            )
        } else if let Some(("_ccold", original)) = leftover {
            (
                format!("Invalid index left by REINDEX CONCURRENTLY of {original}"),
                "A _ccold index is the old copy a REINDEX CONCURRENTLY swapped out but could not drop: \
                 the rebuild itself succeeded. Queries do not use it; it only takes space.",
                vec![sql(format!("DROP INDEX CONCURRENTLY {name};"))],
                Some(format!(
                    "Drop it (do not REINDEX it: that would rebuild an index nothing needs). {CONCURRENTLY}"
                )),
            )
        } else if let Some((_, original)) = leftover {
            let orig = qualified(r.l("schemaname"), original);
            (
                format!("Invalid index left by a failed REINDEX CONCURRENTLY of {original}"),
                "A _ccnew index is the new copy of a REINDEX CONCURRENTLY that failed or was cancelled: \
                 the original index is untouched and still in use. This copy only takes space (and, once \
                 ready, write time).",
                vec![
                    sql(format!("DROP INDEX CONCURRENTLY {name};")),
                    sql(t::LOCK_TIMEOUT.into()),
                    sql(format!("REINDEX INDEX CONCURRENTLY {orig};")),
                ],
                Some(format!(
                    "Drop the leftover, do not reindex it; then run the REINDEX again once its cause is \
                     gone (the server log of the failure says what it was). {CONCURRENTLY}"
                )),
            )
        } else if !is_ready {
            (
                "Invalid index, never finished".to_string(),
                "Its CREATE INDEX CONCURRENTLY failed or was cancelled in its first build \
                 (pg_index.indisready = false): writes do not maintain it and queries do not use it; \
                 it takes space and nothing enforces its rule (a UNIQUE one does not check for duplicates).",
                vec![
                    sql(t::LOCK_TIMEOUT.into()),
                    sql(format!("REINDEX INDEX CONCURRENTLY {name};")),
                ],
                Some(format!(
                    "If it is UNIQUE and failed on duplicate keys, REINDEX fails the same way until they \
                     are removed. {} {CONCURRENTLY}",
                    or_drop(&name, f.attached_to)
                )),
            )
        } else {
            (
                "Invalid index".to_string(),
                "Queries never use an invalid index, but every write still maintains it \
                 (pg_index.indisready = true).",
                vec![
                    sql(t::LOCK_TIMEOUT.into()),
                    sql(format!("REINDEX INDEX CONCURRENTLY {name};")),
                ],
                Some(format!(
                    "Unless a CREATE INDEX CONCURRENTLY is building it right now. If the build failed on \
                     duplicate keys (UNIQUE), REINDEX fails the same way until they are removed. {} \
                     {CONCURRENTLY}",
                    or_drop(&name, f.attached_to)
                )),
            )
        };
        out.push_row(
            &r,
            New {
                kind: "invalid_index",
                severity: Severity::Warning,
                title,
                object: index_object(&r),
                evidence: vec![
                    ev("pg_index.indisvalid", 0.0, "flag"),
                    ev("pg_index.indisready", if is_ready { 1.0 } else { 0.0 }, "flag"),
                ],
                why,
                fix,
                caution,
                alert: "PostgresInvalidIndex",
            },
        );
    }
    for r in rows(snap, "pg_index_duplicate")
        .into_iter()
        .filter(|r| r.value == 1.0)
    {
        let name = qualified(r.l("schemaname"), r.l("indexrelname"));
        let keep = kept.get(r.labels).copied();
        let keep_q = keep
            .map(|k| qualified(r.l("schemaname"), k))
            .unwrap_or_else(|| "the other index".into());
        let f = facts_of(&r);
        let mut evidence = vec![];
        if let Some(s) = size.get(r.labels) {
            evidence.push(ev("index size", *s, "bytes"));
        }
        // Never a command that drops a constraint or what a foreign key
        // needs: the DBA decides that, knowing the application.
        let (fix, caution) = if f.constraint || f.referenced {
            (
                vec![],
                format!(
                    "Keep {keep_q}. This one {}: DROP INDEX refuses, and dropping the constraint \
                     (ALTER TABLE … DROP CONSTRAINT) changes what the table enforces and fails if a \
                     foreign key depends on it. Nothing is suggested; decide with the application's \
                     owners.",
                    if f.referenced {
                        "is what a foreign key depends on"
                    } else {
                        "backs a constraint"
                    }
                ),
            )
        } else if f.partitioned {
            (
                vec![sql(drop_index(&name, true))],
                format!("Keep {keep_q}. {PARTITIONED_DROP}"),
            )
        } else {
            (
                vec![sql(drop_index(&name, false))],
                format!("Keep {keep_q}. {CONCURRENTLY}"),
            )
        };
        out.push_row(
            &r,
            New {
                kind: "duplicate_index",
                severity: Severity::Warning,
                title: match keep {
                    Some(k) => format!("Duplicate index: {k} does everything it does, keep {k}"),
                    None => "Duplicate index: another index of the table does everything it does".into(),
                },
                object: index_object(&r),
                evidence,
                why: "Same columns, operator classes, collations, order, expressions and predicate, and no \
                      rule of its own the kept index lacks: it doubles the write and space cost and adds \
                      nothing for queries.",
                fix,
                caution: Some(caution),
                alert: "PostgresDuplicateIndex",
            },
        );
    }
    for r in rows(snap, "pg_index_unused")
        .into_iter()
        .filter(|r| r.value == 1.0)
    {
        // Reported above already: invalid indexes are never scanned anyway.
        if invalid.get(r.labels) == Some(&1.0) || duplicate.get(r.labels) == Some(&1.0) {
            continue;
        }
        let name = qualified(r.l("schemaname"), r.l("indexrelname"));
        let f = facts_of(&r);
        let fk = supports_fk.get(r.labels) == Some(&1.0);
        // Duplicates of this index the report says to drop: after that, the
        // queries they served may use this one, so it is judged again later.
        let twins = kept_for
            .get(&(
                r.l("datname"),
                r.l("schemaname"),
                r.l("relname"),
                r.l("indexrelname"),
            ))
            .cloned()
            .unwrap_or_default();
        let bytes_ = size.get(r.labels).copied();
        let since = reset.get(r.l("datname")).copied();
        let stats_old = since.is_none_or_old(out.now);
        let big = bytes_.is_some_and(|b| b > t::UNUSED_INDEX_MIN_BYTES);
        // Info level only from a size worth a DBA's time (a partitioned
        // index has no storage of its own: its size says nothing).
        // (Below this floor an index is never "big": no warning is hidden.)
        if !f.partitioned && bytes_.is_some_and(|b| b < t::UNUSED_INDEX_INFO_MIN_BYTES) {
            continue;
        }
        let mut evidence = vec![];
        if !f.partitioned {
            evidence.push(ev(
                "index scans",
                scans.get(r.labels).copied().unwrap_or(0.0),
                "scans",
            ));
        }
        if let Some(b) = bytes_ {
            evidence.push(ev("index size", b, "bytes"));
        }
        evidence.push(match since {
            Some(s) => ev("statistics reset", s, "unix_time"),
            None => Evidence {
                name: "statistics reset".into(),
                value: 0.0,
                unit: "unix_time",
                text: "never".into(),
            },
        });
        if fk {
            evidence.push(ev("supports a foreign key", 1.0, "flag"));
        }
        let recheck = "Scans are counted on this server only, since the statistics reset: an index used \
                       only on a replica, or by a monthly job, looks unused here.";
        let (severity, title, why, fix, caution) = if fk {
            (
                Severity::Info,
                "Index never scanned, but it supports a foreign key".to_string(),
                "Its leading columns are a foreign key's referencing columns: it is scanned only when \
                 referenced rows are deleted or their keys change. Without it each such delete or update \
                 scans this whole table while holding its locks.",
                vec![],
                format!(
                    "Not offered for dropping. Drop it only if the referenced table never has rows \
                     deleted or keys updated. {recheck}"
                ),
            )
        } else if !twins.is_empty() {
            (
                Severity::Info,
                "Index never scanned; its duplicates are to be dropped first".to_string(),
                "Its duplicates are reported above with the command to drop them, keeping this one: \
                 the queries (if any) they served will use this one afterwards.",
                vec![],
                format!(
                    "Drop {} first, as its finding says; then judge this index again once the \
                     statistics cover a normal week or month. Never drop every copy at once. {recheck}",
                    twins
                        .iter()
                        .map(|t| qualified(r.l("schemaname"), t))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
        } else {
            (
                if big && stats_old {
                    Severity::Warning
                } else {
                    Severity::Info
                },
                if f.partitioned {
                    "Partitioned index never scanned on any partition".to_string()
                } else {
                    "Index never scanned".to_string()
                },
                "An index no query uses still costs space and time on every write.",
                vec![sql(drop_index(&name, f.partitioned))],
                format!(
                    "{recheck} Check the replicas and save its definition first: SELECT \
                     pg_get_indexdef({}::regclass); {}",
                    literal(&name),
                    if f.partitioned {
                        PARTITIONED_DROP
                    } else {
                        CONCURRENTLY
                    }
                ),
            )
        };
        out.push_row(
            &r,
            New {
                kind: "unused_index",
                severity,
                title,
                object: index_object(&r),
                evidence,
                why,
                fix,
                caution: Some(caution),
                alert: "PostgresUnusedIndex",
            },
        );
    }
}

/// "Never reset, or reset at least the threshold ago."
trait StatsAge {
    fn is_none_or_old(&self, now: f64) -> bool;
}

impl StatsAge for Option<f64> {
    fn is_none_or_old(&self, now: f64) -> bool {
        match self {
            None => true,
            Some(s) => now - s >= t::UNUSED_INDEX_MIN_STATS_AGE_SECONDS,
        }
    }
}

fn bloat(snap: &Snapshot, out: &mut Out) {
    let table_ratio = by_labels(snap, "pg_table_bloat_ratio");
    for r in rows(snap, "pg_table_bloat_bytes") {
        let ratio = table_ratio.get(r.labels).copied().unwrap_or(0.0);
        if r.value <= t::BLOAT_MIN_BYTES || ratio <= t::BLOAT_MIN_RATIO {
            continue;
        }
        let name = qualified(r.l("schemaname"), r.l("relname"));
        out.push_row(
            &r,
            New {
                kind: "table_bloat",
                severity: Severity::Warning,
                title: "Bloated table".into(),
                object: table_object(&r),
                evidence: vec![ev("estimated wasted bytes", r.value, "bytes"), ev("share wasted", ratio, "ratio")],
                why: "Wasted space is read by every sequential scan and kept in backups; plain VACUUM does not give it back.",
                fix: vec![
                    sql("CREATE EXTENSION IF NOT EXISTS pg_repack;".into()),
                    shell(format!(
                        "pg_repack --dbname={} --table={} --no-order",
                        shell_word(r.l("datname")),
                        shell_word(&name)
                    )),
                ],
                caution: Some(
                    "pg_repack rewrites the table online: it holds an ACCESS EXCLUSIVE lock only for a moment \
                     at the start and the end, needs free disk for a full copy, the pg_repack package of the \
                     server's major version on the server, and a primary key or a NOT NULL unique index on \
                     the table; it skips UNLOGGED tables (add host, port and user options as for psql). Only without pg_repack use \
                     the fallback: VACUUM FULL holds an ACCESS EXCLUSIVE lock for the whole rewrite — no \
                     reads or writes on the table until it ends — so run it in a maintenance window; \
                     lock_timeout makes it give up instead of queueing every query on the table behind it. \
                     Estimates: see docs/bloat.md."
                        .into(),
                ),
                alert: "PostgresTableBloat",
            },
        );
        out.fallback(vec![
            sql(t::LOCK_TIMEOUT.into()),
            sql(format!("VACUUM (FULL, ANALYZE, VERBOSE) {name};")),
        ]);
    }
    let index_ratio = by_labels(snap, "pg_index_bloat_ratio");
    for r in rows(snap, "pg_index_bloat_bytes") {
        let ratio = index_ratio.get(r.labels).copied().unwrap_or(0.0);
        if r.value <= t::BLOAT_MIN_BYTES || ratio <= t::BLOAT_MIN_RATIO {
            continue;
        }
        let name = qualified(r.l("schemaname"), r.l("indexrelname"));
        out.push_row(
            &r,
            New {
                kind: "index_bloat",
                severity: Severity::Warning,
                title: "Bloated index".into(),
                object: index_object(&r),
                evidence: vec![
                    ev("estimated wasted bytes", r.value, "bytes"),
                    ev("share wasted", ratio, "ratio"),
                ],
                why: "A bloated index is larger and slower to scan and to cache than it needs to be.",
                fix: vec![
                    sql(t::LOCK_TIMEOUT.into()),
                    sql(format!("REINDEX INDEX CONCURRENTLY {name};")),
                ],
                caution: Some(format!(
                    "REINDEX CONCURRENTLY builds a second copy of the index next to the old one (disk for it) \
                     and swaps them without blocking reads or writes. If it stops (lock_timeout, cancel), it \
                     leaves an invalid copy named {}_ccnew behind: drop that with DROP INDEX CONCURRENTLY and \
                     try again. {CONCURRENTLY}",
                    r.l("indexrelname")
                )),
                alert: "PostgresIndexBloat",
            },
        );
    }
}

fn sessions(snap: &Snapshot, out: &mut Out) {
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

fn connections(snap: &Snapshot, out: &mut Out) {
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

fn backups(snap: &Snapshot, out: &mut Out) {
    let dir_object = |r: &Row| Object {
        dir: Some(r.l("dir").to_string()),
        ..Default::default()
    };
    for r in rows(snap, "pg_backup_directory_readable")
        .into_iter()
        .filter(|r| r.value == 0.0)
    {
        out.push_row(
            &r,
            New {
                kind: "backup_directory_unreadable",
                severity: Severity::Critical,
                title: "Backup directory missing or unreadable".into(),
                object: dir_object(&r),
                evidence: vec![],
                why: "No backup in it can be checked, and backups may not be written there either.",
                fix: vec![shell(format!("ls -ld {}", shell_word(r.l("dir"))))],
                caution: Some("Check the mount and that the exporter's user may read the directory.".into()),
                alert: "PostgresBackupDirectoryUnreadable",
            },
        );
    }
    let newest = by_labels(snap, "pg_backup_newest_timestamp_seconds");
    for r in rows(snap, "pg_backup_files") {
        let ts = newest.get(r.labels).copied();
        let age = ts.map(|t| out.now - t);
        if r.value > 0.0 && age.is_none_or_below(t::BACKUP_MAX_AGE_SECONDS) {
            continue;
        }
        let mut evidence = vec![ev("backups in the directory", r.value, "files")];
        if let (Some(ts), Some(age)) = (ts, age) {
            evidence.push(ev("newest backup", ts, "unix_time"));
            evidence.push(ev("age of the newest", age, "seconds"));
        }
        out.push_row(
            &r,
            New {
                kind: "backup_too_old",
                severity: Severity::Critical,
                title: if r.value == 0.0 {
                    "No backup at all".into()
                } else {
                    "No recent backup".into()
                },
                object: dir_object(&r),
                evidence,
                why: "Without a recent backup, data written since the last one is lost if the server is.",
                fix: vec![shell(format!(
                    "pg_dump --format=custom --file={}/backup_$(date -u +%Y%m%d_%H%M%S).dump <database>",
                    shell_word(r.l("dir"))
                ))],
                caution: Some(
                    "Then find out why the scheduled backup job stopped (its log, cron, the disk).".into(),
                ),
                alert: "PostgresBackupTooOld",
            },
        );
    }
    for r in rows(snap, "pg_backup_newest_verified")
        .into_iter()
        .filter(|r| r.value == 0.0)
    {
        out.push_row(
            &r,
            New {
                kind: "backup_verification_failed",
                severity: Severity::Critical,
                title: "The newest backup does not read back".into(),
                object: dir_object(&r),
                evidence: vec![],
                why: "A truncated or corrupt dump cannot be restored.",
                fix: vec![shell("pg_restore --list <newest backup file> > /dev/null".into())],
                caution: Some(
                    "The exporter log names the file and pg_restore's error; take a new backup.".into(),
                ),
                alert: "PostgresBackupVerificationFailed",
            },
        );
    }
    for r in rows(snap, "pg_backup_newest_unverifiable")
        .into_iter()
        .filter(|r| r.value == 1.0)
    {
        out.push_row(
            &r,
            New {
                kind: "backup_unverified",
                severity: Severity::Warning,
                title: "The newest backup could not be verified here".into(),
                object: dir_object(&r),
                evidence: vec![],
                why: "An unchecked backup may turn out unreadable exactly when it is needed.",
                fix: vec![shell("pg_restore --version".into())],
                caution: Some(
                    "Usually the archive comes from a newer pg_dump than the installed pg_restore, or \
                     verification timed out (PGMAINT_BACKUP_VERIFY_TIMEOUT); the exporter log says which."
                        .into(),
                ),
                alert: "PostgresBackupVerificationFailed",
            },
        );
    }
    for r in rows(snap, "pg_wal_archive_continuous")
        .into_iter()
        .filter(|r| r.value == 0.0)
    {
        let missing = scalar(snap, "pg_wal_archive_missing_segments").unwrap_or(0.0);
        let incomplete = scalar(snap, "pg_wal_archive_incomplete_segments").unwrap_or(0.0);
        out.push_row(
            &r,
            New {
                kind: "wal_archive_gap",
                severity: Severity::Critical,
                title: "WAL archive has a gap since the last base backup".into(),
                object: Object::default(),
                evidence: vec![
                    ev("missing segments", missing, "segments"),
                    ev("incomplete segment files", incomplete, "segments"),
                ],
                why: "Point-in-time recovery stops at the first missing or incomplete segment.",
                fix: vec![shell("pg_basebackup --pgdata=<new backup dir> --wal-method=stream --checkpoint=fast --progress".into())],
                caution: Some("A new base backup starts a gap-free chain; find out what removed or never archived the segments.".into()),
                alert: "PostgresWalArchiveGap",
            },
        );
    }
}

trait BelowOrNone {
    fn is_none_or_below(&self, limit: f64) -> bool;
}

impl BelowOrNone for Option<f64> {
    fn is_none_or_below(&self, limit: f64) -> bool {
        self.map_or(true, |v| v <= limit)
    }
}

fn archiving(snap: &Snapshot, out: &mut Out) {
    let Some(failed) = rows(snap, "pg_archiver_last_failure_timestamp_seconds")
        .first()
        .copied()
    else {
        return;
    };
    if scalar(snap, "pg_settings_archive_mode") == Some(0.0) {
        return;
    }
    let ok = scalar(snap, "pg_archiver_last_archive_timestamp_seconds");
    if ok.is_some_and(|ok| ok > failed.value) {
        return;
    }
    let mut evidence = vec![ev("last failure", failed.value, "unix_time")];
    if let Some(ok) = ok {
        evidence.push(ev("last success", ok, "unix_time"));
    }
    if let Some(ready) = scalar(snap, "pg_archiver_ready_segments") {
        evidence.push(ev("segments waiting", ready, "segments"));
    }
    out.push_row(
        &failed,
        New {
            kind: "wal_archiving_failing",
            severity: Severity::Warning,
            title: "WAL archiving fails".into(),
            object: Object::default(),
            evidence,
            why: "WAL piles up in pg_wal until the disk fills, and point-in-time recovery falls behind.",
            fix: vec![sql("SELECT last_failed_wal, last_failed_time FROM pg_stat_archiver;".into())],
            caution: Some(
                "The server log shows archive_command's error for that segment; fix the command or its target, \
                 PostgreSQL retries by itself."
                    .into(),
            ),
            alert: "PostgresWalArchivingFailing",
        },
    );
}

fn slots(snap: &Snapshot, out: &mut Out) {
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

fn prepared(snap: &Snapshot, out: &mut Out) {
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

fn multixact(snap: &Snapshot, out: &mut Out) {
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

/// The integer type whose limit `ratio` was measured against, from the
/// sequence's last value: the column family exports the ratio only.
fn integer_type(last_value: Option<f64>, ratio: f64) -> &'static str {
    let Some(last) = last_value.filter(|_| ratio > 0.0) else {
        return "integer";
    };
    let limit = last.abs() / ratio;
    let near = |max: f64| (limit - max).abs() <= max * 1e-6;
    if near(32767.0) || near(32768.0) {
        "smallint"
    } else if near(2147483647.0) || near(2147483648.0) {
        "integer"
    } else {
        "bigint"
    }
}

fn sequences(snap: &Snapshot, out: &mut Out) {
    let seqs = rows(snap, "pg_sequence_last_value");
    let max = by_labels(snap, "pg_sequence_max_value");
    // The sequence's schema: the column family names the sequence only.
    let schema_of = |db: &str, seq: &str, table_schema: &str| -> (String, Option<f64>) {
        let same: Vec<&Row> = seqs
            .iter()
            .filter(|s| s.l("datname") == db && s.l("sequencename") == seq)
            .collect();
        let pick = same
            .iter()
            .find(|s| s.l("schemaname") == table_schema)
            .or_else(|| (same.len() == 1).then(|| &same[0]));
        match pick {
            Some(s) => (s.l("schemaname").to_string(), Some(s.value)),
            None => (table_schema.to_string(), None),
        }
    };
    let mut planned: Vec<(String, String, String)> = vec![];
    for r in rows(snap, "pg_sequence_column_used_ratio") {
        if r.value <= t::INTEGER_KEY_WARNING_RATIO {
            continue;
        }
        let (db, schema, table, column, seq) = (
            r.l("datname"),
            r.l("schemaname"),
            r.l("relname"),
            r.l("attname"),
            r.l("sequencename"),
        );
        let (seq_schema, last) = schema_of(db, seq, schema);
        planned.push((db.to_string(), seq_schema.clone(), seq.to_string()));
        let typ = integer_type(last, r.value);
        let critical = r.value > t::INTEGER_KEY_CRITICAL_RATIO;
        let name = qualified(schema, table);
        let (fix, caution) = if typ == "bigint" {
            (
                vec![],
                "The column is bigint already: no wider integer type exists. Find out why the sequence \
                 advances this fast (a loop, huge CACHE, or deliberate gaps) before it runs out."
                    .to_string(),
            )
        } else {
            (
                vec![
                    sql(t::LOCK_TIMEOUT.into()),
                    sql(format!(
                        "ALTER TABLE {name} ALTER COLUMN {} TYPE bigint;",
                        quote_ident(column)
                    )),
                    sql(format!(
                        "ALTER SEQUENCE {} AS bigint;",
                        qualified(&seq_schema, seq)
                    )),
                ],
                format!(
                    "ALTER COLUMN … TYPE bigint rewrites the whole table and its indexes under an ACCESS \
                     EXCLUSIVE lock: no reads or writes on {name} until it ends, and disk for a second copy. \
                     Columns of other tables that reference this one (foreign keys) need the same change. \
                     Without such a window: add a bigint column, fill it in batches, keep it in sync with a \
                     trigger, then swap the columns in one short transaction. ALTER SEQUENCE … AS bigint \
                     lifts the sequence's own {typ} limit (an identity column's sequence follows the \
                     column by itself)."
                ),
            )
        };
        out.push_row(
            &r,
            New {
                kind: "integer_key_exhaustion",
                severity: if critical {
                    Severity::Critical
                } else {
                    Severity::Warning
                },
                title: format!(
                    "Column {} ({typ}) has used {:.1} % of its range",
                    column,
                    r.value * 100.0
                ),
                object: table_object(&r),
                evidence: vec![
                    ev("share of the type's range used", r.value, "ratio"),
                    ev("sequence last value", last.unwrap_or(0.0), "values"),
                ],
                why: "When the sequence passes the column type's limit, every INSERT into the table fails \
                      with \"integer out of range\".",
                fix,
                caution: Some(caution),
                alert: if critical {
                    "PostgresIntegerKeyExhaustionImminent"
                } else {
                    "PostgresIntegerKeyNearExhaustion"
                },
            },
        );
    }
    for r in rows(snap, "pg_sequence_used_ratio") {
        if r.value <= t::SEQUENCE_USED_RATIO {
            continue;
        }
        let (db, schema, seq) = (r.l("datname"), r.l("schemaname"), r.l("sequencename"));
        // Planned with its column above: one plan per sequence.
        if planned.iter().any(|(d, s, q)| d == db && s == schema && q == seq) {
            continue;
        }
        let name = qualified(schema, seq);
        let descending = max.get(r.labels).is_some_and(|m| *m < 0.0);
        out.push_row(
            &r,
            New {
                kind: "sequence_exhaustion",
                severity: Severity::Warning,
                title: format!("Sequence has used {:.1} % of its range", r.value * 100.0),
                object: Object {
                    datname: Some(db.to_string()),
                    schemaname: Some(schema.to_string()),
                    relname: Some(seq.to_string()),
                    ..Default::default()
                },
                evidence: vec![
                    ev("share of MINVALUE..MAXVALUE used", r.value, "ratio"),
                    ev("last value", r.value_of(&seqs), "values"),
                ],
                why: "At its limit nextval() fails (or, with CYCLE, starts handing out old values again).",
                fix: vec![sql(format!(
                    "ALTER SEQUENCE {name} AS bigint {};",
                    if descending { "NO MINVALUE" } else { "NO MAXVALUE" }
                ))],
                caution: Some(
                    "This widens the sequence to bigint's range; instant, no table rewrite. If the limit is \
                     deliberate (fixed-width numbers, CYCLE), decide with the application instead. A column \
                     it feeds must be able to hold the larger values."
                        .into(),
                ),
                alert: "PostgresSequenceNearExhaustion",
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_and_literals_are_quoted() {
        assert_eq!(
            qualified("public", "Meeting \"Rooms\""),
            "public.\"Meeting \"\"Rooms\"\"\""
        );
        assert_eq!(literal("it's"), "'it''s'");
        assert_eq!(shell_word("a'b"), "'a'\\''b'");
    }

    #[test]
    fn reindex_concurrently_leftovers() {
        assert_eq!(
            reindex_leftover("orders_pkey_ccnew"),
            Some(("_ccnew", "orders_pkey"))
        );
        assert_eq!(
            reindex_leftover("orders_pkey_ccnew12"),
            Some(("_ccnew", "orders_pkey"))
        );
        assert_eq!(reindex_leftover("t_ccold1"), Some(("_ccold", "t")));
        assert_eq!(reindex_leftover("_ccnew"), None);
        assert_eq!(reindex_leftover("t_ccnew_x"), None);
        assert_eq!(reindex_leftover("orders_idx"), None);
    }

    #[test]
    fn numbers_for_people() {
        assert_eq!(count(1234567.0), "1,234,567");
        assert_eq!(count(-999.0), "-999");
        assert_eq!(bytes(1536.0 * 1024.0 * 1024.0), "1.5 GiB");
        assert_eq!(bytes(512.0), "512 B");
        assert_eq!(duration(90061.0), "1 d 1 h");
        assert_eq!(duration(61.0), "1 min 1 s");
        assert_eq!(duration(3.4), "3 s");
    }

    #[test]
    fn integer_type_from_last_value_and_ratio() {
        assert_eq!(
            integer_type(Some(2_100_000_000.0), 2_100_000_000.0 / 2147483647.0),
            "integer"
        );
        assert_eq!(integer_type(Some(-30000.0), 30000.0 / 32768.0), "smallint");
        assert_eq!(integer_type(Some(9e18), 9e18 / 9223372036854775807.0), "bigint");
        assert_eq!(integer_type(None, 0.9), "integer");
    }

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
