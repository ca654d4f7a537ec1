//! `tls_server_config` of the web config: rustls settings for the HTTP endpoint.

use std::sync::Arc;

use rustls::crypto::CryptoProvider;

use super::config::WebConfigError;

pub(super) fn provider() -> Arc<CryptoProvider> {
    // Explicit, so another crate enabling a second rustls backend cannot make
    // the process-wide default ambiguous.
    Arc::new(rustls::crypto::ring::default_provider())
}

pub(super) fn tls_version(
    path: &str,
    key: &str,
    v: Option<&str>,
    default: &'static str,
) -> Result<&'static str, WebConfigError> {
    match v.unwrap_or(default) {
        "TLS12" => Ok("TLS12"),
        "TLS13" => Ok("TLS13"),
        other => Err(WebConfigError::Invalid {
            path: path.into(),
            key: format!("tls_server_config.{key}"),
            value: other.into(),
            expected: "one of TLS12, TLS13 (TLS10 and TLS11 are not supported)".into(),
        }),
    }
}
