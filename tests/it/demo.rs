//! scripts/demo.sh end to end: the scenario it seeds shows up in /metrics,
//! Prometheus scrapes the exporter and (with alerts/pgmaint.rules.yml) has an
//! alert of ours pending or firing, and SIGTERM stops everything it started.
//!
//! The script runs `cargo build --release` first (CI builds release before the
//! tests, so that is quick there); the test allows for a slow build.

use crate::harness;
use crate::harness::repo;

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use harness::Samples;

/// The running script, in a process group of its own. Drop sends SIGTERM to
/// the script (its trap stops what it started), waits up to 30 s, then
/// SIGKILLs whatever is left in the group.
struct Demo {
    child: Child,
    output: Arc<Mutex<Vec<String>>>,
}

impl Demo {
    fn start(env: &[(&str, String)]) -> Demo {
        let mut cmd = Command::new("bash");
        cmd.arg(repo().join("scripts/demo.sh"))
            .current_dir(repo())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("start scripts/demo.sh");
        let output = Arc::new(Mutex::new(Vec::new()));
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        for (stream, prefix) in [
            (Box::new(stdout) as Box<dyn std::io::Read + Send>, "out"),
            (Box::new(stderr), "err"),
        ] {
            let output = output.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    eprintln!("demo {prefix}: {line}");
                    output.lock().unwrap().push(line);
                }
            });
        }
        Demo { child, output }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn output(&self) -> String {
        self.output.lock().unwrap().join("\n")
    }

    /// Waits for a line containing `needle`; panics if the script exits first or after `timeout`.
    fn wait_for_line(&mut self, needle: &str, timeout: Duration) -> String {
        let until = Instant::now() + timeout;
        loop {
            if let Some(l) = self.output.lock().unwrap().iter().find(|l| l.contains(needle)) {
                return l.clone();
            }
            if let Some(st) = self.child.try_wait().unwrap() {
                panic!(
                    "demo.sh exited with {st} before printing {needle:?}:\n{}",
                    self.output()
                );
            }
            assert!(
                Instant::now() < until,
                "demo.sh did not print {needle:?} within {timeout:?}:\n{}",
                self.output()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// SIGTERM to the script alone; its exit status, within `timeout`.
    fn terminate(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status();
        let until = Instant::now() + timeout;
        while Instant::now() < until {
            if let Some(st) = self.child.try_wait().unwrap() {
                return Some(st);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        None
    }

    /// Processes still in the script's process group.
    fn group_members(&self) -> String {
        let out = Command::new("pgrep")
            .args(["-a", "-g", &self.pid().to_string()])
            .output()
            .expect("pgrep");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            self.terminate(Duration::from_secs(30));
        }
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.pid())])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.wait();
    }
}

async fn get(url: &str) -> Option<(u16, String)> {
    let r = reqwest::get(url).await.ok()?;
    let status = r.status().as_u16();
    Some((status, r.text().await.ok()?))
}

fn listening(port: u16) -> bool {
    TcpStream::connect_timeout(
        &format!("127.0.0.1:{port}").parse().unwrap(),
        Duration::from_millis(500),
    )
    .is_ok()
}

fn port_after(line: &str, prefix: &str) -> u16 {
    let rest = &line[line
        .find(prefix)
        .unwrap_or_else(|| panic!("{prefix:?} in {line:?}"))
        + prefix.len()..];
    rest.chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap_or_else(|_| panic!("a port after {prefix:?} in {line:?}"))
}

