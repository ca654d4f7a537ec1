//! `/report` and `/report.json` against a database with real, seeded
//! problems: each is found with the right object and fix command, each fix
//! command runs and makes its finding go away; a healthy database has
//! nothing of warning or higher; basic auth guards the report; headless
//! Chromium renders the page (sorted by its inline script) and takes the
//! screenshots CI keeps under `target/`.

use crate::harness;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// `/report.json` for one database.
async fn report(exporter: &harness::Exporter, db: &str) -> Value {
    let (status, body) = exporter.get(&format!("/report.json?datname={db}")).await;
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

fn findings(r: &Value) -> Vec<Value> {
    r["findings"].as_array().expect("findings array").clone()
}

/// The finding of `kind` whose object has all of `object`'s fields.
fn find(r: &Value, kind: &str, object: &[(&str, Value)]) -> Option<Value> {
    findings(r)
        .into_iter()
        .find(|f| f["kind"] == kind && object.iter().all(|(k, v)| &f["object"][*k] == v))
}

fn fix_sql(f: &Value) -> Vec<String> {
    f["fix"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            assert_eq!(c["kind"], "sql", "{f}");
            c["text"].as_str().unwrap().to_string()
        })
        .collect()
}

/// Seeds one problem of each kind in `db`; returns the sessions that must
/// stay open (idle in transaction, running pg_sleep) and their pids.
struct Seeded {
    idle: tokio_postgres::Client,
    idle_pid: i32,
    _long: tokio::task::JoinHandle<Result<(), tokio_postgres::Error>>,
    long_pid: i32,
}

async fn seed(db: &harness::Db) -> Seeded {
    // Autovacuum off on the tables: it would otherwise race the test.
    db.batch(
        "CREATE TABLE \"Meeting \"\"Rooms\"\"\" (id int, room text) WITH (autovacuum_enabled = off);
         INSERT INTO \"Meeting \"\"Rooms\"\"\" SELECT g, 'room ' || g FROM generate_series(1, 30000) g;
         DELETE FROM \"Meeting \"\"Rooms\"\"\" WHERE id <= 20000;
         CREATE TABLE dups (k int) WITH (autovacuum_enabled = off);
         INSERT INTO dups SELECT g % 10 FROM generate_series(1, 100) g;
         CREATE TABLE orders (id int, customer int, note text) WITH (autovacuum_enabled = off);
         INSERT INTO orders SELECT g, g % 100, 'note ' || g FROM generate_series(1, 40000) g;
         CREATE INDEX orders_customer_a ON orders (customer);
         CREATE INDEX orders_customer_b ON orders (customer);
         CREATE INDEX \"Orders Note\" ON orders (note);
         CREATE TABLE tiny (v int);
         INSERT INTO tiny SELECT g FROM generate_series(1, 100) g;
         CREATE INDEX tiny_v ON tiny (v);
         SELECT pg_stat_force_next_flush();",
    )
    .await;
    // A failed CREATE INDEX CONCURRENTLY leaves an invalid index behind.
    let err = db
        .client
        .batch_execute("CREATE UNIQUE INDEX CONCURRENTLY dups_k_key ON dups (k)")
        .await
        .expect_err("duplicate keys must fail the unique index");
    assert!(
        err.to_string().contains("duplicate") || format!("{err:?}").contains("23505"),
        "{err:?}"
    );

    let idle = db.session().await;
    let idle_pid: i32 = idle
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0);
    idle.batch_execute("BEGIN; SELECT count(*) FROM orders;")
        .await
        .unwrap();
    let long = db.session().await;
    let long_pid: i32 = long
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0);
    let long = tokio::spawn(async move { long.batch_execute("SELECT pg_sleep(300)").await });
    Seeded {
        idle,
        idle_pid,
        _long: long,
        long_pid,
    }
}

