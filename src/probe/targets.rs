//! The targets of `/probe`: one `Coalescer` per (target, auth module,
//! database), created on first probe, closed when idle for
//! `PGMAINT_TARGET_IDLE_TIMEOUT` or evicted at `PGMAINT_MAX_TARGETS`.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use tracing::info;

use crate::collectors::Collector;
use crate::config::Config;
use crate::pool::SharedBound;
use crate::scrape::{Coalescer, Scraper};

use super::{AuthModule, ProbeError, Target};

/// The key of one probed target.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) struct Key {
    pub(super) target: Target,
    pub(super) module: String,
    pub(super) database: Option<String>,
}

struct Entry {
    app: Arc<Coalescer>,
    last_used: Instant,
}

/// The targets of `/probe`, their scrapers and the bound they share.
pub struct Probes {
    modules: Arc<BTreeMap<String, AuthModule>>,
    custom: Vec<&'static dyn Collector>,
    /// The exporter's settings, applied to every target.
    pub(super) base: Config,
    shared: Arc<SharedBound>,
    targets: Mutex<HashMap<Key, Entry>>,
}

impl Probes {
    /// `custom`: the custom queries every target runs too.
    pub fn new(
        config: &Config,
        modules: BTreeMap<String, AuthModule>,
        custom: &[&'static dyn Collector],
    ) -> Arc<Probes> {
        let mut base = config.clone();
        // Targets never probe further (their `App` gets no auth modules),
        // and host collectors (backup directories, WAL archive) describe
        // this host, not the target.
        base.backup_dirs.clear();
        base.wal_archive_dir = None;
        for host in ["backup", "wal_archive"] {
            base.collectors.turn_off(host);
        }
        Arc::new(Probes {
            modules: Arc::new(modules),
            custom: custom.to_vec(),
            shared: SharedBound::new(config.max_connections_total),
            base,
            targets: Mutex::new(HashMap::new()),
        })
    }

    /// The target map. A panic elsewhere while holding it cannot leave the
    /// map half-changed, so a poisoned lock is used as is, not a panic here.
    fn held(&self) -> MutexGuard<'_, HashMap<Key, Entry>> {
        self.targets.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Targets held right now.
    pub fn targets(&self) -> usize {
        self.held().len()
    }

    /// Open connections across every target.
    pub fn open_connections(&self) -> usize {
        self.shared.open_connections()
    }

    pub(super) fn module(&self, name: Option<String>) -> Result<&AuthModule, ProbeError> {
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

    /// The target's `Coalescer`, created if new.
    pub(super) fn app(&self, key: Key, module: &AuthModule) -> Result<Arc<Coalescer>, ProbeError> {
        self.sweep();
        let mut targets = self.held();
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
            // An escaped literal always parses; only a name past the regex
            // size limit is refused.
            let exact = regex::Regex::new(&format!("^{}$", regex::escape(db)))
                .map_err(|e| ProbeError::BadDatabase(e.to_string()))?;
            config.include_databases = vec![exact];
        }
        info!(target = %key.target, auth_module = %key.module, database = key.database.as_deref().unwrap_or(""), "new probe target");
        let app = Coalescer::new(Scraper::with_shared_bound(
            config,
            self.custom.clone(),
            self.shared.clone(),
        ))
        .map_err(|e| ProbeError::Internal(e.to_string()))?;
        let app = Arc::new(app);
        targets.insert(
            key,
            Entry {
                app: app.clone(),
                last_used: Instant::now(),
            },
        );
        Ok(app)
    }

    pub(super) fn touch(&self, key: &Key) {
        if let Some(e) = self.held().get_mut(key) {
            e.last_used = Instant::now();
        }
    }

    /// Closes targets idle for `PGMAINT_TARGET_IDLE_TIMEOUT`; called on
    /// every probe and every `/metrics` scrape (`Gauges`).
    pub(super) fn sweep(&self) {
        let idle = self.base.target_idle_timeout;
        let mut closed = Vec::new();
        self.held().retain(|k, e| {
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
}

/// Closes a target's pools now; its connections go as they are dropped.
fn close(e: Entry) {
    e.app.scraper.pools().retain_databases(&[]);
}
