//! Conventions checked on real output: `promtool check metrics` finds nothing
//! on a scrape with every collector on, and every family the code can emit
//! is documented in docs/metrics.md.

mod harness;

use pgmaint_exporter::collectors::ALL;
use pgmaint_exporter::scrape::SELF_FAMILIES;

/// The exporter's process counters, kept in the prometheus crate's registry.
const REGISTRY_FAMILIES: &[&str] = &[
    "pgmaint_exporter_scrapes_total",
    "pgmaint_exporter_collector_failures_total",
];

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
    names.extend(REGISTRY_FAMILIES);
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
