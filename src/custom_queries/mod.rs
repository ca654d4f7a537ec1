//! Custom queries: site-specific checks from `PGMAINT_QUERIES_FILE` (YAML),
//! e.g. the row count and newest `created_at` a restore test compares.
//!
//! The whole file is validated at start (a bad entry stops the exporter with
//! exit code 2 and a message naming the entry and the problem). Each entry
//! then becomes a collector named `custom:<name>` that runs per database
//! through the normal pipeline, with its own cache TTL: it always refreshes
//! in the background (like `sizes` and `bloat`), on its own connection
//! whose `statement_timeout` is set to the entry's `timeout` for that run.
//! A per-query timeout cannot be set inline: scrape queries are pipelined in
//! autocommit on one shared connection, where a `SET` would also apply to
//! the other collectors' queries in flight. A failure (SQL error, a missing
//! column, a non-numeric value) is that query's `pg_scrape_collector_success
//! 0` in that database, never an HTTP error. See `docs/custom-queries.md`.
//!
//! Entries are loaded once per process and live as long as it (leaked into
//! `'static` so that they fit the same `Collector`/`Family` types as the
//! built-in collectors).

use std::collections::HashSet;
use std::error::Error;
use std::time::Duration;

use regex::Regex;
use serde::Deserialize;
use tokio_postgres::types::{FromSql, Type};

use crate::collectors::{self, Collector, Ctx, Fetched, Query, Scope, Source};
use crate::config::{parse_duration, Config};
use crate::error::{CollectError, ConfigError};
use crate::metrics::{Family, Kind, Sink};
use crate::rows::Row;

mod sql_check;

pub use sql_check::check_sql;

/// Families of the exporter's process registry (`scrape/coalesce.rs`), also reserved.
const RESERVED_PREFIXES: &[&str] = &["pgmaint_exporter_", "pg_scrape_collector_"];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    queries: Vec<RawEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntry {
    name: Option<String>,
    help: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    sql: Option<String>,
    #[serde(default)]
    labels: Vec<String>,
    values: Option<Vec<String>>,
    databases: Option<Vec<String>>,
    cache: Option<serde_norway::Value>,
    timeout: Option<serde_norway::Value>,
}

/// Where an entry runs.
#[derive(Debug, Clone, PartialEq)]
pub enum Databases {
    /// The database named in the DSN (default).
    Main,
    /// Every database the exporter visits (`"*"`).
    All,
    List(Vec<String>),
}

/// One validated entry: a collector of its own.
#[derive(Debug)]
pub struct CustomQuery {
    /// The metric name as written in the file.
    pub metric: &'static str,
    collector: &'static str,
    sql: &'static str,
    labels: Vec<String>,
    /// Value column → its family.
    values: Vec<(String, &'static Family)>,
    families: &'static [&'static Family],
    pub databases: Databases,
    pub cache: Duration,
    pub timeout: Duration,
}

fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

/// `PGMAINT_QUERIES_FILE`'s entries, read and checked at start (none when
/// it is not set); a bad file is a start-up error naming the setting.
pub fn from_config(config: &Config) -> Result<Vec<&'static CustomQuery>, ConfigError> {
    match &config.queries_file {
        None => Ok(vec![]),
        Some(path) => load(path).map_err(|reason| ConfigError::Bad {
            var: "PGMAINT_QUERIES_FILE",
            reason,
        }),
    }
}

/// Reads and validates the file; the error names the file, entry and problem.
pub fn load(path: &str) -> Result<Vec<&'static CustomQuery>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {path:?}: {e}"))?;
    parse(&text).map_err(|e| format!("{path}: {e}"))
}

/// Validates a queries file's text.
pub fn parse(text: &str) -> Result<Vec<&'static CustomQuery>, String> {
    let raw: RawFile = serde_norway::from_str(text).map_err(|e| format!("not a valid queries file: {e}"))?;
    let builtin: HashSet<&str> = collectors::ALL
        .iter()
        .flat_map(|c| c.families().iter().map(|f| f.name))
        .chain(crate::scrape::SELF_FAMILIES.iter().map(|f| f.name))
        .collect();
    let metric_re = Regex::new(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$").unwrap();
    let label_re = Regex::new(r"^[a-zA-Z_][a-zA-Z0-9_]*$").unwrap();
    let mut seen: Vec<(String, String)> = Vec::new(); // (family, entry)
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for (i, e) in raw.queries.into_iter().enumerate() {
        let entry = match &e.name {
            Some(n) => format!("entry {} ({n})", i + 1),
            None => format!("entry {}", i + 1),
        };
        match validate(e, &builtin, &metric_re, &label_re, &mut seen, &entry) {
            Ok(q) => out.push(&*Box::leak(Box::new(q))),
            Err(why) => errors.push(format!("{entry}: {why}")),
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors.join("; "))
    }
}

