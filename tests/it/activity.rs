//! `activity` against real sessions: an idle transaction holding a row lock,
//! a session blocked on it, and a long `pg_sleep`.

use crate::harness;

use std::time::Duration;

#[tokio::test]
async fn idle_transaction_lock_wait_and_long_query() {
    let pg = harness::cluster();
    let db = pg.fresh_db().await;
    db.batch("CREATE TABLE t (id int PRIMARY KEY, v int); INSERT INTO t VALUES (1, 0);")
        .await;

    let idle = db.session().await;
    idle.batch_execute("BEGIN; UPDATE t SET v = 1 WHERE id = 1;")
        .await
        .unwrap();
    let waiter = db.session().await;
    let blocked = tokio::spawn(async move { waiter.batch_execute("UPDATE t SET v = 2 WHERE id = 1").await });
    let sleeper = db.session().await;
    let cancel = sleeper.cancel_token();
    let sleeping = tokio::spawn(async move { sleeper.batch_execute("SELECT pg_sleep(20)").await });
    // Wait until the server shows all three sessions in place for 3 s (the
    // ages asserted below): idle in transaction, the UPDATE waiting on its
    // lock, pg_sleep running.
    let check = db.session().await;
    harness::eventually(Duration::from_secs(20), || async {
        let row = check
            .query_one(
                "SELECT count(*) FILTER (WHERE state = 'idle in transaction'
                                           AND clock_timestamp() - state_change > interval '3 s'),
                        count(*) FILTER (WHERE wait_event_type = 'Lock' AND state = 'active'
                                           AND clock_timestamp() - query_start > interval '3 s'),
                        count(*) FILTER (WHERE query = 'SELECT pg_sleep(20)' AND state = 'active'
                                           AND clock_timestamp() - query_start > interval '3 s')
                   FROM pg_stat_activity WHERE datname = current_database()",
                &[],
            )
            .await
            .unwrap();
        let counts: [i64; 3] = [row.get(0), row.get(1), row.get(2)];
        (counts == [1, 1, 1]).then_some(())
    })
    .await;

    // Only `activity`: the exporter's own background refreshes (sizes,
    // bloat) would otherwise be active sessions in this database too.
    let exporter = pg
        .spawn_exporter(
            &db.name,
            &[
                ("PGMAINT_LONG_QUERY_SECONDS", "1"),
                ("PGMAINT_COLLECTORS", "activity"),
            ],
        )
        .await;
    let m = exporter.scrape().await;
    let d = [("datname", db.name.as_str())];

    let idle_for = m
        .value("pg_activity_idle_in_transaction_max_seconds", &d)
        .unwrap();
    assert!(
        (3.0..30.0).contains(&idle_for),
        "idle in transaction for {idle_for}s"
    );
    let xact_age = m
        .value(
            "pg_activity_oldest_xact_age_seconds",
            &[d[0], ("state", "idle in transaction")],
        )
        .unwrap();
    assert!(xact_age >= 3.0, "{xact_age}");
    // The sleeping query and the blocked UPDATE are both active for > 1 s.
    assert_eq!(m.value("pg_activity_long_running_queries", &d), Some(2.0));
    assert_eq!(m.value("pg_activity_lock_waiting_sessions", &d), Some(1.0));
    let wait = m.value("pg_activity_lock_wait_max_seconds", &d).unwrap();
    assert!((2.5..30.0).contains(&wait), "lock wait {wait}s");
    let oldest = m.value("pg_activity_oldest_query_age_seconds", &d).unwrap();
    assert!(oldest >= 3.0, "{oldest}");
    let conns = |state| {
        m.value(
            "pg_activity_connections",
            &[d[0], ("state", state), ("backend_type", "client backend")],
        )
    };
    assert_eq!(conns("idle in transaction"), Some(1.0));
    assert_eq!(conns("active"), Some(2.0));
    // The idle transaction took an xid and holds back the horizon.
    assert!(
        m.value("pg_xmin_horizon_age", &[("holder", "backend_xmin")])
            .unwrap()
            >= 0.0
    );
    assert_eq!(m.value("pg_activity_max_connections", &[]), Some(300.0));
    assert_eq!(m.value("pg_activity_reserved_connections", &[]), Some(3.0));

    idle.batch_execute("ROLLBACK").await.unwrap();
    blocked.await.unwrap().unwrap();
    cancel.cancel_query(tokio_postgres::NoTls).await.unwrap();
    assert!(sleeping.await.unwrap().is_err(), "pg_sleep was cancelled");
    // The client sees the cancel's error before its backend reports itself
    // idle (PostgreSQL sets the state just before ReadyForQuery): wait for
    // the server to show no other active session, or a loaded machine
    // scrapes in between and counts the cancelled query once more.
    harness::eventually(Duration::from_secs(10), || async {
        let row = check
            .query_one(
                "SELECT count(*) FROM pg_stat_activity
                  WHERE datname = current_database() AND state = 'active' AND pid <> pg_backend_pid()",
                &[],
            )
            .await
            .unwrap();
        (row.get::<_, i64>(0) == 0).then_some(())
    })
    .await;

    // With the idle transaction gone and the sleep cancelled, the counts fall back.
    let m = exporter.scrape().await;
    assert_eq!(m.value("pg_activity_long_running_queries", &d), Some(0.0));
    assert_eq!(m.value("pg_activity_lock_waiting_sessions", &d), Some(0.0));
    assert_eq!(m.value("pg_activity_idle_in_transaction_max_seconds", &d), None);
}

