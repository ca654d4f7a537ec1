//! `/probe`: one exporter watching several real PostgreSQL clusters through
//! auth modules of `PGMAINT_CONFIG_FILE` — the shared cluster (trust), a TLS
//! cluster (verify-full against a CA made here) and a SCRAM cluster (password
//! from a file) — plus the bounds: 120 targets in rotation stay within
//! `PGMAINT_MAX_CONNECTIONS_TOTAL`, and idle targets' connections close.
use crate::harness;

use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use harness::{Cluster, Dir, Exporter, Samples};
use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair};

/// A cluster with `ssl = on` serving a certificate for 127.0.0.1 signed by a
/// CA made here; returns the cluster and the CA file.
fn tls_cluster(dir: &Dir) -> (Cluster, String) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(DnType::CommonName, "probe test CA");
    let ca_pem = ca.self_signed(&ca_key).unwrap().pem();
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().unwrap();
    let mut server = CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
    server.distinguished_name.push(DnType::CommonName, "127.0.0.1");
    server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let cert = server.signed_by(&key, &issuer).unwrap();
    let cert = dir.write_for_postgres("server.crt", &cert.pem(), 0o644);
    let key = dir.write_for_postgres("server.key", &key.serialize_pem(), 0o600);
    let ca_file = dir.write_for_postgres("ca.crt", &ca_pem, 0o644);
    let conf = [
        "ssl = on".to_string(),
        format!("ssl_cert_file = '{cert}'"),
        format!("ssl_key_file = '{key}'"),
    ];
    let conf: Vec<&str> = conf.iter().map(String::as_str).collect();
    (harness::start_cluster(None, &conf), ca_file)
}

async fn create_db(pg: &Cluster, name: &str) {
    pg.client("postgres")
        .await
        .batch_execute(&format!("CREATE DATABASE \"{name}\""))
        .await
        .unwrap();
}

async fn probe(e: &Exporter, query: &str) -> (u16, String) {
    e.get(&format!("/probe?{query}")).await
}

async fn probe_ok(e: &Exporter, query: &str) -> Samples {
    let (status, body) = probe(e, query).await;
    assert_eq!(status, 200, "{query}: {body}");
    Samples::parse(&body)
}

