//! Start-up behaviour of the real binary: bad settings, --help, --version.

use std::process::Command;

fn exporter(env: &[(&str, &str)], args: &[&str]) -> (i32, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pgmaint-exporter"));
    cmd.env_clear().args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

const URL: (&str, &str) = (
    "PGMAINT_DATABASE_URL",
    "postgresql://mon:hunter2secret@127.0.0.1:1/postgres",
);

#[test]
fn bad_values_exit_with_one_line_naming_the_variable() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "PGMAINT_STATEMENT_TIMEOUT",
            "banana",
            "PGMAINT_STATEMENT_TIMEOUT: \"banana\" is not a duration (e.g. 5s, 500ms, 2m, 1h)",
        ),
        (
            "PGMAINT_LOG_FORMAT",
            "xml",
            "PGMAINT_LOG_FORMAT: \"xml\" is not one of text, json",
        ),
        (
            "PGMAINT_LISTEN_ADDRESS",
            "nowhere",
            "PGMAINT_LISTEN_ADDRESS: \"nowhere\" is not an address:port",
        ),
        (
            "PGMAINT_MAX_CONNECTIONS",
            "-3",
            "PGMAINT_MAX_CONNECTIONS: \"-3\" is not a whole number ≥ 1",
        ),
        // Issue 17 item 6: these panicked (exit 101), the last after "listening".
        (
            "PGMAINT_SCRAPE_TIMEOUT",
            "99999999999999999999",
            "PGMAINT_SCRAPE_TIMEOUT: \"99999999999999999999\" is not a duration up to 366 days",
        ),
        (
            "PGMAINT_SCRAPE_TIMEOUT",
            "100000000000000000h",
            "PGMAINT_SCRAPE_TIMEOUT: \"100000000000000000h\" is not a duration up to 366 days",
        ),
        (
            "PGMAINT_STATEMENT_TIMEOUT",
            "30d",
            "PGMAINT_STATEMENT_TIMEOUT: \"30d\" is not a duration (e.g. 5s",
        ),
        (
            "PGMAINT_STATEMENT_TIMEOUT",
            "2147484s",
            "PGMAINT_STATEMENT_TIMEOUT: \"2147484s\" is not a duration up to 2147483647ms",
        ),
        (
            "PGMAINT_MAX_CONNECTIONS",
            "18446744073709551615",
            "PGMAINT_MAX_CONNECTIONS: \"18446744073709551615\" is not a whole number from 1 to 10000",
        ),
        (
            "PGMAINT_MAX_CONNECTIONS_TOTAL",
            "18446744073709551616",
            "PGMAINT_MAX_CONNECTIONS_TOTAL: \"18446744073709551616\" is not a whole number from 1 to 10000",
        ),
        (
            "PGMAINT_BLOAT_CACHE_SECONDS",
            "18446744073709551615",
            "PGMAINT_BLOAT_CACHE_SECONDS: \"18446744073709551615\" is not a whole number from 0 to 1000000",
        ),
        (
            "PGMAINT_COLLECTORS",
            "activity,bogus",
            "PGMAINT_COLLECTORS: \"bogus\" is not a collector name: one of activity,",
        ),
        (
            "PGMAINT_INCLUDE_DATABASES",
            "app(",
            "PGMAINT_INCLUDE_DATABASES: \"app(\" is not a name or regular expression",
        ),
    ];
    for (var, value, expected) in cases {
        let (code, stdout, stderr) = exporter(&[URL, (var, value)], &[]);
        assert_eq!(code, 2, "{var}={value}: {stderr}");
        assert!(stdout.is_empty());
        assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
        assert!(
            stderr.starts_with(&format!("pgmaint-exporter: {expected}")),
            "{var}={value}: got {stderr:?}"
        );
        assert!(!stderr.contains("hunter2secret"));
    }
}