#[tokio::test]
async fn prepared_transaction_holds_the_horizon() {
    let pg = harness::cluster();
    let db = pg.fresh_db().await;
    let gid = format!("gid_{}", db.name);
    db.batch(&format!(
        "CREATE TABLE p (x int); BEGIN; INSERT INTO p VALUES (1); PREPARE TRANSACTION '{gid}';"
    ))
    .await;
    db.batch("SELECT txid_current()").await; // one more xid so the age is ≥ 1
    let exporter = pg.spawn_exporter(&db.name, &[]).await;
    let m = exporter.scrape().await;
    let result = (
        m.value("pg_prepared_xacts", &[]).unwrap(),
        m.value("pg_prepared_xacts_oldest_age_seconds", &[]),
        m.value("pg_xmin_horizon_age", &[("holder", "prepared_xact")]),
    );
    db.batch(&format!("ROLLBACK PREPARED '{gid}'")).await;
    assert!(result.0 >= 1.0);
    assert!(result.1.is_some_and(|a| a >= 0.0));
    assert!(result.2.is_some_and(|a| a >= 1.0), "{:?}", result.2);
}

/// A running VACUUM shows a `backend_xmin`, but PostgreSQL's
/// ComputeXidHorizons() skips it (PROC_IN_VACUUM): it holds nothing back and
/// must not be reported as a horizon holder. A cluster of its own, with
/// autovacuum off, so no other test's session holds an older xmin.
#[tokio::test]
async fn a_running_vacuum_does_not_hold_the_horizon() {
    const BURNED: usize = 200;
    let pg = harness::start_cluster(None, &["autovacuum = off"]);
    let db = pg.fresh_db().await;
    db.batch(
        "CREATE TABLE big AS SELECT g, repeat('x', 100) AS pad FROM generate_series(1, 200000) g;
         DELETE FROM big WHERE g % 2 = 0;",
    )
    .await;
    let vacuum = db.session().await;
    let pid: i32 = vacuum
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0);
    // A sleep of up to 400 ms after every page: thousands of pages take far
    // longer than this test.
    vacuum
        .batch_execute("SET vacuum_cost_delay = '100ms'; SET vacuum_cost_limit = 1;")
        .await
        .unwrap();
    let cancel = vacuum.cancel_token();
    let running = tokio::spawn(async move { vacuum.batch_execute("VACUUM big").await });
    harness::eventually(Duration::from_secs(30), || async {
        let n: i64 = db
            .client
            .query_one(
                "SELECT count(*) FROM pg_stat_progress_vacuum WHERE pid = $1",
                &[&pid],
            )
            .await
            .unwrap()
            .get(0);
        (n == 1).then_some(())
    })
    .await;
    // Transactions after the VACUUM's snapshot: its backend_xmin ages.
    for _ in 0..BURNED {
        db.batch("SELECT txid_current()").await;
    }

    let exporter = pg
        .spawn_exporter(&db.name, &[("PGMAINT_COLLECTORS", "activity")])
        .await;
    let m = exporter.scrape().await;
    let vacuum_age: Option<i32> = db
        .client
        .query_one(
            "SELECT age(backend_xmin) FROM pg_stat_activity
              WHERE pid = $1 AND pid IN (SELECT pid FROM pg_stat_progress_vacuum)",
            &[&pid],
        )
        .await
        .unwrap()
        .get(0);
    cancel.cancel_query(tokio_postgres::NoTls).await.unwrap();
    assert!(running.await.unwrap().is_err(), "VACUUM was cancelled");

    // The situation is real: the VACUUM ran throughout, with an old xmin.
    let vacuum_age = vacuum_age.expect("the VACUUM is running and shows a backend_xmin");
    assert!(vacuum_age >= BURNED as i32, "VACUUM's xmin age {vacuum_age}");
    // Only the exporter's own fresh snapshots remain: far younger.
    let holder = m.value("pg_xmin_horizon_age", &[("holder", "backend_xmin")]);
    assert!(
        holder.is_none_or(|age| age < BURNED as f64),
        "the VACUUM (xmin age {vacuum_age}) is reported as a horizon holder: {holder:?}"
    );
}
