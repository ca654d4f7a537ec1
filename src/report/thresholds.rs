//! The report's thresholds: the defaults of `alerts/pgmaint.rules.yml`, in
//! one place. A finding at or past an alert's threshold gets that alert's
//! severity; the few "info" findings below them are listed as such.
//!
//! `tests` below parses the rules file and checks that each number here
//! appears in its alert's expression, so the two cannot drift apart. Change
//! a threshold in both places (docs/report.md says so).

/// Dead tuples past the vacuum trigger only count from this many
/// (PostgresTableVacuumOverdue, PostgresTableAutovacuumDisabled).
pub const VACUUM_MIN_DEAD_TUPLES: f64 = 10000.0;
/// Autovacuum is behind when dead tuples exceed this multiple of the trigger
/// (PostgresTableVacuumOverdue).
pub const VACUUM_OVERDUE_TRIGGER_FACTOR: f64 = 2.0;
/// A changing table not vacuumed/analyzed for this long
/// (PostgresTableNotVacuumed, PostgresTableNotAnalyzed): 7 days.
pub const NOT_MAINTAINED_SECONDS: f64 = 7.0 * 86400.0;
/// Database or table xid age more than this share of 2^31 (about 215
/// million) past its autovacuum_freeze_max_age: the forced vacuums are not
/// finishing (PostgresXidAgeHigh, PostgresTableXidAgeHigh).
pub const XID_AGE_MARGIN_SHARE: f64 = 0.1;
/// PostgreSQL's default autovacuum_freeze_max_age, when the setting is unknown.
pub const DEFAULT_FREEZE_MAX_AGE: f64 = 200_000_000.0;
/// Wraparound is near past the effective vacuum_failsafe_age, which
/// PostgreSQL never lets below this multiple of autovacuum_freeze_max_age
/// (PostgresXidWraparoundImminent): critical …
pub const FAILSAFE_FREEZE_FACTOR: f64 = 1.05;
/// … and PostgreSQL's default vacuum_failsafe_age, when the setting is unknown.
pub const DEFAULT_FAILSAFE_AGE: f64 = 1_600_000_000.0;
/// Unused indexes are a warning from this size (PostgresUnusedIndex) …
pub const UNUSED_INDEX_MIN_BYTES: f64 = 100.0 * 1024.0 * 1024.0;
/// … when the statistics are at least this old (7 days).
pub const UNUSED_INDEX_MIN_STATS_AGE_SECONDS: f64 = 7.0 * 86400.0;
/// Bloat: wasted bytes and share (PostgresTableBloat, PostgresIndexBloat).
pub const BLOAT_MIN_BYTES: f64 = 1024.0 * 1024.0 * 1024.0;
pub const BLOAT_MIN_RATIO: f64 = 0.5;
/// Idle in transaction longer than this is a warning
/// (PostgresIdleInTransaction); shorter, past PGMAINT_LONG_QUERY_SECONDS, info.
pub const IDLE_IN_TRANSACTION_SECONDS: f64 = 600.0;
/// Share of the connection slots ordinary roles can use
/// (PostgresConnectionsHigh: warning, PostgresConnectionsExhausted: critical).
pub const CONNECTIONS_WARNING_RATIO: f64 = 0.8;
pub const CONNECTIONS_CRITICAL_RATIO: f64 = 0.95;
/// Newest backup older than this (PostgresBackupTooOld): 26 hours.
pub const BACKUP_MAX_AGE_SECONDS: f64 = 26.0 * 3600.0;
/// An inactive replication slot retaining more WAL than this
/// (PostgresReplicationSlotInactive).
pub const SLOT_RETAINED_WAL_BYTES: f64 = 1024.0 * 1024.0 * 1024.0;

/// MultiXact age: the same margin past autovacuum_multixact_freeze_max_age
/// and the same effective failsafe (vacuum_multixact_failsafe_age) as
/// transaction IDs (PostgresMultixactAgeHigh, PostgresMultixactWraparoundImminent);
/// PostgreSQL's default autovacuum_multixact_freeze_max_age when unknown.
pub const DEFAULT_MULTIXACT_FREEZE_MAX_AGE: f64 = 400_000_000.0;
/// An xmin holder (session, prepared transaction, slot) older than this many
/// transactions is a warning (PostgresXminHorizonHeldBack).
pub const XMIN_HOLDER_AGE: f64 = 10_000_000.0;
/// A prepared transaction older than this is a warning
/// (PostgresPreparedTransactionOld); younger, past PGMAINT_LONG_QUERY_SECONDS, info.
pub const PREPARED_XACT_SECONDS: f64 = 3600.0;
/// A sequence's own range used past this share (PostgresSequenceNearExhaustion).
pub const SEQUENCE_USED_RATIO: f64 = 0.8;
/// A sequence-fed integer column's range used past these shares
/// (PostgresIntegerKeyNearExhaustion: warning, …ExhaustionImminent: critical).
pub const INTEGER_KEY_WARNING_RATIO: f64 = 0.8;
pub const INTEGER_KEY_CRITICAL_RATIO: f64 = 0.95;
/// Unused indexes below the alert's size are listed as info only from this
/// size: smaller ones cost next to nothing and would bury the list. No alert.
pub const UNUSED_INDEX_INFO_MIN_BYTES: f64 = 1024.0 * 1024.0;

