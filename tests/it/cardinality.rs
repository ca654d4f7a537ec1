//! Cardinality controls shared by `tables`, `indexes` and `bloat`: the
//! per-database cap keeps tables past their trigger points, counts the rest,
//! and the schema/table filters remove what they match.

use crate::harness;

use std::collections::HashSet;
use std::time::Instant;

/// Distinct (schema, table) pairs with a `pg_table_live_tuples` series in `db`.
fn tables_of(m: &harness::Samples, db: &str) -> HashSet<(String, String)> {
    m.find("pg_table_live_tuples", &[("datname", db)])
        .map(|s| (s.labels["schemaname"].clone(), s.labels["relname"].clone()))
        .collect()
}

#[tokio::test]
async fn cap_keeps_tables_past_their_trigger_and_counts_the_rest() {
    let pg = harness::cluster();
    let db = pg.fresh_db().await;
    // 1,999 tables of two pages each, committed in slices so the lock table
    // never holds thousands of new relations at once. DO can only COMMIT
    // when it is the whole query, hence its own batch.
    db.batch(
        "DO $$ BEGIN
           FOR i IN 1..1999 LOOP
             EXECUTE format('CREATE TABLE c%s AS SELECT g FROM generate_series(1, 400) g', i);
             IF i % 250 = 0 THEN COMMIT; END IF;
           END LOOP;
         END $$",
    )
    .await;
    // The CREATE TABLE AS counts must reach the statistics before ANALYZE
    // resets them: a count still pending in this backend (a busy server can
    // defer the flush) would be added after the reset, leaving 1,999 tables
    // past their analyze trigger to crowd needs_vacuum out of the cap.
    db.batch("SELECT pg_stat_force_next_flush();").await;
    db.batch("ANALYZE").await;
    // The smallest table (never analyzed, so relpages 0), but 50 dead tuples
    // past its trigger point of 10.
    db.batch(
        "CREATE TABLE needs_vacuum WITH (autovacuum_vacuum_threshold = 10,
             autovacuum_vacuum_scale_factor = 0, autovacuum_enabled = false)
           AS SELECT g FROM generate_series(1, 60) g;
         DELETE FROM needs_vacuum WHERE g <= 50;
         SELECT pg_stat_force_next_flush();",
    )
    .await;
    // The cap judges by the cumulative statistics: wait until they show every
    // c table analyzed and needs_vacuum's dead tuples.
    harness::eventually(std::time::Duration::from_secs(30), || async {
        let past_analyze = db
            .scalar_f64(
                "SELECT count(*)::float8 FROM pg_stat_user_tables
                  WHERE relname LIKE 'c%' AND n_mod_since_analyze > 0",
            )
            .await;
        let dead = db
            .scalar_f64("SELECT n_dead_tup::float8 FROM pg_stat_user_tables WHERE relname = 'needs_vacuum'")
            .await;
        (past_analyze == 0.0 && dead == 50.0).then_some(())
    })
    .await;
    let exporter = pg
        .spawn_exporter(&db.name, &[("PGMAINT_MAX_TABLES_PER_DATABASE", "100")])
        .await;
    let m = exporter.scrape().await;
    let kept = tables_of(&m, &db.name);
    assert_eq!(kept.len(), 100);
    assert_eq!(
        m.value("pgmaint_exporter_tables_omitted", &[("datname", &db.name)]),
        Some(1900.0)
    );
    assert!(kept.contains(&("public".into(), "needs_vacuum".into())));
    let l = [("datname", db.name.as_str()), ("relname", "needs_vacuum")];
    assert_eq!(m.value("pg_table_dead_tuples", &l), Some(50.0));
    assert_eq!(
        m.value("pg_table_autovacuum_vacuum_trigger_tuples", &l),
        Some(10.0)
    );
    // Every per-table family covers the same 100 tables.
    let triggers: HashSet<_> = m
        .find(
            "pg_table_autovacuum_vacuum_trigger_tuples",
            &[("datname", &db.name)],
        )
        .map(|s| (s.labels["schemaname"].clone(), s.labels["relname"].clone()))
        .collect();
    assert_eq!(triggers, kept);
}

