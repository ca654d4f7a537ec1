//! Shared test harness: a real PostgreSQL cluster, a database per test, the
//! real exporter binary, and a parser for what it serves.
//!
//! `scripts/test.sh` starts one cluster for the whole run and exports
//! `PGMAINT_TEST_PGPORT`; `cluster()` attaches to it. Tests that stop or
//! break a server get their own with `dedicated()`, stopped on `Drop`.
//! Cluster-wide values are asserted for the test's own database only, so
//! other tests' sessions cannot change them.
//!
//! Beside this file: `samples` (the exposition parser), `dir` (temporary
//! directories), `prometheus` (a real Prometheus server), `tools` (the
//! repository and the command-line tools run in it).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio_postgres::{Client, NoTls};

mod dir;
mod prometheus;
mod samples;
mod tools;

pub use dir::Dir;
pub use prometheus::Prometheus;
pub use samples::{Samples, Series};
pub use tools::{repo, run, text};

static DB_COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A PostgreSQL cluster on 127.0.0.1.
pub struct Cluster {
    pub port: u16,
    pub dir: String,
    bindir: Option<String>,
    owned: bool,
}

/// The run's shared cluster (started by scripts/test.sh).
pub fn cluster() -> Cluster {
    let port = std::env::var("PGMAINT_TEST_PGPORT")
        .expect("tests need a PostgreSQL cluster: run them with scripts/test.sh")
        .parse()
        .expect("PGMAINT_TEST_PGPORT is a port");
    Cluster {
        port,
        dir: std::env::var("PGMAINT_TEST_PGDIR").unwrap_or_default(),
        bindir: None,
        owned: false,
    }
}

/// A cluster of the test's own (Debian's PostgreSQL 15), stopped on drop.
pub fn dedicated() -> Cluster {
    start_cluster(None, &[])
}

/// A cluster of the test's own with extra postgresql.conf lines and/or other binaries.
pub fn start_cluster(bindir: Option<&str>, conf: &[&str]) -> Cluster {
    let mut cmd = Command::new(repo().join("scripts/pgcluster.sh"));
    cmd.arg("start");
    if let Some(b) = bindir {
        cmd.arg(b);
    }
    cmd.env("PGMAINT_PG_CONF", conf.join("\n"));
    let out = cmd
        .stderr(Stdio::inherit())
        .output()
        .expect("run scripts/pgcluster.sh");
    assert!(out.status.success(), "cluster did not start");
    let line = String::from_utf8(out.stdout).unwrap();
    let mut parts = line.split_whitespace();
    let dir = parts.next().unwrap().to_string();
    let port = parts.next().unwrap().parse().unwrap();
    Cluster {
        port,
        dir,
        bindir: bindir.map(String::from),
        owned: true,
    }
}

/// A streaming standby of `primary` (Debian's PostgreSQL 15) made with
/// `pg_basebackup -R`, creating the physical slot `slot`; stopped on drop.
pub fn start_standby(primary: &Cluster, slot: &str) -> Cluster {
    let out = Command::new(repo().join("scripts/pgcluster.sh"))
        .args(["standby", &primary.port.to_string(), slot])
        .stderr(Stdio::inherit())
        .output()
        .expect("run scripts/pgcluster.sh");
    assert!(out.status.success(), "standby did not start");
    let line = String::from_utf8(out.stdout).unwrap();
    let mut parts = line.split_whitespace();
    Cluster {
        dir: parts.next().unwrap().to_string(),
        port: parts.next().unwrap().parse().unwrap(),
        bindir: None,
        owned: true,
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if self.owned {
            let mut cmd = Command::new(repo().join("scripts/pgcluster.sh"));
            cmd.arg("stop").arg(&self.dir);
            if let Some(b) = &self.bindir {
                cmd.arg(b);
            }
            let _ = cmd.status();
        }
    }
}

/// Runs a command as the OS user that owns the clusters: `pgmaint` (through
/// `runuser`) when the tests run as root, else the current user.
pub fn as_pg(args: &[&str]) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "pgmaint", "--"]).args(args);
        c
    } else {
        let mut c = Command::new(args[0]);
        c.args(&args[1..]);
        c
    }
}

impl Cluster {
    pub fn url(&self, db: &str) -> String {
        format!("postgresql://postgres@127.0.0.1:{}/{}", self.port, db)
    }

