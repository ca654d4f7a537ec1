//! `database` against real activity: a 20 MB table measured on disk, a real
//! deadlock, a sort that spills to temp files, commits, and wraparound ages.

use crate::harness;

use std::path::Path;
use std::time::Duration;

fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap())
        .map(|e| {
            let meta = e.metadata().unwrap();
            if meta.is_dir() {
                dir_bytes(&e.path())
            } else {
                meta.len()
            }
        })
        .sum()
}

#[tokio::test]
async fn size_matches_the_files_on_disk() {
    let pg = harness::cluster();
    let db = pg.fresh_db().await;
    // ~80,000 rows of ~250 bytes: about 20 MB of heap.
    db.batch(
        "CREATE TABLE big WITH (autovacuum_enabled = off) AS
           SELECT g, repeat(md5(g::text), 7) AS pad FROM generate_series(1, 80000) g;",
    )
    .await;
    let oid = db
        .scalar_f64(&format!(
            "SELECT oid::int8::float8 FROM pg_database WHERE datname = '{}'",
            db.name
        ))
        .await;
    let exporter = pg
        .spawn_exporter(&db.name, &[("PGMAINT_COLLECTORS", "database,database_size")])
        .await;
    let d = [("datname", db.name.as_str())];

    let before = db
        .scalar_f64("SELECT pg_database_size(current_database())::float8")
        .await;
    let m = exporter.scrape().await;
    let after = db
        .scalar_f64("SELECT pg_database_size(current_database())::float8")
        .await;
    let on_disk = dir_bytes(&Path::new(&pg.dir).join(format!("data/base/{oid}"))) as f64;
    let size = m.value("pg_database_size_bytes", &d).unwrap();

    assert!(size > 20e6, "size {size}");
    assert!(
        (size - on_disk).abs() / on_disk < 0.10,
        "exporter {size} vs files on disk {on_disk}"
    );
    let (lo, hi) = (before.min(after) * 0.99, before.max(after) * 1.01);
    assert!(
        (lo..=hi).contains(&size),
        "exporter {size} vs pg_database_size {before}..{after}"
    );
    assert_eq!(harness::promtool_check(&m.raw), "");
}

#[tokio::test]
async fn a_real_deadlock_is_counted_once() {
    let pg = harness::cluster();
    let db = pg.fresh_db().await;
    db.batch("CREATE TABLE a (id int PRIMARY KEY, v int); INSERT INTO a VALUES (1, 0), (2, 0);")
        .await;
    let exporter = pg
        .spawn_exporter(&db.name, &[("PGMAINT_COLLECTORS", "database")])
        .await;
    let d = [("datname", db.name.as_str())];
    assert_eq!(
        exporter.scrape().await.value("pg_database_deadlocks_total", &d),
        Some(0.0)
    );

    let s1 = db.session().await;
    let s2 = db.session().await;
    s1.batch_execute("BEGIN; UPDATE a SET v = 1 WHERE id = 1")
        .await
        .unwrap();
    s2.batch_execute("BEGIN; UPDATE a SET v = 2 WHERE id = 2")
        .await
        .unwrap();
    let t1 = tokio::spawn(async move {
        let r = s1.batch_execute("UPDATE a SET v = 1 WHERE id = 2").await;
        (s1, r)
    });
    // s1 must be waiting on s2's row lock before s2 closes the cycle.
    let check = db.session().await;
    harness::eventually(Duration::from_secs(10), || async {
        let row = check
            .query_one(
                "SELECT count(*) FROM pg_stat_activity
                  WHERE datname = current_database() AND wait_event_type = 'Lock'",
                &[],
            )
            .await
            .unwrap();
        (row.get::<_, i64>(0) == 1).then_some(())
    })
    .await;
    let r2 = s2.batch_execute("UPDATE a SET v = 2 WHERE id = 1").await;
    let (s1, r1) = t1.await.unwrap();
    let failures: Vec<_> = [&r1, &r2].into_iter().filter_map(|r| r.as_ref().err()).collect();
    assert_eq!(failures.len(), 1, "{r1:?} {r2:?}");
    assert_eq!(
        failures[0].code(),
        Some(&tokio_postgres::error::SqlState::T_R_DEADLOCK_DETECTED)
    );
    for s in [&s1, &s2] {
        s.batch_execute("ROLLBACK; SELECT pg_stat_force_next_flush()")
            .await
            .unwrap();
    }

    let deadlocks = harness::eventually(Duration::from_secs(15), || async {
        let v = exporter.scrape().await.value("pg_database_deadlocks_total", &d);
        v.filter(|v| *v > 0.0)
    })
    .await;
    assert_eq!(deadlocks, 1.0);
}

