//! `wal_receiver`: whether a standby streams WAL from its upstream, and when
//! it last heard from it.
//! Source: pg_stat_wal_receiver. Scope: cluster. PostgreSQL ≥ 14 (the view's
//! `written_lsn`/`flushed_lsn` columns). Standbys only: a primary emits
//! nothing.
//!
//! A standby whose WAL receiver is gone is invisible elsewhere: on the
//! primary its `pg_stat_replication` row (and every `pg_replication_standby_*`
//! series) just vanishes, and the standby's replay figures only say that
//! nothing new arrived, which also happens on an idle primary. So this
//! collector always emits `pg_wal_receiver_streaming` on a standby, 0 when
//! no WAL receiver runs (the view is empty: `WHERE pid IS NOT NULL`).
//!
//! Without pg_read_all_stats (pg_monitor) PostgreSQL shows only the pid of a
//! running WAL receiver and NULL for every other column
//! (`pg_stat_get_wal_receiver()` in walreceiver.c): then the receiver is
//! known to exist but not whether it streams, so `pg_wal_receiver_streaming`
//! and the detail families are absent rather than guessed.

use crate::collectors::{
    num, text_ref, Collector, Ctx, Fetched, Meta, Query, Scope, Source, MIN_SUPPORTED_MAJOR,
};
use crate::error::CollectError;
use crate::metrics::{Family, Sink};

/// Exactly one row: the WAL receiver's pid (NULL when none runs), its status
/// (NULL without pg_read_all_stats), the send and receipt times of the last
/// message from the upstream server, the age of that receipt, the last
/// write-ahead log location reported back to the upstream (latest_end_lsn)
/// and when, and the location flushed to disk, as byte positions.
const SQL: &str = "SELECT r.pid::float8, r.status::text,
       extract(epoch FROM r.last_msg_send_time)::float8,
       extract(epoch FROM r.last_msg_receipt_time)::float8,
       extract(epoch FROM now() - r.last_msg_receipt_time)::float8,
       pg_wal_lsn_diff(r.latest_end_lsn, '0/0')::float8,
       extract(epoch FROM r.latest_end_time)::float8,
       pg_wal_lsn_diff(r.flushed_lsn, '0/0')::float8
  FROM (SELECT 1) AS one
  LEFT JOIN pg_stat_wal_receiver r ON true";

static STREAMING: Family = Family::gauge(
    "pg_wal_receiver_streaming",
    "Standby only: 1 if a WAL receiver runs with status streaming (pg_stat_wal_receiver.status), 0 if none runs or it is in another state; absent when the status is hidden (no pg_read_all_stats).",
    &[],
);
static STATUS: Family = Family::gauge(
    "pg_wal_receiver_status_info",
    "Standby only: always 1 while a WAL receiver runs; status is pg_stat_wal_receiver.status (streaming, waiting, restarting, stopping, ...).",
    &["status"],
);
static LAST_SEND: Family = Family::gauge(
    "pg_wal_receiver_last_message_send_timestamp_seconds",
    "Standby only: Unix time the upstream sent the last message received (pg_stat_wal_receiver.last_msg_send_time).",
    &[],
);
static LAST_RECEIPT: Family = Family::gauge(
    "pg_wal_receiver_last_message_receipt_timestamp_seconds",
    "Standby only: Unix time the last message from the upstream was received (pg_stat_wal_receiver.last_msg_receipt_time).",
    &[],
);
static LAST_RECEIPT_AGE: Family = Family::gauge(
    "pg_wal_receiver_last_message_age_seconds",
    "Standby only: seconds since the last message from the upstream was received (now() - pg_stat_wal_receiver.last_msg_receipt_time).",
    &[],
);
static LATEST_END_LSN: Family = Family::gauge(
    "pg_wal_receiver_latest_end_lsn_bytes",
    "Standby only: last WAL location reported to the upstream, as a byte position (pg_stat_wal_receiver.latest_end_lsn).",
    &[],
);
static LATEST_END_TIME: Family = Family::gauge(
    "pg_wal_receiver_latest_end_timestamp_seconds",
    "Standby only: Unix time of the last WAL location reported to the upstream (pg_stat_wal_receiver.latest_end_time).",
    &[],
);
static FLUSHED_LSN: Family = Family::gauge(
    "pg_wal_receiver_flushed_lsn_bytes",
    "Standby only: last WAL location received and flushed to disk, as a byte position (pg_stat_wal_receiver.flushed_lsn).",
    &[],
);

static FAMILIES: &[&Family] = &[
    &STREAMING,
    &STATUS,
    &LAST_SEND,
    &LAST_RECEIPT,
    &LAST_RECEIPT_AGE,
    &LATEST_END_LSN,
    &LATEST_END_TIME,
    &FLUSHED_LSN,
];

/// What `wal_receiver` is, once (see `Meta`).
const META: Meta = Meta {
    name: "wal_receiver",
    description: "Standby: whether the WAL receiver streams, and when it last heard from upstream.",
    scope: Scope::Cluster,
    families: FAMILIES,
    min_major: MIN_SUPPORTED_MAJOR,
    default_enabled: true,
};

pub struct WalReceiver;

impl Collector for WalReceiver {
    fn meta(&self) -> &'static Meta {
        &META
    }
    fn source(&self, _ctx: &Ctx) -> Source {
        // Also on a primary (the view is empty there): the query is cheap, and
        // a server promoted or demoted between the server-facts query and this
        // one is then still read consistently by `map`.
        Source::Sql(vec![Query::new("wal_receiver", SQL)])
    }
    fn map(&self, ctx: &Ctx, input: &Fetched, out: &mut Sink) -> Result<(), CollectError> {
        let rows = input.rows("wal_receiver")?;
        if !ctx.server.in_recovery {
            return Ok(());
        }
        for row in rows {
            let running = num(row, 0)?.is_some();
            let status = row.try_get::<_, Option<&str>>(1)?;
            match (running, status) {
                (false, _) => out.gauge(&STREAMING, &[], 0.0),
                // Running, but the status is hidden from this role.
                (true, None) => {}
                (true, Some(_)) => {
                    let status = text_ref(row, 1)?;
                    out.gauge(&STREAMING, &[], if status == "streaming" { 1.0 } else { 0.0 });
                    out.gauge(&STATUS, &[status], 1.0);
                }
            }
            out.gauge_opt(&LAST_SEND, &[], num(row, 2)?);
            out.gauge_opt(&LAST_RECEIPT, &[], num(row, 3)?);
            out.gauge_opt(&LAST_RECEIPT_AGE, &[], num(row, 4)?);
            out.gauge_opt(&LATEST_END_LSN, &[], num(row, 5)?);
            out.gauge_opt(&LATEST_END_TIME, &[], num(row, 6)?);
            out.gauge_opt(&FLUSHED_LSN, &[], num(row, 7)?);
        }
        Ok(())
    }
}
