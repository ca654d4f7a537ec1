//! `replication`: recovery state, streaming standbys, replication slots and,
//! on a standby, how far replay trails what was received.
//! Sources: pg_is_in_recovery(), pg_stat_replication, pg_replication_slots,
//! pg_last_wal_receive_lsn()/pg_last_wal_replay_lsn()/pg_last_xact_replay_timestamp(),
//! pg_walfile_name(pg_current_wal_lsn()), pg_control_checkpoint().
//! Scope: cluster. PostgreSQL ≥ 14 (`inactive_since` from 17).
//!
//! `pg_current_wal_lsn()` raises an error during recovery, so every "bytes
//! behind" figure is measured against a different LSN on a standby: the
//! newest WAL it has (greatest of received and replayed; the receive LSN is
//! NULL when WAL comes from the archive only). A standby can itself feed
//! cascading standbys, so `pg_stat_replication` is read on both.
//!
//! Standby series carry `pid` besides application_name, client_addr and
//! slot_name: two standbys on one host without slots, both with the default
//! application_name "walreceiver" (or two pg_receivewal), are otherwise the
//! same series. The pid changes when a standby reconnects, which starts a new
//! series; a reconnect is worth seeing anyway.
//!
//! Without pg_read_all_stats PostgreSQL shows only the pid of other roles'
//! WAL senders: their state is "" and positions and lags are absent.

use crate::collectors::{
    num, num_req, text, Collector, Ctx, Fetched, Meta, Query, Scope, Source, MIN_SUPPORTED_MAJOR,
};
use const_format::concatcp;

use crate::error::CollectError;
use crate::metrics::{Family, Sink};

/// One row per WAL sender (standby, pg_basebackup, pg_receivewal): its slot
/// (via `active_pid`), state, lags, and how far each position reported by
/// the standby trails the newest WAL this server has (`STANDBYS_PRIMARY_SQL`
/// and `STANDBYS_STANDBY_SQL` differ only in that).
/// Lags are intervals PostgreSQL computes from the standby's replies; NULL
/// when the standby is caught up and idle.
const STANDBYS_HEAD: &str = "SELECT r.pid, coalesce(r.application_name, '')::text,
       coalesce(host(r.client_addr), '')::text, coalesce(s.slot_name::text, ''),
       coalesce(r.state, '')::text, coalesce(r.sync_state, '')::text,
       extract(epoch FROM r.write_lag)::float8,
       extract(epoch FROM r.flush_lag)::float8,
       extract(epoch FROM r.replay_lag)::float8,
       ";

/// The WAL senders and their slots.
const STANDBYS_FROM: &str = "
  FROM pg_stat_replication r
  LEFT JOIN pg_replication_slots s ON s.active_pid = r.pid";

/// On a primary: positions against the current WAL insert position.
const STANDBYS_PRIMARY_SQL: &str = concatcp!(
    STANDBYS_HEAD,
    "pg_wal_lsn_diff(pg_current_wal_lsn(), r.sent_lsn)::float8,
       pg_wal_lsn_diff(pg_current_wal_lsn(), r.write_lsn)::float8,
       pg_wal_lsn_diff(pg_current_wal_lsn(), r.flush_lsn)::float8,
       pg_wal_lsn_diff(pg_current_wal_lsn(), r.replay_lsn)::float8",
    STANDBYS_FROM
);

/// On a standby feeding cascading standbys: positions against the newest
/// WAL this standby has.
const STANDBYS_STANDBY_SQL: &str = concatcp!(
    STANDBYS_HEAD,
    "pg_wal_lsn_diff(w.lsn, r.sent_lsn)::float8,
       pg_wal_lsn_diff(w.lsn, r.write_lsn)::float8,
       pg_wal_lsn_diff(w.lsn, r.flush_lsn)::float8,
       pg_wal_lsn_diff(w.lsn, r.replay_lsn)::float8",
    STANDBYS_FROM,
    "
 CROSS JOIN (SELECT greatest(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn()) AS lsn) w"
);

/// One row per replication slot: whether something is connected, the WAL it
/// holds back from removal (NULL restart_lsn: nothing reserved yet, or the
/// slot was invalidated), wal_status, how much more WAL may be written before
/// the slot is lost (NULL without max_slot_wal_keep_size), the age of the
/// xmin/catalog_xmin it holds, and from PG 17 inactive_since (when the slot
/// was last released). Four variants: retained WAL is measured against the
/// current insert position on a primary (`SLOTS_RETAINED_PRIMARY`) or the
/// newest WAL a standby has (`SLOTS_RETAINED_STANDBY`).
const SLOTS_HEAD: &str = "SELECT slot_name::text, slot_type::text, coalesce(database::text, ''),
       active, ";
