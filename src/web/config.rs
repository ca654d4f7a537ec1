//! The web config file (`PGMAINT_WEB_CONFIG_FILE`): its keys, read and
//! checked once at start.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::http::{HeaderName, HeaderValue};
use rustls::ServerConfig;
use serde::Deserialize;
use thiserror::Error;

/// Response headers exporter-toolkit lets `http_server_config.headers` set.
const ALLOWED_HEADERS: &[&str] = &[
    "Strict-Transport-Security",
    "X-Content-Type-Options",
    "X-Frame-Options",
    "X-XSS-Protection",
    "Content-Security-Policy",
];

/// Why the web config file was refused. The path is in every message.
#[derive(Debug, Error)]
pub enum WebConfigError {
    #[error("cannot read {path}: {reason}")]
    Read { path: String, reason: String },
    /// YAML syntax, an unknown key (serde names it) or a wrong type.
    #[error("{path}: {reason}")]
    Syntax { path: String, reason: String },
    #[error("{path}: {key}: {value:?} is not {expected}")]
    Invalid {
        path: String,
        key: String,
        value: String,
        expected: String,
    },
    #[error("{path}: {key}: {reason}")]
    Bad {
        path: String,
        key: String,
        reason: String,
    },
}

/// The file as written. Unknown keys are refused, so a typo never silently
/// leaves the endpoint open.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    tls_server_config: Option<RawTls>,
    http_server_config: Option<RawHttp>,
    /// A list of pairs, not a map: a user named twice is refused, where a
    /// map would keep one of the two hashes and silently drop the other.
    #[serde(default, deserialize_with = "users_in_order")]
    basic_auth_users: Option<Vec<(String, String)>>,
}

/// `basic_auth_users` entries as written, duplicates included.
fn users_in_order<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Vec<(String, String)>>, D::Error> {
    struct Pairs;
    impl<'de> serde::de::Visitor<'de> for Pairs {
        type Value = Option<Vec<(String, String)>>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a map of user name to bcrypt hash")
        }
        fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_map(Pairs)
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some(pair) = map.next_entry::<String, String>()? {
                out.push(pair);
            }
            Ok(Some(out))
        }
    }
    d.deserialize_option(Pairs)
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTls {
    pub(super) cert_file: Option<String>,
    pub(super) key_file: Option<String>,
    pub(super) client_auth_type: Option<String>,
    pub(super) client_ca_file: Option<String>,
    pub(super) min_version: Option<String>,
    pub(super) max_version: Option<String>,
    // exporter-toolkit keys rustls cannot honour: named here so the error
    // says "not supported" instead of "unknown field".
    pub(super) cipher_suites: Option<serde_norway::Value>,
    pub(super) curve_preferences: Option<serde_norway::Value>,
    pub(super) prefer_server_cipher_suites: Option<serde_norway::Value>,
    pub(super) client_allowed_sans: Option<serde_norway::Value>,
    pub(super) cert: Option<serde_norway::Value>,
    pub(super) key: Option<serde_norway::Value>,
    pub(super) client_ca: Option<serde_norway::Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHttp {
    http2: Option<bool>,
    headers: Option<BTreeMap<String, String>>,
}

/// Who may present which client certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    NoClientCert,
    VerifyClientCertIfGiven,
    RequireAndVerifyClientCert,
}

/// The checked web config: ready-to-use TLS settings and users.
#[derive(Clone)]
pub struct WebConfig {
    pub path: PathBuf,
    /// `Some` when `tls_server_config` is set: plain HTTP is then refused.
    pub tls: Option<Arc<ServerConfig>>,
    pub min_version: &'static str,
    pub client_auth: ClientAuth,
    pub http2: bool,
    /// User → bcrypt hash. Empty: no authentication.
    pub users: BTreeMap<String, String>,
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

/// Hashes stay out of logs and errors.
impl fmt::Debug for WebConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebConfig")
            .field("path", &self.path)
            .field("tls", &self.tls.is_some())
            .field("min_version", &self.min_version)
            .field("client_auth", &self.client_auth)
            .field("http2", &self.http2)
            .field("users", &self.users.keys().collect::<Vec<_>>())
            .field("headers", &self.headers)
            .finish()
    }
}

