//! `PGMAINT_CONFIG_FILE`: its auth modules (user, password or password
//! file, TLS keys, `options`, `allowed_targets`), read and checked at start,
//! and the connection settings a module gives a target.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use serde::Deserialize;

use crate::config::Config;
use crate::dsn::Dsn;
use crate::error::ConfigError;

use super::allowed::{Allowed, Reach};
use super::{ProbeError, Target};

/// `PGMAINT_CONFIG_FILE` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    auth_modules: BTreeMap<String, RawModule>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawModule {
    user: Option<String>,
    password: Option<String>,
    password_file: Option<String>,
    sslmode: Option<String>,
    sslrootcert: Option<String>,
    sslcert: Option<String>,
    sslkey: Option<String>,
    allowed_targets: Option<Vec<String>>,
    #[serde(default)]
    allow_any_target: bool,
    #[serde(default)]
    allow_unverified_password_auth: bool,
    #[serde(default)]
    options: BTreeMap<String, serde_norway::Value>,
}

/// Connection keys a module's `options` may not set: the target and the
/// module's own fields say them.
const RESERVED_OPTIONS: &[&str] = &["host", "hostaddr", "port", "dbname", "user", "password"];

/// Keys the module sets itself: an option may never change (or weaken) them.
const MODULE_TLS_KEYS: &[&str] = &["sslmode", "sslrootcert", "sslcert", "sslkey"];
/// One validated auth module. `Debug` never shows the password.
#[derive(Clone)]
pub struct AuthModule {
    pub name: String,
    user: Option<String>,
    password: Option<String>,
    password_file: Option<PathBuf>,
    /// libpq keys and values (sslmode, sslrootcert, …, then `options`).
    settings: Vec<(String, String)>,
    reach: Reach,
    allow_unverified_password_auth: bool,
}

impl fmt::Debug for AuthModule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthModule")
            .field("name", &self.name)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("password_file", &self.password_file)
            .field("settings", &self.settings)
            .field("reach", &self.reach)
            .field(
                "allow_unverified_password_auth",
                &self.allow_unverified_password_auth,
            )
            .finish()
    }
}

/// libpq key=value quoting, for values we hand to `Dsn::parse`.
fn quote(v: &str) -> String {
    format!("'{}'", v.replace('\\', "\\\\").replace('\'', "\\'"))
}

fn read_password(path: &PathBuf) -> Result<String, String> {
    std::fs::read_to_string(path)
        .map(|pw| pw.trim_end_matches(['\n', '\r']).to_string())
        .map_err(|e| format!("cannot read password_file {path:?}: {e}"))
}

impl AuthModule {
    /// Checked before anything else about a target, so a refused target
    /// gets no connection, no DNS lookup and no password.
    pub(super) fn permits(&self, target: &Target) -> Result<(), ProbeError> {
        match &self.reach {
            Reach::Any => Ok(()),
            Reach::Only(list) if list.iter().any(|a| a.permits(target)) => Ok(()),
            Reach::Only(list) => Err(ProbeError::NotAllowed {
                module: self.name.clone(),
                none_listed: list.is_empty(),
            }),
        }
    }

    /// The connection settings for `target` (the password file is read
    /// now, so a rotated secret applies to the next target created).
    pub(super) fn dsn(&self, target: &Target) -> Result<Dsn, String> {
        // No /dbname: `postgres`, as documented (libpq would take the user's name).
        let db = target.dbname.as_deref().unwrap_or("postgres");
        let mut kv = format!(
            "host={} port={} dbname={}",
            quote(&target.host),
            target.port,
            quote(db)
        );
        if let Some(u) = &self.user {
            kv.push_str(&format!(" user={}", quote(u)));
        }
        for (k, v) in &self.settings {
            kv.push_str(&format!(" {k}={}", quote(v)));
        }
        let mut dsn = Dsn::parse(&kv)?;
        dsn.password = match &self.password_file {
            Some(path) => Some(read_password(path)?),
            None => self.password.clone(),
        };
        dsn.refuse_unverified_password = !self.allow_unverified_password_auth;
        Ok(dsn)
    }
}

