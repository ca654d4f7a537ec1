//! The orchestrator: one scrape, end to end.
//!
//! It owns everything collectors must not do: connections, the deadline,
//! database discovery, fan-out, caches and the `pg_scrape_collector_*`
//! metrics. A scrape first reads server facts in the DSN's database (that
//! query decides `pg_up`), then runs cluster-wide collectors there and
//! per-database collectors in every discovered database, concurrently but
//! bounded by the pool's connection cap. All queries of one database are
//! pipelined on one connection. A collector that fails, or does not finish
//! before the deadline, reports `success 0` and takes nothing else down.
//!
//! Layout: `coalesce.rs` (one scrape at a time, results shared and reused),
//! `deadline.rs` (the scrape timeout of a request),
//! `run.rs` (one scrape: server facts, discovery, fan-out),
//! `execute.rs` (queries pipelined on a connection, host collectors),
//! `cache.rs` (cached collectors refreshed in the background),
//! `host_cache.rs` (backup verifications run in the background and kept),
//! `self_metrics.rs` (the exporter's own families).

mod cache;
mod coalesce;
mod deadline;
mod execute;
mod host_cache;
mod run;
mod self_metrics;

pub use coalesce::Coalescer;
pub use deadline::{scrape_timeout, timeout_from_header, TIMEOUT_HEADER};
pub use self_metrics::*;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use crate::collectors::{self, Collector, Scope, ServerInfo};
use crate::config::Config;
use crate::metrics::{Exposition, Sink};
use crate::pool::Pools;

use cache::Cached;

/// One collector's result for one database in one scrape.
#[derive(Debug, Clone)]
pub struct Run {
    pub collector: &'static str,
    /// "" for cluster-wide collectors.
    pub datname: String,
    pub success: bool,
    pub duration: Duration,
    pub sink: Arc<Sink>,
    /// True when the sink came from the cache (a fresh or stale hit, or a
    /// first run finished in the background); false when run in this scrape.
    pub from_cache: bool,
    /// The collector's `cache_ttl` (zero: not cached).
    pub cache_ttl: Duration,
    /// How old the data in `sink` is, for per-database collectors: zero when
    /// read in this scrape, the cache's age when served from cache
    /// (`pg_scrape_collector_age_seconds`, issue 22). `None`: cluster-wide,
    /// or nothing to report.
    pub age: Option<Duration>,
}

/// A finished scrape: what it learned, and its Prometheus text (which
/// shares the samples, not a copy).
pub struct Scraped {
    pub snap: Snapshot,
    pub expo: Arc<Exposition>,
}

/// Everything one scrape learned: the structured data `/metrics` encodes and
/// later features (the report) read.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub up: bool,
    pub server: Option<ServerInfo>,
    pub postmaster_start: Option<f64>,
    pub privileges: Vec<(&'static str, bool)>,
    pub databases: Vec<String>,
    pub runs: Vec<Run>,
    pub taken_at: SystemTime,
    pub duration: Duration,
}

/// When a per-database collector last succeeded, and what it reported.
type LastGood = (Instant, Arc<Sink>);

/// Long-lived scrape state: pools, discovery and result caches.
pub struct Scraper {
    config: Config,
    pools: Pools,
    discovered: Mutex<Option<(Instant, Vec<String>)>>,
    /// The discovered databases by oid (`ServerInfo::vacuuming`).
    database_oids: Mutex<HashMap<u32, String>>,
    cache: Mutex<HashMap<(&'static str, String), Cached>>,
    refreshing: Mutex<HashSet<(&'static str, String)>>,
    /// Turns for background refreshes: half the connection cap (at least 1).
    background: Arc<tokio::sync::Semaphore>,
    /// The last successful result of each per-database collector, when there
    /// are more databases than connections: served (with its age) for a
    /// database the deadline left out, and the stalest go first next time.
    last_good: Mutex<HashMap<(&'static str, String), LastGood>>,
    privilege_warned: AtomicBool,
    was_up: AtomicBool,
    /// Tools found on the host and directories found unreadable (`host/`).
    host: Arc<crate::host::HostState>,
    /// Backup verifications (`host_cache.rs`).
    host_cache: host_cache::HostCache,
    /// A `/probe` target: a failed connection is answered at the deadline,
    /// so a closed, filtered or non-PostgreSQL port looks the same to whoever
    /// names it (no port-scan oracle in the timing or the duration metric).
    pad_failures: bool,
    /// Custom queries (`custom_queries/`), run after the built-in collectors.
    custom: Vec<&'static dyn Collector>,
}

impl Scraper {
    /// `custom`: collectors besides `collectors::ALL` (the custom queries).
    pub fn new(config: Config, custom: Vec<&'static dyn Collector>) -> Scraper {
        Scraper {
            background: Arc::new(tokio::sync::Semaphore::new((config.max_connections / 2).max(1))),
            pools: Pools::new(&config),
            config,
            custom,
            discovered: Mutex::new(None),
            database_oids: Mutex::new(HashMap::new()),
            cache: Mutex::new(HashMap::new()),
            refreshing: Mutex::new(HashSet::new()),
            last_good: Mutex::new(HashMap::new()),
            privilege_warned: AtomicBool::new(false),
            was_up: AtomicBool::new(true),
            host: Default::default(),
            host_cache: Default::default(),
            pad_failures: false,
        }
    }

    /// A scraper whose connections also count against `shared`, a bound
    /// across the servers `/probe` watches (see `probe/`).
    /// A `/probe` target: its failures are answered at the deadline too.
    pub fn with_shared_bound(
        config: Config,
        custom: Vec<&'static dyn Collector>,
        shared: Arc<crate::pool::SharedBound>,
    ) -> Scraper {
        let mut s = Scraper::new(config, custom);
        s.pools = Pools::with_shared_bound(&s.config, shared);
        s.pad_failures = true;
        s
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn pools(&self) -> &Pools {
        &self.pools
    }

    fn enabled(&self, scope: Scope) -> impl Iterator<Item = &'static dyn Collector> + '_ {
        collectors::ALL
            .iter()
            .copied()
            .filter(move |c| c.scope() == scope && collectors::is_enabled(&self.config, *c))
            .chain(self.custom.iter().copied().filter(move |c| c.scope() == scope))
    }

    /// The custom queries this scraper runs.
    pub fn custom(&self) -> &[&'static dyn Collector] {
        &self.custom
    }
}

impl Run {
    fn new(
        c: &dyn Collector,
        config: &Config,
        datname: &str,
        success: bool,
        duration: Duration,
        sink: Arc<Sink>,
    ) -> Run {
        Run {
            collector: c.name(),
            datname: if c.scope() == Scope::Cluster {
                String::new()
            } else {
                datname.to_string()
            },
            success,
            duration,
            sink,
            from_cache: false,
            cache_ttl: c.cache_ttl(config),
            age: None,
        }
    }

    /// The same run, marked as served from the cache.
    fn cached(self) -> Run {
        Run {
            from_cache: true,
            ..self
        }
    }

    fn with_age(mut self, age: Duration) -> Run {
        if !self.datname.is_empty() {
            self.age = Some(age);
        }
        self
    }
}
