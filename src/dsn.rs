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
    /// without `allow_unverified_password_auth`; see `tls/`).
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
        if s.is_empty() {
            return Err(
                "is empty: give a URL (postgresql://user@host:5432/dbname) or key=value pairs (host=… dbname=…)"
                    .into(),
            );
        }
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
                            .ok()
                            .filter(|p| *p > 0)
                            .ok_or_else(|| format!("port {p:?} is not a number from 1 to 65535"))
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
        let (pairs, error) = kv_pairs(s);
        if let Some(e) = error {
            return Err(e);
        }
        let mut dsn = Dsn::default();
        let mut after_password = false;
        for (key, value, quoted) in pairs {
            let is_password = key == "password" && !quoted;
            dsn.set(&key, value).map_err(|e| {
                // An unquoted password with a space makes its second word
                // look like a key: never echo it.
                if after_password && e.starts_with("unknown connection parameter") {
                    "unknown connection parameter after password (a password with spaces is quoted: password='…')"
                        .to_string()
                } else {
                    e
                }
            })?;
            after_password = is_password;
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
        if rest.trim_matches('/').is_empty() && query.is_none() {
            return Err("the URL names no server: postgresql://user@host:5432/dbname".into());
        }
        if !authority.contains('@') && path.is_some_and(|p| p.contains('@')) {
            // libpq reads `postgresql://u:pa/ss@h/db` as host `u`, port
            // `pa`: whatever it says would quote the password.
            return Err(
                "'@' after the first '/' of the URL: a password with '/', '@', '?' or '#' must be percent-encoded (%2F, %40, %3F, %23)"
                    .into(),
            );
        }
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
                    .ok_or("an IPv6 address in the URL lacks its closing ']'")?;
                if h.parse::<std::net::Ipv6Addr>().is_err() {
                    return Err("the URL's [ ] do not hold an IPv6 address".into());
                }
                let port = match after {
                    "" => None,
                    a => Some(
                        a.strip_prefix(':')
                            .ok_or("after an IPv6 address in brackets comes ':port' or nothing")?,
                    ),
                };
                (h.to_string(), port)
            } else if hp.matches(':').count() > 1 {
                return Err(
                    "an IPv6 address in a URL goes in brackets: postgresql://user@[::1]:5432/dbname".into(),
                );
            } else {
                match hp.split_once(':') {
                    Some((h, p)) => (decode(h)?, Some(p)),
                    None => (decode(hp)?, None),
                }
            };
            if !host.is_empty() {
                dsn.hosts.push(host);
            }
            if let Some(p) = port {
                // Not echoed: a malformed URL can put a password here.
                dsn.ports.push(
                    p.parse::<u16>()
                        .ok()
                        .filter(|p| *p > 0)
                        .ok_or("a port in the URL is not a number from 1 to 65535")?,
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

/// Percent-decoding by the `percent-encoding` crate. It passes a malformed
/// `%` through unchanged; libpq refuses one ("invalid percent-encoded
/// token"), and so do we, before decoding.
fn decode(s: &str) -> Result<String, String> {
    let well_formed = s.match_indices('%').all(|(i, _)| {
        s.get(i + 1..i + 3)
            .is_some_and(|h| h.bytes().all(|b| b.is_ascii_hexdigit()))
    });
    if !well_formed {
        return Err("bad percent-encoding in connection URL".to_string());
    }
    percent_encoding::percent_decode_str(s)
        .decode_utf8()
        .map(|d| d.into_owned())
        .map_err(|_| "connection URL is not valid UTF-8".to_string())
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

/// `key = value` pairs of the key=value form, as far as they parse, and
/// what went wrong after them. An error never quotes text that follows a
/// password (an unquoted password with spaces runs into the next "key").
fn kv_pairs(s: &str) -> (Vec<(String, String, bool)>, Option<String>) {
    let mut pairs: Vec<(String, String, bool)> = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() {
            return (pairs, None);
        }
        // Only an unquoted password can run into what follows.
        let after_password = pairs
            .last()
            .is_some_and(|(k, _, quoted)| k == "password" && !quoted);
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
            let e = if after_password {
                "expected key=value after the password (a password with spaces is quoted: password='…')"
                    .into()
            } else {
                format!("expected key=value, found {key:?} without '='")
            };
            return (pairs, Some(e));
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut value = String::new();
        let quoted = chars.peek() == Some(&'\'');
        if quoted {
            chars.next();
            loop {
                match chars.next() {
                    Some('\\') => match chars.next() {
                        Some(c) => value.push(c),
                        None => return (pairs, Some("unterminated quoted value".into())),
                    },
                    Some('\'') => break,
                    Some(c) => value.push(c),
                    None => return (pairs, Some("unterminated quoted value".into())),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                chars.next();
                if c == '\\' {
                    if let Some(n) = chars.next() {
                        value.push(n);
                    }
                    continue;
                }
                value.push(c);
            }
        }
        pairs.push((key, value, quoted));
    }
}

/// A raw connection string for error messages: every password, and
/// anything that may be one, hidden. URL: everything before the last '@'
/// (the user too), a `user:x` authority without '@', and `password=` in
/// the query. key=value: the pairs that parse, `password` hidden, and
/// nothing after the first one that does not.
pub fn redact(raw: &str, password: Option<&str>) -> String {
    let raw = raw.trim();
    let mut out = if let Some((scheme, rest)) = raw.split_once("://") {
        let rest = match rest.rsplit_once('@') {
            Some((_, after)) => format!("<redacted>@{after}"),
            None => {
                let end = rest.find(['/', '?']).unwrap_or(rest.len());
                let authority = &rest[..end];
                // `user:secret` mistaken for `host:port`.
                let suspicious = authority.split(',').any(|hp| {
                    !hp.starts_with('[')
                        && hp
                            .split_once(':')
                            .is_some_and(|(_, p)| !p.bytes().all(|b| b.is_ascii_digit()))
                });
                if suspicious {
                    format!("<redacted>{}", &rest[end..])
                } else {
                    rest.to_string()
                }
            }
        };
        let rest = match rest.split_once('?') {
            Some((before, query)) => {
                let query: Vec<String> = query
                    .split('&')
                    .map(|pair| match pair.split_once('=') {
                        Some((k, _)) if decode(k).is_ok_and(|k| k == "password") => format!("{k}=<redacted>"),
                        _ => pair.to_string(),
                    })
                    .collect();
                format!("{before}?{}", query.join("&"))
            }
            None => rest,
        };
        format!("{scheme}://{rest}")
    } else {
        let (mut pairs, mut error) = kv_pairs(raw);
        // After a password, a pair that is not a valid setting may be the
        // password's second word: stop there.
        if let Some(i) = (1..pairs.len()).find(|&i| {
            pairs[i - 1].0 == "password"
                && !pairs[i - 1].2
                && Dsn::default().set(&pairs[i].0, pairs[i].1.clone()).is_err()
        }) {
            pairs.truncate(i);
            error = Some(String::new());
        }
        let mut parts: Vec<String> = pairs
            .iter()
            .map(|(k, v, _)| {
                if k == "password" {
                    format!("{k}=<redacted>")
                } else if v.is_empty() || v.contains([' ', '\'', '\\']) {
                    format!("{k}='{}'", v.replace('\\', "\\\\").replace('\'', "\\'"))
                } else {
                    format!("{k}={v}")
                }
            })
            .collect();
        if error.is_some() {
            parts.push("…".into());
        }
        parts.join(" ")
    };
    if let Some(p) = password.filter(|p| !p.is_empty()) {
        out = out.replace(p, "<redacted>");
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
    fn malformed_percent_encoding_is_refused() {
        let d = Dsn::parse("postgresql://h/caf%C3%A9%20db").unwrap();
        assert_eq!(d.dbname.as_deref(), Some("café db"));
        for bad in [
            "postgresql://h/a%zz",
            "postgresql://h/a%4",
            "postgresql://h/a%",
            "postgresql://h/a%+1",
        ] {
            assert!(Dsn::parse(bad).is_err(), "{bad}");
        }
        assert!(Dsn::parse("postgresql://h/a%FF").is_err());
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
        assert!(Dsn::parse("postgres://h:99999/db").unwrap_err().contains("port"));
        assert!(Dsn::parse("host=x bogus=1").unwrap_err().contains("bogus"));
    }

    #[test]
    fn password_never_displayed() {
        let d = Dsn::parse("postgresql://u:hunter2@h/db").unwrap();
        assert!(!format!("{d} {d:?}").contains("hunter2"));
        assert!(!redact("postgresql://u:hunter2@h/db", None).contains("hunter2"));
        assert!(!redact("host=h password=hunter2 user=u", None).contains("hunter2"));
    }

    /// Issue 17 item 5: no error about a DSN, nor its redacted echo, holds
    /// any part of a password.
    #[test]
    fn errors_never_show_a_password() {
        for (raw, secrets) in [
            ("postgresql://postgres:hunter2/@host/db", &["hunter2"][..]),
            ("postgresql://postgres:hunter2/host/db", &["hunter2"]),
            ("postgresql://postgres:hun@ter2@host:99999/db", &["hun", "ter2"]),
            ("postgresql://u:hunter2@h/db?sslmode=maybe", &["hunter2"]),
            ("postgresql://h/db?password=hunter2&bogus=1", &["hunter2"]),
            ("host=localhost password = SpacedPw58 bogus=1", &["SpacedPw58"]),
            (
                "host=localhost password='two words59' bogus=1",
                &["two", "words59"],
            ),
            ("host=localhost password=two words59", &["two", "words59"]),
            ("host=localhost password=two words59=1", &["two", "words59"]),
            ("host=localhost password='two words59", &["two", "words59"]),
            ("host=localhost password=pw\\ x port=hunter", &["pw"]),
        ] {
            let e = Dsn::parse(raw).expect_err(raw);
            let shown = format!("{e} in {}", redact(raw, None));
            for s in secrets {
                assert!(!shown.contains(s), "{raw:?} shows {s:?}: {shown}");
            }
        }
        assert_eq!(
            redact("host=localhost password = SpacedPw58 bogus=1", None),
            "host=localhost password=<redacted> …"
        );
        // Quoted, the password cannot run into the next key: it is named.
        let e = Dsn::parse("host=localhost password='two words59' bogus=1").unwrap_err();
        assert!(e.contains("\"bogus\""), "{e}");
        assert_eq!(
            redact("host=localhost password='two words59' bogus=1", None),
            "host=localhost password=<redacted> bogus=1"
        );
        assert_eq!(
            redact("host=localhost password=x sslmode=require bogus=1", None),
            "host=localhost password=<redacted> sslmode=require bogus=1"
        );
        assert_eq!(
            redact("postgresql://u:pw@h:5432/db?password=x&sslmode=require", None),
            "postgresql://<redacted>@h:5432/db?password=<redacted>&sslmode=require"
        );
    }

    /// Issue 17 item 10: what libpq refuses, or what would silently mean
    /// another server, is an error.
    #[test]
    fn hosts_ports_and_empty_strings() {
        for bad in [
            "",
            "  ",
            "postgresql://",
            "postgres://",
            "postgresql:///",
            "postgresql://u@::1",
            "postgresql://[::1]junk/db",
            "postgresql://[::1/db",
            "postgresql://[nothost]:5432",
            "postgresql://h:0/db",
            "host=h port=0",
            "host=h port=5432,0",
        ] {
            assert!(Dsn::parse(bad).is_err(), "{bad:?} was accepted");
        }
        let d = Dsn::parse("postgresql://u@[::1]:6000/db").unwrap();
        assert_eq!(
            (d.hosts.as_slice(), d.ports.as_slice()),
            (&["::1".to_string()][..], &[6000][..])
        );
        let d = Dsn::parse("postgresql://u@[::1]/db").unwrap();
        assert_eq!((d.hosts.as_slice(), d.ports.len()), (&["::1".to_string()][..], 0));
        let d = Dsn::parse("host=::1 port=6000").unwrap();
        assert_eq!(d.hosts, ["::1"]);
        // Documented: no host is localhost; a database alone is fine.
        assert!(Dsn::parse("postgresql:///app").unwrap().hosts.is_empty());
        assert!(Dsn::parse("postgresql://?sslmode=require").is_ok());
    }
}
