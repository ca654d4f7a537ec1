//! One scrape, end to end: server facts in the DSN's database (they decide
//! `pg_up`), database discovery, then the collectors of every database side
//! by side under the pool's connection cap.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use futures::future::{join_all, FutureExt};
use tracing::{debug, info, warn, Instrument};

use super::cache::Handover;
use super::execute::{explain, explain_conn};
use super::{Run, Scraper, Snapshot};
use crate::collectors::{self, Collector, Ctx, Scope, ServerInfo, Source};
use crate::error::{CollectError, ConnError};
use crate::keywords::quote_ident;
use crate::pool::Lease;

/// Server facts read first in every scrape; the role checks run here too.
/// Last, the oids of the databases where a VACUUM runs
/// (`ServerInfo::vacuuming`, named after discovery): the functions behind
/// pg_stat_progress_vacuum and pg_stat_activity, whose views join
/// pg_database, which this statement must not wait for (it decides pg_up;
/// `a_hung_discovery_ends_at_the_scrape_deadline`). `pg_stat_get_progress_info`
/// shows every backend's database whatever the role's privileges
/// (pgstatfuncs.c hides only the table and the counters), so a database
/// missing here has no VACUUM for `vacuum_progress` to report.
const SERVER_SQL: &str = "SELECT current_setting('server_version_num')::int4,
       current_setting('server_version'),
       extract(epoch FROM pg_postmaster_start_time())::float8,
       pg_is_in_recovery(),
       current_setting('is_superuser') = 'on',
       pg_has_role(current_user, 'pg_monitor', 'MEMBER'),
       pg_has_role(current_user, 'pg_read_all_stats', 'MEMBER'),
       pg_has_role(current_user, 'pg_read_all_settings', 'MEMBER'),
       current_user::text,
       pg_size_bytes(current_setting('wal_segment_size')),
       ARRAY(SELECT datid FROM pg_stat_get_progress_info('VACUUM')
             UNION
             SELECT datid FROM pg_stat_get_activity(NULL)
              WHERE backend_type = 'autovacuum worker' AND datid IS NOT NULL)";

/// Databases the per-database collectors may visit, with their oids.
const DATABASES_SQL: &str = "SELECT datname::text, oid FROM pg_database
 WHERE datallowconn AND NOT datistemplate
   AND has_database_privilege(datname, 'CONNECT')
 ORDER BY datname";

