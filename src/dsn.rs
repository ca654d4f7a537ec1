//! Connection strings, parsed by us.
//!
//! Accepts libpq's two forms — a URL (`postgresql://user:pw@host:port/db?sslmode=require`)
//! and key=value pairs (`host=/run/postgresql dbname=app sslrootcert=/ca.pem`).
//! tokio-postgres' own parser rejects keys users will pass (`sslrootcert`,
//! `sslcert`, `sslkey`, `sslmode=verify-full`), so we parse them ourselves and
//! keep them for TLS. The password is never printed: `Display` and `Debug` redact it.

use std::fmt;
use std::time::Duration;

/// libpq's `sslmode` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SslMode {
    Disable,
    Allow,
    #[default]
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "disable" => Self::Disable,
            "allow" => Self::Allow,
            "prefer" => Self::Prefer,
            "require" => Self::Require,
            "verify-ca" => Self::VerifyCa,
            "verify-full" => Self::VerifyFull,
            _ => return None,
        })
    }
}

/// A parsed connection string.
#[derive(Clone, Default, PartialEq)]
pub struct Dsn {
    pub hosts: Vec<String>,
    pub ports: Vec<u16>,
    pub user: Option<String>,
    pub password: Option<String>,
    pub dbname: Option<String>,
    pub sslmode: SslMode,
    pub sslrootcert: Option<String>,
    pub sslcert: Option<String>,
    pub sslkey: Option<String>,
    pub connect_timeout: Option<Duration>,
    /// libpq's `channel_binding` (`None`: tokio-postgres' default, prefer).
    pub channel_binding: Option<ChannelBinding>,
    /// Refuse a server's request for a cleartext or md5 password unless the
    /// server's certificate was verified (set for `/probe` auth modules
    /// without `allow_unverified_password_auth`; see `tls.rs`).
    pub refuse_unverified_password: bool,
}

/// libpq's `channel_binding` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelBinding {
    Disable,
    Prefer,
    Require,
}

