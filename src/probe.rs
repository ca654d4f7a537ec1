//! `/probe?target=host:port[/dbname]&auth_module=NAME[&database=NAME]`: one
//! exporter watching many PostgreSQL servers, in the convention of
//! blackbox_exporter and postgres_exporter.
//!
//! A target names a server; its optional database is the one the exporter
//! connects to first (cluster-wide collectors run there, default `postgres`),
//! and per-database collectors fan out to that server's databases under the
//! usual `PGMAINT_INCLUDE/EXCLUDE_DATABASES` rules — so one target per
//! server. `&database=` narrows the fan-out to one database. `module=` is
//! accepted for `auth_module=` (prometheus-operator's `Probe` sends `module`).
//!
//! Credentials come only from auth modules in `PGMAINT_CONFIG_FILE` (YAML):
//! a query string never carries a user, a password or a DSN with either, and
//! such a request is refused with 400. Each (target, auth module, database)
//! gets a `Scraper` of its own — pools, discovery, caches and the same
//! coalescing as `/metrics` (an `App` per target) — created on first probe,
//! closed after `PGMAINT_TARGET_IDLE_TIMEOUT` without probes. At most
//! `PGMAINT_MAX_TARGETS` exist at once: a new target past it replaces the
//! least recently probed target that is not being probed right now, and if
//! every target is mid-probe the request gets 503. Open connections across
//! all targets stay within `PGMAINT_MAX_CONNECTIONS_TOTAL` (`SharedBound`).
//! An unreachable target answers 200 with `pg_up 0` at the scrape deadline,
//! whatever the reason, so `/probe` tells a closed port from a silent one by
//! neither timing nor body.
//!
//! Whoever can reach `/probe` names the target, so a module's credentials go
//! only to its `allowed_targets` (403 for any other, before any connection;
//! a module without the list refuses all unless `allow_any_target: true`),
//! and a cleartext or md5 password only to a server whose certificate was
//! verified unless the module sets `allow_unverified_password_auth: true`
//! (`auth_guard.rs`). `options` never override the module's TLS keys.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tracing::{info, warn};

use crate::config::Config;
use crate::dsn::Dsn;
use crate::pool::SharedBound;
use crate::scrape::Scraper;
use crate::server::{scrape_timeout, App, AppState};

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

/// One entry of `allowed_targets`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Allowed {
    /// A host name, compared without case; `None`: any port.
    Name { host: String, port: Option<u16> },
    /// An address or CIDR block (`prefix` bits), any port unless given.
    Net {
        addr: IpAddr,
        prefix: u8,
        port: Option<u16>,
    },
}

impl Allowed {
    /// `db1`, `db1:5433`, `10.0.0.5`, `10.0.0.5:5432`, `[2001:db8::5]:5432`,
    /// `2001:db8::5`, `10.0.0.0/8`, `2001:db8::/32`.
    fn parse(s: &str) -> Result<Allowed, String> {
        let bad = || {
            format!(
                "allowed_targets entry {s:?} is not a host, host:port, address, [IPv6]:port or CIDR block"
            )
        };
        let s = s.trim();
        if let Some((addr, bits)) = s.split_once('/') {
            let addr: IpAddr = addr.parse().map_err(|_| bad())?;
            let max = if addr.is_ipv4() { 32 } else { 128 };
            let prefix = bits.parse::<u8>().ok().filter(|b| *b <= max).ok_or_else(bad)?;
            return Ok(Allowed::Net {
                addr: addr.to_canonical(),
                prefix,
                port: None,
            });
        }
        if let Ok(addr) = s.parse::<IpAddr>() {
            return Ok(Allowed::Net {
                addr: addr.to_canonical(),
                prefix: if addr.is_ipv4() { 32 } else { 128 },
                port: None,
            });
        }
        let t = Target::parse(s).map_err(|_| bad())?;
        if t.dbname.is_some() || s.ends_with('/') {
            return Err(bad());
        }
        let port = (s.starts_with('[') || s.contains(':')).then_some(t.port);
        Ok(match t.host.parse::<IpAddr>() {
            Ok(addr) => Allowed::Net {
                addr: addr.to_canonical(),
                prefix: if addr.is_ipv4() { 32 } else { 128 },
                port,
            },
            Err(_) => Allowed::Name {
                host: t.host.to_ascii_lowercase(),
                port,
            },
        })
    }