#[tokio::test]
async fn a_sort_over_work_mem_writes_temp_files() {
    let pg = harness::cluster();
    let db = pg.fresh_db().await;
    let exporter = pg
        .spawn_exporter(&db.name, &[("PGMAINT_COLLECTORS", "database")])
        .await;
    let d = [("datname", db.name.as_str())];
    let m = exporter.scrape().await;
    assert_eq!(m.value("pg_database_temp_files_total", &d), Some(0.0));
    assert_eq!(m.value("pg_database_temp_bytes_total", &d), Some(0.0));

    db.batch(
        "SET work_mem = '64kB';
         SELECT count(*) FROM (SELECT g FROM generate_series(1, 200000) g ORDER BY g DESC OFFSET 0) s;
         RESET work_mem;
         SELECT pg_stat_force_next_flush();",
    )
    .await;
    let (files, bytes) = harness::eventually(Duration::from_secs(15), || async {
        let m = exporter.scrape().await;
        let files = m.value("pg_database_temp_files_total", &d)?;
        let bytes = m.value("pg_database_temp_bytes_total", &d)?;
        (files >= 1.0).then_some((files, bytes))
    })
    .await;
    assert!(files >= 1.0, "{files}");
    // 200,000 int8 sort tuples do not fit in 64 kB: at least a megabyte spills.
    assert!(bytes > 1e6, "temp bytes {bytes}");
}

#[tokio::test]
async fn commits_are_counted() {
    let pg = harness::cluster();
    let db = pg.fresh_db().await;
    db.batch("CREATE TABLE c (x int)").await;
    let exporter = pg
        .spawn_exporter(&db.name, &[("PGMAINT_COLLECTORS", "database")])
        .await;
    let d = [("datname", db.name.as_str())];
    db.batch("SELECT pg_stat_force_next_flush()").await;
    let m = exporter.scrape().await;
    let first = m.value("pg_database_xact_commit_total", &d).unwrap();
    // CREATE TABLE inserted catalog rows: count from here.
    let inserted_before = m.value("pg_database_tup_inserted_total", &d).unwrap();

    const N: i32 = 25;
    for i in 0..N {
        db.client
            .execute("INSERT INTO c VALUES ($1)", &[&i])
            .await
            .unwrap();
    }
    db.batch("SELECT pg_stat_force_next_flush()").await;
    let (commits, inserted) = harness::eventually(Duration::from_secs(15), || async {
        let m = exporter.scrape().await;
        let commits = m.value("pg_database_xact_commit_total", &d)?;
        let inserted = m.value("pg_database_tup_inserted_total", &d)?;
        (commits - first >= f64::from(N)).then_some((commits, inserted))
    })
    .await;
    assert!(commits - first >= f64::from(N), "{first} → {commits}");
    assert_eq!(inserted - inserted_before, f64::from(N));
}

