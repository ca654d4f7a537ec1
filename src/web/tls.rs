//! `tls_server_config` of the web config: rustls settings for the HTTP endpoint.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::config::{ClientAuth, RawTls, WebConfigError};

fn provider() -> Arc<CryptoProvider> {
    // Explicit, so another crate enabling a second rustls backend cannot make
    // the process-wide default ambiguous.
    Arc::new(rustls::crypto::ring::default_provider())
}

fn tls_version(
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

/// `tls_server_config` (file names relative to `dir`) → the server's rustls
/// settings, its minimum version and client-certificate rule. `p` is the
/// file as shown in errors; `http2` decides the ALPN offer.
pub(super) fn server_config(
    p: &str,
    dir: &Path,
    t: RawTls,
    http2: bool,
) -> Result<(Arc<ServerConfig>, &'static str, ClientAuth), WebConfigError> {
    let bad = |key: &str, reason: String| WebConfigError::Bad {
        path: p.to_string(),
        key: key.into(),
        reason,
    };
    for (key, set) in [
        ("cipher_suites", t.cipher_suites.is_some()),
        ("curve_preferences", t.curve_preferences.is_some()),
        (
            "prefer_server_cipher_suites",
            t.prefer_server_cipher_suites.is_some(),
        ),
        ("client_allowed_sans", t.client_allowed_sans.is_some()),
        ("cert", t.cert.is_some()),
        ("key", t.key.is_some()),
        ("client_ca", t.client_ca.is_some()),
    ] {
        if set {
            return Err(bad(
                &format!("tls_server_config.{key}"),
                "is not supported by pgmaint-exporter (supported: cert_file, key_file, \
                 client_auth_type, client_ca_file, min_version, max_version)"
                    .into(),
            ));
        }
    }

    let min = tls_version(p, "min_version", t.min_version.as_deref(), "TLS12")?;
    let max = tls_version(p, "max_version", t.max_version.as_deref(), "TLS13")?;
    if min == "TLS13" && max == "TLS12" {
        return Err(bad(
            "tls_server_config.max_version",
            "TLS12 is below min_version TLS13".into(),
        ));
    }
    let versions: &[&'static rustls::SupportedProtocolVersion] = match (min, max) {
        ("TLS13", _) => &[&rustls::version::TLS13],
        (_, "TLS12") => &[&rustls::version::TLS12],
        _ => &[&rustls::version::TLS13, &rustls::version::TLS12],
    };

    let client_auth = match t.client_auth_type.as_deref().unwrap_or("NoClientCert") {
        "NoClientCert" => ClientAuth::NoClientCert,
        "VerifyClientCertIfGiven" => ClientAuth::VerifyClientCertIfGiven,
        "RequireAndVerifyClientCert" => ClientAuth::RequireAndVerifyClientCert,
        other => {
            return Err(WebConfigError::Invalid {
                path: p.to_string(),
                key: "tls_server_config.client_auth_type".into(),
                value: other.into(),
                expected: "one of NoClientCert, VerifyClientCertIfGiven, RequireAndVerifyClientCert \
                           (RequestClientCert and RequireAnyClientCert accept unverified \
                           certificates and are not supported)"
                    .into(),
            })
        }
    };

    let file = |key: &str, v: &Option<String>| -> Result<(PathBuf, Vec<u8>), WebConfigError> {
        let name = v.as_deref().filter(|s| !s.is_empty()).ok_or_else(|| {
            bad(
                &format!("tls_server_config.{key}"),
                "is required when tls_server_config is set".into(),
            )
        })?;
        let full = dir.join(name);
        let bytes = std::fs::read(&full).map_err(|e| {
            bad(
                &format!("tls_server_config.{key}"),
                format!("cannot read {}: {e}", full.display()),
            )
        })?;
        Ok((full, bytes))
    };

    let (cert_path, cert_pem) = file("cert_file", &t.cert_file)?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| {
            bad(
                "tls_server_config.cert_file",
                format!("{}: not a PEM certificate: {e}", cert_path.display()),
            )
        })?;
    if certs.is_empty() {
        return Err(bad(
            "tls_server_config.cert_file",
            format!("{}: no PEM CERTIFICATE block", cert_path.display()),
        ));
    }
    let (key_path, key_pem) = file("key_file", &t.key_file)?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| {
        bad(
            "tls_server_config.key_file",
            format!(
                "{}: no PEM private key (PKCS#8, PKCS#1 or SEC1): {e}",
                key_path.display()
            ),
        )
    })?;

    let provider = provider();
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)
        .map_err(|e| bad("tls_server_config.min_version", e.to_string()))?;
    let builder = match (client_auth, &t.client_ca_file) {
        (ClientAuth::NoClientCert, None) => builder.with_no_client_auth(),
        (ClientAuth::NoClientCert, Some(_)) => {
            return Err(bad(
                "tls_server_config.client_ca_file",
                "is set but client_auth_type is NoClientCert (the default); \
                 set client_auth_type: RequireAndVerifyClientCert"
                    .into(),
            ))
        }
        (_, None) => {
            return Err(bad(
                "tls_server_config.client_ca_file",
                "is required to verify client certificates (client_auth_type)".into(),
            ))
        }
        (auth, ca) => {
            let (ca_path, ca_pem) = file("client_ca_file", ca)?;
            let mut roots = RootCertStore::empty();
            for c in CertificateDer::pem_slice_iter(&ca_pem) {
                let c = c.map_err(|e| {
                    bad(
                        "tls_server_config.client_ca_file",
                        format!("{}: not a PEM certificate: {e}", ca_path.display()),
                    )
                })?;
                roots.add(c).map_err(|e| {
                    bad(
                        "tls_server_config.client_ca_file",
                        format!("{}: unusable CA certificate: {e}", ca_path.display()),
                    )
                })?;
            }
            if roots.is_empty() {
                return Err(bad(
                    "tls_server_config.client_ca_file",
                    format!("{}: no PEM CERTIFICATE block", ca_path.display()),
                ));
            }
            let mut v = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            if auth == ClientAuth::VerifyClientCertIfGiven {
                v = v.allow_unauthenticated();
            }
            let v = v
                .build()
                .map_err(|e| bad("tls_server_config.client_ca_file", e.to_string()))?;
            builder.with_client_cert_verifier(v)
        }
    };
    let mut server = builder.with_single_cert(certs, key).map_err(|e| {
        bad(
            "tls_server_config.key_file",
            format!("{} does not fit {}: {e}", key_path.display(), cert_path.display()),
        )
    })?;
    server.alpn_protocols = if http2 {
        vec![b"h2".to_vec(), b"http/1.1".to_vec()]
    } else {
        vec![b"http/1.1".to_vec()]
    };
    Ok((Arc::new(server), min, client_auth))
}
