//! `settings` against real configuration: per-database overrides, server
//! defaults, and a change that waits for a restart.

use crate::harness;

use std::time::Duration;

#[tokio::test]
async fn database_overrides_and_defaults_in_base_units() {
    let pg = harness::cluster();
    let db = pg.fresh_db().await;
    db.batch(&format!(
        "ALTER DATABASE \"{0}\" SET work_mem = '8MB';
         ALTER DATABASE \"{0}\" SET maintenance_work_mem = '256MB';
         ALTER DATABASE \"{0}\" SET lock_timeout = '2500ms';",
        db.name
    ))
    .await;
    let exporter = pg
        .spawn_exporter(&db.name, &[("PGMAINT_COLLECTORS", "settings")])
        .await;
    let m = exporter.scrape().await;
    let v = |name| m.value(name, &[]);

    assert_eq!(v("pg_settings_work_mem_bytes"), Some(8388608.0));
    assert_eq!(v("pg_settings_maintenance_work_mem_bytes"), Some(268435456.0));
    // Server defaults, converted from s, ms, 8kB, MB and min.
    assert_eq!(v("pg_settings_autovacuum_naptime_seconds"), Some(60.0));
    assert_eq!(v("pg_settings_autovacuum_vacuum_scale_factor"), Some(0.2));
    assert_eq!(v("pg_settings_autovacuum_vacuum_cost_delay_seconds"), Some(0.002));
    assert_eq!(v("pg_settings_shared_buffers_bytes"), Some(134217728.0));
    assert_eq!(v("pg_settings_max_wal_size_bytes"), Some(1073741824.0));
    assert_eq!(v("pg_settings_checkpoint_timeout_seconds"), Some(300.0));
    assert_eq!(v("pg_settings_autovacuum_freeze_max_age"), Some(200000000.0));
    // -1 ("use maintenance_work_mem", "use vacuum_cost_limit") is kept, not scaled.
    assert_eq!(v("pg_settings_autovacuum_work_mem_bytes"), Some(-1.0));
    assert_eq!(v("pg_settings_autovacuum_vacuum_cost_limit"), Some(-1.0));
    // postgresql.auto.conf of the test cluster sets max_connections = 300.
    assert_eq!(v("pg_settings_max_connections"), Some(300.0));
    assert_eq!(v("pg_settings_autovacuum"), Some(1.0));
    assert_eq!(v("pg_settings_track_counts"), Some(1.0));
    assert_eq!(v("pg_settings_archive_mode"), Some(0.0));
    assert_eq!(
        m.value("pg_settings_wal_level_info", &[("wal_level", "replica")]),
        Some(1.0)
    );
    // The exporter SETs these on its own sessions (5s, 1s): the published
    // values are still the server's (default 0, and the database's 2.5 s).
    assert_eq!(v("pg_settings_statement_timeout_seconds"), Some(0.0));
    assert_eq!(v("pg_settings_lock_timeout_seconds"), Some(2.5));
    assert_eq!(
        v("pg_settings_idle_in_transaction_session_timeout_seconds"),
        Some(0.0)
    );
    assert_eq!(harness::promtool_check(&m.raw), "");
}

#[tokio::test]
async fn a_restart_only_change_is_pending() {
    let pg = harness::dedicated();
    let admin = pg.client("postgres").await;
    let exporter = pg
        .spawn_exporter(
            "postgres",
            &[
                ("PGMAINT_COLLECTORS", "settings"),
                // Read every scrape: the change below must show at once.
                ("PGMAINT_SETTINGS_CACHE_SECONDS", "0"),
            ],
        )
        .await;
    let m = exporter.scrape().await;
    assert_eq!(m.value("pg_settings_pending_restart", &[]), Some(0.0));

    // Two round trips: ALTER SYSTEM refuses to run inside a multi-statement batch.
    admin
        .batch_execute("ALTER SYSTEM SET shared_buffers = '64MB'")
        .await
        .unwrap();
    admin.batch_execute("SELECT pg_reload_conf()").await.unwrap();
    let pending = harness::eventually(Duration::from_secs(15), || async {
        let v = exporter.scrape().await.value("pg_settings_pending_restart", &[]);
        v.filter(|v| *v > 0.0)
    })
    .await;
    assert_eq!(pending, 1.0);
    // Still the running value until the restart.
    let m = exporter.scrape().await;
    assert_eq!(
        m.value("pg_settings_shared_buffers_bytes", &[]),
        Some(134217728.0)
    );
}