    /// Names match names, addresses match addresses: a name is never
    /// resolved here (a DNS answer could change before the connection).
    fn permits(&self, target: &Target) -> bool {
        let port_ok = |p: &Option<u16>| !p.is_some_and(|p| p != target.port);
        match (self, target.host.parse::<IpAddr>()) {
            (Allowed::Name { host, port }, Err(_)) => {
                host.eq_ignore_ascii_case(&target.host) && port_ok(port)
            }
            (Allowed::Net { addr, prefix, port }, Ok(ip)) => {
                in_block(ip.to_canonical(), *addr, *prefix) && port_ok(port)
            }
            _ => false,
        }
    }
}

fn in_block(ip: IpAddr, net: IpAddr, prefix: u8) -> bool {
    let (ip, net, bits) = match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(b)) => (u128::from(u32::from(a)), u128::from(u32::from(b)), 32),
        (IpAddr::V6(a), IpAddr::V6(b)) => (u128::from(a), u128::from(b), 128),
        _ => return false,
    };
    let shift = bits - u32::from(prefix);
    shift >= bits || (ip >> shift) == (net >> shift)
}

/// Which targets a module may be used for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Reach {
    /// `allow_any_target: true`.
    Any,
    /// `allowed_targets`; empty when the module has neither.
    Only(Vec<Allowed>),
}

/// Query parameters that would carry credentials: always refused.
const CREDENTIAL_PARAMS: &[&str] = &[
    "user",
    "username",
    "password",
    "passfile",
    "sslpassword",
    "dsn",
    "data_source_name",
];

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
    fn permits(&self, target: &Target) -> Result<(), ProbeError> {
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
    fn dsn(&self, target: &Target) -> Result<Dsn, String> {
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

/// Reads and checks `PGMAINT_CONFIG_FILE`; the error names the module and key.
pub fn load_config_file(path: &str) -> Result<BTreeMap<String, AuthModule>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {path:?}: {e}"))?;
    parse_config_file(&text).map_err(|e| format!("{path}: {e}"))
}

fn parse_config_file(text: &str) -> Result<BTreeMap<String, AuthModule>, String> {
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

/// A probed server: `host:port[/dbname]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Target {
    pub host: String,
    pub port: u16,
    pub dbname: Option<String>,
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)?;
        } else {
            write!(f, "{}:{}", self.host, self.port)?;
        }
        if let Some(d) = &self.dbname {
            write!(f, "/{d}")?;
        }
        Ok(())
    }
}

const TARGET_FORM: &str =
    "target is host, host:port or host:port/dbname (an optional postgresql:// in front, nothing else)";

impl Target {
    /// Parses a target; never echoes it when it may hold a password.
    pub fn parse(s: &str) -> Result<Target, ProbeError> {
        let s = s.trim();
        let rest = s
            .strip_prefix("postgresql://")
            .or_else(|| s.strip_prefix("postgres://"))
            .unwrap_or(s);
        if rest.contains('@') || rest.contains("password") {
            return Err(ProbeError::Credentials);
        }
        let bad = || ProbeError::BadTarget(format!("{TARGET_FORM}; got {s:?}"));
        if rest.is_empty() || rest.contains(['?', '=', ',', ' ', '\t', '&', '#', '%']) {
            return Err(bad());
        }
        let (authority, dbname) = match rest.split_once('/') {
            Some((a, d)) => (a, Some(d).filter(|d| !d.is_empty())),
            None => (rest, None),
        };
        if dbname.is_some_and(|d| d.contains('/')) {
            return Err(bad());
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (h, after) = v6.split_once(']').ok_or_else(bad)?;
            if h.parse::<std::net::Ipv6Addr>().is_err() {
                return Err(bad());
            }
            match after {
                "" => (h, None),
                a => (h, Some(a.strip_prefix(':').ok_or_else(bad)?)),
            }
        } else {
            match authority.split_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            }
        };
        let port = match port {
            None => 5432,
            Some(p) => p.parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(bad)?,
        };
        if host.is_empty()
            || !host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || ".-_:".contains(c))
        {
            return Err(bad());
        }
        Ok(Target {
            host: host.to_string(),
            port,
            dbname: dbname.map(String::from),
        })
    }
}

