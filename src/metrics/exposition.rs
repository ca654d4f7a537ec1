//! The exposition: a finished scrape written out as Prometheus text, small
//! ones encoded once and shared, large ones streamed family by family.

use std::sync::Arc;

use crate::collectors::{self, Collector};
use crate::config::Config;
use crate::metrics::{encode_family, Sink};
use crate::scrape::*;

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
            own.gauge_opt(
                &COLLECTOR_AGE,
                &[r.collector, &r.datname],
                r.age.map(|a| a.as_secs_f64()),
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
            head_sent: false,
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
    /// The head went out. Not `next == 0`: a head over `CHUNK_BYTES` (the
    /// `pg_scrape_collector_*` series of ~1,000 databases) is a chunk on its
    /// own, and was then sent again and again (issue 22: out of memory).
    head_sent: bool,
    done: bool,
}

impl Iterator for Chunks {
    type Item = String;

    fn next(&mut self) -> Option<String> {
        if self.done {
            return None;
        }
        let mut out = String::with_capacity(CHUNK_BYTES + CHUNK_BYTES / 4);
        if !self.head_sent {
            out.push_str(&self.expo.head);
            self.head_sent = true;
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
    use super::*;
    use std::time::{Duration, SystemTime};

    /// A head over `CHUNK_BYTES` (the `pg_scrape_collector_*` series of
    /// ~1,000 databases) goes out once and the text ends.
    #[test]
    fn a_head_larger_than_a_chunk_is_sent_once() {
        let config = Config::from_vars([(
            "PGMAINT_DATABASE_URL".to_string(),
            "postgresql://u@127.0.0.1/postgres".to_string(),
        )])
        .unwrap();
        let runs = (0..5000)
            .map(|i| Run {
                collector: "tables",
                datname: format!("tenant_database_{i:05}"),
                success: true,
                duration: Duration::ZERO,
                sink: Default::default(),
                age: Some(Duration::ZERO),
            })
            .collect();
        let snap = Snapshot {
            up: true,
            server: None,
            postmaster_start: None,
            privileges: vec![],
            databases: vec![],
            runs,
            taken_at: SystemTime::now(),
            duration: Duration::ZERO,
        };
        let expo = Arc::new(Exposition::new(snap, &config, 0, String::new()));
        assert!(expo.head.len() > CHUNK_BYTES, "head {} bytes", expo.head.len());
        let text = expo.to_text();
        assert_eq!(
            text.matches("# TYPE pg_scrape_collector_success gauge").count(),
            1
        );
        assert_eq!(text.matches("pg_scrape_collector_success{").count(), 5000);
    }
}
