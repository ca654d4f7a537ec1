//! The maintenance report: `/report` (HTML) and `/report.json` — what needs
//! doing now, ranked, with the exact commands.
//!
//! Built only from the latest scrape's structured snapshot (`scrape::Snapshot`:
//! every collector's samples, plus the few report-only `Sink::details` such as
//! session pids), obtained through `App::shared_scrape` exactly like
//! `/metrics`: it reuses a result younger than `PGMAINT_MIN_SCRAPE_INTERVAL`
//! and coalesces with running scrapes, so the report adds no database load
//! beyond one normal scrape, and it runs no SQL of its own. Thresholds are the
//! alert rules' defaults (`thresholds.rs`). Schema: docs/report.md.
//!
//! Layout: `rules/<kind>.rs` are tables of rules (family, check, finding
//! template) that the engine in `findings.rs` walks over a snapshot;
//! `text.rs` quotes identifiers and writes numbers for people; `rank.rs`
//! orders the findings, root causes first; `standby.rs` moves writes to
//! "on the primary"; `html.rs` renders the page; `thresholds.rs` holds the
//! numbers (the alert rules' defaults). A new rule is a `Rule` in the table
//! of its kind, plus its kind in docs/report.md.

pub mod findings;
pub mod html;
pub mod rank;
pub mod rules;
pub mod standby;
pub mod text;
pub mod thresholds;

use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap};
use axum::response::{Html, IntoResponse, Response};
use serde::{Deserialize, Serialize};

pub use rank::{impact, rank, ROOT_CAUSES};
use standby::for_standby;
pub use standby::{writes, ON_PRIMARY};

use crate::config::Config;
use crate::scrape::{scrape_timeout, Coalescer};
use crate::scrape::{Run, Snapshot};

/// Version of the JSON layout; raised on any incompatible change.
pub const SCHEMA_VERSION: u32 = 1;

/// Where findings link to: the runbook section of the matching alert, on the
/// exporter that serves the report (`GET /runbook`, docs/runbook.md built in).
pub const RUNBOOK: &str = "/runbook";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Critical,
    Warning,
    Info,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Critical => "critical",
            Severity::Warning => "warning",
            Severity::Info => "info",
        }
    }
    /// Higher is more urgent (the HTML sorts on it).
    pub fn rank(self) -> u8 {
        match self {
            Severity::Critical => 3,
            Severity::Warning => 2,
            Severity::Info => 1,
        }
    }
}

/// What a finding is about; fields that do not apply are left out.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Object {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub datname: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schemaname: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub relname: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub indexrelname: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slot_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dir: Option<String>,
    /// A prepared transaction's global identifier.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gid: Option<String>,
}

impl Object {
    /// One line for people: `db.schema.table index i`, `pid 123 in db`,
    /// `slot s`, `prepared transaction 'g' in db`, …
    pub fn display(&self) -> String {
        let mut words: Vec<String> = vec![];
        if let Some(p) = self.pid {
            words.push(format!("pid {p} in"));
        }
        if let Some(g) = &self.gid {
            words.push(format!("prepared transaction {} in", findings::literal(g)));
        }
        let parts: Vec<&str> = [&self.datname, &self.schemaname, &self.relname]
            .into_iter()
            .flatten()
            .map(String::as_str)
            .collect();
        if !parts.is_empty() {
            words.push(parts.join("."));
        }
        if let Some(i) = &self.indexrelname {
            words.push(format!("index {i}"));
        }
        if let Some(slot) = &self.slot_name {
            words.push(format!("slot {slot}"));
        }
        if let Some(d) = &self.dir {
            words.push(format!("backups in {d}"));
        }
        if words.is_empty() {
            return "server".into();
        }
        words.join(" ")
    }
}

/// One number behind a finding.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evidence {
    pub name: String,
    pub value: f64,
    /// `tuples`, `bytes`, `seconds`, `ratio`, `transactions`, `unix_time`, …
    pub unit: &'static str,
    /// The value for people, with its unit.
    pub text: String,
}

/// A command that fixes the finding; `fix` lists them in the order to run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Command {
    /// `sql` (run in the finding's database with psql) or `shell`.
    pub kind: &'static str,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    /// Stable identifier of the kind of finding (docs/report.md lists them).
    pub kind: &'static str,
    pub severity: Severity,
    pub title: String,
    pub object: Object,
    pub evidence: Vec<Evidence>,
    pub why: String,
    pub fix: Vec<Command>,
    /// What to run instead when `fix` cannot be used (e.g. VACUUM FULL when
    /// pg_repack is not installed); `caution` says what it costs.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fallback: Vec<Command>,
    /// On a standby: the commands of `fix` that write, to run on the primary
    /// (they fail on a standby); `fix` keeps the read-only ones.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub on_primary: Vec<Command>,
    /// For a root cause: how many findings it keeps VACUUM from fixing
    /// (ranked after it).
    #[serde(skip_serializing_if = "is_zero")]
    pub blocks: usize,
    /// What to check before running `fix`, and the alternatives.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub caution: Option<String>,
    pub runbook: String,
    /// The collector the data came from and when (unix seconds).
    pub collector: &'static str,
    pub collected_at: f64,
    /// Seconds between `collected_at` and the report.
    pub data_age_seconds: f64,
    /// For cached collectors (sizes, bloat, custom queries): the data may be up to this much
    /// older than `collected_at`; 0 when read in that scrape.
    pub cached_up_to_seconds: f64,
}