/// What the first statement in the DSN's database gives: its connection,
/// the server facts, the postmaster's start time, the role's privileges, and
/// the oids of the databases where a VACUUM runs.
type Main = (
    Lease,
    ServerInfo,
    Option<f64>,
    Vec<(&'static str, bool)>,
    Option<Vec<u32>>,
);

impl Scraper {
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
        let (lease, mut server, start_time, privileges, vacuuming) = main;
        snap.up = true;
        snap.postmaster_start = start_time;
        snap.privileges = privileges;

        let databases = self.databases(&lease, &main_db, deadline).await;
        snap.databases = databases.clone();
        server.vacuuming = self.named(vacuuming);

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
        // Databases with an idle connection open (the most recently scraped)
        // first, while their connections are still there: the others then
        // close the least recently used ones to make room (issue 22). The
        // connection cap admits them in this order; the output keeps the
        // discovery order.
        // With more databases than connections, the ones whose results are
        // oldest come next, so a deadline that cannot fit them all still
        // refreshes every database in turn.
        let refreshed = self.last_refreshed();
        let mut order: Vec<&String> = databases.iter().filter(|d| **d != main_db).collect();
        order.sort_by_key(|d| (!self.pools.is_warm(d), refreshed.get(d.as_str()).copied()));
        let others = order.iter().map(|d| {
            self.run_set(
                None,
                (*d).clone(),
                self.enabled(Scope::PerDatabase).collect(),
                &server,
                deadline,
            )
            .map(move |r| (*d, r))
        });
        // The other databases start beside the main one, not after it (the
        // connection cap still bounds how many run at once).
        let (mut runs, others) = futures::join!(main_task, join_all(others));
        let mut others: HashMap<&String, Vec<Run>> = others.into_iter().collect();
        for d in databases.iter().filter(|d| **d != main_db) {
            runs.extend(others.remove(d).unwrap_or_default());
        }
        snap.runs = runs;
        snap.server = Some(server);
        snap.duration = start.elapsed();
        snap
    }

    async fn connect_main(&self, main_db: &str, deadline: Instant) -> Result<Main, CollectError> {
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
            vacuuming: None,
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
        let vacuuming: Option<Vec<u32>> = row.try_get(10)?;
        Ok((lease, server, row.try_get(2)?, privileges, vacuuming))
    }

    /// The discovered databases among `oids` (`ServerInfo::vacuuming`);
    /// `None` when discovery has not named any database yet.
    fn named(&self, oids: Option<Vec<u32>>) -> Option<Vec<String>> {
        let names = self.database_oids.lock().unwrap();
        if names.is_empty() {
            return None;
        }
        Some(oids?.iter().filter_map(|o| names.get(o).cloned()).collect())
    }

    /// Discovered databases (cached for `PGMAINT_DATABASE_REFRESH_INTERVAL`),
    /// filtered by include/exclude rules. Bounded by the scrape deadline like
    /// every other step: a discovery that does not answer in time (a lock on
    /// pg_database) leaves the last databases found, or the DSN's database.
    async fn databases(&self, lease: &Lease, main_db: &str, deadline: Instant) -> Vec<String> {
        if !self.enabled(Scope::PerDatabase).any(|_| true) {
            return vec![];
        }
        if let Some((at, dbs)) = &*self.discovered.lock().unwrap() {
            if at.elapsed() < self.config.database_refresh_interval {
                return dbs.clone();
            }
        }
        let query = tokio::time::timeout_at(deadline.into(), lease.conn.query(DATABASES_SQL, &[]));
        let found = match query.await {
            Err(_) => {
                warn!("database discovery did not answer before the scrape deadline; using the databases found before");
                return self.known_databases(main_db);
            }
            Ok(Ok(rows)) => {
                let found: Vec<(String, u32)> = rows
                    .iter()
                    .filter_map(|r| Some((r.try_get::<_, String>(0).ok()?, r.try_get::<_, u32>(1).ok()?)))
                    .filter(|(d, _)| self.config.database_wanted(d))
                    .collect();
                *self.database_oids.lock().unwrap() =
                    found.iter().map(|(d, oid)| (*oid, d.clone())).collect();
                found.into_iter().map(|(d, _)| d).collect::<Vec<_>>()
            }
            Ok(Err(e)) => {
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
        self.last_good
            .lock()
            .unwrap()
            .retain(|(_, db), _| found.contains(db));
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
            Run::new(
                c,
                &self.config,
                datname,
                false,
                Duration::ZERO,
                Default::default(),
            )
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
        // Cached collectors to refresh in the background once this
        // database's queries are done (see `refresh_in_background`).
        let mut stale = Vec::new();
        let mut host = Vec::new();
        for c in set {
            let ttl = c.cache_ttl(&self.config);
            let cached = if ttl.is_zero() {
                None
            } else {
                let cache = self.cache.lock().unwrap();
                cache
                    .get(&(c.name(), datname.clone()))
                    .map(|e| (e.at.elapsed(), e.success, e.sink.clone()))
            };
            match (cached, collectors::plan(c, &ctx)) {
                (_, Source::NotApplicable) => {}
                (_, Source::Host(requests)) => host.push((c, requests)),
                (Some((age, success, sink)), _) => {
                    if age >= ttl {
                        stale.push(c);
                    }
                    runs.push(
                        Run::new(c, &self.config, &datname, success, Duration::ZERO, sink)
                            .cached()
                            .with_age(age),
                    );
                }
                // Nothing to ask this database this time (vacuum_progress
                // where no VACUUM runs): mapped from the scrape's facts.
                (None, Source::Sql(queries)) if queries.is_empty() => {
                    runs.push(self.map_only(c, &ctx));
                }
                // Cached collectors are slow by nature: even their first run
                // happens beside the scrape, not in it (see `await_first_runs`).
                (None, Source::Sql(_)) if !ttl.is_zero() => {
                    stale.push(c);
                    first_runs.push(c);
                }
                (None, Source::Sql(queries)) => todo.push((c, queries)),
            }
        }
        for (c, requests) in host {
            runs.push(self.execute_host(c, &ctx, requests, deadline).await);
        }
        // Without a query of this scrape's there is no connection to hand
        // over, and nothing keeps the first runs from being waited for.
        let (read, handover, reached) = if todo.is_empty() {
            drop(lease);
            (vec![], None, true)
        } else {
            self.read_database(lease, &ctx, todo, !stale.is_empty(), deadline)
                .instrument(span)
                .await
        };
        runs.extend(read);
        self.refresh_in_background(stale, datname.clone(), server.clone(), handover);
        if reached {
            runs.extend(self.await_first_runs(&first_runs, &datname, deadline).await);
        }
        runs
    }

    /// Runs `todo` in the database of `ctx` on `lease`, else on a connection
    /// it waits for. With `hand_over`, the connection is kept once the
    /// queries are done and mapped, and given back with a background turn
    /// for the database's stale cached collectors (when a turn is free);
    /// otherwise it goes back to the pool as soon as its last query is done.
    /// The flag is false when the database could not be reached: its first
    /// runs are not waited for then.
    async fn read_database(
        &self,
        lease: Option<Lease>,
        ctx: &Ctx<'_>,
        todo: Vec<(&'static dyn Collector, Vec<collectors::Query>)>,
        hand_over: bool,
        deadline: Instant,
    ) -> (Vec<Run>, Option<Handover>, bool) {
        let datname = ctx.datname;
        let lease = match lease {
            Some(l) => Ok(l),
            None => self.pools.get(datname, deadline).await,
        };
        let lease = match lease {
            Ok(l) => l,
            Err(ConnError::Timeout(_)) if self.rotating() => {
                // More databases than the deadline lets the cap visit: this
                // one's turn is a later scrape (it goes first then).
                debug!(datname = %datname, "no connection before the deadline; serving the last results");
                let runs = todo.iter().map(|(c, _)| self.stale_or_failed(*c, datname));
                return (runs.collect(), None, false);
            }
            Err(e) => {
                warn!(datname = %datname, error = %explain_conn(&e), "cannot reach database; its collectors report failure");
                let runs = todo.iter().map(|(c, _)| {
                    Run::new(
                        *c,
                        &self.config,
                        datname,
                        false,
                        Duration::ZERO,
                        Default::default(),
                    )
                });
                return (runs.collect(), None, false);
            }
        };
        let lease = Arc::new(lease);
        let keep = hand_over.then(|| lease.clone());
        let results = self.execute(lease, ctx, todo, deadline).await;
        let handover = keep.and_then(|l| Arc::try_unwrap(l).ok()).and_then(|lease| {
            let turn = self.background.clone().try_acquire_owned().ok()?;
            Some(Handover { lease, turn })
        });
        let late = Instant::now() >= deadline;
        let results = results.into_iter().map(|r| match (r.success, late) {
            (true, _) => {
                if self.rotating() {
                    self.last_good.lock().unwrap().insert(
                        (r.collector, datname.to_string()),
                        (Instant::now(), r.sink.clone()),
                    );
                }
                r.with_age(Duration::ZERO)
            }
            // Cut off by the deadline: the last good result, with its age.
            (false, true) if self.rotating() => self.stale_by_name(r, datname),
            (false, _) => r,
        });
        (results.collect(), handover, true)
    }

    /// True when there are more databases than connections: each database's
    /// last good results are kept, served for a database the deadline left
    /// out, and the stalest databases are visited first (issue 22).
    fn rotating(&self) -> bool {
        let discovered = self.discovered.lock().unwrap();
        discovered
            .as_ref()
            .is_some_and(|(_, dbs)| dbs.len() > self.config.max_connections)
    }

    /// The last good result of `c` in `datname` with its age, else failure.
    fn stale_or_failed(&self, c: &'static dyn Collector, datname: &str) -> Run {
        match self
            .last_good
            .lock()
            .unwrap()
            .get(&(c.name(), datname.to_string()))
        {
            Some((at, sink)) => Run::new(c, &self.config, datname, true, Duration::ZERO, sink.clone())
                .cached()
                .with_age(at.elapsed()),
            None => Run::new(
                c,
                &self.config,
                datname,
                false,
                Duration::ZERO,
                Default::default(),
            ),
        }
    }

    /// `stale_or_failed` for a run that was cut off.
    fn stale_by_name(&self, run: Run, datname: &str) -> Run {
        match self
            .last_good
            .lock()
            .unwrap()
            .get(&(run.collector, datname.to_string()))
        {
            Some((at, sink)) => Run {
                success: true,
                sink: sink.clone(),
                ..run
            }
            .with_age(at.elapsed()),
            None => run,
        }
    }

    /// When each database's collectors were last all read (oldest of its
    /// kept results; absent: never, or not kept).
    fn last_refreshed(&self) -> HashMap<String, Instant> {
        let mut at: HashMap<String, Instant> = HashMap::new();
        for ((_, d), (t, _)) in self.last_good.lock().unwrap().iter() {
            let e = at.entry(d.clone()).or_insert(*t);
            *e = (*e).min(*t);
        }
        at
    }
}
