//! `archiver` with a working archive_command, a failing one, and a role
//! without pg_monitor (which must not see pg_wal but keeps the counters).

use crate::harness;

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

/// A directory the unprivileged server user can write to.
fn archive_dir(tag: &str) -> String {
    let dir = format!("/tmp/pgmaint-archive-{}-{tag}", std::process::id());
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    dir
}

const WRITE_WAL: &str =
    "CREATE TABLE w AS SELECT g, repeat('x', 200) AS pad FROM generate_series(1, 20000) g;
     SELECT pg_switch_wal();";

#[tokio::test]
async fn archived_segments_are_counted() {
    let dir = archive_dir("ok");
    let command = format!("archive_command = 'cp %p {dir}/%f'");
    let pg = harness::start_cluster(None, &["archive_mode = on", &command]);
    let db = pg.fresh_db().await;
    let exporter = pg.spawn_exporter(&db.name, &[]).await;
    let m = exporter.scrape().await;
    let before = m.value("pg_archiver_archived_total", &[]).unwrap();
    assert_eq!(m.types["pg_archiver_archived_total"], "counter");

    db.batch(WRITE_WAL).await;
    let m = harness::eventually(Duration::from_secs(30), || async {
        let m = exporter.scrape().await;
        (m.value("pg_archiver_archived_total", &[]).unwrap() > before).then_some(m)
    })
    .await;
    let archived = m.value("pg_archiver_archived_total", &[]).unwrap();
    let files = std::fs::read_dir(&dir).unwrap().count() as f64;
    assert!(files >= archived, "{files} files in {dir}, {archived} archived");
    let age = m.value("pg_archiver_last_archive_age_seconds", &[]).unwrap();
    assert!((0.0..30.0).contains(&age), "last archive {age}s ago");
    let ts = m
        .value("pg_archiver_last_archive_timestamp_seconds", &[])
        .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!(
        (now - ts - age).abs() < 5.0,
        "timestamp {ts}, age {age}, now {now}"
    );
    assert_eq!(m.value("pg_archiver_failed_total", &[]), Some(0.0));
    assert_eq!(m.value("pg_archiver_last_failure_age_seconds", &[]), None);
    assert_eq!(m.value("pg_archiver_last_failure_timestamp_seconds", &[]), None);
    assert_eq!(harness::promtool_check(&m.raw), "");
    // Archiving works: the failing alert's expression does not hold.
    let mut series = vec![];
    for name in [
        "pg_archiver_failed_total",
        "pg_archiver_last_archive_timestamp_seconds",
    ] {
        series.push(format!("{name} {}x16", m.value(name, &[]).unwrap()));
    }
    assert!(!expr_holds("PostgresWalArchivingFailing", &series, "7m"));
    drop(exporter);
    drop(pg);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn failing_archive_command_is_counted() {
    let pg = harness::start_cluster(None, &["archive_mode = on", "archive_command = 'false'"]);
    let db = pg.fresh_db().await;
    db.batch(WRITE_WAL).await;
    let exporter = pg.spawn_exporter(&db.name, &[]).await;
    let m = harness::eventually(Duration::from_secs(30), || async {
        let m = exporter.scrape().await;
        (m.value("pg_archiver_failed_total", &[]).unwrap() >= 1.0).then_some(m)
    })
    .await;
    let age = m.value("pg_archiver_last_failure_age_seconds", &[]).unwrap();
    assert!((0.0..30.0).contains(&age), "last failure {age}s ago");
    assert!(m.has("pg_archiver_last_failure_timestamp_seconds"));
    assert_eq!(m.value("pg_archiver_archived_total", &[]), Some(0.0));
    assert_eq!(m.value("pg_archiver_last_archive_age_seconds", &[]), None);
    // The switched segment is still waiting for the archiver.
    let ready = m.value("pg_archiver_ready_segments", &[]).unwrap();
    assert!(ready >= 1.0, "{ready} .ready files");
    assert_eq!(harness::promtool_check(&m.raw), "");

    // Both archiving alerts' expressions hold on these values: the counter
    // as recorded before (0, a fresh cluster) and now, the rest as scraped.
    let failed = m.value("pg_archiver_failed_total", &[]).unwrap();
    let mut series = vec![format!("pg_archiver_failed_total 0 {failed}x15")];
    for name in [
        "pg_archiver_last_failure_timestamp_seconds",
        "pg_archiver_ready_segments",
        "pg_settings_archive_mode",
        "pg_wal_bytes_total",
    ] {
        let v = m.value(name, &[]).unwrap_or_else(|| panic!("{name} missing"));
        series.push(format!("{name} {v}x16"));
    }
    for alert in ["PostgresWalArchivingFailing", "PostgresWalArchivingStalled"] {
        assert!(
            expr_holds(alert, &series, "7m"),
            "{alert} does not hold on the live values"
        );
    }
}

/// The `expr` of an alert in alerts/pgmaint.rules.yml.
fn alert_expr(alert: &str) -> String {
    let rules =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/alerts/pgmaint.rules.yml")).unwrap();
    let start = rules
        .find(&format!("- alert: {alert}\n"))
        .unwrap_or_else(|| panic!("no alert {alert}"));
    let mut lines = rules[start..]
        .lines()
        .skip(1)
        .skip_while(|l| !l.trim_start().starts_with("expr:"));
    let first = lines
        .next()
        .unwrap()
        .trim_start()
        .trim_start_matches("expr:")
        .trim();
    if first != "|" {
        return first.to_string();
    }
    lines
        .take_while(|l| !l.trim_start().starts_with("for:"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// `promtool test rules` with a promql_expr_test: does `alert`'s expression
/// return a sample at `at` for the series (one minute apart, promtool's
/// `name values` per line)?
fn expr_holds(alert: &str, series: &[String], at: &str) -> bool {
    let expr = alert_expr(alert);
    let input: String = series
        .iter()
        .map(|s| {
            let (name, values) = s.split_once(' ').unwrap();
            format!("      - series: '{name}{{job=\"pgmaint\",instance=\"db:9188\"}}'\n        values: '{values}'\n")
        })
        .collect();
    let indented: String = expr
        .lines()
        .map(|l| format!("          {}\n", l.trim()))
        .collect();
    let yaml = format!(
        "tests:\n  - interval: 1m\n    input_series:\n{input}    promql_expr_test:\n      - expr: |\n          count(\n{indented}          )\n        eval_time: {at}\n        exp_samples:\n          - labels: '{{}}'\n            value: 1\n"
    );
    let file = std::env::temp_dir().join(format!("pgmaint-archiver-{}-{alert}.yml", std::process::id()));
    std::fs::write(&file, &yaml).unwrap();
    let out = std::process::Command::new("promtool")
        .args(["test", "rules"])
        .arg(&file)
        .output()
        .expect("promtool (apt-get install prometheus)");
    let _ = std::fs::remove_file(&file);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // A failed test means "no sample" only if promtool got that far.
    assert!(
        out.status.success() || text.contains("exp:"),
        "promtool test rules failed:\n{yaml}\n{text}"
    );
    out.status.success()
}

#[tokio::test]
async fn wal_directory_needs_pg_monitor() {
    let pg = harness::cluster();
    let db = pg.fresh_db().await;
    let role = format!("r_{}", db.name);
    db.batch(&format!("CREATE ROLE {role} LOGIN")).await;

    let (name, port) = (db.name.clone(), pg.port);
    let role2 = role.clone();
    let body = tokio::spawn(async move {
        let pg = harness::cluster();
        let dsn = format!("postgresql://{role2}@127.0.0.1:{port}/{name}");
        let plain = pg
            .spawn_exporter(&name, &[("PGMAINT_DATABASE_URL", dsn.as_str())])
            .await;
        let m = plain.scrape().await;
        let ok = [("collector", "archiver"), ("datname", "")];
        assert_eq!(m.value("pg_scrape_collector_success", &ok), Some(1.0));
        assert_eq!(
            m.value("pgmaint_exporter_role_privilege", &[("privilege", "pg_monitor")]),
            Some(0.0)
        );
        assert!(m.has("pg_archiver_archived_total"));
        assert!(!m.has("pg_wal_directory_size_bytes"));
        assert!(!m.has("pg_wal_directory_segments"));
        assert!(!m.has("pg_archiver_ready_segments"));
        drop(plain);

        let su = pg.spawn_exporter(&name, &[]).await;
        let m = su.scrape().await;
        assert_eq!(m.value("pg_scrape_collector_success", &ok), Some(1.0));
        let size = m.value("pg_wal_directory_size_bytes", &[]).unwrap();
        let segments = m.value("pg_wal_directory_segments", &[]).unwrap();
        assert!(segments >= 1.0, "{segments} segments");
        // Every segment is 16 MB (initdb default), so the directory is at least that.
        assert!(
            size >= segments * 16.0 * 1024.0 * 1024.0,
            "{size} bytes, {segments} segments"
        );
        // archive_mode is off on the shared cluster: nothing is ever marked ready.
        assert_eq!(m.value("pg_archiver_ready_segments", &[]), Some(0.0));
        assert_eq!(harness::promtool_check(&m.raw), "");
    })
    .await;
    db.batch(&format!("DROP ROLE {role}")).await;
    if let Err(e) = body {
        std::panic::resume_unwind(e.into_panic());
    }
}