/// Why a probe request was refused. Bodies name what was wrong and never
/// carry a credential.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("missing target: /probe?target=host:port[/dbname]&auth_module=NAME")]
    MissingTarget,
    #[error("missing auth_module: credentials come from an auth module in PGMAINT_CONFIG_FILE ({0})")]
    MissingModule(String),
    #[error("unknown auth_module {name:?}: {known}")]
    UnknownModule { name: String, known: String },
    #[error(
        "credentials are never taken from the query string: remove user/password (or user:password@ in target) \
         and name an auth module of PGMAINT_CONFIG_FILE with auth_module="
    )]
    Credentials,
    #[error("{0}")]
    BadTarget(String),
    #[error("unknown parameter {0:?}: /probe accepts target, auth_module (or module) and database")]
    UnknownParam(String),
    #[error("parameter {0:?} given twice")]
    Repeated(String),
    #[error(
        "target not allowed for auth module {module:?}{}",
        if *none_listed {
            ": the module has no allowed_targets (list the servers it is for, or set allow_any_target: true, which lets anyone who can reach /probe send its credentials anywhere)"
        } else {
            " (allowed_targets)"
        }
    )]
    NotAllowed { module: String, none_listed: bool },
    #[error("auth module {module:?}: {reason}")]
    Module { module: String, reason: String },
    #[error(
        "all {0} targets (PGMAINT_MAX_TARGETS) are being probed right now; retry, or raise PGMAINT_MAX_TARGETS"
    )]
    Full(usize),
}

impl IntoResponse for ProbeError {
    fn into_response(self) -> Response {
        let status = match self {
            ProbeError::Full(_) | ProbeError::Module { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ProbeError::NotAllowed { .. } => StatusCode::FORBIDDEN,
            _ => StatusCode::BAD_REQUEST,
        };
        (
            status,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            format!("{self}\n"),
        )
            .into_response()
    }
}

/// The key of one probed target.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    target: Target,
    module: String,
    database: Option<String>,
}

struct Entry {
    app: AppState,
    last_used: Instant,
}

/// The targets of `/probe`, their scrapers and the bound they share.
pub struct Probes {
    modules: Arc<BTreeMap<String, AuthModule>>,
    /// The exporter's settings, applied to every target.
    base: Config,
    shared: Arc<SharedBound>,
    targets: Mutex<HashMap<Key, Entry>>,
    reaper: AtomicBool,
}

impl Probes {
    pub fn new(config: &Config) -> Arc<Probes> {
        let mut base = config.clone();
        // Targets never probe further, and host collectors (backup
        // directories, WAL archive) describe this host, not the target.
        base.auth_modules = Default::default();
        base.backup_dirs.clear();
        base.wal_archive_dir = None;
        base.collectors.retain(|c| !["backup", "wal_archive"].contains(c));
        Arc::new(Probes {
            modules: config.auth_modules.clone(),
            shared: SharedBound::new(config.max_connections_total),
            base,
            targets: Mutex::new(HashMap::new()),
            reaper: AtomicBool::new(false),
        })
    }

    /// Targets held right now.
    pub fn targets(&self) -> usize {
        self.targets.lock().unwrap().len()
    }

    /// Open connections across every target.
    pub fn open_connections(&self) -> usize {
        self.shared.open_connections()
    }

    fn module(&self, name: Option<String>) -> Result<&AuthModule, ProbeError> {
        let known = if self.modules.is_empty() {
            "none is configured: set PGMAINT_CONFIG_FILE with auth_modules".to_string()
        } else {
            format!(
                "configured modules are {}",
                self.modules.keys().cloned().collect::<Vec<_>>().join(", ")
            )
        };
        let Some(name) = name else {
            return Err(ProbeError::MissingModule(known));
        };
        self.modules
            .get(&name)
            .ok_or(ProbeError::UnknownModule { name, known })
    }

    /// The target's `App`, created if new.
    fn app(self: &Arc<Self>, key: Key, module: &AuthModule) -> Result<AppState, ProbeError> {
        self.start_reaper();
        let mut targets = self.targets.lock().unwrap();
        if let Some(e) = targets.get_mut(&key) {
            e.last_used = Instant::now();
            return Ok(e.app.clone());
        }
        if targets.len() >= self.base.max_targets {
            // The least recently probed target that nobody is probing now.
            let victim = targets
                .iter()
                .filter(|(_, e)| Arc::strong_count(&e.app) == 1)
                .min_by_key(|(_, e)| e.last_used)
                .map(|(k, _)| k.clone());
            let Some(victim) = victim else {
                return Err(ProbeError::Full(self.base.max_targets));
            };
            if let Some(e) = targets.remove(&victim) {
                info!(target = %victim.target, auth_module = %victim.module, "closing the least recently probed target: PGMAINT_MAX_TARGETS reached");
                close(e);
            }
        }
        let dsn = module.dsn(&key.target).map_err(|reason| ProbeError::Module {
            module: module.name.clone(),
            reason,
        })?;
        let mut config = self.base.clone();
        config.dsn = dsn;
        if let Some(db) = &key.database {
            config.include_databases =
                vec![regex::Regex::new(&format!("^{}$", regex::escape(db))).expect("escaped")];
        }
        info!(target = %key.target, auth_module = %key.module, database = key.database.as_deref().unwrap_or(""), "new probe target");
        let app = App::new(Scraper::with_shared_bound(config, self.shared.clone()));
        targets.insert(
            key,
            Entry {
                app: app.clone(),
                last_used: Instant::now(),
            },
        );
        Ok(app)
    }

