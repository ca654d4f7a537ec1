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

    /// Refreshes one cached collector for one database off the scrape path.
    /// At most one refresh per (collector, database) runs at a time; it uses
    /// the same connection cap as scrapes.
    pub(super) fn refresh_in_background(
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
            // At most half the connections refresh caches at once: with
            // hundreds of databases, two cached collectors each queued
            // ahead of the scrape and took every connection (issue 22:
            // pg_up 0 at 1,000 databases).
            let turn =
                tokio::time::timeout_at(deadline.into(), this.background.clone().acquire_owned()).await;
            let source = match turn {
                Ok(Ok(_)) => collectors::plan(c, &ctx),
                _ => Source::NotApplicable,
            };
            if let (Ok(Ok(_turn)), Source::Sql(queries)) = (turn, source) {
                match this.pools.get(&datname, deadline).await {
                    Ok(lease) if c.isolated() => {
                        let lease = Arc::new(lease);
                        // Outside text: in a read-only transaction that is
                        // rolled back, which also undoes any session-level
                        // setting it changed (issue 17 item 4). SET LOCAL:
                        // the widened timeout ends with it.
                        let begin = format!(
                            "BEGIN READ ONLY; SET LOCAL statement_timeout = {}",
                            timeout.as_millis()
                        );
                        // Outside text ran here: the session is reset before
                        // its next lease (the built-in statements alone leave
                        // it as it was and skip the reset, see `pool.rs`).
                        lease.conn.mark_dirty();
                        let began = lease.conn.batch_execute(&begin).await;
                        let runs = match began {
                            Ok(()) => {
                                this.execute(lease.clone(), &ctx, vec![(c, queries)], deadline)
                                    .await
                            }
                            Err(_) => vec![],
                        };
                        let rolled_back = lease.conn.batch_execute("ROLLBACK").await;
                        if began.is_err() || rolled_back.is_err() {
                            // Never hand a connection in an unknown state back to the pool.
                            // `execute` has dropped its handles by now.
                            if let Ok(lease) = Arc::try_unwrap(lease) {
                                let _ = deadpool::managed::Object::take(lease.conn);
                            }
                        }
                        debug!(collector = c.name(), datname = %datname, ok = !runs.is_empty() && runs.iter().all(|r| r.success), "background refresh done");
                    }
                    Ok(lease) => {
                        let lease = Arc::new(lease);
                        // Slow by nature and off the scrape path: a longer,
                        // still bounded, statement_timeout for this run only.
                        let limits = |t: Duration| format!("SET statement_timeout = {}", t.as_millis());
                        let widened = lease.conn.batch_execute(&limits(timeout)).await;
                        let runs = this
                            .execute(lease.clone(), &ctx, vec![(c, queries)], deadline)
                            .await;
                        let restored = lease
                            .conn
                            .batch_execute(&limits(this.config.statement_timeout))
                            .await;
                        if widened.is_err() || restored.is_err() {
                            // Never hand a connection with unknown limits back to the pool.
                            // `execute` has dropped its handles by now.
                            if let Ok(lease) = Arc::try_unwrap(lease) {
                                let _ = deadpool::managed::Object::take(lease.conn);
                            }
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
