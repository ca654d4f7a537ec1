//! `settings`: maintenance-relevant server settings in base units, one family
//! per setting, plus how many settings wait for a restart.
//! Source: pg_settings. Scope: cluster. PostgreSQL ≥ 14; a setting the server
//! does not have (e.g. autovacuum_vacuum_max_threshold before 18) has no sample.
//!
//! Values are the session's `reset_val`, i.e. what postgresql.conf, ALTER
//! SYSTEM, ALTER DATABASE and ALTER ROLE give the exporter's role in the DSN's
//! database. The exporter sets statement_timeout, lock_timeout and
//! idle_in_transaction_session_timeout on its own connections with SET after
//! connecting, which leaves reset_val at the server's value. Values given as
//! connection startup options (source 'client', e.g. PGOPTIONS) are the
//! client's, not the server's: those have no sample.
//! Units are converted from pg_settings.unit (8kB, kB, MB, ms, s, min, …) to
//! bytes and seconds; booleans are 1/0; -1 stays -1 (disabled/"use the other
//! setting"), it is never scaled.

mod units;

use std::time::Duration;

use crate::collectors::{text, Collector, Ctx, Fetched, Meta, Query, Scope, Source, MIN_SUPPORTED_MAJOR};
use crate::config::Config;
use crate::error::CollectError;
use crate::metrics::{Family, Sink};

pub use units::{convert, unit_scale, Dim};

/// One row per listed setting the server has, plus every setting pending a
/// restart (one scan of pg_settings, which formats all ~350 settings each
/// time it is read): name, reset value, unit, vartype, source,
/// pending_restart. The list is a constant of this file, not outside input.
const SETTINGS_SQL: &str = "SELECT name::text, reset_val::text, unit::text, vartype::text, source::text,
       pending_restart
  FROM pg_settings
 WHERE pending_restart OR name = ANY ('{autovacuum,autovacuum_max_workers,autovacuum_naptime,
   autovacuum_vacuum_threshold,autovacuum_analyze_threshold,autovacuum_vacuum_scale_factor,
   autovacuum_analyze_scale_factor,autovacuum_vacuum_insert_threshold,
   autovacuum_vacuum_insert_scale_factor,autovacuum_vacuum_max_threshold,autovacuum_freeze_max_age,
   autovacuum_multixact_freeze_max_age,autovacuum_vacuum_cost_delay,autovacuum_vacuum_cost_limit,
   vacuum_cost_delay,vacuum_cost_limit,vacuum_freeze_min_age,vacuum_freeze_table_age,
   vacuum_multixact_freeze_min_age,vacuum_multixact_freeze_table_age,vacuum_failsafe_age,
   vacuum_multixact_failsafe_age,max_connections,superuser_reserved_connections,
   shared_buffers,work_mem,maintenance_work_mem,autovacuum_work_mem,max_wal_size,min_wal_size,
   checkpoint_timeout,archive_mode,wal_level,statement_timeout,
   idle_in_transaction_session_timeout,lock_timeout,track_counts}'::text[])";

