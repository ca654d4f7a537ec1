//! `database`: per-database wraparound ages, connection limit and the
//! pg_stat_database counters; cluster WAL volume. Database sizes are the
//! cached `database_size` collector's.
//! Sources: pg_database, pg_stat_database, pg_stat_wal. Scope: cluster.
//! PostgreSQL ≥ 14 (pg_stat_wal).
//!
//! Wraparound ages cover every database, templates (template0 too)
//! included: `vac_truncate_clog()` (vacuum.c) takes the oldest
//! `datfrozenxid`/`datminmxid` over all of pg_database, skipping only invalid
//! ones (`datconnlimit = -2`, a DROP DATABASE interrupted; PostgreSQL 14.9,
//! 15.4, 16+), and template0, which nobody can connect to, is often the
//! oldest. The pg_stat_database counters leave templates out, and the row
//! for shared objects (datname NULL).
//!
//! MultiXact member space: PostgreSQL 14–18 exposes no count of the member
//! slots in use, so it is estimated from the size of pg_multixact/members
//! (whole SLRU segments covering the offsets in use), and PostgreSQL's
//! `MultiXactMemberFreezeThreshold()` (multixact.c) is computed from it: past
//! half of the 2^32 slots autovacuum treats tables as due for an
//! anti-wraparound vacuum long before `autovacuum_multixact_freeze_max_age`.
//! Listing the directory takes superuser, or EXECUTE on pg_ls_dir and
//! pg_stat_file granted to the exporter's role: without, those families are
//! absent.

use crate::collectors::{
    num, num_req, text, Collector, Ctx, Fetched, Meta, Query, Scope, Source, MIN_SUPPORTED_MAJOR,
};
use crate::error::CollectError;
use crate::metrics::{Family, Sink};

/// One row per database, templates included: wraparound ages and connection
/// limit (NULL when unlimited). Invalid databases (datconnlimit -2, an
/// interrupted DROP DATABASE) are skipped, as vac_truncate_clog() skips them.
const DATABASES_SQL: &str = "SELECT datname::text, age(datfrozenxid)::float8, mxid_age(datminmxid)::float8,
       CASE WHEN datconnlimit >= 0 THEN datconnlimit END::float8
  FROM pg_database
 WHERE datconnlimit <> -2";

/// One row per non-template database with its cumulative counters, then the
/// WAL generated since the last reset of pg_stat_wal (one row, the same on
/// every row: one statement instead of two, issue 22). The row for shared
/// objects (datid 0, datname NULL) is dropped by the join; with no
/// non-template database at all there is one row, datname NULL, for the WAL.
const STAT_SQL: &str = "SELECT s.datname::text,
       s.xact_commit::float8, s.xact_rollback::float8, s.blks_read::float8, s.blks_hit::float8,
       s.tup_returned::float8, s.tup_fetched::float8, s.tup_inserted::float8,
       s.tup_updated::float8, s.tup_deleted::float8, s.temp_files::float8, s.temp_bytes::float8,
       s.deadlocks::float8, s.conflicts::float8, s.checksum_failures::float8,
       extract(epoch FROM s.stats_reset)::float8,
       w.wal_records::float8, w.wal_fpi::float8, w.wal_bytes::float8
  FROM pg_stat_wal w
  LEFT JOIN (pg_stat_database s JOIN pg_database d ON d.oid = s.datid AND NOT d.datistemplate) ON true";

/// One row: bytes in pg_multixact/members, the multixacts in use (the
/// oldest datminmxid's age, as ReadMultiXactCounts() counts them),
/// autovacuum_multixact_freeze_max_age and the block size. Fails without
/// the privilege to list the directory (optional). The sum is coalesced to
/// 0 because no member file (or a missing directory: pg_ls_dir's
/// missing_ok) means no member space in use, a true 0.
const MEMBERS_SQL: &str =
    "SELECT (SELECT coalesce(sum((pg_stat_file('pg_multixact/members/' || f, true)).size), 0)
          FROM pg_ls_dir('pg_multixact/members', true, false) f)::float8,
       (SELECT max(mxid_age(datminmxid)) FROM pg_database WHERE datconnlimit <> -2)::float8,
       current_setting('autovacuum_multixact_freeze_max_age')::float8,
       current_setting('block_size')::float8";

