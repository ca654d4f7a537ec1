//! `backup`: real `pg_dump` archives of a test database in real directories —
//! counts, sizes, name timestamps, verification with the real `pg_restore`
//! (truncated, garbage and too-new archives), and an unreadable directory
//! seen by an exporter running as the unprivileged user.

use crate::harness;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn size(p: &Path) -> f64 {
    std::fs::metadata(p).unwrap().len() as f64
}

/// Unix time of a UTC `YYYYmmdd_HHMMSS`, computed by date(1).
fn utc(stamp: &str) -> f64 {
    let iso = format!(
        "{}-{}-{} {}:{}:{} UTC",
        &stamp[0..4],
        &stamp[4..6],
        &stamp[6..8],
        &stamp[9..11],
        &stamp[11..13],
        &stamp[13..15]
    );
    let out = Command::new("date")
        .args(["-u", "-d", &iso, "+%s"])
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().parse().unwrap()
}

const SCHEMA: &str = "CREATE TABLE users (id int PRIMARY KEY, name text);
     INSERT INTO users SELECT g, 'user ' || g FROM generate_series(1, 2000) g;
     CREATE TABLE meetings (id int, created_at timestamptz);
     INSERT INTO meetings SELECT g, now() FROM generate_series(1, 500) g;";

#[tokio::test]
async fn dumps_are_counted_sized_and_verified() {
    let pg = harness::cluster();
    let db = pg.fresh_db().await;
    db.batch(SCHEMA).await;
    let tmp = harness::Dir::new("verify");

    // a: a plain dump, then a newer custom one.
    let a = tmp.sub("a");
    let a_plain = a.join("backup_20261124_010000.sql");
    let a_custom = a.join("backup_20261125_010000");
    pg.pg_dump(&db.name, "p", &a_plain);
    pg.pg_dump(&db.name, "c", &a_custom);
    std::fs::write(a.join("notes.txt"), "not a backup: no glob matches").unwrap();
    // b: a plain dump only.
    let b = tmp.sub("b");
    pg.pg_dump(&db.name, "p", &b.join("backup_20261125_020000.sql"));
    // c: the custom dump truncated to half its size.
    let c = tmp.sub("c");
    let bytes = std::fs::read(&a_custom).unwrap();
    std::fs::write(c.join("backup_20261125_030000"), &bytes[..bytes.len() / 2]).unwrap();
    // d: garbage named like a backup.
    let d = tmp.sub("d");
    std::fs::write(d.join("backup_20261125_040000"), vec![0x5a; 100_000]).unwrap();
    // e: an archive whose header says a newer format (1.99) than pg_restore 15 reads.
    let e = tmp.sub("e");
    let mut newer = bytes.clone();
    assert_eq!(&newer[..5], b"PGDMP");
    newer[6] = 99;
    std::fs::write(e.join("backup_20261125_050000"), &newer).unwrap();
    // f: tar and directory formats, and a plain dump truncated (no trailer).
    let f = tmp.sub("f");
    pg.pg_dump(&db.name, "t", &f.join("backup_20261125_060000.tar"));
    let g = tmp.sub("g");
    pg.pg_dump(&db.name, "d", &g.join("backup_20261125_070000"));
    let h = tmp.sub("h");
    let plain = std::fs::read(&a_plain).unwrap();
    std::fs::write(h.join("backup_20261125_080000.sql"), &plain[..plain.len() - 200]).unwrap();
    let missing = tmp.path().join("missing");

    let dirs: Vec<String> = [&a, &b, &c, &d, &e, &f, &g, &h, &missing]
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    let exporter = pg
        .spawn_exporter(
            &db.name,
            &[
                ("PGMAINT_COLLECTORS", "+backup"),
                ("PGMAINT_BACKUP_DIRS", &dirs.join(";")),
                // The dumps were written just now.
                ("PGMAINT_BACKUP_MIN_AGE", "0s"),
            ],
        )
        .await;
    let l = |p: &PathBuf| p.display().to_string();
    let (la, lb, lc, ld, le, lf, lg, lh) = (l(&a), l(&b), l(&c), l(&d), l(&e), l(&f), l(&g), l(&h));
    // Verification runs in the background: wait until every directory has an outcome.
    let m = harness::eventually(Duration::from_secs(60), || async {
        let m = exporter.scrape().await;
        let done = [&la, &lb, &lc, &ld, &lf, &lg, &lh]
            .iter()
            .all(|d| has(&m, "pg_backup_newest_verified", &[("dir", d)]))
            && m.value("pg_backup_newest_unverifiable", &[("dir", &le)])
                .is_some();
        done.then_some(m)
    })
    .await;
    let v = |name: &str, dir: &str| m.value(name, &[("dir", dir)]);

    assert_eq!(
        m.value("pg_scrape_collector_success", &[("collector", "backup")]),
        Some(1.0)
    );
    assert_eq!(v("pg_backup_directory_readable", &la), Some(1.0));
    assert_eq!(v("pg_backup_files", &la), Some(2.0));
    assert_eq!(
        v("pg_backup_size_bytes", &la),
        Some(size(&a_plain) + size(&a_custom))
    );
    assert_eq!(v("pg_backup_newest_size_bytes", &la), Some(size(&a_custom)));
    assert_eq!(v("pg_backup_previous_size_bytes", &la), Some(size(&a_plain)));
    assert_eq!(
        v("pg_backup_newest_timestamp_seconds", &la),
        Some(utc("20261125_010000"))
    );
    assert_eq!(
        v("pg_backup_oldest_timestamp_seconds", &la),
        Some(utc("20261124_010000"))
    );
    assert_eq!(v("pg_backup_newest_verified", &la), Some(1.0));
    assert_eq!(v("pg_backup_newest_unverifiable", &la), Some(0.0));
    // TABLE users, TABLE DATA users, CONSTRAINT users_pkey, TABLE meetings, TABLE DATA meetings.
    assert_eq!(v("pg_backup_newest_toc_entries", &la), Some(5.0));
    assert_eq!(
        m.value(
            "pg_backup_newest_info",
            &[
                ("dir", &la),
                ("file", "backup_20261125_010000"),
                ("format", "custom"),
                ("datname", &db.name)
            ]
        ),
        Some(1.0)
    );

    assert_eq!(v("pg_backup_files", &lb), Some(1.0));
    assert_eq!(v("pg_backup_newest_verified", &lb), Some(1.0));
    assert!(has(
        &m,
        "pg_backup_newest_info",
        &[("dir", &lb), ("format", "plain")]
    ));
    assert_eq!(v("pg_backup_previous_size_bytes", &lb), None);

    assert_eq!(
        v("pg_backup_newest_verified", &lc),
        Some(0.0),
        "truncated custom archive"
    );
    assert_eq!(v("pg_backup_newest_verified", &ld), Some(0.0), "garbage");
    assert!(has(
        &m,
        "pg_backup_newest_info",
        &[("dir", &ld), ("format", "unknown")]
    ));
    assert_eq!(
        v("pg_backup_newest_verified", &lh),
        Some(0.0),
        "truncated plain dump"
    );

    assert_eq!(
        v("pg_backup_newest_unverifiable", &le),
        Some(1.0),
        "newer archive version"
    );
    assert_eq!(
        v("pg_backup_newest_verified", &le),
        None,
        "never reported as failed"
    );

    assert_eq!(v("pg_backup_newest_verified", &lf), Some(1.0), "tar");
    assert!(has(
        &m,
        "pg_backup_newest_info",
        &[("dir", &lf), ("format", "tar")]
    ));
    assert_eq!(v("pg_backup_newest_verified", &lg), Some(1.0), "directory format");
    assert!(has(
        &m,
        "pg_backup_newest_info",
        &[("dir", &lg), ("format", "directory")]
    ));
    assert_eq!(v("pg_backup_files", &lg), Some(1.0));

    let lmissing = missing.display().to_string();
    assert_eq!(v("pg_backup_directory_readable", &lmissing), Some(0.0));
    assert_eq!(v("pg_backup_files", &lmissing), None);

    // Each failure says why in the log.
    let logs = exporter.logs();
    for (dir, why) in [
        (&lc, "pg_restore"),
        (&ld, "not a pg_dump archive"),
        (&lh, "-- PostgreSQL database dump complete"),
        (&le, "archive version 1.99.0 was written by a newer pg_dump"),
    ] {
        assert!(
            logs.lines()
                .any(|line| line.contains(dir.as_str()) && line.contains(why)),
            "no log line for {dir} with {why:?}:\n{logs}"
        );
    }
    assert_eq!(harness::promtool_check(&m.raw), "");

    // Verified once per file: a later scrape starts no new pg_restore. Only
    // a cached verification is answered within the scrape; a miss starts
    // pg_restore in the background and leaves the directory without
    // verification series in that scrape (scrape/host_cache.rs `verification`).
    let runs = logs.matches("backup verified").count();
    let again = exporter.scrape().await;
    for dir in [&la, &lb, &lc, &ld, &lh, &le, &lf, &lg] {
        assert_eq!(
            again.value("pg_backup_newest_unverifiable", &[("dir", dir)]),
            m.value("pg_backup_newest_unverifiable", &[("dir", dir)]),
            "{dir}: verification not answered from the cache"
        );
        assert!(has(&again, "pg_backup_newest_info", &[("dir", dir)]), "{dir}");
    }
    assert_eq!(exporter.logs().matches("backup verified").count(), runs);
}

