//! The alert rules on a live system: a PostgreSQL 15 primary and a streaming
//! standby under a sustained pgbench workload (TPC-B plus an insert/delete
//! `meetings` table; autovacuum with its defaults), one exporter each, a real
//! Prometheus evaluating `alerts/pgmaint.rules.yml` as shipped, and
//! Alertmanager with `alerts/alertmanager.yml` as shipped.
//!
//! Only the intervals are short (scrape and evaluation every 5 s). The rules
//! are used unchanged, so their `for:` durations are the real ones: the
//! faults are asserted to make their alert *pending* (or firing, for alerts
//! without `for:`), naming the object, which is what the rules decide; how
//! long `for:` then waits is promtool's business (alerts/tests/*.yml).
//!
//! 1. Healthy phase (`PGMAINT_ALERTS_LIVE_HEALTHY_SECONDS`, default 180):
//!    no warning or critical alert may fire, and none may be pending in more
//!    than half of the polls (a pending state that clears between two
//!    autovacuum runs is not a page; one that persists is).
//! 2. Then one fault at a time, each with the alert that must follow:
//!    the standby's WAL receiver stopped (PostgresStandbyNotStreaming), the
//!    standby's exporter killed, its job named like the shipped
//!    ServiceMonitor's (PgmaintExporterDown), pg_monitor revoked from the
//!    exporter's role (PgmaintExporterRoleUnprivileged), a deadlock
//!    (PostgresDeadlocks), a restart of the primary (PostgresRestarted).
//!
//! Everything is polled with deadlines; the summary (alerts seen while
//! healthy, time from each fault to its alert) is printed on stderr (run
//! with `--no-capture` to see it).

use crate::harness;
use crate::harness::repo;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const PGBENCH: &str = "/usr/lib/postgresql/15/bin/pgbench";
/// Scrape and evaluation interval of the test's Prometheus.
const INTERVAL_SECONDS: u64 = 5;
/// The exporter's role: pg_monitor only, like the documented setup.
const ROLE: &str = "pgmaint_live";
/// The standby's job, named like the one the shipped ServiceMonitor yields.
const STANDBY_JOB: &str = "postgres-metrics";
const PRIMARY_JOB: &str = "pgmaint";