/// Databases the per-database `tables` collector ran in.
fn tables_dbs(m: &Samples) -> Vec<String> {
    let mut v: Vec<String> = m
        .find("pg_scrape_collector_success", &[("collector", "tables")])
        .map(|s| s.labels["datname"].clone())
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn three_clusters_through_auth_modules() {
    let pid = std::process::id();
    let password = harness::unique_secret("scram");
    let dir = Dir::new("probe");
    let pw_file = dir.write("mon.password", &format!("{password}\n"), 0o600);
    let wrong_file = dir.write("wrong.password", "not-it\n", 0o600);
    let shared = harness::cluster();
    let shared_db = shared.fresh_db().await;
    let (tls, ca_file) = tls_cluster(&dir);
    let scram = harness::password_cluster("scram-sha-256", &password).await;
    let (tls_a, tls_b, scram_only) = (
        format!("tls_a_{pid}"),
        format!("tls_b_{pid}"),
        format!("scram_only_{pid}"),
    );
    create_db(&tls, &tls_a).await;
    create_db(&tls, &tls_b).await;
    create_db(&scram, &scram_only).await;

    let config = dir.write(
        "config.yml",
        &format!(
            "auth_modules:
  plain:
    user: postgres
    sslmode: disable
    allowed_targets: [127.0.0.1/32]
  tls:
    user: postgres
    sslmode: verify-full
    sslrootcert: {ca_file}
    allowed_targets: [127.0.0.1/32]
    options:
      connect_timeout: 3
  scram:
    user: mon
    password_file: {pw_file}
    sslmode: disable
    allowed_targets: [127.0.0.1/32]
  scram_wrong:
    user: mon
    password_file: {wrong_file}
    allowed_targets: [127.0.0.1/32]
"
        ),
        0o600,
    );
    // Include rules apply to every target: the shared cluster's own test
    // database and the dedicated clusters' databases, not `postgres`.
    let include = format!("{},tls_._{pid},scram_only_{pid}", shared_db.name);
    let e = shared
        .spawn_exporter(
            &shared_db.name,
            &[
                ("PGMAINT_INCLUDE_DATABASES", include.as_str()),
                ("PGMAINT_CONFIG_FILE", config.as_str()),
                ("PGMAINT_COLLECTORS", "database,tables"),
                ("PGMAINT_SCRAPE_TIMEOUT", "3s"),
            ],
        )
        .await;

    // Each target answers with its own server and databases.
    let q_shared = format!(
        "target=127.0.0.1:{}/{}&auth_module=plain&database={}",
        shared.port, shared_db.name, shared_db.name
    );
    let m = probe_ok(&e, &q_shared).await;
    assert_eq!(m.value("pg_up", &[]), Some(1.0));
    assert_eq!(tables_dbs(&m), vec![shared_db.name.clone()]);

    let q_tls = format!("target=127.0.0.1:{}&auth_module=tls", tls.port);
    let m = probe_ok(&e, &q_tls).await;
    assert_eq!(m.value("pg_up", &[]), Some(1.0), "{}", e.logs());
    assert!(m.has("pg_server_info"));
    assert_eq!(tables_dbs(&m), vec![tls_a.clone(), tls_b.clone()]);
    // The server sees the exporter's sessions encrypted.
    let ssl: Vec<bool> = tls
        .client("postgres")
        .await
        .query(
            "SELECT s.ssl FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid)
              WHERE a.application_name = 'pgmaint-exporter'",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(!ssl.is_empty() && ssl.iter().all(|s| *s), "{ssl:?}");

    // &database= narrows the fan-out.
    let m = probe_ok(&e, &format!("{q_tls}&database={tls_a}")).await;
    assert_eq!(tables_dbs(&m), vec![tls_a.clone()]);

    let q_scram = format!("target=127.0.0.1:{}/postgres&auth_module=scram", scram.port);
    let m = probe_ok(&e, &q_scram).await;
    assert_eq!(m.value("pg_up", &[]), Some(1.0), "{}", e.logs());
    assert_eq!(tables_dbs(&m), vec![scram_only.clone()]);
    assert!(!m
        .find("pg_scrape_collector_success", &[("datname", tls_a.as_str())])
        .any(|_| true));
    // The wrong password is refused: SCRAM is really in force.
    let m = probe_ok(
        &e,
        &format!("target=127.0.0.1:{}/postgres&auth_module=scram_wrong", scram.port),
    )
    .await;
    assert_eq!(m.value("pg_up", &[]), Some(0.0));
    // /metrics keeps its meaning: the configured database only.
    let m = e.scrape().await;
    assert_eq!(tables_dbs(&m), vec![shared_db.name.clone()]);
    assert_eq!(m.value("pgmaint_exporter_probe_targets", &[]), Some(5.0));

    // Refusals: 400 with a reason, never a credential.
    let secret = harness::unique_secret("url");
    let cases = [
        (format!("target=127.0.0.1:{}", tls.port), "missing auth_module"),
        (
            format!("target=127.0.0.1:{}&auth_module=nope", tls.port),
            "unknown auth_module \"nope\": configured modules are plain, scram, scram_wrong, tls",
        ),
        ("auth_module=tls".to_string(), "missing target"),
        (
            format!("target=127.0.0.1:{}&auth_module=tls&password={secret}", tls.port),
            "credentials are never taken from the query string",
        ),
        (
            format!("target=127.0.0.1:{}&auth_module=tls&user=postgres", tls.port),
            "credentials are never taken from the query string",
        ),
        (
            format!(
                "target=postgresql://mon:{secret}@127.0.0.1:{}/postgres&auth_module=tls",
                tls.port
            ),
            "credentials are never taken from the query string",
        ),
        (
            "target=127.0.0.1:99999&auth_module=tls".to_string(),
            "target is host, host:port or host:port/dbname",
        ),
        (
            format!("target=127.0.0.1:{}&auth_module=tls&sslmode=disable", tls.port),
            "unknown parameter \"sslmode\"",
        ),
    ];
    for (q, want) in &cases {
        let (status, body) = probe(&e, q).await;
        assert_eq!(status, 400, "{q}: {body}");
        assert!(body.starts_with(want), "{q}: {body}");
        assert!(!body.contains(&secret) && !body.contains(&password), "{body}");
    }

    // A stopped target: pg_up 0 well within the deadline, the others still answer.
    scram.stop();
    let t = Instant::now();
    let m = probe_ok(&e, &q_scram).await;
    assert_eq!(m.value("pg_up", &[]), Some(0.0));
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    assert_eq!(probe_ok(&e, &q_tls).await.value("pg_up", &[]), Some(1.0));
    assert_eq!(probe_ok(&e, &q_shared).await.value("pg_up", &[]), Some(1.0));

    // A closed port, and a listener that accepts and never answers.
    let closed = harness::free_port();
    let t = Instant::now();
    let m = probe_ok(&e, &format!("target=127.0.0.1:{closed}&auth_module=plain")).await;
    assert_eq!(m.value("pg_up", &[]), Some(0.0));
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    let t = Instant::now();
    let m = probe_ok(&e, &format!("target=127.0.0.1:{silent_port}&auth_module=plain")).await;
    assert_eq!(m.value("pg_up", &[]), Some(0.0));
    let took = t.elapsed();
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(6),
        "scrape timeout is 3s, took {took:?}"
    );
    drop(silent);

    let logs = e.logs();
    assert!(
        !logs.contains(&password) && !logs.contains(&secret),
        "a password reached the log"
    );
}

#[tokio::test]
async fn config_file_errors_stop_the_exporter() {
    let dir = Dir::new("probe-cfg");
    let bad = dir.write(
        "bad.yml",
        "auth_modules:\n  fleet:\n    user: mon\n    pasword: x\n",
        0o600,
    );
    let missing = dir.write(
        "missing.yml",
        "auth_modules:\n  fleet:\n    password_file: /nonexistent/pw\n",
        0o600,
    );
    for (file, want) in [
        (&bad, "pasword"),
        (
            &missing,
            "auth_modules.fleet: cannot read password_file \"/nonexistent/pw\"",
        ),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_pgmaint-exporter"))
            .env_clear()
            .env("PGMAINT_DATABASE_URL", "postgresql://u@127.0.0.1:1/db")
            .env("PGMAINT_CONFIG_FILE", file)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(
            err.contains("PGMAINT_CONFIG_FILE:") && err.contains(want),
            "{err}"
        );
    }
}

/// The exporter process serving on `addr` (found by its environment).
fn exporter_pid(addr: &str) -> u32 {
    let want = format!("PGMAINT_LISTEN_ADDRESS={addr}");
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .find(|pid| {
            std::fs::read(format!("/proc/{pid}/environ"))
                .map(|env| env.split(|b| *b == 0).any(|kv| kv == want.as_bytes()))
                .unwrap_or(false)
        })
        .expect("exporter process")
}

/// TCP connections the process holds open to any of `ports`, as the kernel
/// sees them: its socket inodes matched against /proc/net/tcp (ESTABLISHED).
fn open_sockets(pid: u32, ports: &[u16]) -> usize {
    let inodes: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| {
            d.filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
                .filter_map(|l| {
                    l.to_str()?
                        .strip_prefix("socket:[")?
                        .strip_suffix(']')
                        .map(String::from)
                })
                .collect()
        })
        .unwrap_or_default();
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
    table
        .lines()
        .skip(1)
        .filter(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let remote_port = f[2]
                .rsplit(':')
                .next()
                .and_then(|p| u16::from_str_radix(p, 16).ok());
            f[3] == "01"
                && remote_port.is_some_and(|p| ports.contains(&p))
                && inodes.iter().any(|i| i == f[9])
        })
        .count()
}