const SLOTS_RETAINED_PRIMARY: &str = "pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::float8";
const SLOTS_RETAINED_STANDBY: &str =
    "pg_wal_lsn_diff(greatest(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn()), restart_lsn)::float8";
/// The columns every version has after the retained WAL.
const SLOTS_MIDDLE: &str = ",
       wal_status::text, safe_wal_size::float8,
       age(xmin)::float8, age(catalog_xmin)::float8,
       ";
/// PG 14–16 have no inactive_since.
const SLOTS_TAIL_14: &str = "NULL::float8
  FROM pg_replication_slots";
const SLOTS_TAIL_17: &str = "extract(epoch FROM inactive_since)::float8
  FROM pg_replication_slots";

const SLOTS_PRIMARY_SQL: &str = concatcp!(SLOTS_HEAD, SLOTS_RETAINED_PRIMARY, SLOTS_MIDDLE, SLOTS_TAIL_14);
const SLOTS_STANDBY_SQL: &str = concatcp!(SLOTS_HEAD, SLOTS_RETAINED_STANDBY, SLOTS_MIDDLE, SLOTS_TAIL_14);
const SLOTS_PRIMARY_17_SQL: &str = concatcp!(SLOTS_HEAD, SLOTS_RETAINED_PRIMARY, SLOTS_MIDDLE, SLOTS_TAIL_17);
const SLOTS_STANDBY_17_SQL: &str = concatcp!(SLOTS_HEAD, SLOTS_RETAINED_STANDBY, SLOTS_MIDDLE, SLOTS_TAIL_17);

/// One row on a standby: seconds since the last replayed transaction
/// committed on the primary (grows while the primary is idle too), WAL
/// received but not yet replayed (NULL when nothing was streamed), and the
/// commit time of the last replayed transaction (NULL before the first).
const STANDBY_SQL: &str = "SELECT extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8,
       CASE WHEN pg_last_wal_receive_lsn() IS NOT NULL
            THEN greatest(pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn()), 0)::float8 END,
       extract(epoch FROM pg_last_xact_replay_timestamp())::float8";

/// One row on a primary: the timeline of the current WAL insert position
/// (the first 8 hex digits of its WAL file name). Right after a promotion
/// this is already the new timeline, while pg_control_checkpoint() keeps the
/// old one until the first checkpoint completes.
const TIMELINE_PRIMARY_SQL: &str =
    "SELECT ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int8::float8";

/// One row on a standby (pg_walfile_name() is refused during recovery): the
/// timeline of the last restartpoint. pg_control_checkpoint() may be refused
/// to unprivileged roles.
const TIMELINE_STANDBY_SQL: &str = "SELECT timeline_id::float8 FROM pg_control_checkpoint()";

const STANDBY_LABELS: &[&str] = &["application_name", "client_addr", "slot_name", "pid"];
const SLOT_LABELS: &[&str] = &["slot_name", "slot_type", "database"];

