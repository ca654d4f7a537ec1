//! Error types, one enum per layer, with messages a DBA can act on.
//!
//! `ConfigError` stops the exporter at start; `CollectError` marks one
//! collector in one database as failed (`pg_scrape_collector_success 0`) and
//! never fails the scrape; `ConnError` is why a connection could not be had.

use thiserror::Error;

/// A bad setting: names the variable, the (redacted) value and what is accepted.
#[derive(Debug, Error, PartialEq)]
pub enum ConfigError {
    #[error("{var}: {value:?} is not {expected}")]
    Invalid {
        var: &'static str,
        value: String,
        expected: String,
    },
    #[error("{var}: {reason}")]
    Bad { var: &'static str, reason: String },
    #[error("no database to watch: set PGMAINT_DATABASE_URL (or DATA_SOURCE_NAME), e.g. postgresql://monitor@db.example:5432/postgres")]
    MissingDatabaseUrl,
    #[error("could not read the environment: {0}")]
    Env(String),
}

/// Why a connection could not be handed out.
#[derive(Debug, Error)]
pub enum ConnError {
    #[error("all {0} connection slots (PGMAINT_MAX_CONNECTIONS) are in use")]
    NoSlot(usize),
    #[error("cannot connect to database {datname:?}: {source}")]
    Connect {
        datname: String,
        #[source]
        source: tokio_postgres::Error,
    },
    /// No socket to the server could be opened (`tls::connect`).
    #[error("cannot connect to database {datname:?}: {reason}")]
    Unreachable { datname: String, reason: String },
    /// A TLS problem, explained (see `tls/`).
    #[error("cannot connect to database {datname:?}: {reason}")]
    Tls { datname: String, reason: String },
    #[error("timed out waiting for a connection to database {0:?}")]
    Timeout(String),
    #[error("connection pool for {datname:?}: {reason}")]
    Pool { datname: String, reason: String },
}

/// One collector failed in one database.
#[derive(Debug, Error)]
pub enum CollectError {
    #[error("query {query} failed: {message}")]
    Query { query: &'static str, message: String },
    #[error("unexpected column in query result: {0}")]
    Column(#[from] tokio_postgres::Error),
    #[error("unexpected column in query result: {0}")]
    Row(#[from] crate::rows::RowError),
    #[error("query {0} was not run")]
    Missing(&'static str),
    #[error("{0}")]
    Connection(#[from] ConnError),
    #[error("deadline exceeded before the collector finished")]
    Deadline,
    #[error("{0}")]
    Other(String),
}