/// `PGMAINT_CONFIG_FILE`'s auth modules, read and checked at start (none
/// when it is not set); a bad file is a start-up error naming the setting.
pub fn auth_modules(config: &Config) -> Result<BTreeMap<String, AuthModule>, ConfigError> {
    match &config.config_file {
        None => Ok(BTreeMap::new()),
        Some(path) => load_config_file(path).map_err(|reason| ConfigError::Bad {
            var: "PGMAINT_CONFIG_FILE",
            reason,
        }),
    }
}

/// Reads and checks `PGMAINT_CONFIG_FILE`; the error names the module and key.
pub fn load_config_file(path: &str) -> Result<BTreeMap<String, AuthModule>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {path:?}: {e}"))?;
    parse_config_file(&text).map_err(|e| format!("{path}: {e}"))
}

pub(super) fn parse_config_file(text: &str) -> Result<BTreeMap<String, AuthModule>, String> {
    let raw: RawFile = serde_norway::from_str(text).map_err(|e| format!("not a valid config file: {e}"))?;
    let mut out = BTreeMap::new();
    for (name, m) in raw.auth_modules {
        let bad = |what: String| format!("auth_modules.{name}: {what}");
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
        {
            return Err(bad("a module name is letters, digits, '_', '-' or '.'".into()));
        }
        if m.password.is_some() && m.password_file.is_some() {
            return Err(bad("set password or password_file, not both".into()));
        }
        let password_file = m.password_file.map(PathBuf::from);
        if let Some(p) = &password_file {
            read_password(p).map_err(&bad)?;
        }
        let mut settings = Vec::new();
        for (k, v) in [
            ("sslmode", m.sslmode),
            ("sslrootcert", m.sslrootcert),
            ("sslcert", m.sslcert),
            ("sslkey", m.sslkey),
        ] {
            if let Some(v) = v {
                settings.push((k.to_string(), v));
            }
        }
        let reach = match (m.allowed_targets, m.allow_any_target) {
            (Some(_), true) => {
                return Err(bad(
                    "set allowed_targets or allow_any_target: true, not both".into()
                ))
            }
            (None, true) => Reach::Any,
            (list, false) => Reach::Only(
                list.unwrap_or_default()
                    .iter()
                    .map(|a| Allowed::parse(a))
                    .collect::<Result<_, _>>()
                    .map_err(&bad)?,
            ),
        };
        for (k, v) in m.options {
            if MODULE_TLS_KEYS.contains(&k.as_str()) {
                return Err(bad(format!(
                    "options.{k}: set {k} on the module itself (an option may never change the module's TLS settings)"
                )));
            }
            if RESERVED_OPTIONS.contains(&k.as_str()) {
                return Err(bad(format!(
                    "options.{k}: not allowed here (the target gives host, port and dbname; the module's own user/password/password_file give credentials)"
                )));
            }
            let v = match v {
                serde_norway::Value::String(s) => s,
                serde_norway::Value::Number(n) => n.to_string(),
                serde_norway::Value::Bool(b) => b.to_string(),
                _ => {
                    return Err(bad(format!(
                        "options.{k}: a value is a string, number or boolean"
                    )))
                }
            };
            settings.push((k, v));
        }
        for (k, v) in &settings {
            if !k.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
                return Err(bad(format!("options.{k}: not a connection parameter")));
            }
            Dsn::parse(&format!("{k}={}", quote(v))).map_err(|e| bad(format!("{k}: {e}")))?;
        }
        out.insert(
            name.clone(),
            AuthModule {
                name,
                user: m.user,
                password: m.password,
                password_file,
                settings,
                reach,
                allow_unverified_password_auth: m.allow_unverified_password_auth,
            },
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;
    use axum::response::IntoResponse;
    use std::time::Duration;

    #[test]
    fn config_file_is_checked() {
        let m = parse_config_file(
            "auth_modules:\n  fleet:\n    user: mon\n    password: s3cret\n    sslmode: require\n    options:\n      connect_timeout: 3\n",
        )
        .unwrap();
        let dsn = m["fleet"].dsn(&Target::parse("h:5433/x").unwrap()).unwrap();
        assert_eq!(dsn.hosts, ["h"]);
        assert_eq!(dsn.ports, [5433]);
        assert_eq!(dsn.user.as_deref(), Some("mon"));
        assert_eq!(dsn.password.as_deref(), Some("s3cret"));
        assert_eq!(dsn.connect_timeout, Some(Duration::from_secs(3)));
        assert!(!format!("{:?}", m["fleet"]).contains("s3cret"));

        let err = |text: &str| parse_config_file(text).unwrap_err();
        assert!(err("auth_modules:\n  a:\n    usr: x\n").contains("usr"));
        assert!(
            err("auth_modules:\n  a:\n    password: x\n    password_file: /y\n")
                .starts_with("auth_modules.a:")
        );
        assert!(err("auth_modules:\n  a:\n    sslmode: maybe\n").contains("sslmode"));
        assert!(err("auth_modules:\n  a:\n    options: {host: x}\n").contains("options.host"));
        assert!(err("auth_modules:\n  a:\n    options: {bogus: x}\n").contains("bogus"));
        assert!(err("auth_modules:\n  a:\n    password_file: /nonexistent/pw\n").contains("/nonexistent/pw"));
        assert!(err("modules: {}\n").contains("modules"));
        for k in ["sslmode: disable", "sslrootcert: /x", "sslcert: /x", "sslkey: /x"] {
            let e = err(&format!(
                "auth_modules:\n  a:\n    sslmode: verify-full\n    options: {{{k}}}\n"
            ));
            assert!(e.contains("may never change"), "{e}");
        }
        assert!(
            err("auth_modules:\n  a:\n    allowed_targets: [h]\n    allow_any_target: true\n")
                .contains("not both")
        );
        assert!(err("auth_modules:\n  a:\n    allowed_targets: [\"10.0.0.0/33\"]\n").contains("10.0.0.0/33"));
        assert!(err("auth_modules:\n  a:\n    allowed_targets: [\"h/db\"]\n").contains("h/db"));
    }

    #[test]
    fn the_shipped_example_parses() {
        let text = include_str!("../../examples/auth-modules.yml");
        let pw = std::env::temp_dir().join(format!("pgmaint-example-pw-{}", std::process::id()));
        std::fs::write(&pw, "x\n").unwrap();
        let text = regex::Regex::new(r"password_file: \S+")
            .unwrap()
            .replace_all(text, format!("password_file: {}", pw.display()).as_str())
            .into_owned();
        let m = parse_config_file(&text);
        let _ = std::fs::remove_file(&pw);
        let m = m.unwrap();
        let allowed = |name: &str, t: &str| m[name].permits(&Target::parse(t).unwrap()).is_ok();
        assert!(allowed("fleet", "db-3.example.internal:5432"));
        assert!(!allowed("fleet", "db-3.example.internal:6432"));
        assert!(allowed("readonly_replicas", "10.20.3.4:5433"));
        assert!(!allowed("readonly_replicas", "db-1.example.internal"));
    }

    #[test]
    fn allowed_targets_match() {
        let m = parse_config_file(
            "auth_modules:\n  a:\n    allowed_targets: [db1.example, \"db2:5433\", 10.1.0.0/16, \"192.0.2.7:5432\", \"[2001:db8::5]:6000\", \"fd00::/8\"]\n  none: {}\n  any:\n    allow_any_target: true\n",
        )
        .unwrap();
        let allowed = |name: &str, t: &str| m[name].permits(&Target::parse(t).unwrap()).is_ok();
        for t in [
            "db1.example",
            "DB1.example:6543",
            "db2:5433",
            "10.1.2.3:5432",
            "10.1.255.255",
            "192.0.2.7",
            "[2001:db8::5]:6000",
            "[fd12::1]:5432",
            "[::ffff:10.1.0.1]",
        ] {
            assert!(allowed("a", t), "{t}");
            assert!(allowed("any", t), "{t}");
            assert!(!allowed("none", t), "{t}");
        }
        for t in [
            "db1.example.evil",
            "db2",
            "db2:5432",
            "10.2.0.1",
            "192.0.2.7:5433",
            "[2001:db8::5]",
            "[2001:db8::6]:6000",
            "127.0.0.1",
            "localhost",
            "10.1.0.1.nip.io",
        ] {
            assert!(!allowed("a", t), "{t}");
        }
        let e = m["none"].permits(&Target::parse("h").unwrap()).unwrap_err();
        assert!(e.to_string().contains("allow_any_target"), "{e}");
        assert_eq!(e.into_response().status(), StatusCode::FORBIDDEN);
    }
}
