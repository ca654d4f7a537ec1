//! The version matrix: one realistic scenario on every supported PostgreSQL
//! major version (14–18), with every collector on. Each collector must
//! succeed, the exposition must pass `promtool check metrics`, and the
//! families whose source changed between versions must appear exactly where
//! the server has them.
//!
//! PostgreSQL 15 is Debian's; 14, 16, 17 and 18 are the builds
//! `scripts/pg-versions.sh` installs (scripts/test.sh runs it; cached). A
//! missing version fails the test: the matrix is the point.

use crate::harness;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use pgmaint_exporter::collectors::{Scope, ALL};

/// Where scripts/pg-versions.sh keeps its builds (same rule as the script).
fn versions_dir() -> PathBuf {
    if let Ok(d) = std::env::var("PGMAINT_TEST_PG_VERSIONS_DIR") {
        return PathBuf::from(d);
    }
    let root = std::process::Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout == b"0\n")
        .unwrap_or(false);
    if root {
        PathBuf::from("/var/cache/pgmaint-pg")
    } else {
        let cache = std::env::var("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|_| PathBuf::from(std::env::var("HOME").unwrap()).join(".cache"));
        cache.join("pgmaint-pg")
    }
}

/// The bin directory of a major version: Debian's for 15, else the one
/// scripts/pg-versions.sh listed. Panics (never skips) when it is missing.
pub(crate) fn bindir(major: i32) -> String {
    if major == 15 {
        return "/usr/lib/postgresql/15/bin".into();
    }
    let list = versions_dir().join("versions");
    let text = std::fs::read_to_string(&list).unwrap_or_default();
    let found = text.lines().find_map(|l| {
        let (m, dir) = l.split_once(' ')?;
        (m == major.to_string()).then(|| dir.to_string())
    });
    match found {
        Some(dir) if std::path::Path::new(&dir).join("postgres").exists() => dir,
        _ => panic!(
            "PostgreSQL {major} is not installed in {}: run scripts/pg-versions.sh \
             (or set PGMAINT_TEST_PG_VERSIONS_DIR to where it installed them)",
            versions_dir().display()
        ),
    }
}

/// Tables with dead tuples, indexes (one duplicate), a sequence, statistics.
const SCENARIO: &str = "
CREATE EXTENSION pg_stat_statements;
CREATE EXTENSION pgstattuple;
CREATE TABLE orders (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, customer int, note text)
  WITH (autovacuum_enabled = off);
CREATE INDEX orders_customer ON orders (customer);
CREATE INDEX orders_customer_dup ON orders (customer);
INSERT INTO orders (customer, note) SELECT g % 100, repeat('n', 50) FROM generate_series(1, 10000) g;
DELETE FROM orders WHERE id % 4 = 0;
UPDATE orders SET note = 'changed' WHERE id % 10 = 1;
CREATE TABLE events (at timestamptz DEFAULT now(), kind text);
INSERT INTO events (kind) SELECT 'e' || g FROM generate_series(1, 500) g;
CREATE SEQUENCE tickets MAXVALUE 1000;
SELECT setval('tickets', 900);
CREATE TABLE restarted (id serial PRIMARY KEY);
ALTER SEQUENCE restarted_id_seq RESTART WITH 2147000000;
ANALYZE;
SELECT count(*) FROM orders WHERE customer = 7;
SELECT pg_create_physical_replication_slot('matrix_slot', true);";

