//! The HTTP surface and the database going away: pg_up, self-metrics, the
//! landing page, and no password anywhere.

use crate::harness;

use std::time::{Duration, Instant};

#[tokio::test]
async fn database_down_and_back_without_restart() {
    let pg = harness::dedicated();
    let exporter = pg.spawn_exporter("postgres", &[]).await;
    let m = exporter.scrape().await;
    assert_eq!(m.value("pg_up", &[]), Some(1.0));
    assert_eq!(
        m.value(
            "pg_scrape_collector_success",
            &[("collector", "activity"), ("datname", "")]
        ),
        Some(1.0)
    );

    pg.stop();
    let started = Instant::now();
    let m = exporter.scrape().await;
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(2),
        "scrape with the database down took {took:?}"
    );
    assert_eq!(m.value("pg_up", &[]), Some(0.0));
    assert_eq!(
        m.value(
            "pg_scrape_collector_success",
            &[("collector", "activity"), ("datname", "")]
        ),
        Some(0.0)
    );
    assert!(m.has("pgmaint_exporter_build_info"));
    assert!(!m.has("pg_activity_connections"));

    pg.start();
    let m = harness::eventually(Duration::from_secs(10), || async {
        let m = exporter.scrape().await;
        (m.value("pg_up", &[]) == Some(1.0)).then_some(m)
    })
    .await;
    assert_eq!(
        m.value(
            "pg_scrape_collector_success",
            &[("collector", "activity"), ("datname", "")]
        ),
        Some(1.0)
    );
    assert!(exporter.logs().contains("PostgreSQL is unreachable"));
}

#[tokio::test]
async fn starts_and_answers_with_nothing_listening() {
    let port = harness::free_port();
    let url = format!("postgresql://postgres@127.0.0.1:{port}/postgres");
    let exporter = harness::Exporter::spawn(&[("PGMAINT_DATABASE_URL", &url)]).await;
    let started = Instant::now();
    let m = exporter.scrape().await;
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(m.value("pg_up", &[]), Some(0.0));
    assert_eq!(m.value("pgmaint_exporter_connections_open", &[]), Some(0.0));
}

#[tokio::test]
async fn self_metrics_landing_page_and_health() {
    let pg = harness::cluster();
    let db = pg.fresh_db().await;
    let exporter = pg
        .spawn_exporter(&db.name, &[("PGMAINT_MAX_CONNECTIONS", "2")])
        .await;
    let m = exporter.scrape().await;
    assert_eq!(m.value("pg_up", &[]), Some(1.0));
    let version = db
        .client
        .query_one("SHOW server_version", &[])
        .await
        .unwrap()
        .get::<_, String>(0);
    assert_eq!(
        m.value("pg_server_info", &[("version", version.as_str())]),
        Some(1.0)
    );
    let started = db
        .scalar_f64("SELECT extract(epoch FROM pg_postmaster_start_time())::float8")
        .await;
    assert!((m.value("pg_postmaster_start_time_seconds", &[]).unwrap() - started).abs() < 1e-3);
    assert_eq!(
        m.value("pgmaint_exporter_role_privilege", &[("privilege", "superuser")]),
        Some(1.0)
    );
    assert_eq!(
        m.value("pgmaint_exporter_role_privilege", &[("privilege", "pg_monitor")]),
        Some(1.0)
    );
    assert_eq!(m.value("pgmaint_exporter_connections_max", &[]), Some(2.0));
    let open = m.value("pgmaint_exporter_connections_open", &[]).unwrap();
    assert!((1.0..=2.0).contains(&open), "{open}");
    assert!(
        m.find(
            "pgmaint_exporter_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        )
        .count()
            == 1
    );
    // Our sessions are read-only and named.
    let ro: i64 = db
        .client
        .query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pgmaint-exporter' AND datname = $1",
            &[&db.name],
        )
        .await
        .unwrap()
        .get(0);
    assert!(ro >= 1);

    let (status, body) = exporter.get("/").await;
    assert_eq!(status, 200);
    for c in pgmaint_exporter::collectors::ALL {
        assert!(
            body.contains(&format!("<code>{}</code>", c.name())),
            "landing page lacks {}",
            c.name()
        );
    }
    assert!(body.contains("/metrics"));
    assert_eq!(exporter.get("/healthz").await, (200, "ok\n".to_string()));
}

