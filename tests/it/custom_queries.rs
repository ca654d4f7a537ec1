//! Custom queries (`PGMAINT_QUERIES_FILE`): the shipped example against a
//! seeded meeting-system schema, entries that fail at run time (each its own
//! `success 0`, HTTP still 200), and files the exporter refuses at start.

use crate::harness;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

fn example() -> String {
    concat!(env!("CARGO_MANIFEST_DIR"), "/examples/queries.yml").to_string()
}

/// A queries file in a temp directory, removed on drop.
struct File(PathBuf);

impl File {
    fn new(tag: &str, text: &str) -> File {
        let p = std::env::temp_dir().join(format!("pgmaint-queries-{}-{tag}.yml", std::process::id()));
        std::fs::write(&p, text).unwrap();
        File(p)
    }
    fn path(&self) -> String {
        self.0.display().to_string()
    }
}

impl Drop for File {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// An exporter on `db` with only the `database` collector and these queries.
async fn with_queries(pg: &harness::Cluster, db: &str, queries: &str) -> harness::Exporter {
    pg.spawn_exporter(
        db,
        &[
            ("PGMAINT_COLLECTORS", "database"),
            ("PGMAINT_QUERIES_FILE", queries),
        ],
    )
    .await
}

#[tokio::test]
async fn meeting_system_checks_report_exact_values() {
    let pg = harness::cluster();
    let db = pg.fresh_db().await;
    db.batch(
        "CREATE TABLE users (id int PRIMARY KEY, email text);
         INSERT INTO users SELECT g, 'u' || g || '@example.org' FROM generate_series(1, 1234) g;
         CREATE TABLE meetings (id int PRIMARY KEY, created_at timestamptz);
         INSERT INTO meetings SELECT g, timestamptz '2026-11-01 00:00:00+00' + g * interval '1 hour'
           FROM generate_series(1, 77) g;
         INSERT INTO meetings VALUES (1000, '2026-11-20 10:30:00.25+00');",
    )
    .await;
    let exporter = with_queries(&pg, &db.name, &example()).await;
    let d = db.name.as_str();
    let m = harness::eventually(Duration::from_secs(20), || async {
        let m = exporter.scrape().await;
        (m.has("app_users") && m.has("app_meetings_rows")).then_some(m)
    })
    .await;
    assert_eq!(m.value("app_users", &[("datname", d)]), Some(1234.0));
    assert_eq!(m.value("app_meetings_rows", &[("datname", d)]), Some(78.0));
    // extract(epoch …) is numeric: 2026-11-20 10:30:00.25 UTC.
    assert_eq!(
        m.value("app_meetings_newest_created_timestamp_seconds", &[("datname", d)]),
        Some(1_795_170_600.25)
    );
    for c in ["custom:app_users", "custom:app_meetings"] {
        assert_eq!(
            m.value("pg_scrape_collector_success", &[("collector", c), ("datname", d)]),
            Some(1.0),
            "{c}"
        );
    }
    assert_eq!(m.types["app_users"], "gauge");
    assert!(m.raw.contains("# HELP app_users Rows in the users table (count(*)). Custom query from PGMAINT_QUERIES_FILE, cached 300s.\n"));
    assert_eq!(harness::promtool_check(&m.raw), "");
}

/// A numeric value column gives the same f64 as PostgreSQL's `::float8` of
/// it, also where summing base-10000 digits in floating point does not
/// (1/3, an epoch with microseconds), and NaN, huge and tiny values are
/// read too.
#[tokio::test]
async fn numeric_columns_equal_postgresqls_float8_cast() {
    let pg = harness::cluster();
    let db = pg.fresh_db().await;
    let file = File::new(
        "numeric",
        "
queries:
  - name: num
    help: Numeric values and their float8 casts.
    sql: >-
      SELECT k, v AS n, v::float8 AS f FROM (VALUES
        ('third', 1::numeric / 3), ('epoch', 594707488.797792), ('negative', -123456789.987654321),
        ('zero', 0::numeric), ('tiny', 1e-300::numeric), ('huge', 1e300::numeric),
        ('integer', 12345678901234567890::numeric), ('nan', 'NaN'::numeric)) t(k, v)
    labels: [k]
    values: [n, f]
",
    );
    let exporter = with_queries(&pg, &db.name, &file.path()).await;
    let d = db.name.as_str();
    let m = harness::eventually(Duration::from_secs(20), || async {
        let m = exporter.scrape().await;
        m.has("num_n").then_some(m)
    })
    .await;
    for k in [
        "third", "epoch", "negative", "zero", "tiny", "huge", "integer", "nan",
    ] {
        let labels = [("datname", d), ("k", k)];
        let (n, f) = (m.value("num_n", &labels), m.value("num_f", &labels));
        let (n, f) = (n.unwrap_or_else(|| panic!("no num_n for {k}")), f.unwrap());
        assert!(
            n == f || (n.is_nan() && f.is_nan()),
            "{k}: numeric read as {n}, ::float8 is {f}"
        );
    }
    assert_eq!(
        m.value("num_n", &[("datname", d), ("k", "third")]),
        Some(1.0 / 3.0)
    );
}

const RUNTIME: &str = "
queries:
  - name: ok_rooms
    help: Rooms by building.
    sql: SELECT b::text AS building, count(*) AS rooms FROM generate_series(1, 3) b, generate_series(1, 4) r GROUP BY b
    labels: [building]
    values: [rooms]
  - name: no_label_column
    help: The label column is not in the result.
    sql: SELECT 1 AS v
    labels: [room]
    values: [v]
  - name: not_numeric
    help: The value column is text.
    sql: SELECT 'many'::text AS v
    values: [v]
  - name: no_table
    help: The table does not exist.
    sql: SELECT count(*) AS v FROM no_such_table
    values: [v]
  - name: too_slow
    help: Runs past its own timeout.
    sql: SELECT 1 AS v FROM pg_sleep(3)
    values: [v]
    timeout: 300ms
  - name: elsewhere
    help: Runs in another database only.
    sql: SELECT 1 AS v
    values: [v]
    databases: [some_other_db]
";

#[tokio::test]
async fn failing_entries_fail_alone() {
    let pg = harness::cluster();
    let db = pg.fresh_db().await;
    let file = File::new("runtime", RUNTIME);
    let exporter = with_queries(&pg, &db.name, &file.path()).await;
    let d = db.name.as_str();
    let success = |m: &harness::Samples, c: &str| {
        m.value(
            "pg_scrape_collector_success",
            &[("collector", &format!("custom:{c}")), ("datname", d)],
        )
    };
    let m = harness::eventually(Duration::from_secs(20), || async {
        let m = exporter.scrape().await;
        [
            "ok_rooms",
            "no_label_column",
            "not_numeric",
            "no_table",
            "too_slow",
        ]
        .iter()
        .all(|c| success(&m, c).is_some())
        .then_some(m)
    })
    .await;
    assert_eq!(success(&m, "ok_rooms"), Some(1.0));
    for b in ["1", "2", "3"] {
        assert_eq!(m.value("ok_rooms", &[("datname", d), ("building", b)]), Some(4.0));
    }
    for c in ["no_label_column", "not_numeric", "no_table", "too_slow"] {
        assert_eq!(success(&m, c), Some(0.0), "{c}");
        assert!(!m.has(c), "{c} has samples");
    }
    assert_eq!(success(&m, "elsewhere"), None, "not run in this database");
    assert_eq!(
        m.value("pg_scrape_collector_success", &[("collector", "database")]),
        Some(1.0)
    );
    let logs = exporter.logs();
    for why in [
        "label column \"room\" is not in the result of custom query no_label_column",
        "column v has type text, cast it to float8 in SQL",
        "relation \"no_such_table\" does not exist",
        "canceling statement due to statement timeout",
    ] {
        assert!(logs.contains(why), "no {why:?} in the log:\n{logs}");
    }
    assert_eq!(harness::promtool_check(&m.raw), "");
}

/// Runs the binary until it exits: (exit code, stderr).
fn start(file: &str) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_pgmaint-exporter"))
        .env_clear()
        .env("PGMAINT_DATABASE_URL", "postgresql://mon@127.0.0.1:1/postgres")
        .env("PGMAINT_QUERIES_FILE", file)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[test]
fn bad_files_stop_the_exporter_naming_the_entry() {
    let cases = [
        (
            "dup",
            "queries:\n  - {name: app_x, help: h, sql: SELECT 1 AS v, values: [v]}\n  - {name: app_x, help: h, sql: SELECT 2 AS v, values: [v]}\n",
            "entry 2 (app_x): duplicate metric name app_x (also in entry 1 (app_x))",
        ),
        (
            "nosql",
            "queries:\n  - {name: app_users, help: h, values: [v]}\n",
            "entry 1 (app_users): sql is missing",
        ),
        (
            "clash",
            "queries:\n  - {name: pg_table_dead_tuples, help: h, sql: SELECT 1 AS v, values: [v]}\n",
            "entry 1 (pg_table_dead_tuples): metric name pg_table_dead_tuples clashes with a built-in family",
        ),
        // Issue 17 item 4: one reading statement per entry, checked at start.
        (
            "set",
            "queries:\n  - {name: app_s, help: h, sql: 'SET default_transaction_read_only = off', values: [v]}\n",
            "entry 1 (app_s): sql must be one query starting with SELECT, WITH, VALUES or TABLE, not \"SET default_transact\"",
        ),
        (
            "multi",
            "queries:\n  - {name: app_m, help: h, sql: 'SELECT 1 AS v; SET default_transaction_read_only = off', values: [v]}\n",
            "entry 1 (app_m): sql holds more than one statement (text after ';'): one query per entry",
        ),
        (
            "novalues",
            "queries:\n  - {name: app_y, help: h, sql: SELECT 1 AS v}\n",
            "entry 1 (app_y): values is missing: name the numeric column(s)",
        ),
    ];
    for (tag, text, expected) in cases {
        let f = File::new(tag, text);
        let (code, stderr) = start(&f.path());
        assert_eq!(code, 2, "{tag}: {stderr}");
        assert_eq!(
            stderr.trim(),
            format!("pgmaint-exporter: PGMAINT_QUERIES_FILE: {}: {expected}", f.path()),
            "{tag}"
        );
    }
    let (code, stderr) = start("/nonexistent/queries.yml");
    assert_eq!(code, 2);
    assert!(
        stderr.contains("PGMAINT_QUERIES_FILE: cannot read \"/nonexistent/queries.yml\": No such file"),
        "{stderr}"
    );
    // The shipped example is valid.
    let shipped = pgmaint_exporter::custom_queries::load(&example()).unwrap();
    assert_eq!(shipped.len(), 2);
}

/// A custom query cannot turn read-only off for the queries after it
/// (issue 17 item 4): each run is in `BEGIN READ ONLY … ROLLBACK`, so
/// `set_config(…, false)` is undone and a writable CTE fails. With one
/// connection, every query (built-in ones too) shares the session the flip
/// ran in, so `ro_check` reading `on` after it shows they all stay read-only.
#[tokio::test]
async fn a_custom_query_cannot_make_sessions_writable() {
    let pg = harness::cluster();
    let db = pg.fresh_db().await;
    db.batch("CREATE TABLE t (x int)").await;
    let file = File::new(
        "readonly",
        "queries:
  - name: flip
    help: Tries to turn read-only off for the session.
    sql: SELECT length(set_config('default_transaction_read_only', 'off', false)) AS v
    values: [v]
    cache: 1s
  - name: write
    help: A writable CTE.
    sql: WITH i AS (INSERT INTO t VALUES (1) RETURNING 1) SELECT count(*) AS v FROM i
    values: [v]
    cache: 1s
  - name: ro_check
    help: The session's default_transaction_read_only, and when it was read.
    sql: >-
      SELECT (current_setting('default_transaction_read_only') = 'on')::int AS ro,
             extract(epoch FROM clock_timestamp()) AS at
    values: [ro, at]
    cache: 1s
",
    );
    let exporter = pg
        .spawn_exporter(
            &db.name,
            &[
                ("PGMAINT_COLLECTORS", "database,activity"),
                ("PGMAINT_QUERIES_FILE", &file.path()),
                ("PGMAINT_MAX_CONNECTIONS", "1"),
            ],
        )
        .await;
    let d = db.name.as_str();
    let success = |m: &harness::Samples, c: &str| {
        m.value(
            "pg_scrape_collector_success",
            &[("collector", &format!("custom:{c}")), ("datname", d)],
        )
    };
    // The flip has run (and, before the fix, stuck)…
    harness::eventually(Duration::from_secs(20), || async {
        let m = exporter.scrape().await;
        (success(&m, "flip") == Some(1.0)).then_some(())
    })
    .await;
    let flipped_by = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    // …then ro_check runs twice more, and the writer at least once more
    // (all on the one connection, at 1 s intervals).
    let m = harness::eventually(Duration::from_secs(20), || async {
        let m = exporter.scrape().await;
        let at = m.value("ro_check_at", &[("datname", d)])?;
        (at > flipped_by + 2.0).then_some(m)
    })
    .await;
    assert_eq!(
        m.value("ro_check_ro", &[("datname", d)]),
        Some(1.0),
        "the session is still read-only after the flip"
    );
    assert_eq!(success(&m, "write"), Some(0.0));
    assert!(!m.has("write"), "the writable CTE gave no sample");
    assert_eq!(db.scalar_f64("SELECT count(*)::float8 FROM t").await, 0.0);
    assert_eq!(
        m.value("pg_scrape_collector_success", &[("collector", "activity")]),
        Some(1.0)
    );
    // ExecCheckXactReadOnly names the top-level command of a plan with a
    // modifying CTE: SELECT.
    let logs = exporter.logs();
    assert!(
        logs.contains("cannot execute SELECT in a read-only transaction"),
        "{logs}"
    );
}