#[tokio::test]
async fn demo_shows_the_scenario_and_alerts_and_cleans_up() {
    let alerts_dir = repo().join("alerts");
    let rules = alerts_dir.join("pgmaint.rules.yml");
    let alertmanager_config = alerts_dir.join("alertmanager.yml");
    if alerts_dir.is_dir() {
        assert!(
            rules.is_file(),
            "alerts/ exists but alerts/pgmaint.rules.yml does not: the demo loads that file into Prometheus"
        );
    }
    assert!(
        Path::new("/usr/bin/prometheus").exists(),
        "the demo test needs Prometheus at /usr/bin/prometheus (apt-get install prometheus)"
    );
    let with_alertmanager = alertmanager_config.is_file();
    if with_alertmanager {
        assert!(
            Path::new("/usr/bin/prometheus-alertmanager").exists(),
            "alerts/alertmanager.yml exists: the demo test needs /usr/bin/prometheus-alertmanager (apt-get install prometheus-alertmanager)"
        );
    }

    let exporter_port = harness::free_port();
    let prom_port = harness::free_port();
    let am_port = harness::free_port();
    let exporter = format!("127.0.0.1:{exporter_port}");
    let mut demo = Demo::start(&[
        ("PGMAINT_LISTEN_ADDRESS", exporter.clone()),
        ("DEMO_PROMETHEUS_PORT", prom_port.to_string()),
        ("DEMO_ALERTMANAGER_PORT", am_port.to_string()),
        ("DEMO_ALERTMANAGER", "/usr/bin/prometheus-alertmanager".into()),
        // A bound in case the test dies without its Drop; the test stops it earlier.
        ("DEMO_SECONDS", "120".into()),
    ]);

    // The release build comes first: a cold one takes minutes.
    let pg_line = demo.wait_for_line("PostgreSQL 15 on 127.0.0.1:", Duration::from_secs(600));
    let pg_port = port_after(&pg_line, "127.0.0.1:");
    demo.wait_for_line("demo running", Duration::from_secs(60));
    let out = demo.output();
    assert!(
        out.contains(&format!("exporter on http://{exporter}/metrics")),
        "{out}"
    );
    assert!(
        out.contains(&format!("Prometheus on http://127.0.0.1:{prom_port}")),
        "{out}"
    );
    if with_alertmanager {
        assert!(
            out.contains(&format!("Alertmanager on http://127.0.0.1:{am_port}")),
            "{out}"
        );
    }

    // The scenario, as the exporter (connected as a pg_monitor role) reports it.
    let metrics_url = format!("http://{exporter}/metrics");
    let m = harness::eventually(Duration::from_secs(30), || async {
        let (status, body) = get(&metrics_url).await?;
        assert_eq!(status, 200, "{body}");
        let m = Samples::parse(&body);
        m.value(
            "pg_table_dead_tuples",
            &[("datname", "meetings"), ("relname", "meetings")],
        )?;
        Some(m)
    })
    .await;
    assert_meetings_findings(&m);
    // The session the script leaves idle in a transaction.
    let idle = m
        .value(
            "pg_activity_idle_in_transaction_max_seconds",
            &[("datname", "meetings")],
        )
        .expect("idle-in-transaction age for meetings");
    assert!(idle > 0.0, "idle in transaction for {idle} s");
    let sessions: f64 = m
        .find(
            "pg_activity_connections",
            &[("datname", "meetings"), ("state", "idle in transaction")],
        )
        .map(|s| s.value)
        .sum();
    assert_eq!(sessions, 1.0, "sessions idle in transaction in meetings");
    let xact = m
        .value(
            "pg_activity_oldest_xact_age_seconds",
            &[("datname", "meetings"), ("state", "idle in transaction")],
        )
        .expect("age of the open transaction in meetings");
    assert!(xact >= idle, "transaction age {xact} s, idle for {idle} s");

    // Prometheus: scraping the exporter; with our rules, an alert of ours is pending or firing.
    let prom = format!("http://127.0.0.1:{prom_port}");
    let up_url = format!("{prom}/api/v1/query?query=up%7Bjob%3D%22pgmaint%22%7D");
    harness::eventually(Duration::from_secs(30), || async {
        let (_, body) = get(&up_url).await?;
        // {"status":"success","data":{"resultType":"vector","result":[{"metric":{…},"value":[1700000000.1,"1"]}]}}
        body.contains(&format!("\"instance\":\"{exporter}\""))
            .then_some(())?;
        body.contains(",\"1\"]").then_some(())
    })
    .await;
    if rules.is_file() {
        let (_, rules_body) = get(&format!("{prom}/api/v1/rules")).await.unwrap();
        assert!(
            rules_body.contains("pgmaint.rules.yml") && rules_body.contains("\"type\":\"alerting\""),
            "Prometheus did not load alerting rules from alerts/pgmaint.rules.yml: {rules_body}"
        );
        let alerts_url = format!("{prom}/api/v1/alerts");
        let alerts = harness::eventually(Duration::from_secs(60), || async {
            let (_, body) = get(&alerts_url).await?;
            (body.contains("\"state\":\"pending\"") || body.contains("\"state\":\"firing\"")).then_some(body)
        })
        .await;
        assert!(alerts.contains("\"alertname\":\""), "{alerts}");
        if with_alertmanager {
            let (_, body) = get(&format!("{prom}/api/v1/alertmanagers")).await.unwrap();
            assert!(
                body.contains(&format!("127.0.0.1:{am_port}")),
                "Prometheus does not alert to the demo's Alertmanager: {body}"
            );
            let (status, _) = get(&format!("http://127.0.0.1:{am_port}/-/ready")).await.unwrap();
            assert_eq!(status, 200);
        }
    }

    // SIGTERM to the script: everything it started is gone within 30 s.
    assert!(listening(exporter_port) && listening(pg_port) && listening(prom_port));
    let status = demo.terminate(Duration::from_secs(30));
    assert!(status.is_some(), "demo.sh did not exit within 30 s of SIGTERM");
    for (what, port) in [
        ("exporter", exporter_port),
        ("PostgreSQL", pg_port),
        ("Prometheus", prom_port),
        ("Alertmanager", am_port),
    ] {
        assert!(
            !listening(port),
            "{what} still listens on {port} after demo.sh exited"
        );
    }
    let left = demo.group_members();
    assert!(left.is_empty(), "processes left behind by demo.sh: {left}");
}