#[tokio::test]
async fn pooled_sessions_are_read_only_with_timeouts() {
    let pg = harness::cluster();
    let db = pg.fresh_db().await;
    let config = pgmaint_exporter::config::Config::from_vars([
        ("PGMAINT_DATABASE_URL".to_string(), db.url.clone()),
        ("PGMAINT_STATEMENT_TIMEOUT".to_string(), "3s".to_string()),
        ("PGMAINT_LOCK_TIMEOUT".to_string(), "700ms".to_string()),
    ])
    .unwrap();
    let pools = pgmaint_exporter::pool::Pools::new(&config);
    let lease = pools
        .get(&db.name, Instant::now() + Duration::from_secs(5))
        .await
        .unwrap();
    let show = |s: &'static str| {
        let c = &lease.conn;
        async move { c.query_one(s, &[]).await.unwrap().get::<_, String>(0) }
    };
    assert_eq!(show("SHOW default_transaction_read_only").await, "on");
    assert_eq!(show("SHOW statement_timeout").await, "3s");
    assert_eq!(show("SHOW lock_timeout").await, "700ms");
    assert_eq!(show("SHOW application_name").await, "pgmaint-exporter");
    let err = lease
        .conn
        .batch_execute("CREATE TABLE nope (x int)")
        .await
        .unwrap_err();
    assert_eq!(
        err.as_db_error().unwrap().code().code(),
        "25006",
        "read_only_sql_transaction"
    );
    assert_eq!(pools.open_connections(), 1);

    // Another database gets the same settings as startup options (no
    // statement per new connection, issue 22); RESET ALL keeps them.
    let other = pools
        .get("postgres", Instant::now() + Duration::from_secs(5))
        .await
        .unwrap();
    let show = |s: &'static str| {
        let c = &other.conn;
        async move { c.query_one(s, &[]).await.unwrap().get::<_, String>(0) }
    };
    other.conn.batch_execute("RESET ALL").await.unwrap();
    assert_eq!(show("SHOW default_transaction_read_only").await, "on");
    assert_eq!(show("SHOW statement_timeout").await, "3s");
    assert_eq!(show("SHOW lock_timeout").await, "700ms");
    assert_eq!(show("SHOW idle_in_transaction_session_timeout").await, "1min");
    assert_eq!(show("SHOW application_name").await, "pgmaint-exporter");
    assert_eq!(pools.open_connections(), 2);
}

#[tokio::test]
async fn password_never_appears_in_any_output() {
    let pg = harness::cluster();
    let db = pg.fresh_db().await;
    let secret = "hunter2-Sup3rSecret";
    // Trust auth accepts any password: the exporter still must not print it.
    let url = format!("postgresql://postgres:{secret}@127.0.0.1:{}/{}", pg.port, db.name);
    let exporter = harness::Exporter::spawn(&[
        ("PGMAINT_DATABASE_URL", &url),
        ("PGMAINT_INCLUDE_DATABASES", &db.name),
        ("PGMAINT_LOG_LEVEL", "trace"),
    ])
    .await;
    let (_, metrics) = exporter.get("/metrics").await;
    let (_, landing) = exporter.get("/").await;
    let logs = exporter.logs();
    assert!(logs.contains("listening"), "{logs}");
    for (what, text) in [("metrics", &metrics), ("landing", &landing), ("logs", &logs)] {
        assert!(!text.contains(secret), "password in {what}");
    }
}

#[tokio::test]
async fn concurrent_scrapes_share_one_result() {
    let pg = harness::cluster();
    let db = pg.fresh_db().await;
    let exporter = pg
        .spawn_exporter(&db.name, &[("PGMAINT_MIN_SCRAPE_INTERVAL", "0s")])
        .await;
    let first = exporter
        .scrape()
        .await
        .value("pgmaint_exporter_scrapes_total", &[])
        .unwrap();
    // 8 clients at once: they queue behind one scrape and share results, so
    // the exporter runs far fewer scrapes than it serves.
    let bodies = futures::future::join_all((0..8).map(|_| exporter.get("/metrics"))).await;
    let after = exporter
        .scrape()
        .await
        .value("pgmaint_exporter_scrapes_total", &[])
        .unwrap();
    for (status, body) in &bodies {
        assert_eq!(*status, 200);
        assert!(body.contains("pg_up 1"));
    }
    let ran = after - first;
    assert!(ran <= 3.0, "8 concurrent requests ran {ran} scrapes");

    // Within PGMAINT_MIN_SCRAPE_INTERVAL, a result is served again.
    let cached = pg
        .spawn_exporter(&db.name, &[("PGMAINT_MIN_SCRAPE_INTERVAL", "30s")])
        .await;
    let a = cached.scrape().await.value("pgmaint_exporter_scrapes_total", &[]);
    let b = cached.scrape().await.value("pgmaint_exporter_scrapes_total", &[]);
    assert_eq!(a, Some(1.0));
    assert_eq!(b, Some(1.0));
}