#[tokio::test]
async fn seeded_problems_are_found_and_their_fixes_clear_them() {
    let pg = harness::cluster();
    let db = pg.fresh_db().await;
    let s = seed(&db).await;
    let exporter = pg
        .spawn_exporter(&db.name, &[("PGMAINT_LONG_QUERY_SECONDS", "1")])
        .await;
    let d = Value::from(db.name.as_str());
    let public = Value::from("public");
    let rooms = [
        ("datname", d.clone()),
        ("schemaname", public.clone()),
        ("relname", Value::from("Meeting \"Rooms\"")),
    ];
    let index = |name: &str, table: &str| {
        vec![
            ("datname", d.clone()),
            ("schemaname", public.clone()),
            ("relname", Value::from(table)),
            ("indexrelname", Value::from(name)),
        ]
    };
    let idle_obj = [("datname", d.clone()), ("pid", Value::from(s.idle_pid))];
    let long_obj = [("datname", d.clone()), ("pid", Value::from(s.long_pid))];

    // Sessions need more than PGMAINT_LONG_QUERY_SECONDS of age to show.
    let r = harness::eventually(Duration::from_secs(60), || async {
        let r = report(&exporter, &db.name).await;
        let all = find(&r, "vacuum_needed_autovacuum_off", &rooms).is_some()
            && find(&r, "invalid_index", &index("dups_k_key", "dups")).is_some()
            && find(&r, "duplicate_index", &index("orders_customer_b", "orders")).is_some()
            && find(&r, "unused_index", &index("Orders Note", "orders")).is_some()
            && find(&r, "idle_in_transaction", &idle_obj).is_some()
            && find(&r, "long_query", &long_obj).is_some();
        all.then_some(r)
    })
    .await;
    assert_eq!(r["schema_version"], 1);
    assert_eq!(r["up"], true);

    let vacuum = find(&r, "vacuum_needed_autovacuum_off", &rooms).unwrap();
    assert_eq!(vacuum["severity"], "warning");
    assert_eq!(vacuum["evidence"][0]["name"], "dead tuples");
    assert_eq!(vacuum["evidence"][0]["value"], 20000.0);
    assert_eq!(
        fix_sql(&vacuum),
        [
            "VACUUM (ANALYZE, VERBOSE) public.\"Meeting \"\"Rooms\"\"\";",
            "SET lock_timeout = '5s';",
            "ALTER TABLE public.\"Meeting \"\"Rooms\"\"\" RESET (autovacuum_enabled);"
        ]
    );
    assert!(vacuum["runbook"]
        .as_str()
        .unwrap()
        .ends_with("#postgrestableautovacuumdisabled"));

    let invalid = find(&r, "invalid_index", &index("dups_k_key", "dups")).unwrap();
    assert_eq!(invalid["severity"], "warning");
    assert_eq!(
        fix_sql(&invalid),
        [
            "SET lock_timeout = '5s';",
            "REINDEX INDEX CONCURRENTLY public.dups_k_key;"
        ]
    );

    let dup = find(&r, "duplicate_index", &index("orders_customer_b", "orders")).unwrap();
    assert_eq!(dup["severity"], "warning");
    assert!(
        dup["title"].as_str().unwrap().contains("keep orders_customer_a"),
        "{dup}"
    );
    assert_eq!(
        fix_sql(&dup),
        ["DROP INDEX CONCURRENTLY public.orders_customer_b;"]
    );
    // The duplicate is not reported a second time as unused.
    assert!(find(&r, "unused_index", &index("orders_customer_b", "orders")).is_none());

    let unused = find(&r, "unused_index", &index("Orders Note", "orders")).unwrap();
    // 1.2 MiB and statistics never reset: listed, below the alert's threshold.
    assert_eq!(unused["severity"], "info");
    // A 16 kB unused index is below the info floor: not listed at all.
    assert!(find(&r, "unused_index", &index("tiny_v", "tiny")).is_none());
    assert_eq!(
        fix_sql(&unused),
        ["DROP INDEX CONCURRENTLY public.\"Orders Note\";"]
    );

    let idle = find(&r, "idle_in_transaction", &idle_obj).unwrap();
    assert_eq!(idle["severity"], "info", "under 600 s: info");
    let idle_fix = fix_sql(&idle);
    assert_eq!(idle_fix.len(), 1);
    assert!(
        idle_fix[0].starts_with(&format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid = {} AND backend_start = '",
            s.idle_pid
        )),
        "{idle_fix:?}"
    );
    let long = find(&r, "long_query", &long_obj).unwrap();
    assert_eq!(long["severity"], "warning");
    let long_fix = fix_sql(&long);
    assert!(
        long_fix[0].starts_with(&format!(
            "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE pid = {} AND backend_start = '",
            s.long_pid
        )),
        "{long_fix:?}"
    );
    assert!(!r.to_string().contains("pg_sleep"), "no query text in the report");
    for f in findings(&r) {
        assert!(f["collected_at"].as_f64().unwrap() > 1.6e9, "{f}");
        assert!(f["data_age_seconds"].as_f64().unwrap() < 60.0, "{f}");
    }

    // Filtered to one table: only that table's findings (an alert's link).
    let (status, body) = exporter
        .get(&format!("/report.json?datname={}&relname=orders", db.name))
        .await;
    assert_eq!(status, 200);
    let filtered: Value = serde_json::from_str(&body).unwrap();
    let kinds: Vec<String> = findings(&filtered)
        .iter()
        .filter(|f| f["kind"] != "idle_in_transaction" && f["kind"] != "long_query")
        .map(|f| {
            assert_eq!(f["object"]["relname"], "orders", "{f}");
            f["kind"].as_str().unwrap().to_string()
        })
        .collect();
    assert!(
        kinds.iter().any(|k| k == "duplicate_index") && kinds.iter().any(|k| k == "unused_index"),
        "{kinds:?}"
    );

    // Run every suggested command, as a DBA would in psql. The unique index
    // failed on duplicate keys: those go first (the caution says so).
    let admin = pg.client(&db.name).await;
    admin
        .batch_execute("DELETE FROM dups a USING dups b WHERE a.k = b.k AND a.ctid > b.ctid")
        .await
        .unwrap();
    // Sessions first: the CONCURRENTLY commands wait for every open
    // transaction of the database (the cautions say so).
    for f in [&long, &idle, &vacuum, &invalid, &dup, &unused] {
        for cmd in fix_sql(f) {
            let msgs = tokio::time::timeout(Duration::from_secs(120), admin.simple_query(&cmd))
                .await
                .unwrap_or_else(|_| panic!("{cmd}: still running after 120 s"))
                .unwrap_or_else(|e| panic!("{cmd}: {e:?}"));
            // The session commands hit exactly that session.
            if cmd.contains("pg_stat_activity") {
                let rows: Vec<_> = msgs
                    .iter()
                    .filter_map(|m| match m {
                        tokio_postgres::SimpleQueryMessage::Row(r) => Some(r.get(0).map(str::to_string)),
                        _ => None,
                    })
                    .collect();
                assert_eq!(rows, [Some("t".to_string())], "{cmd}");
            }
        }
    }
    admin
        .batch_execute("SELECT pg_stat_force_next_flush()")
        .await
        .unwrap();

    let r = harness::eventually(Duration::from_secs(60), || async {
        let r = report(&exporter, &db.name).await;
        let gone = find(&r, "vacuum_needed_autovacuum_off", &rooms).is_none()
            && find(&r, "invalid_index", &index("dups_k_key", "dups")).is_none()
            && find(&r, "duplicate_index", &index("orders_customer_b", "orders")).is_none()
            && find(&r, "unused_index", &index("Orders Note", "orders")).is_none()
            && find(&r, "idle_in_transaction", &idle_obj).is_none()
            && find(&r, "long_query", &long_obj).is_none();
        gone.then_some(r)
    })
    .await;
    // The REINDEX made the index valid (it was not dropped).
    let valid: bool = admin
        .query_one(
            "SELECT indisvalid FROM pg_index WHERE indexrelid = 'public.dups_k_key'::regclass",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(valid);
    assert!(s.idle.is_closed() || s.idle.simple_query("SELECT 1").await.is_err());
    assert_eq!(r["up"], true);
}

/// Index of the first finding of `kind` in the report's order.
fn position(r: &Value, kind: &str) -> Option<usize> {
    findings(r).iter().position(|f| f["kind"] == kind)
}