    fn pg_ctl(&self) -> String {
        format!(
            "{}/pg_ctl",
            self.bindir.as_deref().unwrap_or("/usr/lib/postgresql/15/bin")
        )
    }

    /// Stops the server (fast shutdown). Only for dedicated clusters.
    pub fn stop(&self) {
        assert!(self.owned, "never stop the shared cluster");
        let data = format!("{}/data", self.dir);
        let st = as_pg(&[&self.pg_ctl(), "-D", &data, "-m", "fast", "-w", "stop"])
            .status()
            .unwrap();
        assert!(st.success());
    }

    /// Starts a stopped dedicated server again on the same port.
    pub fn start(&self) {
        let data = format!("{}/data", self.dir);
        let log = format!("{}/server.log", self.dir);
        let st = as_pg(&[&self.pg_ctl(), "-D", &data, "-l", &log, "-w", "start"])
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(st.success());
    }

    /// `pg_dump -F <format>` (PostgreSQL 15's) of `db` into `path`.
    pub fn pg_dump(&self, db: &str, format: &str, path: &std::path::Path) {
        let out = Command::new("/usr/lib/postgresql/15/bin/pg_dump")
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", "postgres"])
            .args(["-F", format, "-f"])
            .arg(path)
            .arg(db)
            .output()
            .expect("pg_dump");
        assert!(out.status.success(), "pg_dump: {}", text(&out));
    }

    pub async fn client(&self, db: &str) -> Client {
        connect(&self.url(db)).await
    }

    /// A new, empty database for one test.
    pub async fn fresh_db(&self) -> Db {
        let name = format!(
            "t{}_{}",
            std::process::id(),
            DB_COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let admin = self.client("postgres").await;
        admin
            .batch_execute(&format!("CREATE DATABASE \"{name}\""))
            .await
            .unwrap();
        Db {
            client: self.client(&name).await,
            url: self.url(&name),
            name,
        }
    }

    /// The exporter binary pointed at `db`, limited to that database unless
    /// `env` says otherwise. Later `env` entries win.
    pub async fn spawn_exporter(&self, db: &str, env: &[(&str, &str)]) -> Exporter {
        let url = self.url(db);
        let mut vars = vec![
            ("PGMAINT_DATABASE_URL", url.as_str()),
            ("PGMAINT_INCLUDE_DATABASES", db),
            ("PGMAINT_LOG_LEVEL", "debug"),
            // Tests scrape twice in a row to see a change: no result reuse.
            ("PGMAINT_MIN_SCRAPE_INTERVAL", "0s"),
            // Sizes fresh every scrape, so tests see what they just did
            // (the cached path is tested in databases.rs).
            ("PGMAINT_SIZE_CACHE_SECONDS", "0"),
        ];
        vars.extend_from_slice(env);
        Exporter::spawn(&vars).await
    }
}

pub async fn connect(url: &str) -> Client {
    let (client, conn) = tokio_postgres::connect(url, NoTls)
        .await
        .unwrap_or_else(|e| panic!("connect {url}: {e}"));
    tokio::spawn(async move {
        let _ = conn.await;
    });
    client
}

/// A test's own database.
pub struct Db {
    pub name: String,
    pub url: String,
    pub client: Client,
}

impl Db {
    pub async fn batch(&self, sql: &str) {
        self.client
            .batch_execute(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e:?}"));
    }

    /// A second session in the same database (to hold locks, sleep, idle…).
    pub async fn session(&self) -> Client {
        connect(&self.url).await
    }

    /// Makes `n` MultiXacts in `table` (rows with `id` 1..=n): a second
    /// session share-locks every row in a transaction it keeps open, and each
    /// row is share-locked again by a short transaction of its own. Returns
    /// that session, still in its transaction: while it lasts nothing can
    /// freeze them; `COMMIT` on it lets them go.
    pub async fn multixacts(&self, table: &str, n: i64) -> Client {
        let holder = self.session().await;
        holder
            .batch_execute(&format!(
                "BEGIN; SELECT count(*) FROM (SELECT id FROM {table} FOR SHARE) s;"
            ))
            .await
            .unwrap();
        self.batch(&format!(
            "DO $$ BEGIN
               FOR i IN 1..{n} LOOP
                 PERFORM 1 FROM {table} WHERE id = i FOR SHARE;
                 COMMIT;
               END LOOP;
             END $$;"
        ))
        .await;
        holder
    }