pub static FROZEN_XID_AGE: Family = Family::gauge(
    "pg_database_frozen_xid_age",
    "Transactions since the database's oldest unfrozen xid (age(pg_database.datfrozenxid)), template databases included; wraparound protection starts at autovacuum_freeze_max_age.",
    &["datname"],
);
pub static MIN_MXID_AGE: Family = Family::gauge(
    "pg_database_min_mxid_age",
    "Multixacts since the database's oldest multixact id (mxid_age(pg_database.datminmxid)), template databases included.",
    &["datname"],
);
static MEMBERS_SIZE: Family = Family::gauge(
    "pg_multixact_members_size_bytes",
    "Size of pg_multixact/members (pg_ls_dir, pg_stat_file; needs superuser or EXECUTE on both): the MultiXact member space in use, in whole segments.",
    &[],
);
static MEMBERS_USED: Family = Family::gauge(
    "pg_multixact_members_used_ratio",
    "Share of the 2^32 MultiXact member slots in use, estimated from pg_multixact_members_size_bytes (block_size / 20 * 4 members per page). Past 0.5 PostgreSQL lowers the MultiXact freeze age (pg_multixact_members_freeze_threshold); at 1 statements that need a multixact fail.",
    &[],
);
static MEMBERS_FREEZE_THRESHOLD: Family = Family::gauge(
    "pg_multixact_members_freeze_threshold",
    "The MultiXact age past which autovacuum forces anti-wraparound vacuums, as PostgreSQL's MultiXactMemberFreezeThreshold() computes it: autovacuum_multixact_freeze_max_age, lowered towards 0 while member space use (pg_multixact_members_used_ratio) goes from 0.5 to 0.75.",
    &[],
);
static CONNECTION_LIMIT: Family = Family::gauge(
    "pg_database_connection_limit",
    "The database's connection limit (pg_database.datconnlimit); absent when unlimited.",
    &["datname"],
);
static XACT_COMMIT: Family = Family::counter(
    "pg_database_xact_commit_total",
    "Transactions committed (pg_stat_database.xact_commit).",
    &["datname"],
);
static XACT_ROLLBACK: Family = Family::counter(
    "pg_database_xact_rollback_total",
    "Transactions rolled back (pg_stat_database.xact_rollback).",
    &["datname"],
);
static BLKS_READ: Family = Family::counter(
    "pg_database_blks_read_total",
    "Blocks read from outside shared buffers (pg_stat_database.blks_read).",
    &["datname"],
);
static BLKS_HIT: Family = Family::counter(
    "pg_database_blks_hit_total",
    "Blocks found in shared buffers (pg_stat_database.blks_hit).",
    &["datname"],
);
static TUP_RETURNED: Family = Family::counter(
    "pg_database_tup_returned_total",
    "Rows returned by sequential and index scans (pg_stat_database.tup_returned).",
    &["datname"],
);
static TUP_FETCHED: Family = Family::counter(
    "pg_database_tup_fetched_total",
    "Rows fetched by index scans (pg_stat_database.tup_fetched).",
    &["datname"],
);
static TUP_INSERTED: Family = Family::counter(
    "pg_database_tup_inserted_total",
    "Rows inserted (pg_stat_database.tup_inserted).",
    &["datname"],
);
static TUP_UPDATED: Family = Family::counter(
    "pg_database_tup_updated_total",
    "Rows updated (pg_stat_database.tup_updated).",
    &["datname"],
);
static TUP_DELETED: Family = Family::counter(
    "pg_database_tup_deleted_total",
    "Rows deleted (pg_stat_database.tup_deleted).",
    &["datname"],
);
static TEMP_FILES: Family = Family::counter(
    "pg_database_temp_files_total",
    "Temporary files created by queries, e.g. sorts and hashes over work_mem (pg_stat_database.temp_files).",
    &["datname"],
);
static TEMP_BYTES: Family = Family::counter(
    "pg_database_temp_bytes_total",
    "Bytes written to temporary files (pg_stat_database.temp_bytes).",
    &["datname"],
);
static DEADLOCKS: Family = Family::counter(
    "pg_database_deadlocks_total",
    "Deadlocks detected (pg_stat_database.deadlocks).",
    &["datname"],
);
static CONFLICTS: Family = Family::counter(
    "pg_database_conflicts_total",
    "Queries cancelled by recovery conflicts on a standby (pg_stat_database.conflicts).",
    &["datname"],
);
static CHECKSUM_FAILURES: Family = Family::counter(
    "pg_database_checksum_failures_total",
    "Data page checksum failures (pg_stat_database.checksum_failures); absent when data checksums are off.",
    &["datname"],
);
static STATS_RESET: Family = Family::gauge(
    "pg_database_stats_reset_timestamp_seconds",
    "Unix time the database's statistics were last reset (pg_stat_database.stats_reset); absent if never.",
    &["datname"],
);
static WAL_RECORDS: Family = Family::counter(
    "pg_wal_records_total",
    "WAL records generated by the cluster (pg_stat_wal.wal_records).",
    &[],
);
static WAL_FPI: Family = Family::counter(
    "pg_wal_fpi_total",
    "WAL full page images generated (pg_stat_wal.wal_fpi).",
    &[],
);
static WAL_BYTES: Family = Family::counter(
    "pg_wal_bytes_total",
    "Bytes of WAL generated (pg_stat_wal.wal_bytes).",
    &[],
);

