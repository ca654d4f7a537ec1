//! `PGMAINT_*` environment variables → a typed, validated `Config`.
//!
//! envy reads every variable as text; each is then parsed here so that a bad
//! value stops the exporter with one line naming the variable, the value
//! (passwords redacted) and what is accepted. See `docs/configuration.md`.
//!
//! Config is the bottom layer: it reads raw settings and imports none of
//! the parts that use them (only `dsn` and `error`). Files that belong to a
//! part are named here and loaded and checked by that part at start
//! (`PGMAINT_WEB_CONFIG_FILE` by `web`, `PGMAINT_QUERIES_FILE` by
//! `custom_queries`, `PGMAINT_CONFIG_FILE` by `probe`), and so are the
//! collector names of `PGMAINT_COLLECTORS` (`collectors::enabled`).
//!
//! - `sections.rs` — `from_vars` one section at a time (connection, HTTP,
//!   timeouts, logging, what is watched, host, collectors, `/probe`).
//! - `values.rs` — durations, counts, booleans, regex lists.
//! - `backup.rs` — `PGMAINT_BACKUP_DIRS`; `collectors.rs` — `PGMAINT_COLLECTORS`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use regex::Regex;
use serde::Deserialize;

use crate::dsn::Dsn;
use crate::error::ConfigError;

mod backup;
mod collectors;
mod sections;
mod values;

pub use backup::BackupDir;
pub use collectors::CollectorChoice;
pub use values::{describe_max, parse_duration, utf8_vars, MAX_COUNT, MAX_DURATION, MAX_PG_TIMEOUT};

/// Variables as text, exactly as envy finds them (prefix `PGMAINT_` removed).
#[derive(Debug, Default, Deserialize)]
struct Raw {
    database_url: Option<String>,
    database_password_file: Option<String>,
    listen_address: Option<String>,
    collectors: Option<String>,
    statement_timeout: Option<String>,
    background_statement_timeout: Option<String>,
    lock_timeout: Option<String>,
    scrape_timeout: Option<String>,
    min_scrape_interval: Option<String>,
    long_query_seconds: Option<String>,
    log_format: Option<String>,
    log_level: Option<String>,
    max_connections: Option<String>,
    include_databases: Option<String>,
    exclude_databases: Option<String>,
    database_refresh_interval: Option<String>,
    include_schemas: Option<String>,
    exclude_schemas: Option<String>,
    exclude_tables: Option<String>,
    max_tables_per_database: Option<String>,
    bloat_cache_seconds: Option<String>,
    size_cache_seconds: Option<String>,
    settings_cache_seconds: Option<String>,
    bloat_exact: Option<String>,
    statements_limit: Option<String>,
    statements_query_text: Option<String>,
    web_config_file: Option<String>,
    backup_dirs: Option<String>,
    pg_restore: Option<String>,
    backup_verify: Option<String>,
    backup_verify_timeout: Option<String>,
    backup_min_age: Option<String>,
    wal_archive_dir: Option<String>,
    queries_file: Option<String>,
    config_file: Option<String>,
    max_targets: Option<String>,
    target_idle_timeout: Option<String>,
    max_connections_total: Option<String>,
    http_max_connections: Option<String>,
    http_read_header_timeout: Option<String>,
    http_idle_timeout: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// The exporter's settings. `Debug` shows the DSN redacted.
#[derive(Debug, Clone)]
pub struct Config {
    pub dsn: Dsn,
    pub listen_address: SocketAddr,
    /// `PGMAINT_COLLECTORS` (names checked by `collectors::enabled`).
    pub collectors: CollectorChoice,
    pub statement_timeout: Duration,
    /// statement_timeout of cached collectors' refreshes, which run off the scrape path.
    pub background_statement_timeout: Duration,
    pub lock_timeout: Duration,
    pub scrape_timeout: Duration,
    /// A scrape result younger than this is served again instead of querying.
    pub min_scrape_interval: Duration,
    pub long_query_seconds: f64,
    pub log_format: LogFormat,
    pub log_level: String,
    pub max_connections: usize,
    pub include_databases: Vec<Regex>,
    pub exclude_databases: Vec<Regex>,
    pub database_refresh_interval: Duration,
    pub include_schemas: Vec<Regex>,
    pub exclude_schemas: Vec<Regex>,
    pub exclude_tables: Vec<Regex>,
    pub max_tables_per_database: usize,
    pub bloat_cache: Duration,
    /// How long table/index sizes are reused (`sizes` collector).
    pub size_cache: Duration,
    /// How long server settings are reused (`settings` collector).
    pub settings_cache: Duration,
    pub bloat_exact: bool,
    pub statements_limit: usize,
    pub statements_query_text: bool,
    /// `PGMAINT_WEB_CONFIG_FILE`, when set: TLS and basic auth for the
    /// HTTP endpoint, loaded and checked at start by `web::from_config`.
    pub web_config_file: Option<PathBuf>,
    /// Backup directories with their globs (`backup` collector).
    pub backup_dirs: Vec<BackupDir>,
    /// `PGMAINT_PG_RESTORE`: path or name of pg_restore; `None`: search.
    pub pg_restore: Option<String>,
    pub backup_verify: bool,
    pub backup_verify_timeout: Duration,
    /// Backups modified more recently are still being written: ignored.
    pub backup_min_age: Duration,
    /// `PGMAINT_WAL_ARCHIVE_DIR` (`wal_archive` collector).
    pub wal_archive_dir: Option<String>,
    /// `PGMAINT_QUERIES_FILE`, when set: loaded and checked at start by
    /// `custom_queries::from_config`.
    pub queries_file: Option<String>,
    /// `PGMAINT_CONFIG_FILE`, when set: auth modules for `/probe`, loaded
    /// and checked at start by `probe::auth_modules`.
    pub config_file: Option<String>,
    /// `PGMAINT_MAX_TARGETS`: `/probe` targets held at once.
    pub max_targets: usize,
    /// `PGMAINT_TARGET_IDLE_TIMEOUT`: a target not probed for this long is closed.
    pub target_idle_timeout: Duration,
    /// `PGMAINT_MAX_CONNECTIONS_TOTAL`: open connections across all `/probe` targets.
    pub max_connections_total: usize,
    /// `PGMAINT_HTTP_MAX_CONNECTIONS`: HTTP connections open at once (see `http.rs`).
    pub http_max_connections: usize,
    /// `PGMAINT_HTTP_READ_HEADER_TIMEOUT`: a request's headers (or a TLS
    /// handshake) must be complete this long after its first byte.
    pub http_read_header_timeout: Duration,
    /// `PGMAINT_HTTP_IDLE_TIMEOUT`: a connection without a request or bytes this long is closed.
    pub http_idle_timeout: Duration,
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Config, ConfigError> {
        Self::from_vars(utf8_vars(std::env::vars_os())?)
    }

