//! The Grafana dashboards in `dashboards/`: well-formed (JSON, schemaVersion,
//! the job → cluster → instance → datname variables, a unit and a description
//! on every panel, only documented metrics and our recording rules, links to
//! shipped dashboards or /report) and alive — a real Prometheus scrapes the
//! exporter over a scenario database with the rules of `alerts/` loaded;
//! every variable chain resolves, every panel query returns data, every data
//! link filled from its panel's series leads to a dashboard offering those
//! values or to a /report page the exporter serves, every rule evaluates
//! cleanly. The restart/failover annotations are checked with promtool.
//!
//! Dashboards are read with serde_json into a small `Json` tree that also
//! refuses a duplicate key (Grafana, like serde_json's `Value`, keeps the
//! last one silently).

use crate::harness;
use crate::harness::repo;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------- JSON

#[derive(Debug, Clone, PartialEq)]
enum Json {
    Null,
    Bool(bool),
    Num(f64),
    Str(String),
    Arr(Vec<Json>),
    Obj(Vec<(String, Json)>),
}

impl Json {
    /// serde_json's strict RFC 8259 parsing, and duplicate object keys are an
    /// error too (serde_json's own `Value` keeps the last one silently, as
    /// Grafana does, which would hide a panel setting written twice).
    fn parse(text: &str) -> Result<Json, String> {
        serde_json::from_str(text).map_err(|e| e.to_string())
    }

    fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Obj(m) => m.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    fn str(&self, key: &str) -> Option<&str> {
        match self.get(key) {
            Some(Json::Str(s)) => Some(s),
            _ => None,
        }
    }

    fn num(&self, key: &str) -> Option<f64> {
        match self.get(key) {
            Some(Json::Num(n)) => Some(*n),
            _ => None,
        }
    }

    fn bool(&self, key: &str) -> Option<bool> {
        match self.get(key) {
            Some(Json::Bool(b)) => Some(*b),
            _ => None,
        }
    }

    fn arr(&self, key: &str) -> &[Json] {
        match self.get(key) {
            Some(Json::Arr(a)) => a,
            _ => &[],
        }
    }

    /// Follows a path of object keys.
    fn at(&self, path: &[&str]) -> Option<&Json> {
        path.iter().try_fold(self, |v, k| v.get(k))
    }
}

/// Builds a `Json` from serde_json's tokens, refusing a key seen twice in
/// one object.
struct JsonVisitor;

impl<'de> serde::de::Visitor<'de> for JsonVisitor {
    type Value = Json;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }
    fn visit_bool<E>(self, b: bool) -> Result<Json, E> {
        Ok(Json::Bool(b))
    }
    fn visit_i64<E>(self, n: i64) -> Result<Json, E> {
        Ok(Json::Num(n as f64))
    }
    fn visit_u64<E>(self, n: u64) -> Result<Json, E> {
        Ok(Json::Num(n as f64))
    }
    fn visit_f64<E>(self, n: f64) -> Result<Json, E> {
        Ok(Json::Num(n))
    }
    fn visit_str<E>(self, s: &str) -> Result<Json, E> {
        Ok(Json::Str(s.to_string()))
    }
    fn visit_string<E>(self, s: String) -> Result<Json, E> {
        Ok(Json::Str(s))
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
        let mut out = vec![];
        while let Some(v) = seq.next_element()? {
            out.push(v);
        }
        Ok(Json::Arr(out))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
        let mut out: Vec<(String, Json)> = vec![];
        while let Some((k, v)) = map.next_entry::<String, Json>()? {
            if out.iter().any(|(seen, _)| *seen == k) {
                return Err(serde::de::Error::custom(format!("duplicate key {k:?}")));
            }
            out.push((k, v));
        }
        Ok(Json::Obj(out))
    }
}

impl<'de> serde::Deserialize<'de> for Json {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Json, D::Error> {
        d.deserialize_any(JsonVisitor)
    }
}

#[test]
fn json_is_read_strictly_and_escapes_decoded() {
    let v = Json::parse(r#" {"a": [1, -2.5e3, true, null], "b": "x\"\\\/\n\u00e9\ud83d\ude00"} "#).unwrap();
    assert_eq!(v.arr("a")[1], Json::Num(-2500.0));
    assert_eq!(v.str("b"), Some("x\"\\/\né😀"));
    for bad in [
        r#"{"a": 1,}"#,
        r#"{"a": 1} x"#,
        r#"{"a": 1, "a": 2}"#,
        r#"[01]"#,
        "[\"tab\there\"]",
        r#"["\x"]"#,
        r#"{"a" 1}"#,
        r#"["\ud83d"]"#,
    ] {
        assert!(Json::parse(bad).is_err(), "accepted {bad}");
    }
}

// ---------------------------------------------------------------- dashboards

const DASHBOARDS: &[&str] = &[
    "overview",
    "instance",
    "vacuum",
    "indexes",
    "sessions",
    "replication",
    "statements",
];

struct Target {
    ref_id: String,
    expr: String,
    legend: String,
}

struct Panel {
    title: String,
    targets: Vec<Target>,
}

struct Dashboard {
    file: String,
    json: Json,
    panels: Vec<Panel>,
}

/// Every panel, rows' nested panels included (rows themselves left out).
fn collect_panels<'a>(panels: &'a [Json], out: &mut Vec<&'a Json>) {
    for p in panels {
        if p.str("type") == Some("row") {
            collect_panels(p.arr("panels"), out);
        } else {
            out.push(p);
        }
    }
}

fn load_dashboards() -> Vec<Dashboard> {
    let dir = repo().join("dashboards");
    let mut found: Vec<String> = std::fs::read_dir(&dir)
        .expect("dashboards/")
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".json"))
        .collect();
    found.sort();
    let mut expected: Vec<String> = DASHBOARDS.iter().map(|d| format!("{d}.json")).collect();
    expected.sort();
    assert_eq!(found, expected, "dashboards/*.json");
    found
        .into_iter()
        .map(|file| {
            let text = std::fs::read_to_string(dir.join(&file)).unwrap();
            let json = Json::parse(&text).unwrap_or_else(|e| panic!("{file}: {e}"));
            let mut raw = Vec::new();
            collect_panels(json.arr("panels"), &mut raw);
            let panels = raw
                .iter()
                .map(|p| Panel {
                    title: p.str("title").unwrap_or_default().to_string(),
                    targets: p
                        .arr("targets")
                        .iter()
                        .map(|t| Target {
                            ref_id: t.str("refId").unwrap_or_default().to_string(),
                            expr: t.str("expr").unwrap_or_default().to_string(),
                            legend: t.str("legendFormat").unwrap_or_default().to_string(),
                        })
                        .collect(),
                })
                .collect();
            Dashboard { file, json, panels }
        })
        .collect()
}