/// Any `X-Prometheus-Scrape-Timeout-Seconds` value gets an answer on every
/// endpoint that reads it (issue 17 item 2: `1e308` and `18446744073709551616`
/// panicked in `Duration::from_secs_f64` and dropped the connection).
#[tokio::test]
async fn any_scrape_timeout_header_is_answered() {
    let pg = harness::cluster();
    let db = pg.fresh_db().await;
    let dir = std::env::temp_dir().join(format!("pgmaint-timeout-header-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("config.yml");
    std::fs::write(
        &config,
        "auth_modules:\n  plain:\n    user: postgres\n    sslmode: disable\n    allowed_targets: [127.0.0.1]\n",
    )
    .unwrap();
    let exporter = pg
        .spawn_exporter(
            &db.name,
            &[
                ("PGMAINT_CONFIG_FILE", config.to_str().unwrap()),
                ("PGMAINT_SCRAPE_TIMEOUT", "5s"),
                ("PGMAINT_LOG_LEVEL", "info"),
            ],
        )
        .await;
    let probe = format!(
        "/probe?target=127.0.0.1:{}/{}&auth_module=plain",
        pg.port, db.name
    );
    let client = reqwest::Client::new();
    let huge = "9".repeat(400);
    for value in [
        "1e308",
        "18446744073709551616",
        "NaN",
        "inf",
        "-inf",
        "-5",
        "0",
        "garbage",
        "",
        huge.as_str(),
        "4",
    ] {
        for path in ["/metrics", probe.as_str(), "/report.json"] {
            let started = Instant::now();
            let r = client
                .get(format!("http://{}{path}", exporter.addr))
                .header("X-Prometheus-Scrape-Timeout-Seconds", value)
                .send()
                .await
                .unwrap_or_else(|e| panic!("{path} with {value:?}: no answer: {e}\n{}", exporter.logs()));
            let status = r.status().as_u16();
            let body = r.text().await.unwrap();
            assert_eq!(status, 200, "{path} with {value:?}: {body}");
            assert!(
                started.elapsed() < Duration::from_secs(6),
                "{path} with {value:?} took {:?}: the configured 5s must bound it",
                started.elapsed()
            );
            if path != "/report.json" {
                assert!(body.contains("pg_up 1"), "{path} with {value:?}: {body}");
            }
        }
    }
    let logs = exporter.logs();
    assert!(!logs.contains("panicked"), "{logs}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A child process killed on drop, so a failing test leaves no exporter behind.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The exporter binary with its open-files limit lowered to `nofile` (soft
/// and hard), its output in `log`.
fn spawn_with_nofile(vars: &[(&str, &str)], nofile: u64, log: &std::path::Path) -> Killed {
    use std::os::unix::process::CommandExt;
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_pgmaint-exporter"));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .stdout(std::fs::File::create(log).unwrap())
        .stderr(std::fs::File::options().append(true).open(log).unwrap());
    for (k, v) in vars {
        cmd.env(k, v);
    }
    // SAFETY: only setrlimit, async-signal-safe, between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            let rl = libc::rlimit {
                rlim_cur: nofile,
                rlim_max: nofile,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &rl) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    Killed(cmd.spawn().expect("start exporter"))
}

/// 300 idle and trickling clients do not stop a scraper (issue 17 item 3:
/// with a 256-file limit `/metrics` stopped answering, `accept error: Too
/// many open files` every second). The exporter runs with RLIMIT_NOFILE
/// 256; half the clients connect and say nothing, half send a request's
/// headers one byte every 300 ms.
#[tokio::test]
async fn metrics_answer_while_300_slow_clients_are_connected() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let pg = harness::cluster();
    let db = pg.fresh_db().await;
    let port = harness::free_port();
    let addr = format!("127.0.0.1:{port}");
    let log = std::env::temp_dir().join(format!("pgmaint-slow-clients-{}.log", std::process::id()));
    let mut child = spawn_with_nofile(
        &[
            ("PGMAINT_DATABASE_URL", db.url.as_str()),
            ("PGMAINT_INCLUDE_DATABASES", db.name.as_str()),
            ("PGMAINT_LISTEN_ADDRESS", addr.as_str()),
            ("PGMAINT_COLLECTORS", "database,activity"),
            ("PGMAINT_HTTP_READ_HEADER_TIMEOUT", "2s"),
            ("PGMAINT_LOG_LEVEL", "info"),
        ],
        256,
        &log,
    );
    let logs = || std::fs::read_to_string(&log).unwrap_or_default();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    harness::eventually(Duration::from_secs(15), || async {
        let r = client.get(format!("http://{addr}/healthz")).send().await.ok()?;
        (r.status() == 200).then_some(())
    })
    .await;

    let mut idle = Vec::new();
    let mut trickling = Vec::new();
    for i in 0..300 {
        let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
        if i % 2 == 0 {
            idle.push(s);
        } else {
            trickling.push(tokio::spawn(async move {
                let request = b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
                let started = Instant::now();
                for b in request.iter() {
                    if s.write_all(&[*b]).await.is_err() {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(300)).await;
                }
                // Closed by the exporter: reads end (EOF or reset).
                let mut buf = [0u8; 64];
                let closed = matches!(
                    tokio::time::timeout(Duration::from_secs(1), s.read(&mut buf)).await,
                    Ok(Ok(0) | Err(_))
                );
                (closed, started.elapsed())
            }));
        }
    }

    // A scraper, five times, while all 300 are connected.
    for _ in 0..5 {
        let started = Instant::now();
        let r = client
            .get(format!("http://{addr}/metrics"))
            .send()
            .await
            .unwrap_or_else(|e| panic!("scrape failed: {e}\n{}", logs()));
        assert_eq!(r.status(), 200);
        let body = r.text().await.unwrap();
        assert!(body.contains("pg_up 1"), "{body}");
        let took = started.elapsed();
        assert!(took < Duration::from_secs(3), "scrape took {took:?}\n{}", logs());
    }

    // Trickling clients are cut off once their headers take longer than 2s.
    let mut cut = 0;
    for t in trickling {
        let (closed, lasted) = t.await.unwrap();
        if closed && lasted < Duration::from_secs(15) {
            cut += 1;
        }
    }
    assert!(
        cut >= 100,
        "only {cut} of 150 trickling clients were cut off\n{}",
        logs()
    );
    drop(idle);
    assert!(child.0.try_wait().unwrap().is_none(), "exporter died\n{}", logs());
    let text = logs();
    assert!(!text.contains("panicked"), "{text}");
    drop(child);
    let _ = std::fs::remove_file(&log);
}

/// At `PGMAINT_HTTP_MAX_CONNECTIONS` the longest-idle connection makes room
/// for a new client, and `PGMAINT_HTTP_IDLE_TIMEOUT` closes idle ones.
#[tokio::test]
async fn the_connection_cap_makes_room_and_idle_connections_close() {
    use tokio::io::AsyncReadExt;
    let pg = harness::cluster();
    let db = pg.fresh_db().await;
    let exporter = pg
        .spawn_exporter(
            &db.name,
            &[
                ("PGMAINT_COLLECTORS", "database"),
                ("PGMAINT_HTTP_MAX_CONNECTIONS", "20"),
                ("PGMAINT_HTTP_IDLE_TIMEOUT", "3s"),
            ],
        )
        .await;
    let mut idle = Vec::new();
    for _ in 0..60 {
        idle.push(tokio::net::TcpStream::connect(&exporter.addr).await.unwrap());
    }
    let started = Instant::now();
    let m = exporter.scrape().await;
    assert_eq!(m.value("pg_up", &[]), Some(1.0));
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    // The oldest were closed to make room: at least 40 of the 60 see EOF at once.
    let mut closed = 0;
    for s in idle.iter_mut() {
        let mut b = [0u8; 1];
        if let Ok(Ok(0) | Err(_)) = tokio::time::timeout(Duration::from_millis(20), s.read(&mut b)).await {
            closed += 1;
        }
    }
    assert!(closed >= 40, "{closed} of 60 closed");
    // A lone idle connection is closed after the idle timeout.
    let mut lone = tokio::net::TcpStream::connect(&exporter.addr).await.unwrap();
    let opened = Instant::now();
    let mut b = [0u8; 1];
    let r = tokio::time::timeout(Duration::from_secs(10), lone.read(&mut b)).await;
    assert!(matches!(r, Ok(Ok(0) | Err(_))), "{r:?}");
    let lasted = opened.elapsed();
    assert!(
        lasted >= Duration::from_millis(2900) && lasted < Duration::from_secs(6),
        "closed after {lasted:?}"
    );
}
