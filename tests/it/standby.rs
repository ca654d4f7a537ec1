//! Real streaming replication (Debian's PostgreSQL 15): a primary and a
//! standby made with `pg_basebackup -R` on a physical slot. The primary's
//! view of the standby and its slot, the standby's own view, the slot left
//! behind when the standby stops (and the alert on it, in a promtool rule
//! test built from the recorded values), and failover by `pg_ctl promote`
//! seen by an exporter that keeps running.

use crate::harness;

use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use pgmaint_exporter::collectors::{Scope, ALL};

const SLOT: &str = "standby1";
const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// `pg_ctl promote -w` on a cluster's data directory, as the server's user.
fn promote(pg: &harness::Cluster) {
    let data = format!("{}/data", pg.dir);
    let pg_ctl = "/usr/lib/postgresql/15/bin/pg_ctl";
    let root = Command::new("id").arg("-u").output().unwrap().stdout == b"0\n";
    let mut cmd = if root {
        let mut c = Command::new("runuser");
        c.args(["-u", "pgmaint", "--", pg_ctl]);
        c
    } else {
        Command::new(pg_ctl)
    };
    let out = cmd
        .args(["-D", &data, "-w", "-t", "60", "promote"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "pg_ctl promote: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Every applicable collector reported success 1 for its scope.
fn assert_all_succeeded(m: &harness::Samples, datname: &str, what: &str, logs: &str) {
    let mut failed = vec![];
    for c in ALL {
        let d = match c.scope() {
            Scope::Cluster => "",
            Scope::PerDatabase => datname,
        };
        let got = m.value(
            "pg_scrape_collector_success",
            &[("collector", c.name()), ("datname", d)],
        );
        if got != Some(1.0) {
            failed.push(format!("{} {d:?}: {got:?}", c.name()));
        }
    }
    assert!(failed.is_empty(), "{what}: {failed:?}\n{logs}");
}

/// Prometheus' `humanize1024` template function: 4 significant digits, then
/// Ki/Mi/Gi… (what the alert's description shows).
fn humanize1024(v: f64) -> String {
    let units = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"];
    let (mut v, mut i) = (v, 0);
    while v.abs() >= 1024.0 && i + 1 < units.len() {
        v /= 1024.0;
        i += 1;
    }
    let int_digits = if v.abs() < 1.0 {
        1
    } else {
        v.abs().log10().floor() as usize + 1
    };
    let s = format!("{:.*}", 4usize.saturating_sub(int_digits), v);
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    };
    format!("{s}{}", units[i])
}

/// A promtool rule-test group: the slot's two series as recorded (constant for
/// 20 minutes) and whether PostgresReplicationSlotInactive fires after 16.
fn slot_group(name: &str, labels: &BTreeMap<String, String>, retained: f64, active: f64) -> String {
    let instance = "primary:9188";
    let sel: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
    let sel = format!("job=\"pgmaint\",instance=\"{instance}\",{}", sel.join(","));
    let fires = retained > GIB && active == 0.0;
    let expected = if fires {
        format!(
            "
          - exp_labels:
              severity: warning
              job: pgmaint
              instance: {instance}
              slot_name: {slot}
              slot_type: {kind}
            exp_annotations:
              summary: An inactive replication slot retains WAL
              description: '{kind} slot {slot} on {instance} is not in use and retains {bytes}B of WAL.'
              runbook_url: http://localhost:9188/runbook#postgresreplicationslotinactive",
            slot = labels["slot_name"],
            kind = labels["slot_type"],
            bytes = humanize1024(retained),
        )
    } else {
        " []".to_string()
    };
    format!(
        "
  - name: {name}
    interval: 1m
    input_series:
      - series: 'pg_replication_slot_retained_wal_bytes{{{sel}}}'
        values: '{retained}x20'
      - series: 'pg_replication_slot_active{{{sel}}}'
        values: '{active}x20'
    alert_rule_test:
      - eval_time: 14m
        alertname: PostgresReplicationSlotInactive
        exp_alerts: []
      - eval_time: 16m
        alertname: PostgresReplicationSlotInactive
        exp_alerts:{expected}
"
    )
}

#[test]
fn humanize1024_like_prometheus() {
    assert_eq!(humanize1024(1090519040.0), "1.016Gi");
    assert_eq!(humanize1024(5.0 * GIB), "5Gi");
    assert_eq!(humanize1024(1000.0), "1000");
    assert_eq!(humanize1024(16.0 * 1024.0 * 1024.0 + 123456.0), "16.12Mi");
}

#[tokio::test]
async fn streaming_standby_slot_and_failover() {
    let started = Instant::now();
    // wal_init_zero off: the 1 GiB of WAL below is mostly sparse segment files.
    let primary = harness::start_cluster(None, &["wal_init_zero = off"]);
    let db = primary.fresh_db().await;
    db.batch(
        "CREATE EXTENSION pg_stat_statements;
         CREATE EXTENSION pgstattuple;
         CREATE TABLE t (id int PRIMARY KEY, v text);
         INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 1000) g;
         CREATE SEQUENCE s;
         ANALYZE;",
    )
    .await;
    let standby = harness::start_standby(&primary, SLOT);
    let all: Vec<&str> = ALL.iter().map(|c| c.name()).collect();
    let every = [
        ("PGMAINT_COLLECTORS", all.join(",")),
        ("PGMAINT_BLOAT_EXACT", "on".into()),
    ];
    let every: Vec<(&str, &str)> = every.iter().map(|(k, v)| (*k, v.as_str())).collect();

    // 1. The primary sees one streaming standby on the slot, with lags.
    let on_primary = primary.spawn_exporter(&db.name, &every).await;
    let by_slot = [("slot_name", SLOT)];
    let mut n = 0;
    let m = harness::eventually(Duration::from_secs(60), || {
        n += 1;
        let (db, exporter) = (&db, &on_primary);
        async move {
            // Fresh WAL each round: lag times are NULL once the standby is idle.
            db.batch(&format!(
                "INSERT INTO t VALUES ({}, 'more') ON CONFLICT DO NOTHING",
                10_000 + n
            ))
            .await;
            let m = exporter.scrape().await;
            let lags = [
                "pg_replication_standby_write_lag_seconds",
                "pg_replication_standby_flush_lag_seconds",
                "pg_replication_standby_replay_lag_seconds",
            ];
            lags.iter().all(|f| m.find(f, &by_slot).count() == 1).then_some(m)
        }
    })
    .await;
    assert_all_succeeded(&m, &db.name, "primary", &on_primary.logs());
    let info: Vec<_> = m.find("pg_replication_standby_info", &[]).collect();
    assert_eq!(info.len(), 1, "{info:?}");
    let l = &info[0].labels;
    assert_eq!(
        (
            l["slot_name"].as_str(),
            l["state"].as_str(),
            l["sync_state"].as_str()
        ),
        (SLOT, "streaming", "async")
    );
    assert_eq!(l["application_name"], "pgmaint_standby");
    assert_eq!(l["client_addr"], "127.0.0.1");
    for f in [
        "pg_replication_standby_write_lag_seconds",
        "pg_replication_standby_flush_lag_seconds",
        "pg_replication_standby_replay_lag_seconds",
    ] {
        let v = m.value(f, &by_slot).unwrap();
        assert!((0.0..30.0).contains(&v), "{f} = {v}");
    }
    let mut lag_bytes = vec![];
    for f in [
        "pg_replication_standby_sent_lag_bytes",
        "pg_replication_standby_write_lag_bytes",
        "pg_replication_standby_flush_lag_bytes",
        "pg_replication_standby_replay_lag_bytes",
    ] {
        let v = m.value(f, &by_slot).unwrap();
        assert!((0.0..16.0 * 1024.0 * 1024.0).contains(&v), "{f} = {v}");
        lag_bytes.push(v);
    }
    // Each position trails the one before it.
    assert!(lag_bytes.windows(2).all(|w| w[0] <= w[1]), "{lag_bytes:?}");
    let slot = [("slot_name", SLOT), ("slot_type", "physical"), ("database", "")];
    assert_eq!(m.value("pg_replication_slot_active", &slot), Some(1.0));
    let streaming_retained = m.value("pg_replication_slot_retained_wal_bytes", &slot).unwrap();
    assert!(
        (0.0..16.0 * 1024.0 * 1024.0).contains(&streaming_retained),
        "{streaming_retained}"
    );
    let slot_labels = m
        .find("pg_replication_slot_active", &slot)
        .next()
        .unwrap()
        .labels
        .clone();
    assert_eq!(m.value("pg_replication_in_recovery", &[]), Some(0.0));
    assert_eq!(m.value("pg_replication_timeline_id", &[]), Some(1.0));
    assert_eq!(harness::promtool_check(&m.raw), "");

    // 2. The standby: in recovery, replaying, every collector works read-only.
    {
        let on_standby = standby.spawn_exporter(&db.name, &every).await;
        db.batch("UPDATE t SET v = 'replayed' WHERE id = 1").await;
        let committed = now();
        let m = harness::eventually(Duration::from_secs(30), || async {
            let m = on_standby.scrape().await;
            m.value("pg_replication_last_replay_timestamp_seconds", &[])
                .is_some_and(|ts| ts >= committed - 1.0)
                .then_some(m)
        })
        .await;
        assert_all_succeeded(&m, &db.name, "standby", &on_standby.logs());
        assert_eq!(m.value("pg_replication_in_recovery", &[]), Some(1.0));
        assert_eq!(m.value("pg_replication_timeline_id", &[]), Some(1.0));
        let ts = m
            .value("pg_replication_last_replay_timestamp_seconds", &[])
            .unwrap();
        assert!((now() - ts) < 30.0, "last replay {ts}, now {}", now());
        let lag = m.value("pg_replication_replay_lag_seconds", &[]).unwrap();
        assert!((0.0..30.0).contains(&lag), "replay lag {lag}");
        let pending = m.value("pg_replication_replay_pending_bytes", &[]).unwrap();
        assert!((0.0..16.0 * 1024.0 * 1024.0).contains(&pending), "{pending}");
        // Per-database collectors read the replicated catalogs.
        let t = [("datname", db.name.as_str()), ("relname", "t")];
        assert!(m.value("pg_table_autovacuum_vacuum_trigger_tuples", &t).is_some());
        assert!(m.has("pg_index_scans_total"));
        assert!(m.has("pg_sequence_used_ratio"));
        // A standby has no WAL senders and no slots of its own here.
        assert!(!m.has("pg_replication_standby_info"));
        assert_eq!(harness::promtool_check(&m.raw), "");
    }

    // 3. Standby stopped: the slot is inactive and retains every new segment.
    standby.stop();
    let m = harness::eventually(Duration::from_secs(30), || async {
        let m = on_primary.scrape().await;
        (m.value("pg_replication_slot_active", &slot) == Some(0.0)).then_some(m)
    })
    .await;
    assert!(!m.has("pg_replication_standby_info"));
    let before = m.value("pg_replication_slot_retained_wal_bytes", &slot).unwrap();
    // 70 segment switches: ≥ 69 × 16 MiB of WAL positions past the slot.
    for i in 0..70 {
        db.batch(&format!(
            "INSERT INTO t VALUES ({}, 'w') ON CONFLICT DO NOTHING; SELECT pg_switch_wal();",
            100_000 + i
        ))
        .await;
    }
    let m = on_primary.scrape().await;
    assert_eq!(m.value("pg_replication_slot_active", &slot), Some(0.0));
    let retained = m.value("pg_replication_slot_retained_wal_bytes", &slot).unwrap();
    assert!(
        retained >= before + 69.0 * 16.0 * 1024.0 * 1024.0,
        "retained {before} → {retained}"
    );
    let direct: f64 = db
        .client
        .query_one(
            "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::float8
               FROM pg_replication_slots WHERE slot_name = $1",
            &[&SLOT],
        )
        .await
        .unwrap()
        .get(0);
    assert!(retained <= direct, "{retained} > {direct}");
    assert_eq!(harness::promtool_check(&m.raw), "");

    // The inactive-slot alert, fed the recorded values: fires on what the
    // stopped standby left behind, not on the streaming slot.
    let rules = format!("{}/alerts/pgmaint.rules.yml", env!("CARGO_MANIFEST_DIR"));
    let yaml = format!(
        "rule_files:\n  - {rules}\nevaluation_interval: 1m\ntests:{}{}",
        slot_group("streaming slot (recorded)", &slot_labels, streaming_retained, 1.0),
        slot_group("stopped standby's slot (recorded)", &slot_labels, retained, 0.0),
    );
    let file = std::env::temp_dir().join(format!("pgmaint-standby-rules-{}.yml", std::process::id()));
    std::fs::write(&file, &yaml).unwrap();
    let out = Command::new("promtool")
        .args(["test", "rules"])
        .arg(&file)
        .output()
        .expect("promtool (apt-get install prometheus)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = std::fs::remove_file(&file);
    assert!(out.status.success() && text.contains("SUCCESS"), "{yaml}\n{text}");

    // 4. Failover: the standby comes back, catches up, and is promoted while
    // an exporter watches it.
    standby.start();
    let on_standby = standby.spawn_exporter(&db.name, &every).await;
    let m = on_standby.scrape().await;
    assert_eq!(m.value("pg_replication_in_recovery", &[]), Some(1.0));
    assert_eq!(m.value("pg_replication_timeline_id", &[]), Some(1.0));
    promote(&standby);
    let m = on_standby.scrape().await;
    assert_eq!(
        m.value("pg_replication_in_recovery", &[]),
        Some(0.0),
        "first scrape after promote"
    );
    assert_eq!(
        m.value("pg_replication_timeline_id", &[]),
        Some(2.0),
        "first scrape after promote"
    );
    assert!(!m.has("pg_replication_replay_lag_seconds"));
    assert_all_succeeded(&m, &db.name, "promoted", &on_standby.logs());
    assert_eq!(harness::promtool_check(&m.raw), "");

    println!(
        "standby: PostgreSQL 15 primary/standby, slot retained {} B after stop, promoted to timeline 2, in {:.1} s",
        retained,
        started.elapsed().as_secs_f64()
    );
}
