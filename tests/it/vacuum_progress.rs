//! `vacuum_progress` against a VACUUM slowed down by cost-based delay, and an
//! autovacuum worker slowed by per-table cost settings.

use crate::harness;

use std::time::Duration;

/// 300k rows, half deleted, no autovacuum: VACUUM has thousands of pages to do.
const BIG_TABLE: &str = "CREATE TABLE t (id int, pad text) WITH (autovacuum_enabled = false);
     INSERT INTO t SELECT g, repeat('x', 100) FROM generate_series(1, 300000) g;
     DELETE FROM t WHERE id % 2 = 0;
     ANALYZE t;";

#[tokio::test]
async fn slow_manual_vacuum_is_reported_until_cancelled() {
    let pg = harness::cluster();
    let db = pg.fresh_db().await;
    db.batch(BIG_TABLE).await;
    let relpages = db
        .scalar_f64("SELECT relpages::float8 FROM pg_class WHERE relname = 't'")
        .await;
    let blocks = db
        .scalar_f64("SELECT (pg_relation_size('t') / current_setting('block_size')::int)::float8")
        .await;
    assert_eq!(relpages, blocks);
    assert!(relpages > 1000.0, "{relpages}");

    let exporter = pg.spawn_exporter(&db.name, &[]).await;
    let d = [
        ("datname", db.name.as_str()),
        ("schemaname", "public"),
        ("relname", "t"),
    ];
    let m = exporter.scrape().await;
    assert!(!m.has("pg_vacuum_progress_info"));

    let vacuumer = db.session().await;
    let cancel = vacuumer.cancel_token();
    // Separate statements: VACUUM refuses to run in a multi-statement batch.
    vacuumer
        .batch_execute("SET vacuum_cost_delay = 50; SET vacuum_cost_limit = 1")
        .await
        .unwrap();
    let vacuum = tokio::spawn(async move { vacuumer.batch_execute("VACUUM t").await });

    let m = harness::eventually(Duration::from_secs(30), || async {
        let m = exporter.scrape().await;
        // The row appears in phase "initializing" before heap_blks_total is set.
        (m.value("pg_vacuum_progress_heap_blocks", &d).unwrap_or(0.0) > 0.0).then_some(m)
    })
    .await;
    assert_eq!(m.value("pg_vacuum_progress_heap_blocks", &d), Some(relpages));
    let info: Vec<_> = m.find("pg_vacuum_progress_info", &d).collect();
    assert_eq!(info.len(), 1, "{info:?}");
    assert_eq!(info[0].labels["autovacuum"], "false");
    assert_eq!(info[0].value, 1.0);
    assert!(!info[0].labels["phase"].is_empty());
    let running = m.value("pg_vacuum_progress_running_seconds", &d).unwrap();
    assert!((0.0..30.0).contains(&running), "{running}");
    let scanned = m.value("pg_vacuum_progress_heap_blocks_scanned", &d).unwrap();
    assert!(scanned <= relpages, "{scanned}");
    assert_eq!(m.value("pg_vacuum_progress_index_vacuum_cycles", &d), Some(0.0));
    assert!(m.value("pg_vacuum_progress_max_dead_tuples", &d).unwrap() > 0.0);
    // PG 15: the PG 17 byte-based columns do not exist.
    assert!(!m.has("pg_vacuum_progress_dead_tuple_bytes"));
    assert!(m.has("pg_autovacuum_workers_busy"));
    assert_eq!(harness::promtool_check(&m.raw), "");

    // Still running a second later, and for longer.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let m = exporter.scrape().await;
    let later = m.value("pg_vacuum_progress_running_seconds", &d).unwrap();
    assert!(later >= running + 1.0, "{running} → {later}");

    cancel.cancel_query(tokio_postgres::NoTls).await.unwrap();
    assert!(vacuum.await.unwrap().is_err(), "VACUUM was cancelled");
    harness::eventually(Duration::from_secs(10), || async {
        let m = exporter.scrape().await;
        (!m.has("pg_vacuum_progress_info") && !m.has("pg_vacuum_progress_heap_blocks")).then_some(())
    })
    .await;
}

