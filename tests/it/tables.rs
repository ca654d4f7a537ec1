//! `tables` against real tables: several databases, dead tuples and VACUUM,
//! reloptions moving the autovacuum trigger points, partitioned tables.

use crate::harness;

use std::time::Duration;

#[tokio::test]
async fn databases_are_labelled_excluded_and_dropped_cleanly() {
    let pg = harness::cluster();
    let a = pg.fresh_db().await;
    let b = pg.fresh_db().await;
    let x = pg.fresh_db().await;
    for (db, rows) in [(&a, 10), (&b, 20), (&x, 30)] {
        db.batch(&format!(
            "CREATE TABLE t AS SELECT g FROM generate_series(1, {rows}) g; SELECT pg_stat_force_next_flush();"
        ))
        .await;
    }
    let all = format!("{},{},{}", a.name, b.name, x.name);
    let exporter = pg
        .spawn_exporter(
            &a.name,
            &[
                ("PGMAINT_INCLUDE_DATABASES", all.as_str()),
                ("PGMAINT_EXCLUDE_DATABASES", x.name.as_str()),
                ("PGMAINT_DATABASE_REFRESH_INTERVAL", "0s"),
            ],
        )
        .await;
    let live = |m: &harness::Samples, db: &str| {
        m.value(
            "pg_table_live_tuples",
            &[("datname", db), ("schemaname", "public"), ("relname", "t")],
        )
    };
    let m = exporter.scrape().await;
    assert_eq!(live(&m, &a.name), Some(10.0));
    assert_eq!(live(&m, &b.name), Some(20.0));
    assert_eq!(m.find("pg_table_live_tuples", &[("datname", &x.name)]).count(), 0);
    assert_eq!(
        m.value("pgmaint_exporter_tables_omitted", &[("datname", &a.name)]),
        Some(0.0)
    );

    // The exporter holds a connection to b: only FORCE can drop it.
    let admin = pg.client("postgres").await;
    admin
        .batch_execute(&format!("DROP DATABASE \"{}\" WITH (FORCE)", b.name))
        .await
        .unwrap();
    let m = exporter.scrape().await;
    assert_eq!(live(&m, &a.name), Some(10.0));
    assert!(
        !m.series.iter().any(|s| s.labels.get("datname") == Some(&b.name)),
        "series of the dropped database remain"
    );
    let failed: Vec<_> = m
        .find("pg_scrape_collector_success", &[])
        .filter(|s| s.value != 1.0)
        .collect();
    assert!(failed.is_empty(), "{failed:?}");
    assert_eq!(
        m.value(
            "pg_scrape_collector_success",
            &[("collector", "tables"), ("datname", &a.name)]
        ),
        Some(1.0)
    );
}

