//! Backup rules: unreadable backup directories, missing, old or unreadable
//! backups, and gaps in the WAL archive since the last base backup.

use super::super::findings::{Ctx, Draft, Row, Rule};
use super::super::text::{ev, shell, shell_word};
use super::super::thresholds as t;
use super::super::{Object, Severity};
use crate::collectors::backup::{FILES, NEWEST, READABLE, UNVERIFIABLE, VERIFIED};
use crate::collectors::wal_archive::{CONTINUOUS, INCOMPLETE, MISSING};

pub static RULES: &[Rule] = &[
    Rule {
        kind: "backup_directory_unreadable",
        family: &READABLE,
        alert: "PostgresBackupDirectoryUnreadable",
        critical_alert: None,
        why: "No backup in it can be checked, and backups may not be written there either.",
        check: unreadable,
    },
    Rule {
        kind: "backup_too_old",
        family: &FILES,
        alert: "PostgresBackupTooOld",
        critical_alert: None,
        why: "Without a recent backup, data written since the last one is lost if the server is.",
        check: too_old,
    },
    Rule {
        kind: "backup_verification_failed",
        family: &VERIFIED,
        alert: "PostgresBackupVerificationFailed",
        critical_alert: None,
        why: "A truncated or corrupt dump cannot be restored.",
        check: verification_failed,
    },
    Rule {
        kind: "backup_unverified",
        family: &UNVERIFIABLE,
        alert: "PostgresBackupVerificationFailed",
        critical_alert: None,
        why: "An unchecked backup may turn out unreadable exactly when it is needed.",
        check: unverified,
    },
    Rule {
        kind: "wal_archive_gap",
        family: &CONTINUOUS,
        alert: "PostgresWalArchiveGap",
        critical_alert: None,
        why: "Point-in-time recovery stops at the first missing or incomplete segment.",
        check: archive_gap,
    },
];

fn dir_object(r: &Row) -> Object {
    Object {
        dir: Some(r.l("dir").to_string()),
        ..Default::default()
    }
}

fn unreadable(_: &Ctx, r: &Row) -> Option<Draft> {
    if r.value != 0.0 {
        return None;
    }
    let mut d = Draft::new(
        Severity::Critical,
        "Backup directory missing or unreadable",
        dir_object(r),
    );
    d.fix = vec![shell(format!("ls -ld {}", shell_word(r.l("dir"))))];
    d.caution = Some("Check the mount and that the exporter's user may read the directory.".into());
    Some(d)
}

fn too_old(c: &Ctx, r: &Row) -> Option<Draft> {
    let ts = c.get(&NEWEST, r.labels);
    let age = ts.map(|t| c.now - t);
    if r.value > 0.0 && age.is_none_or_below(t::BACKUP_MAX_AGE_SECONDS) {
        return None;
    }
    let mut evidence = vec![ev("backups in the directory", r.value, "files")];
    if let (Some(ts), Some(age)) = (ts, age) {
        evidence.push(ev("newest backup", ts, "unix_time"));
        evidence.push(ev("age of the newest", age, "seconds"));
    }
    let title = if r.value == 0.0 {
        "No backup at all"
    } else {
        "No recent backup"
    };
    let mut d = Draft::new(Severity::Critical, title, dir_object(r));
    d.evidence = evidence;
    d.fix = vec![shell(format!(
        "pg_dump --format=custom --file={}/backup_$(date -u +%Y%m%d_%H%M%S).dump <database>",
        shell_word(r.l("dir"))
    ))];
    d.caution = Some("Then find out why the scheduled backup job stopped (its log, cron, the disk).".into());
    Some(d)
}

fn verification_failed(_: &Ctx, r: &Row) -> Option<Draft> {
    if r.value != 0.0 {
        return None;
    }
    let mut d = Draft::new(
        Severity::Critical,
        "The newest backup does not read back",
        dir_object(r),
    );
    d.fix = vec![shell("pg_restore --list <newest backup file> > /dev/null".into())];
    d.caution = Some("The exporter log names the file and pg_restore's error; take a new backup.".into());
    Some(d)
}

fn unverified(_: &Ctx, r: &Row) -> Option<Draft> {
    if r.value != 1.0 {
        return None;
    }
    let mut d = Draft::new(
        Severity::Warning,
        "The newest backup could not be verified here",
        dir_object(r),
    );
    d.fix = vec![shell("pg_restore --version".into())];
    d.caution = Some(
        "Usually the archive comes from a newer pg_dump than the installed pg_restore, or \
         verification timed out (PGMAINT_BACKUP_VERIFY_TIMEOUT); the exporter log says which."
            .into(),
    );
    Some(d)
}

fn archive_gap(c: &Ctx, r: &Row) -> Option<Draft> {
    if r.value != 0.0 {
        return None;
    }
    let missing = c.scalar(&MISSING).unwrap_or(0.0);
    let incomplete = c.scalar(&INCOMPLETE).unwrap_or(0.0);
    let mut d = Draft::new(
        Severity::Critical,
        "WAL archive has a gap since the last base backup",
        Object::default(),
    );
    d.evidence = vec![
        ev("missing segments", missing, "segments"),
        ev("incomplete segment files", incomplete, "segments"),
    ];
    d.fix = vec![shell(
        "pg_basebackup --pgdata=<new backup dir> --wal-method=stream --checkpoint=fast --progress".into(),
    )];
    d.caution = Some(
        "A new base backup starts a gap-free chain; find out what removed or never archived the segments."
            .into(),
    );
    Some(d)
}

trait BelowOrNone {
    fn is_none_or_below(&self, limit: f64) -> bool;
}

impl BelowOrNone for Option<f64> {
    fn is_none_or_below(&self, limit: f64) -> bool {
        self.map_or(true, |v| v <= limit)
    }
}