static AUTOVACUUM: Family = Family::gauge(
    "pg_settings_autovacuum",
    "Setting autovacuum (pg_settings): 1 on, 0 off.",
    &[],
);
static AV_MAX_WORKERS: Family = Family::gauge(
    "pg_settings_autovacuum_max_workers",
    "Setting autovacuum_max_workers (pg_settings).",
    &[],
);
static AV_NAPTIME: Family = Family::gauge(
    "pg_settings_autovacuum_naptime_seconds",
    "Setting autovacuum_naptime (pg_settings), in seconds.",
    &[],
);
static AV_VAC_THRESHOLD: Family = Family::gauge(
    "pg_settings_autovacuum_vacuum_threshold",
    "Setting autovacuum_vacuum_threshold (pg_settings), in rows.",
    &[],
);
static AV_ANA_THRESHOLD: Family = Family::gauge(
    "pg_settings_autovacuum_analyze_threshold",
    "Setting autovacuum_analyze_threshold (pg_settings), in rows.",
    &[],
);
static AV_VAC_SCALE: Family = Family::gauge(
    "pg_settings_autovacuum_vacuum_scale_factor",
    "Setting autovacuum_vacuum_scale_factor (pg_settings): fraction of the table.",
    &[],
);
static AV_ANA_SCALE: Family = Family::gauge(
    "pg_settings_autovacuum_analyze_scale_factor",
    "Setting autovacuum_analyze_scale_factor (pg_settings): fraction of the table.",
    &[],
);
static AV_INS_THRESHOLD: Family = Family::gauge(
    "pg_settings_autovacuum_vacuum_insert_threshold",
    "Setting autovacuum_vacuum_insert_threshold (pg_settings), in rows; -1 disables insert-triggered vacuum.",
    &[],
);
static AV_INS_SCALE: Family = Family::gauge(
    "pg_settings_autovacuum_vacuum_insert_scale_factor",
    "Setting autovacuum_vacuum_insert_scale_factor (pg_settings): fraction of the table.",
    &[],
);
static AV_VAC_MAX_THRESHOLD: Family = Family::gauge(
    "pg_settings_autovacuum_vacuum_max_threshold",
    "Setting autovacuum_vacuum_max_threshold (pg_settings, PostgreSQL 18+), in rows; -1 disables the cap.",
    &[],
);
pub static AV_FREEZE_MAX_AGE: Family = Family::gauge(
    "pg_settings_autovacuum_freeze_max_age",
    "Setting autovacuum_freeze_max_age (pg_settings), in transactions.",
    &[],
);
pub static AV_MXID_FREEZE_MAX_AGE: Family = Family::gauge(
    "pg_settings_autovacuum_multixact_freeze_max_age",
    "Setting autovacuum_multixact_freeze_max_age (pg_settings), in multixacts.",
    &[],
);
static AV_COST_DELAY: Family = Family::gauge(
    "pg_settings_autovacuum_vacuum_cost_delay_seconds",
    "Setting autovacuum_vacuum_cost_delay (pg_settings), in seconds; -1 means vacuum_cost_delay applies.",
    &[],
);
static AV_COST_LIMIT: Family = Family::gauge(
    "pg_settings_autovacuum_vacuum_cost_limit",
    "Setting autovacuum_vacuum_cost_limit (pg_settings); -1 means vacuum_cost_limit applies.",
    &[],
);
static VAC_COST_DELAY: Family = Family::gauge(
    "pg_settings_vacuum_cost_delay_seconds",
    "Setting vacuum_cost_delay (pg_settings), in seconds.",
    &[],
);
static VAC_COST_LIMIT: Family = Family::gauge(
    "pg_settings_vacuum_cost_limit",
    "Setting vacuum_cost_limit (pg_settings).",
    &[],
);
static VAC_FREEZE_MIN_AGE: Family = Family::gauge(
    "pg_settings_vacuum_freeze_min_age",
    "Setting vacuum_freeze_min_age (pg_settings), in transactions.",
    &[],
);
static VAC_FREEZE_TABLE_AGE: Family = Family::gauge(
    "pg_settings_vacuum_freeze_table_age",
    "Setting vacuum_freeze_table_age (pg_settings), in transactions.",
    &[],
);
static VAC_MXID_FREEZE_MIN_AGE: Family = Family::gauge(
    "pg_settings_vacuum_multixact_freeze_min_age",
    "Setting vacuum_multixact_freeze_min_age (pg_settings), in multixacts.",
    &[],
);
static VAC_MXID_FREEZE_TABLE_AGE: Family = Family::gauge(
    "pg_settings_vacuum_multixact_freeze_table_age",
    "Setting vacuum_multixact_freeze_table_age (pg_settings), in multixacts.",
    &[],
);
pub static VAC_FAILSAFE_AGE: Family = Family::gauge(
    "pg_settings_vacuum_failsafe_age",
    "Setting vacuum_failsafe_age (pg_settings), in transactions.",
    &[],
);
pub static VAC_MXID_FAILSAFE_AGE: Family = Family::gauge(
    "pg_settings_vacuum_multixact_failsafe_age",
    "Setting vacuum_multixact_failsafe_age (pg_settings), in multixacts.",
    &[],
);
static MAX_CONNECTIONS: Family = Family::gauge(
    "pg_settings_max_connections",
    "Setting max_connections (pg_settings).",
    &[],
);
static SU_RESERVED: Family = Family::gauge(
    "pg_settings_superuser_reserved_connections",
    "Setting superuser_reserved_connections (pg_settings).",
    &[],
);
static SHARED_BUFFERS: Family = Family::gauge(
    "pg_settings_shared_buffers_bytes",
    "Setting shared_buffers (pg_settings), in bytes.",
    &[],
);
static WORK_MEM: Family = Family::gauge(
    "pg_settings_work_mem_bytes",
    "Setting work_mem (pg_settings reset_val for the exporter's role and database), in bytes.",
    &[],
);
static MAINT_WORK_MEM: Family = Family::gauge(
    "pg_settings_maintenance_work_mem_bytes",
    "Setting maintenance_work_mem (pg_settings reset_val for the exporter's role and database), in bytes.",
    &[],
);
static AV_WORK_MEM: Family = Family::gauge(
    "pg_settings_autovacuum_work_mem_bytes",
    "Setting autovacuum_work_mem (pg_settings), in bytes; -1 means maintenance_work_mem applies.",
    &[],
);
static MAX_WAL_SIZE: Family = Family::gauge(
    "pg_settings_max_wal_size_bytes",
    "Setting max_wal_size (pg_settings), in bytes.",
    &[],
);
static MIN_WAL_SIZE: Family = Family::gauge(
    "pg_settings_min_wal_size_bytes",
    "Setting min_wal_size (pg_settings), in bytes.",
    &[],
);
static CHECKPOINT_TIMEOUT: Family = Family::gauge(
    "pg_settings_checkpoint_timeout_seconds",
    "Setting checkpoint_timeout (pg_settings), in seconds.",
    &[],
);
pub static ARCHIVE_MODE: Family = Family::gauge(
    "pg_settings_archive_mode",
    "Setting archive_mode (pg_settings): 1 for on or always, 0 for off.",
    &[],
);
static STATEMENT_TIMEOUT: Family = Family::gauge("pg_settings_statement_timeout_seconds", "Setting statement_timeout (pg_settings), in seconds, 0 disabled (the server's value, not the exporter's own session limit).", &[]);
static IDLE_XACT_TIMEOUT: Family = Family::gauge("pg_settings_idle_in_transaction_session_timeout_seconds", "Setting idle_in_transaction_session_timeout (pg_settings), in seconds, 0 disabled (the server's value, not the exporter's own session limit).", &[]);
static LOCK_TIMEOUT: Family = Family::gauge("pg_settings_lock_timeout_seconds", "Setting lock_timeout (pg_settings), in seconds, 0 disabled (the server's value, not the exporter's own session limit).", &[]);
static TRACK_COUNTS: Family = Family::gauge(
    "pg_settings_track_counts",
    "Setting track_counts (pg_settings): 1 on, 0 off. Autovacuum needs it on.",
    &[],
);