#[tokio::test]
async fn dead_tuples_vacuum_and_trigger_points_follow_the_table() {
    let pg = harness::cluster();
    let db = pg.fresh_db().await;
    db.batch(
        "CREATE TABLE d WITH (autovacuum_enabled = off) AS SELECT g FROM generate_series(1, 1000) g;
         DELETE FROM d WHERE g <= 300;
         SELECT pg_stat_force_next_flush();",
    )
    .await;
    let exporter = pg.spawn_exporter(&db.name, &[]).await;
    let l = [("datname", db.name.as_str()), ("relname", "d")];
    let age_sql = "SELECT age(relfrozenxid)::float8 FROM pg_class WHERE relname = 'd'";
    let age_before = db.scalar_f64(age_sql).await;
    let m = exporter.scrape().await;
    let age_after = db.scalar_f64(age_sql).await;
    let v = |m: &harness::Samples, name: &str| m.value(name, &l);
    assert_eq!(v(&m, "pg_table_dead_tuples"), Some(300.0));
    assert_eq!(v(&m, "pg_table_live_tuples"), Some(700.0));
    assert_eq!(v(&m, "pg_table_modified_since_analyze_tuples"), Some(1300.0));
    assert_eq!(v(&m, "pg_table_inserted_since_vacuum_tuples"), Some(1000.0));
    assert_eq!(v(&m, "pg_table_last_vacuum_timestamp_seconds"), None);
    assert_eq!(v(&m, "pg_table_vacuums_total"), Some(0.0));
    // Never vacuumed or analyzed: reltuples is -1, which autovacuum takes as 0.
    assert_eq!(v(&m, "pg_table_autovacuum_vacuum_trigger_tuples"), Some(50.0));
    assert_eq!(v(&m, "pg_table_autovacuum_insert_trigger_tuples"), Some(1000.0));
    assert_eq!(v(&m, "pg_table_autovacuum_analyze_trigger_tuples"), Some(50.0));
    assert_eq!(v(&m, "pg_table_autovacuum_enabled"), Some(0.0));
    let heap = db.scalar_f64("SELECT pg_relation_size('d')::float8").await;
    assert_eq!(v(&m, "pg_table_size_bytes"), Some(heap));
    assert!(heap >= 8192.0);
    assert_eq!(v(&m, "pg_table_indexes_size_bytes"), Some(0.0));
    assert_eq!(
        v(&m, "pg_table_toast_size_bytes"),
        None,
        "an int table has no TOAST table"
    );
    // Other tests burn xids meanwhile: bracket the exported age.
    let exported = v(&m, "pg_table_frozen_xid_age").unwrap();
    assert!(
        (age_before..=age_after).contains(&exported) && exported >= 1.0,
        "{exported} not in {age_before}..={age_after}"
    );

    db.batch("VACUUM d").await;
    let m = exporter.scrape().await;
    assert_eq!(v(&m, "pg_table_dead_tuples"), Some(0.0));
    assert_eq!(v(&m, "pg_table_inserted_since_vacuum_tuples"), Some(0.0));
    assert_eq!(v(&m, "pg_table_vacuums_total"), Some(1.0));
    let first = v(&m, "pg_table_last_vacuum_timestamp_seconds").expect("last_vacuum after VACUUM");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!((now - 60.0..=now + 1.0).contains(&first), "{first} vs {now}");
    // VACUUM counted 700 tuples: the trigger points scale with them.
    let close = |got: Option<f64>, want: f64| got.is_some_and(|g| (g - want).abs() < 1e-6);
    assert!(close(v(&m, "pg_table_autovacuum_vacuum_trigger_tuples"), 190.0));
    assert!(close(v(&m, "pg_table_autovacuum_insert_trigger_tuples"), 1140.0));
    assert!(close(v(&m, "pg_table_autovacuum_analyze_trigger_tuples"), 120.0));

    tokio::time::sleep(Duration::from_millis(1100)).await;
    db.batch("VACUUM d").await;
    let m = exporter.scrape().await;
    let second = v(&m, "pg_table_last_vacuum_timestamp_seconds").unwrap();
    assert!(
        second >= first + 1.0,
        "last_vacuum moved from {first} to {second}"
    );
    assert_eq!(v(&m, "pg_table_vacuums_total"), Some(2.0));
}

