//! Entry point: arguments, configuration, logging, serve until SIGTERM/Ctrl-C.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::Arc;

use pgmaint_exporter::collectors::{self, Collector};
use pgmaint_exporter::config::{Config, LogFormat};
use pgmaint_exporter::custom_queries;
use pgmaint_exporter::error::ConfigError;
use pgmaint_exporter::probe::{self, AuthModule};
use pgmaint_exporter::scrape::Scraper;
use pgmaint_exporter::server;
use pgmaint_exporter::web::{self, WebConfig};

const HELP: &str = "\
pgmaint-exporter — PostgreSQL maintenance-health exporter for Prometheus

USAGE: pgmaint-exporter [--help | --version]

Configuration is read from environment variables (see docs/configuration.md):
  PGMAINT_DATABASE_URL        connection string, URL or key=value (also DATA_SOURCE_NAME)
                              e.g. postgresql://monitor@db:5432/postgres?sslmode=require
  PGMAINT_DATABASE_PASSWORD_FILE  read the password from this file
  PGMAINT_LISTEN_ADDRESS      address:port to serve on            [0.0.0.0:9188]
  PGMAINT_HTTP_MAX_CONNECTIONS  HTTP connections open at once (the longest-idle
                              makes room for a new one)           [100]
  PGMAINT_HTTP_READ_HEADER_TIMEOUT  request headers complete within [10s]
  PGMAINT_HTTP_IDLE_TIMEOUT   close a connection idle this long   [2m]
  PGMAINT_COLLECTORS          list of collectors, or +name/-name changes to the defaults
  PGMAINT_STATEMENT_TIMEOUT   statement_timeout of every query    [5s]
  PGMAINT_LOCK_TIMEOUT        lock_timeout of every query         [1s]
  PGMAINT_BACKGROUND_STATEMENT_TIMEOUT  statement_timeout of cached collectors' background refreshes [60s]
  PGMAINT_SCRAPE_TIMEOUT      deadline of one scrape              [10s]
                              (X-Prometheus-Scrape-Timeout-Seconds shortens it)
  PGMAINT_LONG_QUERY_SECONDS  a query running longer is 'long'    [300]
  PGMAINT_MAX_CONNECTIONS     open connections, all databases     [4]
  PGMAINT_INCLUDE_DATABASES   comma-separated names/regexes       [all]
  PGMAINT_EXCLUDE_DATABASES   comma-separated names/regexes       [none]
  PGMAINT_DATABASE_REFRESH_INTERVAL  how often databases are rediscovered [60s]
  PGMAINT_INCLUDE_SCHEMAS, PGMAINT_EXCLUDE_SCHEMAS, PGMAINT_EXCLUDE_TABLES  regexes
  PGMAINT_MAX_TABLES_PER_DATABASE  per-table series cap per database [1000]
  PGMAINT_BLOAT_CACHE_SECONDS bloat estimate cache                [300]
  PGMAINT_SIZE_CACHE_SECONDS  table/index size cache              [60]
  PGMAINT_SETTINGS_CACHE_SECONDS  server settings cache           [60]
  PGMAINT_MIN_SCRAPE_INTERVAL reuse a result younger than this    [1s]
  PGMAINT_BACKUP_DIRS         backup directories: dir[:glob,glob];dir…  [off]
                              default globs backup_*,*.dump,*.sql,*.tar
  PGMAINT_PG_RESTORE          pg_restore for verification  [PATH, /usr/lib/postgresql/*/bin]
  PGMAINT_BACKUP_VERIFY       verify the newest backup (on/off)   [on]
  PGMAINT_BACKUP_VERIFY_TIMEOUT  limit of one verification        [10m]
  PGMAINT_BACKUP_MIN_AGE      newer files are still being written [60s]
  PGMAINT_WAL_ARCHIVE_DIR     WAL archive to check for PITR       [off]
  PGMAINT_QUERIES_FILE        YAML file of custom queries         [none]
  PGMAINT_CONFIG_FILE         YAML auth modules for /probe        [none]
  PGMAINT_MAX_TARGETS         /probe targets held at once         [100]
  PGMAINT_TARGET_IDLE_TIMEOUT close a target not probed this long [10m]
  PGMAINT_MAX_CONNECTIONS_TOTAL  open connections, all /probe targets [32]
  PGMAINT_LOG_FORMAT          text or json                        [text]
  PGMAINT_LOG_LEVEL           error, warn, info, debug or trace   [info]
  PGMAINT_WEB_CONFIG_FILE     TLS and basic auth for the endpoint, exporter-toolkit
                              web-config.yml format (see docs/security.md)  [none]

Endpoints: /metrics, /probe?target=host:port[/db]&auth_module=NAME[&database=db],
           / (landing page), /healthz
";

fn main() -> ExitCode {
    // args_os: std::env::args() panics on an argument that is not UTF-8.
    let first = std::env::args_os()
        .nth(1)
        .map(|a| a.to_string_lossy().into_owned());
    match first.as_deref() {
        Some("--help" | "-h") => {
            print!("{HELP}");
            return ExitCode::SUCCESS;
        }
        Some("--version" | "-V") => {
            println!(
                "pgmaint-exporter {} (revision {})",
                env!("CARGO_PKG_VERSION"),
                env!("PGMAINT_REVISION")
            );
            return ExitCode::SUCCESS;
        }
        Some(other) => {
            eprintln!("pgmaint-exporter: unknown argument {other:?}; configuration comes from PGMAINT_* variables, see --help");
            return ExitCode::from(2);
        }
        None => {}
    }
    let start = match start_up() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("pgmaint-exporter: {e}");
            return ExitCode::from(2);
        }
    };
    init_logging(&start.config);
    one_malloc_arena();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    match runtime.block_on(serve(start)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("pgmaint-exporter: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Settings read, then each part checks its own section: a bad one stops
/// the exporter with exit code 2 and one line naming the setting.
fn start_up() -> Result<StartUp, ConfigError> {
    let config = Config::from_env()?;
    let web = web::from_config(&config)?;
    let collectors = collectors::enabled(&config)?;
    let custom = custom_queries::from_config(&config)?
        .into_iter()
        .map(|q| q as &'static dyn Collector)
        .collect();
    let auth_modules = probe::auth_modules(&config)?;
    Ok(StartUp {
        config,
        web,
        collectors,
        custom,
        auth_modules,
    })
}

/// What start-up read and checked.
struct StartUp {
    config: Config,
    /// `PGMAINT_WEB_CONFIG_FILE`: TLS and basic auth for the endpoint.
    web: Option<Arc<WebConfig>>,
    /// Names of the enabled built-in collectors, in `collectors::ALL` order.
    collectors: Vec<&'static str>,
    /// `PGMAINT_QUERIES_FILE`'s entries.
    custom: Vec<&'static dyn Collector>,
    /// `PGMAINT_CONFIG_FILE`'s auth modules for `/probe`.
    auth_modules: BTreeMap<String, AuthModule>,
}

/// glibc gives each thread that allocates its own arena (up to 8 per core)
/// and returns little of a freed arena to the system: a scrape's rows and
/// samples, built on one worker thread and freed on another, left the
/// high-water mark ~20 % above what one arena needs (10,000 tables: 93 →
/// 77 MiB peak, no change in scrape time or CPU; issue 6). The exporter is
/// not allocation-bound enough for one arena's lock to matter.
/// `MALLOC_ARENA_MAX` in the environment, when set, wins.
fn one_malloc_arena() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: called before any other thread exists; mallopt only sets a limit.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 1);
        }
    }
}

async fn serve(start: StartUp) -> Result<(), String> {
    let StartUp {
        config,
        web,
        collectors,
        custom,
        auth_modules,
    } = start;
    let listener = tokio::net::TcpListener::bind(config.listen_address)
        .await
        .map_err(|e| {
            format!(
                "PGMAINT_LISTEN_ADDRESS: cannot listen on {}: {e}",
                config.listen_address
            )
        })?;
    tracing::info!(
        address = %listener.local_addr().map_err(|e| e.to_string())?,
        database = %config.dsn,
        collectors = %collectors.join(","),
        tls = web.as_ref().is_some_and(|w| w.tls.is_some()),
        basic_auth = web.as_ref().is_some_and(|w| !w.users.is_empty()),
        "pgmaint-exporter {} listening",
        env!("CARGO_PKG_VERSION")
    );
    let state = server::App::new(Scraper::new(config, custom), auth_modules)
        .map_err(|e| format!("cannot set up the exporter's own metrics: {e}"))?;
    server::run(listener, state, web, shutdown_signal())
        .await
        .map_err(|e| e.to_string())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down");
}

fn init_logging(config: &Config) {
    let filter =
        tracing_subscriber::EnvFilter::new(format!("{},deadpool=warn,tokio_postgres=warn", config.log_level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        // No colour codes: the writer escapes every control character
        // (a server's text could carry a newline or a terminal escape).
        .with_ansi(false)
        .with_writer(pgmaint_exporter::log_line::Stderr);
    match config.log_format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}
