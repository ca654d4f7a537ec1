//! `replication` on a primary: a physical slot that holds WAL back, real WAL
//! senders (pg_receivewal) sharing application_name and client address, and
//! a logical slot in a wal_level=logical cluster. Streaming replicas (standby
//! side) come with a later issue.

use crate::harness;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tokio_postgres::Client;

/// Drops slots, waiting until the WAL senders using them have gone.
async fn drop_slots(client: &Client, slots: &[String]) {
    for slot in slots {
        harness::eventually(Duration::from_secs(20), || async {
            client
                .execute(
                    "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1",
                    &[slot],
                )
                .await
                .ok()
        })
        .await;
    }
}

/// WAL the slot retains, read directly (for bracketing the exporter's value).
async fn retained(client: &Client, slot: &str) -> f64 {
    client
        .query_one(
            "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::float8
               FROM pg_replication_slots WHERE slot_name = $1",
            &[&slot],
        )
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn physical_slot_retains_wal() {
    let pg = harness::cluster();
    let db = pg.fresh_db().await;
    let slot = db.name.clone();
    db.client
        .execute("SELECT pg_create_physical_replication_slot($1, true)", &[&slot])
        .await
        .unwrap();

    let (name, url) = (db.name.clone(), db.url.clone());
    let body = async move {
        let pg = harness::cluster();
        let client = harness::connect(&url).await;
        let exporter = pg.spawn_exporter(&name, &[]).await;
        let l = [
            ("slot_name", name.as_str()),
            ("slot_type", "physical"),
            ("database", ""),
        ];

        let before = retained(&client, &name).await;
        let m = exporter.scrape().await;
        let after = retained(&client, &name).await;
        assert_eq!(m.value("pg_replication_in_recovery", &[]), Some(0.0));
        assert_eq!(m.value("pg_replication_timeline_id", &[]), Some(1.0));
        assert_eq!(m.value("pg_replication_slot_active", &l), Some(0.0));
        let wal_status = [l[0], ("wal_status", "reserved")];
        assert_eq!(
            m.value("pg_replication_slot_wal_status_info", &wal_status),
            Some(1.0)
        );
        let r1 = m.value("pg_replication_slot_retained_wal_bytes", &l).unwrap();
        assert!(before <= r1 && r1 <= after, "{before} <= {r1} <= {after}");
        assert!(r1 >= 0.0);
        // No hot_standby_feedback, no max_slot_wal_keep_size, not PG 17: no samples.
        assert_eq!(m.value("pg_replication_slot_xmin_age", &l), None);
        assert_eq!(m.value("pg_replication_slot_safe_wal_size_bytes", &l), None);
        assert_eq!(
            m.value("pg_replication_slot_inactive_since_timestamp_seconds", &l),
            None
        );
        // A primary has no standby-side figures.
        assert!(!m.has("pg_replication_replay_lag_seconds"));
        assert!(!m.has("pg_replication_replay_pending_bytes"));
        assert_eq!(harness::promtool_check(&m.raw), "");

        // ~8 MB of WAL, then a segment switch: the inactive slot keeps all of it.
        client
            .batch_execute(
                "CREATE TABLE w AS SELECT g, repeat('x', 1000) AS pad FROM generate_series(1, 8000) g;
                 SELECT pg_switch_wal();",
            )
            .await
            .unwrap();
        let m = exporter.scrape().await;
        let r2 = m.value("pg_replication_slot_retained_wal_bytes", &l).unwrap();
        assert!(r2 >= r1 + 8_000_000.0, "retained {r1} → {r2}");
        assert!(r2 <= retained(&client, &name).await);
    };
    harness::with_cleanup(body, drop_slots(&db.client, &[slot])).await;
}

/// pg_receivewal streaming into a temp dir, with or without a slot.
fn receivewal(port: u16, dir: &std::path::Path, slot: Option<&str>) -> Child {
    std::fs::create_dir_all(dir).unwrap();
    let mut cmd = Command::new("/usr/lib/postgresql/15/bin/pg_receivewal");
    cmd.arg("-D")
        .arg(dir)
        .args(["-n", "--synchronous", "-d"])
        .arg(format!("host=127.0.0.1 port={port} user=postgres"))
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if let Some(s) = slot {
        cmd.args(["--slot", s]);
    }
    cmd.spawn().expect("start pg_receivewal")
}

#[tokio::test]
async fn wal_senders_sharing_a_name_are_distinct_series() {
    let pg = harness::cluster();
    let db = pg.fresh_db().await;
    let slots = [format!("{}_a", db.name), format!("{}_b", db.name)];
    for s in &slots {
        db.client
            .execute("SELECT pg_create_physical_replication_slot($1, true)", &[s])
            .await
            .unwrap();
    }
    let tmp = std::env::temp_dir().join(format!("pgmaint-recv-{}", db.name));
    // Two with slots, two without: all four are application_name
    // "pg_receivewal" from 127.0.0.1; the slotless pair differs only by pid.
    let mut children: Vec<Child> = vec![
        receivewal(pg.port, &tmp.join("a"), Some(&slots[0])),
        receivewal(pg.port, &tmp.join("b"), Some(&slots[1])),
        receivewal(pg.port, &tmp.join("c"), None),
        receivewal(pg.port, &tmp.join("d"), None),
    ];

    let (name, url, slots2) = (db.name.clone(), db.url.clone(), slots.clone());
    let body = async move {
        let pg = harness::cluster();
        let client = harness::connect(&url).await;
        let exporter = pg.spawn_exporter(&name, &[]).await;
        let base = [
            ("application_name", "pg_receivewal"),
            ("client_addr", "127.0.0.1"),
        ];

        // Our four WAL senders, by the pid of the pg_receivewal client.
        let senders: Vec<(i32, String)> = harness::eventually(Duration::from_secs(20), || async {
            let rows = client
                .query(
                    "SELECT r.pid, coalesce(s.slot_name::text, '')
                       FROM pg_stat_replication r
                       LEFT JOIN pg_replication_slots s ON s.active_pid = r.pid
                      WHERE r.state = 'streaming' AND r.application_name = 'pg_receivewal'",
                    &[],
                )
                .await
                .unwrap();
            let found: Vec<(i32, String)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
            let ours = found
                .iter()
                .filter(|(_, s)| s.is_empty() || slots2.contains(s))
                .count();
            (ours >= 4).then_some(found)
        })
        .await;

        let m = exporter.scrape().await;
        for slot in &slots2 {
            let (pid, _) = senders.iter().find(|(_, s)| s == slot).unwrap();
            let pid = pid.to_string();
            let l = [
                base[0],
                base[1],
                ("slot_name", slot.as_str()),
                ("pid", pid.as_str()),
            ];
            let info = [
                l[0],
                l[1],
                l[2],
                l[3],
                ("state", "streaming"),
                ("sync_state", "async"),
            ];
            assert_eq!(m.value("pg_replication_standby_info", &info), Some(1.0));
            let sent = m.value("pg_replication_standby_sent_lag_bytes", &l).unwrap();
            assert!(sent >= 0.0, "{sent}");
            let flush = m.value("pg_replication_standby_flush_lag_bytes", &l).unwrap();
            assert!(flush >= sent, "flush {flush} < sent {sent}");
            // pg_receivewal never replays: no replay position, no sample.
            assert_eq!(m.value("pg_replication_standby_replay_lag_bytes", &l), None);
            let slot_l = [("slot_name", slot.as_str()), ("slot_type", "physical")];
            assert_eq!(m.value("pg_replication_slot_active", &slot_l), Some(1.0));
        }
        // The two slotless senders: same name, address and slot "", distinct pids.
        let no_slot = [base[0], base[1], ("slot_name", "")];
        let slotless: Vec<_> = m.find("pg_replication_standby_info", &no_slot).collect();
        assert!(slotless.len() >= 2, "{slotless:?}");
        let mut distinct: Vec<&str> = slotless.iter().map(|s| s.labels["pid"].as_str()).collect();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(distinct.len(), slotless.len());
        assert_eq!(harness::promtool_check(&m.raw), "");
    };
    let client = &db.client;
    let cleanup = async move {
        for c in &mut children {
            let _ = c.kill();
            let _ = c.wait();
        }
        drop_slots(client, &slots).await;
        let _ = std::fs::remove_dir_all(&tmp);
    };
    harness::with_cleanup(body, cleanup).await;
}

#[tokio::test]
async fn logical_slot_has_database_and_catalog_xmin() {
    let pg = harness::start_cluster(None, &["wal_level = logical", "max_slot_wal_keep_size = 1GB"]);
    let db = pg.fresh_db().await;
    db.client
        .execute(
            "SELECT pg_create_logical_replication_slot($1, 'test_decoding')",
            &[&"logical_one"],
        )
        .await
        .unwrap();
    // Two transactions with an xid each after the slot was created.
    db.batch("CREATE TABLE t AS SELECT g FROM generate_series(1, 1000) g")
        .await;
    db.batch("SELECT txid_current()").await;
    let exporter = pg.spawn_exporter(&db.name, &[]).await;
    let m = exporter.scrape().await;
    let l = [
        ("slot_name", "logical_one"),
        ("slot_type", "logical"),
        ("database", db.name.as_str()),
    ];
    assert_eq!(m.value("pg_replication_slot_active", &l), Some(0.0));
    let retained = m.value("pg_replication_slot_retained_wal_bytes", &l).unwrap();
    assert!(retained > 0.0, "{retained}");
    // Created before ≥ 2 more transactions: its catalog_xmin is at least 2 old.
    let age = m.value("pg_replication_slot_catalog_xmin_age", &l).unwrap();
    assert!(age >= 2.0, "catalog_xmin age {age}");
    assert_eq!(m.value("pg_replication_slot_xmin_age", &l), None);
    // max_slot_wal_keep_size = 1GB: safe_wal_size is that minus what is used,
    // plus up to one segment (PostgreSQL counts to the next segment boundary).
    let safe = m.value("pg_replication_slot_safe_wal_size_bytes", &l).unwrap();
    let gib = 1024.0 * 1024.0 * 1024.0;
    assert!(
        safe > gib - retained - 16.0 * 1024.0 * 1024.0 && safe <= gib + 16.0 * 1024.0 * 1024.0,
        "safe_wal_size {safe}, retained {retained}"
    );
    let status = [l[0], ("wal_status", "reserved")];
    assert_eq!(m.value("pg_replication_slot_wal_status_info", &status), Some(1.0));
    assert_eq!(harness::promtool_check(&m.raw), "");
}
