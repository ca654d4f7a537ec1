//! Load: 50 concurrent clients scraping /metrics on loopback.
//!
//! A response counts as full when it is healthy, ends with the last family
//! and is at least 95 % of the warm-up body (it may grow: other tests'
//! sessions show up in cluster-wide activity series).
//!
//! 15 s in CI; `PGMAINT_LOAD_SECONDS=60 scripts/test.sh -E 'binary(load)'
//! --no-capture` for the documented run (figures in docs/reliability.md).
//! The exporter is spawned here rather than through the harness so that its
//! pid (for VmRSS) is at hand.

use crate::harness;

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use harness::Samples;

const CLIENTS: usize = 50;
const MAX_CONNECTIONS: i64 = 4;

/// The exporter binary, with its pid; killed on drop.
struct Proc {
    child: Child,
    addr: String,
    log: std::path::PathBuf,
}

impl Proc {
    async fn spawn(vars: &[(&str, &str)]) -> Proc {
        let port = harness::free_port();
        let addr = format!("127.0.0.1:{port}");
        let log = std::env::temp_dir().join(format!("pgmaint-load-{}-{port}.log", std::process::id()));
        let child = Command::new(env!("CARGO_BIN_EXE_pgmaint-exporter"))
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("PGMAINT_LISTEN_ADDRESS", &addr)
            .envs(vars.iter().copied())
            .stdout(Stdio::from(std::fs::File::create(&log).unwrap()))
            .stderr(Stdio::from(
                std::fs::File::options().append(true).open(&log).unwrap(),
            ))
            .spawn()
            .expect("start exporter");
        let p = Proc { child, addr, log };
        harness::eventually(Duration::from_secs(15), || async {
            let r = reqwest::get(format!("http://{}/healthz", p.addr)).await.ok()?;
            (r.status() == 200).then_some(())
        })
        .await;
        p
    }

    fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

/// What one run measured.
#[derive(Debug)]
struct Run {
    clients: usize,
    requests: usize,
    errors: Vec<String>,
    min_body: usize,
    max_body: usize,
    /// Statements the exporter ran on the server during the run.
    statements: i64,
    max_sessions: i64,
    rss_kib: Vec<u64>,
}

/// Calls of the exporter's statements in `db` (pg_stat_statements is
/// updated as each statement ends).
async fn exporter_calls(admin: &tokio_postgres::Client, db: &str) -> i64 {
    admin
        .query_one(
            "SELECT coalesce(sum(s.calls), 0)::int8 FROM pg_stat_statements s
               JOIN pg_database d ON d.oid = s.dbid
              WHERE d.datname = $1 AND s.query NOT LIKE '%pg_stat_statements%'
                AND s.query NOT LIKE '%pg_stat_activity WHERE application_name%'",
            &[&db],
        )
        .await
        .unwrap()
        .get(0)
}

async fn run(
    p: &Proc,
    admin: &tokio_postgres::Client,
    db: &str,
    clients: usize,
    seconds: u64,
    reference: usize,
) -> Run {
    let before = exporter_calls(admin, db).await;
    let stop = Arc::new(AtomicBool::new(false));
    let end = Instant::now() + Duration::from_secs(seconds);
    let workers: Vec<_> = (0..clients)
        .map(|_| {
            let addr = p.addr.clone();
            tokio::spawn(async move {
                // One client each: its own connection, like separate scrapers.
                let http = reqwest::Client::builder()
                    .timeout(Duration::from_secs(30))
                    .build()
                    .unwrap();
                let (mut n, mut errors, mut sizes) = (0usize, Vec::new(), (usize::MAX, 0usize));
                while Instant::now() < end {
                    n += 1;
                    match http.get(format!("http://{addr}/metrics")).send().await {
                        Ok(r) if r.status() == 200 => match r.text().await {
                            // Full: healthy, as long as the warm-up body (give or take
                            // other tests' sessions), and ending with the last family.
                            Ok(body)
                                if body.contains("\npg_up 1\n")
                                    && body.len() as f64 >= reference as f64 * 0.95
                                    && body.contains("# TYPE pgmaint_exporter_scrapes_total counter") =>
                            {
                                sizes = (sizes.0.min(body.len()), sizes.1.max(body.len()));
                            }
                            Ok(body) => errors.push(format!(
                                "short or unhealthy body: {}",
                                body.chars().take(300).collect::<String>()
                            )),
                            Err(e) => errors.push(format!("body: {e}")),
                        },
                        Ok(r) => errors.push(format!("HTTP {}", r.status())),
                        Err(e) => errors.push(format!("request: {e}")),
                    }
                }
                (n, errors, sizes)
            })
        })
        .collect();
    // Sampler: exporter sessions on the server and RSS, every 250 ms.
    let sampler = {
        let stop = stop.clone();
        let (url, db, pid) = (harness::cluster().url("postgres"), db.to_string(), p.child.id());
        tokio::spawn(async move {
            let c = harness::connect(&url).await;
            let (mut max_sessions, mut rss) = (0i64, Vec::new());
            while !stop.load(Ordering::Relaxed) {
                let n: i64 = c
                    .query_one(
                        "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pgmaint-exporter' AND datname = $1",
                        &[&db],
                    )
                    .await
                    .unwrap()
                    .get(0);
                max_sessions = max_sessions.max(n);
                let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
                if let Some(kib) = status
                    .lines()
                    .find_map(|l| l.strip_prefix("VmRSS:"))
                    .and_then(|v| v.split_whitespace().next())
                    .and_then(|v| v.parse().ok())
                {
                    rss.push(kib);
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            (max_sessions, rss)
        })
    };
    let mut out = Run {
        clients,
        requests: 0,
        errors: vec![],
        min_body: usize::MAX,
        max_body: 0,
        statements: 0,
        max_sessions: 0,
        rss_kib: vec![],
    };
    for w in workers {
        let (n, errors, (lo, hi)) = w.await.unwrap();
        out.requests += n;
        out.errors.extend(errors);
        out.min_body = out.min_body.min(lo);
        out.max_body = out.max_body.max(hi);
    }
    stop.store(true, Ordering::Relaxed);
    let (max_sessions, rss) = sampler.await.unwrap();
    out.max_sessions = max_sessions;
    out.rss_kib = rss;
    out.statements = exporter_calls(admin, db).await - before;
    out
}

#[tokio::test]
async fn fifty_clients_scraping() {
    let seconds: u64 = std::env::var("PGMAINT_LOAD_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(15);
    let pg = harness::cluster();
    let db = pg.fresh_db().await;
    // Small but not trivial: 40 tables with an index each and some dead rows.
    let mut ddl = String::from("CREATE EXTENSION pg_stat_statements;");
    for i in 0..40 {
        ddl.push_str(&format!(
            "CREATE TABLE t{i} (id int PRIMARY KEY, v text);
             INSERT INTO t{i} SELECT g, 'v' FROM generate_series(1, 200) g;
             DELETE FROM t{i} WHERE id <= 20;"
        ));
    }
    db.batch(&ddl).await;
    let url = pg.url(&db.name);
    let p = Proc::spawn(&[
        ("PGMAINT_DATABASE_URL", &url),
        ("PGMAINT_INCLUDE_DATABASES", &db.name),
        ("PGMAINT_LOG_LEVEL", "info"),
        ("PGMAINT_MAX_CONNECTIONS", "4"),
        // Every request that finds no scrape in flight starts one: the
        // strictest setting for "load grows with time, not with clients".
        ("PGMAINT_MIN_SCRAPE_INTERVAL", "0s"),
    ])
    .await;
    let admin = pg.client(&db.name).await;
    // Warm up: caches filled, first-run background refreshes done.
    let mut reference = 0;
    for _ in 0..3 {
        let (s, body) = get(&p.addr).await;
        assert_eq!(s, 200);
        assert_eq!(Samples::parse(&body).value("pg_up", &[]), Some(1.0));
        reference = body.len();
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    let many = run(&p, &admin, &db.name, CLIENTS, seconds, reference).await;
    let one = run(&p, &admin, &db.name, 1, seconds, reference).await;
    for r in [&many, &one] {
        let rss = &r.rss_kib;
        eprintln!(
            "{} clients, {seconds} s: {} requests ({:.0}/s), {} errors, body {}..{} bytes, \
             {} exporter statements on the server ({:.1}/s), max {} exporter sessions, \
             RSS first/last/max {}/{}/{} KiB",
            r.clients,
            r.requests,
            r.requests as f64 / seconds as f64,
            r.errors.len(),
            r.min_body,
            r.max_body,
            r.statements,
            r.statements as f64 / seconds as f64,
            r.max_sessions,
            rss.first().unwrap_or(&0),
            rss.last().unwrap_or(&0),
            rss.iter().max().unwrap_or(&0),
        );
        assert!(
            r.errors.is_empty(),
            "{} errors, first: {:?}",
            r.errors.len(),
            &r.errors[..r.errors.len().min(5)]
        );
        assert!(r.requests >= r.clients, "every client got answers");
        assert!(
            (1..=MAX_CONNECTIONS).contains(&r.max_sessions),
            "{} exporter sessions (cap {MAX_CONNECTIONS})",
            r.max_sessions
        );
        assert!(r.statements > 0);
        assert!(rss.len() >= 4, "RSS sampled: {rss:?}");
    }
    // Flat memory: under load RSS may grow a little at first (buffers for
    // 50 responses), then holds.
    let rss = &many.rss_kib;
    let (first, last) = (rss[0], *rss.last().unwrap());
    let mid = rss[rss.len() / 2];
    assert!(
        last <= first + first / 2 + 8 * 1024,
        "RSS grew from {first} to {last} KiB: {rss:?}"
    );
    assert!(
        last <= mid + mid / 5 + 4 * 1024,
        "RSS still growing in the second half: {rss:?}"
    );
    // 50 clients share scrapes: statements grow with time, not with clients.
    let ratio = many.statements as f64 / one.statements as f64;
    eprintln!("statements 50 clients / 1 client = {ratio:.2}");
    assert!(ratio < 2.0, "50 clients ran {ratio:.2}x the statements of 1");
    // More clients are served more answers in the same time (how many more
    // depends on the machine's load: only the direction is asserted).
    assert!(
        many.requests > one.requests * 2,
        "{} vs {} requests",
        many.requests,
        one.requests
    );
    let logs = p.logs();
    assert!(!logs.contains("panicked"), "{logs}");
}

async fn get(addr: &str) -> (u16, String) {
    let r = reqwest::get(format!("http://{addr}/metrics")).await.unwrap();
    let s = r.status().as_u16();
    (s, r.text().await.unwrap())
}
