//! `PGMAINT_*` environment variables → a typed, validated `Config`.
//!
//! envy reads every variable as text; each is then parsed here so that a bad
//! value stops the exporter with one line naming the variable, the value
//! (passwords redacted) and what is accepted. See `docs/configuration.md`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use regex::Regex;
use serde::Deserialize;

use crate::dsn::{self, Dsn};
use crate::error::ConfigError;
use crate::web::WebConfig;

mod backup;
mod collectors;
mod values;

use backup::parse_backup_dirs;
pub use backup::BackupDir;
use collectors::parse_collectors;
pub use collectors::CollectorChoice;
use values::{boolean, count, count_max, duration, duration_max, number, regexes, MAX_PG_CONNECTIONS};
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
    /// `PGMAINT_WEB_CONFIG_FILE`, when set.
    pub web_config_file: Option<PathBuf>,
    /// Its checked content: TLS and basic auth for the HTTP endpoint.
    pub web_config: Option<Arc<WebConfig>>,
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

    /// Parses the given variables (tests pass their own).
    pub fn from_vars(vars: impl IntoIterator<Item = (String, String)>) -> Result<Config, ConfigError> {
        let vars: Vec<(String, String)> = vars.into_iter().collect();
        let raw: Raw = envy::prefixed("PGMAINT_")
            .from_iter(vars.iter().cloned())
            .map_err(|e| ConfigError::Env(e.to_string()))?;
        let dsn_var = |name: &str| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());

        let (dsn_name, dsn_raw) = match (&raw.database_url, dsn_var("DATA_SOURCE_NAME")) {
            (Some(u), _) => ("PGMAINT_DATABASE_URL", u.clone()),
            (None, Some(u)) => ("DATA_SOURCE_NAME", u),
            (None, None) => return Err(ConfigError::MissingDatabaseUrl),
        };
        let mut dsn = Dsn::parse(&dsn_raw).map_err(|reason| ConfigError::Bad {
            var: dsn_name,
            reason: match dsn_raw.trim() {
                "" => reason,
                _ => format!("{reason} in {}", dsn::redact(&dsn_raw, None)),
            },
        })?;
        if let Some(path) = &raw.database_password_file {
            let pw = std::fs::read_to_string(path).map_err(|e| ConfigError::Bad {
                var: "PGMAINT_DATABASE_PASSWORD_FILE",
                reason: format!("cannot read {path:?}: {e}"),
            })?;
            dsn.password = Some(pw.trim_end_matches(['\n', '\r']).to_string());
        }

        let listen = raw.listen_address.as_deref().unwrap_or("0.0.0.0:9188");
        let listen_address = listen.parse().map_err(|_| ConfigError::Invalid {
            var: "PGMAINT_LISTEN_ADDRESS",
            value: listen.into(),
            expected: "an address:port such as 0.0.0.0:9188 or 127.0.0.1:9188".into(),
        })?;

        let statement_timeout = duration_max(
            "PGMAINT_STATEMENT_TIMEOUT",
            &raw.statement_timeout,
            "5s",
            MAX_PG_TIMEOUT,
        )?;
        let lock_timeout = duration_max("PGMAINT_LOCK_TIMEOUT", &raw.lock_timeout, "1s", MAX_PG_TIMEOUT)?;
        let background_statement_timeout = duration_max(
            "PGMAINT_BACKGROUND_STATEMENT_TIMEOUT",
            &raw.background_statement_timeout,
            "60s",
            MAX_PG_TIMEOUT,
        )?;
        let scrape_timeout = duration("PGMAINT_SCRAPE_TIMEOUT", &raw.scrape_timeout, "10s")?;
        for (var, d) in [
            ("PGMAINT_STATEMENT_TIMEOUT", statement_timeout),
            ("PGMAINT_LOCK_TIMEOUT", lock_timeout),
            (
                "PGMAINT_BACKGROUND_STATEMENT_TIMEOUT",
                background_statement_timeout,
            ),
            ("PGMAINT_SCRAPE_TIMEOUT", scrape_timeout),
        ] {
            if d < Duration::from_millis(1) {
                return Err(ConfigError::Bad {
                    var,
                    reason: "must be at least 1ms".into(),
                });
            }
        }

        let http_read_header_timeout = duration(
            "PGMAINT_HTTP_READ_HEADER_TIMEOUT",
            &raw.http_read_header_timeout,
            "10s",
        )?;
        let http_idle_timeout = duration("PGMAINT_HTTP_IDLE_TIMEOUT", &raw.http_idle_timeout, "2m")?;
        for (var, d) in [
            ("PGMAINT_HTTP_READ_HEADER_TIMEOUT", http_read_header_timeout),
            ("PGMAINT_HTTP_IDLE_TIMEOUT", http_idle_timeout),
        ] {
            if d < Duration::from_millis(100) {
                return Err(ConfigError::Bad {
                    var,
                    reason: "must be at least 100ms".into(),
                });
            }
        }

        let log_format = match raw.log_format.as_deref().unwrap_or("text") {
            "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            other => {
                return Err(ConfigError::Invalid {
                    var: "PGMAINT_LOG_FORMAT",
                    value: other.into(),
                    expected: "one of text, json".into(),
                })
            }
        };
        let log_level = raw.log_level.clone().unwrap_or_else(|| "info".into());
        if !["error", "warn", "info", "debug", "trace"].contains(&log_level.as_str()) {
            return Err(ConfigError::Invalid {
                var: "PGMAINT_LOG_LEVEL",
                value: log_level,
                expected: "one of error, warn, info, debug, trace".into(),
            });
        }

        let web_config_file = raw
            .web_config_file
            .as_deref()
            .filter(|p| !p.is_empty())
            .map(PathBuf::from);
        let web_config = match &web_config_file {
            None => None,
            Some(path) => Some(Arc::new(WebConfig::load(path).map_err(|e| ConfigError::Bad {
                var: "PGMAINT_WEB_CONFIG_FILE",
                reason: e.to_string(),
            })?)),
        };
        let backup_dirs = parse_backup_dirs(raw.backup_dirs.as_deref())?;
        let wal_archive_dir = raw
            .wal_archive_dir
            .as_deref()
            .map(str::trim)
            .filter(|d| !d.is_empty())
            .map(String::from);
        let mut collectors = parse_collectors(raw.collectors.as_deref())?;
        for (on, name) in [
            (!backup_dirs.is_empty(), "backup"),
            (wal_archive_dir.is_some(), "wal_archive"),
        ] {
            if on {
                collectors.switch_on_host(name);
            }
        }
        let file = |v: &Option<String>| {
            v.as_deref()
                .map(str::trim)
                .filter(|f| !f.is_empty())
                .map(String::from)
        };
        let queries_file = file(&raw.queries_file);
        let config_file = file(&raw.config_file);

        Ok(Config {
            dsn,
            listen_address,
            collectors,
            statement_timeout,
            background_statement_timeout,
            lock_timeout,
            scrape_timeout,
            min_scrape_interval: duration("PGMAINT_MIN_SCRAPE_INTERVAL", &raw.min_scrape_interval, "1s")?,
            long_query_seconds: number("PGMAINT_LONG_QUERY_SECONDS", &raw.long_query_seconds, 300.0)?,
            log_format,
            log_level,
            max_connections: count_max(
                "PGMAINT_MAX_CONNECTIONS",
                &raw.max_connections,
                4,
                1,
                MAX_PG_CONNECTIONS,
            )?,
            include_databases: regexes("PGMAINT_INCLUDE_DATABASES", &raw.include_databases)?,
            exclude_databases: regexes("PGMAINT_EXCLUDE_DATABASES", &raw.exclude_databases)?,
            database_refresh_interval: duration(
                "PGMAINT_DATABASE_REFRESH_INTERVAL",
                &raw.database_refresh_interval,
                "60s",
            )?,
            include_schemas: regexes("PGMAINT_INCLUDE_SCHEMAS", &raw.include_schemas)?,
            exclude_schemas: regexes("PGMAINT_EXCLUDE_SCHEMAS", &raw.exclude_schemas)?,
            exclude_tables: regexes("PGMAINT_EXCLUDE_TABLES", &raw.exclude_tables)?,
            max_tables_per_database: count(
                "PGMAINT_MAX_TABLES_PER_DATABASE",
                &raw.max_tables_per_database,
                1000,
                1,
            )?,
            bloat_cache: Duration::from_secs(count(
                "PGMAINT_BLOAT_CACHE_SECONDS",
                &raw.bloat_cache_seconds,
                300,
                0,
            )? as u64),
            size_cache: Duration::from_secs(count(
                "PGMAINT_SIZE_CACHE_SECONDS",
                &raw.size_cache_seconds,
                60,
                0,
            )? as u64),
            settings_cache: Duration::from_secs(count(
                "PGMAINT_SETTINGS_CACHE_SECONDS",
                &raw.settings_cache_seconds,
                60,
                0,
            )? as u64),
            bloat_exact: boolean("PGMAINT_BLOAT_EXACT", &raw.bloat_exact, false)?,
            statements_limit: count("PGMAINT_STATEMENTS_LIMIT", &raw.statements_limit, 50, 1)?,
            statements_query_text: boolean(
                "PGMAINT_STATEMENTS_QUERY_TEXT",
                &raw.statements_query_text,
                false,
            )?,
            web_config_file,
            web_config,
            backup_dirs,
            pg_restore: raw
                .pg_restore
                .as_deref()
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(String::from),
            backup_verify: boolean("PGMAINT_BACKUP_VERIFY", &raw.backup_verify, true)?,
            backup_verify_timeout: duration(
                "PGMAINT_BACKUP_VERIFY_TIMEOUT",
                &raw.backup_verify_timeout,
                "10m",
            )?,
            backup_min_age: duration("PGMAINT_BACKUP_MIN_AGE", &raw.backup_min_age, "60s")?,
            wal_archive_dir,
            queries_file,
            config_file,
            max_targets: count("PGMAINT_MAX_TARGETS", &raw.max_targets, 100, 1)?,
            target_idle_timeout: duration("PGMAINT_TARGET_IDLE_TIMEOUT", &raw.target_idle_timeout, "10m")?,
            max_connections_total: count_max(
                "PGMAINT_MAX_CONNECTIONS_TOTAL",
                &raw.max_connections_total,
                32,
                1,
                MAX_PG_CONNECTIONS,
            )?,
            http_max_connections: count_max(
                "PGMAINT_HTTP_MAX_CONNECTIONS",
                &raw.http_max_connections,
                100,
                1,
                100_000,
            )?,
            http_read_header_timeout,
            http_idle_timeout,
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