/// The finding kinds in the order the HTML page lists them (`data-kind`).
fn html_kinds(html: &str) -> Vec<String> {
    regex::Regex::new(r#"<tr data-order="\d+" data-rank="\d" data-object="[^"]*" data-kind="([a-z_]+)""#)
        .unwrap()
        .captures_iter(html)
        .map(|c| c[1].to_string())
        .collect()
}

/// A session idle in a REPEATABLE READ transaction holds its snapshot: the
/// rows deleted after it began stay "dead but not yet removable" however
/// often VACUUM runs. Its finding (info: under 600 s) must come before the
/// dead-tuple warning it causes; the old order (severity, then name) put it
/// last.
#[tokio::test]
async fn an_idle_transaction_ranks_before_the_dead_tuples_it_keeps() {
    let pg = harness::cluster();
    let db = pg.fresh_db().await;
    db.batch(
        "CREATE TABLE events (id int, payload text) WITH (autovacuum_enabled = off);
         INSERT INTO events SELECT g, 'event ' || g FROM generate_series(1, 30000) g;",
    )
    .await;
    let idle = db.session().await;
    let idle_pid: i32 = idle
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0);
    idle.batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT count(*) FROM events;")
        .await
        .unwrap();
    // Flushed before VACUUM, which then sets n_dead_tup to what it could not remove.
    db.batch("DELETE FROM events WHERE id <= 20000; SELECT pg_stat_force_next_flush();")
        .await;
    db.batch("VACUUM events").await;
    db.batch("SELECT pg_stat_force_next_flush()").await;
    // The snapshot makes VACUUM useless: the deleted rows are still there.
    let dead = db
        .scalar_f64("SELECT n_dead_tup::float8 FROM pg_stat_user_tables WHERE relname = 'events'")
        .await;
    assert_eq!(dead, 20000.0, "VACUUM removed rows the open snapshot can see");

    let exporter = pg
        .spawn_exporter(&db.name, &[("PGMAINT_LONG_QUERY_SECONDS", "1")])
        .await;
    let r = harness::eventually(Duration::from_secs(60), || async {
        let r = report(&exporter, &db.name).await;
        // This session's finding, not another test's idle session.
        (find(&r, "idle_in_transaction", &[("pid", Value::from(idle_pid))]).is_some()
            && position(&r, "vacuum_needed_autovacuum_off").is_some())
        .then_some(r)
    })
    .await;
    let session = find(&r, "idle_in_transaction", &[("pid", Value::from(idle_pid))]).unwrap();
    assert_eq!(session["severity"], "info", "{session}");
    assert_eq!(session["blocks"], 1, "it blocks the vacuum of events: {session}");
    let vacuum = find(
        &r,
        "vacuum_needed_autovacuum_off",
        &[("relname", Value::from("events"))],
    )
    .unwrap();
    assert_eq!(vacuum["severity"], "warning", "{vacuum}");
    let (s, v) = (
        position(&r, "idle_in_transaction").unwrap(),
        position(&r, "vacuum_needed_autovacuum_off").unwrap(),
    );
    assert!(
        s < v,
        "the session ({s}) must come before the dead tuples ({v}): {r:#}"
    );
    // Only root causes (other tests' sessions too) may come before it.
    for f in &findings(&r)[..s] {
        assert!(
            [
                "idle_in_transaction",
                "long_query",
                "prepared_xact",
                "replication_slot_xmin"
            ]
            .contains(&f["kind"].as_str().unwrap()),
            "{f}"
        );
    }

    // The page lists them in the same order.
    let (status, html) = exporter.get(&format!("/report?datname={}", db.name)).await;
    assert_eq!(status, 200);
    let kinds = html_kinds(&html);
    let json_kinds: Vec<String> = findings(&r)
        .iter()
        .map(|f| f["kind"].as_str().unwrap().to_string())
        .collect();
    let hs = kinds.iter().position(|k| k == "idle_in_transaction").unwrap();
    let hv = kinds
        .iter()
        .position(|k| k == "vacuum_needed_autovacuum_off")
        .unwrap();
    assert!(hs < hv, "{kinds:?}");
    // The same findings in the same order, but for sessions: other tests'
    // sessions (shown from every database) may come and go between the two
    // requests.
    let session = |k: &&String| !["idle_in_transaction", "long_query"].contains(&k.as_str());
    assert_eq!(
        kinds.iter().filter(session).collect::<Vec<_>>(),
        json_kinds.iter().filter(session).collect::<Vec<_>>(),
        "{kinds:?} vs {json_kinds:?}"
    );
    assert!(
        html.contains("root cause: VACUUM cannot fix 1 finding below"),
        "{html}"
    );
    drop(idle);
}

