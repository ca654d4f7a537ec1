//! WAL archiving rule: archive_command failing (`wal_archiving_failing`).

use super::super::findings::{rows, scalar, New, Out};
use super::super::text::{ev, sql};
use super::super::{Object, Severity};
use crate::scrape::Snapshot;

pub(crate) fn archiving(snap: &Snapshot, out: &mut Out) {
    let Some(failed) = rows(snap, "pg_archiver_last_failure_timestamp_seconds")
        .first()
        .copied()
    else {
        return;
    };
    if scalar(snap, "pg_settings_archive_mode") == Some(0.0) {
        return;
    }
    let ok = scalar(snap, "pg_archiver_last_archive_timestamp_seconds");
    if ok.is_some_and(|ok| ok > failed.value) {
        return;
    }
    let mut evidence = vec![ev("last failure", failed.value, "unix_time")];
    if let Some(ok) = ok {
        evidence.push(ev("last success", ok, "unix_time"));
    }
    if let Some(ready) = scalar(snap, "pg_archiver_ready_segments") {
        evidence.push(ev("segments waiting", ready, "segments"));
    }
    out.push_row(
        &failed,
        New {
            kind: "wal_archiving_failing",
            severity: Severity::Warning,
            title: "WAL archiving fails".into(),
            object: Object::default(),
            evidence,
            why: "WAL piles up in pg_wal until the disk fills, and point-in-time recovery falls behind.",
            fix: vec![sql("SELECT last_failed_wal, last_failed_time FROM pg_stat_archiver;".into())],
            caution: Some(
                "The server log shows archive_command's error for that segment; fix the command or its target, \
                 PostgreSQL retries by itself."
                    .into(),
            ),
            alert: "PostgresWalArchivingFailing",
        },
    );
}
