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
//! Layout: `run.rs` (one scrape: server facts, discovery, fan-out),
//! `execute.rs` (queries pipelined on a connection, host collectors),
//! `cache.rs` (cached collectors refreshed in the background),
//! `self_metrics.rs` (the exporter's own families).

mod cache;
mod execute;
mod run;
mod self_metrics;

pub use self_metrics::*;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use crate::collectors::{self, Collector, Scope, ServerInfo};
use crate::config::Config;
use crate::metrics::Sink;
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
    /// How old the data in `sink` is, for per-database collectors: zero when
    /// read in this scrape, the cache's age when served from cache
    /// (`pg_scrape_collector_age_seconds`, issue 22). `None`: cluster-wide,
    /// or nothing to report.
    pub age: Option<Duration>,
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
    /// Backup verifications and tools found on the host (`host.rs`).
    host: Arc<crate::host::HostState>,
    /// A `/probe` target: a failed connection is answered at the deadline,
    /// so a closed, filtered or non-PostgreSQL port looks the same to whoever
    /// names it (no port-scan oracle in the timing or the duration metric).
    pad_failures: bool,
}

impl Scraper {
    pub fn new(config: Config) -> Scraper {
        Scraper {
            background: Arc::new(tokio::sync::Semaphore::new((config.max_connections / 2).max(1))),
            pools: Pools::new(&config),
            config,
            discovered: Mutex::new(None),
            cache: Mutex::new(HashMap::new()),
            refreshing: Mutex::new(HashSet::new()),
            last_good: Mutex::new(HashMap::new()),
            privilege_warned: AtomicBool::new(false),
            was_up: AtomicBool::new(true),
            host: Default::default(),
            pad_failures: false,
        }
    }

    /// A scraper whose connections also count against `shared`, a bound
    /// across the servers `/probe` watches (see `probe.rs`).
    /// A `/probe` target: its failures are answered at the deadline too.
    pub fn with_shared_bound(config: Config, shared: Arc<crate::pool::SharedBound>) -> Scraper {
        let mut s = Scraper::new(config);
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
            .filter(move |c| c.scope() == scope && self.config.collector_enabled(c.name()))
            .chain(
                self.config
                    .custom_queries
                    .iter()
                    .map(|q| *q as &'static dyn Collector)
                    .filter(move |c| c.scope() == scope),
            )
    }
}

impl Run {
    fn new(c: &dyn Collector, datname: &str, success: bool, duration: Duration, sink: Arc<Sink>) -> Run {
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
            age: None,
        }
    }

    fn with_age(mut self, age: Duration) -> Run {
        if !self.datname.is_empty() {
            self.age = Some(age);
        }
        self
    }
}