#[tokio::test]
async fn slow_autovacuum_counts_as_busy_worker() {
    let pg = harness::start_cluster(None, &["autovacuum_naptime = 1"]);
    let db = pg.fresh_db().await;
    db.batch(
        "CREATE TABLE a (id int, pad text)
           WITH (autovacuum_vacuum_cost_delay = 100, autovacuum_vacuum_cost_limit = 1,
                 autovacuum_vacuum_threshold = 0, autovacuum_vacuum_scale_factor = 0.01,
                 autovacuum_analyze_threshold = 2000000000);
         INSERT INTO a SELECT g, repeat('x', 100) FROM generate_series(1, 100000) g;
         DELETE FROM a WHERE id % 2 = 0;
         SELECT pg_stat_force_next_flush();",
    )
    .await;
    let exporter = pg.spawn_exporter(&db.name, &[]).await;
    let d = [
        ("datname", db.name.as_str()),
        ("schemaname", "public"),
        ("relname", "a"),
    ];
    let m = harness::eventually(Duration::from_secs(60), || async {
        let m = exporter.scrape().await;
        m.value(
            "pg_vacuum_progress_info",
            &[d[0], d[1], d[2], ("autovacuum", "true")],
        )
        .map(|_| m)
    })
    .await;
    // At least the worker on `a`; the launcher may send another one into
    // this database meanwhile (it finds `a` taken and leaves).
    let busy = m
        .value("pg_autovacuum_workers_busy", &[("datname", db.name.as_str())])
        .unwrap();
    assert!((1.0..=3.0).contains(&busy), "{busy} busy workers");
    let pages = db
        .scalar_f64("SELECT (pg_relation_size('a') / current_setting('block_size')::int)::float8")
        .await;
    assert_eq!(m.value("pg_vacuum_progress_heap_blocks", &d), Some(pages));
    assert_eq!(harness::promtool_check(&m.raw), "");

    // A role without pg_read_all_stats sees the worker with a NULL
    // backend_type: it gets no count at all rather than a 0 while one works.
    let role = format!("avmon_{}", db.name);
    db.batch(&format!("CREATE ROLE {role} LOGIN")).await;
    let url = format!("postgresql://{role}@127.0.0.1:{}/{}", pg.port, db.name);
    let unprivileged = pg
        .spawn_exporter(&db.name, &[("PGMAINT_DATABASE_URL", url.as_str())])
        .await;
    let m = unprivileged.scrape().await;
    drop(unprivileged);
    let still_busy = exporter.scrape().await;
    db.batch(&format!("DROP ROLE {role}")).await;
    assert_eq!(
        m.value(
            "pg_scrape_collector_success",
            &[("collector", "vacuum_progress"), d[0]]
        ),
        Some(1.0)
    );
    assert!(
        still_busy
            .value("pg_autovacuum_workers_busy", &[d[0]])
            .unwrap_or(0.0)
            >= 1.0,
        "the worker still runs"
    );
    assert_eq!(m.value("pg_autovacuum_workers_busy", &[d[0]]), None);
}

/// Issue 22: the scrape's first statement learns, cluster-wide, where a
/// VACUUM runs, so a database without one is not asked (a statement and a
/// fresh backend's planning of two statistics views saved per database) and
/// still reports `pg_autovacuum_workers_busy 0`. An autovacuum worker may
/// visit the database at any moment (the launcher rotates through every
/// database), which sends the statement for that scrape: over three scrapes
/// at most one may ask.
#[tokio::test]
async fn a_database_without_vacuum_is_not_asked() {
    let pg = harness::cluster();
    let db = pg.fresh_db().await;
    db.batch("CREATE EXTENSION IF NOT EXISTS pg_stat_statements; CREATE TABLE t (id int)")
        .await;
    let exporter = pg.spawn_exporter(&db.name, &[]).await;
    // The collector's statement (`activity` names pg_stat_progress_vacuum too).
    let asked = || async {
        db.scalar_f64(
            "SELECT coalesce(sum(calls), 0)::float8 FROM pg_stat_statements s
               JOIN pg_database d ON d.oid = s.dbid
              WHERE d.datname = current_database() AND s.query LIKE '%p.index_vacuum_count%'
                AND s.query NOT LIKE '%pg_stat_statements%'",
        )
        .await
    };
    let before = asked().await;
    for _ in 0..3 {
        let m = exporter.scrape().await;
        let l = [("collector", "vacuum_progress"), ("datname", db.name.as_str())];
        assert_eq!(m.value("pg_scrape_collector_success", &l), Some(1.0));
        let busy = m
            .value("pg_autovacuum_workers_busy", &[("datname", db.name.as_str())])
            .expect("pg_autovacuum_workers_busy");
        assert!(busy <= 1.0, "{busy}");
    }
    let asked = asked().await - before;
    assert!(
        asked <= 1.0,
        "the progress statement ran {asked} times in 3 scrapes"
    );
}
