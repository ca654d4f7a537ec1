//! `indexes` against real indexes: never used, used, primary key, duplicate,
//! and one left invalid by a failed CREATE INDEX CONCURRENTLY.

mod harness;

#[tokio::test]
async fn unused_duplicate_and_invalid_indexes() {
    let pg = harness::cluster();
    let db = pg.fresh_db().await;
    db.batch(
        "CREATE TABLE t (id int PRIMARY KEY, a int, b int, c int, d int);
         INSERT INTO t SELECT g, g, g, g, g FROM generate_series(1, 1000) g;
         CREATE INDEX t_a_never ON t (a);
         CREATE INDEX t_b_used ON t (b);
         CREATE INDEX t_d_first ON t (d);
         CREATE INDEX t_d_again ON t (d);
         CREATE INDEX t_c_plain ON t (c);
         CREATE UNIQUE INDEX t_c_unique ON t (c);
         CREATE TABLE u (x int);
         INSERT INTO u VALUES (1), (1);",
    )
    .await;
    // CONCURRENTLY cannot run in a transaction block: its own batch. The
    // unique violation leaves the index behind, invalid.
    let failed = db
        .client
        .batch_execute("CREATE UNIQUE INDEX CONCURRENTLY u_x ON u (x)")
        .await;
    assert!(failed.is_err(), "duplicate keys must fail the unique index");
    db.batch(
        "SET enable_seqscan = off; SET enable_bitmapscan = off;
         SELECT * FROM t WHERE b = 5;
         SELECT pg_stat_force_next_flush();",
    )
    .await;

    let exporter = pg.spawn_exporter(&db.name, &[]).await;
    let m = exporter.scrape().await;
    let v =
        |name: &str, index: &str| m.value(name, &[("datname", db.name.as_str()), ("indexrelname", index)]);
    assert_eq!(v("pg_index_scans_total", "t_b_used"), Some(1.0));
    assert_eq!(v("pg_index_tuples_read_total", "t_b_used"), Some(1.0));
    assert_eq!(v("pg_index_tuples_fetched_total", "t_b_used"), Some(1.0));
    assert_eq!(v("pg_index_unused", "t_b_used"), Some(0.0));
    assert_eq!(v("pg_index_unused", "t_a_never"), Some(1.0));
    // Never scanned, but it enforces the key: not "unused".
    assert_eq!(v("pg_index_scans_total", "t_pkey"), Some(0.0));
    assert_eq!(v("pg_index_unused", "t_pkey"), Some(0.0));
    assert_eq!(v("pg_index_unused", "t_c_unique"), Some(0.0));

    // Twins: the older one is kept. A plain index beside an identical unique
    // one is the duplicate even though it is older.
    assert_eq!(v("pg_index_duplicate", "t_d_first"), Some(0.0));
    assert_eq!(v("pg_index_duplicate", "t_d_again"), Some(1.0));
    assert_eq!(v("pg_index_duplicate", "t_c_plain"), Some(1.0));
    assert_eq!(v("pg_index_duplicate", "t_c_unique"), Some(0.0));
    assert_eq!(v("pg_index_duplicate", "t_a_never"), Some(0.0));

    assert_eq!(v("pg_index_invalid", "u_x"), Some(1.0));
    assert_eq!(v("pg_index_invalid", "t_b_used"), Some(0.0));
    let size = db.scalar_f64("SELECT pg_relation_size('t_b_used')::float8").await;
    assert_eq!(v("pg_index_size_bytes", "t_b_used"), Some(size));
    assert!(size > 8192.0);
    assert_eq!(
        m.find("pg_index_unused", &[("datname", db.name.as_str())])
            .count(),
        8
    );
    assert_eq!(harness::promtool_check(&m.raw), "");
}

#[tokio::test]
async fn stats_reset_time_is_published() {
    let pg = harness::cluster();
    let db = pg.fresh_db().await;
    db.batch("CREATE TABLE t (id int PRIMARY KEY)").await;
    let exporter = pg.spawn_exporter(&db.name, &[]).await;
    let reset = |m: &harness::Samples| {
        m.value(
            "pg_index_stats_reset_timestamp_seconds",
            &[("datname", db.name.as_str())],
        )
    };
    let m = exporter.scrape().await;
    assert_eq!(reset(&m), None, "a new database's statistics were never reset");
    let before = db.scalar_f64("SELECT extract(epoch FROM now())::float8").await;
    db.batch("SELECT pg_stat_reset()").await;
    let m = exporter.scrape().await;
    let at = reset(&m).expect("stats_reset after pg_stat_reset()");
    assert!((before..before + 60.0).contains(&at), "{at} vs {before}");
}

/// The report's `qualified()` against the server's own `quote_ident()`: every
/// key word the server knows, and names that trip naive quoting.
#[tokio::test]
async fn report_identifiers_are_quoted_like_quote_ident() {
    use pgmaint_exporter::report::findings::qualified;
    let pg = harness::cluster();
    let db = pg.fresh_db().await;
    let mut names: Vec<String> = [
        "select", "user", "Select", "USER", "t", "users", "index", "between", "json_table",
        "system_user", "merge_action", "a b", "a\"b", "\"", "it's", "é", "naïve", "日本",
        "1abc", "_x1", "a$b", "a-b", "", " ", "public", "pg_catalog", "x".repeat(63).as_str(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let keywords = db
        .client
        .query("SELECT word FROM pg_get_keywords()", &[])
        .await
        .unwrap();
    assert!(keywords.len() > 400, "pg_get_keywords() returned {}", keywords.len());
    names.extend(keywords.iter().map(|r| r.get::<_, String>(0)));
    let mut checked = 0;
    for schema in &names {
        let server: String = db
            .client
            .query_one("SELECT quote_ident($1) || '.' || quote_ident($2)", &[schema, &"t"])
            .await
            .unwrap()
            .get(0);
        let ours = qualified(schema, "t");
        // Words only a newer server (16, 17) reserves are quoted for every
        // server: harmless on this one, and checked to parse below.
        let newer = ["system_user", "json", "json_array", "json_arrayagg", "json_object",
            "json_objectagg", "json_exists", "json_query", "json_scalar", "json_serialize",
            "json_table", "json_value", "merge_action"];
        if ours != server && newer.contains(&schema.as_str()) {
            assert_eq!(ours, format!("\"{schema}\".t"));
        } else {
            assert_eq!(ours, server, "schema {schema:?}");
        }
        checked += 1;
    }
    assert_eq!(checked, names.len());
    // And the result parses: a schema named select with a table named user.
    db.batch("CREATE SCHEMA \"select\"; CREATE TABLE \"select\".\"user\" (id int)").await;
    let name = qualified("select", "user");
    assert_eq!(name, "\"select\".\"user\"");
    db.batch(&format!("VACUUM (ANALYZE) {name}")).await;
}