impl WebConfig {
    /// Reads and checks the file: YAML keys, certificate, key, CA, hashes.
    pub fn load(path: &Path) -> Result<WebConfig, WebConfigError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| WebConfigError::Read {
            path: shown.clone(),
            reason: e.to_string(),
        })?;
        Self::parse(path, &text)
    }

    /// Checks `text` as the content of `path` (relative file names in it are
    /// taken relative to the file's directory, as exporter-toolkit does).
    pub fn parse(path: &Path, text: &str) -> Result<WebConfig, WebConfigError> {
        let p = path.display().to_string();
        let raw: RawFile = if text.trim().is_empty() {
            RawFile::default()
        } else {
            serde_norway::from_str(text).map_err(|e| WebConfigError::Syntax {
                path: p.clone(),
                reason: e.to_string(),
            })?
        };
        let dir = path.parent().unwrap_or(Path::new("."));
        let bad = |key: &str, reason: String| WebConfigError::Bad {
            path: p.clone(),
            key: key.into(),
            reason,
        };

        let mut users = BTreeMap::new();
        for (user, hash) in raw.basic_auth_users.unwrap_or_default() {
            if users.contains_key(&user) {
                return Err(bad(
                    &format!("basic_auth_users.{user}"),
                    "is listed twice (which hash is meant?)".into(),
                ));
            }
            if user.contains(':') {
                return Err(bad(
                    &format!("basic_auth_users.{user}"),
                    "a user name cannot contain ':' (basic auth splits on it)".into(),
                ));
            }
            // The hash is not shown: it is as good as a password to an offline attacker.
            if let Err(why) = check_hash(&hash) {
                return Err(bad(&format!("basic_auth_users.{user}"), why));
            }
            if hash.parse::<bcrypt::HashParts>().is_err() {
                return Err(bad(
                    &format!("basic_auth_users.{user}"),
                    "is not a bcrypt hash ($2a$, $2b$ or $2y$, cost, 53 characters); \
                     make one with: htpasswd -nBC 10 \"\" | tr -d ':\\n'"
                        .into(),
                ));
            }
            users.insert(user, hash);
        }

        let http = raw.http_server_config.unwrap_or_default();
        let mut headers = Vec::new();
        for (name, value) in http.headers.unwrap_or_default() {
            let key = format!("http_server_config.headers.{name}");
            let Some(allowed) = ALLOWED_HEADERS.iter().find(|a| a.eq_ignore_ascii_case(&name)) else {
                return Err(WebConfigError::Invalid {
                    path: p.clone(),
                    key,
                    value: name,
                    expected: format!("a header that may be set here: {}", ALLOWED_HEADERS.join(", ")),
                });
            };
            let v =
                HeaderValue::from_str(&value).map_err(|_| bad(&key, "is not a valid header value".into()))?;
            headers.push((
                HeaderName::from_bytes(allowed.as_bytes()).expect("valid header name"),
                v,
            ));
        }

        let mut config = WebConfig {
            path: path.to_path_buf(),
            tls: None,
            min_version: "TLS12",
            client_auth: ClientAuth::NoClientCert,
            http2: http.http2.unwrap_or(true),
            users,
            headers,
        };
        let Some(t) = raw.tls_server_config else {
            return Ok(config);
        };
        let (tls, min_version, client_auth) = super::tls::server_config(&p, dir, t, config.http2)?;
        config.tls = Some(tls);
        config.min_version = min_version;
        config.client_auth = client_auth;
        Ok(config)
    }
}

