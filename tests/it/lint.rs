//! Conventions checked on real output: `promtool check metrics` finds nothing
//! on a scrape with every collector on, and every family the code can emit
//! is documented in docs/metrics.md.

use crate::harness;

use std::collections::BTreeSet;
use std::time::Duration;

use pgmaint_exporter::collectors::ALL;
use pgmaint_exporter::scrape::SELF_FAMILIES;

#[tokio::test]
async fn promtool_finds_nothing_with_every_collector_on() {
    let pg = harness::cluster();
    let db = pg.fresh_db().await;
    db.batch(
        "CREATE EXTENSION IF NOT EXISTS pg_stat_statements;
         CREATE TABLE meetings (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, title text, at timestamptz)
           WITH (autovacuum_enabled = off);
         CREATE INDEX meetings_title ON meetings (title);
         CREATE INDEX meetings_title_dup ON meetings (title);
         INSERT INTO meetings (title, at) SELECT 'm' || g, now() FROM generate_series(1, 5000) g;
         DELETE FROM meetings WHERE id % 3 = 0;
         CREATE SEQUENCE counter MAXVALUE 100;
         SELECT setval('counter', 10);
         ANALYZE;",
    )
    .await;
    let all: Vec<&str> = ALL.iter().map(|c| c.name()).collect();
    let exporter = pg
        .spawn_exporter(&db.name, &[("PGMAINT_COLLECTORS", &all.join(","))])
        .await;
    let m = exporter.scrape().await;
    assert_eq!(m.value("pg_up", &[]), Some(1.0));
    assert_eq!(harness::promtool_check(&m.raw), "", "promtool check metrics");
    // Every family carries HELP and TYPE.
    for s in &m.series {
        let family = s.name.as_str();
        assert!(m.types.contains_key(family), "{family} has no TYPE");
        assert!(
            m.raw.contains(&format!("# HELP {family} ")),
            "{family} has no HELP"
        );
    }
    // Counters end in _total, gauges do not.
    for (name, kind) in &m.types {
        assert_eq!(kind == "counter", name.ends_with("_total"), "{name} is a {kind}");
    }
}

#[test]
fn every_family_is_documented() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/metrics.md")).unwrap();
    let mut names: Vec<&str> = SELF_FAMILIES.iter().map(|f| f.name).collect();
    for c in ALL {
        names.extend(c.families().iter().map(|f| f.name));
        assert!(
            doc.contains(&format!("## {}", c.name())),
            "docs/metrics.md has no section for {}",
            c.name()
        );
    }
    let missing: Vec<&&str> = names
        .iter()
        .filter(|n| !doc.contains(&format!("`{n}`")))
        .collect();
    assert!(missing.is_empty(), "not in docs/metrics.md: {missing:?}");
    // And every family is declared once.
    let mut sorted = names.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), names.len(), "a family is declared twice");
}

/// The exporter's process-level families live in the prometheus crate's
/// registry (src/scrape/coalesce.rs), outside `ALL` and `SELF_FAMILIES`: they are
/// taken from a real /metrics with everything that registers or fills them
/// switched on (an auth module registers the /probe gauges; a failing custom
/// query gives the failure counter a series), so a family added there is
/// checked without being listed here.
#[tokio::test]
async fn every_registry_family_is_documented() {
    let pg = harness::cluster();
    let db = pg.fresh_db().await;
    let dir = std::env::temp_dir().join(format!("pgmaint-lint-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (config, queries) = (dir.join("config.yml"), dir.join("queries.yml"));
    for (path, text) in [
        (&config, "auth_modules: {plain: {user: postgres, sslmode: disable, allowed_targets: [127.0.0.1/32]}}"),
        (&queries, "queries: [{name: lint_failing, help: Always fails., sql: SELECT count(*) AS v FROM no_such_table, values: [v]}]"),
    ] {
        std::fs::write(path, text).unwrap();
    }
    let exporter = pg
        .spawn_exporter(
            &db.name,
            &[
                ("PGMAINT_COLLECTORS", "database"),
                ("PGMAINT_CONFIG_FILE", config.to_str().unwrap()),
                ("PGMAINT_QUERIES_FILE", queries.to_str().unwrap()),
            ],
        )
        .await;
    let m = harness::eventually(Duration::from_secs(20), || async {
        let m = exporter.scrape().await;
        m.has("pgmaint_exporter_collector_failures_total").then_some(m)
    })
    .await;
    let _ = std::fs::remove_dir_all(&dir);
    let known: BTreeSet<&str> = SELF_FAMILIES
        .iter()
        .chain(ALL.iter().flat_map(|c| c.families()))
        .map(|f| f.name)
        .chain(["lint_failing"])
        .collect();
    let registry: Vec<&String> = m.types.keys().filter(|n| !known.contains(n.as_str())).collect();
    // scrapes, collector failures, /probe targets and /probe connections.
    assert!(registry.len() >= 4, "registry families seen: {registry:?}");
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/metrics.md")).unwrap();
    let missing: Vec<&&String> = registry
        .iter()
        .filter(|n| !doc.contains(&format!("`{n}`")))
        .collect();
    assert!(missing.is_empty(), "not in docs/metrics.md: {missing:?}");
    assert_eq!(harness::promtool_check(&m.raw), "", "promtool check metrics");
}