#[tokio::test]
async fn schema_and_table_filters_remove_what_they_match() {
    let pg = harness::cluster();
    let db = pg.fresh_db().await;
    db.batch(
        "CREATE SCHEMA archive;
         CREATE TABLE archive.old (id int PRIMARY KEY);
         CREATE TABLE keep (id int PRIMARY KEY);
         CREATE TABLE skip_me (id int PRIMARY KEY);
         CREATE TABLE skip_you (id int);",
    )
    .await;
    let exporter = pg
        .spawn_exporter(
            &db.name,
            &[
                ("PGMAINT_EXCLUDE_SCHEMAS", "archive"),
                ("PGMAINT_EXCLUDE_TABLES", "skip_.*"),
            ],
        )
        .await;
    let m = exporter.scrape().await;
    assert_eq!(
        tables_of(&m, &db.name),
        HashSet::from([("public".to_string(), "keep".to_string())])
    );
    let d = [("datname", db.name.as_str())];
    let indexes: Vec<&str> = m
        .find("pg_index_unused", &d)
        .map(|s| s.labels["indexrelname"].as_str())
        .collect();
    assert_eq!(indexes, ["keep_pkey"]);
    // Filtered tables are not "omitted": that counts only the cap's victims.
    assert_eq!(
        m.value("pgmaint_exporter_tables_omitted", &[("datname", &db.name)]),
        Some(0.0)
    );

    // A schema-qualified pattern matches too.
    let exporter = pg
        .spawn_exporter(&db.name, &[("PGMAINT_EXCLUDE_TABLES", "public\\.keep")])
        .await;
    let m = exporter.scrape().await;
    let names: HashSet<String> = tables_of(&m, &db.name).into_iter().map(|(_, t)| t).collect();
    assert_eq!(
        names,
        HashSet::from(["old".into(), "skip_me".into(), "skip_you".into()])
    );
}

/// By hand: `scripts/test.sh -E 'binary(cardinality)' --run-ignored only --no-capture`.
/// 10,000 tables (primary key + 2 indexes, 100 rows, 20 % deleted, analyzed)
/// scraped with default settings; prints the scrape time and series count.
#[tokio::test]
#[ignore]
async fn measure_a_scrape_of_10000_tables() {
    let pg = harness::cluster();
    let db = pg.fresh_db().await;
    let started = Instant::now();
    db.batch(
        "DO $$ BEGIN
           FOR i IN 1..10000 LOOP
             EXECUTE format('CREATE TABLE m%s (id int PRIMARY KEY, a int, b text)', i);
             EXECUTE format('CREATE INDEX ON m%s (a)', i);
             EXECUTE format('CREATE INDEX ON m%s (b)', i);
             EXECUTE format('INSERT INTO m%s SELECT g, g, md5(g::text) FROM generate_series(1, 100) g', i);
             EXECUTE format('DELETE FROM m%s WHERE id %% 5 = 0', i);
             IF i % 100 = 0 THEN COMMIT; END IF;
           END LOOP;
         END $$",
    )
    .await;
    // The CREATE TABLE AS counts must reach the statistics before ANALYZE
    // resets them: a count still pending in this backend (a busy server can
    // defer the flush) would be added after the reset, leaving 1,999 tables
    // past their analyze trigger to crowd needs_vacuum out of the cap.
    db.batch("SELECT pg_stat_force_next_flush();").await;
    db.batch("ANALYZE").await;
    eprintln!("setup took {:?}", started.elapsed());
    // Default settings: 10 s scrape deadline, 5 s statement_timeout.
    let exporter = pg.spawn_exporter(&db.name, &[]).await;
    for round in 1..=3 {
        let t = Instant::now();
        let m = exporter.scrape().await;
        let elapsed = t.elapsed();
        let d = [("datname", db.name.as_str())];
        let dur = |c: &str| m.value("pg_scrape_collector_duration_seconds", &[("collector", c), d[0]]);
        eprintln!(
            "scrape {round}: {elapsed:?}, {} series, {} bytes; tables {:?}s indexes {:?}s; per-table series {}, per-index series {}, omitted {:?}",
            m.series.len(),
            m.raw.len(),
            dur("tables"),
            dur("indexes"),
            m.series.iter().filter(|s| s.name.starts_with("pg_table_")).count(),
            m.series.iter().filter(|s| s.name.starts_with("pg_index_")).count(),
            m.value("pgmaint_exporter_tables_omitted", &d),
        );
        let failed: Vec<_> = m
            .find("pg_scrape_collector_success", &[])
            .filter(|s| s.value != 1.0)
            .collect();
        assert!(failed.is_empty(), "{failed:?}");
        assert_eq!(tables_of(&m, &db.name).len(), 1000);
    }
}
