//! Bloat rules: tables and indexes with much estimated wasted space
//! (`table_bloat`, `index_bloat`).

use super::super::findings::{by_labels, index_object, rows, table_object, New, Out};
use super::super::text::{ev, qualified, shell, shell_word, sql};
use super::super::thresholds as t;
use super::super::Severity;
use super::indexes::CONCURRENTLY;
use crate::scrape::Snapshot;

pub(crate) fn bloat(snap: &Snapshot, out: &mut Out) {
    let table_ratio = by_labels(snap, "pg_table_bloat_ratio");
    for r in rows(snap, "pg_table_bloat_bytes") {
        let ratio = table_ratio.get(r.labels).copied().unwrap_or(0.0);
        if r.value <= t::BLOAT_MIN_BYTES || ratio <= t::BLOAT_MIN_RATIO {
            continue;
        }
        let name = qualified(r.l("schemaname"), r.l("relname"));
        out.push_row(
            &r,
            New {
                kind: "table_bloat",
                severity: Severity::Warning,
                title: "Bloated table".into(),
                object: table_object(&r),
                evidence: vec![ev("estimated wasted bytes", r.value, "bytes"), ev("share wasted", ratio, "ratio")],
                why: "Wasted space is read by every sequential scan and kept in backups; plain VACUUM does not give it back.",
                fix: vec![
                    sql("CREATE EXTENSION IF NOT EXISTS pg_repack;".into()),
                    shell(format!(
                        "pg_repack --dbname={} --table={} --no-order",
                        shell_word(r.l("datname")),
                        shell_word(&name)
                    )),
                ],
                caution: Some(
                    "pg_repack rewrites the table online: it holds an ACCESS EXCLUSIVE lock only for a moment \
                     at the start and the end, needs free disk for a full copy, the pg_repack package of the \
                     server's major version on the server, and a primary key or a NOT NULL unique index on \
                     the table; it skips UNLOGGED tables (add host, port and user options as for psql). Only without pg_repack use \
                     the fallback: VACUUM FULL holds an ACCESS EXCLUSIVE lock for the whole rewrite — no \
                     reads or writes on the table until it ends — so run it in a maintenance window; \
                     lock_timeout makes it give up instead of queueing every query on the table behind it. \
                     Estimates: see docs/bloat.md."
                        .into(),
                ),
                alert: "PostgresTableBloat",
            },
        );
        out.fallback(vec![
            sql(t::LOCK_TIMEOUT.into()),
            sql(format!("VACUUM (FULL, ANALYZE, VERBOSE) {name};")),
        ]);
    }
    let index_ratio = by_labels(snap, "pg_index_bloat_ratio");
    for r in rows(snap, "pg_index_bloat_bytes") {
        let ratio = index_ratio.get(r.labels).copied().unwrap_or(0.0);
        if r.value <= t::BLOAT_MIN_BYTES || ratio <= t::BLOAT_MIN_RATIO {
            continue;
        }
        let name = qualified(r.l("schemaname"), r.l("indexrelname"));
        out.push_row(
            &r,
            New {
                kind: "index_bloat",
                severity: Severity::Warning,
                title: "Bloated index".into(),
                object: index_object(&r),
                evidence: vec![
                    ev("estimated wasted bytes", r.value, "bytes"),
                    ev("share wasted", ratio, "ratio"),
                ],
                why: "A bloated index is larger and slower to scan and to cache than it needs to be.",
                fix: vec![
                    sql(t::LOCK_TIMEOUT.into()),
                    sql(format!("REINDEX INDEX CONCURRENTLY {name};")),
                ],
                caution: Some(format!(
                    "REINDEX CONCURRENTLY builds a second copy of the index next to the old one (disk for it) \
                     and swaps them without blocking reads or writes. If it stops (lock_timeout, cancel), it \
                     leaves an invalid copy named {}_ccnew behind: drop that with DROP INDEX CONCURRENTLY and \
                     try again. {CONCURRENTLY}",
                    r.l("indexrelname")
                )),
                alert: "PostgresIndexBloat",
            },
        );
    }
}
