//! Faults: the exporter keeps answering, truthfully, while PostgreSQL
//! restarts, crashes, hangs, refuses it or hides things from it; and odd
//! names never break the exposition format.
//!
//! Tests that stop or break a server use a dedicated cluster. Every scrape is
//! timed: with `PGMAINT_SCRAPE_TIMEOUT=3s` an answer must come within the
//! timeout plus a generous margin (2 shared cores).

use crate::harness;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use harness::{Cluster, Exporter, Samples};

const SCRAPE_TIMEOUT: Duration = Duration::from_secs(3);
/// Slack over the scrape timeout for encoding, transfer and a loaded machine.
const MARGIN: Duration = Duration::from_secs(3);
const MAX_CONNECTIONS: i64 = 2;
const PG_BIN: &str = "/usr/lib/postgresql/15/bin";

/// A small, fast collector set with no cached (background) collectors, so
/// every connection the exporter holds belongs to a scrape.
fn env<'a>() -> Vec<(&'a str, &'a str)> {
    vec![
        ("PGMAINT_SCRAPE_TIMEOUT", "3s"),
        ("PGMAINT_MAX_CONNECTIONS", "2"),
        ("PGMAINT_COLLECTORS", "activity,database,tables,indexes"),
    ]
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// One timed scrape.
#[derive(Debug, Clone)]
struct Obs {
    at: Instant,
    took: Duration,
    status: u16,
    up: Option<f64>,
    ok: usize,
    failed: usize,
    scrapes_total: Option<f64>,
}

async fn observe(http: &reqwest::Client, addr: &str) -> Obs {
    let at = Instant::now();
    let (status, body) = match http.get(format!("http://{addr}/metrics")).send().await {
        Ok(r) => {
            let s = r.status().as_u16();
            (s, r.text().await.unwrap_or_default())
        }
        Err(e) => (0, e.to_string()),
    };
    let took = at.elapsed();
    let m = Samples::parse(if status == 200 { &body } else { "" });
    let success: Vec<f64> = m
        .find("pg_scrape_collector_success", &[])
        .map(|s| s.value)
        .collect();
    Obs {
        at,
        took,
        status,
        up: m.value("pg_up", &[]),
        ok: success.iter().filter(|v| **v == 1.0).count(),
        failed: success.iter().filter(|v| **v == 0.0).count(),
        scrapes_total: m.value("pgmaint_exporter_scrapes_total", &[]),
    }
}

/// Scrapes in a loop (every `every`) until finished; aborted on drop.
struct Recorder {
    stop: Arc<AtomicBool>,
    task: Option<tokio::task::JoinHandle<Vec<Obs>>>,
}

impl Recorder {
    fn start(addr: &str, every: Duration) -> Recorder {
        let stop = Arc::new(AtomicBool::new(false));
        let (flag, addr) = (stop.clone(), addr.to_string());
        let task = tokio::spawn(async move {
            let http = http();
            let until = Instant::now() + Duration::from_secs(180);
            let mut out = Vec::new();
            while !flag.load(Ordering::Relaxed) && Instant::now() < until {
                out.push(observe(&http, &addr).await);
                tokio::time::sleep(every).await;
            }
            out
        });
        Recorder {
            stop,
            task: Some(task),
        }
    }

    async fn finish(mut self) -> Vec<Obs> {
        self.stop.store(true, Ordering::Relaxed);
        self.task.take().unwrap().await.unwrap()
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        if let Some(t) = &self.task {
            t.abort();
        }
    }
}

/// Every scrape answered 200 within the scrape timeout (plus margin), from
/// one exporter process (its scrape counter never went back).
fn assert_always_answered(obs: &[Obs]) {
    assert!(!obs.is_empty());
    for o in obs {
        assert_eq!(o.status, 200, "{o:?}");
        assert!(
            o.took < SCRAPE_TIMEOUT + MARGIN,
            "scrape took {:?}: {o:?}",
            o.took
        );
    }
    let totals: Vec<f64> = obs.iter().filter_map(|o| o.scrapes_total).collect();
    assert!(
        totals.windows(2).all(|w| w[0] <= w[1]),
        "pgmaint_exporter_scrapes_total went back: the exporter restarted: {totals:?}"
    );
}