    pub async fn scalar_f64(&self, sql: &str) -> f64 {
        self.client
            .query_one(sql, &[])
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e:?}"))
            .get(0)
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running exporter process, killed on drop.
pub struct Exporter {
    child: Child,
    pub addr: String,
    pub log: PathBuf,
}

impl Exporter {
    pub async fn spawn(vars: &[(&str, &str)]) -> Exporter {
        let port = free_port();
        let addr = format!("127.0.0.1:{port}");
        let log = std::env::temp_dir().join(format!("pgmaint-exporter-{}-{port}.log", std::process::id()));
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_pgmaint-exporter"));
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("PGMAINT_LISTEN_ADDRESS", &addr)
            .stdout(Stdio::from(std::fs::File::create(&log).unwrap()))
            .stderr(Stdio::from(
                std::fs::File::options().append(true).open(&log).unwrap(),
            ));
        for (k, v) in vars {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("start exporter");
        let mut e = Exporter { child, addr, log };
        let until = Instant::now() + Duration::from_secs(15);
        loop {
            if let Ok(r) = reqwest::get(format!("http://{}/healthz", e.addr)).await {
                if r.status() == 200 {
                    return e;
                }
            }
            if let Ok(Some(st)) = e.child.try_wait() {
                panic!("exporter exited with {st}: {}", e.logs());
            }
            assert!(Instant::now() < until, "exporter did not come up: {}", e.logs());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// GET a path: (status, body).
    pub async fn get(&self, path: &str) -> (u16, String) {
        let r = reqwest::get(format!("http://{}{}", self.addr, path))
            .await
            .expect("HTTP request");
        let status = r.status().as_u16();
        (status, r.text().await.unwrap())
    }

    /// GET /metrics and parse it; panics unless HTTP 200.
    pub async fn scrape(&self) -> Samples {
        let (status, body) = self.get("/metrics").await;
        assert_eq!(status, 200, "{body}");
        Samples::parse(&body)
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

/// Runs `body` in a task so a failed assertion still reaches the cleanup,
/// then re-raises the panic.
pub async fn with_cleanup<F, C>(body: F, cleanup: C)
where
    F: std::future::Future<Output = ()> + Send + 'static,
    C: std::future::Future<Output = ()>,
{
    let result = tokio::spawn(body).await;
    cleanup.await;
    if let Err(e) = result {
        std::panic::resume_unwind(e.into_panic());
    }
}

/// Polls `f` until it returns Some, or panics after `timeout`.
pub async fn eventually<T, F, Fut>(timeout: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let until = Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < until, "condition not met within {timeout:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Runs `promtool check metrics` on an exposition; returns its findings.
pub fn promtool_check(text: &str) -> String {
    use std::io::Write;
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (apt-get install prometheus)");
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let mut s = String::from_utf8_lossy(&out.stdout).to_string();
    s.push_str(&String::from_utf8_lossy(&out.stderr));
    if !out.status.success() && s.trim().is_empty() {
        s = format!("promtool failed with {}", out.status);
    }
    s
}

/// True when the tests run as root (CI does): files PostgreSQL or the
/// exporter must read as user `pgmaint` need a chown then.
pub fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout == b"0\n")
        .unwrap_or(false)
}

/// A password no log line could contain by accident.
pub fn unique_secret(tag: &str) -> String {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos();
    format!("{tag}-Q7x{}z{nanos:x}", std::process::id())
}

/// A cluster of the test's own where role `mon` (pg_monitor) must log in
/// with `password` by the pg_hba.conf `method` (`scram-sha-256`, or
/// `password` for cleartext).
pub async fn password_cluster(method: &str, password: &str) -> Cluster {
    let pg = start_cluster(None, &["password_encryption = 'scram-sha-256'"]);
    let hba = format!("{}/data/pg_hba.conf", pg.dir);
    let old = std::fs::read_to_string(&hba).unwrap();
    std::fs::write(&hba, format!("host all mon 127.0.0.1/32 {method}\n{old}")).unwrap();
    let admin = pg.client("postgres").await;
    // CREATE ROLE takes no parameters: let the server quote the literal.
    let create: String = admin
        .query_one(
            "SELECT format('CREATE ROLE mon LOGIN PASSWORD %L IN ROLE pg_monitor', $1::text)",
            &[&password],
        )
        .await
        .unwrap()
        .get(0);
    admin.batch_execute(&create).await.unwrap();
    admin.batch_execute("SELECT pg_reload_conf()").await.unwrap();
    pg
}