    fn touch(&self, key: &Key) {
        if let Some(e) = self.targets.lock().unwrap().get_mut(key) {
            e.last_used = Instant::now();
        }
    }

    /// Closes targets idle for `PGMAINT_TARGET_IDLE_TIMEOUT`.
    fn sweep(&self) {
        let idle = self.base.target_idle_timeout;
        let mut closed = Vec::new();
        self.targets.lock().unwrap().retain(|k, e| {
            let keep = e.last_used.elapsed() < idle || Arc::strong_count(&e.app) > 1;
            if !keep {
                closed.push((k.clone(), e.app.clone()));
            }
            keep
        });
        for (k, app) in closed {
            info!(target = %k.target, auth_module = %k.module, "closing idle probe target");
            close(Entry {
                app,
                last_used: Instant::now(),
            });
        }
    }

    fn start_reaper(self: &Arc<Self>) {
        if self.reaper.swap(true, Ordering::Relaxed) {
            return;
        }
        let every =
            (self.base.target_idle_timeout / 4).clamp(Duration::from_millis(100), Duration::from_secs(30));
        let probes: Weak<Probes> = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                match probes.upgrade() {
                    Some(p) => p.sweep(),
                    None => return,
                }
            }
        });
    }
}

/// Closes a target's pools now; its connections go as they are dropped.
fn close(e: Entry) {
    e.app.scraper.pools().retain_databases(&[]);
}

/// `GET /probe`.
pub async fn handle(probes: Arc<Probes>, params: Vec<(String, String)>, headers: HeaderMap) -> Response {
    let arrived = Instant::now();
    let (key, app) = match request(&probes, params) {
        Ok(x) => x,
        Err(e) => {
            if matches!(e, ProbeError::Full(_) | ProbeError::Module { .. }) {
                warn!(error = %e, "probe refused");
            }
            return e.into_response();
        }
    };
    let timeout = scrape_timeout(probes.base.scrape_timeout, &headers);
    let expo = app.shared_scrape(arrived, timeout).await;
    drop(app);
    probes.touch(&key);
    crate::server::exposition_response(Arc::clone(&expo.expo))
}

fn request(probes: &Arc<Probes>, params: Vec<(String, String)>) -> Result<(Key, AppState), ProbeError> {
    let (mut target, mut module, mut database) = (None, None, None);
    for (k, v) in params {
        let slot = match k.as_str() {
            "target" => &mut target,
            // `module`: what prometheus-operator's Probe (and blackbox) send.
            "auth_module" | "module" => &mut module,
            "database" => &mut database,
            k if CREDENTIAL_PARAMS.contains(&k.to_ascii_lowercase().as_str()) => {
                return Err(ProbeError::Credentials)
            }
            _ => return Err(ProbeError::UnknownParam(k)),
        };
        if slot.replace(v).is_some() {
            return Err(ProbeError::Repeated(k));
        }
    }
    let target = Target::parse(&target.ok_or(ProbeError::MissingTarget)?)?;
    let module = probes.module(module)?;
    module.permits(&target)?;
    let database = database.filter(|d| !d.is_empty());
    let key = Key {
        target,
        module: module.name.clone(),
        database,
    };
    let app = probes.app(key.clone(), module)?;
    Ok((key, app))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        let t = Target::parse("db1.example:5433/app").unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.dbname.as_deref()),
            ("db1.example", 5433, Some("app"))
        );
        assert_eq!(t.to_string(), "db1.example:5433/app");
        let t = Target::parse("postgresql://db1").unwrap();
        assert_eq!((t.port, t.dbname), (5432, None));
        let t = Target::parse("[::1]:6000").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("::1", 6000));
        for bad in [
            "",
            "h:0",
            "h:99999",
            "h/db?sslmode=disable",
            "h1,h2",
            "h/a/b",
            "host=h",
            "[::1]junk",
            "[::1]junk:5432",
            "::1",
            "[::1]:0",
            "[db1]:5432",
        ] {
            assert!(
                matches!(Target::parse(bad), Err(ProbeError::BadTarget(_))),
                "{bad}"
            );
        }
        let e = Target::parse("postgresql://mon:hunter2@h/db").unwrap_err();
        assert!(matches!(e, ProbeError::Credentials));
        assert!(!e.to_string().contains("hunter2"));
    }

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
        let text = include_str!("../examples/auth-modules.yml");
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