async fn scenario(major: i32) {
    let started = Instant::now();
    let bin = bindir(major);
    let pg = harness::start_cluster(Some(&bin), &[]);
    let db = pg.fresh_db().await;
    db.batch(SCENARIO).await;
    // A TOAST table older than its freshly frozen heap (PROCESS_TOAST: 14+).
    db.batch(
        "CREATE TABLE toasty (id int, body text)
           WITH (autovacuum_enabled = off, toast.autovacuum_enabled = off);
         INSERT INTO toasty SELECT g, string_agg(md5(g::text || h::text), '')
           FROM generate_series(1, 10) g, generate_series(1, 200) h GROUP BY g;",
    )
    .await;
    for _ in 0..50 {
        db.batch("SELECT txid_current()").await;
    }
    db.batch("VACUUM (FREEZE, PROCESS_TOAST false) toasty").await;

    // An idle-in-transaction session holding an xid, and a prepared transaction.
    let idle = db.session().await;
    idle.batch_execute("BEGIN; SELECT txid_current();").await.unwrap();
    db.batch("BEGIN; INSERT INTO events (kind) VALUES ('prepared'); PREPARE TRANSACTION 'matrix';")
        .await;

    let all: Vec<&str> = ALL.iter().map(|c| c.name()).collect();
    let exporter = pg
        .spawn_exporter(
            &db.name,
            &[
                ("PGMAINT_COLLECTORS", &all.join(",")),
                ("PGMAINT_BLOAT_EXACT", "on"),
                ("PGMAINT_STATEMENTS_QUERY_TEXT", "on"),
            ],
        )
        .await;
    let orders = [("datname", db.name.as_str()), ("relname", "orders")];
    // PostgreSQL 14 has no pg_stat_force_next_flush(): counters reach the
    // statistics collector within about a second.
    // Bounded by 90 s: under a loaded CI machine a scrape with every
    // collector (exact bloat included) can take several seconds.
    let until = std::time::Instant::now() + Duration::from_secs(90);
    let m = loop {
        // PostgreSQL 14 sends a backend's table counters to the statistics
        // collector only when the backend goes idle at least 500 ms after its
        // last report; our setup session went idle too soon after its
        // previous report, so its DELETE/UPDATE counts can wait for the next
        // idle point. A trivial statement every round (the loop sleeps 500 ms)
        // provides one; on 15+ it is harmless.
        db.batch("SELECT 1").await;
        let m = exporter.scrape().await;
        if m.value("pg_table_dead_tuples", &orders) == Some(3500.0) {
            break m;
        }
        if std::time::Instant::now() > until {
            let failed: Vec<_> = m
                .find("pg_scrape_collector_success", &[])
                .filter(|s| s.value == 0.0)
                .map(|s| s.labels.clone())
                .collect();
            panic!(
                "dead tuples of orders never read 3500: last {:?}, failed collectors {failed:?}\n{}",
                m.value("pg_table_dead_tuples", &orders),
                exporter.logs()
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };

    assert_eq!(m.value("pg_up", &[]), Some(1.0));
    let info: Vec<_> = m.find("pg_server_info", &[]).collect();
    assert_eq!(info.len(), 1, "{info:?}");
    let version = info[0].labels["version"].clone();
    let num: i32 = info[0].labels["server_version_num"].parse().unwrap();
    assert_eq!(num / 10000, major, "{bin} is PostgreSQL {version}");
    assert!(version.starts_with(&format!("{major}.")), "{version}");

    // Every applicable collector ran, in its scope, and succeeded.
    let mut failed = vec![];
    for c in ALL {
        let datname = match c.scope() {
            Scope::Cluster => "",
            Scope::PerDatabase => db.name.as_str(),
        };
        let l = [("collector", c.name()), ("datname", datname)];
        let got = m.value("pg_scrape_collector_success", &l);
        let want = (c.min_major() <= major).then_some(1.0);
        if got != want {
            failed.push(format!("{} in {datname:?}: {got:?}, want {want:?}", c.name()));
        }
    }
    let zeros: Vec<_> = m
        .find("pg_scrape_collector_success", &[])
        .filter(|s| s.value != 1.0)
        .collect();
    assert!(
        failed.is_empty() && zeros.is_empty(),
        "PostgreSQL {version}: {failed:?} {zeros:?}\n{}",
        exporter.logs()
    );
    assert_eq!(harness::promtool_check(&m.raw), "", "PostgreSQL {version}");

    // The scenario shows up on every version.
    let d = [("datname", db.name.as_str())];
    assert_eq!(m.value("pg_table_live_tuples", &orders), Some(7500.0));
    assert_eq!(m.value("pg_prepared_xacts", &[]), Some(1.0));
    let idle_age = m
        .value(
            "pg_activity_oldest_xact_age_seconds",
            &[d[0], ("state", "idle in transaction")],
        )
        .unwrap();
    assert!(idle_age >= 0.0, "{idle_age}");
    let dup = [d[0], ("indexrelname", "orders_customer_dup")];
    assert!(m.find("pg_index_scans_total", &dup).count() == 1, "index series");
    let slot = [("slot_name", "matrix_slot"), ("slot_type", "physical")];
    assert_eq!(m.value("pg_replication_slot_active", &slot), Some(0.0));
    assert!(m.value("pg_replication_slot_retained_wal_bytes", &slot).unwrap() >= 0.0);
    assert_eq!(m.value("pg_replication_in_recovery", &[]), Some(0.0));
    assert_eq!(m.value("pg_replication_timeline_id", &[]), Some(1.0));
    // The table's XID age is its TOAST table's, the older one.
    let toast_age = db
        .scalar_f64(
            "SELECT age(t.relfrozenxid)::float8 FROM pg_class c JOIN pg_class t ON t.oid = c.reltoastrelid
              WHERE c.relname = 'toasty'",
        )
        .await;
    assert!(toast_age >= 50.0, "{toast_age}");
    assert_eq!(
        m.value("pg_table_frozen_xid_age", &[d[0], ("relname", "toasty")]),
        Some(toast_age),
        "PostgreSQL {version}"
    );
    // MultiXact ages per table, and the member space (the matrix connects
    // as superuser, who may list pg_multixact/members).
    assert!(m.value("pg_table_min_mxid_age", &orders).is_some(), "{version}");
    let mxid_setting = db
        .scalar_f64("SELECT current_setting('autovacuum_multixact_freeze_max_age')::float8")
        .await;
    assert_eq!(
        m.value("pg_multixact_members_freeze_threshold", &[]),
        Some(mxid_setting),
        "{version}"
    );
    assert!(m
        .value("pg_multixact_members_used_ratio", &[])
        .is_some_and(|r| r < 0.01));
    // Templates count for wraparound (vac_truncate_clog() takes them all).
    assert!(
        m.value("pg_database_frozen_xid_age", &[("datname", "template0")])
            .is_some(),
        "template0 on {version}"
    );
    let seq = [d[0], ("sequencename", "tickets")];
    assert_eq!(m.value("pg_sequence_last_value", &seq), Some(900.0));
    // RESTART leaves is_called false: read from the sequence itself, not 0.
    let restarted = m
        .value(
            "pg_sequence_column_used_ratio",
            &[
                d[0],
                ("relname", "restarted"),
                ("sequencename", "restarted_id_seq"),
            ],
        )
        .unwrap();
    assert!(restarted > 0.9997, "{restarted} on {version}");
    let calls = m.find("pg_stat_statements_calls_total", &d).count();
    assert!(calls >= 1, "no statements of {} on {version}", db.name);

    // Families whose source changed: one name on every version, present
    // exactly where the server has the column.
    for family in [
        "pg_checkpointer_checkpoints_timed_total",
        "pg_checkpointer_checkpoints_requested_total",
        "pg_checkpointer_write_time_seconds_total",
        "pg_checkpointer_buffers_written_total",
        "pg_bgwriter_buffers_alloc_total",
        "pg_stat_statements_shared_blk_read_time_seconds_total",
        "pg_stat_statements_shared_blk_write_time_seconds_total",
        "pg_stat_statements_dealloc_total",
        "pg_wal_bytes_total",
        "pg_table_bloat_exact_ratio",
    ] {
        assert!(m.has(family), "{family} missing on PostgreSQL {version}");
    }
    let since = |v: i32| major >= v;
    for (family, from) in [
        ("pg_checkpointer_restartpoints_timed_total", 17),
        ("pg_checkpointer_restartpoints_done_total", 17),
        ("pg_checkpointer_checkpoints_done_total", 18),
        ("pg_replication_slot_inactive_since_timestamp_seconds", 17),
        ("pg_settings_autovacuum_vacuum_max_threshold", 18),
        ("pg_table_vacuum_time_seconds_total", 18),
        ("pg_table_analyze_time_seconds_total", 18),
    ] {
        assert_eq!(
            m.has(family),
            since(from),
            "{family} is PostgreSQL {from}+, server is {version}"
        );
    }

    // No family shows up outside the versions docs/metrics.md gives it.
    let ranges = documented_ranges();
    for name in m.types.keys() {
        let (lo, hi) = ranges
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, r)| *r)
            .unwrap_or_else(|| panic!("{name} is not in docs/metrics.md"));
        assert!(
            (lo..=hi).contains(&major),
            "{name} is documented for PostgreSQL {lo}–{hi}, but PostgreSQL {version} has it"
        );
    }

    let took = started.elapsed().as_secs_f64();
    let line = format!("matrix: PostgreSQL {version} ok in {took:.1} s");
    println!("{line}");
    drop(idle);
}