    /// Parses the given variables (tests pass their own), one section at a
    /// time (`sections.rs`); the first bad variable is the error.
    pub fn from_vars(vars: impl IntoIterator<Item = (String, String)>) -> Result<Config, ConfigError> {
        let vars: Vec<(String, String)> = vars.into_iter().collect();
        let raw: Raw = envy::prefixed("PGMAINT_")
            .from_iter(vars.iter().cloned())
            .map_err(|e| ConfigError::Env(e.to_string()))?;
        let dsn = sections::connection(&raw, &vars)?;
        let http = sections::http(&raw)?;
        let timeouts = sections::timeouts(&raw)?;
        let (log_format, log_level) = sections::logging(&raw)?;
        let watched = sections::watched(&raw)?;
        let host = sections::host(&raw)?;
        let collectors = sections::collectors(&raw, &host)?;
        let probe = sections::probe(&raw)?;
        Ok(Config {
            dsn,
            listen_address: http.listen_address,
            collectors: collectors.choice,
            statement_timeout: timeouts.statement,
            background_statement_timeout: timeouts.background_statement,
            lock_timeout: timeouts.lock,
            scrape_timeout: timeouts.scrape,
            min_scrape_interval: timeouts.min_scrape_interval,
            long_query_seconds: collectors.long_query_seconds,
            log_format,
            log_level,
            max_connections: watched.max_connections,
            include_databases: watched.include_databases,
            exclude_databases: watched.exclude_databases,
            database_refresh_interval: watched.database_refresh_interval,
            include_schemas: watched.include_schemas,
            exclude_schemas: watched.exclude_schemas,
            exclude_tables: watched.exclude_tables,
            max_tables_per_database: watched.max_tables_per_database,
            bloat_cache: collectors.bloat_cache,
            size_cache: collectors.size_cache,
            settings_cache: collectors.settings_cache,
            bloat_exact: collectors.bloat_exact,
            statements_limit: collectors.statements_limit,
            statements_query_text: collectors.statements_query_text,
            web_config_file: http.web_config_file,
            backup_dirs: host.backup_dirs,
            pg_restore: host.pg_restore,
            backup_verify: host.backup_verify,
            backup_verify_timeout: host.backup_verify_timeout,
            backup_min_age: host.backup_min_age,
            wal_archive_dir: host.wal_archive_dir,
            queries_file: collectors.queries_file,
            config_file: probe.config_file,
            max_targets: probe.max_targets,
            target_idle_timeout: probe.target_idle_timeout,
            max_connections_total: probe.max_connections_total,
            http_max_connections: http.max_connections,
            http_read_header_timeout: http.read_header_timeout,
            http_idle_timeout: http.idle_timeout,
        })
    }

