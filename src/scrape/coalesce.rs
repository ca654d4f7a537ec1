//! Request coalescing: one scrape at a time per `Scraper`, its result shared
//! by every request that waited for it, reused for
//! `PGMAINT_MIN_SCRAPE_INTERVAL`, plus the process-level counters
//! (`pgmaint_exporter_scrapes_total`, `…_collector_failures_total`) that
//! follow each scrape.
//!
//! These few counters live in a `prometheus` crate `Registry`; the
//! per-object families do not (see `metrics/mod.rs` for why). Others (the
//! `/probe` gauges) may `register` into it: it is encoded as the tail of
//! every exposition.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use super::{Scraped, Scraper};

/// A scraper plus the coalescing state and counters around it.
pub struct Coalescer {
    pub scraper: Arc<Scraper>,
    registry: prometheus::Registry,
    scrapes: prometheus::IntCounter,
    failures: prometheus::IntCounterVec,
    /// Held while a scrape runs: one at a time.
    running: tokio::sync::Mutex<()>,
    latest: Mutex<Option<Latest>>,
}

/// The most recent scrape.
struct Latest {
    finished: Instant,
    scraped: Arc<Scraped>,
}

impl Coalescer {
    /// The prometheus crate refuses only invalid or repeated names, and these
    /// are constants registered once into a new registry, so this does not
    /// fail in practice; but a `/probe` request creates a `Coalescer` for a
    /// new target, so the error is returned (start-up stops on it, a probe
    /// answers 500), never a panic.
    pub fn new(scraper: Scraper) -> prometheus::Result<Coalescer> {
        let registry = prometheus::Registry::new();
        let scrapes = prometheus::IntCounter::new(
            "pgmaint_exporter_scrapes_total",
            "Scrapes served by /metrics since the exporter started.",
        )?;
        let failures = prometheus::IntCounterVec::new(
            prometheus::Opts::new(
                "pgmaint_exporter_collector_failures_total",
                "Collector runs that failed (success 0) since the exporter started, by collector.",
            ),
            &["collector"],
        )?;
        registry.register(Box::new(scrapes.clone()))?;
        registry.register(Box::new(failures.clone()))?;
        Ok(Coalescer {
            scraper: Arc::new(scraper),
            registry,
            scrapes,
            failures,
            running: tokio::sync::Mutex::new(()),
            latest: Mutex::new(None),
        })
    }

    /// The latest scrape. Replacing an `Option` cannot be left half-done, so
    /// a poisoned lock is used as is, not a panic on the next request.
    fn latest(&self) -> MutexGuard<'_, Option<Latest>> {
        self.latest.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds process-level families to the tail of every exposition.
    pub fn register(&self, c: Box<dyn prometheus::core::Collector>) -> prometheus::Result<()> {
        self.registry.register(c)
    }

    /// The scrape for a request that arrived at `arrived`.
    ///
    /// Scrapes are coalesced: one runs at a time; a request that arrives
    /// while one is in flight waits for it and shares its result, and a
    /// result younger than `PGMAINT_MIN_SCRAPE_INTERVAL` is served again, so
    /// two Prometheus replicas or a burst of clients never multiply the load
    /// on the database. A request whose deadline passes while waiting gets
    /// the latest result there is.
    pub async fn shared_scrape(&self, arrived: Instant, timeout: Duration) -> Arc<Scraped> {
        let deadline = arrived + timeout;
        let reusable = |latest: &Option<Latest>| {
            latest.as_ref().and_then(|l| {
                let fresh =
                    l.finished >= arrived || l.finished.elapsed() < self.scraper.config().min_scrape_interval;
                fresh.then(|| Arc::clone(&l.scraped))
            })
        };
        let _turn = match tokio::time::timeout_at(deadline.into(), self.running.lock()).await {
            Ok(turn) => turn,
            Err(_) => {
                if let Some(l) = self.latest().as_ref() {
                    return Arc::clone(&l.scraped);
                }
                // The very first scrape is still running: wait for it (its own
                // deadline bounds the wait) rather than guess at pg_up.
                self.running.lock().await
            }
        };
        if let Some(scraped) = reusable(&self.latest()) {
            return scraped;
        }
        self.scrape_now(deadline.saturating_duration_since(Instant::now()))
            .await
    }

    async fn scrape_now(&self, timeout: Duration) -> Arc<Scraped> {
        let started = Instant::now();
        let snap = self.scraper.scrape(timeout).await;
        self.scrapes.inc();
        for r in snap.runs.iter().filter(|r| !r.success) {
            self.failures.with_label_values(&[r.collector]).inc();
        }
        // The prometheus crate only fails on invalid metric names: ours are constants.
        let tail = prometheus::TextEncoder::new()
            .encode_to_string(&self.registry.gather())
            .unwrap_or_default();
        let up = snap.up;
        let expo = Arc::new(super::exposition(&snap, &self.scraper, tail));
        let scraped = Arc::new(Scraped { snap, expo });
        tracing::debug!(seconds = started.elapsed().as_secs_f64(), up, "scrape done");
        // Dropping the previous scrape here, before anyone encodes this one,
        // keeps at most two scrapes' samples alive.
        *self.latest() = Some(Latest {
            finished: Instant::now(),
            scraped: Arc::clone(&scraped),
        });
        scraped
    }
}