/// Scrapes fully inside [from, until] say pg_up 0 and no collector succeeded.
fn assert_down_between(obs: &[Obs], from: Instant, until: Instant) -> usize {
    let during: Vec<&Obs> = obs
        .iter()
        .filter(|o| o.at >= from && o.at + o.took <= until)
        .collect();
    assert!(!during.is_empty(), "no scrape while the server was down");
    for o in &during {
        assert_eq!(o.up, Some(0.0), "pg_up while down: {o:?}");
        assert_eq!(o.ok, 0, "a collector succeeded while down: {o:?}");
        assert!(o.failed > 0, "collectors must report success 0 while down: {o:?}");
    }
    during.len()
}

/// Waits until a scrape says pg_up 1 with every collector successful.
async fn healthy(exp: &Exporter) -> Obs {
    let http = http();
    harness::eventually(Duration::from_secs(30), || {
        let http = http.clone();
        async move {
            let o = observe(&http, &exp.addr).await;
            (o.up == Some(1.0) && o.failed == 0 && o.ok > 0).then_some(o)
        }
    })
    .await
}

async fn exporter_sessions(pg: &Cluster, filter_db: Option<&str>) -> i64 {
    let c = pg.client("postgres").await;
    let row = c
        .query_one(
            "SELECT count(*) FROM pg_stat_activity
              WHERE application_name = 'pgmaint-exporter' AND ($1::text IS NULL OR datname = $1)",
            &[&filter_db],
        )
        .await
        .unwrap();
    row.get(0)
}

fn assert_no_panic(exp: &Exporter) {
    let logs = exp.logs();
    assert!(!logs.contains("panicked"), "exporter panicked: {logs}");
}

/// `harness::as_pg` with its output discarded.
fn as_pg(args: &[&str]) -> Command {
    let mut c = harness::as_pg(args);
    c.stdout(Stdio::null());
    c
}

/// 'Z' for a zombie, None once the process is gone.
fn pid_state(pid: u32) -> Option<char> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    s.rsplit(')').next()?.trim_start().chars().next()
}

fn children_of(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(p) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if let Ok(s) = std::fs::read_to_string(format!("/proc/{p}/stat")) {
            let ppid = s.rsplit(')').next().and_then(|r| r.split_whitespace().nth(1));
            if ppid == Some(pid.to_string().as_str()) {
                out.push(p);
            }
        }
    }
    out
}

