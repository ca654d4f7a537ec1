//! Database-side security: a password read from a file, never shown
//! anywhere; an unreadable password file stops the exporter; the exporter's
//! sessions are read-only and run only reading statements.
use crate::harness;

use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use harness::{Dir, Exporter};

/// Runs the exporter binary to completion (bounded): (exit code, stdout + stderr).
fn run_to_exit(mut cmd: Command) -> (i32, String) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start exporter");
    let until = Instant::now() + Duration::from_secs(20);
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if Instant::now() > until {
            let _ = child.kill();
            let _ = child.wait();
            panic!("exporter did not exit within 20s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    let mut text = String::from_utf8_lossy(&out.stdout).to_string();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), text)
}

fn exporter_cmd(env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pgmaint-exporter"));
    cmd.env_clear();
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// Everything a user can see from a running exporter: its log, `/metrics`, `/`, `/healthz`.
async fn all_output(e: &Exporter) -> String {
    let mut all = String::new();
    for path in ["/metrics", "/", "/healthz"] {
        let (status, body) = e.get(path).await;
        all.push_str(&format!("{path} {status}\n{body}\n"));
    }
    all.push_str(&e.logs());
    all
}

#[tokio::test]
async fn password_file_works_and_the_password_never_shows() {
    let password = harness::unique_secret("right");
    let wrong = harness::unique_secret("wrong");
    let dir = Dir::new("pwfile");
    let pw_file = dir.write("password", &format!("{password}\n"), 0o600);
    let wrong_file = dir.write("wrong", &format!("{wrong}\n"), 0o600);
    let pg = harness::password_cluster("scram-sha-256", &password).await;
    let db = pg.fresh_db().await;
    let url = format!("postgresql://mon@127.0.0.1:{}/{}", pg.port, db.name);
    let base = [
        ("PGMAINT_DATABASE_URL", url.as_str()),
        ("PGMAINT_COLLECTORS", "database,settings,activity"),
    ];

    // No password: refused once the scram line is in force (proves it is enforced).
    let e = pg.spawn_exporter(&db.name, &base).await;
    harness::eventually(Duration::from_secs(10), || async {
        (e.scrape().await.value("pg_up", &[]) == Some(0.0)).then_some(())
    })
    .await;
    drop(e);

    // The password from the file: up, as mon, and nowhere in the output.
    let mut env = base.to_vec();
    env.push(("PGMAINT_DATABASE_PASSWORD_FILE", &pw_file));
    let e = pg.spawn_exporter(&db.name, &env).await;
    assert_eq!(e.scrape().await.value("pg_up", &[]), Some(1.0), "{}", e.logs());
    let user: String = db
        .client
        .query_one(
            "SELECT usename::text FROM pg_stat_activity WHERE application_name = 'pgmaint-exporter' AND datname = $1 LIMIT 1",
            &[&db.name],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(user, "mon");
    let out = all_output(&e).await;
    assert!(out.contains("DEBUG"), "log level is debug: {out}");
    assert!(
        !out.contains(&password),
        "password in the exporter's output:\n{out}"
    );
    drop(e);

    // A wrong password: pg_up 0, the server says why, and the wrong one is not shown either.
    let mut env = base.to_vec();
    env.push(("PGMAINT_DATABASE_PASSWORD_FILE", &wrong_file));
    let e = pg.spawn_exporter(&db.name, &env).await;
    assert_eq!(e.scrape().await.value("pg_up", &[]), Some(0.0));
    let out = all_output(&e).await;
    assert!(out.contains("reporting pg_up 0"), "{out}");
    assert!(!out.contains(&wrong), "password in the exporter's output:\n{out}");
    let server_log = std::fs::read_to_string(format!("{}/server.log", pg.dir)).unwrap();
    assert!(
        server_log.contains("password authentication failed for user \"mon\""),
        "{server_log}"
    );
    drop(e);

    // Bad configuration exits 2 without echoing a password, in either DSN form
    // and with the password file.
    let in_url = format!("postgresql://mon:{password}@127.0.0.1:{}/x?bogus=1", pg.port);
    let in_kv = format!("host=127.0.0.1 user=mon password={password} sslmode=maybe");
    let cases: [Vec<(&str, &str)>; 3] = [
        vec![("PGMAINT_DATABASE_URL", &in_url)],
        vec![("PGMAINT_DATABASE_URL", &in_kv)],
        vec![
            ("PGMAINT_DATABASE_URL", &url),
            ("PGMAINT_DATABASE_PASSWORD_FILE", &pw_file),
            ("PGMAINT_LOG_LEVEL", "banana"),
        ],
    ];
    for env in cases {
        let (code, out) = run_to_exit(exporter_cmd(&env));
        assert_eq!(code, 2, "{env:?}: {out}");
        assert!(out.contains("PGMAINT_"), "{out}");
        assert!(!out.contains(&password), "password in a config error: {out}");
    }
}

#[tokio::test]
async fn unreadable_password_file_stops_the_exporter() {
    let dir = Dir::new("pwfile-mode");
    let secret = harness::unique_secret("unreadable");
    // Owned by root (or by us), mode 0600 (0000 when not root): the exporter,
    // run as the unprivileged test user, may not read it.
    let as_user = harness::is_root();
    let file = dir.write("password", &secret, if as_user { 0o600 } else { 0o000 });
    let listen = format!("127.0.0.1:{}", harness::free_port());
    let env = [
        ("PGMAINT_DATABASE_URL", "postgresql://mon@127.0.0.1:1/postgres"),
        ("PGMAINT_DATABASE_PASSWORD_FILE", file.as_str()),
        ("PGMAINT_LISTEN_ADDRESS", listen.as_str()),
    ];
    // Runs as pgmaint, like `runuser -u pgmaint --`, but as the direct child,
    // so that killing it kills the exporter.
    let ids = |flag: &str| -> u32 {
        let out = Command::new("id").args([flag, "pgmaint"]).output().unwrap();
        String::from_utf8(out.stdout)
            .unwrap()
            .trim()
            .parse()
            .expect("user pgmaint exists")
    };
    let cmd = |env: &[(&str, &str)]| {
        let mut c = exporter_cmd(env);
        if as_user {
            use std::os::unix::process::CommandExt;
            c.uid(ids("-u")).gid(ids("-g"));
        }
        c
    };
    let (code, out) = run_to_exit(cmd(&env));
    assert_eq!(code, 2, "{out}");
    let want = format!("PGMAINT_DATABASE_PASSWORD_FILE: cannot read {file:?}: Permission denied");
    assert!(out.contains(&want), "no {want:?} in {out}");
    assert!(!out.contains(&secret));

    // The same user with a readable file starts: the mode was the reason.
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut child = cmd(&env)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let until = Instant::now() + Duration::from_secs(15);
    let started = loop {
        if let Ok(Some(st)) = child.try_wait() {
            break Err(st);
        }
        if let Ok(r) = reqwest::get(format!("http://{listen}/healthz")).await {
            if r.status() == 200 {
                break Ok(());
            }
        }
        if Instant::now() > until {
            let _ = child.kill();
            let _ = child.wait();
            panic!("exporter with a readable password file did not answer /healthz within 15s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let _ = child.kill();
    let _ = child.wait();
    // runuser forwards the kill to its child; make sure nothing listens any more.
    harness::eventually(Duration::from_secs(10), || async {
        reqwest::get(format!("http://{listen}/healthz"))
            .await
            .err()
            .map(|_| ())
    })
    .await;
    assert_eq!(started, Ok(()), "exporter with a readable file exited");
}

/// The exporter's own connection code hands out read-only sessions: a write fails.
#[tokio::test]
async fn pooled_sessions_are_read_only() {
    let pg = harness::cluster();
    let db = pg.fresh_db().await;
    let config =
        pgmaint_exporter::config::Config::from_vars([("PGMAINT_DATABASE_URL".to_string(), pg.url(&db.name))])
            .unwrap();
    let pools = pgmaint_exporter::pool::Pools::new(&config);
    let lease = pools
        .get(&db.name, Instant::now() + Duration::from_secs(10))
        .await
        .unwrap();
    let ro: String = lease
        .conn
        .query_one("SHOW default_transaction_read_only", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(ro, "on");
    let err = lease
        .conn
        .batch_execute("CREATE TABLE must_not_exist (id int)")
        .await
        .expect_err("a write in the exporter's session succeeded");
    assert_eq!(
        err.code(),
        Some(&tokio_postgres::error::SqlState::READ_ONLY_SQL_TRANSACTION),
        "{err:?}"
    );
    // The server agrees the table was not made.
    let n: i64 = db
        .client
        .query_one(
            "SELECT count(*) FROM pg_class WHERE relname = 'must_not_exist'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 0);
}

/// Every statement the real exporter sends, with every collector on, is a
/// read (SELECT/WITH/SHOW) or a session SET/RESET (a pooled connection is
/// reset before reuse) — as recorded by pg_stat_statements for the
/// exporter's own role.
#[tokio::test]
async fn exporter_runs_only_reading_statements() {
    let pg = harness::cluster();
    let db = pg.fresh_db().await;
    let role = format!("ro_{}", std::process::id());
    db.batch(&format!(
        "CREATE EXTENSION IF NOT EXISTS pg_stat_statements;
         CREATE ROLE {role} LOGIN IN ROLE pg_monitor;
         CREATE TABLE t (id serial PRIMARY KEY, v text);
         INSERT INTO t (v) SELECT g::text FROM generate_series(1, 1000) g;
         DELETE FROM t WHERE id <= 100;
         ANALYZE t;"
    ))
    .await;
    let url = format!("postgresql://{role}@127.0.0.1:{}/{}", pg.port, db.name);
    let e = pg
        .spawn_exporter(
            &db.name,
            &[("PGMAINT_DATABASE_URL", &url), ("PGMAINT_BLOAT_EXACT", "true")],
        )
        .await;
    for _ in 0..2 {
        assert_eq!(e.scrape().await.value("pg_up", &[]), Some(1.0), "{}", e.logs());
    }
    drop(e);
    let rows = db
        .client
        .query(
            "SELECT query, calls FROM pg_stat_statements s JOIN pg_roles r ON r.oid = s.userid
              WHERE r.rolname = $1",
            &[&role],
        )
        .await
        .unwrap();
    let mut reads = 0;
    for r in &rows {
        let q: String = r.get(0);
        let first = q
            .trim_start()
            .split(|c: char| c.is_whitespace() || c == '(')
            .next()
            .unwrap_or("")
            .to_ascii_uppercase();
        assert!(
            ["SELECT", "WITH", "SHOW", "SET", "RESET"].contains(&first.as_str()),
            "the exporter ran a non-reading statement: {q}"
        );
        let upper = q.to_ascii_uppercase();
        for w in [
            "INSERT ",
            "UPDATE ",
            "DELETE ",
            "CREATE ",
            "DROP ",
            "ALTER ",
            "TRUNCATE ",
        ] {
            assert!(!upper.contains(w), "{w} in an exporter statement: {q}");
        }
        if first != "SET" && first != "RESET" {
            reads += 1;
        }
    }
    eprintln!(
        "{reads} reading statements and {} in all recorded for the exporter",
        rows.len()
    );
    // Not vacuous: the collectors' queries are there.
    assert!(reads >= 10, "only {reads} reading statements recorded: {rows:?}");
}

/// Issue 17 item 5: a malformed DSN stops the exporter with exit 2 and one
/// line naming the variable, and no part of the password, whatever the form.
#[test]
fn dsn_errors_never_show_a_password() {
    for (dsn, secrets) in [
        ("postgresql://postgres:hunter2/@host/db", &["hunter2"][..]),
        ("postgresql://postgres:hunter2/host/db", &["hunter2"]),
        ("postgresql://u:hunter2@h:99999/db", &["hunter2"]),
        ("postgresql://h/db?password=hunter2&sslmode=maybe", &["hunter2"]),
        ("host=localhost password = SpacedPw58 bogus=1", &["SpacedPw58"]),
        (
            "host=localhost password='two words59' bogus=1",
            &["two words", "words59"],
        ),
        ("host=localhost password=two words59", &["words59"]),
        ("host=localhost password='two words59", &["two words", "words59"]),
    ] {
        for var in ["PGMAINT_DATABASE_URL", "DATA_SOURCE_NAME"] {
            let (code, out) = run_to_exit(exporter_cmd(&[(var, dsn)]));
            assert_eq!(code, 2, "{dsn}: {out}");
            assert_eq!(out.trim().lines().count(), 1, "{dsn}: {out}");
            assert!(out.contains(var), "{out}");
            for s in secrets {
                assert!(!out.contains(s), "{dsn:?} printed {s:?}: {out}");
            }
        }
    }
}

/// Issue 17 item 10: an empty or whitespace DSN, a bare URL, an unbracketed
/// IPv6 address, junk after brackets and port 0 are errors (exit 2, one
/// line naming the setting), not a silent start against localhost.
#[test]
fn dsns_naming_no_server_or_a_wrong_one_are_errors() {
    for dsn in [
        "",
        "   ",
        "postgresql://",
        "postgres://",
        "postgresql://u@::1",
        "postgresql://u@[::1]junk/db",
        "postgresql://u@h:0/db",
        "host=h port=0",
    ] {
        let (code, out) = run_to_exit(exporter_cmd(&[("PGMAINT_DATABASE_URL", dsn)]));
        assert_eq!(code, 2, "{dsn:?}: {out}");
        assert_eq!(out.trim().lines().count(), 1, "{dsn:?}: {out}");
        assert!(out.contains("PGMAINT_DATABASE_URL"), "{dsn:?}: {out}");
    }
}

/// Issue 17 item 5, files: a password file whose contents look like DSN
/// syntax (quotes, spaces, `key=value`, a backslash) is used verbatim and
/// never shown, for the exporter's own DSN and for an auth module.
#[tokio::test]
async fn odd_password_file_contents_never_show() {
    let password = harness::unique_secret("right");
    let dir = Dir::new("oddpw");
    let odd = format!("It's {password}' bogus=1 \\x \"q\"");
    let odd_file = dir.write("odd", &format!("{odd}\n"), 0o600);
    let pg = harness::password_cluster("scram-sha-256", &password).await;
    let db = pg.fresh_db().await;
    let url = format!("postgresql://mon@127.0.0.1:{}/{}", pg.port, db.name);
    let config = dir.write(
        "config.yml",
        &format!(
            "auth_modules:\n  odd:\n    user: mon\n    password_file: {odd_file}\n    sslmode: disable\n    allow_unverified_password_auth: true\n    allowed_targets: [\"127.0.0.1:{}\"]\n",
            pg.port
        ),
        0o600,
    );
    let e = pg
        .spawn_exporter(
            &db.name,
            &[
                ("PGMAINT_DATABASE_URL", url.as_str()),
                ("PGMAINT_DATABASE_PASSWORD_FILE", odd_file.as_str()),
                ("PGMAINT_CONFIG_FILE", config.as_str()),
                ("PGMAINT_COLLECTORS", "database"),
            ],
        )
        .await;
    assert_eq!(e.scrape().await.value("pg_up", &[]), Some(0.0), "{}", e.logs());
    let (status, body) = e
        .get(&format!("/probe?target=127.0.0.1:{}&auth_module=odd", pg.port))
        .await;
    assert_eq!(status, 200);
    let mut all = all_output(&e).await;
    all.push_str(&body);
    assert!(all.contains("password authentication failed"), "{all}");
    for part in [password.as_str(), "bogus=1", "It's"] {
        assert!(!all.contains(part), "{part:?} shown: {all}");
    }
}