#[tokio::test]
async fn reloptions_and_partitions() {
    let pg = harness::cluster();
    let db = pg.fresh_db().await;
    db.batch(
        "CREATE TABLE r10 (id int) WITH (autovacuum_vacuum_threshold = 10, autovacuum_vacuum_scale_factor = 0);
         CREATE TABLE off (id int) WITH (autovacuum_enabled = false);
         CREATE TABLE young (id int) WITH (autovacuum_freeze_max_age = 150000000);
         CREATE TABLE noins (id int) WITH (autovacuum_vacuum_insert_threshold = -1);
         CREATE TABLE plain (id int, body text);
         CREATE TABLE p (id int, k int) PARTITION BY RANGE (k);
         CREATE TABLE p1 PARTITION OF p FOR VALUES FROM (0) TO (10);
         CREATE TABLE p2 PARTITION OF p FOR VALUES FROM (10) TO (20);
         INSERT INTO p SELECT g, g % 20 FROM generate_series(1, 100) g;
         SELECT pg_stat_force_next_flush();",
    )
    .await;
    let exporter = pg.spawn_exporter(&db.name, &[]).await;
    let m = exporter.scrape().await;
    let v = |name: &str, table: &str| m.value(name, &[("datname", db.name.as_str()), ("relname", table)]);
    assert_eq!(v("pg_table_autovacuum_vacuum_trigger_tuples", "r10"), Some(10.0));
    assert_eq!(
        v("pg_table_autovacuum_vacuum_trigger_tuples", "plain"),
        Some(50.0)
    );
    assert_eq!(v("pg_table_autovacuum_enabled", "off"), Some(0.0));
    assert_eq!(v("pg_table_autovacuum_enabled", "plain"), Some(1.0));
    assert_eq!(
        v("pg_table_autovacuum_freeze_max_age", "young"),
        Some(150_000_000.0)
    );
    assert_eq!(
        v("pg_table_autovacuum_freeze_max_age", "plain"),
        Some(200_000_000.0)
    );
    assert_eq!(v("pg_table_autovacuum_insert_trigger_tuples", "noins"), None);
    assert_eq!(
        v("pg_table_autovacuum_insert_trigger_tuples", "plain"),
        Some(1000.0)
    );
    // A text column brings a TOAST table: empty heap plus its one-page index.
    assert_eq!(v("pg_table_toast_size_bytes", "plain"), Some(8192.0));
    // The partitioned parent has no statistics: its partitions stand for it.
    assert_eq!(v("pg_table_live_tuples", "p"), None);
    assert_eq!(v("pg_table_autovacuum_vacuum_trigger_tuples", "p"), None);
    assert_eq!(v("pg_table_live_tuples", "p1"), Some(50.0));
    assert_eq!(v("pg_table_live_tuples", "p2"), Some(50.0));
    assert_eq!(
        m.types.get("pg_table_vacuums_total").map(String::as_str),
        Some("counter")
    );
    assert_eq!(harness::promtool_check(&m.raw), "");
}

/// Autovacuum freezes a TOAST table on its own: a heap frozen just now says
/// nothing about it. `VACUUM (FREEZE, PROCESS_TOAST false)` leaves the heap
/// young and the TOAST table old; the exported age must be the TOAST's.
#[tokio::test]
async fn xid_age_is_the_older_of_heap_and_toast() {
    const BURNED: usize = 200;
    let pg = harness::cluster();
    let db = pg.fresh_db().await;
    db.batch(
        "CREATE TABLE toasty (id int, body text) WITH (autovacuum_enabled = off,
                                                      toast.autovacuum_enabled = off);
         INSERT INTO toasty SELECT g, string_agg(md5(g::text || h::text), '')
           FROM generate_series(1, 20) g, generate_series(1, 200) h GROUP BY g;",
    )
    .await;
    for _ in 0..BURNED {
        db.batch("SELECT txid_current()").await;
    }
    db.batch("VACUUM (FREEZE, PROCESS_TOAST false) toasty").await;
    let ages = "SELECT age(c.relfrozenxid)::float8, age(t.relfrozenxid)::float8
                  FROM pg_class c JOIN pg_class t ON t.oid = c.reltoastrelid
                 WHERE c.relname = 'toasty'";
    let read = || async {
        let row = db.client.query_one(ages, &[]).await.unwrap();
        (row.get::<_, f64>(0), row.get::<_, f64>(1))
    };
    let exporter = pg
        .spawn_exporter(&db.name, &[("PGMAINT_COLLECTORS", "tables")])
        .await;
    let (heap_before, toast_before) = read().await;
    let m = exporter.scrape().await;
    let (_, toast_after) = read().await;
    // The situation: TOAST data, the heap frozen after the xids, the TOAST not.
    let toast_pages = db
        .scalar_f64("SELECT pg_relation_size(reltoastrelid)::float8 FROM pg_class WHERE relname = 'toasty'")
        .await;
    assert!(toast_pages > 0.0, "no TOAST data");
    assert!(
        toast_before >= heap_before + BURNED as f64,
        "heap {heap_before}, TOAST {toast_before}"
    );
    // Other tests burn xids meanwhile: bracket the exported age.
    let exported = m
        .value(
            "pg_table_frozen_xid_age",
            &[("datname", db.name.as_str()), ("relname", "toasty")],
        )
        .unwrap();
    assert!(
        (toast_before..=toast_after).contains(&exported),
        "exported {exported}, TOAST age {toast_before}..={toast_after}, heap {heap_before}"
    );
}

