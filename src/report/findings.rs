//! Findings: the snapshot's samples turned into things to do.
//!
//! The rules (`rules/<kind>.rs`) are tables of [`Rule`]s: the family a rule
//! walks, the finding's fixed parts (kind, alert, why) and a `check` that
//! looks at one sample — comparing it with `thresholds.rs` and the other
//! families of the same object through [`Ctx`] — and returns the variable
//! parts ([`Draft`]: severity, title, evidence, the commands that fix the
//! object, identifiers quoted with `quote_ident`), or `None`. [`all`] walks
//! every table. Nothing here touches the database.

use std::cell::RefCell;
use std::collections::HashMap;

use super::text::shell;
pub use super::text::{bytes, count, duration, literal, qualified, runbook};
use super::{cached_up_to, unix, Command, Evidence, Finding, Object, Severity};
use crate::config::Config;
use crate::metrics::{Family, FamilySamples};
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

/// A family's rows keyed by their first label values: families of one object
/// kind share the label order, so the keys join.
type Keyed<'a> = HashMap<&'a [String], Row<'a>>;

/// What a rule's check reads: the snapshot indexed by family, the settings,
/// and the time of the report.
pub struct Ctx<'a> {
    pub config: &'a Config,
    /// The report's time (unix seconds).
    pub now: f64,
    /// Each family's samples (and report details) per run, in run order.
    parts: HashMap<&'static str, Vec<(&'a Run, &'a FamilySamples)>>,
    /// `(family's address, key length)` → rows by key, built on first use
    /// (the address: cheaper to hash than the name, on every lookup).
    keyed: RefCell<HashMap<(usize, usize), Keyed<'a>>>,
}

impl<'a> Ctx<'a> {
    pub fn new(snap: &'a Snapshot, config: &'a Config, now: f64) -> Ctx<'a> {
        let mut parts: HashMap<&'static str, Vec<_>> = HashMap::new();
        for run in &snap.runs {
            for fs in run.sink.families.iter().chain(&run.sink.details) {
                parts.entry(fs.family.name).or_default().push((run, fs));
            }
        }
        Ctx {
            config,
            now,
            parts,
            keyed: RefCell::new(HashMap::new()),
        }
    }

    /// Every sample (or report detail) of one family, across all runs.
    pub fn rows(&self, family: &Family) -> impl Iterator<Item = Row<'a>> + '_ {
        let parts = self.parts.get(family.name).map(Vec::as_slice).unwrap_or(&[]);
        parts.iter().flat_map(|&(run, fs)| {
            fs.samples.iter().map(move |s| Row {
                names: fs.family.labels,
                labels: &s.labels,
                value: s.value,
                run,
            })
        })
    }

    /// The row of `family` whose first labels are `key` (the last one if
    /// several are).
    pub fn find(&self, family: &Family, key: &[String]) -> Option<Row<'a>> {
        let mut keyed = self.keyed.borrow_mut();
        let id = std::ptr::from_ref(family) as usize;
        let map = keyed.entry((id, key.len())).or_insert_with(|| {
            self.rows(family)
                .filter(|r| r.labels.len() >= key.len())
                .map(|r| (&r.labels[..key.len()], r))
                .collect()
        });
        map.get(key).copied()
    }

    /// The value of `family` for the object with these label values.
    pub fn get(&self, family: &Family, labels: &[String]) -> Option<f64> {
        self.find(family, labels).map(|r| r.value)
    }

    /// The single value of a family without labels.
    pub fn scalar(&self, family: &Family) -> Option<f64> {
        self.rows(family).next().map(|r| r.value)
    }
}

/// One rule of the report: the family it walks and the fixed parts of its
/// findings; `check` decides, per sample, whether there is one.
pub struct Rule {
    /// Stable identifier of the finding (docs/report.md lists them).
    pub kind: &'static str,
    /// The family whose samples the rule walks, at most one finding each.
    pub family: &'static Family,
    /// The alert whose runbook section the finding links to…
    pub alert: &'static str,
    /// …or this one when the finding is critical.
    pub critical_alert: Option<&'static str>,
    /// Why the finding matters (unless the check gives its own).
    pub why: &'static str,
    /// The variable parts of the finding about one sample, `None` if fine.
    pub check: fn(&Ctx, &Row) -> Option<Draft>,
}

/// What a check says about one sample; the rule supplies the rest.
pub struct Draft {
    pub severity: Severity,
    pub title: String,
    pub object: Object,
    pub evidence: Vec<Evidence>,
    pub fix: Vec<Command>,
    /// See `Finding::fallback`.
    pub fallback: Vec<Command>,
    pub caution: Option<String>,
    /// Replaces the rule's `why` for a variant of the finding.
    pub why: Option<&'static str>,
}

impl Draft {
    /// A finding without evidence, commands or caution yet.
    pub fn new(severity: Severity, title: impl Into<String>, object: Object) -> Draft {
        Draft {
            severity,
            title: title.into(),
            object,
            evidence: vec![],
            fix: vec![],
            fallback: vec![],
            caution: None,
            why: None,
        }
    }
}

pub fn table_object(r: &Row) -> Object {
    Object {
        datname: Some(r.l("datname").to_string()),
        schemaname: Some(r.l("schemaname").to_string()),
        relname: Some(r.l("relname").to_string()),
        ..Default::default()
    }
}

pub fn index_object(r: &Row) -> Object {
    Object {
        indexrelname: Some(r.l("indexrelname").to_string()),
        ..table_object(r)
    }
}

/// Every finding in the snapshot, unsorted and unfiltered.
pub fn all(snap: &Snapshot, config: &Config, now: f64) -> Vec<Finding> {
    let taken = unix(snap.taken_at);
    let finding = |kind, alert, why: &str, collector, cached, d: Draft| Finding {
        kind,
        severity: d.severity,
        title: d.title,
        object: d.object,
        evidence: d.evidence,
        why: d.why.unwrap_or(why).to_string(),
        fix: d.fix,
        fallback: d.fallback,
        on_primary: vec![],
        blocks: 0,
        caution: d.caution,
        runbook: runbook(alert),
        collector,
        collected_at: taken,
        data_age_seconds: (now - taken).max(0.0),
        cached_up_to_seconds: cached,
    };
    if !snap.up {
        let mut down = Draft::new(
            Severity::Critical,
            "PostgreSQL does not answer the exporter",
            Object::default(),
        );
        down.fix = vec![shell("pg_isready -h <host> -p <port>".into())];
        down.caution = Some("The exporter log says why the connection failed.".into());
        let why = "No other part of this report can be checked while the server is unreachable.";
        return vec![finding("postgres_down", "PostgresDown", why, "", 0.0, down)];
    }
    let ctx = Ctx::new(snap, config, now);
    let mut list = Vec::new();
    for rule in super::rules::ALL.iter().flat_map(|rules| rules.iter()) {
        for row in ctx.rows(rule.family) {
            let Some(d) = (rule.check)(&ctx, &row) else {
                continue;
            };
            let alert = match rule.critical_alert {
                Some(a) if d.severity == Severity::Critical => a,
                _ => rule.alert,
            };
            let cached = cached_up_to(row.run);
            list.push(finding(rule.kind, alert, rule.why, row.run.collector, cached, d));
        }
    }
    list
}