/// Exporter sessions in `dbs` on `pg`, as the server sees them.
async fn sessions(admin: &tokio_postgres::Client, dbs: &[String]) -> usize {
    admin
        .query_one(
            "SELECT count(*) FROM pg_stat_activity
              WHERE application_name = 'pgmaint-exporter' AND datname = ANY($1)",
            &[&dbs],
        )
        .await
        .unwrap()
        .get::<_, i64>(0) as usize
}

#[tokio::test]
async fn many_targets_stay_within_the_connection_bound() {
    const BOUND: usize = 8;
    let pid = std::process::id();
    let shared = harness::cluster();
    let own = harness::dedicated();
    // 60 databases on each cluster: 120 targets.
    let mut targets = Vec::new();
    let mut dbs: [Vec<String>; 2] = [vec![], vec![]];
    for (i, pg) in [&shared, &own].into_iter().enumerate() {
        let admin = pg.client("postgres").await;
        for n in 0..60 {
            let name = format!("p{pid}_{i}_{n}");
            admin
                .batch_execute(&format!("CREATE DATABASE \"{name}\""))
                .await
                .unwrap();
            targets.push(format!(
                "target=127.0.0.1:{}/{name}&database={name}&auth_module=plain",
                pg.port
            ));
            dbs[i].push(name);
        }
    }
    let dir = Dir::new("probe-many");
    let config = dir.write(
        "config.yml",
        "auth_modules:\n  plain:\n    user: postgres\n    sslmode: disable\n    allowed_targets: [127.0.0.1/32]\n",
        0o600
    );
    // /metrics watches a closed port: only /probe connects anywhere.
    let nowhere = format!(
        "postgresql://postgres@127.0.0.1:{}/postgres",
        harness::free_port()
    );
    let e = Arc::new(
        shared
            .spawn_exporter(
                "postgres",
                &[
                    ("PGMAINT_DATABASE_URL", nowhere.as_str()),
                    ("PGMAINT_CONFIG_FILE", config.as_str()),
                    ("PGMAINT_COLLECTORS", "database,activity,tables,indexes"),
                    ("PGMAINT_LOG_LEVEL", "info"),
                    ("PGMAINT_MAX_CONNECTIONS", "2"),
                    ("PGMAINT_MAX_CONNECTIONS_TOTAL", "8"),
                    ("PGMAINT_MAX_TARGETS", "30"),
                    // Long enough that, on a loaded machine, targets are not
                    // all closed as idle before 30 are held: idle targets are
                    // swept on every request, so with 2 s the cap was never
                    // reached when a probe took ~0.5 s.
                    ("PGMAINT_TARGET_IDLE_TIMEOUT", "10s"),
                ],
            )
            .await,
    );

    // Sample the servers' view while 6 clients probe the 120 targets twice over.
    let admins = [shared.client("postgres").await, own.client("postgres").await];
    let done = Arc::new(AtomicBool::new(false));
    let pid = exporter_pid(&e.addr);
    let ports = [shared.port, own.port];
    let sampler = {
        let done = done.clone();
        let dbs = dbs.clone();
        tokio::spawn(async move {
            let (mut peak, mut server_peak, mut samples) = (0, 0, 0);
            while !done.load(Ordering::Relaxed) && samples < 3000 {
                peak = peak.max(open_sockets(pid, &ports));
                let n = sessions(&admins[0], &dbs[0]).await + sessions(&admins[1], &dbs[1]).await;
                server_peak = server_peak.max(n);
                samples += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            (peak, server_peak, samples, admins)
        })
    };
    let next = Arc::new(AtomicUsize::new(0));
    let targets = Arc::new(targets);
    let workers: Vec<_> = (0..6)
        .map(|_| {
            let (e, next, targets) = (e.clone(), next.clone(), targets.clone());
            tokio::spawn(async move {
                let mut down = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= targets.len() * 2 {
                        return down;
                    }
                    let q = &targets[i % targets.len()];
                    let m = probe_ok(&e, q).await;
                    if m.value("pg_up", &[]) != Some(1.0) || !m.has("pg_server_info") {
                        down.push(q.clone());
                    }
                }
            })
        })
        .collect();
    let mut down = Vec::new();
    for w in workers {
        down.extend(w.await.unwrap());
    }
    let during = e.scrape().await;
    done.store(true, Ordering::Relaxed);
    let (peak, server_peak, samples, admins) = sampler.await.unwrap();
    assert!(down.is_empty(), "targets not up: {down:?}\n{}", e.logs());
    assert!(samples >= 10, "only {samples} samples");
    assert!(
        peak >= 2 && server_peak >= 2,
        "the sampler never saw the probes' connections (sockets {peak}, sessions {server_peak})"
    );
    // The bound is on connections the exporter holds: its open sockets. The
    // server lists a closed connection's backend until it has exited, a few
    // ms later, so its count can lag by the connections just closed to make
    // room; it is reported, and must drop to 0 once targets are idle.
    assert!(peak <= BOUND, "{peak} connections open at once, bound {BOUND}");
    let targets_held = during.value("pgmaint_exporter_probe_targets", &[]).unwrap();
    assert!(
        targets_held <= 30.0,
        "{targets_held} targets held, PGMAINT_MAX_TARGETS 30"
    );
    assert!(
        during
            .value("pgmaint_exporter_probe_connections_open", &[])
            .unwrap()
            <= BOUND as f64
    );
    println!(
        "peak {peak} sockets ({server_peak} sessions seen by the servers) over {samples} samples; \
         {targets_held} targets held after the run"
    );

    // Idle for the idle timeout: every target closed, every session gone.
    harness::eventually(Duration::from_secs(40), || async {
        let n = sessions(&admins[0], &dbs[0]).await
            + sessions(&admins[1], &dbs[1]).await
            + open_sockets(pid, &ports);
        let held = e.scrape().await.value("pgmaint_exporter_probe_targets", &[]);
        (n == 0 && held == Some(0.0)).then_some(())
    })
    .await;
    let logs = e.logs();
    assert!(logs.contains("closing idle probe target"), "{logs}");
    assert!(
        logs.contains("PGMAINT_MAX_TARGETS reached"),
        "120 targets never evicted one: {logs}"
    );

    for name in &dbs[0] {
        let _ = admins[0]
            .batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\""))
            .await;
    }
}
