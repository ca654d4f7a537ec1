//! Per-database fan-out under the connection cap: every database gets its
//! collectors, and the exporter never holds more connections than allowed.

mod harness;

#[tokio::test]
async fn many_databases_share_a_small_connection_cap() {
    let pg = harness::cluster();
    let mut dbs = Vec::new();
    for _ in 0..5 {
        let db = pg.fresh_db().await;
        db.batch("CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t SELECT generate_series(1, 10);")
            .await;
        dbs.push(db);
    }
    let names: Vec<String> = dbs.iter().map(|d| d.name.clone()).collect();
    let include = names.join(",");
    let exporter = pg
        .spawn_exporter(
            &names[0],
            &[
                ("PGMAINT_INCLUDE_DATABASES", &include),
                ("PGMAINT_MAX_CONNECTIONS", "2"),
            ],
        )
        .await;
    let observer = pg.client("postgres").await;
    for _ in 0..3 {
        let m = exporter.scrape().await;
        assert_eq!(m.value("pgmaint_exporter_databases", &[]), Some(5.0));
        for name in &names {
            assert_eq!(
                m.value(
                    "pg_scrape_collector_success",
                    &[("collector", "tables"), ("datname", name)]
                ),
                Some(1.0),
                "tables in {name}: {}",
                exporter.logs()
            );
        }
        let open = m.value("pgmaint_exporter_connections_open", &[]).unwrap();
        assert!((1.0..=2.0).contains(&open), "open connections {open}");
        let on_server: i64 = observer
            .query_one(
                "SELECT count(*) FROM pg_stat_activity
                  WHERE application_name = 'pgmaint-exporter' AND datname = ANY($1)",
                &[&names],
            )
            .await
            .unwrap()
            .get(0);
        assert!(on_server <= 2, "{on_server} exporter sessions on the server");
    }
}