/// SIGKILLs the postmaster and waits (bounded) until it and every backend it
/// had are gone, so the next start finds no shared memory in use.
async fn kill_postmaster(data: &Path) {
    let pidfile = std::fs::read_to_string(data.join("postmaster.pid")).unwrap();
    let pm: u32 = pidfile.lines().next().unwrap().trim().parse().unwrap();
    let kids = children_of(pm);
    assert!(!kids.is_empty(), "postmaster {pm} has no children?");
    let st = Command::new("kill")
        .args(["-9", &pm.to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    let until = Instant::now() + Duration::from_secs(30);
    let running = |p: &u32| !matches!(pid_state(*p), None | Some('Z'));
    while running(&pm) || kids.iter().any(running) {
        assert!(
            Instant::now() < until,
            "postmaster {pm} or its backends survived SIGKILL"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Its backends are gone, so no one uses the shared memory any more. A
    // dead postmaster nobody has reaped yet still passes kill(pid, 0), which
    // makes the next postmaster refuse the lock file: wait for the reaping a
    // little, then remove the stale file as an administrator would.
    let reaped = Instant::now() + Duration::from_secs(3);
    while pid_state(pm).is_some() && Instant::now() < reaped {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if pid_state(pm).is_some() {
        std::fs::remove_file(data.join("postmaster.pid")).unwrap();
    }
}

fn data_dir(pg: &Cluster) -> PathBuf {
    PathBuf::from(&pg.dir).join("data")
}

/// `pg_ctl start -W` (no wait; waiting is the default since PostgreSQL 10):
/// returns while the server still starts up.
fn start_no_wait(pg: &Cluster) {
    let data = data_dir(pg);
    let log = format!("{}/server.log", pg.dir);
    let st = as_pg(&[
        &format!("{PG_BIN}/pg_ctl"),
        "-D",
        data.to_str().unwrap(),
        "-l",
        &log,
        "-W",
        "start",
    ])
    .status()
    .unwrap();
    assert!(st.success());
}

enum Outage {
    Restart,
    Kill,
    Stopped(Duration),
}

/// The outage scenario: scrapes run in a loop across the outage and after.
async fn outage(kind: Outage) {
    let pg = harness::dedicated();
    let exp = pg.spawn_exporter("postgres", &env()).await;
    healthy(&exp).await;
    let rec = Recorder::start(&exp.addr, Duration::from_millis(50));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut down = None;
    match kind {
        Outage::Restart => {
            let data = data_dir(&pg);
            let st = as_pg(&[
                &format!("{PG_BIN}/pg_ctl"),
                "-D",
                data.to_str().unwrap(),
                "-m",
                "fast",
                "-w",
                "restart",
            ])
            .status()
            .unwrap();
            assert!(st.success());
        }
        Outage::Kill => {
            kill_postmaster(&data_dir(&pg)).await;
            let from = Instant::now();
            tokio::time::sleep(Duration::from_secs(2)).await;
            down = Some((from, Instant::now()));
            pg.start();
        }
        Outage::Stopped(d) => {
            pg.stop();
            let from = Instant::now();
            tokio::time::sleep(d).await;
            down = Some((from, Instant::now()));
            pg.start();
        }
    }
    let back = healthy(&exp).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let obs = rec.finish().await;
    assert_always_answered(&obs);
    if let Some((from, until)) = down {
        let n = assert_down_between(&obs, from, until);
        eprintln!("{n} scrapes while down, all pg_up 0");
    }
    let after: Vec<&Obs> = obs.iter().filter(|o| o.at > back.at).collect();
    assert!(
        after.iter().all(|o| o.up == Some(1.0) && o.failed == 0),
        "once recovered, every later scrape is healthy: {after:?}"
    );
    let worst = obs.iter().map(|o| o.took).max().unwrap();
    eprintln!("{} scrapes, slowest {worst:?}", obs.len());
    let n = exporter_sessions(&pg, None).await;
    assert!(
        (1..=MAX_CONNECTIONS).contains(&n),
        "{n} exporter sessions after recovery (cap {MAX_CONNECTIONS})"
    );
    assert_no_panic(&exp);
}

#[tokio::test]
async fn restart_during_scrapes() {
    outage(Outage::Restart).await;
}

#[tokio::test]
async fn sigkill_of_the_postmaster() {
    outage(Outage::Kill).await;
}

#[tokio::test]
async fn stopped_for_a_while_then_started() {
    let secs = std::env::var("PGMAINT_OUTAGE_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(15);
    outage(Outage::Stopped(Duration::from_secs(secs))).await;
}

/// A listener that accepts connections and never says a word.
struct Silent {
    port: u16,
    task: tokio::task::JoinHandle<()>,
}

impl Silent {
    async fn start() -> Silent {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        let task = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((s, _)) = l.accept().await {
                held.push(s);
            }
        });
        Silent { port, task }
    }
}

impl Drop for Silent {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[tokio::test]
async fn server_that_accepts_but_never_answers() {
    let silent = Silent::start().await;
    let url = format!("postgresql://postgres@127.0.0.1:{}/postgres", silent.port);
    let mut vars = env();
    vars.push(("PGMAINT_DATABASE_URL", &url));
    vars.push(("PGMAINT_MIN_SCRAPE_INTERVAL", "0s"));
    let exp = Exporter::spawn(&vars).await;
    let http = http();
    // Sequential and concurrent scrapes: each one is bounded by its deadline.
    for _ in 0..2 {
        let o = observe(&http, &exp.addr).await;
        assert_eq!((o.status, o.up), (200, Some(0.0)), "{o:?}");
        assert!(o.took < SCRAPE_TIMEOUT + MARGIN, "{o:?}");
        assert!(
            o.took >= SCRAPE_TIMEOUT - Duration::from_millis(500),
            "gave up early: {o:?}"
        );
        assert!(o.failed > 0 && o.ok == 0, "{o:?}");
    }
    let many = futures::future::join_all((0..5).map(|_| observe(&http, &exp.addr))).await;
    for o in many {
        assert_eq!((o.status, o.up), (200, Some(0.0)), "{o:?}");
        assert!(o.took < SCRAPE_TIMEOUT + MARGIN, "{o:?}");
    }
    let logs = exp.logs();
    assert!(logs.contains("PostgreSQL is unreachable"), "{logs}");
    assert!(logs.contains("timed out waiting for a connection"), "{logs}");
    assert_no_panic(&exp);
}

/// ACCESS EXCLUSIVE on a table: nothing blocks on it (size and bloat queries
/// skip locked relations, statistics views take no lock); the locked table's
/// size is absent, the others' present. ALTER SEQUENCE in an open
/// transaction: `pg_sequence_last_value` must wait, so `sequences` fails
/// after lock_timeout and every other collector still succeeds.
#[tokio::test]
async fn locked_table_and_sequence() {
    let pg = harness::cluster();
    let db = pg.fresh_db().await;
    db.batch(
        "CREATE TABLE locked (id int PRIMARY KEY, v text);
         CREATE TABLE free (id int PRIMARY KEY, v text);
         INSERT INTO locked SELECT g, 'x' FROM generate_series(1, 100) g;
         INSERT INTO free SELECT g, 'x' FROM generate_series(1, 100) g;
         CREATE SEQUENCE busy_seq; SELECT nextval('busy_seq');",
    )
    .await;
    let exp = pg
        .spawn_exporter(
            &db.name,
            &[
                ("PGMAINT_SCRAPE_TIMEOUT", "8s"),
                ("PGMAINT_LOCK_TIMEOUT", "1s"),
                ("PGMAINT_COLLECTORS", "-bloat"),
            ],
        )
        .await;
    let http = http();
    let table = [("datname", db.name.as_str()), ("relname", "locked")];

    let holder = db.session().await;
    holder
        .batch_execute("BEGIN; LOCK TABLE locked IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    let o = observe(&http, &exp.addr).await;
    let (_, body) = exp.get("/metrics").await;
    let m = Samples::parse(&body);
    assert_eq!((o.status, o.up, o.failed), (200, Some(1.0), 0), "{o:?}\n{body}");
    assert!(o.took < Duration::from_secs(1) + MARGIN, "{o:?}");
    assert_eq!(
        m.value("pg_table_size_bytes", &table),
        None,
        "no size for the locked table"
    );
    assert!(
        m.value(
            "pg_table_size_bytes",
            &[("datname", &db.name), ("relname", "free")]
        )
        .is_some(),
        "{body}"
    );
    assert!(
        m.value("pg_table_dead_tuples", &table).is_some(),
        "statistics need no lock"
    );
    holder.batch_execute("ROLLBACK").await.unwrap();

    holder
        .batch_execute("BEGIN; ALTER SEQUENCE busy_seq INCREMENT BY 2")
        .await
        .unwrap();
    let o = observe(&http, &exp.addr).await;
    let (_, body) = exp.get("/metrics").await;
    let m = Samples::parse(&body);
    assert_eq!((o.status, o.up), (200, Some(1.0)), "{o:?}");
    assert!(
        o.took < Duration::from_secs(1) + MARGIN,
        "lock_timeout + margin: {o:?}"
    );
    let success = |c: &str| {
        m.value(
            "pg_scrape_collector_success",
            &[
                ("collector", c),
                ("datname", if c == "activity" { "" } else { &db.name }),
            ],
        )
    };
    assert_eq!(success("sequences"), Some(0.0), "{body}");
    for c in ["activity", "tables", "indexes", "sizes"] {
        assert_eq!(success(c), Some(1.0), "{c}: {body}");
    }
    assert_eq!(
        m.find("pg_scrape_collector_success", &[])
            .filter(|s| s.value == 0.0)
            .count(),
        1,
        "only sequences fails: {body}"
    );
    assert!(exp.logs().contains("lock timeout"), "{}", exp.logs());
    holder.batch_execute("ROLLBACK").await.unwrap();
    let o = observe(&http, &exp.addr).await;
    assert_eq!(
        (o.up, o.failed),
        (Some(1.0), 0),
        "recovers once the lock is gone: {o:?}"
    );
}

#[tokio::test]
async fn max_connections_exhausted() {
    let pg = harness::start_cluster(
        None,
        &["max_connections = 10", "superuser_reserved_connections = 3"],
    );
    let admin = pg.client("postgres").await;
    admin
        .batch_execute("CREATE ROLE filler LOGIN; CREATE ROLE monitor LOGIN IN ROLE pg_monitor")
        .await
        .unwrap();
    drop(admin);
    let url = |user: &str| format!("postgresql://{user}@127.0.0.1:{}/postgres", pg.port);
    // Take every non-reserved slot as an ordinary role.
    let mut fillers = Vec::new();
    let refused = loop {
        assert!(fillers.len() < 12, "max_connections = 10 never filled up");
        match tokio_postgres::connect(&url("filler"), tokio_postgres::NoTls).await {
            Ok((c, conn)) => {
                tokio::spawn(conn);
                fillers.push(c);
            }
            Err(e) => break e.to_string(),
        }
    };
    eprintln!("{} filler sessions, then: {refused}", fillers.len());
    let mut vars = env();
    let dsn = url("monitor");
    vars.push(("PGMAINT_DATABASE_URL", &dsn));
    vars.push(("PGMAINT_INCLUDE_DATABASES", "postgres"));
    vars.push(("PGMAINT_MIN_SCRAPE_INTERVAL", "0s"));
    let exp = Exporter::spawn(&vars).await;
    let http = http();
    for _ in 0..3 {
        let o = observe(&http, &exp.addr).await;
        assert_eq!((o.status, o.up), (200, Some(0.0)), "{o:?}");
        assert!(o.took < SCRAPE_TIMEOUT + MARGIN, "{o:?}");
    }
    let logs = exp.logs();
    let line = logs
        .lines()
        .find(|l| l.contains("PostgreSQL is unreachable"))
        .unwrap_or_else(|| panic!("no unreachable line: {logs}"));
    assert!(
        line.contains("connection slots are reserved") || line.contains("too many clients"),
        "the log says why: {line}"
    );
    assert!(
        line.contains("max_connections"),
        "the log names max_connections: {line}"
    );
    drop(fillers);
    let back = healthy(&exp).await;
    assert_eq!(back.status, 200);
    assert!(exp.logs().contains("reachable again"));
    assert_no_panic(&exp);
}

/// Without pg_monitor PostgreSQL shows other roles' sessions with NULL state,
/// times and xmin. The gauge says so, the log gives the GRANT, the families
/// that would come out silently low are absent, the rest still works.
#[tokio::test]
async fn role_without_pg_monitor() {
    let pg = harness::cluster();
    let db = pg.fresh_db().await;
    let role = format!("nomon_{}", db.name);
    db.batch(&format!(
        "CREATE ROLE {role} LOGIN;
         CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t SELECT generate_series(1, 10);"
    ))
    .await;
    // Another role's old transaction, sitting idle: hidden from `role`.
    let other = db.session().await;
    other
        .batch_execute("BEGIN; SELECT txid_current(); SELECT pg_sleep(1.1)")
        .await
        .unwrap();
    let url = format!("postgresql://{role}@127.0.0.1:{}/{}", pg.port, db.name);
    let exp = pg
        .spawn_exporter(
            &db.name,
            &[
                ("PGMAINT_DATABASE_URL", &url),
                ("PGMAINT_COLLECTORS", "activity,tables,indexes,database"),
            ],
        )
        .await;
    let m = exp.scrape().await;
    let privilege = |p: &str| m.value("pgmaint_exporter_role_privilege", &[("privilege", p)]);
    assert_eq!(privilege("pg_monitor"), Some(0.0));
    assert_eq!(privilege("pg_read_all_stats"), Some(0.0));
    let logs = exp.logs();
    assert!(logs.contains(&format!("GRANT pg_monitor TO {role}")), "{logs}");
    for f in [
        "pg_activity_oldest_xact_age_seconds",
        "pg_activity_idle_in_transaction_max_seconds",
        "pg_activity_lock_waiting_sessions",
        "pg_activity_long_running_queries",
        "pg_activity_oldest_query_age_seconds",
    ] {
        assert!(
            !m.has(f),
            "{f} would be silently low without pg_monitor: {}",
            m.raw
        );
    }
    assert_eq!(
        m.value("pg_xmin_horizon_age", &[("holder", "backend_xmin")]),
        None
    );
    // The hidden session still counts, under state "".
    assert!(
        m.value(
            "pg_activity_connections",
            &[("datname", &db.name), ("state", ""), ("backend_type", "")]
        )
        .unwrap_or(0.0)
            >= 1.0,
        "{}",
        m.raw
    );
    for c in ["activity", "tables", "indexes", "database"] {
        let datname = if matches!(c, "activity" | "database") {
            ""
        } else {
            &db.name
        };
        assert_eq!(
            m.value(
                "pg_scrape_collector_success",
                &[("collector", c), ("datname", datname)]
            ),
            Some(1.0),
            "{c}"
        );
    }
    assert!(m
        .value("pg_table_dead_tuples", &[("datname", &db.name), ("relname", "t")])
        .is_some());
    assert!(m.value("pg_activity_max_connections", &[]).is_some());

    // The same database seen with pg_monitor: the hidden transaction shows.
    db.batch(&format!("GRANT pg_monitor TO {role}")).await;
    let m = exp.scrape().await;
    assert_eq!(
        m.value("pgmaint_exporter_role_privilege", &[("privilege", "pg_monitor")]),
        Some(1.0)
    );
    let age = m
        .value(
            "pg_activity_oldest_xact_age_seconds",
            &[("datname", &db.name), ("state", "idle in transaction")],
        )
        .unwrap_or_else(|| panic!("{}", m.raw));
    assert!(age >= 1.0, "{age}");
    other.batch_execute("ROLLBACK").await.unwrap();
    db.batch(&format!("REVOKE pg_monitor FROM {role}")).await;
    assert_no_panic(&exp);
}

/// Keeps a process stopped (SIGSTOP) until dropped (SIGCONT).
struct Paused(u32);

impl Paused {
    fn new(pid: u32) -> Paused {
        let st = Command::new("kill")
            .args(["-STOP", &pid.to_string()])
            .status()
            .unwrap();
        assert!(st.success());
        Paused(pid)
    }
}

impl Drop for Paused {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-CONT", &self.0.to_string()]).status();
    }
}

/// The startup process of the postmaster now starting in `data`, caught
/// while it replays WAL (bounded wait).
async fn startup_process(data: &Path, old_pm: u32) -> u32 {
    let until = Instant::now() + Duration::from_secs(20);
    loop {
        assert!(
            Instant::now() < until,
            "no startup process seen: crash recovery ended too fast"
        );
        let pm = std::fs::read_to_string(data.join("postmaster.pid"))
            .ok()
            .and_then(|s| s.lines().next().and_then(|l| l.trim().parse::<u32>().ok()));
        if let Some(pm) = pm.filter(|p| *p != old_pm) {
            for k in children_of(pm) {
                let cmd = std::fs::read(format!("/proc/{k}/cmdline")).unwrap_or_default();
                if String::from_utf8_lossy(&cmd).contains("startup") {
                    return k;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// SIGKILL with WAL to replay, then `pg_ctl start` without waiting. Crash
/// recovery is held for a few seconds (its startup process stopped) so that
/// scrapes surely meet a server that is starting up: each answers
/// 200 with pg_up 0 while the server refuses us before and after it, and
/// pg_up 1 with every collector once recovery is done.
#[tokio::test]
async fn scrape_during_crash_recovery() {
    let pg = harness::start_cluster(None, &["max_wal_size = 1GB", "checkpoint_timeout = 1h"]);
    let admin = pg.client("postgres").await;
    admin
        .batch_execute(
            "CHECKPOINT; CREATE TABLE w AS SELECT g, md5(g::text) AS m FROM generate_series(1, 300000) g",
        )
        .await
        .unwrap();
    drop(admin);
    let mut vars = env();
    vars.push(("PGMAINT_COLLECTORS", "activity,replication,tables"));
    let exp = pg.spawn_exporter("postgres", &vars).await;
    healthy(&exp).await;
    let data = data_dir(&pg);
    let old_pm: u32 = std::fs::read_to_string(data.join("postmaster.pid"))
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    kill_postmaster(&data).await;
    start_no_wait(&pg);
    let paused = Paused::new(startup_process(&data, old_pm).await);

    let http = http();
    let url = pg.url("postgres");
    let probe = || async {
        match tokio_postgres::connect(&url, tokio_postgres::NoTls).await {
            Ok(_) => None,
            Err(e) => Some(describe(&e)),
        }
    };
    let (mut obs, mut starting_up) = (Vec::new(), 0);
    let held = Instant::now() + Duration::from_secs(3);
    while Instant::now() < held {
        let before = probe().await;
        let o = observe(&http, &exp.addr).await;
        let after = probe().await;
        let before = before.expect("the server accepted a connection during crash recovery");
        assert!(after.is_some());
        assert!(recovering(&before), "{before}");
        starting_up += 1;
        assert_eq!(
            o.up,
            Some(0.0),
            "server refused us before and after ({before}): {o:?}"
        );
        obs.push(o);
    }
    drop(paused);
    let back = healthy(&exp).await;
    obs.push(back);
    assert_always_answered(&obs);
    assert!(starting_up >= 2, "{obs:?}");
    let logs = exp.logs();
    assert!(
        logs.lines().any(|l| l.contains("unreachable") && recovering(l)),
        "the log says why: {logs}"
    );
    eprintln!("{starting_up} scrapes during crash recovery, all pg_up 0; then healthy");
    assert_no_panic(&exp);
}

/// PostgreSQL's refusals while it recovers: before PMSIGNAL_RECOVERY_STARTED,
/// then until a consistent state (PostgreSQL 15 reaches the second one in
/// crash recovery too).
fn recovering(message: &str) -> bool {
    message.contains("the database system is starting up")
        || message.contains("the database system is not yet accepting connections")
}

/// A connect error with the server's message (Display says only "db error").
fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {}", db.severity(), db.message()),
        None => e.to_string(),
    }
}

/// A streaming standby promoted while scrapes run: always 200, pg_up 1,
/// and `pg_replication_in_recovery` flips from 1 to 0.
#[tokio::test]
async fn scrape_during_promote() {
    let primary = harness::start_cluster(None, &["wal_level = replica", "max_wal_senders = 4"]);
    let standby = Standby::create(&primary);
    let mut vars = env();
    vars.push(("PGMAINT_COLLECTORS", "activity,replication,database,tables"));
    let url = format!("postgresql://postgres@127.0.0.1:{}/postgres", standby.port);
    vars.push(("PGMAINT_DATABASE_URL", &url));
    let exp = primary.spawn_exporter("postgres", &vars).await;
    let first = exp.scrape().await;
    assert_eq!(first.value("pg_up", &[]), Some(1.0));
    assert_eq!(
        first.value("pg_replication_in_recovery", &[]),
        Some(1.0),
        "{}",
        first.raw
    );
    let rec = Recorder::start(&exp.addr, Duration::from_millis(20));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let st = as_pg(&[
        &format!("{PG_BIN}/pg_ctl"),
        "-D",
        standby.data.to_str().unwrap(),
        "-w",
        "promote",
    ])
    .status()
    .unwrap();
    assert!(st.success(), "pg_ctl promote");
    let m = harness::eventually(Duration::from_secs(30), || async {
        let m = exp.scrape().await;
        (m.value("pg_replication_in_recovery", &[]) == Some(0.0)).then_some(m)
    })
    .await;
    assert_eq!(m.value("pg_up", &[]), Some(1.0));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let obs = rec.finish().await;
    assert_always_answered(&obs);
    assert!(
        obs.iter().all(|o| o.up == Some(1.0)),
        "a promote never takes the server down: {obs:?}"
    );
    eprintln!("{} scrapes across the promote", obs.len());
    assert_no_panic(&exp);
}

/// A streaming standby of a dedicated primary (pg_basebackup -R), stopped and
/// removed on drop.
struct Standby {
    dir: PathBuf,
    data: PathBuf,
    port: u16,
}

impl Standby {
    fn create(primary: &Cluster) -> Standby {
        let dir = PathBuf::from(format!("{}-standby", primary.dir));
        std::fs::create_dir_all(&dir).unwrap();
        let _ = Command::new("chown")
            .args(["pgmaint", dir.to_str().unwrap()])
            .status();
        let data = dir.join("data");
        let st = as_pg(&[
            &format!("{PG_BIN}/pg_basebackup"),
            "-h",
            "127.0.0.1",
            "-p",
            &primary.port.to_string(),
            "-U",
            "postgres",
            "-D",
            data.to_str().unwrap(),
            "-R",
            "-X",
            "stream",
            "-c",
            "fast",
        ])
        .status()
        .unwrap();
        assert!(st.success(), "pg_basebackup");
        let port = harness::free_port();
        // The copied auto.conf pins the primary's port and socket dir: override.
        let conf = data.join("postgresql.auto.conf");
        let mut text = std::fs::read_to_string(&conf).unwrap();
        text.push_str(&format!(
            "\nport = {port}\nunix_socket_directories = '{}'\nhot_standby = on\n",
            dir.display()
        ));
        std::fs::write(&conf, text).unwrap();
        let log = dir.join("server.log");
        let st = as_pg(&[
            &format!("{PG_BIN}/pg_ctl"),
            "-D",
            data.to_str().unwrap(),
            "-l",
            log.to_str().unwrap(),
            "-w",
            "start",
        ])
        .status()
        .unwrap();
        assert!(
            st.success(),
            "standby start: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        Standby { dir, data, port }
    }
}

impl Drop for Standby {
    fn drop(&mut self) {
        let _ = as_pg(&[
            &format!("{PG_BIN}/pg_ctl"),
            "-D",
            self.data.to_str().unwrap(),
            "-m",
            "immediate",
            "-w",
            "stop",
        ])
        .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Quotes an identifier for SQL (doubling quotes); our own test names only.
fn ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

fn percent_encode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// Database, schema, table and index names with quotes, backslashes,
/// newlines, emoji, and the 63-byte maximum: the exposition stays valid
/// (promtool, a real Prometheus scrape) and label values round-trip exactly.
#[tokio::test]
async fn hostile_names_round_trip() {
    let pg = harness::cluster();
    let tag = format!("wq{}", std::process::id());
    let dbname = format!("{tag} \"db\"\\\n🐘");
    let schema = "sch\"ema\\with\nnewline 🐘".to_string();
    // 63 bytes: the longest identifier PostgreSQL keeps (NAMEDATALEN - 1).
    let table = format!("t{}🐘", "x".repeat(58));
    assert_eq!(table.len(), 63);
    let index = format!("i\"\\\n{}", "y".repeat(59));
    assert_eq!(index.len(), 63);
    let admin = pg.client("postgres").await;
    admin
        .batch_execute(&format!("CREATE DATABASE {}", ident(&dbname)))
        .await
        .unwrap();
    let url = format!(
        "postgresql://postgres@127.0.0.1:{}/{}",
        pg.port,
        percent_encode(&dbname)
    );
    let db = harness::connect(&url).await;
    db.batch_execute(&format!(
        "CREATE SCHEMA {s}; CREATE TABLE {s}.{t} (id int, v text);
         CREATE INDEX {i} ON {s}.{t} (id);
         INSERT INTO {s}.{t} SELECT g, 'v' FROM generate_series(1, 100) g;
         DELETE FROM {s}.{t} WHERE id <= 10; ANALYZE {s}.{t}; SELECT pg_stat_force_next_flush();",
        s = ident(&schema),
        t = ident(&table),
        i = ident(&index),
    ))
    .await
    .unwrap();
    drop(db);
    let include = format!("{tag}(?s:.*)");
    let exp = pg
        .spawn_exporter(
            &dbname,
            &[
                ("PGMAINT_DATABASE_URL", &url),
                ("PGMAINT_INCLUDE_DATABASES", &include),
            ],
        )
        .await;
    let m = harness::eventually(Duration::from_secs(20), || async {
        let m = exp.scrape().await;
        m.value(
            "pg_table_dead_tuples",
            &[("datname", &dbname), ("schemaname", &schema), ("relname", &table)],
        )
        .is_some()
        .then_some(m)
    })
    .await;
    let t = [
        ("datname", dbname.as_str()),
        ("schemaname", &schema),
        ("relname", &table),
    ];
    assert_eq!(m.value("pg_table_dead_tuples", &t), Some(10.0), "{}", m.raw);
    assert!(m.value("pg_table_size_bytes", &t).is_some(), "{}", m.raw);
    let i = [
        ("datname", dbname.as_str()),
        ("schemaname", &schema),
        ("indexrelname", &index),
    ];
    assert!(
        m.find("pg_index_scans_total", &i).count() + m.find("pg_index_size_bytes", &i).count() > 0,
        "{}",
        m.raw
    );
    assert!(m
        .value("pg_database_size_bytes", &[("datname", &dbname)])
        .is_some());
    let findings = harness::promtool_check(&m.raw);
    assert!(findings.trim().is_empty(), "promtool: {findings}");

    // A real Prometheus scrapes it and stores the exact label values.
    let tmp = std::env::temp_dir().join(format!("pgmaint-faults-prom-{}", std::process::id()));
    let prom = prometheus(&tmp, &exp.addr).await;
    let query = format!(
        "pg_table_dead_tuples{{datname={},schemaname={},relname={}}}",
        promql_string(&dbname),
        promql_string(&schema),
        promql_string(&table)
    );
    let found = harness::eventually(Duration::from_secs(30), || {
        let (prom, query) = (&prom, &query);
        async move {
            let (_, body) = prom.get("/api/v1/query", &[("query", query)]).await;
            body.contains("\"value\":[").then_some(body)
        }
    })
    .await;
    assert!(found.contains("\"10\"]"), "{found}");
    let (_, targets) = prom.get("/api/v1/targets", &[]).await;
    assert!(targets.contains("\"health\":\"up\""), "{targets}");
    assert!(targets.contains("\"lastError\":\"\""), "{targets}");
    drop(prom);
    drop(exp);
    let admin = pg.client("postgres").await;
    let _ = admin
        .batch_execute(&format!("DROP DATABASE {} WITH (FORCE)", ident(&dbname)))
        .await;
}

/// A PromQL double-quoted string (Go escapes).
fn promql_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The harness's Prometheus scraping one target every second.
async fn prometheus(dir: &Path, target: &str) -> harness::Prometheus {
    let config = format!(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n\
         scrape_configs:\n  - job_name: pgmaint\n    static_configs:\n      - targets: ['{target}']\n"
    );
    harness::Prometheus::start(dir, &config).await
}