/// When one collector last ran for one database.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Part {
    pub collector: &'static str,
    /// Empty for cluster-wide collectors.
    pub datname: String,
    pub success: bool,
    pub collected_at: f64,
    pub cached_up_to_seconds: f64,
}

/// Query parameters of both endpoints: `?datname=&relname=` keep the
/// findings of that database / table (an alert's `report` annotation).
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
pub struct Filter {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub datname: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relname: Option<String>,
}

impl Filter {
    /// Root causes are never filtered out: one in another database still
    /// holds back the shared catalogs of this one (see `blocks`).
    fn keeps(&self, f: &Finding) -> bool {
        if ROOT_CAUSES.contains(&f.kind) {
            return true;
        }
        let want = |w: &Option<String>, have: &Option<String>| match w.as_deref() {
            None | Some("") => true,
            Some(w) => have.as_deref() == Some(w),
        };
        want(&self.datname, &f.object.datname) && want(&self.relname, &f.object.relname)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Counts {
    pub critical: usize,
    pub warning: usize,
    pub info: usize,
}

/// The whole report (the JSON document).
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub schema_version: u32,
    pub exporter_version: &'static str,
    pub generated_at: f64,
    /// The scrape the report is built from.
    pub scrape_taken_at: f64,
    pub up: bool,
    pub server_version: Option<String>,
    /// `primary` or `standby` (in recovery); absent when the server is down.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<&'static str>,
    pub filter: Filter,
    pub counts: Counts,
    /// By impact, root causes first (`rank`).
    pub findings: Vec<Finding>,
    pub parts: Vec<Part>,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

pub fn unix(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// How much older than the scrape a run's data may be: its collector's cache
/// TTL (custom queries' too) when the run was served from cache, else 0.
pub fn cached_up_to(run: &Run) -> f64 {
    if run.from_cache {
        run.cache_ttl.as_secs_f64()
    } else {
        0.0
    }
}

/// Builds the report from a snapshot, as of `now` (unix seconds).
pub fn build(snap: &Snapshot, config: &Config, filter: &Filter, now: f64) -> Report {
    let taken = unix(snap.taken_at);
    let mut all = findings::all(snap, config, now);
    rank(&mut all);
    all.retain(|f| filter.keeps(f));
    if let Some(db) = filter.datname.as_deref().filter(|d| !d.is_empty()) {
        for f in all
            .iter_mut()
            .filter(|f| ROOT_CAUSES.contains(&f.kind) && f.object.datname.as_deref().is_some_and(|d| d != db))
        {
            let note = format!(
                "Listed although it is in another database: it holds back VACUUM of the shared catalogs \
                 (pg_database, pg_authid, …) in {db} too, and with them {db}'s datfrozenxid."
            );
            f.caution = Some(match f.caution.take() {
                Some(c) => format!("{note} {c}"),
                None => note,
            });
        }
    }
    if snap.server.as_ref().is_some_and(|s| s.in_recovery) {
        for f in &mut all {
            for_standby(f);
        }
    }
    let count = |s: Severity| all.iter().filter(|f| f.severity == s).count();
    let mut parts: Vec<Part> = snap
        .runs
        .iter()
        .filter(|r| match filter.datname.as_deref() {
            None | Some("") => true,
            Some(d) => r.datname.is_empty() || r.datname == d,
        })
        .map(|r| Part {
            collector: r.collector,
            datname: r.datname.clone(),
            success: r.success,
            collected_at: taken,
            cached_up_to_seconds: cached_up_to(r),
        })
        .collect();
    parts.sort_by(|a, b| (&a.datname, a.collector).cmp(&(&b.datname, b.collector)));
    Report {
        schema_version: SCHEMA_VERSION,
        exporter_version: env!("CARGO_PKG_VERSION"),
        generated_at: now,
        scrape_taken_at: taken,
        up: snap.up,
        server_version: snap.server.as_ref().map(|s| s.version.clone()),
        role: snap
            .server
            .as_ref()
            .map(|s| if s.in_recovery { "standby" } else { "primary" }),
        filter: filter.clone(),
        counts: Counts {
            critical: count(Severity::Critical),
            warning: count(Severity::Warning),
            info: count(Severity::Info),
        },
        findings: all,
        parts,
    }
}

async fn latest(app: &Coalescer, headers: &HeaderMap, filter: &Filter) -> Report {
    let arrived = Instant::now();
    let timeout = scrape_timeout(app.scraper.config().scrape_timeout, headers);
    // The same coalesced, rate-limited scrape /metrics uses: no extra load.
    let expo = app.shared_scrape(arrived, timeout).await;
    build(&expo.snap, app.scraper.config(), filter, unix(SystemTime::now()))
}

/// `GET /report`
pub async fn html_page(
    State(app): State<Arc<Coalescer>>,
    headers: HeaderMap,
    Query(filter): Query<Filter>,
) -> Html<String> {
    Html(html::render(&latest(&app, &headers, &filter).await))
}

/// `GET /report.json`
pub async fn json(
    State(app): State<Arc<Coalescer>>,
    headers: HeaderMap,
    Query(filter): Query<Filter>,
) -> Response {
    let report = latest(&app, &headers, &filter).await;
    // Only plain data: serialization cannot fail.
    let body = serde_json::to_string_pretty(&report).unwrap_or_default();
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}