    /// The database named in the DSN: cluster-wide collectors run there.
    pub fn main_database(&self) -> String {
        self.dsn.dbname_or_default()
    }

    /// Include/exclude rules for databases (full-match regexes).
    pub fn database_wanted(&self, datname: &str) -> bool {
        (self.include_databases.is_empty() || self.include_databases.iter().any(|r| r.is_match(datname)))
            && !self.exclude_databases.iter().any(|r| r.is_match(datname))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        if !pairs
            .iter()
            .any(|(k, _)| k.contains("DATABASE_URL") || *k == "DATA_SOURCE_NAME")
        {
            v.push(("PGMAINT_DATABASE_URL".into(), "postgresql://u:pw@h/db".into()));
        }
        v
    }

    #[test]
    fn defaults() {
        let c = Config::from_vars(vars(&[])).unwrap();
        assert_eq!(c.listen_address.to_string(), "0.0.0.0:9188");
        assert_eq!(c.statement_timeout, Duration::from_secs(5));
        assert_eq!(c.lock_timeout, Duration::from_secs(1));
        assert_eq!(c.max_connections, 4);
        assert_eq!(c.main_database(), "db");
        assert_eq!(c.collectors, CollectorChoice::Changes(vec![]));
        assert!(!format!("{c:?}").contains("pw@"));
    }

    #[test]
    fn data_source_name_is_accepted() {
        let c = Config::from_vars(vars(&[("DATA_SOURCE_NAME", "host=x dbname=y")])).unwrap();
        assert_eq!(c.main_database(), "y");
    }

    #[test]
    fn bad_values_name_the_variable() {
        let e = Config::from_vars(vars(&[("PGMAINT_STATEMENT_TIMEOUT", "banana")])).unwrap_err();
        assert_eq!(
            e.to_string(),
            "PGMAINT_STATEMENT_TIMEOUT: \"banana\" is not a duration (e.g. 5s, 500ms, 2m, 1h)"
        );
        let e = Config::from_vars(vars(&[(
            "PGMAINT_DATABASE_URL",
            "postgresql://u:hunter2@h:bad/db",
        )]))
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with("PGMAINT_DATABASE_URL:") && !e.contains("hunter2"),
            "{e}"
        );
        let e = Config::from_vars(vars(&[("PGMAINT_MAX_CONNECTIONS", "0")])).unwrap_err();
        assert!(e.to_string().contains("PGMAINT_MAX_CONNECTIONS"));
    }

    #[test]
    fn backup_dirs_switch_their_collectors_on() {
        let c = Config::from_vars(vars(&[(
            "PGMAINT_BACKUP_DIRS",
            "/var/backups/pg:backup_*, *.dump ; /mnt/nas",
        )]))
        .unwrap();
        assert_eq!(
            c.backup_dirs,
            [
                BackupDir {
                    dir: "/var/backups/pg".into(),
                    globs: vec!["backup_*".into(), "*.dump".into()],
                },
                BackupDir {
                    dir: "/mnt/nas".into(),
                    globs: vec!["backup_*".into(), "*.dump".into(), "*.sql".into(), "*.tar".into()],
                },
            ]
        );
        assert_eq!(
            c.collectors,
            CollectorChoice::Changes(vec![(true, "backup".into())])
        );
        assert!(c.backup_verify);
        let c = Config::from_vars(vars(&[
            ("PGMAINT_WAL_ARCHIVE_DIR", "/archive"),
            ("PGMAINT_COLLECTORS", "activity"),
        ]))
        .unwrap();
        assert_eq!(
            c.collectors,
            CollectorChoice::Exactly(vec!["activity".into()]),
            "a plain list is exactly these"
        );
        let e = Config::from_vars(vars(&[("PGMAINT_BACKUP_DIRS", "backups")])).unwrap_err();
        assert!(e
            .to_string()
            .starts_with("PGMAINT_BACKUP_DIRS: \"backups\" is not an absolute directory"));
        let e = Config::from_vars(vars(&[("PGMAINT_BACKUP_DIRS", "/b:backup_[0-9")])).unwrap_err();
        assert!(e.to_string().contains("file-name globs made of text"), "{e}");
        let e = Config::from_vars(vars(&[("PGMAINT_BACKUP_VERIFY", "maybe")])).unwrap_err();
        assert!(e.to_string().starts_with("PGMAINT_BACKUP_VERIFY:"));
    }

    #[test]
    fn database_filters_match_whole_names() {
        let c = Config::from_vars(vars(&[
            ("PGMAINT_INCLUDE_DATABASES", "app.*,postgres"),
            ("PGMAINT_EXCLUDE_DATABASES", "app_tmp"),
        ]))
        .unwrap();
        assert!(c.database_wanted("app1") && c.database_wanted("postgres"));
        assert!(!c.database_wanted("app_tmp") && !c.database_wanted("mypostgres"));
    }
}