static IN_RECOVERY: Family = Family::gauge(
    "pg_replication_in_recovery",
    "1 if the server is a standby in recovery, 0 if it is a primary (pg_is_in_recovery()).",
    &[],
);
static TIMELINE: Family = Family::gauge(
    "pg_replication_timeline_id",
    "Timeline the server is on: of the current WAL position on a primary (pg_walfile_name(pg_current_wal_lsn())), of the last restartpoint on a standby (pg_control_checkpoint().timeline_id, absent when not permitted).",
    &[],
);
static STANDBY_INFO: Family = Family::gauge(
    "pg_replication_standby_info",
    "Always 1 per WAL sender; state and sync_state from pg_stat_replication (empty when hidden by missing pg_read_all_stats).",
    &[
        "application_name",
        "client_addr",
        "slot_name",
        "pid",
        "state",
        "sync_state",
    ],
);
static WRITE_LAG: Family = Family::gauge(
    "pg_replication_standby_write_lag_seconds",
    "Time until the standby wrote recent WAL (pg_stat_replication.write_lag); absent when the standby is idle and caught up.",
    STANDBY_LABELS,
);
static FLUSH_LAG: Family = Family::gauge(
    "pg_replication_standby_flush_lag_seconds",
    "Time until the standby flushed recent WAL (pg_stat_replication.flush_lag); absent when idle.",
    STANDBY_LABELS,
);
static REPLAY_LAG: Family = Family::gauge(
    "pg_replication_standby_replay_lag_seconds",
    "Time until the standby replayed recent WAL (pg_stat_replication.replay_lag); absent when idle.",
    STANDBY_LABELS,
);
static SENT_BYTES: Family = Family::gauge(
    "pg_replication_standby_sent_lag_bytes",
    "WAL not yet sent to the standby (pg_current_wal_lsn() - pg_stat_replication.sent_lsn).",
    STANDBY_LABELS,
);
static WRITE_BYTES: Family = Family::gauge(
    "pg_replication_standby_write_lag_bytes",
    "WAL not yet written by the standby (pg_current_wal_lsn() - pg_stat_replication.write_lsn).",
    STANDBY_LABELS,
);
static FLUSH_BYTES: Family = Family::gauge(
    "pg_replication_standby_flush_lag_bytes",
    "WAL not yet flushed by the standby (pg_current_wal_lsn() - pg_stat_replication.flush_lsn).",
    STANDBY_LABELS,
);
static REPLAY_BYTES: Family = Family::gauge(
    "pg_replication_standby_replay_lag_bytes",
    "WAL not yet replayed by the standby (pg_current_wal_lsn() - pg_stat_replication.replay_lsn); absent for clients that do not replay (pg_receivewal).",
    STANDBY_LABELS,
);
pub static SLOT_ACTIVE: Family = Family::gauge(
    "pg_replication_slot_active",
    "1 if a process is using the slot (pg_replication_slots.active).",
    SLOT_LABELS,
);
pub static SLOT_RETAINED: Family = Family::gauge(
    "pg_replication_slot_retained_wal_bytes",
    "WAL the slot keeps from removal (current LSN - pg_replication_slots.restart_lsn; on a standby the last received or replayed LSN); absent when the slot reserves nothing.",
    SLOT_LABELS,
);
static SLOT_WAL_STATUS: Family = Family::gauge(
    "pg_replication_slot_wal_status_info",
    "Always 1; wal_status of the slot (pg_replication_slots.wal_status: reserved, extended, unreserved, lost).",
    &["slot_name", "slot_type", "database", "wal_status"],
);
static SLOT_SAFE_WAL: Family = Family::gauge(
    "pg_replication_slot_safe_wal_size_bytes",
    "WAL that can still be written before the slot is in danger of losing WAL (pg_replication_slots.safe_wal_size); absent without max_slot_wal_keep_size.",
    SLOT_LABELS,
);
pub static SLOT_XMIN_AGE: Family = Family::gauge(
    "pg_replication_slot_xmin_age",
    "Age in transactions of the xmin the slot holds back (pg_replication_slots.xmin, set by hot_standby_feedback); absent when none.",
    SLOT_LABELS,
);
pub static SLOT_CATALOG_XMIN_AGE: Family = Family::gauge(
    "pg_replication_slot_catalog_xmin_age",
    "Age in transactions of the catalog xmin the slot holds back (pg_replication_slots.catalog_xmin, logical slots); absent when none.",
    SLOT_LABELS,
);
static SLOT_INACTIVE_SINCE: Family = Family::gauge(
    "pg_replication_slot_inactive_since_timestamp_seconds",
    "Unix time the slot was last released (pg_replication_slots.inactive_since, PG 17+); absent while active.",
    SLOT_LABELS,
);
static REPLAY_DELAY: Family = Family::gauge(
    "pg_replication_replay_lag_seconds",
    "On a standby: now() - pg_last_xact_replay_timestamp(); grows while the primary commits nothing. Absent before the first replayed transaction.",
    &[],
);
static REPLAY_PENDING: Family = Family::gauge(
    "pg_replication_replay_pending_bytes",
    "On a standby: WAL received but not yet replayed (pg_last_wal_receive_lsn() - pg_last_wal_replay_lsn()); absent when nothing was streamed.",
    &[],
);
static LAST_REPLAY: Family = Family::gauge(
    "pg_replication_last_replay_timestamp_seconds",
    "On a standby: commit time of the last replayed transaction (pg_last_xact_replay_timestamp()).",
    &[],
);

static FAMILIES: &[&Family] = &[
    &IN_RECOVERY,
    &TIMELINE,
    &STANDBY_INFO,
    &WRITE_LAG,
    &FLUSH_LAG,
    &REPLAY_LAG,
    &SENT_BYTES,
    &WRITE_BYTES,
    &FLUSH_BYTES,
    &REPLAY_BYTES,
    &SLOT_ACTIVE,
    &SLOT_RETAINED,
    &SLOT_WAL_STATUS,
    &SLOT_SAFE_WAL,
    &SLOT_XMIN_AGE,
    &SLOT_CATALOG_XMIN_AGE,
    &SLOT_INACTIVE_SINCE,
    &REPLAY_DELAY,
    &REPLAY_PENDING,
    &LAST_REPLAY,
];