static FAMILIES: &[&Family] = &[
    &FROZEN_XID_AGE,
    &MIN_MXID_AGE,
    &MEMBERS_SIZE,
    &MEMBERS_USED,
    &MEMBERS_FREEZE_THRESHOLD,
    &CONNECTION_LIMIT,
    &XACT_COMMIT,
    &XACT_ROLLBACK,
    &BLKS_READ,
    &BLKS_HIT,
    &TUP_RETURNED,
    &TUP_FETCHED,
    &TUP_INSERTED,
    &TUP_UPDATED,
    &TUP_DELETED,
    &TEMP_FILES,
    &TEMP_BYTES,
    &DEADLOCKS,
    &CONFLICTS,
    &CHECKSUM_FAILURES,
    &STATS_RESET,
    &WAL_RECORDS,
    &WAL_FPI,
    &WAL_BYTES,
];

/// STAT_SQL's counter columns, in order after datname.
static COUNTERS: &[&Family] = &[
    &XACT_COMMIT,
    &XACT_ROLLBACK,
    &BLKS_READ,
    &BLKS_HIT,
    &TUP_RETURNED,
    &TUP_FETCHED,
    &TUP_INSERTED,
    &TUP_UPDATED,
    &TUP_DELETED,
    &TEMP_FILES,
    &TEMP_BYTES,
    &DEADLOCKS,
    &CONFLICTS,
    &CHECKSUM_FAILURES,
];

/// What `database` is, once (see `Meta`).
const META: Meta = Meta {
    name: "database",
    description: "Database sizes, wraparound ages, pg_stat_database counters and WAL volume.",
    scope: Scope::Cluster,
    families: FAMILIES,
    min_major: MIN_SUPPORTED_MAJOR,
    default_enabled: true,
};

pub struct Database;

