//! Cached collectors (`cache_ttl` > 0): served from cache while fresh,
//! refreshed off the scrape path once stale, first results waited for only
//! briefly.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::{debug, warn};

use super::execute::explain_conn;
use super::{Run, Scraper};
use crate::collectors::{self, Collector, Ctx, ServerInfo, Source};
use crate::metrics::Sink;
use crate::pool::Lease;

pub(super) struct Cached {
    pub(super) at: Instant,
    /// Failures are cached too: a failing slow collector is retried after
    /// its TTL, not hammered every scrape.
    pub(super) success: bool,
    pub(super) sink: Arc<Sink>,
}

/// How long a scrape waits, past its other collectors, for the very first
/// result of a cached collector refreshing in the background.
const FIRST_RUN_GRACE: Duration = Duration::from_secs(1);

impl Scraper {
    /// The first result of cached collectors whose first refresh started in
    /// this scrape: waited for at most `FIRST_RUN_GRACE` past the other
    /// collectors (and never past the deadline). One not done by then is
    /// simply absent from this scrape and served from cache from then on.
    pub(super) async fn await_first_runs(
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
                        cache.get(&(c.name(), datname.to_string())).map(|e| {
                            Run::new(
                                *c,
                                &self.config,
                                datname,
                                e.success,
                                Duration::ZERO,
                                e.sink.clone(),
                            )
                            .cached()
                        })
                    })
                    .collect()
            };
            if done.len() == collectors.len() || Instant::now() >= until {
                return done;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Refreshes cached collectors of one database off the scrape path, one
    /// after the other on one connection. At most one refresh per
    /// (collector, database) runs at a time; it uses the same connection cap
    /// as scrapes, and at most half of it (`background`).
    ///
    /// `handover`: the connection the scrape has just finished with in this
    /// database, with a background turn. With hundreds of databases each
    /// refresh on a connection of its own was a fresh backend planning on
    /// cold catalog caches (sizes, every minute, in every database: issue 22).
    pub(super) fn refresh_in_background(
        self: &Arc<Self>,
        set: Vec<&'static dyn Collector>,
        datname: String,
        server: ServerInfo,
        handover: Option<Handover>,
    ) {
        let set: Vec<&'static dyn Collector> = {
            let mut refreshing = self.refreshing.lock().unwrap();
            set.into_iter()
                .filter(|c| refreshing.insert((c.name(), datname.clone())))
                .collect()
        };
        if set.is_empty() {
            return;
        }
        let this = self.clone();
        tokio::spawn(async move {
            let mut held = handover;
            for c in set {
                held = this.refresh_one(c, &datname, &server, held).await;
                this.refreshing
                    .lock()
                    .unwrap()
                    .remove(&(c.name(), datname.clone()));
            }
        });
    }

    /// Refreshes `c` in `datname` on `held`, else on a connection it waits
    /// for (with a background turn); gives both back for the next collector
    /// unless the connection was left in an unknown state.
    async fn refresh_one(
        &self,
        c: &'static dyn Collector,
        datname: &str,
        server: &ServerInfo,
        held: Option<Handover>,
    ) -> Option<Handover> {
        // Bounded: the background statement_timeout plus time to get a connection.
        let timeout = c
            .statement_timeout(&self.config)
            .unwrap_or(self.config.background_statement_timeout);
        let deadline = Instant::now() + timeout + self.config.scrape_timeout;
        let ctx = Ctx {
            datname,
            server,
            config: &self.config,
        };
        let Source::Sql(queries) = collectors::plan(c, &ctx) else {
            return held;
        };
        let Handover { lease, turn } = match held {
            Some(h) => h,
            None => {
                // At most half the connections refresh caches at once: with
                // hundreds of databases, two cached collectors each queued
                // ahead of the scrape and took every connection (issue 22:
                // pg_up 0 at 1,000 databases).
                let turn = tokio::time::timeout_at(deadline.into(), self.background.clone().acquire_owned());
                let Ok(Ok(turn)) = turn.await else {
                    return None;
                };
                match self.pools.get(datname, deadline).await {
                    Ok(lease) => Handover { lease, turn },
                    Err(e) => {
                        warn!(collector = c.name(), datname = %datname, error = %explain_conn(&e), "background refresh failed");
                        return None;
                    }
                }
            }
        };
        let lease = Arc::new(lease);
        let known = if c.isolated() {
            // Outside text: in a read-only transaction that is rolled back,
            // which also undoes any session-level setting it changed (issue
            // 17 item 4). SET LOCAL: the widened timeout ends with it.
            let begin = format!(
                "BEGIN READ ONLY; SET LOCAL statement_timeout = {}",
                timeout.as_millis()
            );
            // Outside text ran here: the session is reset before its next
            // lease (the built-in statements alone leave it as it was and
            // skip the reset, see `pool.rs`).
            lease.conn.mark_dirty();
            let began = lease.conn.batch_execute(&begin).await;
            let runs = match began {
                Ok(()) => {
                    self.execute(lease.clone(), &ctx, vec![(c, queries)], deadline)
                        .await
                }
                Err(_) => vec![],
            };
            let rolled_back = lease.conn.batch_execute("ROLLBACK").await;
            debug!(collector = c.name(), datname = %datname, ok = !runs.is_empty() && runs.iter().all(|r| r.success), "background refresh done");
            began.is_ok() && rolled_back.is_ok()
        } else {
            // Slow by nature and off the scrape path: a longer, still
            // bounded, statement_timeout for this run only.
            let limits = |t: Duration| format!("SET statement_timeout = {}", t.as_millis());
            let widened = lease.conn.batch_execute(&limits(timeout)).await;
            let runs = self
                .execute(lease.clone(), &ctx, vec![(c, queries)], deadline)
                .await;
            let restored = lease
                .conn
                .batch_execute(&limits(self.config.statement_timeout))
                .await;
            debug!(collector = c.name(), datname = %datname, ok = runs.iter().all(|r| r.success), "background refresh done");
            widened.is_ok() && restored.is_ok()
        };
        // `execute` has dropped its handles by now.
        let lease = Arc::try_unwrap(lease).ok()?;
        if !known {
            // Never hand a connection in an unknown state back to the pool.
            let _ = deadpool::managed::Object::take(lease.conn);
            return None;
        }
        Some(Handover { lease, turn })
    }
}

/// A connection and a background turn, for refreshes of one database.
pub(super) struct Handover {
    pub(super) lease: Lease,
    pub(super) turn: tokio::sync::OwnedSemaphorePermit,
}