/// The reloptions the report suggests for a table autovacuum falls behind
/// on: start at 1 % of the rows instead of 20 %, and a cost budget five times
/// the default 200. A table with its own cost limit is left out of the
/// workers' cost balancing, so this is what that table's worker really gets;
/// 1000 speeds it up without letting one table saturate the I/O. The runbook
/// (PostgresTableVacuumOverdue) gives the same line; `tests` below checks it.
pub const HOT_TABLE_RELOPTIONS: &str =
    "autovacuum_vacuum_scale_factor = 0.01, autovacuum_vacuum_cost_limit = 1000";

/// Sent before every `ALTER TABLE` and `REINDEX` the report suggests: a
/// statement waiting for its lock queues every later query on the table
/// behind it; with this it gives up after 5 s instead.
pub const LOCK_TIMEOUT: &str = "SET lock_timeout = '5s';";

/// Each threshold with the alert whose expression holds it, and how the
/// number is written there (for the drift test).
pub const IN_ALERTS: &[(&str, f64, &str)] = &[
    (
        "PostgresTableVacuumOverdue",
        VACUUM_MIN_DEAD_TUPLES,
        "pg_table_dead_tuples > 10000",
    ),
    (
        "PostgresTableVacuumOverdue",
        VACUUM_OVERDUE_TRIGGER_FACTOR,
        "pg_table_dead_tuples > 2 * pg_table_autovacuum_vacuum_trigger_tuples",
    ),
    (
        "PostgresTableAutovacuumDisabled",
        VACUUM_MIN_DEAD_TUPLES,
        "pg_table_dead_tuples > 10000",
    ),
    ("PostgresTableNotVacuumed", NOT_MAINTAINED_SECONDS, "> 7 * 86400"),
    ("PostgresTableNotAnalyzed", NOT_MAINTAINED_SECONDS, "> 7 * 86400"),
    (
        "PostgresXidAgeHigh",
        XID_AGE_MARGIN_SHARE,
        "pg_settings_autovacuum_freeze_max_age + 0.1 * 2^31",
    ),
    (
        "PostgresXidAgeHigh",
        DEFAULT_FREEZE_MAX_AGE,
        "pg_database_frozen_xid_age > 200000000 + 0.1 * 2^31",
    ),
    (
        "PostgresTableXidAgeHigh",
        XID_AGE_MARGIN_SHARE,
        "pg_table_frozen_xid_age > pg_table_autovacuum_freeze_max_age + 0.1 * 2^31",
    ),
    (
        "PostgresXidWraparoundImminent",
        FAILSAFE_FREEZE_FACTOR,
        "or 1.05 * pg_settings_autovacuum_freeze_max_age",
    ),
    (
        "PostgresXidWraparoundImminent",
        DEFAULT_FAILSAFE_AGE,
        "pg_database_frozen_xid_age > 1600000000",
    ),
    (
        "PostgresUnusedIndex",
        UNUSED_INDEX_MIN_BYTES,
        "pg_index_size_bytes > 100 * 1024 * 1024",
    ),
    (
        "PostgresUnusedIndex",
        UNUSED_INDEX_MIN_STATS_AGE_SECONDS,
        "< 7 * 86400",
    ),
    (
        "PostgresTableBloat",
        BLOAT_MIN_BYTES,
        "pg_table_bloat_bytes > 1024 * 1024 * 1024",
    ),
    (
        "PostgresTableBloat",
        BLOAT_MIN_RATIO,
        "pg_table_bloat_ratio > 0.5",
    ),
    (
        "PostgresIndexBloat",
        BLOAT_MIN_BYTES,
        "pg_index_bloat_bytes > 1024 * 1024 * 1024",
    ),
    (
        "PostgresIndexBloat",
        BLOAT_MIN_RATIO,
        "pg_index_bloat_ratio > 0.5",
    ),
    (
        "PostgresIdleInTransaction",
        IDLE_IN_TRANSACTION_SECONDS,
        "pg_activity_idle_in_transaction_max_seconds > 600",
    ),
    ("PostgresConnectionsHigh", CONNECTIONS_WARNING_RATIO, "> 0.8"),
    (
        "PostgresConnectionsExhausted",
        CONNECTIONS_CRITICAL_RATIO,
        "> 0.95",
    ),
    ("PostgresBackupTooOld", BACKUP_MAX_AGE_SECONDS, "> 26 * 3600"),
    (
        "PostgresMultixactAgeHigh",
        XID_AGE_MARGIN_SHARE,
        "pg_settings_autovacuum_multixact_freeze_max_age + 0.1 * 2^31",
    ),
    (
        "PostgresMultixactWraparoundImminent",
        FAILSAFE_FREEZE_FACTOR,
        "or 1.05 * pg_settings_autovacuum_multixact_freeze_max_age",
    ),
    (
        "PostgresMultixactWraparoundImminent",
        DEFAULT_FAILSAFE_AGE,
        "pg_database_min_mxid_age > 1600000000",
    ),
    (
        "PostgresXminHorizonHeldBack",
        XMIN_HOLDER_AGE,
        "pg_xmin_horizon_age > 10000000",
    ),
    (
        "PostgresPreparedTransactionOld",
        PREPARED_XACT_SECONDS,
        "pg_prepared_xacts_oldest_age_seconds > 3600",
    ),
    (
        "PostgresSequenceNearExhaustion",
        SEQUENCE_USED_RATIO,
        "pg_sequence_used_ratio > 0.8",
    ),
    (
        "PostgresIntegerKeyNearExhaustion",
        INTEGER_KEY_WARNING_RATIO,
        "pg_sequence_column_used_ratio > 0.8",
    ),
    (
        "PostgresIntegerKeyExhaustionImminent",
        INTEGER_KEY_CRITICAL_RATIO,
        "pg_sequence_column_used_ratio > 0.95",
    ),
    (
        "PostgresReplicationSlotInactive",
        SLOT_RETAINED_WAL_BYTES,
        "pg_replication_slot_retained_wal_bytes > 1024 * 1024 * 1024",
    ),
];