/// A panel's data links: (the table column they sit on, if any; the URL).
fn panel_links(p: &Json) -> Vec<(Option<String>, String)> {
    let mut out = Vec::new();
    let defaults = p.at(&["fieldConfig", "defaults"]);
    for l in defaults.map(|d| d.arr("links")).unwrap_or_default() {
        out.push((None, l.str("url").unwrap_or_default().to_string()));
    }
    let overrides = p
        .at(&["fieldConfig"])
        .map(|f| f.arr("overrides"))
        .unwrap_or_default();
    for o in overrides {
        let col = o.at(&["matcher", "options"]).and_then(|c| match c {
            Json::Str(s) => Some(s.clone()),
            _ => None,
        });
        for prop in o.arr("properties") {
            if prop.str("id") == Some("links") {
                for l in prop.arr("value") {
                    out.push((col.clone(), l.str("url").unwrap_or_default().to_string()));
                }
            }
        }
    }
    out
}

/// `${name}` / `${name:format}` references of a link URL, with the format.
fn link_refs(url: &str) -> Vec<(String, Option<String>)> {
    let mut out = Vec::new();
    let mut rest = url;
    while let Some(i) = rest.find("${") {
        let Some(j) = rest[i..].find('}') else { break };
        let inner = &rest[i + 2..i + j];
        let (name, format) = match inner.split_once(':') {
            Some((n, f)) => (n.to_string(), Some(f.to_string())),
            None => (inner.to_string(), None),
        };
        out.push((name, format));
        rest = &rest[i + j + 1..];
    }
    out
}

/// The query parameters of a URL (after `?`), undecoded.
fn url_params(url: &str) -> Vec<(String, String)> {
    let Some((_, q)) = url.split_once('?') else {
        return Vec::new();
    };
    q.split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Grafana variables an expression uses (`$x` and `${x}`), built-ins included.
fn variables_in(expr: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let b = expr.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'$' {
            let braced = b.get(i + 1) == Some(&b'{');
            let start = i + 1 + braced as usize;
            let mut j = start;
            while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_') {
                j += 1;
            }
            out.insert(expr[start..j].to_string());
            i = j;
        } else {
            i += 1;
        }
    }
    out
}

/// The recording rules of `alerts/pgmaint.rules.yml` (`record: name` lines).
fn recording_rules() -> BTreeSet<String> {
    std::fs::read_to_string(repo().join("alerts/pgmaint.rules.yml"))
        .unwrap()
        .lines()
        .filter_map(|l| l.trim_start().trim_start_matches("- ").strip_prefix("record:"))
        .map(|n| n.trim().to_string())
        .collect()
}

/// Metric names (identifiers outside string literals starting `pg_`,
/// `pgmaint_`, or `pgmaint:` for our recording rules).
fn metric_names(expr: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut chars = expr.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c == '"' || c == '\'' || c == '`' {
            while let Some((_, d)) = chars.next() {
                if d == '\\' {
                    chars.next();
                } else if d == c {
                    break;
                }
            }
        } else if c.is_ascii_alphabetic() || c == '_' {
            let mut end = i + c.len_utf8();
            while let Some(&(j, d)) = chars.peek() {
                if d.is_ascii_alphanumeric() || d == '_' || d == ':' {
                    end = j + 1;
                    chars.next();
                } else {
                    break;
                }
            }
            let word = &expr[i..end];
            if word.starts_with("pg_") || word.starts_with("pgmaint_") || word.starts_with("pgmaint:") {
                out.insert(word.to_string());
            }
        }
    }
    out
}