impl Dsn {
    /// Parses either form; the error says what was wrong without echoing the password.
    pub fn parse(s: &str) -> Result<Dsn, String> {
        let s = s.trim();
        if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            Self::parse_url(s)
        } else {
            Self::parse_kv(s)
        }
    }

    /// The database the exporter connects to first (cluster-wide collectors run there).
    pub fn dbname_or_default(&self) -> String {
        self.dbname
            .clone()
            .or_else(|| self.user.clone())
            .unwrap_or_else(|| "postgres".into())
    }

    /// A tokio-postgres config for `dbname` with the exporter's session settings.
    /// (Timeouts and read-only mode are set right after connecting, see `pool.rs`.)
    pub fn to_pg_config(&self, dbname: &str) -> tokio_postgres::Config {
        let mut c = tokio_postgres::Config::new();
        if self.hosts.is_empty() {
            c.host("localhost");
        }
        for h in &self.hosts {
            c.host(h);
        }
        for p in &self.ports {
            c.port(*p);
        }
        if let Some(u) = &self.user {
            c.user(u);
        } else {
            c.user(std::env::var("USER").unwrap_or_else(|_| "postgres".into()));
        }
        if let Some(p) = &self.password {
            c.password(p);
        }
        c.dbname(dbname);
        c.application_name("pgmaint-exporter");
        c.connect_timeout(self.connect_timeout.unwrap_or(Duration::from_secs(5)));
        if let Some(cb) = self.channel_binding {
            c.channel_binding(match cb {
                ChannelBinding::Disable => tokio_postgres::config::ChannelBinding::Disable,
                ChannelBinding::Prefer => tokio_postgres::config::ChannelBinding::Prefer,
                ChannelBinding::Require => tokio_postgres::config::ChannelBinding::Require,
            });
        }
        c.ssl_mode(match self.sslmode {
            SslMode::Disable => tokio_postgres::config::SslMode::Disable,
            SslMode::Allow | SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
            _ => tokio_postgres::config::SslMode::Require,
        });
        c
    }

    fn set(&mut self, key: &str, value: String) -> Result<(), String> {
        match key {
            "host" | "hostaddr" => {
                self.hosts = value
                    .split(',')
                    .filter(|h| !h.is_empty())
                    .map(String::from)
                    .collect()
            }
            "port" => {
                self.ports = value
                    .split(',')
                    .map(|p| {
                        p.parse::<u16>()
                            .map_err(|_| format!("port {p:?} is not a number from 1 to 65535"))
                    })
                    .collect::<Result<_, _>>()?
            }
            "user" => self.user = Some(value),
            "password" => self.password = Some(value),
            "dbname" => self.dbname = Some(value),
            "sslmode" => {
                self.sslmode = SslMode::parse(&value).ok_or_else(|| {
                    format!(
                    "sslmode {value:?} is not one of disable, allow, prefer, require, verify-ca, verify-full"
                )
                })?
            }
            "channel_binding" => {
                self.channel_binding = Some(match value.as_str() {
                    "disable" => ChannelBinding::Disable,
                    "prefer" => ChannelBinding::Prefer,
                    "require" => ChannelBinding::Require,
                    _ => {
                        return Err(format!(
                            "channel_binding {value:?} is not one of disable, prefer, require"
                        ))
                    }
                })
            }
            "sslrootcert" => self.sslrootcert = Some(value),
            "sslcert" => self.sslcert = Some(value),
            "sslkey" => self.sslkey = Some(value),
            "connect_timeout" => {
                let secs: u64 = value
                    .parse()
                    .map_err(|_| format!("connect_timeout {value:?} is not a whole number of seconds"))?;
                self.connect_timeout = Some(Duration::from_secs(secs.max(1)));
            }
            // Accepted and ignored: the exporter sets its own.
            "application_name"
            | "options"
            | "target_session_attrs"
            | "keepalives"
            | "keepalives_idle"
            | "sslcompression"
            | "gssencmode"
            | "sslsni"
            | "fallback_application_name" => {}
            other => return Err(format!("unknown connection parameter {other:?}")),
        }
        Ok(())
    }

    fn parse_kv(s: &str) -> Result<Dsn, String> {
        let mut dsn = Dsn::default();
        let mut chars = s.chars().peekable();
        loop {
            while chars.peek().is_some_and(|c| c.is_whitespace()) {
                chars.next();
            }
            if chars.peek().is_none() {
                break;
            }
            let mut key = String::new();
            while let Some(&c) = chars.peek() {
                if c == '=' || c.is_whitespace() {
                    break;
                }
                key.push(c);
                chars.next();
            }
            while chars.peek().is_some_and(|c| c.is_whitespace()) {
                chars.next();
            }
            if chars.next() != Some('=') {
                return Err(format!("expected key=value, found {key:?} without '='"));
            }
            while chars.peek().is_some_and(|c| c.is_whitespace()) {
                chars.next();
            }
            let mut value = String::new();
            if chars.peek() == Some(&'\'') {
                chars.next();
                loop {
                    match chars.next() {
                        Some('\\') => value.push(chars.next().ok_or("unterminated quoted value")?),
                        Some('\'') => break,
                        Some(c) => value.push(c),
                        None => return Err("unterminated quoted value".into()),
                    }
                }
            } else {
                while let Some(&c) = chars.peek() {
                    if c.is_whitespace() {
                        break;
                    }
                    if c == '\\' {
                        chars.next();
                        if let Some(n) = chars.next() {
                            value.push(n);
                        }
                        continue;
                    }
                    value.push(c);
                    chars.next();
                }
            }
            dsn.set(&key, value)?;
        }
        Ok(dsn)
    }

    fn parse_url(s: &str) -> Result<Dsn, String> {
        let rest = s.split_once("://").map(|x| x.1).unwrap_or_default();
        let (rest, query) = match rest.split_once('?') {
            Some((a, q)) => (a, Some(q)),
            None => (rest, None),
        };
        let (authority, path) = match rest.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (rest, None),
        };
        let mut dsn = Dsn::default();
        let hostpart = match authority.rsplit_once('@') {
            Some((userinfo, host)) => {
                match userinfo.split_once(':') {
                    Some((u, p)) => {
                        dsn.user = Some(decode(u)?);
                        dsn.password = Some(decode(p)?);
                    }
                    None => dsn.user = Some(decode(userinfo)?),
                }
                host
            }
            None => authority,
        };
        for hp in hostpart.split(',').filter(|h| !h.is_empty()) {
            let (host, port) = if let Some(stripped) = hp.strip_prefix('[') {
                // [::1]:5432
                let (h, after) = stripped
                    .split_once(']')
                    .ok_or_else(|| format!("bad IPv6 host {hp:?}"))?;
                (h.to_string(), after.strip_prefix(':'))
            } else {
                match hp.rsplit_once(':') {
                    Some((h, p)) => (decode(h)?, Some(p)),
                    None => (decode(hp)?, None),
                }
            };
            if !host.is_empty() {
                dsn.hosts.push(host);
            }
            if let Some(p) = port {
                dsn.ports.push(
                    p.parse()
                        .map_err(|_| format!("port {p:?} is not a number from 1 to 65535"))?,
                );
            }
        }
        if let Some(p) = path.filter(|p| !p.is_empty()) {
            dsn.dbname = Some(decode(p)?);
        }
        if let Some(q) = query {
            for pair in q.split('&').filter(|p| !p.is_empty()) {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                dsn.set(&decode(k)?, decode(v)?)?;
            }
        }
        Ok(dsn)
    }
}

