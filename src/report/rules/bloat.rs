//! Bloat rules: tables and indexes with much estimated wasted space
//! (`table_bloat`, `index_bloat`).

use super::super::findings::{index_object, table_object, Ctx, Draft, Row, Rule};
use super::super::text::{ev, qualified, shell, shell_word, sql};
use super::super::thresholds as t;
use super::super::Severity;
use super::indexes::CONCURRENTLY;
use crate::collectors::bloat::{INDEX_BYTES, INDEX_RATIO, TABLE_BYTES, TABLE_RATIO};
use crate::metrics::Family;

pub static RULES: &[Rule] = &[
    Rule {
        kind: "table_bloat",
        family: &TABLE_BYTES,
        alert: "PostgresTableBloat",
        critical_alert: None,
        why: "Wasted space is read by every sequential scan and kept in backups; plain VACUUM does not give it back.",
        check: table,
    },
    Rule {
        kind: "index_bloat",
        family: &INDEX_BYTES,
        alert: "PostgresIndexBloat",
        critical_alert: None,
        why: "A bloated index is larger and slower to scan and to cache than it needs to be.",
        check: index,
    },
];

/// The finding's evidence when both the wasted bytes (the row) and the
/// share wasted (`ratio`) are past the thresholds.
fn bloated(c: &Ctx, r: &Row, ratio: &Family) -> Option<Draft> {
    let ratio = c.get(ratio, r.labels).unwrap_or(0.0);
    if r.value <= t::BLOAT_MIN_BYTES || ratio <= t::BLOAT_MIN_RATIO {
        return None;
    }
    let mut d = Draft::new(Severity::Warning, "", Default::default());
    d.evidence = vec![
        ev("estimated wasted bytes", r.value, "bytes"),
        ev("share wasted", ratio, "ratio"),
    ];
    Some(d)
}

fn table(c: &Ctx, r: &Row) -> Option<Draft> {
    let mut d = bloated(c, r, &TABLE_RATIO)?;
    let name = qualified(r.l("schemaname"), r.l("relname"));
    d.title = "Bloated table".into();
    d.object = table_object(r);
    d.fix = vec![
        sql("CREATE EXTENSION IF NOT EXISTS pg_repack;".into()),
        shell(format!(
            "pg_repack --dbname={} --table={} --no-order",
            shell_word(r.l("datname")),
            shell_word(&name)
        )),
    ];
    d.caution = Some(
        "pg_repack rewrites the table online: it holds an ACCESS EXCLUSIVE lock only for a moment \
         at the start and the end, needs free disk for a full copy, the pg_repack package of the \
         server's major version on the server, and a primary key or a NOT NULL unique index on \
         the table; it skips UNLOGGED tables (add host, port and user options as for psql). Only without pg_repack use \
         the fallback: VACUUM FULL holds an ACCESS EXCLUSIVE lock for the whole rewrite — no \
         reads or writes on the table until it ends — so run it in a maintenance window; \
         lock_timeout makes it give up instead of queueing every query on the table behind it. \
         Estimates: see docs/bloat.md."
            .into(),
    );
    d.fallback = vec![
        sql(t::LOCK_TIMEOUT.into()),
        sql(format!("VACUUM (FULL, ANALYZE, VERBOSE) {name};")),
    ];
    Some(d)
}

fn index(c: &Ctx, r: &Row) -> Option<Draft> {
    let mut d = bloated(c, r, &INDEX_RATIO)?;
    let name = qualified(r.l("schemaname"), r.l("indexrelname"));
    d.title = "Bloated index".into();
    d.object = index_object(r);
    d.fix = vec![
        sql(t::LOCK_TIMEOUT.into()),
        sql(format!("REINDEX INDEX CONCURRENTLY {name};")),
    ];
    d.caution = Some(format!(
        "REINDEX CONCURRENTLY builds a second copy of the index next to the old one (disk for it) \
         and swaps them without blocking reads or writes. If it stops (lock_timeout, cancel), it \
         leaves an invalid copy named {}_ccnew behind: drop that with DROP INDEX CONCURRENTLY and \
         try again. {CONCURRENTLY}",
        r.l("indexrelname")
    ));
    Some(d)
}