#[tokio::test]
async fn wraparound_ages_connection_limit_and_wal() {
    let pg = harness::cluster();
    let db = pg.fresh_db().await;
    db.batch(&format!("ALTER DATABASE \"{}\" CONNECTION LIMIT 7", db.name))
        .await;
    let exporter = pg.spawn_exporter(&db.name, &[]).await;
    let d = [("datname", db.name.as_str())];
    let ages = "SELECT age(datfrozenxid)::float8 FROM pg_database WHERE datname = current_database()";
    let mxid = "SELECT mxid_age(datminmxid)::float8 FROM pg_database WHERE datname = current_database()";

    let (age_before, mxid_before) = (db.scalar_f64(ages).await, db.scalar_f64(mxid).await);
    let m = exporter.scrape().await;
    let (age_after, mxid_after) = (db.scalar_f64(ages).await, db.scalar_f64(mxid).await);

    // Other tests burn xids concurrently: the exporter's reading lies between ours.
    let age = m.value("pg_database_frozen_xid_age", &d).unwrap();
    assert!(
        (age_before..=age_after).contains(&age),
        "{age_before} ≤ {age} ≤ {age_after}"
    );
    let mx = m.value("pg_database_min_mxid_age", &d).unwrap();
    assert!(
        (mxid_before..=mxid_after).contains(&mx),
        "{mxid_before} ≤ {mx} ≤ {mxid_after}"
    );
    assert_eq!(m.value("pg_database_connection_limit", &d), Some(7.0));
    // The default "postgres" database has no limit: no sample.
    assert_eq!(
        m.value("pg_database_connection_limit", &[("datname", "postgres")]),
        None
    );
    // Data checksums are off in the test cluster: no fake 0.
    assert_eq!(m.value("pg_database_checksum_failures_total", &d), None);
    // The shared-objects row of pg_stat_database (datname NULL) is skipped.
    assert_eq!(m.value("pg_database_xact_commit_total", &[("datname", "")]), None);
    // Templates count for wraparound, not for the activity counters.
    assert!(m
        .value("pg_database_frozen_xid_age", &[("datname", "template1")])
        .is_some());
    assert_eq!(
        m.value("pg_database_xact_commit_total", &[("datname", "template1")]),
        None
    );

    // WAL counters grow with writes.
    let wal = m.value("pg_wal_bytes_total", &[]).unwrap();
    let records = m.value("pg_wal_records_total", &[]).unwrap();
    db.batch(
        "CREATE TABLE w AS SELECT g FROM generate_series(1, 10000) g; SELECT pg_stat_force_next_flush();",
    )
    .await;
    let m2 = exporter.scrape().await;
    assert!(m2.value("pg_wal_bytes_total", &[]).unwrap() > wal + 100_000.0);
    assert!(m2.value("pg_wal_records_total", &[]).unwrap() >= records + 1_000.0);
    assert!(m.value("pg_wal_fpi_total", &[]).is_some());
    assert_eq!(harness::promtool_check(&m.raw), "");
}

/// vac_truncate_clog() takes the oldest datfrozenxid over every database,
/// templates included: a template database that is the oldest must be
/// exported. A cluster of its own: every other database is frozen after
/// transactions were burned, so the template (and template0, which nobody
/// can connect to) are the oldest.
#[tokio::test]
async fn the_oldest_database_is_a_template() {
    const BURNED: usize = 300;
    let pg = harness::start_cluster(None, &["autovacuum = off"]);
    let tmpl = pg.fresh_db().await;
    let db = pg.fresh_db().await;
    drop(tmpl.client);
    for _ in 0..BURNED {
        db.batch("SELECT txid_current()").await;
    }
    // Freeze every database one can connect to, except the future template.
    for name in ["postgres", "template1", db.name.as_str()] {
        pg.client(name)
            .await
            .batch_execute("VACUUM FREEZE")
            .await
            .unwrap();
    }
    let admin = pg.client("postgres").await;
    admin
        .batch_execute(&format!("ALTER DATABASE \"{}\" IS_TEMPLATE true", tmpl.name))
        .await
        .unwrap();
    let age = |name: String| {
        let admin = &admin;
        async move {
            admin
                .query_one(
                    "SELECT age(datfrozenxid)::float8 FROM pg_database WHERE datname = $1",
                    &[&name],
                )
                .await
                .unwrap()
                .get::<_, f64>(0)
        }
    };
    let exporter = pg
        .spawn_exporter(&db.name, &[("PGMAINT_COLLECTORS", "database")])
        .await;
    let m = exporter.scrape().await;
    let (t_age, t0_age, db_age) = (
        age(tmpl.name.clone()).await,
        age("template0".into()).await,
        age(db.name.clone()).await,
    );
    // The situation: the templates are the oldest databases by far.
    assert!(t_age >= db_age + BURNED as f64, "{t_age} vs {db_age}");
    assert!(t0_age >= db_age + BURNED as f64, "{t0_age} vs {db_age}");
    // Nothing burns transactions in this cluster: exact values.
    let exported = |name: &str| m.value("pg_database_frozen_xid_age", &[("datname", name)]);
    assert_eq!(exported(&tmpl.name), Some(t_age));
    assert_eq!(exported("template0"), Some(t0_age));
    let oldest = m
        .find("pg_database_frozen_xid_age", &[])
        .map(|s| s.value)
        .fold(0.0, f64::max);
    assert_eq!(oldest, t_age.max(t0_age));
    assert!(m
        .value("pg_database_min_mxid_age", &[("datname", "template0")])
        .is_some());
    admin
        .batch_execute(&format!("ALTER DATABASE \"{}\" IS_TEMPLATE false", tmpl.name))
        .await
        .unwrap();
}