static WAL_LEVEL: Family = Family::gauge(
    "pg_settings_wal_level_info",
    "Always 1; the wal_level label is the setting's value (pg_settings).",
    &["wal_level"],
);
static PENDING_RESTART: Family = Family::gauge(
    "pg_settings_pending_restart",
    "Settings changed in the configuration that take effect only after a server restart (pg_settings.pending_restart).",
    &[],
);

/// Setting name → its family and dimension.
static SETTINGS: &[(&str, &Family, Dim)] = &[
    ("autovacuum", &AUTOVACUUM, Dim::Plain),
    ("autovacuum_max_workers", &AV_MAX_WORKERS, Dim::Plain),
    ("autovacuum_naptime", &AV_NAPTIME, Dim::Seconds),
    ("autovacuum_vacuum_threshold", &AV_VAC_THRESHOLD, Dim::Plain),
    ("autovacuum_analyze_threshold", &AV_ANA_THRESHOLD, Dim::Plain),
    ("autovacuum_vacuum_scale_factor", &AV_VAC_SCALE, Dim::Plain),
    ("autovacuum_analyze_scale_factor", &AV_ANA_SCALE, Dim::Plain),
    (
        "autovacuum_vacuum_insert_threshold",
        &AV_INS_THRESHOLD,
        Dim::Plain,
    ),
    ("autovacuum_vacuum_insert_scale_factor", &AV_INS_SCALE, Dim::Plain),
    (
        "autovacuum_vacuum_max_threshold",
        &AV_VAC_MAX_THRESHOLD,
        Dim::Plain,
    ),
    ("autovacuum_freeze_max_age", &AV_FREEZE_MAX_AGE, Dim::Plain),
    (
        "autovacuum_multixact_freeze_max_age",
        &AV_MXID_FREEZE_MAX_AGE,
        Dim::Plain,
    ),
    ("autovacuum_vacuum_cost_delay", &AV_COST_DELAY, Dim::Seconds),
    ("autovacuum_vacuum_cost_limit", &AV_COST_LIMIT, Dim::Plain),
    ("vacuum_cost_delay", &VAC_COST_DELAY, Dim::Seconds),
    ("vacuum_cost_limit", &VAC_COST_LIMIT, Dim::Plain),
    ("vacuum_freeze_min_age", &VAC_FREEZE_MIN_AGE, Dim::Plain),
    ("vacuum_freeze_table_age", &VAC_FREEZE_TABLE_AGE, Dim::Plain),
    (
        "vacuum_multixact_freeze_min_age",
        &VAC_MXID_FREEZE_MIN_AGE,
        Dim::Plain,
    ),
    (
        "vacuum_multixact_freeze_table_age",
        &VAC_MXID_FREEZE_TABLE_AGE,
        Dim::Plain,
    ),
    ("vacuum_failsafe_age", &VAC_FAILSAFE_AGE, Dim::Plain),
    (
        "vacuum_multixact_failsafe_age",
        &VAC_MXID_FAILSAFE_AGE,
        Dim::Plain,
    ),
    ("max_connections", &MAX_CONNECTIONS, Dim::Plain),
    ("superuser_reserved_connections", &SU_RESERVED, Dim::Plain),
    ("shared_buffers", &SHARED_BUFFERS, Dim::Bytes),
    ("work_mem", &WORK_MEM, Dim::Bytes),
    ("maintenance_work_mem", &MAINT_WORK_MEM, Dim::Bytes),
    ("autovacuum_work_mem", &AV_WORK_MEM, Dim::Bytes),
    ("max_wal_size", &MAX_WAL_SIZE, Dim::Bytes),
    ("min_wal_size", &MIN_WAL_SIZE, Dim::Bytes),
    ("checkpoint_timeout", &CHECKPOINT_TIMEOUT, Dim::Seconds),
    ("archive_mode", &ARCHIVE_MODE, Dim::Plain),
    ("statement_timeout", &STATEMENT_TIMEOUT, Dim::Seconds),
    (
        "idle_in_transaction_session_timeout",
        &IDLE_XACT_TIMEOUT,
        Dim::Seconds,
    ),
    ("lock_timeout", &LOCK_TIMEOUT, Dim::Seconds),
    ("track_counts", &TRACK_COUNTS, Dim::Plain),
];

