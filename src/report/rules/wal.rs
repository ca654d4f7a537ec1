//! WAL archiving rule: archive_command failing (`wal_archiving_failing`).

use super::super::findings::{Ctx, Draft, Row, Rule};
use super::super::text::{ev, sql};
use super::super::{Object, Severity};
use crate::collectors::archiver::{LAST_ARCHIVED, LAST_FAILED, READY};
use crate::collectors::settings::ARCHIVE_MODE;

pub static RULES: &[Rule] = &[Rule {
    kind: "wal_archiving_failing",
    family: &LAST_FAILED,
    alert: "PostgresWalArchivingFailing",
    critical_alert: None,
    why: "WAL piles up in pg_wal until the disk fills, and point-in-time recovery falls behind.",
    check: archiving,
}];

/// The last failure (the row) is newer than the last success.
fn archiving(c: &Ctx, failed: &Row) -> Option<Draft> {
    if c.scalar(&ARCHIVE_MODE) == Some(0.0) {
        return None;
    }
    let ok = c.scalar(&LAST_ARCHIVED);
    if ok.is_some_and(|ok| ok > failed.value) {
        return None;
    }
    let mut evidence = vec![ev("last failure", failed.value, "unix_time")];
    if let Some(ok) = ok {
        evidence.push(ev("last success", ok, "unix_time"));
    }
    if let Some(ready) = c.scalar(&READY) {
        evidence.push(ev("segments waiting", ready, "segments"));
    }
    let mut d = Draft::new(Severity::Warning, "WAL archiving fails", Object::default());
    d.evidence = evidence;
    d.fix = vec![sql(
        "SELECT last_failed_wal, last_failed_time FROM pg_stat_archiver;".into(),
    )];
    d.caution = Some(
        "The server log shows archive_command's error for that segment; fix the command or its target, \
         PostgreSQL retries by itself."
            .into(),
    );
    Some(d)
}
