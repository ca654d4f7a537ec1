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

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use futures::future::{join_all, BoxFuture, FutureExt, Shared};
use tracing::{debug, info, warn, Instrument};

use crate::collectors::{self, Collector, Ctx, Fetched, Query, QueryResult, Scope, ServerInfo, Source};
use crate::config::Config;
use crate::error::{CollectError, ConnError};
use crate::metrics::{encode_family, Family, Sink};
use crate::pool::{Lease, Pools};

pub static UP: Family = Family::gauge(
    "pg_up",
    "1 if the exporter could connect to PostgreSQL and read server facts in this scrape, else 0.",
    &[],
);
pub static COLLECTOR_SUCCESS: Family = Family::gauge(
    "pg_scrape_collector_success",
    "1 if the collector succeeded for the database in this scrape (datname is empty for cluster-wide collectors).",
    &["collector", "datname"],
);
pub static COLLECTOR_DURATION: Family = Family::gauge(
    "pg_scrape_collector_duration_seconds",
    "Time the collector took in this scrape, including its queries (0 when served from cache).",
    &["collector", "datname"],
);
pub static BUILD_INFO: Family = Family::gauge(
    "pgmaint_exporter_build_info",
    "Always 1; labels carry the exporter's version and git revision.",
    &["version", "revision"],
);
pub static SERVER_INFO: Family = Family::gauge(
    "pg_server_info",
    "Always 1; version is server_version of the watched PostgreSQL server.",
    &["version", "server_version_num"],
);
pub static POSTMASTER_START: Family = Family::gauge(
    "pg_postmaster_start_time_seconds",
    "Unix time the PostgreSQL server started (pg_postmaster_start_time()).",
    &[],
);
pub static ROLE_PRIVILEGE: Family = Family::gauge(
    "pgmaint_exporter_role_privilege",
    "1 if the exporter's role has the privilege (pg_has_role MEMBER, or superuser). Without pg_monitor/pg_read_all_stats other sessions' state is hidden, and the activity families that would come out low are left out.",
    &["privilege"],
);
pub static SCRAPE_DURATION: Family = Family::gauge(
    "pgmaint_exporter_scrape_duration_seconds",
    "Wall time of the last scrape, from request to encoded response.",
    &[],
);
pub static DATABASES: Family = Family::gauge(
    "pgmaint_exporter_databases",
    "Databases the per-database collectors ran in (after PGMAINT_INCLUDE/EXCLUDE_DATABASES).",
    &[],
);
pub static CONNECTIONS_OPEN: Family = Family::gauge(
    "pgmaint_exporter_connections_open",
    "Database connections the exporter holds open right now, across all databases.",
    &[],
);
pub static CONNECTIONS_MAX: Family = Family::gauge(
    "pgmaint_exporter_connections_max",
    "The cap on open database connections (PGMAINT_MAX_CONNECTIONS).",
    &[],
);

/// The exporter's own families, in output order.
pub const SELF_FAMILIES: &[&Family] = &[
    &UP,
    &COLLECTOR_SUCCESS,
    &COLLECTOR_DURATION,
    &BUILD_INFO,
    &SERVER_INFO,
    &POSTMASTER_START,
    &ROLE_PRIVILEGE,
    &SCRAPE_DURATION,
    &DATABASES,
    &CONNECTIONS_OPEN,
    &CONNECTIONS_MAX,
];

/// Server facts read first in every scrape; the role checks run here too.
const SERVER_SQL: &str = "SELECT current_setting('server_version_num')::int4,
       current_setting('server_version'),
       extract(epoch FROM pg_postmaster_start_time())::float8,
       pg_is_in_recovery(),
       current_setting('is_superuser') = 'on',
       pg_has_role(current_user, 'pg_monitor', 'MEMBER'),
       pg_has_role(current_user, 'pg_read_all_stats', 'MEMBER'),
       pg_has_role(current_user, 'pg_read_all_settings', 'MEMBER'),
       current_user::text,
       pg_size_bytes(current_setting('wal_segment_size'))";

/// Databases the per-database collectors may visit.
const DATABASES_SQL: &str = "SELECT datname::text FROM pg_database
 WHERE datallowconn AND NOT datistemplate
   AND has_database_privilege(datname, 'CONNECT')
 ORDER BY datname";

