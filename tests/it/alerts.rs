//! The alerting rules, their unit tests, the example Alertmanager config and
//! the runbook checked together: the tools (promtool, amtool, yamllint) find
//! nothing, every alert has a firing and a non-firing unit test, complete
//! labels and annotations, a runbook section, and uses only documented
//! metrics and labels.
//!
//! The YAML files are read with serde_norway into the shapes Prometheus and
//! promtool read; the rule count is cross-checked with promtool's.

use crate::harness;
use crate::harness::repo;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Command;

use regex::Regex;
use serde::Deserialize;

fn read(rel: &str) -> String {
    std::fs::read_to_string(repo().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// Runs a tool in the repository; returns (success, stdout + stderr).
/// A missing tool fails the test: CI installs all of them.
fn run(tool: &str, args: &[&str]) -> (bool, String) {
    let out = harness::run(tool, args, "see .ci/run");
    (out.status.success(), harness::text(&out))
}

fn test_files() -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir(repo().join("alerts/tests"))
        .expect("alerts/tests")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yml"))
        .map(|p: PathBuf| p.strip_prefix(repo()).unwrap().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no alerts/tests/*.yml");
    files
}

/// Block scalars folded into one line (their lines trimmed and joined with
/// spaces), so that checks on a phrase do not depend on where it wraps.
fn fold(v: &str) -> String {
    v.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// `alerts/pgmaint.rules.yml` as Prometheus reads it: groups of rules.
#[derive(Deserialize)]
struct RulesFile {
    groups: Vec<RuleGroup>,
}

#[derive(Deserialize)]
struct RuleGroup {
    rules: Vec<RawRule>,
}

#[derive(Deserialize)]
struct RawRule {
    alert: Option<String>,
    record: Option<String>,
    expr: String,
    #[serde(default, rename = "for")]
    for_: String,
    #[serde(default)]
    keep_firing_for: String,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

/// One alerting or recording rule.
#[derive(Debug, Default)]
struct Rule {
    name: String,
    alert: bool,
    expr: String,
    /// Keys and values under `labels:` and `annotations:` (values of block
    /// scalars are folded into one line).
    labels: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
    /// `for:` and `keep_firing_for:`, as written ("" when absent).
    for_: String,
    keep_firing_for: String,
}

fn parse_rules(text: &str) -> Vec<Rule> {
    let file: RulesFile =
        serde_norway::from_str(text).unwrap_or_else(|e| panic!("alerts/pgmaint.rules.yml: {e}"));
    let fold_map = |m: BTreeMap<String, String>| m.into_iter().map(|(k, v)| (k, fold(&v))).collect();
    file.groups
        .into_iter()
        .flat_map(|g| g.rules)
        .map(|r| Rule {
            alert: r.alert.is_some(),
            name: r
                .alert
                .or(r.record)
                .unwrap_or_else(|| panic!("a rule with neither alert nor record: {}", r.expr)),
            expr: fold(&r.expr),
            labels: fold_map(r.labels),
            annotations: fold_map(r.annotations),
            for_: r.for_,
            keep_firing_for: r.keep_firing_for,
        })
        .collect()
}

/// One `alert_rule_test` item: the alert and whether it expects alerts.
#[derive(Debug)]
struct Case {
    file: String,
    alertname: String,
    eval_time: String,
    firing: bool,
    /// For firing cases: every expected alert has exp_labels with a
    /// severity and exp_annotations with summary, description, runbook_url.
    complete: bool,
}

/// A promtool unit-test file (`promtool test rules`), the parts checked here.
#[derive(Deserialize)]
struct TestFile {
    tests: Vec<TestGroup>,
}

#[derive(Deserialize)]
struct TestGroup {
    #[serde(default)]
    alert_rule_test: Vec<AlertTest>,
}

#[derive(Deserialize)]
struct AlertTest {
    eval_time: String,
    alertname: String,
    #[serde(default)]
    exp_alerts: Vec<ExpAlert>,
}

#[derive(Deserialize)]
struct ExpAlert {
    #[serde(default)]
    exp_labels: BTreeMap<String, serde_norway::Value>,
    #[serde(default)]
    exp_annotations: BTreeMap<String, serde_norway::Value>,
}

fn parse_cases(file: &str, text: &str) -> Vec<Case> {
    let tests: TestFile = serde_norway::from_str(text).unwrap_or_else(|e| panic!("{file}: {e}"));
    tests
        .tests
        .into_iter()
        .flat_map(|g| g.alert_rule_test)
        .map(|t| Case {
            file: file.to_string(),
            complete: !t.exp_alerts.is_empty()
                && t.exp_alerts.iter().all(|a| {
                    a.exp_labels.contains_key("severity")
                        && ["summary", "description", "runbook_url"]
                            .iter()
                            .all(|k| a.exp_annotations.contains_key(*k))
                }),
            firing: !t.exp_alerts.is_empty(),
            alertname: t.alertname,
            eval_time: t.eval_time,
        })
        .collect()
}

/// The runbook links' base: the one setting in scripts/gen-prometheusrule.sh.
fn runbook_base() -> String {
    let script = read("scripts/gen-prometheusrule.sh");
    Regex::new(r"RUNBOOK_BASE=\$\{PGMAINT_RUNBOOK_BASE:-([^}]+)\}")
        .unwrap()
        .captures(&script)
        .expect("RUNBOOK_BASE default in scripts/gen-prometheusrule.sh")[1]
        .to_string()
}

fn rules() -> Vec<Rule> {
    let rules = parse_rules(&read("alerts/pgmaint.rules.yml"));
    // Cross-check the parse with promtool's count.
    let (ok, out) = run("promtool", &["check", "rules", "alerts/pgmaint.rules.yml"]);
    assert!(ok, "promtool check rules:\n{out}");
    let n: usize = Regex::new(r"SUCCESS: (\d+) rules found")
        .unwrap()
        .captures(&out)
        .unwrap_or_else(|| panic!("unexpected promtool output:\n{out}"))[1]
        .parse()
        .unwrap();
    assert_eq!(
        rules.len(),
        n,
        "serde_norway found {} rules, promtool {n}",
        rules.len()
    );
    assert!(
        rules.iter().filter(|r| r.alert).count() >= 30,
        "too few alerts parsed"
    );
    rules
}

#[test]
fn promtool_check_rules_finds_nothing() {
    let (ok, out) = run("promtool", &["check", "rules", "alerts/pgmaint.rules.yml"]);
    assert!(ok, "promtool check rules:\n{out}");
    let findings: Vec<&str> = out
        .lines()
        .filter(|l| !l.starts_with("Checking ") && !l.contains("SUCCESS") && !l.trim().is_empty())
        .collect();
    assert!(findings.is_empty(), "promtool check rules reported:\n{out}");
}

#[test]
fn promtool_unit_tests_pass() {
    let files = test_files();
    let mut args = vec!["test", "rules"];
    args.extend(files.iter().map(|s| s.as_str()));
    let (ok, out) = run("promtool", &args);
    assert!(ok, "promtool test rules:\n{out}");
    assert_eq!(
        out.matches("SUCCESS").count(),
        files.len(),
        "not every file succeeded:\n{out}"
    );
    assert!(!out.contains("FAILED"), "{out}");
}

#[test]
fn amtool_accepts_the_alertmanager_config_and_routes_by_severity() {
    let (ok, out) = run("amtool", &["check-config", "alerts/alertmanager.yml"]);
    assert!(ok && out.contains("SUCCESS"), "amtool check-config:\n{out}");
    for (labels, receiver) in [
        (&["severity=critical", "alertname=PostgresDown"][..], "pager"),
        (
            &["severity=warning", "alertname=PostgresTableBloat"][..],
            "tickets",
        ),
    ] {
        let mut args = vec![
            "config",
            "routes",
            "test",
            "--config.file=alerts/alertmanager.yml",
        ];
        let verify = format!("--verify.receivers={receiver}");
        args.push(&verify);
        args.extend(labels);
        let (ok, out) = run("amtool", &args);
        assert!(ok, "{labels:?} should go to {receiver}:\n{out}");
    }
}

#[test]
fn alertmanager_config_names_only_existing_alerts_and_inhibits_on_postgres_down() {
    let config = read("alerts/alertmanager.yml");
    let names: BTreeSet<String> = rules().into_iter().filter(|r| r.alert).map(|r| r.name).collect();
    let mentioned: Vec<String> = Regex::new(r#"alertname!?="(\w+)""#)
        .unwrap()
        .captures_iter(&config)
        .map(|c| c[1].to_string())
        .collect();
    assert!(mentioned.len() >= 2, "no alert names in alerts/alertmanager.yml");
    for name in &mentioned {
        assert!(
            names.contains(name),
            "alertmanager.yml names unknown alert {name}"
        );
    }
    // PostgresDown inhibits every other alert of the instance except the
    // backup and WAL-archive ones (read from files, needed for a restore).
    let down = Regex::new(
        r#"- alertname="PostgresDown"\n    target_matchers:\n      - alertname!~"([^"]+)"\n    equal: \['instance'\]"#,
    )
    .unwrap();
    let spared = down
        .captures(&config)
        .expect("PostgresDown must inhibit the other alerts of the same instance")[1]
        .to_string();
    let spared = Regex::new(&format!("^(?:{spared})$")).unwrap();
    for name in &names {
        let restore = name.starts_with("PostgresBackup") || name == "PostgresWalArchiveGap";
        assert_eq!(
            spared.is_match(name),
            restore || name == "PostgresDown",
            "PostgresDown inhibition and {name}"
        );
    }
}

/// The example groups by alert and object, inhibits on root causes, and uses
/// only labels that the rules or the shipped scrape configs set.
#[test]
fn alertmanager_config_groups_by_object_and_uses_only_labels_that_exist() {
    let config = read("alerts/alertmanager.yml");
    let group_by: Vec<String> = {
        let start = config
            .find("  group_by:\n")
            .expect("route.group_by as a block list");
        config[start + "  group_by:\n".len()..]
            .lines()
            .take_while(|l| l.starts_with("    - "))
            .map(|l| l.trim_start_matches("    - ").trim().to_string())
            .collect()
    };
    for needed in ["alertname", "instance", "datname", "relname", "slot_name"] {
        assert!(
            group_by.iter().any(|l| l == needed),
            "group_by lacks {needed}: {group_by:?}"
        );
    }
    let mut known: BTreeSet<String> = documented().into_values().flatten().collect();
    known.extend(["alertname", "job", "instance", "cluster"].map(String::from));
    let equal = Regex::new(r"equal: \[([^\]]*)\]").unwrap();
    let mut used: Vec<String> = group_by.clone();
    for c in equal.captures_iter(&config) {
        used.extend(c[1].split(',').map(|l| l.trim().trim_matches('\'').to_string()));
    }
    for label in &used {
        assert!(
            known.contains(label),
            "alertmanager.yml uses label {label}, which nothing sets"
        );
    }
    // `cluster` is set by the shipped scrape configs, not only documented.
    for (file, needle) in [
        ("deploy/compose/prometheus.yml", "cluster: "),
        ("deploy/kubernetes/servicemonitor.yaml", "targetLabels: [cluster]"),
        ("deploy/kubernetes/sidecar.yaml", "cluster: "),
        ("examples/fleet/production.yml", "cluster: "),
    ] {
        assert!(
            read(file).contains(needle),
            "{file} does not set the cluster label"
        );
    }
    // Root-cause inhibitions.
    let rule = Regex::new(r#"(?s)- source_matchers:\n      - alertname(=|=~)"([^"]+)"\n    target_matchers:\n      - alertname(=|=~)"([^"]+)""#).unwrap();
    for (source, target) in [
        ("PostgresXminHorizonHeldBack", "PostgresTableBloat"),
        ("PostgresXminHorizonHeldBack", "PostgresTableVacuumOverdue"),
        ("PostgresWalArchivingFailing", "PostgresWalDirectoryGrowing"),
        ("PostgresReplicationSlotInactive", "PostgresWalDirectoryGrowing"),
    ] {
        let found = rule.captures_iter(&config).any(|c| {
            let matches = |op: &str, pat: &str, name: &str| {
                if op == "=" {
                    pat == name
                } else {
                    Regex::new(&format!("^(?:{pat})$")).unwrap().is_match(name)
                }
            };
            matches(&c[1], &c[2], source) && matches(&c[3], &c[4], target)
        });
        assert!(found, "no inhibition of {target} by {source}");
    }
}

#[test]
fn yamllint_finds_nothing() {
    let (ok, out) = run(
        "yamllint",
        &["--strict", "-f", "parsable", "-d", "relaxed", "alerts/"],
    );
    assert!(ok && out.trim().is_empty(), "yamllint:\n{out}");
}

#[test]
fn every_alert_has_a_firing_and_a_silent_unit_test() {
    let alerts: Vec<String> = rules().into_iter().filter(|r| r.alert).map(|r| r.name).collect();
    let mut cases = vec![];
    for file in test_files() {
        let text = read(&file);
        let parsed = parse_cases(&file, &text);
        cases.extend(parsed);
    }
    for case in &cases {
        assert!(
            alerts.contains(&case.alertname),
            "{}: test at {} for unknown alert {}",
            case.file,
            case.eval_time,
            case.alertname
        );
        if case.firing {
            assert!(
                case.complete,
                "{}: firing case at {} for {} must check severity and all three annotations of every alert",
                case.file, case.eval_time, case.alertname
            );
        }
    }
    let mut missing = vec![];
    for alert in &alerts {
        let firing = cases.iter().any(|c| &c.alertname == alert && c.firing);
        let silent = cases.iter().any(|c| &c.alertname == alert && !c.firing);
        if !firing || !silent {
            missing.push(format!("{alert} (firing: {firing}, silent: {silent})"));
        }
    }
    assert!(missing.is_empty(), "alerts without both test cases: {missing:#?}");
}

#[test]
fn every_alert_has_severity_annotations_and_a_runbook_section() {
    let runbook = read("docs/runbook.md");
    // GitHub's anchors: lower case, spaces to dashes, punctuation dropped.
    let anchors: BTreeSet<String> = runbook
        .lines()
        .filter_map(|l| l.strip_prefix("## ").or_else(|| l.strip_prefix("### ")))
        .map(|h| {
            h.trim()
                .to_lowercase()
                .chars()
                .filter_map(|c| match c {
                    ' ' => Some('-'),
                    c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
                    _ => None,
                })
                .collect()
        })
        .collect();
    let url = Regex::new(&format!("^{}#([a-z0-9_-]+)$", regex::escape(&runbook_base()))).unwrap();
    let rules = rules();
    let mut seen = BTreeSet::new();
    for rule in rules.iter().filter(|r| r.alert) {
        let n = &rule.name;
        assert!(seen.insert(n.clone()), "alert {n} is defined twice");
        let severity = rule.labels.get("severity").map(String::as_str);
        assert!(
            matches!(severity, Some("critical") | Some("warning")),
            "{n}: severity is {severity:?}"
        );
        for key in ["summary", "description", "runbook_url"] {
            let v = rule.annotations.get(key).map(String::as_str).unwrap_or("");
            assert!(!v.is_empty(), "{n} has no {key}");
        }
        let description = &rule.annotations["description"];
        // Alerts over a whole job or cluster have no instance to name.
        let scope = if rule.expr.contains("by (cluster)") {
            "$labels.cluster"
        } else if rule.expr.contains("group by (job)") {
            "$labels.job"
        } else {
            "$labels.instance"
        };
        assert!(description.contains(scope), "{n}: description must name {scope}");
        if severity == Some("critical") {
            assert!(
                !rule.keep_firing_for.is_empty(),
                "{n}: critical alerts need keep_firing_for, so a scrape gap does not resolve them"
            );
        }
        // The value, unless the alert is on a 0/1 flag (then the labels say it all).
        let flag = rule.expr.trim().ends_with("== 0")
            || rule.expr.trim().ends_with("== 1")
            || rule.expr.starts_with("group by (job)");
        assert!(
            flag || description.contains("$value") || description.contains("| query"),
            "{n}: description must show the value"
        );
        let anchor = url.captures(&rule.annotations["runbook_url"]).unwrap_or_else(|| {
            panic!(
                "{n}: runbook_url {} has the wrong form",
                rule.annotations["runbook_url"]
            )
        })[1]
            .to_string();
        assert_eq!(anchor, n.to_lowercase(), "{n}: runbook anchor");
        assert!(
            anchors.contains(&anchor),
            "{n}: docs/runbook.md has no section #{anchor}"
        );
    }
    // Links inside the runbook lead somewhere.
    for c in Regex::new(r"\]\(#([a-z0-9_-]+)\)")
        .unwrap()
        .captures_iter(&runbook)
    {
        assert!(
            anchors.contains(&c[1]),
            "docs/runbook.md links to missing #{}",
            &c[1]
        );
    }
    // And no runbook section is left over from a removed alert.
    for line in runbook.lines().filter_map(|l| l.strip_prefix("## ")) {
        let h = line.trim();
        if h.starts_with("Postgres") || h.starts_with("Pgmaint") {
            assert!(seen.contains(h), "docs/runbook.md documents unknown alert {h}");
        }
    }
    for rule in rules.iter().filter(|r| !r.alert) {
        assert!(
            rule.name.starts_with("pgmaint:"),
            "recording rule {} must be named pgmaint:…",
            rule.name
        );
    }
}

/// Documented metric families and their labels, from the tables of
/// docs/metrics.md (`| \`name\` | type | labels | …`). "same" refers to the
/// row above.
fn documented() -> BTreeMap<String, BTreeSet<String>> {
    let doc = read("docs/metrics.md");
    let row = Regex::new(r"^\| `([a-z0-9_]+)` \| (gauge|counter) \|([^|]*)\|").unwrap();
    let mut families = BTreeMap::new();
    let mut previous: BTreeSet<String> = BTreeSet::new();
    for line in doc.lines() {
        if let Some(c) = row.captures(line) {
            let labels: BTreeSet<String> = if c[3].trim() == "same" {
                previous.clone()
            } else {
                c[3].split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect()
            };
            previous = labels.clone();
            families.insert(c[1].to_string(), labels);
        }
    }
    assert!(families.len() > 100, "docs/metrics.md tables not understood");
    families
}

#[test]
fn rules_use_only_documented_metrics_and_labels() {
    let families = documented();
    let metric = Regex::new(r"\b(pg_[a-z0-9_]+|pgmaint_exporter_[a-z0-9_]+)\b").unwrap();
    let matchers = Regex::new(r"\b([a-z_][a-z0-9_]*)\{([^}]*)\}").unwrap();
    let matcher_label = Regex::new(r#"([a-z_][a-z0-9_]*)\s*(=~|!~|!=|=)\s*""#).unwrap();
    let grouping = Regex::new(r"\b(without|by|ignoring|on)\s*\(([^)]*)\)").unwrap();
    let counter_fn = Regex::new(r"\b(rate|irate|increase|resets)\(\s*([a-z0-9_]+)").unwrap();
    let quoted = Regex::new(r#""[^"]*""#).unwrap();
    // Target labels Prometheus adds to every series.
    let target = ["job", "instance", "cluster"];
    let mut used = 0;
    for rule in rules() {
        let n = &rule.name;
        assert!(!rule.expr.is_empty(), "{n} has no expr");
        // Label values ("pg_monitor") are not metric names.
        let unquoted = quoted.replace_all(&rule.expr, "\"\"");
        let names: BTreeSet<String> = metric
            .find_iter(&unquoted)
            .map(|m| m.as_str().to_string())
            .collect();
        let mut labels: BTreeSet<&str> = target.into();
        for name in &names {
            let documented = families
                .get(name)
                .unwrap_or_else(|| panic!("{n} uses {name}, which docs/metrics.md does not list"));
            labels.extend(documented.iter().map(String::as_str));
            used += 1;
        }
        for c in matchers.captures_iter(&rule.expr) {
            let family = &c[1];
            for m in matcher_label.captures_iter(&c[2]) {
                let label = &m[1];
                let ok = match families.get(family) {
                    Some(l) => l.contains(label) || target.contains(&label),
                    None => family == "up" && target.contains(&label),
                };
                assert!(ok, "{n}: {family} has no label {label}");
            }
        }
        for c in grouping.captures_iter(&rule.expr) {
            for label in c[2].split(',').map(str::trim).filter(|s| !s.is_empty()) {
                assert!(
                    labels.contains(label),
                    "{n}: {}({label}) names a label none of its metrics has",
                    &c[1]
                );
            }
        }
        // rate()/irate()/increase() only on counters.
        for c in counter_fn.captures_iter(&rule.expr) {
            assert!(
                c[2].ends_with("_total"),
                "{n}: {}() on the gauge {}",
                &c[1],
                &c[2]
            );
        }
    }
    assert!(used > 40, "too few metric references found ({used})");
}

/// Catalog-derived alerts are evaluated on primaries only: a standby has the
/// primary's catalog (one alert per replica otherwise) and no index scans of
/// its own when idle.
#[test]
fn catalog_derived_alerts_are_gated_to_the_primary() {
    let rules = rules();
    let gated = [
        "PostgresInvalidIndex",
        "PostgresUnusedIndex",
        "PostgresDuplicateIndex",
        "PostgresTableBloat",
        "PostgresIndexBloat",
        "PostgresSequenceNearExhaustion",
        "PostgresIntegerKeyNearExhaustion",
        "PostgresIntegerKeyExhaustionImminent",
        "PostgresXidAgeHigh",
        "PostgresXidWraparoundImminent",
        "PostgresMultixactAgeHigh",
        "PostgresMultixactWraparoundImminent",
        "PostgresTableXidAgeHigh",
    ];
    for name in gated {
        let rule = rules
            .iter()
            .find(|r| r.name == name)
            .unwrap_or_else(|| panic!("no alert {name}"));
        assert!(
            rule.expr
                .contains("unless on (job, instance) pg_replication_in_recovery == 1"),
            "{name} is not gated to the primary: {}",
            rule.expr
        );
    }
    // Hygiene alerts: one per database, the count as value.
    for name in [
        "PostgresUnusedIndex",
        "PostgresDuplicateIndex",
        "PostgresTableBloat",
        "PostgresIndexBloat",
    ] {
        let rule = rules.iter().find(|r| r.name == name).unwrap();
        assert!(rule.expr.starts_with("count without ("), "{name}: {}", rule.expr);
        assert_eq!(
            rule.annotations.get("report").map(String::as_str),
            Some("/report?datname={{$labels.datname|urlquery}}"),
            "{name}"
        );
    }
    // No `for:` of a day or more: one missing sample restarts it.
    for rule in rules.iter().filter(|r| r.alert) {
        assert!(
            !rule.for_.ends_with('d'),
            "{}: for: {} restarts on every sample gap; put the duration in the expression",
            rule.name,
            rule.for_
        );
    }
}

/// The runbook base is one setting: the generator rewrites both files with it.
#[test]
fn runbook_base_is_set_once_for_the_rules_and_the_prometheusrule() {
    let tmp = std::env::temp_dir().join(format!("pgmaint-runbook-base-{}", std::process::id()));
    for dir in ["scripts", "alerts", "deploy/kubernetes"] {
        std::fs::create_dir_all(tmp.join(dir)).unwrap();
    }
    for file in ["scripts/gen-prometheusrule.sh", "alerts/pgmaint.rules.yml"] {
        std::fs::copy(repo().join(file), tmp.join(file)).unwrap();
    }
    let out = Command::new("bash")
        .arg(tmp.join("scripts/gen-prometheusrule.sh"))
        .env("PGMAINT_RUNBOOK_BASE", "https://wiki.example.com/pg/runbook")
        .output()
        .expect("bash");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let rules = std::fs::read_to_string(tmp.join("alerts/pgmaint.rules.yml")).unwrap();
    let operator = std::fs::read_to_string(tmp.join("deploy/kubernetes/prometheusrule.yaml")).unwrap();
    let _ = std::fs::remove_dir_all(&tmp);
    let alerts = parse_rules(&read("alerts/pgmaint.rules.yml"))
        .into_iter()
        .filter(|r| r.alert)
        .count();
    for (name, text) in [("rules", &rules), ("PrometheusRule", &operator)] {
        let links: Vec<&str> = text
            .lines()
            .filter(|l| l.trim_start().starts_with("runbook_url:"))
            .collect();
        assert_eq!(links.len(), alerts, "{name}: one runbook_url per alert");
        for l in links {
            assert!(
                l.trim_start()
                    .starts_with("runbook_url: https://wiki.example.com/pg/runbook#"),
                "{name}: {l}"
            );
        }
    }
    // The committed files use the default base.
    let base = runbook_base();
    assert!(base.starts_with("http"), "default base {base} is not a URL");
}