fn healthy_phase() -> Duration {
    let secs = std::env::var("PGMAINT_ALERTS_LIVE_HEALTHY_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(180);
    Duration::from_secs(secs)
}

/// A child process killed on drop (pgbench, Prometheus, Alertmanager).
struct Proc {
    name: &'static str,
    child: Child,
    log: PathBuf,
}

impl Proc {
    fn spawn(name: &'static str, cmd: &mut Command, log: PathBuf) -> Proc {
        let out = std::fs::File::create(&log).unwrap();
        let err = out.try_clone().unwrap();
        let child = cmd
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .spawn()
            .unwrap_or_else(|e| panic!("start {name}: {e}"));
        Proc { name, child, log }
    }

    fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn assert_running(&mut self) {
        if let Ok(Some(st)) = self.child.try_wait() {
            panic!("{} exited with {st}: {}", self.name, self.logs());
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

async fn get_json(url: &str, query: &[(&str, &str)]) -> Option<Value> {
    let r = http().get(url).query(query).send().await.ok()?;
    if !r.status().is_success() {
        return None;
    }
    serde_json::from_str(&r.text().await.ok()?).ok()
}

async fn wait_ready(proc_: &mut Proc, url: &str) {
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(r) = http().get(url).send().await {
            if r.status() == 200 {
                return;
            }
        }
        proc_.assert_running();
        assert!(
            Instant::now() < until,
            "{} not ready: {}",
            proc_.name,
            proc_.logs()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// One alert as Prometheus' /api/v1/alerts shows it.
#[derive(Debug, Clone)]
struct Alert {
    name: String,
    state: String,
    labels: BTreeMap<String, String>,
}

impl Alert {
    fn key(&self) -> String {
        let labels: Vec<String> = self
            .labels
            .iter()
            .filter(|(k, _)| *k != "alertname")
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        format!("{}{{{}}}", self.name, labels.join(","))
    }
}

struct Prometheus {
    base: String,
}

impl Prometheus {
    async fn alerts(&self) -> Vec<Alert> {
        let Some(j) = get_json(&format!("{}/api/v1/alerts", self.base), &[]).await else {
            return vec![];
        };
        j["data"]["alerts"]
            .as_array()
            .map(|a| a.as_slice())
            .unwrap_or_default()
            .iter()
            .map(|a| Alert {
                name: a["labels"]["alertname"].as_str().unwrap_or_default().to_string(),
                state: a["state"].as_str().unwrap_or_default().to_string(),
                labels: a["labels"]
                    .as_object()
                    .map(|o| {
                        o.iter()
                            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                            .collect()
                    })
                    .unwrap_or_default(),
            })
            .collect()
    }

    /// Instant query → (labels, value) per series.
    async fn query(&self, expr: &str) -> Vec<(BTreeMap<String, String>, f64)> {
        let Some(j) = get_json(&format!("{}/api/v1/query", self.base), &[("query", expr)]).await else {
            return vec![];
        };
        j["data"]["result"]
            .as_array()
            .map(|a| a.as_slice())
            .unwrap_or_default()
            .iter()
            .map(|s| {
                let labels = s["metric"]
                    .as_object()
                    .map(|o| {
                        o.iter()
                            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                            .collect()
                    })
                    .unwrap_or_default();
                let value = s["value"][1]
                    .as_str()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(f64::NAN);
                (labels, value)
            })
            .collect()
    }

    /// Polls until an alert named `name` whose labels contain `labels` is
    /// pending or firing; returns it and the time it took.
    async fn wait_for(&self, name: &str, labels: &[(&str, &str)], timeout: Duration) -> (Alert, Duration) {
        let start = Instant::now();
        let mut last = vec![];
        while start.elapsed() < timeout {
            last = self.alerts().await;
            if let Some(a) = last.iter().find(|a| {
                a.name == name
                    && (a.state == "pending" || a.state == "firing")
                    && labels
                        .iter()
                        .all(|(k, v)| a.labels.get(*k).map(String::as_str) == Some(*v))
            }) {
                return (a.clone(), start.elapsed());
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        let seen: Vec<String> = last.iter().map(|a| format!("{} {}", a.state, a.key())).collect();
        panic!("{name} {labels:?} not pending/firing within {timeout:?}; alerts now: {seen:#?}");
    }
}

fn psql_url(port: u16, db: &str, user: &str) -> String {
    format!("postgresql://{user}@127.0.0.1:{port}/{db}")
}

/// pgbench -i, then the meetings table and its script.
fn prepare_workload(port: u16, dir: &Path) -> PathBuf {
    let out = Command::new(PGBENCH)
        .args([
            "-i",
            "-q",
            "-s",
            "2",
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-U",
            "postgres",
            "bench",
        ])
        .output()
        .expect("pgbench (postgresql-15)");
    assert!(
        out.status.success(),
        "pgbench -i: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let script = dir.join("meetings.sql");
    // A meeting is booked and the oldest one in the same room is cancelled:
    // steady inserts and deletes, the table stays small.
    std::fs::write(
        &script,
        "\\set room random(1, 50)\n\
         INSERT INTO meetings (room, starts, title) VALUES (:room, now() + interval '1 day', 'sync');\n\
         DELETE FROM meetings WHERE id = (SELECT min(id) FROM meetings WHERE room = :room);\n",
    )
    .unwrap();
    script
}

fn start_pgbench(port: u16, script: &Path, dir: &Path) -> Proc {
    Proc::spawn(
        "pgbench",
        Command::new(PGBENCH).args([
            "-n",
            "-c",
            "4",
            "-j",
            "2",
            // Rate-limited: a sustained load, not a benchmark on a shared CI box.
            "-R",
            "40",
            "-T",
            "3600",
            "-P",
            "60",
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-U",
            "postgres",
            "-b",
            "tpcb-like@3",
            "-f",
            &format!("{}@1", script.display()),
            "bench",
        ]),
        dir.join("pgbench.log"),
    )
}

/// SIGTERM to the standby's WAL receiver until none runs. PostgreSQL 15
/// refuses pg_terminate_backend() for it ("PID … is not a PostgreSQL backend
/// process": the WAL receiver is an auxiliary process, not in the proc array
/// that pg_signal_backend() searches), so the signal comes from the OS, as
/// the server's OS user or root. After the first failure the startup process
/// restarts the receiver at once (its last failure time is still zero); from
/// the second on it waits wal_retrieve_retry_interval.
async fn stop_wal_receiver(standby: &tokio_postgres::Client) {
    let until = Instant::now() + Duration::from_secs(60);
    let mut quiet_polls = 0;
    while quiet_polls < 5 {
        assert!(Instant::now() < until, "the WAL receiver keeps coming back");
        let pid: Option<i32> = standby
            .query_opt("SELECT pid FROM pg_stat_wal_receiver", &[])
            .await
            .unwrap()
            .map(|r| r.get(0));
        match pid {
            Some(pid) => {
                quiet_polls = 0;
                let st = Command::new("kill")
                    .args(["-TERM", &pid.to_string()])
                    .status()
                    .unwrap();
                assert!(st.success(), "kill -TERM {pid}");
            }
            None => quiet_polls += 1,
        }
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
}

/// Two sessions update two rows in opposite order: PostgreSQL aborts one.
async fn deadlock(url: &str) {
    let a = harness::connect(url).await;
    let b = harness::connect(url).await;
    a.batch_execute("CREATE TABLE IF NOT EXISTS dl (id int PRIMARY KEY, v int); TRUNCATE dl; INSERT INTO dl VALUES (1, 0), (2, 0)")
        .await
        .unwrap();
    a.batch_execute("BEGIN; UPDATE dl SET v = v + 1 WHERE id = 1")
        .await
        .unwrap();
    b.batch_execute("BEGIN; UPDATE dl SET v = v + 1 WHERE id = 2")
        .await
        .unwrap();
    let first = tokio::spawn(async move {
        let r = a.batch_execute("UPDATE dl SET v = v + 1 WHERE id = 2").await;
        let _ = a.batch_execute("ROLLBACK").await;
        r.err().map(|e| sqlstate(&e))
    });
    // b waits for a's row 1 while a waits for b's row 2.
    let second = b
        .batch_execute("UPDATE dl SET v = v + 1 WHERE id = 1")
        .await
        .err()
        .map(|e| sqlstate(&e));
    let _ = b.batch_execute("ROLLBACK").await;
    let first = first.await.unwrap();
    // 40P01: deadlock_detected; exactly one of the two is aborted.
    let aborted: Vec<String> = [first, second].into_iter().flatten().collect();
    assert_eq!(aborted, vec!["40P01".to_string()], "no deadlock detected");
}

fn sqlstate(e: &tokio_postgres::Error) -> String {
    e.as_db_error()
        .map(|d| d.code().code().to_string())
        .unwrap_or_else(|| e.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_follow_faults_on_a_live_primary_and_standby() {
    let started = Instant::now();
    let tmp = std::env::temp_dir().join(format!("pgmaint-alerts-live-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).unwrap();
    // A deadlock is found after deadlock_timeout (1 s by default): keep it.
    let primary = harness::start_cluster(None, &[]);
    let standby = harness::start_standby(&primary, "standby1");

    let admin = primary.client("postgres").await;
    admin
        .batch_execute(&format!("CREATE ROLE {ROLE} LOGIN; GRANT pg_monitor TO {ROLE}"))
        .await
        .unwrap();
    admin.batch_execute("CREATE DATABASE bench").await.unwrap();
    let bench = primary.client("bench").await;
    bench
        .batch_execute(
            "CREATE TABLE meetings (id bigserial PRIMARY KEY, room int NOT NULL,
                                    starts timestamptz NOT NULL, title text);
             CREATE INDEX meetings_room_idx ON meetings (room, id);
             INSERT INTO meetings (room, starts, title)
               SELECT g % 50 + 1, now(), 'seed' FROM generate_series(1, 5000) g;",
        )
        .await
        .unwrap();
    let script = prepare_workload(primary.port, &tmp);
    let mut pgbench = start_pgbench(primary.port, &script, &tmp);

    let primary_url = psql_url(primary.port, "bench", ROLE);
    let standby_url = psql_url(standby.port, "bench", ROLE);
    let primary_exporter = harness::Exporter::spawn(&[
        ("PGMAINT_DATABASE_URL", &primary_url),
        ("PGMAINT_LOG_LEVEL", "info"),
    ])
    .await;
    let standby_exporter = harness::Exporter::spawn(&[
        ("PGMAINT_DATABASE_URL", &standby_url),
        ("PGMAINT_LOG_LEVEL", "info"),
    ])
    .await;
    let primary_addr = primary_exporter.addr.clone();
    let standby_addr = standby_exporter.addr.clone();

    // Alertmanager with the shipped example config (its webhooks point at
    // example.com and fail; the API shows what it received).
    let am_port = harness::free_port();
    let mut alertmanager = Proc::spawn(
        "alertmanager",
        Command::new("prometheus-alertmanager").args([
            &format!(
                "--config.file={}",
                repo().join("alerts/alertmanager.yml").display()
            ),
            &format!("--storage.path={}", tmp.join("am").display()),
            &format!("--web.listen-address=127.0.0.1:{am_port}"),
            "--cluster.listen-address=",
        ]),
        tmp.join("alertmanager.log"),
    );
    wait_ready(&mut alertmanager, &format!("http://127.0.0.1:{am_port}/-/ready")).await;

    let config = format!(
        "global:\n  scrape_interval: {i}s\n  scrape_timeout: {i}s\n  evaluation_interval: {i}s\n\
         rule_files:\n  - '{rules}'\n\
         alerting:\n  alertmanagers:\n    - static_configs:\n        - targets: ['127.0.0.1:{am_port}']\n\
         scrape_configs:\n\
         \x20 - job_name: {PRIMARY_JOB}\n    static_configs:\n      - targets: ['{primary_addr}']\n        labels: {{cluster: live}}\n\
         \x20 - job_name: {STANDBY_JOB}\n    static_configs:\n      - targets: ['{standby_addr}']\n        labels: {{cluster: live}}\n",
        i = INTERVAL_SECONDS,
        rules = repo().join("alerts/pgmaint.rules.yml").display(),
    );
    let prometheus = harness::Prometheus::start(&tmp.join("prometheus"), &config).await;
    let prom = Prometheus {
        base: prometheus.base.clone(),
    };

    // Both targets scraped, the standby streaming, the rules loaded and
    // evaluated: otherwise a silent healthy phase would prove nothing.
    let until = Instant::now() + Duration::from_secs(90);
    loop {
        let up = prom.query("pg_up == 1").await.len();
        let streaming = prom
            .query(&format!(
                "pg_wal_receiver_streaming{{job=\"{STANDBY_JOB}\"}} == 1"
            ))
            .await
            .len();
        let senders = prom.query("pg_replication_standby_info").await.len();
        let commits = prom
            .query(&format!(
                "increase(pg_database_xact_commit_total{{job=\"{PRIMARY_JOB}\",datname=\"bench\"}}[1m]) > 0"
            ))
            .await
            .len();
        if up == 2 && streaming == 1 && senders >= 1 && commits == 1 {
            break;
        }
        pgbench.assert_running();
        assert!(
            Instant::now() < until,
            "not ready: pg_up {up}/2, streaming {streaming}/1, WAL senders {senders}, bench commits {commits}/1"
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let rules = get_json(&format!("{}/api/v1/rules", prom.base), &[("type", "alert")])
        .await
        .unwrap();
    let evaluated: usize = rules["data"]["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            g["rules"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|r| r["health"] == "ok")
                .count()
        })
        .sum();
    assert!(
        evaluated >= 60,
        "only {evaluated} alert rules evaluated ok: {rules}"
    );

    // 1. Healthy phase.
    let phase = healthy_phase();
    let phase_start = Instant::now();
    let mut polls = 0usize;
    let mut pending: BTreeMap<String, usize> = BTreeMap::new();
    let mut firing: BTreeMap<String, String> = BTreeMap::new();
    while phase_start.elapsed() < phase {
        pgbench.assert_running();
        polls += 1;
        for a in prom.alerts().await {
            match a.state.as_str() {
                "pending" => *pending.entry(a.key()).or_default() += 1,
                "firing" => {
                    firing.insert(a.key(), a.labels.get("severity").cloned().unwrap_or_default());
                }
                _ => {}
            }
        }
        tokio::time::sleep(Duration::from_secs(INTERVAL_SECONDS)).await;
    }
    eprintln!("healthy phase: {:?}, {polls} polls of /api/v1/alerts", phase);
    eprintln!("  firing: {firing:#?}");
    eprintln!("  pending (polls): {pending:#?}");
    let paging: Vec<&String> = firing
        .iter()
        .filter(|(_, sev)| *sev == "warning" || *sev == "critical")
        .map(|(k, _)| k)
        .collect();
    assert!(paging.is_empty(), "alerts fired on a healthy system: {paging:#?}");
    let persistent: Vec<(&String, &usize)> = pending.iter().filter(|(_, n)| **n * 2 > polls).collect();
    assert!(
        persistent.is_empty(),
        "alerts pending through most of the healthy phase ({polls} polls): {persistent:#?}"
    );
    let pgbench_log = pgbench.logs();
    // The phase covered real autovacuum work on the workload's tables.
    let phase_began = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
        - phase.as_secs_f64();
    let vacuumed = prom
        .query(&format!(
            "pg_table_last_autovacuum_timestamp_seconds{{job=\"{PRIMARY_JOB}\",datname=\"bench\"}} > {phase_began}"
        ))
        .await;
    let vacuumed: Vec<&str> = vacuumed
        .iter()
        .filter_map(|(l, _)| l.get("relname").map(String::as_str))
        .collect();
    eprintln!("  autovacuumed during the phase: {vacuumed:?}");
    // autovacuum_naptime is 1 min: a phase of 2 min or more has seen runs
    // (shorter ones are for debugging the test itself).
    if phase >= Duration::from_secs(120) {
        assert!(!vacuumed.is_empty(), "no autovacuum ran during the healthy phase");
    }

    // 2. Faults, one at a time.
    let mut report = vec![];
    let deadline = Duration::from_secs(60);

    // The standby's WAL receiver stops and is not restarted for 10 minutes.
    let standby_admin = standby.client("postgres").await;
    standby_admin
        .batch_execute("ALTER SYSTEM SET wal_retrieve_retry_interval = '10min'")
        .await
        .unwrap();
    standby_admin
        .batch_execute("SELECT pg_reload_conf()")
        .await
        .unwrap();
    let t = Instant::now();
    stop_wal_receiver(&standby_admin).await;
    let (a, took) = prom
        .wait_for(
            "PostgresStandbyNotStreaming",
            &[("instance", standby_addr.as_str()), ("job", STANDBY_JOB)],
            deadline,
        )
        .await;
    // The exporter itself says so, not only the rule.
    let m = standby_exporter.scrape().await;
    assert_eq!(m.value("pg_wal_receiver_streaming", &[]), Some(0.0));
    report.push(format!(
        "WAL receiver stopped -> {} {} after {:?} ({:?} after the first SIGTERM)",
        a.state,
        a.key(),
        took,
        t.elapsed()
    ));
    standby_admin
        .batch_execute("ALTER SYSTEM RESET wal_retrieve_retry_interval")
        .await
        .unwrap();
    standby_admin
        .batch_execute("SELECT pg_reload_conf()")
        .await
        .unwrap();
    harness::eventually(Duration::from_secs(60), || async {
        let m = standby_exporter.scrape().await;
        (m.value("pg_wal_receiver_streaming", &[]) == Some(1.0)).then_some(())
    })
    .await;

    // The standby's exporter dies.
    drop(standby_exporter);
    let (a, took) = prom
        .wait_for(
            "PgmaintExporterDown",
            &[("instance", standby_addr.as_str()), ("job", STANDBY_JOB)],
            deadline,
        )
        .await;
    report.push(format!(
        "standby exporter killed -> {} {} after {:?}",
        a.state,
        a.key(),
        took
    ));

    // The exporter's role loses pg_monitor.
    admin
        .batch_execute(&format!("REVOKE pg_monitor FROM {ROLE}"))
        .await
        .unwrap();
    let (a, took) = prom
        .wait_for(
            "PgmaintExporterRoleUnprivileged",
            &[("instance", primary_addr.as_str()), ("job", PRIMARY_JOB)],
            deadline,
        )
        .await;
    report.push(format!(
        "pg_monitor revoked -> {} {} after {:?}",
        a.state,
        a.key(),
        took
    ));
    // The revoke reached the standby by replication: a new exporter there
    // (not scraped by Prometheus) sees a running WAL receiver whose status
    // PostgreSQL now hides, and reports no streaming value rather than a
    // guessed one.
    let blind_standby = harness::Exporter::spawn(&[("PGMAINT_DATABASE_URL", &standby_url)]).await;
    harness::eventually(Duration::from_secs(30), || async {
        let m = blind_standby.scrape().await;
        (m.value("pgmaint_exporter_role_privilege", &[("privilege", "pg_monitor")]) == Some(0.0)
            && m.has("pg_replication_in_recovery")
            && !m.has("pg_wal_receiver_streaming")
            && !m.has("pg_wal_receiver_status_info"))
        .then_some(())
    })
    .await;
    drop(blind_standby);

    // A deadlock in the bench database.
    deadlock(&primary.url("bench")).await;
    let (a, took) = prom
        .wait_for(
            "PostgresDeadlocks",
            &[("instance", primary_addr.as_str()), ("datname", "bench")],
            Duration::from_secs(90),
        )
        .await;
    report.push(format!("deadlock -> {} {} after {:?}", a.state, a.key(), took));

    // The primary restarts.
    drop(pgbench);
    primary.stop();
    primary.start();
    let (a, took) = prom
        .wait_for(
            "PostgresRestarted",
            &[("instance", primary_addr.as_str())],
            Duration::from_secs(90),
        )
        .await;
    report.push(format!(
        "primary restarted -> {} {} after {:?}",
        a.state,
        a.key(),
        took
    ));

    // Alertmanager received the alerts that fire at once (no `for:`).
    let am = format!("http://127.0.0.1:{am_port}/api/v2/alerts");
    harness::eventually(Duration::from_secs(60), || async {
        let j = get_json(&am, &[]).await?;
        let names: Vec<&str> = j
            .as_array()?
            .iter()
            .filter_map(|a| a["labels"]["alertname"].as_str())
            .collect();
        (names.contains(&"PostgresDeadlocks") && names.contains(&"PostgresRestarted")).then_some(())
    })
    .await;

    // Every alert's runbook_url (default base: the exporter's /runbook)
    // resolves on the running exporter, anchor included.
    let (status, page) = primary_exporter.get("/runbook").await;
    assert_eq!(status, 200);
    for name in [
        "PostgresStandbyNotStreaming",
        "PgmaintExporterDown",
        "PgmaintExporterRoleUnprivileged",
        "PostgresDeadlocks",
        "PostgresRestarted",
    ] {
        let id = format!("id=\"{}\"", name.to_lowercase());
        assert!(page.contains(&id), "/runbook has no {id}");
    }
    eprintln!("faults:");
    for line in &report {
        eprintln!("  {line}");
    }
    eprintln!(
        "pgbench progress (last lines):\n{}",
        pgbench_log.lines().rev().take(3).collect::<Vec<_>>().join("\n")
    );
    eprintln!("total {:?}", started.elapsed());
    drop(prometheus);
    drop(alertmanager);
    drop(primary_exporter);
    drop(standby);
    drop(primary);
    let _ = std::fs::remove_dir_all(&tmp);
}
