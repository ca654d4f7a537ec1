//! Connections: one small deadpool-postgres pool per database, all under one
//! global cap (`PGMAINT_MAX_CONNECTIONS`).
//!
//! Every open connection holds a slot (a semaphore permit) for as long as it
//! lives, so the cap counts idle connections in every pool, not only busy ones.
//! When all slots are taken and the database we need has no idle connection,
//! idle connections of other databases are closed to make room. Sessions are
//! read-only with `statement_timeout` and `lock_timeout`, set at connect time
//! (see `Dsn::to_pg_config`). Pools are created lazily and dropped when their
//! database disappears; a server that is down simply fails `get` until it is
//! back, with no restart. TLS follows libpq's `sslmode` (see `tls/`); its
//! files are read when a database's pool is created, and a pool that could
//! not be created is not kept, so the next scrape tries again.
//!
//! The pools of `/probe` targets (one `Pools` per server) can share a second
//! bound, `SharedBound` (`PGMAINT_MAX_CONNECTIONS_TOTAL`), across servers.

use std::collections::HashMap;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use deadpool::managed::{self, Metrics, RecycleResult};
use deadpool_postgres::{ClientWrapper, ManagerConfig, RecyclingMethod};
use tokio::sync::{oneshot, OwnedSemaphorePermit, Semaphore};

use crate::config::Config;
use crate::error::ConnError;
use crate::tls::TlsPlan;

/// A connection. Its slots are held by the task that drives its socket (see
/// `Live`), so they are free again only once the server has closed it.
pub struct Slotted {
    client: ClientWrapper,
    /// Dropped with the connection: tells its driver task to give up
    /// after `CLOSE_BOUND` (see `SlotManager::create`).
    _dropped: oneshot::Sender<()>,
    /// Something that may change session state ran on it since it was last
    /// reset (see `mark_dirty`): the next `recycle` resets the session.
    dirty: AtomicBool,
    /// Times it was handed out (`Pools::get`): 1 on its first lease.
    leases: AtomicU32,
}

impl Slotted {
    /// Flags the session for a reset before its next lease. Built-in
    /// scrape statements only read, so a connection that ran nothing else
    /// goes back out without the reset's round trip (issue 22).
    pub fn mark_dirty(&self) {
        self.dirty.store(true, Ordering::Relaxed);
    }

    /// True on the connection's first lease: a statement run now would be
    /// prepared for this one run only (see `fetch` in `scrape/execute.rs`).
    pub fn is_fresh(&self) -> bool {
        self.leases.load(Ordering::Relaxed) <= 1
    }
}

/// A connection's socket and the slots it occupies (its own, plus one under
/// a shared bound when the pools are one target among many: `SharedBound`).
///
/// The driver future ends only after the server closed the socket: the
/// socket's shutdown reads until end of file (`tls::socket::SyncClose`),
/// and PostgreSQL closes it only once the backend has left
/// `pg_stat_activity` and freed its PGPROC. Fields drop in order, so the
/// slots are freed after that, and a connection opened in a freed slot
/// never overlaps the old session: the server never sees more sessions
/// than there are slots (issue 22 measured 5-6 under a cap of 4 when a
/// slot was freed as soon as our side had closed, and still some with a
/// 20 ms grace).
struct Live {
    connection: crate::tls::Driver,
    _slot: OwnedSemaphorePermit,
    _shared: Option<OwnedSemaphorePermit>,
}

/// How long a dropped connection's driver may still run: to finish a
/// statement still in flight (a scrape that hit its deadline), write
/// Terminate and see the server close (itself bounded by
/// `tls::socket::CLOSE_WAIT`). Past it the socket is dropped and the
/// slots freed, so a hung server cannot keep them.
const CLOSE_BOUND: Duration = Duration::from_secs(5);

impl Deref for Slotted {
    type Target = ClientWrapper;
    fn deref(&self) -> &ClientWrapper {
        &self.client
    }
}

