//! `from_vars` one section at a time: each function reads its variables
//! from `Raw` and returns them typed, or the first bad one's error.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use regex::Regex;

use super::backup::{parse_backup_dirs, BackupDir};
use super::collectors::{parse_collectors, CollectorChoice};
use super::values::{
    boolean, count, count_max, duration, duration_max, number, regexes, MAX_PG_CONNECTIONS, MAX_PG_TIMEOUT,
};
use super::{LogFormat, Raw};
use crate::dsn::{self, Dsn};
use crate::error::ConfigError;

/// `PGMAINT_DATABASE_URL` (or `DATA_SOURCE_NAME`) and `PGMAINT_DATABASE_PASSWORD_FILE`.
pub(super) fn connection(raw: &Raw, vars: &[(String, String)]) -> Result<Dsn, ConfigError> {
    let data_source_name = vars
        .iter()
        .find(|(k, _)| k == "DATA_SOURCE_NAME")
        .map(|(_, v)| v.clone());
    let (dsn_name, dsn_raw) = match (&raw.database_url, data_source_name) {
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
    Ok(dsn)
}

/// The HTTP endpoint: address, connection limits, `PGMAINT_WEB_CONFIG_FILE`.
pub(super) struct Http {
    pub listen_address: SocketAddr,
    pub max_connections: usize,
    pub read_header_timeout: Duration,
    pub idle_timeout: Duration,
    pub web_config_file: Option<PathBuf>,
}

pub(super) fn http(raw: &Raw) -> Result<Http, ConfigError> {
    let listen = raw.listen_address.as_deref().unwrap_or("0.0.0.0:9188");
    let listen_address = listen.parse().map_err(|_| ConfigError::Invalid {
        var: "PGMAINT_LISTEN_ADDRESS",
        value: listen.into(),
        expected: "an address:port such as 0.0.0.0:9188 or 127.0.0.1:9188".into(),
    })?;
    let read_header_timeout = duration(
        "PGMAINT_HTTP_READ_HEADER_TIMEOUT",
        &raw.http_read_header_timeout,
        "10s",
    )?;
    let idle_timeout = duration("PGMAINT_HTTP_IDLE_TIMEOUT", &raw.http_idle_timeout, "2m")?;
    for (var, d) in [
        ("PGMAINT_HTTP_READ_HEADER_TIMEOUT", read_header_timeout),
        ("PGMAINT_HTTP_IDLE_TIMEOUT", idle_timeout),
    ] {
        if d < Duration::from_millis(100) {
            return Err(ConfigError::Bad {
                var,
                reason: "must be at least 100ms".into(),
            });
        }
    }
    let max_connections = count_max(
        "PGMAINT_HTTP_MAX_CONNECTIONS",
        &raw.http_max_connections,
        100,
        1,
        100_000,
    )?;
    let web_config_file = raw
        .web_config_file
        .as_deref()
        .filter(|p| !p.is_empty())
        .map(PathBuf::from);
    Ok(Http {
        listen_address,
        max_connections,
        read_header_timeout,
        idle_timeout,
        web_config_file,
    })
}

/// Query and scrape timeouts, and how long a scrape result is served again.
pub(super) struct Timeouts {
    pub statement: Duration,
    pub lock: Duration,
    pub background_statement: Duration,
    pub scrape: Duration,
    pub min_scrape_interval: Duration,
}

pub(super) fn timeouts(raw: &Raw) -> Result<Timeouts, ConfigError> {
    let statement = duration_max(
        "PGMAINT_STATEMENT_TIMEOUT",
        &raw.statement_timeout,
        "5s",
        MAX_PG_TIMEOUT,
    )?;
    let lock = duration_max("PGMAINT_LOCK_TIMEOUT", &raw.lock_timeout, "1s", MAX_PG_TIMEOUT)?;
    let background_statement = duration_max(
        "PGMAINT_BACKGROUND_STATEMENT_TIMEOUT",
        &raw.background_statement_timeout,
        "60s",
        MAX_PG_TIMEOUT,
    )?;
    let scrape = duration("PGMAINT_SCRAPE_TIMEOUT", &raw.scrape_timeout, "10s")?;
    for (var, d) in [
        ("PGMAINT_STATEMENT_TIMEOUT", statement),
        ("PGMAINT_LOCK_TIMEOUT", lock),
        ("PGMAINT_BACKGROUND_STATEMENT_TIMEOUT", background_statement),
        ("PGMAINT_SCRAPE_TIMEOUT", scrape),
    ] {
        if d < Duration::from_millis(1) {
            return Err(ConfigError::Bad {
                var,
                reason: "must be at least 1ms".into(),
            });
        }
    }
    Ok(Timeouts {
        statement,
        lock,
        background_statement,
        scrape,
        min_scrape_interval: duration("PGMAINT_MIN_SCRAPE_INTERVAL", &raw.min_scrape_interval, "1s")?,
    })
}

/// `PGMAINT_LOG_FORMAT` and `PGMAINT_LOG_LEVEL`.
pub(super) fn logging(raw: &Raw) -> Result<(LogFormat, String), ConfigError> {
    let format = match raw.log_format.as_deref().unwrap_or("text") {
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
    let level = raw.log_level.clone().unwrap_or_else(|| "info".into());
    if !["error", "warn", "info", "debug", "trace"].contains(&level.as_str()) {
        return Err(ConfigError::Invalid {
            var: "PGMAINT_LOG_LEVEL",
            value: level,
            expected: "one of error, warn, info, debug, trace".into(),
        });
    }
    Ok((format, level))
}

/// What is watched: the connection cap, databases, schemas and tables.
pub(super) struct Watched {
    pub max_connections: usize,
    pub include_databases: Vec<Regex>,
    pub exclude_databases: Vec<Regex>,
    pub database_refresh_interval: Duration,
    pub include_schemas: Vec<Regex>,
    pub exclude_schemas: Vec<Regex>,
    pub exclude_tables: Vec<Regex>,
    pub max_tables_per_database: usize,
}

pub(super) fn watched(raw: &Raw) -> Result<Watched, ConfigError> {
    Ok(Watched {
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
    })
}

/// Files and programs on the exporter's host: backups, pg_restore, WAL archive.
pub(super) struct Host {
    pub backup_dirs: Vec<BackupDir>,
    pub pg_restore: Option<String>,
    pub backup_verify: bool,
    pub backup_verify_timeout: Duration,
    pub backup_min_age: Duration,
    pub wal_archive_dir: Option<String>,
}

pub(super) fn host(raw: &Raw) -> Result<Host, ConfigError> {
    Ok(Host {
        backup_dirs: parse_backup_dirs(raw.backup_dirs.as_deref())?,
        wal_archive_dir: non_empty(&raw.wal_archive_dir),
        pg_restore: non_empty(&raw.pg_restore),
        backup_verify: boolean("PGMAINT_BACKUP_VERIFY", &raw.backup_verify, true)?,
        backup_verify_timeout: duration("PGMAINT_BACKUP_VERIFY_TIMEOUT", &raw.backup_verify_timeout, "10m")?,
        backup_min_age: duration("PGMAINT_BACKUP_MIN_AGE", &raw.backup_min_age, "60s")?,
    })
}

/// Which collectors run, and the settings of some of them.
pub(super) struct Collectors {
    pub choice: CollectorChoice,
    pub long_query_seconds: f64,
    pub bloat_cache: Duration,
    pub size_cache: Duration,
    pub settings_cache: Duration,
    pub bloat_exact: bool,
    pub statements_limit: usize,
    pub statements_query_text: bool,
    pub queries_file: Option<String>,
}

/// `host`: host collectors are on once told where to look, unless
/// `PGMAINT_COLLECTORS` is a plain list (exactly these).
pub(super) fn collectors(raw: &Raw, host: &Host) -> Result<Collectors, ConfigError> {
    let mut choice = parse_collectors(raw.collectors.as_deref())?;
    for (on, name) in [
        (!host.backup_dirs.is_empty(), "backup"),
        (host.wal_archive_dir.is_some(), "wal_archive"),
    ] {
        if on {
            choice.switch_on_host(name);
        }
    }
    let seconds = |var, v: &Option<String>, default| -> Result<Duration, ConfigError> {
        Ok(Duration::from_secs(count(var, v, default, 0)? as u64))
    };
    Ok(Collectors {
        choice,
        long_query_seconds: number("PGMAINT_LONG_QUERY_SECONDS", &raw.long_query_seconds, 300.0)?,
        bloat_cache: seconds("PGMAINT_BLOAT_CACHE_SECONDS", &raw.bloat_cache_seconds, 300)?,
        size_cache: seconds("PGMAINT_SIZE_CACHE_SECONDS", &raw.size_cache_seconds, 60)?,
        settings_cache: seconds("PGMAINT_SETTINGS_CACHE_SECONDS", &raw.settings_cache_seconds, 60)?,
        bloat_exact: boolean("PGMAINT_BLOAT_EXACT", &raw.bloat_exact, false)?,
        statements_limit: count("PGMAINT_STATEMENTS_LIMIT", &raw.statements_limit, 50, 1)?,
        statements_query_text: boolean("PGMAINT_STATEMENTS_QUERY_TEXT", &raw.statements_query_text, false)?,
        queries_file: non_empty(&raw.queries_file),
    })
}

/// `/probe`: the auth modules' file and the bounds on targets.
pub(super) struct Probe {
    pub config_file: Option<String>,
    pub max_targets: usize,
    pub target_idle_timeout: Duration,
    pub max_connections_total: usize,
}

pub(super) fn probe(raw: &Raw) -> Result<Probe, ConfigError> {
    Ok(Probe {
        config_file: non_empty(&raw.config_file),
        max_targets: count("PGMAINT_MAX_TARGETS", &raw.max_targets, 100, 1)?,
        target_idle_timeout: duration("PGMAINT_TARGET_IDLE_TIMEOUT", &raw.target_idle_timeout, "10m")?,
        max_connections_total: count_max(
            "PGMAINT_MAX_CONNECTIONS_TOTAL",
            &raw.max_connections_total,
            32,
            1,
            MAX_PG_CONNECTIONS,
        )?,
    })
}

/// A path or name, trimmed; `None` when unset or blank.
fn non_empty(v: &Option<String>) -> Option<String> {
    v.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
}