/// Hashes that parse but can never verify: `$2x$` (crypt_blowfish's marker
/// for hashes made by its old sign-extension bug, which `bcrypt::verify`
/// does not reproduce) and a cost outside 4..=31 (`bcrypt::verify` refuses
/// it). Accepted at start, every login would then silently fail.
fn check_hash(hash: &str) -> Result<(), String> {
    let make = "make one with: htpasswd -nBC 10 \"\" | tr -d ':\\n'";
    let version = hash.get(..4).unwrap_or("");
    if !["$2a$", "$2b$", "$2y$"].contains(&version) {
        return Err(format!(
            "is not a bcrypt hash ($2a$, $2b$ or $2y$, cost, 53 characters; $2x$ is not supported); {make}"
        ));
    }
    match hash.get(4..6).and_then(|c| c.parse::<u32>().ok()) {
        Some(cost) if (4..=31).contains(&cost) => Ok(()),
        Some(cost) => Err(format!("bcrypt cost {cost} is outside 4..=31; {make}")),
        None => Err(format!("is not a bcrypt hash (no cost after the prefix); {make}")),
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{hash, parse};

    #[test]
    fn empty_file_means_plain_http_without_auth() {
        let c = parse("").unwrap();
        assert!(c.tls.is_none());
        assert!(c.users.is_empty());
    }

    #[test]
    fn users_and_headers() {
        let hash = hash();
        let c = parse(&format!(
            "basic_auth_users:\n  prometheus: '{hash}'\nhttp_server_config:\n  headers:\n    x-frame-options: deny\n"
        ))
        .unwrap();
        assert_eq!(c.users.len(), 1);
        assert_eq!(c.headers[0].0.as_str(), "x-frame-options");
        assert!(!format!("{c:?}").contains(&hash), "Debug shows no hash");
    }

    #[test]
    fn unknown_key_is_named() {
        let e = parse("tls_server_config:\n  cert_fiel: a.pem\n").unwrap_err();
        assert!(
            e.starts_with("/etc/pgmaint/web.yml: tls_server_config: unknown field `cert_fiel`"),
            "{e}"
        );
        let e = parse("basic_auth:\n  a: b\n").unwrap_err();
        assert!(e.contains("unknown field `basic_auth`"), "{e}");
    }

    #[test]
    fn bad_hash_is_named_not_shown() {
        let e = parse("basic_auth_users:\n  alice: plaintext-password\n").unwrap_err();
        assert!(e.contains("basic_auth_users.alice: is not a bcrypt hash"), "{e}");
        assert!(!e.contains("plaintext-password"), "{e}");
    }

    #[test]
    fn versions_and_client_auth() {
        let e =
            parse("tls_server_config:\n  cert_file: c\n  key_file: k\n  min_version: TLS11\n").unwrap_err();
        assert_eq!(
            e,
            "/etc/pgmaint/web.yml: tls_server_config.min_version: \"TLS11\" is not one of TLS12, TLS13 (TLS10 and TLS11 are not supported)"
        );
        let e = parse(
            "tls_server_config:\n  cert_file: c\n  key_file: k\n  client_auth_type: RequireAnyClientCert\n",
        )
        .unwrap_err();
        assert!(
            e.contains("client_auth_type: \"RequireAnyClientCert\" is not one of NoClientCert"),
            "{e}"
        );
        let e =
            parse("tls_server_config:\n  cert_file: c\n  key_file: k\n  cipher_suites: [x]\n").unwrap_err();
        assert!(
            e.contains("tls_server_config.cipher_suites: is not supported"),
            "{e}"
        );
        let e = parse("http_server_config:\n  headers:\n    Server: x\n").unwrap_err();
        assert!(
            e.contains("http_server_config.headers.Server: \"Server\" is not a header that may be set"),
            "{e}"
        );
    }

    #[test]
    fn missing_cert_file_is_named_with_its_path() {
        let e = parse("tls_server_config:\n  cert_file: nope.pem\n  key_file: k\n").unwrap_err();
        assert!(
            e.starts_with(
                "/etc/pgmaint/web.yml: tls_server_config.cert_file: cannot read /etc/pgmaint/nope.pem:"
            ),
            "{e}"
        );
        let e = parse("tls_server_config:\n  key_file: k\n").unwrap_err();
        assert!(e.contains("tls_server_config.cert_file: is required"), "{e}");
    }

    #[test]
    fn hashes_that_can_never_verify_are_refused() {
        let h = hash();
        let tail = &h[7..];
        for (bad, why) in [
            (format!("$2b$99${tail}"), "bcrypt cost 99 is outside 4..=31"),
            (format!("$2b$03${tail}"), "bcrypt cost 3 is outside 4..=31"),
            (format!("$2x$04${tail}"), "$2x$ is not supported"),
            (format!("$2b$ab${tail}"), "no cost after the prefix"),
        ] {
            let e = parse(&format!("basic_auth_users:\n  u: '{bad}'\n")).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
            assert!(!e.contains(tail), "the hash is not shown: {e}");
        }
        let e = parse(&format!("basic_auth_users:\n  u: '{h}'\n  u: '{h}'\n")).unwrap_err();
        assert!(e.contains("basic_auth_users.u: is listed twice"), "{e}");
        let c = parse("basic_auth_users:\n").unwrap();
        assert!(c.users.is_empty());
    }
}