#[cfg(test)]
mod tests {
    use super::IN_ALERTS;

    /// Evaluates the number in a fragment like `2 * 1024` or `0.4 * 2^31`.
    fn number(fragment: &str) -> f64 {
        fragment
            .split('*')
            .map(|f| {
                let f = f.trim();
                match f.split_once('^') {
                    Some((b, e)) => b.parse::<f64>().unwrap().powf(e.parse().unwrap()),
                    None => f.parse::<f64>().unwrap(),
                }
            })
            .product()
    }

    #[derive(serde::Deserialize)]
    struct RulesFile {
        groups: Vec<RuleGroup>,
    }

    #[derive(serde::Deserialize)]
    struct RuleGroup {
        rules: Vec<Rule>,
    }

    #[derive(serde::Deserialize)]
    struct Rule {
        alert: Option<String>,
        expr: String,
    }

    /// The expression of `alert` in the rules file, white space folded.
    fn expr(rules: &RulesFile, alert: &str) -> String {
        let rule = rules
            .groups
            .iter()
            .flat_map(|g| &g.rules)
            .find(|r| r.alert.as_deref() == Some(alert))
            .unwrap_or_else(|| panic!("no alert {alert} in alerts/pgmaint.rules.yml"));
        rule.expr.split_whitespace().collect::<Vec<_>>().join(" ")
    }

    #[test]
    fn thresholds_match_the_alert_rules() {
        let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/alerts/pgmaint.rules.yml"))
            .unwrap();
        let rules: RulesFile = serde_norway::from_str(&text).unwrap();
        let num = regex::Regex::new(r"[0-9.]+(?:\^[0-9]+)?(?: \* [0-9.]+(?:\^[0-9]+)?)*").unwrap();
        for (alert, value, fragment) in IN_ALERTS {
            let e = expr(&rules, alert);
            assert!(
                e.contains(fragment),
                "{alert}: expression {e:?} has no {fragment:?}"
            );
            // The number written in the fragment is the one in Rust.
            // Whole products (`100 * 1024 * 1024`) and their single factors (`0.4` of `0.4 * 2^31`).
            let written: Vec<f64> = num
                .find_iter(fragment)
                .flat_map(|m| {
                    let whole = number(m.as_str());
                    let factors: Vec<f64> = m.as_str().split('*').map(number).collect();
                    std::iter::once(whole).chain(factors)
                })
                .collect();
            assert!(
                written.iter().any(|w| (w - value).abs() <= value.abs() * 1e-12),
                "{alert}: {fragment:?} says {written:?}, src/report/thresholds.rs says {value}"
            );
        }
        assert!(IN_ALERTS.len() >= 20);
    }

    /// Report and runbook suggest the same reloptions (one source: this file).
    #[test]
    fn runbook_suggests_the_reports_reloptions() {
        for doc in ["docs/runbook.md", "docs/report.md"] {
            let text = std::fs::read_to_string(format!("{}/{doc}", env!("CARGO_MANIFEST_DIR"))).unwrap();
            assert!(
                text.contains(super::HOT_TABLE_RELOPTIONS),
                "{doc} does not suggest {:?}",
                super::HOT_TABLE_RELOPTIONS
            );
            for other in [
                "autovacuum_vacuum_cost_limit = 2000",
                "autovacuum_vacuum_scale_factor = 0.02",
            ] {
                assert!(!text.contains(other), "{doc} still suggests {other}");
            }
        }
    }

    #[test]
    fn numbers_are_read_like_promql() {
        assert_eq!(number("0.4 * 2^31"), 0.4 * 2f64.powi(31));
        assert_eq!(number("100 * 1024 * 1024"), 104857600.0);
    }
}