/// A real table with more than 1 GiB of dead space (the report's bloat
/// threshold is the alert's, `thresholds::BLOAT_MIN_BYTES`, not a setting,
/// so the table is really that big): the primary fix is pg_repack, which
/// runs and clears the finding; VACUUM FULL is only the fallback, with its
/// lock warning and a lock_timeout in front.
#[tokio::test]
async fn a_bloated_table_gets_pg_repack_first_and_vacuum_full_as_fallback() {
    let pg = harness::cluster();
    let db = pg.fresh_db().await;
    // 4 rows of 1.9 kB (not compressed, not toasted) per page, 147,500
    // pages: 1.15 GiB. Deleting 9 of 10 rows all over the table leaves every
    // page partly used, so VACUUM cannot truncate it: ~1 GiB wasted.
    db.batch(
        "CREATE TABLE big (id int PRIMARY KEY, pad text) WITH (autovacuum_enabled = off);
         INSERT INTO big SELECT g, repeat('x', 1900) FROM generate_series(1, 590000) g;
         DELETE FROM big WHERE id % 10 <> 0;",
    )
    .await;
    db.batch("VACUUM ANALYZE big").await;
    let exporter = pg
        .spawn_exporter(&db.name, &[("PGMAINT_BLOAT_CACHE_SECONDS", "0")])
        .await;
    let big = [("relname", Value::from("big"))];
    let r = harness::eventually(Duration::from_secs(60), || async {
        let r = report(&exporter, &db.name).await;
        find(&r, "table_bloat", &big).map(|_| r)
    })
    .await;
    let bloat = find(&r, "table_bloat", &big).unwrap();
    assert!(
        bloat["evidence"][0]["value"].as_f64().unwrap() > 1024.0 * 1024.0 * 1024.0,
        "{bloat}"
    );
    let fix = bloat["fix"].as_array().unwrap();
    assert_eq!(fix[0]["kind"], "sql");
    assert_eq!(fix[0]["text"], "CREATE EXTENSION IF NOT EXISTS pg_repack;");
    assert_eq!(fix[1]["kind"], "shell");
    let repack = fix[1]["text"].as_str().unwrap();
    assert_eq!(
        repack,
        format!("pg_repack --dbname='{}' --table='public.big' --no-order", db.name)
    );
    assert!(!bloat["fix"].to_string().contains("VACUUM"), "{bloat}");
    let fallback: Vec<&str> = bloat["fallback"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["text"].as_str().unwrap())
        .collect();
    assert_eq!(
        fallback,
        [
            "SET lock_timeout = '5s';",
            "VACUUM (FULL, ANALYZE, VERBOSE) public.big;"
        ]
    );
    let caution = bloat["caution"].as_str().unwrap();
    assert!(
        caution.contains("ACCESS EXCLUSIVE lock for the whole rewrite"),
        "{caution}"
    );

    // Run the fix as a DBA would: the SQL in psql, pg_repack in a shell
    // pointed at the same server.
    db.batch(fix[0]["text"].as_str().unwrap()).await;
    let out = Command::new("sh")
        .arg("-c")
        .arg(repack)
        .env("PGHOST", "127.0.0.1")
        .env("PGPORT", pg.port.to_string())
        .env("PGUSER", "postgres")
        .output()
        .expect("pg_repack is needed for this test (apt-get install postgresql-15-repack)");
    assert!(
        out.status.success(),
        "{repack}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let size = db.scalar_f64("SELECT pg_relation_size('big')::float8").await;
    assert!(size < 200.0 * 1024.0 * 1024.0, "pg_repack left {size} bytes");
    harness::eventually(Duration::from_secs(60), || async {
        let r = report(&exporter, &db.name).await;
        find(&r, "table_bloat", &big).is_none().then_some(())
    })
    .await;
    db.batch("DROP TABLE big").await;
}

/// Runs a report's SQL fix commands one by one in `db`, as psql would.
async fn run_sql(client: &tokio_postgres::Client, f: &Value) {
    for cmd in fix_sql(f) {
        client
            .simple_query(&cmd)
            .await
            .unwrap_or_else(|e| panic!("{cmd}: {e:?}"));
    }
}

/// A prepared transaction whose gid needs quoting: found as a root cause
/// with `ROLLBACK PREPARED` and the gid as a literal; the command works.
#[tokio::test]
async fn a_prepared_transaction_is_found_with_its_rollback_command() {
    let pg = harness::cluster();
    let db = pg.fresh_db().await;
    let gid = format!("pay'ment {}", db.name);
    db.batch("CREATE TABLE payments (id int)").await;
    let s = db.session().await;
    s.batch_execute(&format!(
        "BEGIN; INSERT INTO payments VALUES (1); PREPARE TRANSACTION '{}';",
        gid.replace('\'', "''")
    ))
    .await
    .unwrap();
    let exporter = pg
        .spawn_exporter(&db.name, &[("PGMAINT_LONG_QUERY_SECONDS", "1")])
        .await;
    let object = [
        ("datname", Value::from(db.name.as_str())),
        ("gid", Value::from(gid.as_str())),
    ];
    let r = harness::eventually(Duration::from_secs(60), || async {
        let r = report(&exporter, &db.name).await;
        find(&r, "prepared_xact", &object).map(|_| r)
    })
    .await;
    let f = find(&r, "prepared_xact", &object).unwrap();
    assert_eq!(f["severity"], "info", "under an hour: {f}");
    assert_eq!(
        fix_sql(&f),
        [format!("ROLLBACK PREPARED 'pay''ment {}';", db.name)]
    );
    assert!(f["caution"].as_str().unwrap().contains(&db.name), "{f}");
    run_sql(&db.client, &f).await;
    let left = db
        .scalar_f64("SELECT count(*)::float8 FROM pg_prepared_xacts WHERE database = current_database()")
        .await;
    assert_eq!(left, 0.0);
    harness::eventually(Duration::from_secs(60), || async {
        let r = report(&exporter, &db.name).await;
        find(&r, "prepared_xact", &object).is_none().then_some(())
    })
    .await;
}

/// An integer key fed by a serial sequence at 97.8 % of its range, and a
/// stand-alone sequence at 90 % of its MAXVALUE: one bigint plan each (the
/// serial's sequence is not reported a second time), and the plans work:
/// afterwards the key takes values past 2^31.
#[tokio::test]
async fn integer_key_and_sequence_exhaustion_get_a_bigint_plan() {
    let pg = harness::cluster();
    let db = pg.fresh_db().await;
    db.batch(
        "CREATE TABLE accounts (\"ID\" serial PRIMARY KEY, name text);
         INSERT INTO accounts (name) VALUES ('a'), ('b');
         SELECT setval('\"accounts_ID_seq\"', 2100000000);
         CREATE SEQUENCE invoice_no AS integer MAXVALUE 1000;
         SELECT setval('invoice_no', 900);",
    )
    .await;
    let exporter = pg.spawn_exporter(&db.name, &[]).await;
    let accounts = [("relname", Value::from("accounts"))];
    let invoice = [("relname", Value::from("invoice_no"))];
    let r = harness::eventually(Duration::from_secs(60), || async {
        let r = report(&exporter, &db.name).await;
        (find(&r, "integer_key_exhaustion", &accounts).is_some()
            && find(&r, "sequence_exhaustion", &invoice).is_some())
        .then_some(r)
    })
    .await;
    let key = find(&r, "integer_key_exhaustion", &accounts).unwrap();
    assert_eq!(key["severity"], "critical", "{key}");
    assert!(key["title"].as_str().unwrap().contains("(integer)"), "{key}");
    assert_eq!(
        fix_sql(&key),
        [
            "SET lock_timeout = '5s';",
            "ALTER TABLE public.accounts ALTER COLUMN \"ID\" TYPE bigint;",
            "ALTER SEQUENCE public.\"accounts_ID_seq\" AS bigint;",
        ]
    );
    assert!(
        key["caution"].as_str().unwrap().contains("ACCESS EXCLUSIVE"),
        "{key}"
    );
    assert!(
        find(
            &r,
            "sequence_exhaustion",
            &[("relname", Value::from("accounts_ID_seq"))]
        )
        .is_none(),
        "the serial's sequence has its plan with the column"
    );
    let seq = find(&r, "sequence_exhaustion", &invoice).unwrap();
    assert_eq!(seq["severity"], "warning", "{seq}");
    assert_eq!(
        fix_sql(&seq),
        ["ALTER SEQUENCE public.invoice_no AS bigint NO MAXVALUE;"]
    );

    run_sql(&db.client, &key).await;
    run_sql(&db.client, &seq).await;
    db.batch(
        "SELECT setval('\"accounts_ID_seq\"', 2147483647);
         INSERT INTO accounts (name) VALUES ('past 2^31');
         SELECT setval('invoice_no', 5000);",
    )
    .await;
    let top = db.scalar_f64("SELECT max(\"ID\")::float8 FROM accounts").await;
    assert_eq!(top, 2147483648.0);
    harness::eventually(Duration::from_secs(60), || async {
        let r = report(&exporter, &db.name).await;
        (find(&r, "integer_key_exhaustion", &accounts).is_none()
            && find(&r, "sequence_exhaustion", &invoice).is_none())
        .then_some(())
    })
    .await;
}

/// MultiXact age past twice autovacuum_multixact_freeze_max_age (set to its
/// minimum, 10,000, on a cluster of the test's own): 25,000 MultiXacts,
/// each a row share-locked by a transaction that stays open and by one of
/// 25,000 short ones. While the open one lasts, nothing can freeze them.
#[tokio::test]
async fn multixact_age_is_found_with_a_vacuumdb_plan() {
    let pg = harness::start_cluster(None, &["autovacuum_multixact_freeze_max_age = 10000"]);
    let db = pg.fresh_db().await;
    db.batch("CREATE TABLE locks (id int PRIMARY KEY); INSERT INTO locks SELECT generate_series(1, 25000);")
        .await;
    let holder = db.multixacts("locks", 25000).await;
    let age = db
        .scalar_f64("SELECT mxid_age(datminmxid)::float8 FROM pg_database WHERE datname = current_database()")
        .await;
    assert!(age > 20000.0, "mxid_age(datminmxid) = {age}");
    let exporter = pg
        .spawn_exporter(&db.name, &[("PGMAINT_LONG_QUERY_SECONDS", "1")])
        .await;
    let object = [("datname", Value::from(db.name.as_str()))];
    let r = harness::eventually(Duration::from_secs(60), || async {
        let r = report(&exporter, &db.name).await;
        (find(&r, "multixact_wraparound", &object).is_some()
            && find(&r, "idle_in_transaction", &object).is_some())
        .then_some(r)
    })
    .await;
    let f = find(&r, "multixact_wraparound", &object).unwrap();
    // 25,000 is past autovacuum_multixact_freeze_max_age (10,000) but not
    // 0.1 * 2^31 past it, where PostgresMultixactAgeHigh warns: info.
    assert_eq!(f["severity"], "info", "{f}");
    assert!(f["evidence"][0]["value"].as_f64().unwrap() > 20000.0, "{f}");
    let cmd = f["fix"][0]["text"].as_str().unwrap().to_string();
    assert_eq!(
        cmd,
        format!(
            "vacuumdb --dbname='{}' --jobs 4 --min-mxid-age 10000 --verbose",
            db.name
        )
    );
    // The open transaction is what keeps the MultiXacts: it comes first.
    assert!(
        position(&r, "idle_in_transaction").unwrap() < position(&r, "multixact_wraparound").unwrap(),
        "{r:#}"
    );
    holder.batch_execute("ROLLBACK").await.unwrap();
    let out = Command::new("sh")
        .arg("-c")
        .arg(&cmd)
        .env("PGHOST", "127.0.0.1")
        .env("PGPORT", pg.port.to_string())
        .env("PGUSER", "postgres")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{cmd}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    harness::eventually(Duration::from_secs(60), || async {
        let r = report(&exporter, &db.name).await;
        find(&r, "multixact_wraparound", &object).is_none().then_some(())
    })
    .await;
}

/// A long transaction in another database holds back this database's
/// shared catalogs: `?datname=` must not hide it (it did: the filter kept
/// only findings of the named database).
#[tokio::test]
async fn the_datname_filter_keeps_a_long_transaction_of_another_database() {
    let pg = harness::cluster();
    let mine = pg.fresh_db().await;
    let other = pg.fresh_db().await;
    let s = other.session().await;
    let pid: i32 = s.query_one("SELECT pg_backend_pid()", &[]).await.unwrap().get(0);
    s.batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT 1;")
        .await
        .unwrap();
    let exporter = pg
        .spawn_exporter(&mine.name, &[("PGMAINT_LONG_QUERY_SECONDS", "1")])
        .await;
    let object = [
        ("datname", Value::from(other.name.as_str())),
        ("pid", Value::from(pid)),
    ];
    let r = harness::eventually(Duration::from_secs(60), || async {
        let r = report(&exporter, &mine.name).await;
        find(&r, "idle_in_transaction", &object).map(|_| r)
    })
    .await;
    assert_eq!(r["filter"]["datname"], mine.name.as_str());
    let f = find(&r, "idle_in_transaction", &object).unwrap();
    let caution = f["caution"].as_str().unwrap();
    assert!(caution.contains("shared catalogs"), "{caution}");
    assert!(caution.contains(&mine.name), "{caution}");
    // Findings of the other database that are not root causes stay out.
    for f in findings(&r) {
        if f["object"]["datname"] == other.name.as_str() {
            assert_eq!(f["kind"], "idle_in_transaction", "{f}");
        }
    }
    drop(s);
}

/// A real streaming standby (pg_basebackup -R on a physical slot) with a
/// replicated sequence at 90 % of its MAXVALUE. On the standby the report
/// says "standby" in its header and proposes no write in `fix` (ALTER
/// SEQUENCE would fail there): it moves to `on_primary`. When the standby,
/// which ran with hot_standby_feedback, is gone, its slot keeps the xmin on
/// the primary: an xmin holder found with pg_drop_replication_slot, which
/// works.
#[tokio::test]
async fn a_standby_proposes_no_writes_and_its_abandoned_slot_holds_xmin() {
    let primary = harness::dedicated();
    let db = primary.fresh_db().await;
    db.batch(
        "CREATE SEQUENCE invoice_no AS integer MAXVALUE 1000;
         SELECT setval('invoice_no', 900);",
    )
    .await;
    let standby = harness::start_standby(&primary, "standby1");
    let on_standby = harness::eventually(Duration::from_secs(60), || async {
        let url = standby.url(&db.name);
        let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.ok()?;
        tokio::spawn(conn);
        client
            .query_one("SELECT last_value FROM invoice_no", &[])
            .await
            .ok()
            .and_then(|r| (r.get::<_, i64>(0) == 900).then_some(client))
    })
    .await;
    for sql in [
        "ALTER SYSTEM SET hot_standby_feedback = on",
        "SELECT pg_reload_conf()",
    ] {
        on_standby.batch_execute(sql).await.unwrap();
    }
    let primary_admin = primary.client("postgres").await;
    harness::eventually(Duration::from_secs(60), || async {
        primary_admin
            .query_one(
                "SELECT xmin IS NOT NULL FROM pg_replication_slots WHERE slot_name = 'standby1'",
                &[],
            )
            .await
            .ok()
            .and_then(|r| r.get::<_, bool>(0).then_some(()))
    })
    .await;

    let exporter = standby.spawn_exporter(&db.name, &[]).await;
    let invoice = [("relname", Value::from("invoice_no"))];
    let r = harness::eventually(Duration::from_secs(60), || async {
        let r = report(&exporter, &db.name).await;
        find(&r, "sequence_exhaustion", &invoice).map(|_| r)
    })
    .await;
    assert_eq!(r["role"], "standby", "{r:#}");
    let seq = find(&r, "sequence_exhaustion", &invoice).unwrap();
    assert_eq!(seq["fix"], serde_json::json!([]), "{seq}");
    assert_eq!(
        seq["on_primary"][0]["text"],
        "ALTER SEQUENCE public.invoice_no AS bigint NO MAXVALUE;"
    );
    assert!(
        seq["caution"].as_str().unwrap().contains("pg_stat_wal_receiver"),
        "{seq}"
    );
    let write = regex::Regex::new(
        r"^(VACUUM|ANALYZE|ALTER|REINDEX|DROP|CREATE|ROLLBACK|COMMIT|SET lock_timeout|pg_repack|vacuumdb)",
    )
    .unwrap();
    for f in findings(&r) {
        for c in f["fix"]
            .as_array()
            .unwrap()
            .iter()
            .chain(f["fallback"].as_array().into_iter().flatten())
        {
            let text = c["text"].as_str().unwrap();
            assert!(
                !write.is_match(text),
                "a write proposed on a standby: {text} in {f}"
            );
        }
    }
    // The one write it proposes really fails there, and works on the primary.
    let err = on_standby
        .batch_execute("ALTER SEQUENCE public.invoice_no AS bigint NO MAXVALUE")
        .await
        .expect_err("a standby is read-only");
    assert!(format!("{err:?}").contains("25006"), "{err:?}");
    let (status, html) = exporter.get(&format!("/report?datname={}", db.name)).await;
    assert_eq!(status, 200);
    assert!(
        html.contains("id=\"standby\"") && html.contains("Standby (in recovery)."),
        "{html}"
    );
    assert!(html.contains("on the primary:"), "{html}");
    drop(exporter);
    drop(on_standby);
    drop(standby);

    // The standby is gone; its slot still holds the xmin it last reported.
    let exporter = primary.spawn_exporter(&db.name, &[]).await;
    let slot = [("slot_name", Value::from("standby1"))];
    let r = harness::eventually(Duration::from_secs(60), || async {
        let r = report(&exporter, &db.name).await;
        find(&r, "replication_slot_xmin", &slot).map(|_| r)
    })
    .await;
    assert_eq!(r["role"], "primary");
    assert!(r.get("on_primary").is_none());
    let holder = find(&r, "replication_slot_xmin", &slot).unwrap();
    assert_eq!(holder["severity"], "info", "young xmin, slot unused: {holder}");
    assert_eq!(fix_sql(&holder), ["SELECT pg_drop_replication_slot('standby1');"]);
    // The sequence's plan is a plain fix again on the primary.
    let seq = find(&r, "sequence_exhaustion", &invoice).unwrap();
    assert_eq!(
        fix_sql(&seq),
        ["ALTER SEQUENCE public.invoice_no AS bigint NO MAXVALUE;"]
    );
    run_sql(&primary_admin, &holder).await;
    harness::eventually(Duration::from_secs(60), || async {
        let r = report(&exporter, &db.name).await;
        find(&r, "replication_slot_xmin", &slot).is_none().then_some(())
    })
    .await;
}

#[tokio::test]
async fn healthy_database_has_no_warnings() {
    let pg = harness::cluster();
    let db = pg.fresh_db().await;
    db.batch(
        "CREATE TABLE items (id int PRIMARY KEY, name text);
         INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, 5000) g;",
    )
    .await;
    db.batch("VACUUM ANALYZE items").await;
    db.batch("SELECT pg_stat_force_next_flush()").await;
    let exporter = pg.spawn_exporter(&db.name, &[]).await;
    let r = report(&exporter, &db.name).await;
    assert_eq!(r["up"], true);
    // Not empty because nothing ran: the database's collectors succeeded.
    let parts = r["parts"].as_array().unwrap();
    for collector in ["tables", "indexes", "activity", "database"] {
        assert!(
            parts
                .iter()
                .any(|p| p["collector"] == collector && p["success"] == true),
            "{collector} did not succeed: {parts:?}"
        );
    }
    let serious: Vec<&Value> = r["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["object"]["datname"] == db.name.as_str() && f["severity"] != "info")
        .collect();
    assert!(serious.is_empty(), "{serious:#?}");
    // The counts include root causes of other databases (other tests' long
    // sessions on the shared cluster): all the rest must be info.
    let others = findings(&r)
        .iter()
        .filter(|f| f["object"]["datname"] != db.name.as_str() && f["severity"] != "info")
        .count() as u64;
    assert_eq!(
        r["counts"]["critical"].as_u64().unwrap() + r["counts"]["warning"].as_u64().unwrap(),
        others
    );
    let (status, html) = exporter.get(&format!("/report?datname={}", db.name)).await;
    assert_eq!(status, 200);
    assert!(html.contains("Maintenance report"), "{html}");
}

#[tokio::test]
async fn report_needs_basic_auth_like_metrics() {
    let pg = harness::cluster();
    let db = pg.fresh_db().await;
    let dir = std::env::temp_dir().join(format!("pgmaint-report-auth-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("web.yml");
    let hash = bcrypt::hash("s3cret", 4).unwrap();
    std::fs::write(&cfg, format!("basic_auth_users:\n  oncall: {hash}\n")).unwrap();
    let port = harness::free_port();
    let addr = format!("127.0.0.1:{port}");
    let mut child = Command::new(env!("CARGO_BIN_EXE_pgmaint-exporter"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("PGMAINT_DATABASE_URL", &db.url)
        .env("PGMAINT_INCLUDE_DATABASES", &db.name)
        .env("PGMAINT_LISTEN_ADDRESS", &addr)
        .env("PGMAINT_WEB_CONFIG_FILE", &cfg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    struct Kill(std::process::Child, PathBuf);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
            let _ = std::fs::remove_dir_all(&self.1);
        }
    }
    let until = Instant::now() + Duration::from_secs(15);
    while std::net::TcpStream::connect(&addr).is_err() {
        assert!(child.try_wait().unwrap().is_none(), "exporter exited");
        assert!(Instant::now() < until, "exporter did not listen");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _guard = Kill(child, dir);
    let client = reqwest::Client::new();
    for path in ["/report", "/report.json"] {
        let url = format!("http://{addr}{path}");
        let r = client.get(&url).send().await.unwrap();
        assert_eq!(r.status(), 401, "{path} without credentials");
        let r = client
            .get(&url)
            .basic_auth("oncall", Some("wrong"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{path} with a wrong password");
        let r = client
            .get(&url)
            .basic_auth("oncall", Some("s3cret"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path} with the password");
        let body = r.text().await.unwrap();
        assert!(
            body.contains("Maintenance report") || body.contains("\"schema_version\": 1"),
            "{body}"
        );
    }
}

/// Runs headless Chromium with `args` then `url`, bounded to 90 s; returns stdout.
fn chromium(profile: &Path, args: &[&str], url: &str) -> String {
    let mut child = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(url)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromium is needed for this test: apt-get install chromium (see .ci/run)");
    let mut out = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut out, &mut s).unwrap();
        s
    });
    let until = Instant::now() + Duration::from_secs(90);
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            assert!(st.success(), "chromium {args:?} exited with {st}");
            break;
        }
        if Instant::now() > until {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium {args:?} did not finish in 90 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    reader.join().unwrap()
}

/// `data-rank` of each findings row, in document order.
fn ranks(html: &str) -> Vec<u8> {
    regex::Regex::new(r#"<tr data-order="\d+" data-rank="(\d)""#)
        .unwrap()
        .captures_iter(html)
        .map(|c| c[1].parse().unwrap())
        .collect()
}

#[tokio::test]
async fn chromium_renders_the_sorted_report_and_takes_screenshots() {
    let pg = harness::cluster();
    let db = pg.fresh_db().await;
    let s = seed(&db).await;
    let exporter = pg
        .spawn_exporter(&db.name, &[("PGMAINT_LONG_QUERY_SECONDS", "1")])
        .await;
    let path = format!("/report?datname={}", db.name);
    // Wait until the sessions are old enough to be listed.
    let served = harness::eventually(Duration::from_secs(60), || async {
        let (status, html) = exporter.get(&path).await;
        assert_eq!(status, 200);
        let ok = html.contains(&format!("pid {} in", s.long_pid))
            && html.contains(&format!("pid {} in", s.idle_pid));
        ok.then_some(html)
    })
    .await;
    // The server sends rows in the report's order: root causes (the idle
    // and the long session) first, whatever their severity.
    let server_order = ranks(&served);
    assert!(server_order.len() >= 6, "{server_order:?}");
    let kinds = html_kinds(&served);
    // (Other tests' sessions and prepared transactions may be listed too:
    // root causes of every database are.)
    let roots = [
        "long_query",
        "idle_in_transaction",
        "prepared_xact",
        "replication_slot_xmin",
    ];
    let first_other = kinds.iter().position(|k| !roots.contains(&k.as_str()));
    assert!(
        first_other.is_some_and(|i| i >= 2),
        "root causes first: {kinds:?}"
    );
    assert!(
        !served.contains("<link") && !served.contains(" src="),
        "external assets"
    );

    let profile = std::env::temp_dir().join(format!("pgmaint-report-chromium-{}", std::process::id()));
    let target = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target");
    std::fs::create_dir_all(&target).unwrap();
    let url = format!("http://{}{}", exporter.addr, path);
    // The page as served, from a file: a new request could list other tests'
    // sessions (root causes of every database are shown in a filtered report)
    // and so differ from `served` for reasons that have nothing to do with
    // the script under test.
    std::fs::create_dir_all(&profile).unwrap();
    let page = profile.join("served.html");
    std::fs::write(&page, &served).unwrap();
    let dom = chromium(&profile, &["--dump-dom"], &format!("file://{}", page.display())).replace("<wbr>", "");
    assert!(dom.contains("id=\"findings\""), "{dom}");
    assert!(
        dom.contains("data-sorted=\"order-asc\""),
        "the inline script did not run: {dom}"
    );
    // The script keeps the server's order on load.
    assert_eq!(ranks(&dom), server_order);
    assert_eq!(html_kinds(&dom), kinds);
    for seen in [
        "public.Meeting \"Rooms\"",
        "index dups_k_key",
        "index orders_customer_b",
        "index Orders Note",
        "DROP INDEX CONCURRENTLY public.\"Orders Note\";",
    ] {
        let escaped = seen.replace('"', "&quot;");
        assert!(
            dom.contains(seen) || dom.contains(&escaped),
            "{seen} missing in {dom}"
        );
    }

    for (file, size) in [
        ("report-screenshot.png", "1280,900"),
        ("report-screenshot-phone.png", "390,844"),
    ] {
        let png = target.join(file);
        let _ = std::fs::remove_file(&png);
        chromium(
            &profile,
            &[
                &format!("--screenshot={}", png.display()),
                &format!("--window-size={size}"),
            ],
            &url,
        );
        let bytes = std::fs::read(&png).unwrap_or_else(|e| panic!("{}: {e}", png.display()));
        assert!(
            bytes.starts_with(b"\x89PNG\r\n\x1a\n"),
            "{} is not a PNG",
            png.display()
        );
        assert!(
            bytes.len() > 10_000,
            "{} is only {} bytes",
            png.display(),
            bytes.len()
        );
    }

    // The rendered layout at a phone's and a desktop's width: no identifier
    // is broken across lines in the object column, nothing scrolls sideways.
    // Headless Chromium will not make its window narrower than 500 px, so
    // the page is shown in an iframe of the exact width.
    let srcdoc = served.replace('&', "&amp;").replace('"', "&quot;");
    for (width, height) in [(390, 844), (1280, 900)] {
        let wrapper = format!(
            "<!doctype html><html><body style=\"margin:0\"><iframe id=\"f\" width=\"{width}\" \
             height=\"{height}\" style=\"border:0\" srcdoc=\"{srcdoc}\"></iframe>\
             <script>{MEASURE}</script></body></html>"
        );
        let file = profile.join(format!("measure-{width}.html"));
        std::fs::write(&file, wrapper).unwrap();
        let dom = chromium(
            &profile,
            &[
                "--dump-dom",
                "--window-size=1400,1000",
                "--virtual-time-budget=5000",
            ],
            &format!("file://{}", file.display()),
        );
        let attr = |name: &str| {
            regex::Regex::new(&format!(r#"{name}="([^"]*)""#))
                .unwrap()
                .captures(&dom)
                .unwrap_or_else(|| panic!("no {name} at {width} px: the measuring script did not run"))[1]
                .replace("&quot;", "\"")
        };
        assert_eq!(attr("data-viewport"), width.to_string(), "viewport not applied");
        let cells: usize = attr("data-cells").parse().unwrap();
        assert!(cells >= 6, "{cells} object cells at {width} px");
        assert_eq!(
            attr("data-broken"),
            "[]",
            "identifiers broken mid-word at {width} px"
        );
        let scroll: u32 = attr("data-scroll").parse().unwrap();
        assert!(
            scroll <= width,
            "the page is {scroll} px wide at {width} px; wider than the viewport: {}",
            attr("data-wide")
        );
    }
    let _ = std::fs::remove_dir_all(&profile);
    // Other tests on the shared cluster would list the 300 s sleep.
    db.batch(&format!("SELECT pg_cancel_backend({})", s.long_pid))
        .await;
    drop(s);
}

/// Runs in the wrapper page of the Chromium test once the iframe with the
/// report has loaded: records, on the wrapper's body, the iframe's viewport
/// width, the report's page width, how many object cells there are and every
/// identifier in them whose characters sit on more than one line.
const MEASURE: &str = "window.addEventListener('load',function(){
 var d=document.getElementById('f').contentDocument,broken=[],cells=d.querySelectorAll('td.obj');
 cells.forEach(function(td){
  var w=d.createTreeWalker(td,NodeFilter.SHOW_TEXT),n;
  while((n=w.nextNode())){
   var re=/[^\\s.]+/g,m;
   while((m=re.exec(n.data))){
    var r=d.createRange();r.setStart(n,m.index);r.setEnd(n,m.index+m[0].length);
    var tops={};
    Array.prototype.forEach.call(r.getClientRects(),function(c){if(c.width>0)tops[Math.round(c.top)]=1;});
    if(Object.keys(tops).length>1)broken.push(m[0]);
   }
  }
 });
 var b=document.body;
 b.setAttribute('data-broken',JSON.stringify(broken));
 b.setAttribute('data-cells',String(cells.length));
 b.setAttribute('data-viewport',String(d.defaultView.innerWidth));
 b.setAttribute('data-scroll',String(d.documentElement.scrollWidth));
 var wide=[];
 d.querySelectorAll('body *').forEach(function(e){
  if(wide.length<8&&e.getBoundingClientRect().right>d.defaultView.innerWidth+1)
   wide.push(e.tagName+(e.id?'#'+e.id:'')+(e.className?'.'+e.className:'')+':'+(e.textContent||'').slice(0,40));
 });
 b.setAttribute('data-wide',JSON.stringify(wide));
});";

/// A custom query is cached like `sizes` and `bloat`: its part of the report
/// says how much older than the scrape its data may be (its `cache`), and a
/// collector run in the scrape itself says 0. (The report once looked TTLs
/// up by name among the built-in collectors and gave custom queries 0.)
#[tokio::test]
async fn a_cached_custom_query_says_how_old_its_data_may_be() {
    let pg = harness::cluster();
    let db = pg.fresh_db().await;
    let dir = harness::Dir::new("report-queries");
    let queries = dir.write(
        "queries.yml",
        "queries:\n  - name: app_one\n    help: One.\n    type: gauge\n    sql: SELECT 1 AS one\n    \
         values: [one]\n    cache: 7m\n    timeout: 10s\n",
        0o644,
    );
    let exporter = pg
        .spawn_exporter(
            &db.name,
            &[
                ("PGMAINT_COLLECTORS", "database"),
                ("PGMAINT_QUERIES_FILE", &queries),
                ("PGMAINT_MIN_SCRAPE_INTERVAL", "0s"),
            ],
        )
        .await;
    let part = |r: &Value, collector: &str| {
        r["parts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["collector"] == collector && p["success"] == true)
            .cloned()
    };
    let r = harness::eventually(Duration::from_secs(30), || async {
        let r = report(&exporter, &db.name).await;
        part(&r, "custom:app_one").map(|_| r)
    })
    .await;
    let custom = part(&r, "custom:app_one").unwrap();
    assert_eq!(custom["datname"], db.name.as_str(), "{custom}");
    assert_eq!(custom["cached_up_to_seconds"], 420.0, "{custom}");
    let database = part(&r, "database").unwrap();
    assert_eq!(database["cached_up_to_seconds"], 0.0, "{database}");
}
