//! `checkpointer` against real checkpoints on a cluster of the test's own
//! (other tests' CREATE DATABASE may request checkpoints on the shared one).

use crate::harness;

use std::time::Duration;

#[tokio::test]
async fn two_checkpoints_are_two_requests() {
    let pg = harness::dedicated();
    let admin = pg.client("postgres").await;
    let exporter = pg
        .spawn_exporter("postgres", &[("PGMAINT_COLLECTORS", "checkpointer")])
        .await;
    let m = exporter.scrape().await;
    let requested = m
        .value("pg_checkpointer_checkpoints_requested_total", &[])
        .unwrap();
    let written = m.value("pg_checkpointer_buffers_written_total", &[]).unwrap();
    assert!(m.value("pg_checkpointer_checkpoints_timed_total", &[]).is_some());
    assert!(m.value("pg_bgwriter_buffers_alloc_total", &[]).is_some());
    assert!(m
        .value("pg_checkpointer_stats_reset_timestamp_seconds", &[])
        .is_some());
    // Restartpoint and num_done counters do not exist before 17/18.
    assert!(!m.has("pg_checkpointer_restartpoints_done_total"));
    assert!(!m.has("pg_checkpointer_checkpoints_done_total"));
    assert_eq!(harness::promtool_check(&m.raw), "");

    admin
        .batch_execute(
            "CREATE TABLE dirty AS SELECT g FROM generate_series(1, 10000) g; CHECKPOINT; CHECKPOINT;",
        )
        .await
        .unwrap();
    let m = harness::eventually(Duration::from_secs(15), || async {
        let m = exporter.scrape().await;
        let now = m.value("pg_checkpointer_checkpoints_requested_total", &[])?;
        (now >= requested + 2.0).then_some(m)
    })
    .await;
    assert_eq!(
        m.value("pg_checkpointer_checkpoints_requested_total", &[]),
        Some(requested + 2.0)
    );
    // The first checkpoint wrote the new table's dirty buffers.
    let now_written = m.value("pg_checkpointer_buffers_written_total", &[]).unwrap();
    assert!(now_written >= written + 40.0, "{written} → {now_written}");
    assert!(m.value("pg_checkpointer_write_time_seconds_total", &[]).unwrap() >= 0.0);
}