impl Collector for Database {
    fn meta(&self) -> &'static Meta {
        &META
    }
    fn source(&self, _ctx: &Ctx) -> Source {
        Source::Sql(vec![
            Query::new("databases", DATABASES_SQL),
            Query::new("stat", STAT_SQL),
            Query::new("members", MEMBERS_SQL).optional(),
        ])
    }
    fn map(&self, _ctx: &Ctx, input: &Fetched, out: &mut Sink) -> Result<(), CollectError> {
        for row in input.rows("databases")? {
            let db = text(row, 0)?;
            out.gauge_opt(&FROZEN_XID_AGE, &[&db], num(row, 1)?);
            out.gauge_opt(&MIN_MXID_AGE, &[&db], num(row, 2)?);
            out.gauge_opt(&CONNECTION_LIMIT, &[&db], num(row, 3)?);
        }
        let stat = input.rows("stat")?;
        for row in stat {
            // The lone WAL row when no non-template database exists.
            let Some(db) = row.try_get::<_, Option<&str>>(0)? else {
                continue;
            };
            for (i, family) in COUNTERS.iter().enumerate() {
                // checksum_failures is NULL when data checksums are off.
                out.counter_opt(family, &[db], num(row, i + 1)?);
            }
            out.gauge_opt(&STATS_RESET, &[db], num(row, COUNTERS.len() + 1)?);
        }
        for row in input.optional("members").unwrap_or_default() {
            let (bytes, multixacts) = (num_req(row, 0)?, num_req(row, 1)?);
            let (setting, block_size) = (num_req(row, 2)?, num_req(row, 3)?);
            let members = members_in_use(bytes, block_size);
            out.gauge(&MEMBERS_SIZE, &[], bytes);
            out.gauge(&MEMBERS_USED, &[], members / MEMBER_SLOTS);
            out.gauge(
                &MEMBERS_FREEZE_THRESHOLD,
                &[],
                members_freeze_threshold(members, multixacts, setting),
            );
        }
        let wal = COUNTERS.len() + 2;
        if let Some(row) = stat.first() {
            out.counter(&WAL_RECORDS, &[], num_req(row, wal)?);
            out.counter(&WAL_FPI, &[], num_req(row, wal + 1)?);
            out.counter(&WAL_BYTES, &[], num_req(row, wal + 2)?);
        }
        Ok(())
    }
}

/// MultiXact member slots: offsets are 32-bit.
const MEMBER_SLOTS: f64 = 4_294_967_296.0;

/// Members held by `bytes` of pg_multixact/members: each page holds
/// block_size / 20 groups of 4 (4 flag bytes and 4 xids per group).
pub fn members_in_use(bytes: f64, block_size: f64) -> f64 {
    if block_size <= 0.0 {
        return 0.0;
    }
    (bytes / block_size).floor() * (block_size / 20.0).floor() * 4.0
}

/// PostgreSQL's MultiXactMemberFreezeThreshold() (multixact.c, 14–18): the
/// setting while at most half of the member space is used; past that, the
/// multixacts in use minus a share growing to all of them at three
/// quarters, never above the setting.
pub fn members_freeze_threshold(members: f64, multixacts: f64, setting: f64) -> f64 {
    const MAX_OFFSET: f64 = 4_294_967_295.0;
    let safe = (MAX_OFFSET / 2.0).floor();
    let danger = MAX_OFFSET - (MAX_OFFSET / 4.0).floor();
    if members <= safe {
        return setting;
    }
    let fraction = (members - safe) / (danger - safe);
    let victims = (multixacts * fraction).floor();
    if victims > multixacts {
        return 0.0;
    }
    (multixacts - victims).min(setting)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_per_page_as_multixact_c() {
        // 8 kB pages: 409 groups of 4 = 1636 members (MULTIXACT_MEMBERS_PER_PAGE).
        assert_eq!(members_in_use(8192.0, 8192.0), 1636.0);
        // One 32-page segment.
        assert_eq!(members_in_use(32.0 * 8192.0, 8192.0), 32.0 * 1636.0);
    }

    #[test]
    fn freeze_threshold_falls_past_half_the_member_space() {
        let setting = 400e6;
        assert_eq!(members_freeze_threshold(1e9, 300e6, setting), setting);
        assert_eq!(members_freeze_threshold(2147483647.0, 300e6, setting), setting);
        // Halfway from safe (2^31 - 1) to danger (3 * 2^30): half the
        // multixacts in use.
        let mid = (2147483647.0 + 3221225472.0) / 2.0;
        let t = members_freeze_threshold(mid, 300e6, setting);
        assert!((t - 150e6).abs() < 1.0, "{t}");
        // Never above the setting.
        assert_eq!(members_freeze_threshold(mid, 1e9, setting), setting);
        // Past danger: every multixact is a victim.
        assert_eq!(members_freeze_threshold(3.5e9, 300e6, setting), 0.0);
    }
}