fn duration_of(v: &Option<serde_norway::Value>, key: &str, default: Duration) -> Result<Duration, String> {
    let text = match v {
        None => return Ok(default),
        Some(serde_norway::Value::String(s)) => s.clone(),
        Some(serde_norway::Value::Number(n)) => n.to_string(),
        Some(other) => return Err(format!("{key}: {other:?} is not a duration (e.g. 30s, 5m)")),
    };
    parse_duration(&text).ok_or_else(|| {
        format!(
            "{key}: {text:?} is not a duration up to {} (e.g. 30s, 5m)",
            crate::config::describe_max(crate::config::MAX_DURATION)
        )
    })
}

fn validate(
    e: RawEntry,
    builtin: &HashSet<&str>,
    metric_re: &Regex,
    label_re: &Regex,
    seen: &mut Vec<(String, String)>,
    entry: &str,
) -> Result<CustomQuery, String> {
    let name = e.name.ok_or("name is missing")?;
    if !metric_re.is_match(&name) {
        return Err(format!(
            "name {name:?} is not a valid metric name ([a-zA-Z_:][a-zA-Z0-9_:]*)"
        ));
    }
    let help = e.help.filter(|h| !h.trim().is_empty()).ok_or("help is missing")?;
    let sql = e.sql.filter(|s| !s.trim().is_empty()).ok_or("sql is missing")?;
    check_sql(&sql)?;
    let kind = match e.kind.as_deref().unwrap_or("gauge") {
        "gauge" => Kind::Gauge,
        "counter" => Kind::Counter,
        other => return Err(format!("type {other:?} is not gauge or counter")),
    };
    let values = e
        .values
        .filter(|v| !v.is_empty())
        .ok_or("values is missing: name the numeric column(s)")?;
    if kind == Kind::Counter && values.len() != 1 {
        return Err("a counter has exactly one value column".into());
    }
    for l in &e.labels {
        if !label_re.is_match(l) || l.starts_with("__") {
            return Err(format!("label {l:?} is not a valid label name"));
        }
        if l == "datname" {
            return Err("label \"datname\" is reserved: the exporter adds the database name itself".into());
        }
        if values.contains(l) {
            return Err(format!("column {l:?} is both a label and a value"));
        }
    }
    let unique: HashSet<&String> = e.labels.iter().chain(&values).collect();
    if unique.len() != e.labels.len() + values.len() {
        return Err("a column is listed twice in labels/values".into());
    }
    let databases = match e.databases {
        None => Databases::Main,
        Some(d) if d.iter().any(|x| x == "*") => Databases::All,
        Some(d) if d.is_empty() => {
            return Err("databases is empty (omit it for the DSN's database, or use \"*\")".into())
        }
        Some(d) => Databases::List(d),
    };
    let cache = duration_of(&e.cache, "cache", Duration::from_secs(30))?;
    if cache < Duration::from_secs(1) {
        return Err("cache must be at least 1s (custom queries always run in the background)".into());
    }
    let timeout = duration_of(&e.timeout, "timeout", Duration::from_secs(10))?;
    if timeout < Duration::from_millis(1) {
        return Err("timeout must be at least 1ms".into());
    }
    if timeout > crate::config::MAX_PG_TIMEOUT {
        return Err(format!(
            "timeout must be at most {} (it becomes statement_timeout)",
            crate::config::describe_max(crate::config::MAX_PG_TIMEOUT)
        ));
    }
    let mut labels: Vec<&'static str> = vec!["datname"];
    labels.extend(e.labels.iter().map(|l| leak(l.clone())));
    let labels: &'static [&'static str] = Box::leak(labels.into_boxed_slice());
    let mut fams = Vec::new();
    for v in &values {
        let family = if values.len() == 1 {
            name.clone()
        } else {
            format!("{name}_{v}")
        };
        if !metric_re.is_match(&family) {
            return Err(format!("metric name {family:?} (name_column) is not valid"));
        }
        if builtin.contains(family.as_str()) || RESERVED_PREFIXES.iter().any(|p| family.starts_with(p)) {
            return Err(format!("metric name {family} clashes with a built-in family"));
        }
        if kind == Kind::Counter && !family.ends_with("_total") {
            return Err(format!("counter {family} must end in _total"));
        }
        if kind == Kind::Gauge && family.ends_with("_total") {
            return Err(format!(
                "gauge {family} must not end in _total (that suffix means counter)"
            ));
        }
        if let Some((_, other)) = seen.iter().find(|(f, _)| *f == family) {
            return Err(format!("duplicate metric name {family} (also in {other})"));
        }
        seen.push((family.clone(), entry.to_string()));
        let help = if values.len() == 1 {
            help.clone()
        } else {
            format!("{help} (column {v})")
        };
        let f: &'static Family = Box::leak(Box::new(Family {
            name: leak(family),
            help: leak(format!(
                "{} Custom query from PGMAINT_QUERIES_FILE, cached {}s.",
                help.trim(),
                cache.as_secs()
            )),
            kind,
            labels,
        }));
        fams.push((v.clone(), f));
    }
    let families: Vec<&'static Family> = fams.iter().map(|(_, f)| *f).collect();
    Ok(CustomQuery {
        collector: leak(format!("custom:{name}")),
        metric: leak(name),
        sql: leak(sql),
        labels: e.labels,
        values: fams,
        families: Box::leak(families.into_boxed_slice()),
        databases,
        cache,
        timeout,
    })
}

