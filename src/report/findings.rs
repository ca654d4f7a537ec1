//! Findings: the snapshot's samples turned into things to do.
//!
//! Each rule reads exported families (and the report-only details of
//! `activity` and `indexes`), compares them with `thresholds.rs` and writes
//! the command that fixes the object, identifiers quoted with `quote_ident`.
//! Nothing here touches the database.

use std::collections::HashMap;

use super::rules::{backup, bloat, indexes, replication, sequences, sessions, tables, wal, xid};
use super::text::shell;
pub use super::text::{bytes, count, duration, literal, qualified, runbook};
use super::{cache_ttl, unix, Command, Evidence, Finding, Object, Severity};
use crate::config::Config;
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
pub(crate) fn by_labels<'a>(snap: &'a Snapshot, family: &str) -> HashMap<&'a [String], f64> {
    rows(snap, family)
        .into_iter()
        .map(|r| (r.labels, r.value))
        .collect()
}

/// The single value of a family without labels.
pub(crate) fn scalar(snap: &Snapshot, family: &str) -> Option<f64> {
    rows(snap, family).first().map(|r| r.value)
}

/// Builds findings with the collection time of the run behind them.
pub(crate) struct Out<'a> {
    pub(crate) config: &'a Config,
    pub(crate) now: f64,
    taken: f64,
    list: Vec<Finding>,
}

pub(crate) struct New {
    pub(crate) kind: &'static str,
    pub(crate) severity: Severity,
    pub(crate) title: String,
    pub(crate) object: Object,
    pub(crate) evidence: Vec<Evidence>,
    pub(crate) why: &'static str,
    pub(crate) fix: Vec<Command>,
    pub(crate) caution: Option<String>,
    pub(crate) alert: &'static str,
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
    pub(crate) fn push_row(&mut self, row: &Row, n: New) {
        self.push(row.run.collector, row.run.duration.is_zero(), n);
    }
    /// Gives the finding pushed last its fallback commands.
    pub(crate) fn fallback(&mut self, commands: Vec<Command>) {
        if let Some(f) = self.list.last_mut() {
            f.fallback = commands;
        }
    }
}

pub(crate) fn table_object(r: &Row) -> Object {
    Object {
        datname: Some(r.l("datname").to_string()),
        schemaname: Some(r.l("schemaname").to_string()),
        relname: Some(r.l("relname").to_string()),
        ..Default::default()
    }
}

pub(crate) fn index_object(r: &Row) -> Object {
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
    tables::tables(snap, &mut out);
    xid::wraparound(snap, &mut out);
    indexes::indexes(snap, &mut out);
    bloat::bloat(snap, &mut out);
    sessions::sessions(snap, &mut out);
    sessions::connections(snap, &mut out);
    backup::backups(snap, &mut out);
    wal::archiving(snap, &mut out);
    replication::slots(snap, &mut out);
    sessions::prepared(snap, &mut out);
    xid::multixact(snap, &mut out);
    sequences::sequences(snap, &mut out);
    out.list
}
