//! `statements` against a real pg_stat_statements (the test cluster preloads
//! it): a distinctive statement run exactly 7 times in the test's database.

use crate::harness;

const ON: (&str, &str) = ("PGMAINT_COLLECTORS", "+statements");

/// Runs the marker statement 7 times and returns (marker, its queryid).
async fn seven_calls(db: &harness::Db) -> (String, String) {
    let marker = format!("stmt_marker_{}", db.name);
    // Long enough that its normalized text ("SELECT $1 AS stmt_marker_…, $2 AS c0, …")
    // passes 200 characters.
    let cols: Vec<String> = (0..40).map(|i| format!("{i} AS c{i}")).collect();
    let sql = format!("SELECT 1 AS {marker},\n  {}", cols.join(",   "));
    for _ in 0..7 {
        db.batch(&sql).await;
    }
    // Four more distinct statements, so a limit of 3 has to cut.
    for i in 0..4 {
        db.batch(&format!("SELECT {i} AS other_{i}_{marker}")).await;
    }
    let row = db
        .client
        .query_one(
            "SELECT queryid::text FROM pg_stat_statements
              WHERE query LIKE '%' || $1 || ',%'
                AND dbid = (SELECT oid FROM pg_database WHERE datname = current_database())",
            &[&marker],
        )
        .await
        .unwrap();
    (marker, row.get(0))
}

#[tokio::test]
async fn calls_of_a_statement_and_its_text() {
    let pg = harness::cluster();
    let db = pg.fresh_db().await;
    db.batch("CREATE EXTENSION pg_stat_statements").await;
    let (marker, queryid) = seven_calls(&db).await;
    let key = [
        ("datname", db.name.as_str()),
        ("user", "postgres"),
        ("queryid", queryid.as_str()),
        ("toplevel", "true"),
    ];

    let m = pg.spawn_exporter(&db.name, &[ON]).await.scrape().await;
    assert_eq!(harness::promtool_check(&m.raw), "");
    assert_eq!(
        m.value(
            "pg_scrape_collector_success",
            &[("collector", "statements"), ("datname", "")]
        ),
        Some(1.0)
    );
    assert_eq!(m.value("pg_stat_statements_calls_total", &key), Some(7.0));
    // The statement returns one row per call.
    assert_eq!(m.value("pg_stat_statements_rows_total", &key), Some(7.0));
    let total = m
        .value("pg_stat_statements_exec_time_seconds_total", &key)
        .unwrap();
    let mean = m
        .value("pg_stat_statements_mean_exec_time_seconds", &key)
        .unwrap();
    assert!(total > 0.0 && total < 5.0, "{total}");
    assert!((mean * 7.0 - total).abs() < 1e-6, "mean {mean} total {total}");
    assert!(m
        .value("pg_stat_statements_shared_blks_hit_total", &key)
        .is_some());
    assert!(m.value("pg_stat_statements_wal_bytes_total", &key).is_some());
    assert!(m
        .value("pg_stat_statements_shared_blk_read_time_seconds_total", &key)
        .is_some());
    assert!(m.value("pg_stat_statements_dealloc_total", &[]).is_some());
    assert_eq!(m.types["pg_stat_statements_calls_total"], "counter");
    // No text unless asked for, and never in the other families' labels.
    assert!(!m.has("pg_stat_statements_query_info"));
    assert!(!m.raw.contains(&marker), "query text leaked into the output");

    let m = pg
        .spawn_exporter(&db.name, &[ON, ("PGMAINT_STATEMENTS_QUERY_TEXT", "on")])
        .await
        .scrape()
        .await;
    assert_eq!(harness::promtool_check(&m.raw), "");
    let info: Vec<&harness::Series> = m.find("pg_stat_statements_query_info", &key).collect();
    assert_eq!(info.len(), 1, "{info:?}");
    assert_eq!(info[0].value, 1.0);
    let text = &info[0].labels["query"];
    assert_eq!(text.chars().count(), 200, "{text}");
    // Whitespace (the newline and the runs of spaces) is collapsed.
    let expected = format!("SELECT $1 AS {marker}, $2 AS c0, $3 AS c1, ");
    assert!(text.starts_with(&expected), "{text}");
    assert!(!text.contains('\n') && !text.contains("  "), "{text}");
}

#[tokio::test]
async fn limit_applies_per_database() {
    let pg = harness::cluster();
    let db = pg.fresh_db().await;
    db.batch("CREATE EXTENSION pg_stat_statements").await;
    seven_calls(&db).await;
    let d = [("datname", db.name.as_str())];
    let m = pg
        .spawn_exporter(&db.name, &[ON, ("PGMAINT_STATEMENTS_LIMIT", "3")])
        .await
        .scrape()
        .await;
    assert_eq!(m.find("pg_stat_statements_calls_total", &d).count(), 3);
    assert_eq!(
        m.find("pg_stat_statements_exec_time_seconds_total", &d).count(),
        3
    );
    let m = pg.spawn_exporter(&db.name, &[ON]).await.scrape().await;
    assert!(m.find("pg_stat_statements_calls_total", &d).count() >= 7);
}

#[tokio::test]
async fn missing_extension_fails_only_this_collector() {
    let pg = harness::cluster();
    let db = pg.fresh_db().await;
    let exporter = pg.spawn_exporter(&db.name, &[ON]).await;
    let m = exporter.scrape().await;
    let success = |c| {
        m.value(
            "pg_scrape_collector_success",
            &[("collector", c), ("datname", "")],
        )
    };
    assert_eq!(success("statements"), Some(0.0));
    assert_eq!(success("activity"), Some(1.0));
    assert!(!m.has("pg_stat_statements_calls_total"));
    let logs = exporter.logs();
    assert!(logs.contains("CREATE EXTENSION pg_stat_statements"), "{logs}");
    // Off by default.
    let m = pg.spawn_exporter(&db.name, &[]).await.scrape().await;
    assert_eq!(success_of(&m, "statements"), None);
}

fn success_of(m: &harness::Samples, collector: &str) -> Option<f64> {
    m.value(
        "pg_scrape_collector_success",
        &[("collector", collector), ("datname", "")],
    )
}