/// A NUMERIC read as f64 (`extract(epoch …)` and `sum()` return numeric),
/// the same f64 as PostgreSQL's own `::float8`.
///
/// Why not a crate, or a cast: tokio-postgres asks for every result column
/// in binary, so a NUMERIC arrives as base-10000 digits; rust_decimal (the
/// crate with a tokio-postgres decoder) refuses values past 28 digits, NaN
/// and ±Infinity, and the exporter cannot cast for the user without knowing
/// the column's type before the query runs. Users may write `::float8`
/// themselves (docs/custom-queries.md); existing queries with a numeric
/// column keep working through this.
///
/// What it does: lays the digits out as exact decimal text and parses that
/// with Rust's correctly rounded `f64::from_str`, which is what PostgreSQL's
/// `numeric_float8` does (`numeric_out`, then `float8in`). The former
/// decoder summed `digit * 10000^k` in floating point, which rounded at
/// each step: `1::numeric / 3` came out as 0.33333333333333337, and about
/// one in four epochs with microseconds (e.g. 594707488.797792) one unit in
/// the last place off (tests/it/custom_queries.rs checks both against `::float8`).
struct Numeric(f64);

impl<'a> FromSql<'a> for Numeric {
    fn from_sql(_ty: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn Error + Sync + Send>> {
        let word = |i: usize| -> Result<u16, Box<dyn Error + Sync + Send>> {
            raw.get(i..i + 2)
                .map(|b| u16::from_be_bytes([b[0], b[1]]))
                .ok_or_else(|| "short numeric".into())
        };
        // Header: digit count, weight of the first digit (a power of 10000), sign, display scale.
        let (ndigits, weight, sign) = (word(0)?, word(2)? as i16, word(4)?);
        let mut text = String::from(match sign {
            0x0000 => "0",
            0x4000 => "-0",
            0xC000 => return Ok(Numeric(f64::NAN)),
            0xD000 => return Ok(Numeric(f64::INFINITY)),
            0xF000 => return Ok(Numeric(f64::NEG_INFINITY)),
            _ => return Err("bad numeric sign".into()),
        });
        for i in 0..usize::from(ndigits) {
            let digit = word(8 + 2 * i)?;
            if digit >= 10000 {
                return Err("bad numeric digit".into());
            }
            text.push_str(&format!("{digit:04}"));
        }
        let exponent = 4 * (i32::from(weight) + 1 - i32::from(ndigits));
        Ok(Numeric(format!("{text}e{exponent}").parse()?))
    }
    fn accepts(ty: &Type) -> bool {
        *ty == Type::NUMERIC
    }
}

fn column(row: Row<'_>, name: &str, query: &str, what: &str) -> Result<usize, CollectError> {
    row.columns()
        .iter()
        .position(|c| c.name() == name)
        .ok_or_else(|| {
            CollectError::Other(format!(
                "{what} column {name:?} is not in the result of custom query {query}"
            ))
        })
}

fn value(row: Row<'_>, idx: usize) -> Result<Option<f64>, CollectError> {
    if *row.columns()[idx].type_() == Type::NUMERIC {
        return Ok(row.try_get::<_, Option<Numeric>>(idx)?.map(|n| n.0));
    }
    collectors::num(row, idx)
}

fn label(row: Row<'_>, idx: usize) -> Result<String, CollectError> {
    let ty = row.columns()[idx].type_();
    if <String as FromSql>::accepts(ty) {
        return collectors::text(row, idx);
    }
    Ok(value(row, idx)?.map(|v| v.to_string()).unwrap_or_default())
}

impl Collector for CustomQuery {
    fn name(&self) -> &'static str {
        self.collector
    }
    fn description(&self) -> &'static str {
        "Custom query from PGMAINT_QUERIES_FILE."
    }
    fn scope(&self) -> Scope {
        Scope::PerDatabase
    }
    fn families(&self) -> &'static [&'static Family] {
        self.families
    }
    fn source(&self, ctx: &Ctx) -> Source {
        let runs_here = match &self.databases {
            Databases::Main => ctx.datname == ctx.config.main_database(),
            Databases::All => true,
            Databases::List(l) => l.iter().any(|d| d == ctx.datname),
        };
        if runs_here {
            Source::Sql(vec![Query::new(self.metric, self.sql)])
        } else {
            Source::NotApplicable
        }
    }
    fn map(&self, ctx: &Ctx, input: &Fetched, out: &mut Sink) -> Result<(), CollectError> {
        for row in input.rows(self.metric)? {
            let mut labels = vec![ctx.datname.to_string()];
            for l in &self.labels {
                labels.push(label(row, column(row, l, self.metric, "label")?)?);
            }
            let labels: Vec<&str> = labels.iter().map(String::as_str).collect();
            for (col, family) in &self.values {
                let v = value(row, column(row, col, self.metric, "value")?)?;
                match family.kind {
                    Kind::Gauge => out.gauge_opt(family, &labels, v),
                    Kind::Counter => out.counter_opt(family, &labels, v),
                }
            }
        }
        Ok(())
    }
    fn cache_ttl(&self, _config: &Config) -> Duration {
        self.cache
    }
    fn statement_timeout(&self, _config: &Config) -> Option<Duration> {
        Some(self.timeout)
    }
    fn isolated(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "
queries:
  - name: app_users
    help: Rows in users.
    sql: SELECT count(*) AS users FROM users
    values: [users]
  - name: app_meetings
    help: Meetings.
    type: gauge
    sql: SELECT count(*) AS rows, extract(epoch FROM max(created_at)) AS newest FROM meetings
    values: [rows, newest]
    databases: ['*']
    cache: 1m
    timeout: 2
";

    #[test]
    fn a_good_file_loads() {
        let q = parse(GOOD).unwrap();
        assert_eq!(q.len(), 2);
        assert_eq!(q[0].name(), "custom:app_users");
        assert_eq!(q[0].databases, Databases::Main);
        assert_eq!(q[0].cache, Duration::from_secs(30));
        let names: Vec<&str> = q[1].families().iter().map(|f| f.name).collect();
        assert_eq!(names, ["app_meetings_rows", "app_meetings_newest"]);
        assert_eq!(q[1].families()[0].labels, ["datname"]);
        assert_eq!(q[1].databases, Databases::All);
        assert_eq!(
            (q[1].cache, q[1].timeout),
            (Duration::from_secs(60), Duration::from_secs(2))
        );
    }

    fn err(text: &str) -> String {
        parse(text).unwrap_err()
    }

    #[test]
    fn bad_entries_are_named() {
        let dup = "queries:\n  - {name: a_x, help: h, sql: SELECT 1 AS v, values: [v]}\n  - {name: a_x, help: h, sql: SELECT 2 AS v, values: [v]}\n";
        assert_eq!(
            err(dup),
            "entry 2 (a_x): duplicate metric name a_x (also in entry 1 (a_x))"
        );
        let nosql = "queries:\n  - {name: a_x, help: h, values: [v]}\n";
        assert_eq!(err(nosql), "entry 1 (a_x): sql is missing");
        let clash = "queries:\n  - {name: pg_up, help: h, sql: SELECT 1 AS v, values: [v]}\n";
        assert_eq!(
            err(clash),
            "entry 1 (pg_up): metric name pg_up clashes with a built-in family"
        );
        let clash2 = "queries:\n  - {name: pg_backup_files, help: h, sql: SELECT 1 AS v, values: [v]}\n";
        assert!(err(clash2).contains("clashes with a built-in family"));
        let counter = "queries:\n  - {name: a_x, type: counter, help: h, sql: SELECT 1 AS v, values: [v]}\n";
        assert_eq!(err(counter), "entry 1 (a_x): counter a_x must end in _total");
        let datname =
            "queries:\n  - {name: a_x, help: h, sql: SELECT 1 AS v, labels: [datname], values: [v]}\n";
        assert!(err(datname).contains("\"datname\" is reserved"));
        let unknown = "queries:\n  - {name: a_x, help: h, sql: SELECT 1 AS v, values: [v], colour: red}\n";
        assert!(
            err(unknown).contains("unknown field `colour`"),
            "{}",
            err(unknown)
        );
        let cache = "queries:\n  - {name: a_x, help: h, sql: SELECT 1 AS v, values: [v], cache: 0s}\n";
        assert!(err(cache).contains("cache must be at least 1s"));
    }
}