/// Real multixacts: row locks shared by two transactions (`FOR SHARE`)
/// turn each row's xmax into a MultiXact ID. One session holds a share lock
/// on every row; each row is then share-locked by a transaction of its own
/// (a backend reuses the multixact of an identical set of lockers), so every
/// row gets a new multixact and the table's relminmxid ages by as many.
#[tokio::test]
async fn shared_row_locks_age_the_table_in_multixacts() {
    const ROWS: i64 = 500;
    let pg = harness::cluster();
    let db = pg.fresh_db().await;
    db.batch(&format!(
        "CREATE TABLE shared (id int PRIMARY KEY)
           WITH (autovacuum_enabled = off, autovacuum_multixact_freeze_max_age = 10000);
         INSERT INTO shared SELECT generate_series(1, {ROWS});"
    ))
    .await;
    let age_sql = "SELECT mxid_age(relminmxid)::float8 FROM pg_class WHERE relname = 'shared'";
    let age_start = db.scalar_f64(age_sql).await;
    let holder = db.multixacts("shared", ROWS).await;
    holder.batch_execute("COMMIT").await.unwrap();
    let multis = db
        .scalar_f64(
            "SELECT count(DISTINCT xmax::text)::float8 FROM shared
              WHERE (SELECT count(*) FROM pg_get_multixact_members(xmax::text::xid)) = 2",
        )
        .await;
    assert_eq!(multis, ROWS as f64, "a multixact of its own on every row");

    let exporter = pg
        .spawn_exporter(&db.name, &[("PGMAINT_COLLECTORS", "tables,database")])
        .await;
    let before = db.scalar_f64(age_sql).await;
    let m = exporter.scrape().await;
    let after = db.scalar_f64(age_sql).await;
    assert!(before >= age_start + ROWS as f64, "{age_start} → {before}");
    let l = [("datname", db.name.as_str()), ("relname", "shared")];
    let age = m.value("pg_table_min_mxid_age", &l).unwrap();
    assert!((before..=after).contains(&age), "{age} not in {before}..={after}");
    assert_eq!(
        m.value("pg_table_autovacuum_multixact_freeze_max_age", &l),
        Some(10000.0)
    );
    // The member space: superuser may list pg_multixact/members. Far from
    // half full, so the effective threshold is the setting.
    let setting = db
        .scalar_f64("SELECT current_setting('autovacuum_multixact_freeze_max_age')::float8")
        .await;
    let used = m.value("pg_multixact_members_used_ratio", &[]).unwrap();
    assert!(used > 0.0 && used < 0.01, "{used}");
    assert!(m.value("pg_multixact_members_size_bytes", &[]).unwrap() >= 8192.0);
    assert_eq!(
        m.value("pg_multixact_members_freeze_threshold", &[]),
        Some(setting)
    );
    assert_eq!(harness::promtool_check(&m.raw), "");
}