/// A byte that is not UTF-8 in any of our variables (or an argument) is
/// named, not a panic (issue 17 item 6: `std::env::vars()` panicked).
#[test]
fn non_utf8_variables_are_named() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    for var in [
        "PGMAINT_LOG_LEVEL",
        "PGMAINT_DATABASE_URL",
        "PGMAINT_QUERIES_FILE",
        "PGMAINT_NOT_A_SETTING",
        "DATA_SOURCE_NAME",
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_pgmaint-exporter"))
            .env_clear()
            .env(URL.0, URL.1)
            .env(var, OsStr::from_bytes(b"in\xffvalid"))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{var}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
        assert!(
            stderr.starts_with(&format!(
                "pgmaint-exporter: could not read the environment: {var} is not valid UTF-8"
            )),
            "{var}: {stderr}"
        );
    }
    // Someone else's variable is none of our business.
    let out = Command::new(env!("CARGO_BIN_EXE_pgmaint-exporter"))
        .env_clear()
        .env("LANGUAGE", OsStr::from_bytes(b"\xff"))
        .arg("--version")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let out = Command::new(env!("CARGO_BIN_EXE_pgmaint-exporter"))
        .env_clear()
        .arg(OsStr::from_bytes(b"--\xff"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{:?}", out);
}

/// A custom query's `timeout` too large for statement_timeout stops the
/// exporter with the entry named (issue 17 item 6: it panicked).
#[test]
fn huge_custom_query_timeout_is_refused() {
    let path = std::env::temp_dir().join(format!("pgmaint-huge-timeout-{}.yml", std::process::id()));
    for (timeout, expected) in [
        (
            "\"99999999999999999999\"",
            "entry 1 (a_x): timeout: \"99999999999999999999\" is not a duration up to 366 days",
        ),
        // A bare YAML integer this large is refused by the YAML reader.
        ("99999999999999999999", "queries[0].timeout: invalid type"),
        ("30d", "entry 1 (a_x): timeout: \"30d\" is not a duration"),
        ("600h", "entry 1 (a_x): timeout must be at most 2147483647ms"),
    ] {
        std::fs::write(
            &path,
            format!(
                "queries:\n  - {{name: a_x, help: h, sql: SELECT 1 AS v, values: [v], timeout: {timeout}}}\n"
            ),
        )
        .unwrap();
        let (code, _, stderr) = exporter(&[URL, ("PGMAINT_QUERIES_FILE", path.to_str().unwrap())], &[]);
        assert_eq!(code, 2, "{timeout}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
        assert!(stderr.contains(expected), "{timeout}: {stderr}");
    }
    let _ = std::fs::remove_file(&path);
}

#[test]
fn bad_dsn_is_named_and_password_redacted() {
    let (code, _, stderr) = exporter(
        &[(
            "PGMAINT_DATABASE_URL",
            "postgresql://mon:hunter2secret@db:notaport/postgres",
        )],
        &[],
    );
    assert_eq!(code, 2);
    assert!(
        // The value is not quoted: a malformed URL can put a password there (issue 17 item 5).
        stderr.starts_with("pgmaint-exporter: PGMAINT_DATABASE_URL: a port in the URL is not a number"),
        "{stderr}"
    );
    assert!(!stderr.contains("hunter2secret"), "{stderr}");
    let (code, _, stderr) = exporter(
        &[(
            "DATA_SOURCE_NAME",
            "host=db password=hunter2secret sslmode=sometimes",
        )],
        &[],
    );
    assert_eq!(code, 2);
    assert!(
        stderr.contains("DATA_SOURCE_NAME") && stderr.contains("sslmode"),
        "{stderr}"
    );
    assert!(!stderr.contains("hunter2secret"), "{stderr}");
}

#[test]
fn missing_database_url_says_what_to_set() {
    let (code, _, stderr) = exporter(&[], &[]);
    assert_eq!(code, 2);
    assert!(stderr.contains("PGMAINT_DATABASE_URL"), "{stderr}");
}

#[test]
fn version_and_help() {
    let (code, stdout, _) = exporter(&[], &["--version"]);
    assert_eq!(code, 0);
    assert!(
        stdout.starts_with(&format!(
            "pgmaint-exporter {} (revision ",
            env!("CARGO_PKG_VERSION")
        )),
        "{stdout}"
    );
    let (code, stdout, _) = exporter(&[], &["--help"]);
    assert_eq!(code, 0);
    for var in [
        "PGMAINT_DATABASE_URL",
        "PGMAINT_COLLECTORS",
        "PGMAINT_SCRAPE_TIMEOUT",
        "PGMAINT_MAX_CONNECTIONS",
        "PGMAINT_HTTP_MAX_CONNECTIONS",
        "PGMAINT_HTTP_READ_HEADER_TIMEOUT",
        "PGMAINT_HTTP_IDLE_TIMEOUT",
    ] {
        assert!(stdout.contains(var), "--help lacks {var}");
    }
    let (code, _, stderr) = exporter(&[], &["--frobnicate"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("--frobnicate"));
}
