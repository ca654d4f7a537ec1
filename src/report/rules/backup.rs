//! Backup rules: unreadable backup directories, missing, old or unreadable
//! backups, and gaps in the WAL archive since the last base backup.

use super::super::findings::{by_labels, rows, scalar, New, Out, Row};
use super::super::text::{ev, shell, shell_word};
use super::super::thresholds as t;
use super::super::{Object, Severity};
use crate::scrape::Snapshot;

pub(crate) fn backups(snap: &Snapshot, out: &mut Out) {
    let dir_object = |r: &Row| Object {
        dir: Some(r.l("dir").to_string()),
        ..Default::default()
    };
    for r in rows(snap, "pg_backup_directory_readable")
        .into_iter()
        .filter(|r| r.value == 0.0)
    {
        out.push_row(
            &r,
            New {
                kind: "backup_directory_unreadable",
                severity: Severity::Critical,
                title: "Backup directory missing or unreadable".into(),
                object: dir_object(&r),
                evidence: vec![],
                why: "No backup in it can be checked, and backups may not be written there either.",
                fix: vec![shell(format!("ls -ld {}", shell_word(r.l("dir"))))],
                caution: Some("Check the mount and that the exporter's user may read the directory.".into()),
                alert: "PostgresBackupDirectoryUnreadable",
            },
        );
    }
    let newest = by_labels(snap, "pg_backup_newest_timestamp_seconds");
    for r in rows(snap, "pg_backup_files") {
        let ts = newest.get(r.labels).copied();
        let age = ts.map(|t| out.now - t);
        if r.value > 0.0 && age.is_none_or_below(t::BACKUP_MAX_AGE_SECONDS) {
            continue;
        }
        let mut evidence = vec![ev("backups in the directory", r.value, "files")];
        if let (Some(ts), Some(age)) = (ts, age) {
            evidence.push(ev("newest backup", ts, "unix_time"));
            evidence.push(ev("age of the newest", age, "seconds"));
        }
        out.push_row(
            &r,
            New {
                kind: "backup_too_old",
                severity: Severity::Critical,
                title: if r.value == 0.0 {
                    "No backup at all".into()
                } else {
                    "No recent backup".into()
                },
                object: dir_object(&r),
                evidence,
                why: "Without a recent backup, data written since the last one is lost if the server is.",
                fix: vec![shell(format!(
                    "pg_dump --format=custom --file={}/backup_$(date -u +%Y%m%d_%H%M%S).dump <database>",
                    shell_word(r.l("dir"))
                ))],
                caution: Some(
                    "Then find out why the scheduled backup job stopped (its log, cron, the disk).".into(),
                ),
                alert: "PostgresBackupTooOld",
            },
        );
    }
    for r in rows(snap, "pg_backup_newest_verified")
        .into_iter()
        .filter(|r| r.value == 0.0)
    {
        out.push_row(
            &r,
            New {
                kind: "backup_verification_failed",
                severity: Severity::Critical,
                title: "The newest backup does not read back".into(),
                object: dir_object(&r),
                evidence: vec![],
                why: "A truncated or corrupt dump cannot be restored.",
                fix: vec![shell("pg_restore --list <newest backup file> > /dev/null".into())],
                caution: Some(
                    "The exporter log names the file and pg_restore's error; take a new backup.".into(),
                ),
                alert: "PostgresBackupVerificationFailed",
            },
        );
    }
    for r in rows(snap, "pg_backup_newest_unverifiable")
        .into_iter()
        .filter(|r| r.value == 1.0)
    {
        out.push_row(
            &r,
            New {
                kind: "backup_unverified",
                severity: Severity::Warning,
                title: "The newest backup could not be verified here".into(),
                object: dir_object(&r),
                evidence: vec![],
                why: "An unchecked backup may turn out unreadable exactly when it is needed.",
                fix: vec![shell("pg_restore --version".into())],
                caution: Some(
                    "Usually the archive comes from a newer pg_dump than the installed pg_restore, or \
                     verification timed out (PGMAINT_BACKUP_VERIFY_TIMEOUT); the exporter log says which."
                        .into(),
                ),
                alert: "PostgresBackupVerificationFailed",
            },
        );
    }
    for r in rows(snap, "pg_wal_archive_continuous")
        .into_iter()
        .filter(|r| r.value == 0.0)
    {
        let missing = scalar(snap, "pg_wal_archive_missing_segments").unwrap_or(0.0);
        let incomplete = scalar(snap, "pg_wal_archive_incomplete_segments").unwrap_or(0.0);
        out.push_row(
            &r,
            New {
                kind: "wal_archive_gap",
                severity: Severity::Critical,
                title: "WAL archive has a gap since the last base backup".into(),
                object: Object::default(),
                evidence: vec![
                    ev("missing segments", missing, "segments"),
                    ev("incomplete segment files", incomplete, "segments"),
                ],
                why: "Point-in-time recovery stops at the first missing or incomplete segment.",
                fix: vec![shell("pg_basebackup --pgdata=<new backup dir> --wal-method=stream --checkpoint=fast --progress".into())],
                caution: Some("A new base backup starts a gap-free chain; find out what removed or never archived the segments.".into()),
                alert: "PostgresWalArchiveGap",
            },
        );
    }
}

trait BelowOrNone {
    fn is_none_or_below(&self, limit: f64) -> bool;
}

impl BelowOrNone for Option<f64> {
    fn is_none_or_below(&self, limit: f64) -> bool {
        self.map_or(true, |v| v <= limit)
    }
}