/// `PGMAINT_MAX_TABLES_PER_DATABASE` keeps tables that need attention first:
/// a small table past its MultiXact freeze max age (a reloption of 10000,
/// passed with real shared row locks) is due for a forced vacuum and must
/// win over a larger, healthy one. Eleven larger tables, each older in XIDs
/// than the next (the ten oldest always count as needing attention), in a
/// cluster of its own so nothing else moves the ages.
#[tokio::test]
async fn a_table_past_its_multixact_freeze_max_age_needs_attention() {
    const MULTIS: i64 = 10_200;
    let pg = harness::start_cluster(None, &["autovacuum = off"]);
    let db = pg.fresh_db().await;
    for i in 0..11 {
        db.batch(&format!(
            "CREATE TABLE filler{i:02} AS SELECT g, repeat('x', 200) AS pad FROM generate_series(1, 5000) g;
             SELECT pg_stat_force_next_flush();"
        ))
        .await;
        db.batch(&format!("VACUUM ANALYZE filler{i:02}")).await;
        db.batch("SELECT txid_current()").await;
    }
    db.batch(&format!(
        "CREATE TABLE shared (id int PRIMARY KEY) WITH (autovacuum_multixact_freeze_max_age = 10000);
         INSERT INTO shared SELECT generate_series(1, {MULTIS});
         SELECT pg_stat_force_next_flush();"
    ))
    .await;
    db.batch("VACUUM ANALYZE shared").await;
    let exporter = pg
        .spawn_exporter(
            &db.name,
            &[
                ("PGMAINT_COLLECTORS", "tables"),
                ("PGMAINT_MAX_TABLES_PER_DATABASE", "11"),
            ],
        )
        .await;
    let kept = |m: &harness::Samples| {
        let mut t: Vec<String> = m
            .find("pg_table_live_tuples", &[("datname", db.name.as_str())])
            .map(|s| s.labels["relname"].clone())
            .collect();
        t.sort();
        t
    };
    // Healthy: the ten oldest fillers and the largest of the rest.
    let m = exporter.scrape().await;
    assert!(!kept(&m).contains(&"shared".to_string()), "{:?}", kept(&m));
    assert!(kept(&m).contains(&"filler10".to_string()), "{:?}", kept(&m));

    let holder = db.multixacts("shared", MULTIS).await;
    holder.batch_execute("COMMIT").await.unwrap();
    let age = db
        .scalar_f64("SELECT mxid_age(relminmxid)::float8 FROM pg_class WHERE relname = 'shared'")
        .await;
    assert!(age > 10000.0, "relminmxid age {age}");

    let m = exporter.scrape().await;
    let l = [("datname", db.name.as_str()), ("relname", "shared")];
    assert!(kept(&m).contains(&"shared".to_string()), "{:?}", kept(&m));
    assert!(!kept(&m).contains(&"filler10".to_string()), "{:?}", kept(&m));
    assert_eq!(m.value("pg_table_min_mxid_age", &l), Some(age));
    assert_eq!(
        m.value(
            "pgmaint_exporter_tables_omitted",
            &[("datname", db.name.as_str())]
        ),
        Some(1.0)
    );
}

