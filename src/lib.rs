//! pgmaint-exporter: a PostgreSQL maintenance-health exporter for Prometheus.
//!
//! # Layout
//! - `main.rs` — thin: arguments, start-up (`Config::from_env`, then each part checks its
//!   section: `web::from_config`, `collectors::enabled`, `custom_queries::from_config`,
//!   `probe::auth_modules`), logging, `server::run`.
//! - `config/` — `PGMAINT_*` variables → typed `Config`, one section at a time; the bottom
//!   layer (imports only `dsn` and `error`); `dsn.rs` parses connection strings.
//! - `pool.rs` — deadpool-postgres pools per database under one connection cap;
//!   `tls/` — libpq's `sslmode` meanings on rustls, `connect` on our own socket, closed only
//!   once the server has (`tls/socket.rs`, the cap at every moment); `auth_guard.rs` — no password
//!   to an unverified server (the stream wrapper `tls/` puts under each connection).
//! - `scrape/` — the orchestrator: deadline, coalescing, discovery, fan-out, caches
//!   (backup verifications included), self-metrics.
//! - `metrics/` — `Family`, the per-scrape `Sink`, the text encoder (`Exposition`).
//! - `collectors/` — one file per collector (`bloat/`, `indexes/` directories), each with a
//!   `const META`, registered in `collectors::ALL`.
//! - `custom_queries/` — `PGMAINT_QUERIES_FILE` entries as collectors of their own, handed
//!   to `Scraper::new`.
//! - `host/` — files and programs on the exporter's host (backups, WAL archive), on request.
//! - `server.rs` — the axum router (`/metrics`, `/probe`, `/`, `/healthz`, `/report`): requests
//!   to scrape calls, scrape results to responses.
//! - `report/` — the maintenance report: findings from the latest snapshot, HTML and JSON.
//! - `runbook.rs` — `/runbook`: docs/runbook.md compiled in, the target of the alerts' runbook links.
//! - `probe/` — `/probe`: many servers from one exporter (`targets.rs` the target cache),
//!   auth modules of `PGMAINT_CONFIG_FILE` (`auth_modules.rs`, `allowed.rs`).
//! - `web/` — `PGMAINT_WEB_CONFIG_FILE`: TLS and basic auth for the HTTP endpoint
//!   (`config.rs` the file, `tls.rs` its TLS section, `auth.rs` the middleware).
//! - `keywords.rs` — PostgreSQL's key words that `quote_ident()` quotes.
//! - `rows.rs` — query results packed as they stream in (`Rows`, `Row`).
//! - `error.rs` — thiserror enums.
//! - `log_line.rs` — the log writer: control characters escaped, one event per line.

pub mod auth_guard;
pub mod collectors;
pub mod config;
pub mod custom_queries;
pub mod dsn;
pub mod error;
pub mod host;
pub mod http;
pub mod keywords;
pub mod log_line;
pub mod metrics;
pub mod pool;
pub mod probe;
pub mod report;
pub mod rows;
pub mod runbook;
pub mod scrape;
pub mod server;
pub mod tls;
pub mod web;