static FAMILIES: &[&Family] = &[
    &AUTOVACUUM,
    &AV_MAX_WORKERS,
    &AV_NAPTIME,
    &AV_VAC_THRESHOLD,
    &AV_ANA_THRESHOLD,
    &AV_VAC_SCALE,
    &AV_ANA_SCALE,
    &AV_INS_THRESHOLD,
    &AV_INS_SCALE,
    &AV_VAC_MAX_THRESHOLD,
    &AV_FREEZE_MAX_AGE,
    &AV_MXID_FREEZE_MAX_AGE,
    &AV_COST_DELAY,
    &AV_COST_LIMIT,
    &VAC_COST_DELAY,
    &VAC_COST_LIMIT,
    &VAC_FREEZE_MIN_AGE,
    &VAC_FREEZE_TABLE_AGE,
    &VAC_MXID_FREEZE_MIN_AGE,
    &VAC_MXID_FREEZE_TABLE_AGE,
    &VAC_FAILSAFE_AGE,
    &VAC_MXID_FAILSAFE_AGE,
    &MAX_CONNECTIONS,
    &SU_RESERVED,
    &SHARED_BUFFERS,
    &WORK_MEM,
    &MAINT_WORK_MEM,
    &AV_WORK_MEM,
    &MAX_WAL_SIZE,
    &MIN_WAL_SIZE,
    &CHECKPOINT_TIMEOUT,
    &ARCHIVE_MODE,
    &WAL_LEVEL,
    &STATEMENT_TIMEOUT,
    &IDLE_XACT_TIMEOUT,
    &LOCK_TIMEOUT,
    &TRACK_COUNTS,
    &PENDING_RESTART,
];