/// What the meetings scenario plants in the `meetings` table, as a scrape
/// shows it: dead tuples past the vacuum trigger with autovacuum off, two
/// identical unused indexes (one flagged duplicate), and a primary key that
/// is never "unused". `scripts/demo.sh` and the compose files'
/// `deploy/compose/initdb/02-meetings.sql` seed the same scenario.
pub(crate) fn assert_meetings_findings(m: &Samples) {
    let table = [
        ("datname", "meetings"),
        ("schemaname", "public"),
        ("relname", "meetings"),
    ];
    let dead = m.value("pg_table_dead_tuples", &table).unwrap();
    let trigger = m
        .value("pg_table_autovacuum_vacuum_trigger_tuples", &table)
        .unwrap();
    // 50,000 rows, every 4th deleted (12,500 dead); trigger 50 + 0.2 × 50,000 = 10,050.
    assert!(
        (12000.0..=12500.0).contains(&dead),
        "dead tuples on meetings: {dead}"
    );
    assert!(
        (9000.0..=11000.0).contains(&trigger),
        "vacuum trigger of meetings: {trigger}"
    );
    assert!(dead > trigger, "dead {dead} above the trigger {trigger}");
    assert_eq!(m.value("pg_table_autovacuum_enabled", &table), Some(0.0));
    let index = |name: &'static str| {
        [
            ("datname", "meetings"),
            ("schemaname", "public"),
            ("relname", "meetings"),
            ("indexrelname", name),
        ]
    };
    assert_eq!(
        m.value("pg_index_unused", &index("meetings_title_idx")),
        Some(1.0)
    );
    assert_eq!(
        m.value("pg_index_unused", &index("meetings_title_idx2")),
        Some(1.0)
    );
    // The primary key enforces a constraint: never "unused".
    assert_eq!(m.value("pg_index_unused", &index("meetings_pkey")), Some(0.0));
    let dup = m
        .value("pg_index_duplicate", &index("meetings_title_idx"))
        .unwrap()
        + m.value("pg_index_duplicate", &index("meetings_title_idx2"))
            .unwrap();
    assert_eq!(dup, 1.0, "exactly one of the two identical indexes is flagged");
    assert_eq!(m.value("pg_index_duplicate", &index("meetings_pkey")), Some(0.0));
}
