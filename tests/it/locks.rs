//! `locks` against a real lock queue: an ACCESS EXCLUSIVE holder and a
//! blocked reader.

use crate::harness;

use std::time::Duration;

#[tokio::test]
async fn a_held_and_an_awaited_lock() {
    let pg = harness::cluster();
    let db = pg.fresh_db().await;
    db.batch("CREATE TABLE t (x int); INSERT INTO t VALUES (1);")
        .await;
    let exporter = pg
        .spawn_exporter(&db.name, &[("PGMAINT_COLLECTORS", "locks")])
        .await;
    let lock = |m: &harness::Samples, mode: &str, granted: &str| {
        m.value(
            "pg_locks",
            &[
                ("datname", db.name.as_str()),
                ("mode", mode),
                ("granted", granted),
            ],
        )
    };
    // Nobody holds anything yet: the series exist with 0.
    let m = exporter.scrape().await;
    assert_eq!(lock(&m, "AccessExclusiveLock", "true"), Some(0.0));
    assert_eq!(lock(&m, "AccessShareLock", "false"), Some(0.0));

    let holder = db.session().await;
    holder
        .batch_execute("BEGIN; LOCK TABLE t IN ACCESS EXCLUSIVE MODE;")
        .await
        .unwrap();
    let reader = db.session().await;
    let blocked = tokio::spawn(async move { reader.query("SELECT * FROM t", &[]).await });
    let m = harness::eventually(Duration::from_secs(10), || async {
        let m = exporter.scrape().await;
        (lock(&m, "AccessShareLock", "false")? > 0.0).then_some(m)
    })
    .await;
    assert!(lock(&m, "AccessExclusiveLock", "true").unwrap() >= 1.0);
    assert_eq!(lock(&m, "AccessShareLock", "false"), Some(1.0));
    // Each session's virtualxid lock counts under its own database.
    assert!(lock(&m, "ExclusiveLock", "true").unwrap() >= 2.0);
    assert!(!blocked.is_finished());
    assert_eq!(harness::promtool_check(&m.raw), "");

    holder.batch_execute("ROLLBACK").await.unwrap();
    let rows = tokio::time::timeout(Duration::from_secs(10), blocked)
        .await
        .expect("reader finished")
        .unwrap()
        .unwrap();
    assert_eq!(rows.len(), 1);
    let m = exporter.scrape().await;
    assert_eq!(lock(&m, "AccessShareLock", "false"), Some(0.0));
    assert_eq!(lock(&m, "AccessExclusiveLock", "true"), Some(0.0));
}
