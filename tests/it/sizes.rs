//! `sizes` against real files and a table locked by DDL.

use crate::harness;

use std::time::{Duration, Instant};

#[tokio::test]
async fn sizes_match_the_server_and_skip_a_locked_table() {
    let pg = harness::cluster();
    let db = pg.fresh_db().await;
    db.batch(
        "CREATE TABLE docs (id int PRIMARY KEY, body text);
         INSERT INTO docs SELECT g, repeat(md5(g::text), 200) FROM generate_series(1, 2000) g;
         CREATE TABLE locked (id int PRIMARY KEY);
         INSERT INTO locked SELECT generate_series(1, 100);",
    )
    .await;
    let exporter = pg
        .spawn_exporter(&db.name, &[("PGMAINT_COLLECTORS", "sizes")])
        .await;
    let m = exporter.scrape().await;
    let v = |m: &harness::Samples, name: &str, rel: &str| {
        m.value(name, &[("datname", &db.name), ("relname", rel)])
    };
    let heap = db.scalar_f64("SELECT pg_relation_size('docs')::float8").await;
    let toast = db
        .scalar_f64(
            "SELECT pg_total_relation_size(reltoastrelid)::float8 FROM pg_class WHERE relname = 'docs'",
        )
        .await;
    let idx = db
        .scalar_f64("SELECT pg_relation_size('docs_pkey')::float8")
        .await;
    assert_eq!(v(&m, "pg_table_size_bytes", "docs"), Some(heap));
    assert_eq!(v(&m, "pg_table_toast_size_bytes", "docs"), Some(toast));
    assert_eq!(v(&m, "pg_table_indexes_size_bytes", "docs"), Some(idx));
    assert_eq!(
        m.value("pg_index_size_bytes", &[("indexrelname", "docs_pkey")]),
        Some(idx)
    );
    assert!(v(&m, "pg_table_size_bytes", "locked").is_some());
    assert_eq!(harness::promtool_check(&m.raw), "");

    // DDL holds an ACCESS EXCLUSIVE lock: sizes of that table are skipped
    // rather than queueing behind it; everything else is still measured.
    let holder = db.session().await;
    holder
        .batch_execute("BEGIN; LOCK TABLE locked IN ACCESS EXCLUSIVE MODE;")
        .await
        .unwrap();
    let started = Instant::now();
    let m = exporter.scrape().await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "scrape took {:?}",
        started.elapsed()
    );
    assert_eq!(
        m.value(
            "pg_scrape_collector_success",
            &[("collector", "sizes"), ("datname", &db.name)]
        ),
        Some(1.0)
    );
    assert_eq!(v(&m, "pg_table_size_bytes", "locked"), None);
    assert_eq!(
        m.value("pg_index_size_bytes", &[("indexrelname", "locked_pkey")]),
        None
    );
    assert_eq!(v(&m, "pg_table_size_bytes", "docs"), Some(heap));
    holder.batch_execute("ROLLBACK").await.unwrap();
    let m = exporter.scrape().await;
    assert!(v(&m, "pg_table_size_bytes", "locked").is_some());
}