/// What `settings` is, once (see `Meta`).
const META: Meta = Meta {
    name: "settings",
    description:
        "Autovacuum, memory, WAL, checkpoint and timeout settings in base units; settings pending a restart.",
    scope: Scope::Cluster,
    families: FAMILIES,
    min_major: MIN_SUPPORTED_MAJOR,
    default_enabled: true,
};

pub struct Settings;

impl Collector for Settings {
    fn meta(&self) -> &'static Meta {
        &META
    }
    /// Settings change by a reload or restart, rarely: cached
    /// (`PGMAINT_SETTINGS_CACHE_SECONDS`, default 60 s; 0 reads them every scrape).
    fn cache_ttl(&self, config: &Config) -> Duration {
        config.settings_cache
    }
    fn source(&self, _ctx: &Ctx) -> Source {
        Source::Sql(vec![Query::new("settings", SETTINGS_SQL)])
    }
    fn map(&self, _ctx: &Ctx, input: &Fetched, out: &mut Sink) -> Result<(), CollectError> {
        let mut pending = 0;
        for row in input.rows("settings")? {
            // pg_settings.pending_restart is never NULL.
            if row.try_get::<_, bool>(5)? {
                pending += 1;
            }
            let (name, value, unit, vartype, source) = (
                text(row, 0)?,
                text(row, 1)?,
                text(row, 2)?,
                text(row, 3)?,
                text(row, 4)?,
            );
            if name == "wal_level" {
                out.gauge(&WAL_LEVEL, &[&value], 1.0);
                continue;
            }
            // Our own connection options, not the server's setting.
            if source == "client" {
                continue;
            }
            let Some((_, family, dim)) = SETTINGS.iter().find(|(n, _, _)| *n == name) else {
                continue;
            };
            let v = convert(&value, &unit, &vartype, *dim)
                .map_err(|e| CollectError::Other(format!("setting {name}: {e}")))?;
            out.gauge(family, &[], v);
        }
        out.gauge(&PENDING_RESTART, &[], pending as f64);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_setting_is_queried_and_has_a_family() {
        let list = &SETTINGS_SQL[SETTINGS_SQL.find('{').unwrap() + 1..SETTINGS_SQL.find('}').unwrap()];
        let mut queried: Vec<&str> = list.split(',').map(str::trim).collect();
        let mut known: Vec<&str> = SETTINGS.iter().map(|(n, _, _)| *n).chain(["wal_level"]).collect();
        queried.sort_unstable();
        known.sort_unstable();
        assert_eq!(queried, known);
        for (name, family, _) in SETTINGS {
            assert!(FAMILIES.iter().any(|f| std::ptr::eq(*f, *family)), "{name}");
        }
        assert_eq!(FAMILIES.len(), SETTINGS.len() + 2);
    }
}