#[test]
fn dashboards_are_well_formed() {
    let docs = std::fs::read_to_string(repo().join("docs/metrics.md")).unwrap();
    let recorded = recording_rules();
    let per_object = per_object_families(&docs);
    assert!(per_object.contains("pg_index_size_bytes"), "{per_object:?}");
    let ours: Vec<String> = our_alerts().into_iter().collect();
    assert!(ours.len() >= 10, "{ours:?}");
    let dashboards = load_dashboards();
    // docs/dashboards.md has a row for every panel.
    let guide = std::fs::read_to_string(repo().join("docs/dashboards.md")).unwrap();
    for d in &dashboards {
        for p in &d.panels {
            assert!(
                guide.contains(&format!("\n| {} | `", p.title)),
                "{}: panel {} is not in docs/dashboards.md",
                d.file,
                p.title
            );
        }
    }
    let mut uids = BTreeSet::new();
    let mut panels_total = 0;
    for d in &dashboards {
        let (f, j) = (&d.file, &d.json);
        let schema = j.num("schemaVersion").unwrap_or(0.0);
        assert!(schema >= 39.0, "{f}: schemaVersion {schema}");
        let uid = j.str("uid").unwrap_or_default();
        assert!(
            !uid.is_empty() && uid.len() <= 40 && uid.starts_with("pgmaint-"),
            "{f}: uid {uid:?}"
        );
        assert!(uids.insert(uid.to_string()), "{f}: uid {uid} used twice");
        assert!(!j.str("title").unwrap_or_default().is_empty(), "{f}: title");

        // Variables: the datasource, then instance (and datname) queries.
        let vars: BTreeMap<&str, &Json> = j
            .at(&["templating"])
            .map(|t| t.arr("list"))
            .unwrap_or_default()
            .iter()
            .map(|v| (v.str("name").unwrap_or_default(), v))
            .collect();
        let ds = vars
            .get("datasource")
            .unwrap_or_else(|| panic!("{f}: no datasource variable"));
        assert_eq!(ds.str("type"), Some("datasource"), "{f}");
        assert_eq!(ds.str("query"), Some("prometheus"), "{f}");
        // The chain job → cluster → instance → datname. "All" is `.*` except
        // for instance, whose "All" must be the instances of the selected jobs
        // and clusters (Grafana then joins the listed values).
        for (name, needle, all_value) in [
            ("job", "label_values(pg_up, job)", Some(".*")),
            (
                "cluster",
                "label_values(pg_up{job=~\"$job\"}, cluster)",
                Some(".*"),
            ),
            (
                "instance",
                "label_values(pg_up{job=~\"$job\", cluster=~\"$cluster\"}, instance)",
                None,
            ),
            ("datname", "datname)", Some(".*")),
        ] {
            let Some(v) = vars.get(name) else {
                assert_eq!(name, "datname", "{f}: no {name} variable");
                continue;
            };
            assert_eq!(v.str("type"), Some("query"), "{f}: {name}");
            assert_eq!(v.bool("multi"), Some(true), "{f}: {name} multi");
            assert_eq!(v.bool("includeAll"), Some(true), "{f}: {name} includeAll");
            assert_eq!(v.str("allValue"), all_value, "{f}: {name} allValue");
            assert_eq!(
                v.at(&["datasource", "uid"]),
                Some(&Json::Str("${datasource}".into())),
                "{f}: {name} datasource"
            );
            let q = v.at(&["query", "query"]).or(v.get("query"));
            let q = match q {
                Some(Json::Str(s)) => s.as_str(),
                _ => panic!("{f}: {name} has no query"),
            };
            assert!(q.contains(needle), "{f}: {name} query {q}");
            assert_eq!(v.str("definition"), Some(q), "{f}: {name} definition");
        }

        let mut raw = Vec::new();
        collect_panels(j.arr("panels"), &mut raw);
        assert!(raw.len() >= 5, "{f}: only {} panels", raw.len());
        let mut ids = BTreeSet::new();
        let mut used_vars = BTreeSet::new();
        for (p, panel) in raw.iter().zip(&d.panels) {
            let t = &panel.title;
            assert!(!t.is_empty(), "{f}: a panel without title");
            let id = p.num("id").unwrap_or_else(|| panic!("{f}/{t}: no id"));
            assert!(ids.insert(id as i64), "{f}/{t}: id {id} used twice");
            let desc = p.str("description").unwrap_or_default();
            assert!(desc.len() >= 20, "{f}/{t}: description {desc:?}");
            let unit = p
                .at(&["fieldConfig", "defaults"])
                .and_then(|d| d.str("unit"))
                .unwrap_or_default();
            assert!(!unit.is_empty(), "{f}/{t}: no unit");
            assert_eq!(
                p.at(&["datasource", "uid"]),
                Some(&Json::Str("${datasource}".into())),
                "{f}/{t}: datasource"
            );
            let g = p.get("gridPos").unwrap_or_else(|| panic!("{f}/{t}: gridPos"));
            let (x, w, h) = (g.num("x").unwrap(), g.num("w").unwrap(), g.num("h").unwrap());
            assert!(w > 0.0 && h > 0.0 && x + w <= 24.0, "{f}/{t}: gridPos");
            assert!(!panel.targets.is_empty(), "{f}/{t}: no targets");
            let mut refs = BTreeSet::new();
            for (tj, tg) in p.arr("targets").iter().zip(&panel.targets) {
                assert!(refs.insert(&tg.ref_id), "{f}/{t}: refId {} twice", tg.ref_id);
                assert!(!tg.expr.trim().is_empty(), "{f}/{t}/{}: no expr", tg.ref_id);
                assert_eq!(
                    tj.at(&["datasource", "uid"]),
                    Some(&Json::Str("${datasource}".into())),
                    "{f}/{t}/{}: datasource",
                    tg.ref_id
                );
                let v = variables_in(&tg.expr);
                assert!(
                    v.contains("instance"),
                    "{f}/{t}: not filtered by $instance: {}",
                    tg.expr
                );
                for name in &v {
                    assert!(
                        vars.contains_key(name.as_str()) || name.starts_with("__"),
                        "{f}/{t}: ${name} is not a variable of the dashboard"
                    );
                }
                used_vars.extend(v);
                // Several instances can be selected: a legend names its instance.
                assert!(
                    tg.legend == "__auto" || tg.legend.contains("{{instance}}"),
                    "{f}/{t}/{}: legend {:?} without {{{{instance}}}}",
                    tg.ref_id,
                    tg.legend
                );
                if tj.bool("instant") == Some(true)
                    && metric_names(&tg.expr).iter().any(|m| per_object.contains(m))
                {
                    assert!(
                        tg.expr.starts_with("sort_desc(topk(") || tg.expr.starts_with("sort_desc(sum"),
                        "{f}/{t}/{}: a table/index listing must be the sorted top N: {}",
                        tg.ref_id,
                        tg.expr
                    );
                }
                if tg.expr.contains("ALERTS") {
                    // Our alerts only, by their exact names.
                    let filter = format!("alertname=~\"{}\"", ours.join("|"));
                    assert_eq!(
                        tg.expr.matches("ALERTS{").count(),
                        tg.expr.matches(&filter).count(),
                        "{f}/{t}/{}: ALERTS not filtered to the alerts of alerts/*.rules.yml; \
                         every ALERTS selector needs, with the names sorted: {filter}\nquery: {}",
                        tg.ref_id,
                        tg.expr
                    );
                }
                let metrics = metric_names(&tg.expr);
                assert!(
                    !metrics.is_empty() || tg.expr.contains("ALERTS"),
                    "{f}/{t}: no metric"
                );
                for m in metrics {
                    if m.contains(':') {
                        assert!(
                            recorded.contains(&m),
                            "{f}/{t}: {m} is no recording rule of alerts/pgmaint.rules.yml"
                        );
                    } else {
                        assert!(
                            docs.contains(&format!("`{m}`")),
                            "{f}/{t}: {m} is not in docs/metrics.md"
                        );
                    }
                }
            }
            for (_, url) in panel_links(p) {
                used_vars.extend(link_refs(&url).into_iter().map(|(name, _)| name));
            }
            panels_total += 1;
        }
        // A variable is used by a panel, or by a child variable's query.
        for v in vars.values() {
            if let Some(Json::Str(q)) = v.at(&["query", "query"]).or(v.get("query")) {
                used_vars.extend(variables_in(q));
            }
        }
        for name in vars.keys().filter(|n| **n != "datasource") {
            assert!(
                used_vars.contains(*name),
                "{f}: variable {name} is used by no panel, link or variable"
            );
        }
    }
    assert!(panels_total >= 40, "{panels_total} panels");

    // Links: to a shipped dashboard (with variables it has) or to the
    // exporter's /report; every `${…}` is a variable of the dashboard or a
    // data-link field of the panel's own series.
    let by_uid: BTreeMap<&str, &Dashboard> = dashboards
        .iter()
        .map(|d| (d.json.str("uid").unwrap_or_default(), d))
        .collect();
    let mut links_total = 0;
    for d in &dashboards {
        let f = &d.file;
        let vars = variable_names(&d.json);
        let mut raw = Vec::new();
        collect_panels(d.json.arr("panels"), &mut raw);
        for p in raw {
            let t = p.str("title").unwrap_or_default();
            for (column, url) in panel_links(p) {
                links_total += 1;
                for (name, format) in link_refs(&url) {
                    let ok = vars.contains(&name)
                        || name == "__url_time_range"
                        || name == "__value.raw" && column.is_some()
                        || name.starts_with("__field.labels.")
                        || name.starts_with("__data.fields.");
                    assert!(ok, "{f}/{t}: ${{{name}}} in {url}");
                    assert!(
                        matches!(format.as_deref(), None | Some("percentencode")),
                        "{f}/{t}: format {format:?} in {url}"
                    );
                }
                if let Some(rest) = url.strip_prefix("/d/") {
                    let uid = rest.split(['?', '/']).next().unwrap_or_default();
                    let target = by_uid
                        .get(uid)
                        .unwrap_or_else(|| panic!("{f}/{t}: link to unknown dashboard {uid}"));
                    let target_vars = variable_names(&target.json);
                    for (k, _) in url_params(&url) {
                        if let Some(var) = k.strip_prefix("var-") {
                            assert!(target_vars.contains(var), "{f}/{t}: {uid} has no variable {var}");
                        }
                    }
                } else {
                    assert!(
                        url.starts_with("${exporter_scheme}://${__") && url.contains("/report?datname="),
                        "{f}/{t}: link {url} is neither a dashboard nor the exporter's /report"
                    );
                }
            }
        }
        // Annotations for restarts and failovers, per selected instance.
        let annotations = d
            .json
            .at(&["annotations"])
            .map(|a| a.arr("list"))
            .unwrap_or_default();
        let mut names = BTreeSet::new();
        for a in annotations.iter().filter(|a| a.num("builtIn").is_none()) {
            let name = a.str("name").unwrap_or_default();
            names.insert(name);
            let expr = a.str("expr").unwrap_or_default();
            assert!(
                expr.contains("instance=~\"$instance\""),
                "{f}: annotation {name}: {expr}"
            );
            assert_eq!(
                a.at(&["datasource", "uid"]),
                Some(&Json::Str("${datasource}".into())),
                "{f}: annotation {name}"
            );
            for m in metric_names(expr) {
                assert!(docs.contains(&format!("`{m}`")), "{f}: annotation {name}: {m}");
            }
        }
        assert!(
            names.contains("Restarts") && names.contains("Failovers"),
            "{f}: annotations {names:?}"
        );
    }
    assert!(links_total >= 15, "only {links_total} links");

    // The header of alerts/pgmaint.rules.yml says the dashboards use its
    // recording rules: each one is read by some panel.
    let all_exprs: String = dashboards
        .iter()
        .flat_map(|d| d.panels.iter())
        .flat_map(|p| p.targets.iter())
        .map(|t| format!("{}\n", t.expr))
        .collect();
    for r in &recorded {
        assert!(
            metric_names(&all_exprs).contains(r),
            "recording rule {r} is used by no dashboard"
        );
    }
}