/// The tuple and vacuum/analyze counts are read as never NULL (a NULL would
/// fail the collector, not read as 0): an empty table without TOAST table or
/// index, a materialized view and statistics just reset all give real zeros
/// and a successful collector, while "never vacuumed" stays absent.
#[tokio::test]
async fn counts_of_tables_without_activity_are_zero_not_missing() {
    let pg = harness::cluster();
    let db = pg.fresh_db().await;
    db.batch(
        "CREATE TABLE empty_t (id int);
         CREATE MATERIALIZED VIEW mv AS SELECT 1 AS x;
         SELECT pg_stat_force_next_flush();",
    )
    .await;
    db.batch("SELECT pg_stat_reset()").await;
    let exporter = pg
        .spawn_exporter(&db.name, &[("PGMAINT_COLLECTORS", "tables")])
        .await;
    let m = exporter.scrape().await;
    assert_eq!(
        m.value(
            "pg_scrape_collector_success",
            &[("collector", "tables"), ("datname", db.name.as_str())]
        ),
        Some(1.0)
    );
    for table in ["empty_t", "mv"] {
        let l = [("datname", db.name.as_str()), ("relname", table)];
        for family in [
            "pg_table_vacuums_total",
            "pg_table_autovacuums_total",
            "pg_table_analyzes_total",
            "pg_table_autoanalyzes_total",
        ] {
            assert_eq!(m.value(family, &l), Some(0.0), "{family} of {table}");
        }
        for family in [
            "pg_table_live_tuples",
            "pg_table_dead_tuples",
            "pg_table_modified_since_analyze_tuples",
            "pg_table_frozen_xid_age",
        ] {
            assert!(m.value(family, &l).is_some(), "{family} of {table}");
        }
        assert_eq!(m.value("pg_table_last_vacuum_timestamp_seconds", &l), None);
    }
    let l = [("datname", db.name.as_str()), ("relname", "empty_t")];
    // Never analyzed: reltuples -1 counts as 0, as in autovacuum.
    assert_eq!(
        m.value("pg_table_autovacuum_vacuum_trigger_tuples", &l),
        Some(50.0)
    );
    assert_eq!(m.value("pg_table_live_tuples", &l), Some(0.0));
    assert_eq!(m.value("pg_table_dead_tuples", &l), Some(0.0));
    assert_eq!(m.value("pg_table_idx_scans_total", &l), None, "no index");
}

/// Every `pg_table_*` family `tables` reads from pg_stat_user_tables, and the
/// XID/MultiXact ages it reads from pg_class, as the view itself gives them.
const STAT_FAMILIES: &[&str] = &[
    "pg_table_live_tuples",
    "pg_table_dead_tuples",
    "pg_table_modified_since_analyze_tuples",
    "pg_table_inserted_since_vacuum_tuples",
    "pg_table_last_vacuum_timestamp_seconds",
    "pg_table_last_autovacuum_timestamp_seconds",
    "pg_table_last_analyze_timestamp_seconds",
    "pg_table_last_autoanalyze_timestamp_seconds",
    "pg_table_vacuums_total",
    "pg_table_autovacuums_total",
    "pg_table_analyzes_total",
    "pg_table_autoanalyzes_total",
    "pg_table_seq_scans_total",
    "pg_table_idx_scans_total",
    "pg_table_vacuum_time_seconds_total",
    "pg_table_autovacuum_time_seconds_total",
    "pg_table_analyze_time_seconds_total",
    "pg_table_autoanalyze_time_seconds_total",
    "pg_table_frozen_xid_age",
    "pg_table_min_mxid_age",
];

/// The same columns, in `STAT_FAMILIES` order, straight from the view (the
/// PostgreSQL 18 time totals through to_jsonb, NULL before 18).
const STAT_SQL: &str = "SELECT s.schemaname::text, s.relname::text,
       s.n_live_tup::float8, s.n_dead_tup::float8, s.n_mod_since_analyze::float8, s.n_ins_since_vacuum::float8,
       extract(epoch FROM s.last_vacuum)::float8, extract(epoch FROM s.last_autovacuum)::float8,
       extract(epoch FROM s.last_analyze)::float8, extract(epoch FROM s.last_autoanalyze)::float8,
       s.vacuum_count::float8, s.autovacuum_count::float8, s.analyze_count::float8, s.autoanalyze_count::float8,
       s.seq_scan::float8, s.idx_scan::float8,
       (to_jsonb(s) ->> 'total_vacuum_time')::float8 / 1000, (to_jsonb(s) ->> 'total_autovacuum_time')::float8 / 1000,
       (to_jsonb(s) ->> 'total_analyze_time')::float8 / 1000, (to_jsonb(s) ->> 'total_autoanalyze_time')::float8 / 1000,
       greatest(age(c.relfrozenxid), age(t.relfrozenxid))::float8,
       greatest(mxid_age(c.relminmxid), mxid_age(t.relminmxid))::float8
  FROM pg_stat_user_tables s
  JOIN pg_class c ON c.oid = s.relid
  LEFT JOIN pg_class t ON t.oid = c.reltoastrelid";