#[tokio::test]
async fn postgresql_14() {
    scenario(14).await;
}

#[tokio::test]
async fn postgresql_15() {
    scenario(15).await;
}

#[tokio::test]
async fn postgresql_16() {
    scenario(16).await;
}

#[tokio::test]
async fn postgresql_17() {
    scenario(17).await;
}

#[tokio::test]
async fn postgresql_18() {
    scenario(18).await;
}

/// Every family's PG column in docs/metrics.md: "all", "N+" or "N–M".
fn documented_ranges() -> Vec<(String, (i32, i32))> {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/metrics.md")).unwrap();
    let mut out = vec![];
    for line in doc.lines().filter(|l| l.starts_with("| `")) {
        let cols: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
        assert_eq!(cols.len(), 6, "docs/metrics.md row {line:?}");
        let name = cols[0].trim_matches('`').to_string();
        let pg = cols[4];
        let parse = |v: &str| -> i32 {
            v.parse()
                .unwrap_or_else(|_| panic!("{name}: PG column {pg:?} is not all, N+ or N–M"))
        };
        let range = if pg == "all" {
            (14, i32::MAX)
        } else if let Some(lo) = pg.strip_suffix('+') {
            (parse(lo), i32::MAX)
        } else if let Some((lo, hi)) = pg.split_once('–') {
            (parse(lo), parse(hi))
        } else {
            panic!("{name}: PG column {pg:?} is not all, N+ or N–M")
        };
        assert!(
            range.0 >= 14,
            "{name}: {pg}, but 14 is the oldest supported version"
        );
        out.push((name, range));
    }
    out
}

#[test]
fn every_family_has_a_version_range() {
    let ranges = documented_ranges();
    let mut names: Vec<&str> = ALL
        .iter()
        .flat_map(|c| c.families().iter().map(|f| f.name))
        .collect();
    names.extend(pgmaint_exporter::scrape::SELF_FAMILIES.iter().map(|f| f.name));
    for name in names {
        assert!(
            ranges.iter().any(|(n, _)| n == name),
            "{name} has no row (with a PG column) in docs/metrics.md"
        );
    }
}