/// A query's rows, awaitable by every collector that asked for it.
type SharedQuery<'a> = Shared<BoxFuture<'a, QueryResult>>;

/// One collector's result for one database in one scrape.
#[derive(Debug, Clone)]
pub struct Run {
    pub collector: &'static str,
    /// "" for cluster-wide collectors.
    pub datname: String,
    pub success: bool,
    pub duration: Duration,
    pub sink: Arc<Sink>,
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

struct Cached {
    at: Instant,
    /// Failures are cached too: a failing slow collector is retried after
    /// its TTL, not hammered every scrape.
    success: bool,
    sink: Arc<Sink>,
}

/// How long a scrape waits, past its other collectors, for the very first
/// result of a cached collector refreshing in the background.
const FIRST_RUN_GRACE: Duration = Duration::from_secs(1);

/// Long-lived scrape state: pools, discovery and result caches.
pub struct Scraper {
    config: Config,
    pools: Pools,
    discovered: Mutex<Option<(Instant, Vec<String>)>>,
    cache: Mutex<HashMap<(&'static str, String), Cached>>,
    refreshing: Mutex<HashSet<(&'static str, String)>>,
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
            pools: Pools::new(&config),
            config,
            discovered: Mutex::new(None),
            cache: Mutex::new(HashMap::new()),
            refreshing: Mutex::new(HashSet::new()),
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

    /// Runs one scrape that ends by `timeout` whatever the database does.
    pub async fn scrape(self: &Arc<Self>, timeout: Duration) -> Snapshot {
        let start = Instant::now();
        let deadline = start + timeout;
        let main_db = self.config.main_database();
        let mut snap = Snapshot {
            up: false,
            server: None,
            postmaster_start: None,
            privileges: vec![],
            databases: vec![],
            runs: vec![],
            taken_at: SystemTime::now(),
            duration: Duration::ZERO,
        };

        let main = match self.connect_main(&main_db, deadline).await {
            Ok(m) => m,
            Err(e) => {
                let e = explain(&e);
                if self.was_up.swap(false, Ordering::Relaxed) {
                    warn!(datname = %main_db, error = %e, "PostgreSQL is unreachable; reporting pg_up 0");
                } else {
                    debug!(datname = %main_db, error = %e, "PostgreSQL still unreachable");
                }
                self.pools.close_idle();
                snap.runs = self.all_failed(&self.known_databases(&main_db));
                if self.pad_failures {
                    tokio::time::sleep_until(deadline.into()).await;
                }
                snap.duration = start.elapsed();
                return snap;
            }
        };
        if !self.was_up.swap(true, Ordering::Relaxed) {
            info!(datname = %main_db, "PostgreSQL is reachable again");
        }
        let (lease, server, start_time, privileges) = main;
        snap.up = true;
        snap.postmaster_start = start_time;
        snap.privileges = privileges;

        let databases = self.databases(&lease, &main_db).await;
        snap.databases = databases.clone();

        // The main database: its per-database collectors, then the
        // cluster-wide ones. Queries are pipelined in this order, so the
        // cheap cluster-wide statements run on the server while the large
        // per-table results are being mapped (issue 6: scrape time).
        let mut main_set: Vec<&'static dyn Collector> = vec![];
        if databases.contains(&main_db) {
            main_set.extend(self.enabled(Scope::PerDatabase));
        }
        main_set.extend(self.enabled(Scope::Cluster));
        let main_task = self.run_set(Some(lease), main_db.clone(), main_set, &server, deadline);
        let others = databases.iter().filter(|d| **d != main_db).map(|d| {
            self.run_set(
                None,
                d.clone(),
                self.enabled(Scope::PerDatabase).collect(),
                &server,
                deadline,
            )
        });
        // The other databases start beside the main one, not after it (the
        // connection cap still bounds how many run at once).
        let (mut runs, others) = futures::join!(main_task, join_all(others));
        for r in others {
            runs.extend(r);
        }
        snap.runs = runs;
        snap.server = Some(server);
        snap.duration = start.elapsed();
        snap
    }

    async fn connect_main(
        &self,
        main_db: &str,
        deadline: Instant,
    ) -> Result<(Lease, ServerInfo, Option<f64>, Vec<(&'static str, bool)>), CollectError> {
        let lease = self.pools.get(main_db, deadline).await?;
        // Prepared once per connection like the collectors' SQL: one round
        // trip per scrape instead of two, and no planning.
        let query = async {
            let stmt = lease.conn.prepare_cached(SERVER_SQL).await?;
            lease.conn.query_one(&stmt, &[]).await
        };
        let row = tokio::time::timeout_at(deadline.into(), query)
            .await
            .map_err(|_| CollectError::Deadline)?
            .map_err(|e| CollectError::Query {
                query: "server",
                message: e.to_string(),
            })?;
        let superuser: bool = row.try_get(4)?;
        let (monitor, read_stats, read_settings): (bool, bool, bool) =
            (row.try_get(5)?, row.try_get(6)?, row.try_get(7)?);
        let server = ServerInfo {
            version_num: row.try_get(0)?,
            version: row.try_get(1)?,
            in_recovery: row.try_get(3)?,
            read_all_stats: superuser || monitor || read_stats,
            superuser,
            wal_segment_size: row
                .try_get::<_, Option<i64>>(9)?
                .and_then(|b| u64::try_from(b).ok()),
        };
        if !server.read_all_stats && !self.privilege_warned.swap(true, Ordering::Relaxed) {
            let user: String = row.try_get(8)?;
            warn!(
                role = %user,
                "role {user:?} is not a member of pg_monitor: PostgreSQL hides other sessions' state and query times, \
                 so connection and query counts will be low. Fix: GRANT pg_monitor TO {};",
                quote_ident(&user)
            );
        }
        let privileges = vec![
            ("superuser", superuser),
            ("pg_monitor", superuser || monitor),
            ("pg_read_all_stats", superuser || monitor || read_stats),
            ("pg_read_all_settings", superuser || monitor || read_settings),
        ];
        Ok((lease, server, row.try_get(2)?, privileges))
    }

    /// Discovered databases (cached for `PGMAINT_DATABASE_REFRESH_INTERVAL`),
    /// filtered by include/exclude rules.
    async fn databases(&self, lease: &Lease, main_db: &str) -> Vec<String> {
        if !self.enabled(Scope::PerDatabase).any(|_| true) {
            return vec![];
        }
        if let Some((at, dbs)) = &*self.discovered.lock().unwrap() {
            if at.elapsed() < self.config.database_refresh_interval {
                return dbs.clone();
            }
        }
        let found = match lease.conn.query(DATABASES_SQL, &[]).await {
            Ok(rows) => rows
                .iter()
                .filter_map(|r| r.try_get::<_, String>(0).ok())
                .filter(|d| self.config.database_wanted(d))
                .collect::<Vec<_>>(),
            Err(e) => {
                warn!(error = %e, "database discovery failed; using the DSN's database only");
                vec![main_db.to_string()]
            }
        };
        self.pools.retain_databases(
            &found
                .iter()
                .cloned()
                .chain([main_db.to_string()])
                .collect::<Vec<_>>(),
        );
        self.cache
            .lock()
            .unwrap()
            .retain(|(_, db), _| db.is_empty() || found.contains(db));
        *self.discovered.lock().unwrap() = Some((Instant::now(), found.clone()));
        found
    }

    fn known_databases(&self, main_db: &str) -> Vec<String> {
        match &*self.discovered.lock().unwrap() {
            Some((_, dbs)) => dbs.clone(),
            None => vec![main_db.to_string()],
        }
    }

    /// `success 0` for every enabled collector, when the server is unreachable.
    fn all_failed(&self, databases: &[String]) -> Vec<Run> {
        let failed = |c: &'static dyn Collector, datname: &str| {
            Run::new(c, datname, false, Duration::ZERO, Default::default())
        };
        let mut runs: Vec<Run> = self.enabled(Scope::Cluster).map(|c| failed(c, "")).collect();
        for db in databases {
            runs.extend(self.enabled(Scope::PerDatabase).map(|c| failed(c, db)));
        }
        runs
    }

    /// Runs a set of collectors in one database on one connection.
    ///
    /// Cached collectors (`cache_ttl` > 0) are served from cache while fresh.
    /// Once stale, the old result is served and a background task refreshes
    /// it, so a slow collector (bloat) never holds up a scrape; only the very
    /// first run happens inline.
    async fn run_set(
        self: &Arc<Self>,
        lease: Option<Lease>,
        datname: String,
        set: Vec<&'static dyn Collector>,
        server: &ServerInfo,
        deadline: Instant,
    ) -> Vec<Run> {
        let span = tracing::info_span!("database", datname = %datname);
        let ctx = Ctx {
            datname: &datname,
            server,
            config: &self.config,
        };

        let mut runs = Vec::new();
        let mut todo = Vec::new();
        let mut first_runs = Vec::new();
        let mut host = Vec::new();
        for c in set {
            let ttl = c.cache_ttl(&self.config);
            let cached = if ttl.is_zero() {
                None
            } else {
                let cache = self.cache.lock().unwrap();
                cache
                    .get(&(c.name(), datname.clone()))
                    .map(|e| (e.at.elapsed() < ttl, e.success, e.sink.clone()))
            };
            match (cached, collectors::plan(c, &ctx)) {
                (_, Source::NotApplicable) => {}
                (_, Source::Host(requests)) => host.push((c, requests)),
                (Some((fresh, success, sink)), _) => {
                    if !fresh {
                        self.refresh_in_background(c, datname.clone(), server.clone());
                    }
                    runs.push(Run::new(c, &datname, success, Duration::ZERO, sink));
                }
                // Cached collectors are slow by nature: even their first run
                // happens beside the scrape, not in it (see `await_first_runs`).
                (None, Source::Sql(_)) if !ttl.is_zero() => {
                    self.refresh_in_background(c, datname.clone(), server.clone());
                    first_runs.push(c);
                }
                (None, Source::Sql(queries)) => todo.push((c, queries)),
            }
        }
        for (c, requests) in host {
            runs.push(self.execute_host(c, &ctx, requests, deadline).await);
        }
        if todo.is_empty() {
            drop(lease);
            runs.extend(self.await_first_runs(&first_runs, &datname, deadline).await);
            return runs;
        }

        let lease = match lease {
            Some(l) => Ok(l),
            None => self.pools.get(&datname, deadline).instrument(span.clone()).await,
        };
        let lease = match lease {
            Ok(l) => l,
            Err(e) => {
                warn!(datname = %datname, error = %explain_conn(&e), "cannot reach database; its collectors report failure");
                runs.extend(
                    todo.iter()
                        .map(|(c, _)| Run::new(*c, &datname, false, Duration::ZERO, Default::default())),
                );
                return runs;
            }
        };
        let results = self.execute(&lease, &ctx, todo, deadline).instrument(span).await;
        drop(lease);
        runs.extend(results);
        runs.extend(self.await_first_runs(&first_runs, &datname, deadline).await);
        runs
    }

    /// The first result of cached collectors whose first refresh started in
    /// this scrape: waited for at most `FIRST_RUN_GRACE` past the other
    /// collectors (and never past the deadline). One not done by then is
    /// simply absent from this scrape and served from cache from then on.
    async fn await_first_runs(
        &self,
        collectors: &[&'static dyn Collector],
        datname: &str,
        deadline: Instant,
    ) -> Vec<Run> {
        let until = deadline.min(Instant::now() + FIRST_RUN_GRACE);
        loop {
            let done: Vec<Run> = {
                let cache = self.cache.lock().unwrap();
                collectors
                    .iter()
                    .filter_map(|c| {
                        cache
                            .get(&(c.name(), datname.to_string()))
                            .map(|e| Run::new(*c, datname, e.success, Duration::ZERO, e.sink.clone()))
                    })
                    .collect()
            };
            if done.len() == collectors.len() || Instant::now() >= until {
                return done;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Runs collectors' queries pipelined on one connection and maps the rows.
    async fn execute(
        &self,
        lease: &Lease,
        ctx: &Ctx<'_>,
        todo: Vec<(&'static dyn Collector, Vec<Query>)>,
        deadline: Instant,
    ) -> Vec<Run> {
        let client = &lease.conn;
        // One future per distinct query (same SQL, same parameters): a query
        // several collectors need runs once and its rows are shared.
        let mut unique: HashMap<(&'static str, String), SharedQuery<'_>> = HashMap::new();
        let mut planned = Vec::new();
        for (c, queries) in todo {
            let futs: Vec<SharedQuery<'_>> = queries
                .iter()
                .map(|q| {
                    let key = (q.sql, format!("{:?}", q.params));
                    let params = q.params.clone();
                    let sql = q.sql;
                    // Built-in SQL reads catalogs and statistics views, whose
                    // row types never change under a connection: it is
                    // prepared once per connection, which saves the server a
                    // parse and analysis and the scrape a round trip. Custom
                    // queries read user tables that ALTER TABLE may change
                    // ("cached plan must not change result type"): never cached.
                    let cache = !c.name().starts_with("custom:");
                    let qname = q.name;
                    let t0 = Instant::now();
                    unique
                        .entry(key)
                        .or_insert_with(|| {
                            async move {
                                let rows = fetch(client, sql, &params, cache).await;
                                debug!(
                                    query = qname,
                                    ms = t0.elapsed().as_millis() as u64,
                                    rows = rows.as_ref().map(|r| r.len()).unwrap_or(0),
                                    "query done"
                                );
                                rows.map(Arc::new)
                            }
                            .boxed()
                            .shared()
                        })
                        .clone()
                })
                .collect();
            planned.push((c, queries, futs));
        }
        // The collectors hold their own handles: without this one, a query's
        // rows are freed as soon as the last collector using them has mapped
        // them, not when the whole database is done.
        drop(unique);
        let work = planned.into_iter().map(|(c, queries, futs)| async move {
            let started = Instant::now();
            let fetched = async {
                let rows = join_all(futs).await;
                let results = queries
                    .iter()
                    .zip(rows)
                    .map(|(q, r)| {
                        if let (true, Err(e)) = (q.optional, &r) {
                            debug!(collector = c.name(), query = q.name, error = %e, "optional query failed");
                        }
                        (q.name, r)
                    })
                    .collect();
                Fetched {
                    results,
                    ..Default::default()
                }
            };
            let outcome = match tokio::time::timeout_at(deadline.into(), fetched).await {
                Err(_) => Err(CollectError::Deadline),
                Ok(fetched) => {
                    match queries
                        .iter()
                        .filter(|q| !q.optional)
                        .find_map(|q| fetched.rows(q.name).err())
                    {
                        Some(e) => Err(e),
                        None => {
                            let mut sink = Sink::default();
                            let t0 = Instant::now();
                            let mapped = c
                                .map(ctx, &fetched, &mut sink)
                                .and_then(|_| sink.checked().map_err(CollectError::Other));
                            debug!(
                                collector = c.name(),
                                ms = t0.elapsed().as_millis() as u64,
                                "mapped"
                            );
                            mapped
                        }
                    }
                }
            };
            (c, started.elapsed(), outcome)
        });
        let mut runs = Vec::new();
        for (c, duration, outcome) in join_all(work).await {
            let run = match outcome {
                Ok(sink) => Run::new(c, ctx.datname, true, duration, Arc::new(sink)),
                Err(e) => {
                    warn!(collector = c.name(), datname = %ctx.datname, error = %e, "collector failed");
                    Run::new(c, ctx.datname, false, duration, Default::default())
                }
            };
            if !c.cache_ttl(&self.config).is_zero() {
                self.cache.lock().unwrap().insert(
                    (c.name(), ctx.datname.to_string()),
                    Cached {
                        at: Instant::now(),
                        success: run.success,
                        sink: run.sink.clone(),
                    },
                );
            }
            runs.push(run);
        }
        runs
    }

    /// Runs a host collector (files, programs) within the deadline.
    async fn execute_host(
        &self,
        c: &'static dyn Collector,
        ctx: &Ctx<'_>,
        requests: Vec<crate::host::HostRequest>,
        deadline: Instant,
    ) -> Run {
        let started = Instant::now();
        let work = crate::host::execute(&self.host, &self.config, requests);
        let outcome = match tokio::time::timeout_at(deadline.into(), work).await {
            Err(_) => Err(CollectError::Deadline),
            Ok(host) => {
                let fetched = Fetched {
                    host,
                    ..Default::default()
                };
                let mut sink = Sink::default();
                c.map(ctx, &fetched, &mut sink)
                    .and_then(|_| sink.checked().map_err(CollectError::Other))
            }
        };
        match outcome {
            Ok(sink) => Run::new(c, ctx.datname, true, started.elapsed(), Arc::new(sink)),
            Err(e) => {
                warn!(collector = c.name(), error = %e, "collector failed");
                Run::new(c, ctx.datname, false, started.elapsed(), Default::default())
            }
        }
    }

    /// Refreshes one cached collector for one database off the scrape path.
    /// At most one refresh per (collector, database) runs at a time; it uses
    /// the same connection cap as scrapes.
    fn refresh_in_background(
        self: &Arc<Self>,
        c: &'static dyn Collector,
        datname: String,
        server: ServerInfo,
    ) {
        if !self
            .refreshing
            .lock()
            .unwrap()
            .insert((c.name(), datname.clone()))
        {
            return;
        }
        let this = self.clone();
        tokio::spawn(async move {
            // Bounded: the background statement_timeout plus time to get a connection.
            let timeout = c
                .statement_timeout(&this.config)
                .unwrap_or(this.config.background_statement_timeout);
            let deadline = Instant::now() + timeout + this.config.scrape_timeout;
            let ctx = Ctx {
                datname: &datname,
                server: &server,
                config: &this.config,
            };
            if let Source::Sql(queries) = collectors::plan(c, &ctx) {
                match this.pools.get(&datname, deadline).await {
                    Ok(lease) if c.isolated() => {
                        // Outside text: in a read-only transaction that is
                        // rolled back, which also undoes any session-level
                        // setting it changed (issue 17 item 4). SET LOCAL:
                        // the widened timeout ends with it.
                        let begin = format!(
                            "BEGIN READ ONLY; SET LOCAL statement_timeout = {}",
                            timeout.as_millis()
                        );
                        let began = lease.conn.batch_execute(&begin).await;
                        let runs = match began {
                            Ok(()) => this.execute(&lease, &ctx, vec![(c, queries)], deadline).await,
                            Err(_) => vec![],
                        };
                        let rolled_back = lease.conn.batch_execute("ROLLBACK").await;
                        if began.is_err() || rolled_back.is_err() {
                            // Never hand a connection in an unknown state back to the pool.
                            let _ = deadpool::managed::Object::take(lease.conn);
                        }
                        debug!(collector = c.name(), datname = %datname, ok = !runs.is_empty() && runs.iter().all(|r| r.success), "background refresh done");
                    }
                    Ok(lease) => {
                        // Slow by nature and off the scrape path: a longer,
                        // still bounded, statement_timeout for this run only.
                        let limits = |t: Duration| format!("SET statement_timeout = {}", t.as_millis());
                        let widened = lease.conn.batch_execute(&limits(timeout)).await;
                        let runs = this.execute(&lease, &ctx, vec![(c, queries)], deadline).await;
                        let restored = lease
                            .conn
                            .batch_execute(&limits(this.config.statement_timeout))
                            .await;
                        if widened.is_err() || restored.is_err() {
                            // Never hand a connection with unknown limits back to the pool.
                            let _ = deadpool::managed::Object::take(lease.conn);
                        }
                        debug!(collector = c.name(), datname = %datname, ok = runs.iter().all(|r| r.success), "background refresh done");
                    }
                    Err(e) => {
                        warn!(collector = c.name(), datname = %datname, error = %explain_conn(&e), "background refresh failed")
                    }
                }
            }
            this.refreshing
                .lock()
                .unwrap()
                .remove(&(c.name(), datname.clone()));
        });
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
        }
    }
}

/// Runs one query and packs its rows as they arrive (`rows.rs`): no
/// `Vec<tokio_postgres::Row>` is ever held, and each row's read buffer is
/// reused as soon as it is copied.
async fn fetch(
    client: &deadpool_postgres::ClientWrapper,
    sql: &str,
    params: &[collectors::Param],
    cache: bool,
) -> Result<crate::rows::Rows, String> {
    use futures::TryStreamExt;
    let stmt = if cache {
        client.prepare_cached(sql).await
    } else {
        client.prepare(sql).await
    }
    .map_err(|e| describe(&e))?;
    let stream = client
        .query_raw(&stmt, params.iter().map(|p| p.as_sql()))
        .await
        .map_err(|e| describe(&e))?;
    let mut stream = std::pin::pin!(stream);
    let mut rows = crate::rows::RowsBuilder::new(&stmt);
    while let Some(row) = stream.try_next().await.map_err(|e| describe(&e))? {
        rows.push(&row).map_err(|e| e.to_string())?;
    }
    Ok(rows.finish())
}

/// A database error with its SQLSTATE message (tokio-postgres' Display is terse).
fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!(
            "{}: {} (SQLSTATE {})",
            db.severity(),
            db.message(),
            db.code().code()
        ),
        // tokio-postgres' own words name only the kind ("error
        // communicating with the server"): add the cause.
        None => match std::error::Error::source(e) {
            Some(cause) => format!("{e}: {cause}"),
            None => e.to_string(),
        },
    }
}

/// A connection error with the server's own message and SQLSTATE
/// (tokio-postgres' Display says only "db error"), plus the cause when
/// PostgreSQL's words hide it.
fn explain(e: &CollectError) -> String {
    match e {
        CollectError::Connection(c) => explain_conn(c),
        other => other.to_string(),
    }
}

fn explain_conn(e: &ConnError) -> String {
    let ConnError::Connect { datname, source } = e else {
        return e.to_string();
    };
    let mut s = format!("cannot connect to database {datname:?}: {}", describe(source));
    if source.code() == Some(&tokio_postgres::error::SqlState::TOO_MANY_CONNECTIONS) {
        s.push_str(
            " (the server's max_connections is used up by other sessions: close some or raise \
             max_connections; the exporter retries every scrape)",
        );
    }
    s
}

/// Quotes an identifier the way PostgreSQL's quote_ident does
/// (`quote_identifier()` in ruleutils.c): bare only if lower-case ASCII,
/// digits and `_`, not starting with a digit, and not a key word outside the
/// unreserved category (`select`, `user`, `between`…; see `keywords`).
pub fn quote_ident(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !crate::keywords::needs_quotes(s);
    if plain {
        s.to_string()
    } else {
        format!("\"{}\"", s.replace('"', "\"\""))
    }
}

/// A finished scrape, ready to be written out as Prometheus text: the
/// exporter's own families (encoded when the scrape finished), then each
/// collector's families in `ALL` order, then `tail` (process-level families).
///
/// At 10,000 tables the text is ~40 MB while the samples behind it take
/// ~15 MB, so the text is never held whole: `chunks()` encodes a few families
/// at a time as the response is sent, and concurrent requests sharing one
/// scrape each stream from the same samples (issue 6: peak RSS). A small
/// exposition (up to `WHOLE_MAX_SAMPLES` series, a few MB) is encoded once
/// and shared instead: there, 50 clients encoding the same text each would
/// cost more CPU than holding it saves memory.
pub struct Exposition {
    pub snap: Snapshot,
    head: String,
    tail: String,
    /// `ALL`, then the custom queries of `PGMAINT_QUERIES_FILE`.
    collectors: Vec<&'static dyn Collector>,
    /// The whole text, encoded by the first request (small expositions only).
    whole: std::sync::OnceLock<axum::body::Bytes>,
}

/// Series up to which an exposition is encoded once and shared (~5 MB of text).
const WHOLE_MAX_SAMPLES: usize = 50_000;

/// Bytes per chunk of the streamed response (a chunk ends after the family
/// that crosses this; one family of 30,000 index series is ~2.5 MB).
const CHUNK_BYTES: usize = 256 * 1024;

impl Exposition {
    pub fn new(snap: Snapshot, config: &Config, open_connections: usize, tail: String) -> Exposition {
        let mut own = Sink::default();
        own.gauge(&UP, &[], if snap.up { 1.0 } else { 0.0 });
        for r in &snap.runs {
            own.gauge(
                &COLLECTOR_SUCCESS,
                &[r.collector, &r.datname],
                if r.success { 1.0 } else { 0.0 },
            );
            own.gauge(
                &COLLECTOR_DURATION,
                &[r.collector, &r.datname],
                r.duration.as_secs_f64(),
            );
        }
        own.gauge(
            &BUILD_INFO,
            &[env!("CARGO_PKG_VERSION"), env!("PGMAINT_REVISION")],
            1.0,
        );
        if let Some(s) = &snap.server {
            own.gauge(&SERVER_INFO, &[&s.version, &s.version_num.to_string()], 1.0);
        }
        own.gauge_opt(&POSTMASTER_START, &[], snap.postmaster_start);
        for (p, has) in &snap.privileges {
            own.gauge(&ROLE_PRIVILEGE, &[p], if *has { 1.0 } else { 0.0 });
        }
        own.gauge(&SCRAPE_DURATION, &[], snap.duration.as_secs_f64());
        if snap.up {
            own.gauge(&DATABASES, &[], snap.databases.len() as f64);
        }
        own.gauge(&CONNECTIONS_OPEN, &[], open_connections as f64);
        own.gauge(&CONNECTIONS_MAX, &[], config.max_connections as f64);
        let mut head = String::new();
        for f in SELF_FAMILIES {
            encode_family(&mut head, f, std::iter::once(own.get(f.name)));
        }
        let custom = config.custom_queries.iter().map(|q| *q as &dyn Collector);
        let collectors = collectors::ALL.iter().copied().chain(custom).collect();
        Exposition {
            snap,
            head,
            tail,
            collectors,
            whole: std::sync::OnceLock::new(),
        }
    }

    /// The whole text, encoded once and shared, if the exposition is small;
    /// `None` for a large one (stream it with `chunks()`).
    pub fn shared_text(self: &Arc<Self>) -> Option<axum::body::Bytes> {
        let samples: usize = self.snap.runs.iter().map(|r| r.sink.len()).sum();
        (samples <= WHOLE_MAX_SAMPLES).then(|| {
            self.whole
                .get_or_init(|| axum::body::Bytes::from(self.to_text()))
                .clone()
        })
    }

    /// The text in chunks of about `CHUNK_BYTES`, encoded as they are taken.
    pub fn chunks(self: Arc<Self>) -> Chunks {
        Chunks {
            expo: self,
            next: 0,
            done: false,
        }
    }

    /// The whole text at once (tests, and callers that need it in memory).
    pub fn to_text(self: &Arc<Self>) -> String {
        Arc::clone(self).chunks().collect()
    }

    /// Encodes the `i`-th collector family into `out`; false past the last.
    fn encode(&self, i: usize, out: &mut String) -> bool {
        let Some((c, f)) = self
            .collectors
            .iter()
            .flat_map(|c| c.families().iter().map(move |f| (c, f)))
            .nth(i)
        else {
            return false;
        };
        encode_family(
            out,
            f,
            self.snap
                .runs
                .iter()
                .filter(|r| r.collector == c.name())
                .map(|r| r.sink.get(f.name)),
        );
        true
    }
}

/// Iterator over an exposition's text; see `Exposition::chunks`.
pub struct Chunks {
    expo: Arc<Exposition>,
    /// Index of the next collector family to encode.
    next: usize,
    done: bool,
}

impl Iterator for Chunks {
    type Item = String;

    fn next(&mut self) -> Option<String> {
        if self.done {
            return None;
        }
        let mut out = String::with_capacity(CHUNK_BYTES + CHUNK_BYTES / 4);
        if self.next == 0 {
            out.push_str(&self.expo.head);
        }
        while out.len() < CHUNK_BYTES {
            if !self.expo.encode(self.next, &mut out) {
                out.push_str(&self.expo.tail);
                self.done = true;
                break;
            }
            self.next += 1;
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::quote_ident;

    #[test]
    fn identifiers_are_quoted_like_postgres() {
        assert_eq!(quote_ident("users"), "users");
        assert_eq!(quote_ident("Meeting \"Rooms\""), "\"Meeting \"\"Rooms\"\"\"");
        assert_eq!(quote_ident("1abc"), "\"1abc\"");
        assert_eq!(quote_ident("select"), "\"select\"");
        assert_eq!(quote_ident("index"), "index");
    }
}