fn decode(s: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or("bad percent-encoding in connection URL")?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "connection URL is not valid UTF-8".to_string())
}

/// Redacted, libpq key=value style.
impl fmt::Display for Dsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "host={}", self.hosts.join(","))?;
        if !self.ports.is_empty() {
            let ports: Vec<String> = self.ports.iter().map(|p| p.to_string()).collect();
            write!(f, " port={}", ports.join(","))?;
        }
        if let Some(u) = &self.user {
            write!(f, " user={u}")?;
        }
        if self.password.is_some() {
            write!(f, " password=<redacted>")?;
        }
        if let Some(d) = &self.dbname {
            write!(f, " dbname={d}")?;
        }
        write!(f, " sslmode={:?}", self.sslmode)
    }
}

impl fmt::Debug for Dsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Dsn({self})")
    }
}

/// Replaces a password in a raw connection string, for error messages about it.
pub fn redact(raw: &str, password: Option<&str>) -> String {
    let mut out = raw.to_string();
    if let Some(p) = password.filter(|p| !p.is_empty()) {
        out = out.replace(p, "<redacted>");
    }
    // A URL whose password could not be parsed: hide userinfo wholesale.
    if let Some((scheme, rest)) = out.split_once("://") {
        if let Some((userinfo, host)) = rest.split_once('@') {
            if let Some((user, _)) = userinfo.split_once(':') {
                out = format!("{scheme}://{user}:<redacted>@{host}");
            }
        }
    }
    if let Some(i) = out.find("password=") {
        let end = out[i..].find(' ').map(|e| i + e).unwrap_or(out.len());
        out.replace_range(i..end, "password=<redacted>");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_with_everything() {
        let d = Dsn::parse(
            "postgresql://mon%40x:s3cr%3At@db1:5433,db2/app?sslmode=verify-full&sslrootcert=/ca.pem&sslcert=/c.pem&sslkey=/k.pem",
        )
        .unwrap();
        assert_eq!(d.user.as_deref(), Some("mon@x"));
        assert_eq!(d.password.as_deref(), Some("s3cr:t"));
        assert_eq!(d.hosts, vec!["db1", "db2"]);
        assert_eq!(d.ports, vec![5433]);
        assert_eq!(d.dbname.as_deref(), Some("app"));
        assert_eq!(d.sslmode, SslMode::VerifyFull);
        assert_eq!(d.sslrootcert.as_deref(), Some("/ca.pem"));
        assert_eq!(d.sslkey.as_deref(), Some("/k.pem"));
    }

    #[test]
    fn key_value_with_quotes() {
        let d = Dsn::parse(
            "host=/tmp port=5432 user=mon password='a b\\'c' dbname=x sslmode=require sslrootcert=/r.pem",
        )
        .unwrap();
        assert_eq!(d.hosts, vec!["/tmp"]);
        assert_eq!(d.password.as_deref(), Some("a b'c"));
        assert_eq!(d.sslmode, SslMode::Require);
    }

    #[test]
    fn bad_values_are_named() {
        assert!(Dsn::parse("host=x sslmode=maybe")
            .unwrap_err()
            .contains("sslmode"));
        assert!(Dsn::parse("postgres://h:99999/db").unwrap_err().contains("99999"));
        assert!(Dsn::parse("host=x bogus=1").unwrap_err().contains("bogus"));
    }

    #[test]
    fn password_never_displayed() {
        let d = Dsn::parse("postgresql://u:hunter2@h/db").unwrap();
        assert!(!format!("{d} {d:?}").contains("hunter2"));
        assert!(!redact("postgresql://u:hunter2@h/db", None).contains("hunter2"));
        assert!(!redact("host=h password=hunter2 user=u", None).contains("hunter2"));
    }
}