#[tokio::test]
async fn files_still_being_written_are_ignored() {
    let pg = harness::cluster();
    let db = pg.fresh_db().await;
    db.batch(SCHEMA).await;
    let tmp = harness::Dir::new("minage");
    let dir = tmp.sub("d");
    let done = dir.join("backup_20261124_010000");
    pg.pg_dump(&db.name, "c", &done);
    let st = Command::new("touch")
        .args(["-d", "2 hours ago"])
        .arg(&done)
        .status()
        .unwrap();
    assert!(st.success());
    // Written just now: taken as a pg_dump still running.
    std::fs::write(dir.join("backup_20261125_010000"), b"PGDMP").unwrap();
    let d = dir.display().to_string();
    let exporter = pg
        .spawn_exporter(
            &db.name,
            &[
                ("PGMAINT_COLLECTORS", "backup"),
                ("PGMAINT_BACKUP_DIRS", &d),
                ("PGMAINT_BACKUP_MIN_AGE", "1h"),
            ],
        )
        .await;
    let m = harness::eventually(Duration::from_secs(30), || async {
        let m = exporter.scrape().await;
        has(&m, "pg_backup_newest_verified", &[("dir", &d)]).then_some(m)
    })
    .await;
    assert_eq!(m.value("pg_backup_files", &[("dir", &d)]), Some(1.0));
    assert_eq!(m.value("pg_backup_size_bytes", &[("dir", &d)]), Some(size(&done)));
    assert_eq!(
        m.value("pg_backup_newest_timestamp_seconds", &[("dir", &d)]),
        Some(utc("20261124_010000"))
    );
    assert_eq!(m.value("pg_backup_newest_verified", &[("dir", &d)]), Some(1.0));
}