/// What `replication` is, once (see `Meta`).
const META: Meta = Meta {
    name: "replication",
    description: "Recovery state, standby lag, replication slots and retained WAL, timeline.",
    scope: Scope::Cluster,
    families: FAMILIES,
    min_major: MIN_SUPPORTED_MAJOR,
    default_enabled: true,
};

pub struct Replication;

impl Collector for Replication {
    fn meta(&self) -> &'static Meta {
        &META
    }
    fn source(&self, ctx: &Ctx) -> Source {
        let standby = ctx.server.in_recovery;
        let slots = match (standby, ctx.server.major() >= 17) {
            (false, false) => SLOTS_PRIMARY_SQL,
            (true, false) => SLOTS_STANDBY_SQL,
            (false, true) => SLOTS_PRIMARY_17_SQL,
            (true, true) => SLOTS_STANDBY_17_SQL,
        };
        let standbys = if standby {
            STANDBYS_STANDBY_SQL
        } else {
            STANDBYS_PRIMARY_SQL
        };
        let timeline = if standby {
            TIMELINE_STANDBY_SQL
        } else {
            TIMELINE_PRIMARY_SQL
        };
        let mut queries = vec![
            Query::new("standbys", standbys),
            Query::new("slots", slots),
            Query::new("timeline", timeline).optional(),
        ];
        if standby {
            queries.push(Query::new("standby", STANDBY_SQL));
        }
        Source::Sql(queries)
    }
    fn map(&self, ctx: &Ctx, input: &Fetched, out: &mut Sink) -> Result<(), CollectError> {
        let standby = ctx.server.in_recovery;
        out.gauge(&IN_RECOVERY, &[], if standby { 1.0 } else { 0.0 });
        for row in input.optional("timeline").unwrap_or_default() {
            out.gauge_opt(&TIMELINE, &[], num(row, 0)?);
        }
        for row in input.rows("standbys")? {
            let pid = row.try_get::<_, i32>(0)?.to_string();
            let (app, addr, slot) = (text(row, 1)?, text(row, 2)?, text(row, 3)?);
            let l = [app.as_str(), &addr, &slot, &pid];
            out.gauge(
                &STANDBY_INFO,
                &[&app, &addr, &slot, &pid, &text(row, 4)?, &text(row, 5)?],
                1.0,
            );
            out.gauge_opt(&WRITE_LAG, &l, num(row, 6)?);
            out.gauge_opt(&FLUSH_LAG, &l, num(row, 7)?);
            out.gauge_opt(&REPLAY_LAG, &l, num(row, 8)?);
            out.gauge_opt(&SENT_BYTES, &l, num(row, 9)?);
            out.gauge_opt(&WRITE_BYTES, &l, num(row, 10)?);
            out.gauge_opt(&FLUSH_BYTES, &l, num(row, 11)?);
            out.gauge_opt(&REPLAY_BYTES, &l, num(row, 12)?);
        }
        for row in input.rows("slots")? {
            let (name, kind, db) = (text(row, 0)?, text(row, 1)?, text(row, 2)?);
            let l = [name.as_str(), &kind, &db];
            out.gauge(&SLOT_ACTIVE, &l, num_req(row, 3)?);
            out.gauge_opt(&SLOT_RETAINED, &l, num(row, 4)?);
            if let Some(status) = row.try_get::<_, Option<String>>(5)? {
                out.gauge(&SLOT_WAL_STATUS, &[&name, &kind, &db, &status], 1.0);
            }
            out.gauge_opt(&SLOT_SAFE_WAL, &l, num(row, 6)?);
            out.gauge_opt(&SLOT_XMIN_AGE, &l, num(row, 7)?);
            out.gauge_opt(&SLOT_CATALOG_XMIN_AGE, &l, num(row, 8)?);
            out.gauge_opt(&SLOT_INACTIVE_SINCE, &l, num(row, 9)?);
        }
        if standby {
            for row in input.rows("standby")? {
                out.gauge_opt(&REPLAY_DELAY, &[], num(row, 0)?);
                out.gauge_opt(&REPLAY_PENDING, &[], num(row, 1)?);
                out.gauge_opt(&LAST_REPLAY, &[], num(row, 2)?);
            }
        }
        Ok(())
    }
}