/// The alert names of `alerts/*.rules.yml`.
fn our_alerts() -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for f in repo_rule_files() {
        for l in std::fs::read_to_string(f).unwrap().lines() {
            let l = l.trim_start().trim_start_matches("- ");
            if let Some(name) = l.strip_prefix("alert:") {
                out.insert(name.trim().to_string());
            }
        }
    }
    out
}

/// Families whose series are one per table or index (a `relname` label in
/// docs/metrics.md), not bounded by design like running vacuums.
fn per_object_families(docs: &str) -> BTreeSet<String> {
    docs.lines()
        .filter_map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            let name = cells.get(1)?.strip_prefix('`')?.strip_suffix('`')?;
            let labels = cells.get(3)?;
            let per_object = labels.split(',').any(|x| x.trim() == "relname");
            (per_object && !name.starts_with("pg_vacuum_progress_")).then(|| name.to_string())
        })
        .collect()
}

fn variable_names(dashboard: &Json) -> BTreeSet<String> {
    dashboard
        .at(&["templating"])
        .map(|t| t.arr("list"))
        .unwrap_or_default()
        .iter()
        .filter_map(|v| v.str("name"))
        .map(String::from)
        .collect()
}

/// The restart and failover annotations mark exactly the scrapes around a
/// change: their expressions, run by promtool as recording rules over a
/// postmaster start time that changes at 10m and a pg_is_in_recovery() that
/// flips at 20m, give a sample right after each change and none elsewhere.
#[test]
fn annotations_mark_restarts_and_failovers() {
    let mut exprs: BTreeMap<String, String> = BTreeMap::new();
    for d in load_dashboards() {
        let list = d
            .json
            .at(&["annotations"])
            .map(|a| a.arr("list"))
            .unwrap_or_default();
        for a in list.iter().filter(|a| a.num("builtIn").is_none()) {
            let name = a.str("name").unwrap_or_default().to_string();
            let expr = a.str("expr").unwrap_or_default().replace("$instance", ".*");
            let known = exprs.entry(name.clone()).or_insert_with(|| expr.clone());
            assert_eq!(
                *known, expr,
                "{}: annotation {name} differs between dashboards",
                d.file
            );
        }
    }
    let record = |name: &str| format!("annotation:{}", name.to_lowercase());
    let mut rules = String::from("groups:\n  - name: annotations\n    rules:\n");
    for (name, expr) in &exprs {
        rules += &format!("      - record: {}\n        expr: '{expr}'\n", record(name));
    }
    let test = format!(
        "rule_files:\n  - annotations.rules.yml\nevaluation_interval: 1m\ntests:\n\
         \x20 - interval: 1m\n    input_series:\n\
         \x20     - series: 'pg_postmaster_start_time_seconds{{instance=\"db1:9188\"}}'\n\
         \x20       values: '1000x10 2000x20'\n\
         \x20     - series: 'pg_replication_in_recovery{{instance=\"db2:9188\"}}'\n\
         \x20       values: '1x20 0x10'\n\
         \x20   promql_expr_test:\n\
         \x20     - expr: {restarts}\n        eval_time: 5m\n        exp_samples: []\n\
         \x20     - expr: {restarts}\n        eval_time: 11m\n        exp_samples:\n\
         \x20         - labels: '{restarts}{{instance=\"db1:9188\"}}'\n            value: 1\n\
         \x20     - expr: {restarts}\n        eval_time: 25m\n        exp_samples: []\n\
         \x20     - expr: {failovers}\n        eval_time: 11m\n        exp_samples: []\n\
         \x20     - expr: {failovers}\n        eval_time: 21m\n        exp_samples:\n\
         \x20         - labels: '{failovers}{{instance=\"db2:9188\"}}'\n            value: 1\n",
        restarts = record("Restarts"),
        failovers = record("Failovers"),
    );
    let dir = std::env::temp_dir().join(format!("pgmaint-annotations-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("annotations.rules.yml"), rules).unwrap();
    std::fs::write(dir.join("annotations.test.yml"), test).unwrap();
    let out = Command::new("promtool")
        .args(["test", "rules", "annotations.test.yml"])
        .current_dir(&dir)
        .output()
        .expect("promtool");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        out.status.success(),
        "promtool test rules:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

// ---------------------------------------------------------------- live

/// Targets allowed to return nothing in the scenario (their panel must still
/// show something through another target), by a metric their query uses.
const MAY_BE_EMPTY: &[(&str, &str)] = &[
    (
        "pg_replication_standby_replay_lag_bytes",
        "the scenario's WAL client is pg_receivewal, which never replays",
    ),
    (
        "pg_replication_replay_lag_seconds",
        "standby-only; the scenario server is a primary",
    ),
];

/// What Grafana puts for each variable of one dashboard: the value a query
/// sees with "All" selected (allValue, else the resolved values joined as a
/// regex) and the values themselves.
#[derive(Debug, Default)]
struct Resolved {
    all: BTreeMap<String, String>,
    values: BTreeMap<String, Vec<String>>,
}

/// A value as Grafana's Prometheus data source escapes it in a multi-value
/// regex: regex metacharacters behind a backslash, doubled in the string.
fn regex_escape(v: &str) -> String {
    let mut out = String::new();
    for c in v.chars() {
        if "\\.^$*+?()[]{}|".contains(c) {
            out.push_str("\\\\");
        }
        out.push(c);
    }
    out
}

/// Grafana's substitutions for a Prometheus query run outside Grafana.
fn substitute(expr: &str, vars: &Resolved) -> String {
    let mut e = expr.to_string();
    // Longest names first, so `$instance` is not cut by a shorter name.
    let mut names: Vec<&String> = vars.all.keys().collect();
    names.sort_by_key(|n| std::cmp::Reverse(n.len()));
    for name in names {
        let to = &vars.all[name];
        e = e
            .replace(&format!("${{{name}}}"), to)
            .replace(&format!("${name}"), to);
    }
    for (from, to) in [
        ("$__rate_interval", "10s"),
        ("$__interval", "2s"),
        ("$__range", "1m"),
    ] {
        e = e.replace(from, to);
    }
    assert!(!e.contains('$'), "unsubstituted variable in {e}");
    e
}

/// Resolves a dashboard's variables in order, as Grafana does on load: each
/// `label_values(selector, label)` runs with its parents' "All" values
/// substituted (Grafana calls /api/v1/label/<label>/values?match[]=…) and
/// must return values.
async fn resolve_variables(prom: &Prometheus, d: &Dashboard) -> Resolved {
    let mut r = Resolved::default();
    let list = d
        .json
        .at(&["templating"])
        .map(|t| t.arr("list"))
        .unwrap_or_default();
    for v in list {
        let name = v.str("name").unwrap_or_default().to_string();
        match v.str("type") {
            Some("custom") => {
                let first = v
                    .str("query")
                    .unwrap_or_default()
                    .split(',')
                    .next()
                    .unwrap_or_default();
                r.all.insert(name.clone(), first.trim().to_string());
                r.values.insert(name, vec![first.trim().to_string()]);
            }
            Some("query") => {
                let q = v.str("definition").unwrap_or_default();
                let inner = q
                    .strip_prefix("label_values(")
                    .and_then(|q| q.strip_suffix(')'))
                    .unwrap_or_else(|| panic!("{}: ${name}: not label_values(): {q}", d.file));
                let (selector, label) = inner.rsplit_once(',').unwrap();
                let selector = substitute(selector.trim(), &r);
                let values = prom.label_values(label.trim(), &selector).await;
                assert!(
                    !values.is_empty(),
                    "{}: variable {name} resolves to nothing: label_values({selector}, {label})",
                    d.file
                );
                let all = match v.str("allValue") {
                    Some(a) => a.to_string(),
                    None => format!(
                        "({})",
                        values
                            .iter()
                            .map(|x| regex_escape(x))
                            .collect::<Vec<_>>()
                            .join("|")
                    ),
                };
                r.all.insert(name.clone(), all);
                r.values.insert(name, values);
            }
            _ => {}
        }
    }
    r
}

/// A data link's URL for one series of its panel: Grafana's `${…}` filled
/// from the series' labels (`__field.labels.x`, and for table cells
/// `__data.fields.x` and `__value.raw` of the link's column). None when the
/// series lacks a label the link needs (the test then fails).
fn resolve_link(url: &str, column: Option<&str>, series: &Json, vars: &Resolved) -> Result<String, String> {
    let mut out = url.to_string();
    for (name, format) in link_refs(url) {
        let label = if let Some(l) = name.strip_prefix("__field.labels.") {
            Some(l)
        } else if let Some(l) = name.strip_prefix("__data.fields.") {
            Some(l)
        } else if name == "__value.raw" {
            column
        } else {
            None
        };
        let value = match (label, name.as_str()) {
            (Some(l), _) => match series.at(&["metric", l]) {
                Some(Json::Str(v)) => v.clone(),
                _ => return Err(format!("${{{name}}}: the series has no label {l}")),
            },
            (None, "__url_time_range") => "from=now-1h&to=now".to_string(),
            (None, "datasource") => "prometheus".to_string(),
            (None, var) => vars
                .all
                .get(var)
                .cloned()
                .ok_or_else(|| format!("${{{var}}} is no variable"))?,
        };
        let value = match format.as_deref() {
            Some("percentencode") => percent_encode(&value),
            _ => value,
        };
        let reference = match &format {
            Some(f) => format!("${{{name}:{f}}}"),
            None => format!("${{{name}}}"),
        };
        out = out.replace(&reference, &value);
    }
    Ok(out)
}

/// Grafana's `percentencode`: everything but RFC 3986's unreserved characters.
fn percent_encode(v: &str) -> String {
    const RESERVED: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    percent_encoding::utf8_percent_encode(v, RESERVED).to_string()
}

fn percent_decode(v: &str) -> String {
    percent_encoding::percent_decode_str(v)
        .decode_utf8_lossy()
        .into_owned()
}

/// A child process killed (and its directory removed) on drop.
struct Guard {
    child: Child,
    dir: Option<PathBuf>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(d) = &self.dir {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

/// Aborts spawned tasks (and so closes their sessions) on drop.
struct Tasks(Vec<tokio::task::AbortHandle>);

impl Drop for Tasks {
    fn drop(&mut self) {
        for t in &self.0 {
            t.abort();
        }
    }
}

/// The harness's Prometheus scraping the exporter every second, with the
/// rule files under test, and the API calls the dashboards need.
struct Prometheus {
    server: harness::Prometheus,
}

impl Prometheus {
    async fn start(dir: &Path, exporter: &str, rule_files: &[PathBuf]) -> Prometheus {
        let rules: String = rule_files
            .iter()
            .map(|p| format!("  - '{}'\n", p.display()))
            .collect();
        // Prometheus sends its scrape timeout to the exporter, which then
        // keeps its deadline under it.
        let config = format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
             rule_files:\n{rules}\
             scrape_configs:\n  - job_name: pgmaint\n    static_configs:\n      - targets: ['{exporter}']\n        labels:\n          cluster: dashboards-test\n"
        );
        Prometheus {
            server: harness::Prometheus::start(dir, &config).await,
        }
    }

    async fn api(&self, path: &str, query: &[(&str, &str)]) -> (u16, Json) {
        let (status, body) = self.server.get(path, query).await;
        let json = Json::parse(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body}"));
        (status, json)
    }

    /// Instant query: Ok(result series) or Err(the error Prometheus gave).
    async fn query(&self, expr: &str) -> Result<Vec<Json>, String> {
        let (status, j) = self.api("/api/v1/query", &[("query", expr)]).await;
        if status != 200 || j.str("status") != Some("success") {
            return Err(format!(
                "HTTP {status}: {} {}",
                j.str("errorType").unwrap_or_default(),
                j.str("error").unwrap_or_default()
            ));
        }
        let data = j.get("data").unwrap();
        Ok(match data.str("resultType") {
            Some("scalar") | Some("string") => vec![data.get("result").unwrap().clone()],
            _ => data.arr("result").to_vec(),
        })
    }

    /// Label values of the series a selector matches (Grafana's
    /// label_values()).
    async fn label_values(&self, label: &str, selector: &str) -> Vec<String> {
        let path = format!("/api/v1/label/{label}/values");
        let (status, j) = self.api(&path, &[("match[]", selector)]).await;
        assert_eq!(status, 200, "{path}?match[]={selector}: {j:?}");
        j.arr("data")
            .iter()
            .filter_map(|v| match v {
                Json::Str(s) => Some(s.clone()),
                _ => None,
            })
            .collect()
    }

    /// Every rule Prometheus loaded, with the file it came from.
    async fn rules(&self) -> Vec<(String, Json)> {
        let (status, j) = self.api("/api/v1/rules", &[]).await;
        assert_eq!(status, 200, "/api/v1/rules");
        let mut out = Vec::new();
        for g in j.at(&["data"]).map(|d| d.arr("groups")).unwrap_or_default() {
            for r in g.arr("rules") {
                out.push((g.str("file").unwrap_or_default().to_string(), r.clone()));
            }
        }
        out
    }
}

/// `alerts/*.rules.yml` of the repository; at least one once `alerts/` exists.
fn repo_rule_files() -> Vec<PathBuf> {
    let dir = repo().join("alerts");
    if !dir.exists() {
        return Vec::new();
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".rules.yml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "alerts/ exists but holds no *.rules.yml");
    files
}

/// Rules a file declares (`groups[].rules[]`, read with serde_norway).
fn declared_rules(path: &Path) -> usize {
    let text = std::fs::read_to_string(path).unwrap();
    let file: serde_norway::Value = serde_norway::from_str(&text).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    let groups = file["groups"]
        .as_sequence()
        .map(Vec::as_slice)
        .unwrap_or_default();
    groups
        .iter()
        .map(|g| g["rules"].as_sequence().map_or(0, Vec::len))
        .sum()
}

/// Tables, indexes and sessions every dashboard has something to show for.
const SCENARIO: &str = "
    CREATE EXTENSION pg_stat_statements;
    -- Past its vacuum trigger, autovacuum off: dead tuples stay; bloat after ANALYZE.
    CREATE TABLE dead (id int PRIMARY KEY, v int, pad text) WITH (autovacuum_enabled = off);
    INSERT INTO dead SELECT g, g % 100, repeat('x', 50) FROM generate_series(1, 20000) g;
    CREATE INDEX dead_v ON dead (v);          -- never scanned: unused
    CREATE INDEX dead_v_again ON dead (v);    -- identical: duplicate
    DELETE FROM dead WHERE id % 10 < 6;
    ANALYZE dead;
    -- Autovacuum on: autovacuumed within seconds (autovacuum_naptime = 1).
    CREATE TABLE churn (id int, v int);
    INSERT INTO churn SELECT g, g FROM generate_series(1, 2000) g;
    DELETE FROM churn WHERE id % 2 = 0;
    -- For a slow manual VACUUM that runs during the whole test.
    CREATE TABLE slow (id int, pad text) WITH (autovacuum_enabled = off);
    INSERT INTO slow SELECT g, repeat('y', 100) FROM generate_series(1, 30000) g;
    DELETE FROM slow WHERE id % 2 = 0;
    -- A row an idle transaction locks and another session waits for.
    CREATE TABLE locked (id int PRIMARY KEY, v int);
    INSERT INTO locked VALUES (1, 0);
    -- Duplicate keys: CREATE UNIQUE INDEX CONCURRENTLY fails, leaving an invalid index.
    CREATE TABLE dup (x int);
    INSERT INTO dup VALUES (1), (1);
    SET enable_seqscan = off;
    SELECT * FROM dead WHERE id = 7;
";

#[tokio::test]
async fn every_panel_query_returns_data() {
    let started = Instant::now();
    // A cluster of its own: autovacuum every second, and WAL archiving whose
    // first attempt fails (it creates the archive directory) and whose retry
    // succeeds, so the archiver panels have a success and a failure to show.
    let pg = harness::start_cluster(
        None,
        &[
            "autovacuum_naptime = 1",
            "archive_mode = on",
            "archive_command = 'test -d ../archive && cp %p ../archive/%f || { mkdir -p ../archive; exit 1; }'",
        ],
    );
    let db = pg.fresh_db().await;
    db.batch(SCENARIO).await;
    let failed = db
        .client
        .batch_execute("CREATE UNIQUE INDEX CONCURRENTLY dup_x ON dup (x)")
        .await;
    assert!(failed.is_err(), "duplicate keys must fail the unique index");
    db.batch("SELECT pg_switch_wal()").await;
    let slot = db.name.clone();
    db.client
        .execute("SELECT pg_create_physical_replication_slot($1, true)", &[&slot])
        .await
        .unwrap();

    let (name, url, port) = (db.name.clone(), db.url.clone(), pg.port);
    let body = async move { scenario(name, url, port, started).await };
    let cleanup = async {
        // The body's guards have stopped pg_receivewal: the slot is free.
        harness::eventually(Duration::from_secs(20), || async {
            db.client
                .execute(
                    "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1",
                    &[&slot],
                )
                .await
                .ok()
        })
        .await;
    };
    harness::with_cleanup(body, cleanup).await;
    assert!(
        started.elapsed() < Duration::from_secs(90),
        "took {:?}",
        started.elapsed()
    );
}

async fn scenario(name: String, url: String, port: u16, started: Instant) {
    let tmp = std::env::temp_dir().join(format!("pgmaint-dashboards-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);

    // A WAL client on the slot: a standby for the replication panels.
    std::fs::create_dir_all(tmp.join("wal")).unwrap();
    let _receivewal = Guard {
        child: Command::new("/usr/lib/postgresql/15/bin/pg_receivewal")
            .arg("-D")
            .arg(tmp.join("wal"))
            .args(["-n", "--synchronous", "--slot", &name, "-d"])
            .arg(format!("host=127.0.0.1 port={port} user=postgres"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("pg_receivewal"),
        dir: None,
    };

    // Sessions: an idle transaction holding a row lock, a session waiting for
    // it, a long pg_sleep, a throttled VACUUM, and a stream of commits.
    let idle = harness::connect(&url).await;
    idle.batch_execute("BEGIN; UPDATE locked SET v = 1 WHERE id = 1;")
        .await
        .unwrap();
    let waiter = harness::connect(&url).await;
    let sleeper = harness::connect(&url).await;
    let vacuumer = harness::connect(&url).await;
    vacuumer
        .batch_execute("SET vacuum_cost_delay = 100; SET vacuum_cost_limit = 1")
        .await
        .unwrap();
    let writer = harness::connect(&url).await;
    let _tasks = Tasks(vec![
        tokio::spawn(async move { waiter.batch_execute("UPDATE locked SET v = 2 WHERE id = 1").await })
            .abort_handle(),
        tokio::spawn(async move { sleeper.batch_execute("SELECT pg_sleep(120)").await }).abort_handle(),
        tokio::spawn(async move { vacuumer.batch_execute("VACUUM slow").await }).abort_handle(),
        tokio::spawn(async move {
            for i in 0..600 {
                writer
                    .execute("INSERT INTO churn VALUES ($1, $1)", &[&i])
                    .await
                    .unwrap();
                tokio::time::sleep(Duration::from_millis(150)).await;
            }
        })
        .abort_handle(),
    ]);

    // Backups for the "Backups & recovery" row: two pg_dump archives, and a
    // base backup whose history file lands in the WAL archive (../archive
    // next to the data directory, see archive_command).
    let backups = tmp.join("backups");
    std::fs::create_dir_all(&backups).unwrap();
    for f in ["backup_a.dump", "backup_b.dump"] {
        let out = tokio::process::Command::new("/usr/lib/postgresql/15/bin/pg_dump")
            .args(["-F", "c", "-f"])
            .arg(backups.join(f))
            .arg(&url)
            .output()
            .await
            .expect("pg_dump");
        assert!(
            out.status.success(),
            "pg_dump: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let out = tokio::process::Command::new("/usr/lib/postgresql/15/bin/pg_basebackup")
        .args(["-X", "none", "-c", "fast", "-D"])
        .arg(tmp.join("base"))
        .args(["-d", &format!("host=127.0.0.1 port={port} user=postgres")])
        .output()
        .await
        .expect("pg_basebackup");
    assert!(
        out.status.success(),
        "pg_basebackup: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let data_dir: String = harness::connect(&url)
        .await
        .query_one("SELECT current_setting('data_directory')", &[])
        .await
        .unwrap()
        .get(0);
    let wal_archive = Path::new(&data_dir).parent().unwrap().join("archive");

    // Every collector (pg_stat_statements is installed in the database).
    let all: Vec<&str> = pgmaint_exporter::collectors::ALL
        .iter()
        .map(|c| c.name())
        .collect();
    let exporter = harness::Exporter::spawn(&[
        ("PGMAINT_DATABASE_URL", &url),
        ("PGMAINT_INCLUDE_DATABASES", &name),
        ("PGMAINT_LOG_LEVEL", "debug"),
        ("PGMAINT_COLLECTORS", &all.join(",")),
        ("PGMAINT_MIN_SCRAPE_INTERVAL", "0s"),
        ("PGMAINT_LONG_QUERY_SECONDS", "1"),
        ("PGMAINT_BACKUP_DIRS", &backups.display().to_string()),
        ("PGMAINT_BACKUP_MIN_AGE", "0s"),
        ("PGMAINT_WAL_ARCHIVE_DIR", &wal_archive.display().to_string()),
        ("PGMAINT_STATEMENTS_QUERY_TEXT", "on"),
    ])
    .await;

    // The repository's rules with every `for:` cut to 0s, so that the
    // alerts the scenario triggers fire within the test; plus rules of
    // "another team" whose alerts the dashboards must leave out (one without
    // an instance label, one with ours).
    std::fs::create_dir_all(&tmp).unwrap();
    let mut rule_files = Vec::new();
    for f in repo_rule_files() {
        let text = std::fs::read_to_string(&f).unwrap();
        let fast: String = text
            .lines()
            .map(|l| match l.trim_start().strip_prefix("for:") {
                Some(_) => format!("{}for: 0s\n", &l[..l.len() - l.trim_start().len()]),
                None => format!("{l}\n"),
            })
            .collect();
        let copy = tmp.join(f.file_name().unwrap());
        std::fs::write(&copy, fast).unwrap();
        rule_files.push(copy);
    }
    let foreign = tmp.join("foreign.rules.yml");
    std::fs::write(
        &foreign,
        "groups:\n  - name: another-team\n    rules:\n      - alert: SomeoneElsesAlert\n        expr: vector(1)\n\
         \x20     - alert: SomeoneElsesInstanceAlert\n        expr: up == 1\n",
    )
    .unwrap();
    rule_files.push(foreign.clone());
    let prom = Prometheus::start(&tmp.join("prometheus"), &exporter.addr, &rule_files).await;

    // At least 10 s of successful scrapes, so 10 s rate windows have samples.
    harness::eventually(Duration::from_secs(30), || async {
        let r = prom
            .query("count_over_time(up[1m]) >= 11 and min_over_time(up[10s]) == 1")
            .await
            .unwrap();
        (!r.is_empty()).then_some(())
    })
    .await;

    // Variables: every chain job → cluster → instance → datname resolves,
    // down to this exporter and this database.
    let dashboards = load_dashboards();
    let mut resolved = BTreeMap::new();
    for d in &dashboards {
        let r = resolve_variables(&prom, d).await;
        assert_eq!(r.values["job"], ["pgmaint"], "{}", d.file);
        assert_eq!(r.values["cluster"], ["dashboards-test"], "{}", d.file);
        assert_eq!(
            r.values["instance"],
            std::slice::from_ref(&exporter.addr),
            "{}",
            d.file
        );
        if let Some(dbs) = r.values.get("datname") {
            assert!(dbs.contains(&name), "{}: datname {dbs:?}", d.file);
        }
        resolved.insert(d.file.clone(), r);
    }

    // Every target of every panel parses at once, and returns data in at
    // least one round (rounds repeat while the scenario settles, e.g. the
    // first autovacuum, or a collector missed a scrape's deadline).
    let deadline = Instant::now() + Duration::from_secs(25);
    let mut seen: BTreeSet<String> = BTreeSet::new();
    let mut checked;
    loop {
        let mut empty = Vec::new();
        checked = 0;
        for d in &dashboards {
            for p in &d.panels {
                let panel_key = format!("{}/{}", d.file, p.title);
                for t in &p.targets {
                    let expr = substitute(&t.expr, &resolved[&d.file]);
                    let key = format!("{panel_key}/{}: {expr}", t.ref_id);
                    let series = prom.query(&expr).await.unwrap_or_else(|e| panic!("{key}: {e}"));
                    checked += 1;
                    if !series.is_empty() {
                        seen.insert(key.clone());
                        seen.insert(panel_key.clone());
                        // Every {{label}} of the legend exists on some series.
                        for label in legend_labels(&t.legend) {
                            assert!(
                                series.iter().any(|s| s.at(&["metric", &label]).is_some()),
                                "{key}: legend label {label} is on no series"
                            );
                        }
                    }
                    let may_be_empty = MAY_BE_EMPTY.iter().any(|(m, _)| t.expr.contains(m));
                    if !may_be_empty && !seen.contains(&key) {
                        empty.push(key);
                    }
                }
                if !seen.contains(&panel_key) {
                    empty.push(format!("{panel_key}: the whole panel"));
                }
            }
        }
        if empty.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "queries without data after {:?}:\n{}\nexporter log tail:\n{}",
            started.elapsed(),
            empty.join("\n"),
            tail(&exporter.logs(), 30)
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    assert!(checked >= 80, "only {checked} targets");

    // Tables that merge several queries into one row per object (the fleet
    // grid, databases, vacuum ETA, statements): Grafana joins rows on the
    // labels all queries share, so every query's rows must find a row of the
    // first query, or the table shows half-empty orphan rows.
    let mut merged = 0;
    for d in &dashboards {
        let mut raw = Vec::new();
        collect_panels(d.json.arr("panels"), &mut raw);
        for (p, panel) in raw.iter().zip(&d.panels) {
            if !p
                .arr("transformations")
                .iter()
                .any(|t| t.str("id") == Some("merge"))
            {
                continue;
            }
            merged += 1;
            let mut results = Vec::new();
            for t in &panel.targets {
                let series = prom
                    .query(&substitute(&t.expr, &resolved[&d.file]))
                    .await
                    .unwrap();
                // A metric name would be one more join column, different per query.
                assert!(
                    series.iter().all(|s| s.at(&["metric", "__name__"]).is_none()),
                    "{}/{}/{}: merged rows keep __name__: {}",
                    d.file,
                    panel.title,
                    t.ref_id,
                    t.expr
                );
                results.push((t.ref_id.clone(), series));
            }
            let labels = |s: &Json| -> BTreeMap<String, String> {
                match s.get("metric") {
                    Some(Json::Obj(m)) => m
                        .iter()
                        .filter_map(|(k, v)| match v {
                            Json::Str(v) => Some((k.clone(), v.clone())),
                            _ => None,
                        })
                        .collect(),
                    _ => BTreeMap::new(),
                }
            };
            let mut common: Option<BTreeSet<String>> = None;
            for (_, series) in results.iter().filter(|(_, s)| !s.is_empty()) {
                let names: BTreeSet<String> = series.iter().flat_map(|s| labels(s).into_keys()).collect();
                common = Some(match common {
                    None => names,
                    Some(c) => c.intersection(&names).cloned().collect(),
                });
            }
            let common = common.unwrap_or_default();
            assert!(
                common.contains("instance"),
                "{}/{}: joined on {common:?}",
                d.file,
                panel.title
            );
            let project = |s: &Json| -> Vec<(String, String)> {
                labels(s)
                    .into_iter()
                    .filter(|(k, _)| common.contains(k))
                    .collect()
            };
            let first: BTreeSet<Vec<(String, String)>> = results[0].1.iter().map(project).collect();
            for (ref_id, series) in &results[1..] {
                for s in series {
                    assert!(
                        first.contains(&project(s)),
                        "{}/{}/{ref_id}: row {:?} joins no row of {}",
                        d.file,
                        panel.title,
                        project(s),
                        results[0].0
                    );
                }
            }
        }
    }
    assert!(merged >= 5, "only {merged} merged tables");

    // Firing alerts: ours are listed, the other team's are not.
    let overview = dashboards.iter().find(|d| d.file == "overview.json").unwrap();
    let panel = overview
        .panels
        .iter()
        .find(|p| p.title == "Firing alerts")
        .unwrap();
    let listed = harness::eventually(Duration::from_secs(15), || async {
        let firing = prom
            .query(&substitute(&panel.targets[0].expr, &resolved["overview.json"]))
            .await
            .unwrap();
        (!firing.is_empty()).then_some(firing)
    })
    .await;
    let others = prom
        .query("ALERTS{alertstate=\"firing\", alertname=~\"SomeoneElses.*\"}")
        .await
        .unwrap();
    assert_eq!(others.len(), 2, "the other team's alerts fire: {others:?}");
    let ours = our_alerts();
    for a in &listed {
        let alert = match a.at(&["metric", "alertname"]) {
            Some(Json::Str(n)) => n.clone(),
            _ => String::new(),
        };
        assert!(ours.contains(&alert), "Firing alerts lists {alert}");
    }

    // Links: every data link, filled from the series its panel shows, leads
    // to a shipped dashboard with values its variables offer, or to a
    // /report page the exporter serves.
    let mut followed = 0;
    let mut report_for_dead = false;
    for d in &dashboards {
        let vars = &resolved[&d.file];
        let mut raw = Vec::new();
        collect_panels(d.json.arr("panels"), &mut raw);
        for (p, panel) in raw.iter().zip(&d.panels) {
            let links = panel_links(p);
            if links.is_empty() {
                continue;
            }
            let mut series = Vec::new();
            for t in &panel.targets {
                series.extend(prom.query(&substitute(&t.expr, vars)).await.unwrap());
            }
            for (column, url) in &links {
                let key = format!("{}/{}: {url}", d.file, panel.title);
                // The series of the link's column (a table column is a label).
                let carrying: Vec<&Json> = series
                    .iter()
                    .filter(|s| column.as_ref().map_or(true, |c| s.at(&["metric", c]).is_some()))
                    .collect();
                assert!(!carrying.is_empty(), "{key}: no series to link from");
                for s in carrying.iter().take(5) {
                    let target = resolve_link(url, column.as_deref(), s, vars)
                        .unwrap_or_else(|e| panic!("{key}: {e}"));
                    followed += 1;
                    if let Some(rest) = target.strip_prefix("/d/") {
                        let uid = rest.split(['?', '/']).next().unwrap_or_default();
                        let to = dashboards
                            .iter()
                            .find(|x| x.json.str("uid") == Some(uid))
                            .unwrap_or_else(|| panic!("{key}: no dashboard {uid}"));
                        for (k, v) in url_params(&target) {
                            if let Some(var) = k.strip_prefix("var-").filter(|v| *v != "datasource") {
                                let offered = &resolved[&to.file].values[var];
                                let v = percent_decode(&v);
                                assert!(offered.contains(&v), "{key}: {var}={v} not in {offered:?}");
                            }
                        }
                    } else {
                        let (status, body) = get(&prom.server.http, &target).await;
                        assert_eq!(status, 200, "{key}: GET {target}: {body}");
                        assert!(
                            body.contains("<html") || body.contains("<!DOCTYPE"),
                            "{key}: {target}"
                        );
                        if target.contains("relname=dead&") || target.ends_with("relname=dead") {
                            assert!(body.contains("dead"), "{target}: no finding for table dead");
                            report_for_dead = true;
                        }
                    }
                }
            }
        }
    }
    assert!(followed >= 30, "only {followed} links followed");
    assert!(report_for_dead, "no /report link for the table dead");

    // Annotations parse and run.
    for d in &dashboards {
        let annotations = d
            .json
            .at(&["annotations"])
            .map(|a| a.arr("list"))
            .unwrap_or_default();
        for a in annotations.iter().filter(|a| a.num("builtIn").is_none()) {
            let expr = substitute(a.str("expr").unwrap_or_default(), &resolved[&d.file]);
            prom.query(&expr)
                .await
                .unwrap_or_else(|e| panic!("{}: annotation {expr}: {e}", d.file));
        }
    }

    // Alert rules: all files loaded with all their rules, each evaluated
    // without error, each expression accepted by the query API.
    let rules = harness::eventually(Duration::from_secs(15), || async {
        let rules = prom.rules().await;
        rules
            .iter()
            .all(|(_, r)| r.str("health") != Some("unknown"))
            .then_some(rules)
    })
    .await;
    for f in &rule_files {
        let path = f.display().to_string();
        let loaded = rules.iter().filter(|(file, _)| *file == path).count();
        assert!(loaded >= 1, "{path}: no rule loaded");
        assert_eq!(loaded, declared_rules(f), "{path}: rules loaded vs declared");
    }
    for (file, r) in &rules {
        let rule = r.str("name").unwrap_or_default();
        assert_eq!(
            r.str("health"),
            Some("ok"),
            "{file}: {rule}: {:?}",
            r.get("lastError")
        );
        assert!(
            r.str("lastError").unwrap_or_default().is_empty(),
            "{file}: {rule}: {:?}",
            r.get("lastError")
        );
        let q = r.str("query").unwrap_or_default();
        prom.query(q)
            .await
            .unwrap_or_else(|e| panic!("{file}: {rule}: {q}: {e}"));
    }
    eprintln!(
        "{checked} panel queries, {followed} links and {} rules checked in {:?}",
        rules.len(),
        started.elapsed()
    );
    drop(prom);
    let _ = std::fs::remove_dir_all(&tmp);
}

async fn get(http: &reqwest::Client, url: &str) -> (u16, String) {
    let r = http
        .get(url)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let status = r.status().as_u16();
    (status, r.text().await.unwrap_or_default())
}

fn legend_labels(legend: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = legend;
    while let Some(i) = rest.find("{{") {
        let Some(j) = rest[i..].find("}}") else { break };
        out.push(rest[i + 2..i + j].trim().to_string());
        rest = &rest[i + j + 2..];
    }
    out
}

fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