/// The exporter binary run as the unprivileged `pgmaint` user (root ignores
/// file modes); stopped with SIGTERM, which runuser passes on.
struct Unprivileged {
    child: Child,
    addr: String,
    log: PathBuf,
}

impl Unprivileged {
    async fn spawn(vars: &[(&str, &str)]) -> Unprivileged {
        let is_root = Command::new("id").arg("-u").output().unwrap().stdout == b"0\n";
        assert!(
            is_root,
            "this test runs the exporter as user pgmaint: run it as root (CI does)"
        );
        let port = harness::free_port();
        let addr = format!("127.0.0.1:{port}");
        let log =
            std::env::temp_dir().join(format!("pgmaint-backup-unpriv-{}-{port}.log", std::process::id()));
        let mut cmd = Command::new("runuser");
        cmd.args(["-u", "pgmaint", "--", "env", "-i"])
            .arg(format!("PATH={}", std::env::var("PATH").unwrap_or_default()))
            .arg(format!("PGMAINT_LISTEN_ADDRESS={addr}"));
        for (k, v) in vars {
            cmd.arg(format!("{k}={v}"));
        }
        cmd.arg(env!("CARGO_BIN_EXE_pgmaint-exporter"))
            .stdout(Stdio::from(std::fs::File::create(&log).unwrap()))
            .stderr(Stdio::from(
                std::fs::File::options().append(true).open(&log).unwrap(),
            ));
        let child = cmd.spawn().expect("runuser");
        let mut u = Unprivileged { child, addr, log };
        let until = Instant::now() + Duration::from_secs(15);
        loop {
            if let Ok(r) = reqwest::get(format!("http://{}/healthz", u.addr)).await {
                if r.status() == 200 {
                    return u;
                }
            }
            if let Ok(Some(st)) = u.child.try_wait() {
                panic!("exporter exited with {st}: {}", u.logs());
            }
            assert!(Instant::now() < until, "exporter did not come up: {}", u.logs());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    async fn scrape(&self) -> harness::Samples {
        let body = reqwest::get(format!("http://{}/metrics", self.addr))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        harness::Samples::parse(&body)
    }
}

impl Drop for Unprivileged {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let until = Instant::now() + Duration::from_secs(10);
        while Instant::now() < until {
            if let Ok(Some(_)) = self.child.try_wait() {
                let _ = std::fs::remove_file(&self.log);
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

#[tokio::test]
async fn unreadable_directory_reads_zero_and_others_are_unaffected() {
    let pg = harness::cluster();
    let db = pg.fresh_db().await;
    db.batch(SCHEMA).await;
    let tmp = harness::Dir::new("perm");
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let open = tmp.sub("open");
    let closed = tmp.sub("closed");
    pg.pg_dump(&db.name, "c", &open.join("backup_20261125_010000"));
    pg.pg_dump(&db.name, "c", &closed.join("backup_20261125_010000"));
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&closed, std::fs::Permissions::from_mode(0o700)).unwrap();

    let (lo, lc) = (open.display().to_string(), closed.display().to_string());
    let url = pg.url(&db.name);
    let exporter = Unprivileged::spawn(&[
        ("PGMAINT_DATABASE_URL", &url),
        ("PGMAINT_INCLUDE_DATABASES", &db.name),
        ("PGMAINT_MIN_SCRAPE_INTERVAL", "0s"),
        ("PGMAINT_COLLECTORS", "backup,pitr"),
        ("PGMAINT_BACKUP_DIRS", &format!("{lo};{lc}")),
        ("PGMAINT_BACKUP_MIN_AGE", "0s"),
    ])
    .await;
    let m = harness::eventually(Duration::from_secs(60), || async {
        let m = exporter.scrape().await;
        has(&m, "pg_backup_newest_verified", &[("dir", &lo)]).then_some(m)
    })
    .await;
    assert_eq!(m.value("pg_up", &[]), Some(1.0));
    assert_eq!(
        m.value("pg_scrape_collector_success", &[("collector", "backup")]),
        Some(1.0)
    );
    assert_eq!(
        m.value("pg_backup_directory_readable", &[("dir", &lc)]),
        Some(0.0)
    );
    assert_eq!(m.value("pg_backup_files", &[("dir", &lc)]), None);
    assert_eq!(
        m.value("pg_backup_directory_readable", &[("dir", &lo)]),
        Some(1.0)
    );
    assert_eq!(m.value("pg_backup_files", &[("dir", &lo)]), Some(1.0));
    assert_eq!(m.value("pg_backup_newest_verified", &[("dir", &lo)]), Some(1.0));
    // The shared cluster does not archive WAL.
    assert_eq!(m.value("pg_archive_command_configured", &[]), Some(0.0));
    let logs = exporter.logs();
    assert!(
        logs.contains(&format!("cannot read backup directory {lc}: Permission denied")),
        "{logs}"
    );
}

fn has(m: &harness::Samples, name: &str, labels: &[(&str, &str)]) -> bool {
    m.find(name, labels).next().is_some()
}

/// A backup named with non-ASCII digits is listed by its mtime, not a panic
/// on every scrape (issue 17 item 7: `\d` matched Arabic-Indic digits and
/// `parse::<i64>().unwrap()` refused them).
#[tokio::test]
async fn non_ascii_digits_in_a_name_are_not_a_timestamp() {
    let pg = harness::cluster();
    let db = pg.fresh_db().await;
    let tmp = harness::Dir::new("digits");
    let dir = tmp.sub("d");
    let odd = dir.join("backup_٢٠٢٦١١٢٥_٠١٣٠٠٠.sql");
    std::fs::write(&odd, b"-- PostgreSQL database dump\n").unwrap();
    let st = Command::new("touch")
        .args(["-d", "2026-11-20 10:00:00 UTC"])
        .arg(&odd)
        .status()
        .unwrap();
    assert!(st.success());
    let d = dir.display().to_string();
    let exporter = pg
        .spawn_exporter(
            &db.name,
            &[
                ("PGMAINT_COLLECTORS", "backup"),
                ("PGMAINT_BACKUP_DIRS", &d),
                ("PGMAINT_BACKUP_MIN_AGE", "1s"),
            ],
        )
        .await;
    for _ in 0..2 {
        let m = exporter.scrape().await;
        assert_eq!(
            m.value(
                "pg_scrape_collector_success",
                &[("collector", "backup"), ("datname", "")]
            ),
            Some(1.0),
            "{}",
            exporter.logs()
        );
        assert_eq!(m.value("pg_backup_files", &[("dir", &d)]), Some(1.0));
        assert_eq!(
            m.value("pg_backup_newest_timestamp_seconds", &[("dir", &d)]),
            Some(utc("20261120_100000")),
            "the file's mtime, not digits read from its name"
        );
    }
    assert!(!exporter.logs().contains("panicked"), "{}", exporter.logs());
}
