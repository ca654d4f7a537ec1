//! `wal_archive` and `pitr`: a cluster archiving WAL into a directory, a real
//! `pg_basebackup` (as the server's unprivileged user) leaving its
//! backup-history file in the archive, WAL switched a few times → the chain
//! is continuous; one segment in the middle removed → the gap is found.

use crate::harness;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A directory the unprivileged server user can write to.
fn shared_dir(tag: &str) -> harness::Dir {
    harness::Dir::with_mode(&format!("walarchive-{tag}"), 0o777)
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// Segment names (24 hex digits) in the archive, sorted.
fn segments(dir: &str) -> Vec<String> {
    let mut s: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.len() == 24 && n.chars().all(|c| c.is_ascii_hexdigit()))
        .collect();
    s.sort();
    s
}

#[tokio::test]
async fn base_backup_and_wal_chain_then_a_gap() {
    let archive = shared_dir("archive");
    let base = shared_dir("base");
    // Copy to a temporary name, then rename: a segment appears whole or not
    // at all (a plain `cp` lets a scrape see it half written).
    let command = format!(
        "archive_command = 'cp %p {0}/%f.tmp && mv {0}/%f.tmp {0}/%f'",
        archive.path_str()
    );
    let pg = harness::start_cluster(None, &["archive_mode = on", &command]);
    let db = pg.fresh_db().await;
    let exporter = pg
        .spawn_exporter(
            &db.name,
            &[
                ("PGMAINT_COLLECTORS", "archiver,pitr"),
                ("PGMAINT_WAL_ARCHIVE_DIR", archive.path_str()),
            ],
        )
        .await;
    let m = exporter.scrape().await;
    assert_eq!(m.value("pg_archive_command_configured", &[]), Some(1.0));
    // A plain PGMAINT_COLLECTORS list is exactly these collectors.
    assert!(!m.has("pg_wal_archive_readable"), "wal_archive not listed");
    drop(exporter);

    let exporter = pg
        .spawn_exporter(
            &db.name,
            &[
                ("PGMAINT_COLLECTORS", "-activity"),
                ("PGMAINT_WAL_ARCHIVE_DIR", archive.path_str()),
            ],
        )
        .await;
    let m = exporter.scrape().await;
    assert_eq!(m.value("pg_wal_archive_readable", &[]), Some(1.0));
    assert_eq!(m.value("pg_wal_archive_base_backup_timestamp_seconds", &[]), None);
    assert_eq!(m.value("pg_wal_archive_continuous", &[]), None);

    let started = now();
    let target = format!("{}/data", base.path_str());
    let port = pg.port.to_string();
    let out = harness::as_pg(&[
        "/usr/lib/postgresql/15/bin/pg_basebackup",
        "-h",
        "127.0.0.1",
        "-p",
        &port,
        "-U",
        "postgres",
        "-D",
        &target,
        "-X",
        "none",
        "-c",
        "fast",
    ])
    .output()
    .expect("pg_basebackup");
    assert!(
        out.status.success(),
        "pg_basebackup: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    for i in 0..3 {
        db.batch(&format!(
            "CREATE TABLE w{i} AS SELECT g, repeat('x', 200) AS pad FROM generate_series(1, 5000) g;
             SELECT pg_switch_wal();"
        ))
        .await;
    }
    let history: Vec<String> = std::fs::read_dir(archive.path_str())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".backup"))
        .collect();
    assert_eq!(history.len(), 1, "{history:?}");
    let start = history[0][..24].to_string();

    // Archiving is asynchronous: wait until the three switched segments are there.
    let m = harness::eventually(Duration::from_secs(30), || async {
        let after: Vec<String> = segments(archive.path_str())
            .into_iter()
            .filter(|s| *s >= start)
            .collect();
        if after.len() < 4 {
            return None;
        }
        let m = exporter.scrape().await;
        (m.value("pg_wal_archive_segments", &[]) == Some(segments(archive.path_str()).len() as f64))
            .then_some(m)
    })
    .await;
    let all = segments(archive.path_str());
    assert_eq!(m.value("pg_wal_archive_continuous", &[]), Some(1.0));
    assert_eq!(m.value("pg_wal_archive_missing_segments", &[]), Some(0.0));
    assert_eq!(m.value("pg_wal_archive_segments", &[]), Some(all.len() as f64));
    // 16 MiB each (initdb's default wal_segment_size).
    assert_eq!(
        m.value("pg_wal_archive_size_bytes", &[]),
        Some(all.len() as f64 * 16.0 * 1024.0 * 1024.0)
    );
    let at = m
        .value("pg_wal_archive_base_backup_timestamp_seconds", &[])
        .unwrap();
    assert!(
        at >= started.floor() - 1.0 && at <= now() + 1.0,
        "base backup at {at}, started {started}"
    );
    assert_eq!(
        m.value("pg_scrape_collector_success", &[("collector", "wal_archive")]),
        Some(1.0)
    );

    assert_eq!(m.value("pg_wal_archive_incomplete_segments", &[]), Some(0.0));

    // One segment strictly between the backup's start and the newest.
    let after: Vec<&String> = all.iter().filter(|s| **s > start).collect();
    let middle = after[after.len() / 2 - 1].clone();
    assert!(middle > start && middle < *all.last().unwrap());
    let path = format!("{}/{middle}", archive.path_str());

    // Truncated, as an interrupted `cp` leaves it: while it is younger than
    // PGMAINT_BACKUP_MIN_AGE (60 s) a copy may still be under way …
    let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    file.set_len(5 * 1024 * 1024).unwrap();
    let m = exporter.scrape().await;
    assert_eq!(m.value("pg_wal_archive_incomplete_segments", &[]), Some(0.0));
    assert_eq!(m.value("pg_wal_archive_continuous", &[]), Some(1.0));
    // … older than that, it is an incomplete segment: recovery stops there.
    file.set_modified(SystemTime::now() - Duration::from_secs(600))
        .unwrap();
    drop(file);
    let m = exporter.scrape().await;
    assert_eq!(m.value("pg_wal_archive_incomplete_segments", &[]), Some(1.0));
    assert_eq!(
        m.value("pg_wal_archive_continuous", &[]),
        Some(0.0),
        "{middle} truncated"
    );
    assert_eq!(m.value("pg_wal_archive_missing_segments", &[]), Some(0.0));

    // Removed: a gap.
    std::fs::remove_file(&path).unwrap();
    let m = exporter.scrape().await;
    assert_eq!(
        m.value("pg_wal_archive_continuous", &[]),
        Some(0.0),
        "{middle} removed"
    );
    assert_eq!(m.value("pg_wal_archive_missing_segments", &[]), Some(1.0));
    assert_eq!(m.value("pg_wal_archive_incomplete_segments", &[]), Some(0.0));
    assert_eq!(harness::promtool_check(&m.raw), "");
    drop(exporter);
    drop(pg);
}