impl DerefMut for Slotted {
    fn deref_mut(&mut self) -> &mut ClientWrapper {
        &mut self.client
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ManagerError {
    #[error("no free connection slot")]
    NoSlot,
    #[error(transparent)]
    Pg(#[from] tokio_postgres::Error),
    /// The socket could not be opened (`tls::connect`).
    #[error("{0}")]
    Socket(String),
}

/// deadpool-postgres' manager plus slot accounting.
pub struct SlotManager {
    /// Used for recycling; connections are opened here, by `create`.
    inner: deadpool_postgres::Manager,
    pg: tokio_postgres::Config,
    tls: crate::tls::MakeTls,
    slots: Arc<Semaphore>,
    /// Slots of a bound shared with other servers' pools, if any.
    shared: Option<Arc<Semaphore>>,
    /// Run once on every new connection (empty: nothing, the settings went
    /// in the startup options; see `session_setup`).
    session_setup: String,
    /// Run each time a connection is handed out again: `RESET ALL` and
    /// `RESET ROLE`, then `session_setup` (see `recycle`).
    session_reset: String,
}

impl managed::Manager for SlotManager {
    type Type = Slotted;
    type Error = ManagerError;

    async fn create(&self) -> Result<Slotted, ManagerError> {
        let slot = self
            .slots
            .clone()
            .try_acquire_owned()
            .map_err(|_| ManagerError::NoSlot)?;
        let shared = match &self.shared {
            None => None,
            Some(s) => Some(s.clone().try_acquire_owned().map_err(|_| ManagerError::NoSlot)?),
        };
        let (client, connection) = crate::tls::connect(&self.pg, &self.tls)
            .await
            .map_err(|e| match e {
                crate::tls::ConnectError::Pg(e) => ManagerError::Pg(e),
                other => ManagerError::Socket(other.to_string()),
            })?;
        let live = Live {
            connection,
            _slot: slot,
            _shared: shared,
        };
        let (dropped, gone) = oneshot::channel::<()>();
        // Ends once the client is dropped and the server has closed the
        // socket, or `CLOSE_BOUND` after the client was dropped.
        tokio::spawn(async move {
            // The whole of `live` (not only the field used) lives in the task.
            let mut live = live;
            let bound = async {
                let _ = gone.await;
                tokio::time::sleep(CLOSE_BOUND).await;
            };
            tokio::select! {
                done = live.connection.as_mut() => if let Err(e) = done {
                    tracing::debug!(error = %e, "connection closed with an error");
                },
                () = bound => tracing::debug!("a dropped connection did not close in time; its socket is dropped"),
            }
        });
        // deadpool's wrapper aborts the task it is given when dropped: an
        // aborted driver would drop the socket without Terminate and free
        // the slots while the backend still exits. It gets a task that has
        // nothing to abort; the driver ends on its own (above).
        let client = ClientWrapper::new(client, tokio::spawn(async {}));
        if !self.session_setup.is_empty() {
            client.batch_execute(&self.session_setup).await?;
        }
        Ok(Slotted {
            client,
            _dropped: dropped,
            dirty: AtomicBool::new(false),
            leases: AtomicU32::new(0),
        })
    }

    /// A connection goes back out with the session state it had when it was
    /// new, whatever the last user did to it (issue 17 item 4): one round
    /// trip of `RESET ALL; RESET ROLE; SET …` (RESET ALL leaves `role`
    /// alone) when anything but the built-in read-only statements ran on it
    /// (`Slotted::mark_dirty`); a clean one skips it (6 statements and a
    /// round trip per database and scrape, issue 22). Not `DISCARD ALL`: it
    /// would also drop the prepared statements `prepare_cached` keeps.
    async fn recycle(&self, obj: &mut Slotted, metrics: &Metrics) -> RecycleResult<ManagerError> {
        self.inner
            .recycle(&mut obj.client, metrics)
            .await
            .map_err(|e| match e {
                managed::RecycleError::Message(m) => managed::RecycleError::Message(m),
                managed::RecycleError::Backend(b) => managed::RecycleError::Backend(b.into()),
            })?;
        if !obj.dirty.load(Ordering::Relaxed) {
            return Ok(());
        }
        obj.client
            .batch_execute(&self.session_reset)
            .await
            .map_err(|e| managed::RecycleError::Backend(e.into()))?;
        obj.dirty.store(false, Ordering::Relaxed);
        Ok(())
    }
}

/// Session settings of every exporter connection: read-only and bounded.
/// The values are our own integers, not outside input.
fn session_settings(config: &Config) -> [(&'static str, String); 4] {
    [
        ("default_transaction_read_only", "on".to_string()),
        (
            "statement_timeout",
            config.statement_timeout.as_millis().to_string(),
        ),
        ("lock_timeout", config.lock_timeout.as_millis().to_string()),
        ("idle_in_transaction_session_timeout", "60000".to_string()),
    ]
}

/// How a database's connections get `session_settings`: the statement run
/// right after connecting (empty: none) and the startup `options`.
///
/// The DSN's database runs one statement (`set_config(…, false)` is `SET`),
/// so that `pg_settings.reset_val` in that session still shows the server's
/// values of these settings: the `settings` collector, cluster-wide, runs
/// there and publishes them. Every other database gets them as startup
/// options (`-c name=value`, PGC_S_CLIENT: they become the session's reset
/// values, so `RESET ALL` keeps them): no statement and no round trip per
/// new connection, which with many databases under a small cap is one per
/// database and scrape (issue 22).
fn session_setup(config: &Config, datname: &str) -> (String, Option<String>) {
    let settings = session_settings(config);
    if datname == config.main_database() {
        let calls: Vec<String> = settings
            .iter()
            .map(|(name, value)| format!("set_config('{name}', '{value}', false)"))
            .collect();
        (format!("SELECT {}", calls.join(", ")), None)
    } else {
        let options: Vec<String> = settings
            .iter()
            .map(|(name, value)| format!("-c {name}={value}"))
            .collect();
        (String::new(), Some(options.join(" ")))
    }
}

pub type Pool = managed::Pool<SlotManager>;
pub type Conn = managed::Object<SlotManager>;
/// One server's pools, by database.
type PoolMap = Mutex<HashMap<String, Pool>>;

/// All pools of one PostgreSQL server.
pub struct Pools {
    config: Config,
    slots: Arc<Semaphore>,
    /// Bounds connections in use at once, so a waiting task always finds a
    /// slot held by an idle connection it can close.
    busy: Arc<Semaphore>,
    pools: Arc<PoolMap>,
    /// When each database last got a connection: the least recently used
    /// idle connection is the one closed to make room (`close_lru_idle`).
    last_used: Mutex<HashMap<String, Instant>>,
    /// A bound on connections shared with other servers' pools (`/probe`).
    shared: Option<Arc<SharedBound>>,
}

/// One cap on open connections across the pools of many servers (the
/// targets of `/probe`, `PGMAINT_MAX_CONNECTIONS_TOTAL`).
///
/// Each member keeps its own per-server cap; a new connection also needs a
/// slot here. When none is free, idle connections of the other members are
/// closed to make room, so targets probed in rotation reuse the slots of
/// those probed earlier instead of waiting for their idle timeout.
pub struct SharedBound {
    slots: Arc<Semaphore>,
    max: usize,
    members: Mutex<Vec<std::sync::Weak<PoolMap>>>,
}

impl SharedBound {
    pub fn new(max: usize) -> Arc<SharedBound> {
        Arc::new(SharedBound {
            slots: Arc::new(Semaphore::new(max)),
            max,
            members: Mutex::new(Vec::new()),
        })
    }

    /// Open connections right now, across every member.
    pub fn open_connections(&self) -> usize {
        self.max - self.slots.available_permits()
    }

    pub fn max(&self) -> usize {
        self.max
    }

    /// Closes idle connections of members other than `me`; true if any was closed.
    fn close_idle_elsewhere(&self, me: &Arc<PoolMap>) -> bool {
        let others: Vec<Pool> = {
            let mut members = self.members.lock().unwrap();
            members.retain(|m| m.strong_count() > 0);
            members
                .iter()
                .filter_map(|m| m.upgrade())
                .filter(|m| !Arc::ptr_eq(m, me))
                .flat_map(|m| m.lock().unwrap().values().cloned().collect::<Vec<_>>())
                .collect()
        };
        let mut closed = false;
        for p in others {
            closed |= !p.retain(|_, _| false).removed.is_empty();
        }
        closed
    }
}

/// A connection plus its place among the busy ones.
pub struct Lease {
    pub conn: Conn,
    _busy: OwnedSemaphorePermit,
}

impl Pools {
    pub fn new(config: &Config) -> Pools {
        Pools {
            config: config.clone(),
            slots: Arc::new(Semaphore::new(config.max_connections)),
            busy: Arc::new(Semaphore::new(config.max_connections)),
            pools: Arc::new(Mutex::new(HashMap::new())),
            last_used: Mutex::new(HashMap::new()),
            shared: None,
        }
    }

    /// Pools that also count against `shared`, a bound across servers.
    pub fn with_shared_bound(config: &Config, shared: Arc<SharedBound>) -> Pools {
        let mut pools = Pools::new(config);
        shared.members.lock().unwrap().push(Arc::downgrade(&pools.pools));
        pools.shared = Some(shared);
        pools
    }

    /// Open connections right now, across every database.
    pub fn open_connections(&self) -> usize {
        self.config.max_connections - self.slots.available_permits()
    }

    fn pool(&self, datname: &str) -> Result<Pool, ConnError> {
        let mut pools = self.pools.lock().unwrap();
        if let Some(p) = pools.get(datname) {
            return Ok(p.clone());
        }
        let tls = TlsPlan::new(&self.config.dsn)
            .and_then(|plan| plan.connector())
            .map_err(|reason| ConnError::Tls {
                datname: datname.into(),
                reason,
            })?;
        let (setup, options) = session_setup(&self.config, datname);
        let mut pg = self.config.dsn.to_pg_config(datname);
        if let Some(o) = options {
            pg.options(o);
        }
        let inner = deadpool_postgres::Manager::from_config(
            pg.clone(),
            tls.clone(),
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(SlotManager {
            inner,
            pg,
            tls,
            slots: self.slots.clone(),
            shared: self.shared.as_ref().map(|s| s.slots.clone()),
            session_reset: format!("RESET ALL; RESET ROLE; {setup}"),
            session_setup: setup,
        })
        .max_size(self.config.max_connections)
        // The most recently used connection first: it has the built-in
        // statements prepared and the server's catalog caches warm, where
        // FIFO rotated scrapes over every connection a background refresh
        // had opened (each scrape's first use re-prepared ~30 statements:
        // 50-70 ms instead of ~20 ms at 100 tables, issue 6).
        .queue_mode(deadpool::managed::QueueMode::Lifo)
        .runtime(deadpool::Runtime::Tokio1)
        .build()
        .expect("pool config is static and valid");
        pools.insert(datname.to_string(), pool.clone());
        Ok(pool)
    }

    /// A connection to `datname`, waiting at most until `deadline`.
    pub async fn get(&self, datname: &str, deadline: Instant) -> Result<Lease, ConnError> {
        let left = deadline.saturating_duration_since(Instant::now());
        let busy = tokio::time::timeout(left, self.busy.clone().acquire_owned())
            .await
            .map_err(|_| ConnError::Timeout(datname.into()))?
            .expect("semaphore never closed");
        let pool = self.pool(datname)?;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(ConnError::Timeout(datname.into()));
            }
            let attempt = tokio::time::timeout(left, pool.get()).await;
            match attempt {
                Err(_) => return Err(ConnError::Timeout(datname.into())),
                Ok(Ok(conn)) => {
                    conn.leases.fetch_add(1, Ordering::Relaxed);
                    self.last_used
                        .lock()
                        .unwrap()
                        .insert(datname.to_string(), Instant::now());
                    return Ok(Lease { conn, _busy: busy });
                }
                Ok(Err(managed::PoolError::Backend(ManagerError::NoSlot))) => {
                    // One connection, the least recently used, not every
                    // idle one: the others stay warm for their next scrape.
                    let closed = self.close_lru_idle(datname);
                    if closed {
                        // Its slot is free once the server has closed it.
                        let _ = tokio::time::timeout(left, self.slots.acquire()).await;
                    } else if let Some(shared) = self
                        .shared
                        .as_ref()
                        .filter(|s| s.close_idle_elsewhere(&self.pools))
                    {
                        // Likewise under the shared bound.
                        let _ = tokio::time::timeout(left, shared.slots.acquire()).await;
                    } else {
                        // A peer is mid-connect or about to return one: retry shortly.
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
                Ok(Err(managed::PoolError::Backend(ManagerError::Socket(reason)))) => {
                    return Err(ConnError::Unreachable {
                        datname: datname.into(),
                        reason,
                    })
                }
                Ok(Err(managed::PoolError::Backend(ManagerError::Pg(source)))) => {
                    if let Some(reason) = TlsPlan::new(&self.config.dsn)
                        .ok()
                        .and_then(|plan| plan.explain(&source))
                    {
                        return Err(ConnError::Tls {
                            datname: datname.into(),
                            reason,
                        });
                    }
                    return Err(ConnError::Connect {
                        datname: datname.into(),
                        source,
                    });
                }
                Ok(Err(e)) => {
                    return Err(ConnError::Pool {
                        datname: datname.into(),
                        reason: e.to_string(),
                    })
                }
            }
        }
    }

    /// True if `datname` has an idle connection open: the scrape visits
    /// such databases first, before their connections are closed to make
    /// room for others.
    pub fn is_warm(&self, datname: &str) -> bool {
        self.pools
            .lock()
            .unwrap()
            .get(datname)
            .is_some_and(|p| p.status().available > 0)
    }

    /// Closes one idle connection of another database, the one used least
    /// recently; true if one was closed.
    fn close_lru_idle(&self, keep: &str) -> bool {
        let mut idle: Vec<(Option<Instant>, Pool)> = {
            let pools = self.pools.lock().unwrap();
            let used = self.last_used.lock().unwrap();
            pools
                .iter()
                .filter(|(k, p)| k.as_str() != keep && p.status().available > 0)
                .map(|(k, p)| (used.get(k).copied(), p.clone()))
                .collect()
        };
        idle.sort_by_key(|(at, _)| *at);
        for (_, p) in idle {
            let mut first = true;
            let closed = !p
                .retain(|_, _| !std::mem::replace(&mut first, false))
                .removed
                .is_empty();
            if closed {
                return true;
            }
        }
        false
    }

    /// Closes idle connections of other databases; true if any was closed.
    fn close_idle_except(&self, keep: &str) -> bool {
        let pools: Vec<Pool> = {
            let pools = self.pools.lock().unwrap();
            pools
                .iter()
                .filter(|(k, _)| k.as_str() != keep)
                .map(|(_, p)| p.clone())
                .collect()
        };
        let mut closed = false;
        for p in pools {
            closed |= !p.retain(|_, _| false).removed.is_empty();
        }
        closed
    }

    /// Drops the pools of databases that no longer exist (or are excluded).
    pub fn retain_databases(&self, keep: &[String]) {
        self.last_used.lock().unwrap().retain(|k, _| keep.contains(k));
        self.pools.lock().unwrap().retain(|k, p| {
            let keep = keep.contains(k);
            if !keep {
                p.close();
            }
            keep
        });
    }

    /// Closes every idle connection (after the server went away, say).
    pub fn close_idle(&self) {
        self.close_idle_except("");
    }
}
