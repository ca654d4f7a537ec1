//! `PGMAINT_WEB_CONFIG_FILE`: TLS and basic auth for the HTTP endpoint.
//!
//! The file has the format of the Prometheus exporter-toolkit's
//! `web-config.yml`, which Prometheus users already know from node_exporter
//! and postgres_exporter: `tls_server_config` (certificate, key, minimum TLS
//! version, client certificates), `http_server_config` (`http2`, extra
//! response `headers`) and `basic_auth_users` (user → bcrypt hash). It is
//! read and checked once at start: a bad file stops the exporter with exit
//! code 2 and one line naming the file, the key and what is accepted.
//!
//! TLS runs on rustls (TLS 1.2 and 1.3 only). Basic auth protects every path,
//! `/healthz` included, as exporter-toolkit does. See `docs/security.md`.
//!
//! - `config.rs` — the file: its keys, users and headers, checked at start.
//! - `tls.rs` — `tls_server_config` → a rustls `ServerConfig`.
//! - `auth.rs` — the basic-auth and headers middleware.

use std::sync::Arc;

use crate::config::Config;
use crate::error::ConfigError;

mod auth;
mod config;
mod tls;

pub use auth::{guard, protect, Guard, Verdict};
pub use config::{ClientAuth, WebConfig, WebConfigError};

/// `PGMAINT_WEB_CONFIG_FILE`, read and checked at start (`None` when it is
/// not set); a bad file is a start-up error naming the setting.
pub fn from_config(config: &Config) -> Result<Option<Arc<WebConfig>>, ConfigError> {
    match &config.web_config_file {
        None => Ok(None),
        Some(path) => WebConfig::load(path)
            .map(|w| Some(Arc::new(w)))
            .map_err(|e| ConfigError::Bad {
                var: "PGMAINT_WEB_CONFIG_FILE",
                reason: e.to_string(),
            }),
    }
}

/// What the unit tests of `config.rs` and `auth.rs` both need.
#[cfg(test)]
mod test_support {
    use std::path::Path;

    use super::WebConfig;

    pub fn parse(text: &str) -> Result<WebConfig, String> {
        WebConfig::parse(Path::new("/etc/pgmaint/web.yml"), text).map_err(|e| e.to_string())
    }

    /// bcrypt of "secret" at the minimum cost, so the tests stay fast.
    pub fn hash() -> String {
        bcrypt::hash("secret", 4).unwrap()
    }
}