/// What `tables` publishes besides the statistics: the trigger points, one
/// of each per table here (no table turns the insert trigger off).
const TRIGGER_FAMILIES: &[&str] = &[
    "pg_table_autovacuum_vacuum_trigger_tuples",
    "pg_table_autovacuum_insert_trigger_tuples",
    "pg_table_autovacuum_analyze_trigger_tuples",
    "pg_table_autovacuum_freeze_max_age",
    "pg_table_autovacuum_multixact_freeze_max_age",
    "pg_table_autovacuum_enabled",
];

type Keyed = std::collections::BTreeMap<(String, String, String), f64>;

/// pg_stat_user_tables read directly: (family, schema, table) → value,
/// NULL columns left out (the exporter publishes no sample for them).
async fn stat_user_tables(db: &harness::Db) -> Keyed {
    let mut out = Keyed::new();
    for row in db.client.query(STAT_SQL, &[]).await.unwrap() {
        let (schema, table): (String, String) = (row.get(0), row.get(1));
        for (i, family) in STAT_FAMILIES.iter().enumerate() {
            if let Some(v) = row.get::<_, Option<f64>>(i + 2) {
                out.insert((family.to_string(), schema.clone(), table.clone()), v);
            }
        }
    }
    out
}

/// Seeds activity of every kind `tables` reports and compares the full set
/// of `pg_table_*` series of the database with pg_stat_user_tables (exact
/// values, timestamps as epoch seconds). A cluster of its own, so no other
/// test moves the XID ages; autovacuum (naptime 1 s) works on one table
/// only, so its counters and timestamps are real too. Statistics and ages
/// may still move between two reads (autovacuum on catalogs, PostgreSQL 14's
/// statistics collector): a scrape counts only when the view read just
/// before and just after it agree.
async fn counters_match_pg_stat_user_tables(bindir: Option<&str>) {
    let pg = harness::start_cluster(bindir, &["autovacuum_naptime = 1"]);
    let db = pg.fresh_db().await;
    db.batch(
        "CREATE TABLE indexed (id int PRIMARY KEY, v int) WITH (autovacuum_enabled = off);
         INSERT INTO indexed SELECT g, g FROM generate_series(1, 2000) g;
         DELETE FROM indexed WHERE id % 5 = 0;
         UPDATE indexed SET v = 0 WHERE id % 7 = 0;
         CREATE TABLE noindex (v int) WITH (autovacuum_enabled = off);
         INSERT INTO noindex SELECT generate_series(1, 300);
         CREATE TABLE toasty (id int, body text)
           WITH (autovacuum_enabled = off, toast.autovacuum_enabled = off);
         INSERT INTO toasty SELECT g, string_agg(md5(g::text || h::text), '')
           FROM generate_series(1, 20) g, generate_series(1, 200) h GROUP BY g;
         CREATE TABLE auto (v int) WITH (autovacuum_vacuum_threshold = 0, autovacuum_vacuum_scale_factor = 0,
           autovacuum_analyze_threshold = 0, autovacuum_analyze_scale_factor = 0);
         INSERT INTO auto SELECT generate_series(1, 100);
         DELETE FROM auto WHERE v <= 10;
         CREATE MATERIALIZED VIEW mv AS SELECT v FROM noindex;
         REFRESH MATERIALIZED VIEW mv;",
    )
    .await;
    for manual in ["VACUUM indexed", "ANALYZE noindex", "VACUUM ANALYZE toasty"] {
        db.batch(manual).await;
    }
    db.batch(
        "SET enable_seqscan = off; SELECT v FROM indexed WHERE id = 3; SELECT v FROM indexed WHERE id = 4;
         RESET enable_seqscan; SELECT count(*) FROM noindex; SELECT count(*) FROM mv;",
    )
    .await;
    // 15+ flushes on demand; 14's backend reports when idle (the loop's
    // `SELECT 1` gives it idle points).
    let flush = "DO $$ BEGIN
                   IF current_setting('server_version_num')::int >= 150000 THEN
                     PERFORM pg_stat_force_next_flush();
                   END IF;
                 END $$";
    let exporter = pg
        .spawn_exporter(&db.name, &[("PGMAINT_COLLECTORS", "tables")])
        .await;
    let key = |f: &str, t: &str| (f.to_string(), "public".to_string(), t.to_string());
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    let (m, want) = loop {
        assert!(
            std::time::Instant::now() < deadline,
            "the activity never showed in pg_stat_user_tables, or never held still across a scrape"
        );
        db.batch(flush).await;
        db.batch("SELECT 1").await;
        let before = stat_user_tables(&db).await;
        // The seeded activity, including autovacuum's, is all visible.
        let seen = |f: &str, t: &str| before.get(&key(f, t)).copied().unwrap_or(0.0);
        let ready = seen("pg_table_autovacuums_total", "auto") >= 1.0
            && seen("pg_table_autoanalyzes_total", "auto") >= 1.0
            && seen("pg_table_idx_scans_total", "indexed") >= 2.0
            && seen("pg_table_seq_scans_total", "mv") >= 1.0
            && seen("pg_table_vacuums_total", "indexed") >= 1.0
            && seen("pg_table_analyzes_total", "noindex") >= 1.0;
        if !ready {
            tokio::time::sleep(Duration::from_millis(300)).await;
            continue;
        }
        let m = exporter.scrape().await;
        if stat_user_tables(&db).await == before {
            break (m, before);
        }
    };
    let mut got = Keyed::new();
    let mut trigger_keys = std::collections::BTreeSet::new();
    for s in m
        .series
        .iter()
        .filter(|s| s.name.starts_with("pg_table_") && s.labels.get("datname") == Some(&db.name))
    {
        let k = (
            s.name.clone(),
            s.labels["schemaname"].clone(),
            s.labels["relname"].clone(),
        );
        if STAT_FAMILIES.contains(&s.name.as_str()) {
            got.insert(k, s.value);
        } else {
            trigger_keys.insert(k);
        }
    }
    assert_eq!(got, want, "exporter (left) vs pg_stat_user_tables (right)");
    let tables: std::collections::BTreeSet<_> = want.keys().map(|(_, s, t)| (s.clone(), t.clone())).collect();
    let names: Vec<_> = tables.iter().map(|(_, t)| t.as_str()).collect();
    assert_eq!(names, ["auto", "indexed", "mv", "noindex", "toasty"]);
    let want_triggers: std::collections::BTreeSet<_> = TRIGGER_FAMILIES
        .iter()
        .flat_map(|f| tables.iter().map(|(s, t)| (f.to_string(), s.clone(), t.clone())))
        .collect();
    assert_eq!(trigger_keys, want_triggers);
    // The situations are there: never vacuumed stays absent, no index has
    // no idx_scan, the time totals exist exactly from PostgreSQL 18.
    assert!(!want.contains_key(&key("pg_table_last_vacuum_timestamp_seconds", "noindex")));
    assert!(!want.contains_key(&key("pg_table_idx_scans_total", "noindex")));
    assert!(want.contains_key(&key("pg_table_idx_scans_total", "indexed")));
    let major = db
        .scalar_f64("SELECT current_setting('server_version_num')::float8")
        .await as i64
        / 10000;
    assert_eq!(
        want.contains_key(&key("pg_table_vacuum_time_seconds_total", "indexed")),
        major >= 18
    );
}

#[tokio::test]
async fn counters_match_pg_stat_user_tables_on_15() {
    counters_match_pg_stat_user_tables(None).await;
}

#[tokio::test]
async fn counters_match_pg_stat_user_tables_on_14() {
    counters_match_pg_stat_user_tables(Some(&crate::versions::bindir(14))).await;
}

#[tokio::test]
async fn counters_match_pg_stat_user_tables_on_18() {
    counters_match_pg_stat_user_tables(Some(&crate::versions::bindir(18))).await;
}
