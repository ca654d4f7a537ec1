//! The exposition: a finished scrape written out as Prometheus text, small
//! ones encoded once and shared, large ones streamed family by family.
//!
//! It knows families and sinks only: the scrape layer says what goes in
//! (`scrape::exposition`), the HTTP layer how it is sent.

use std::sync::{Arc, OnceLock};

use bytes::Bytes;

use crate::metrics::{encode_family, Family, Sink};

/// A finished scrape, ready to be written out as Prometheus text: `head`
/// (the exporter's own families, encoded when the scrape finished), then
/// each section's families in order, then `tail` (process-level families).
///
/// At 10,000 tables the text is ~40 MB while the samples behind it take
/// ~15 MB, so the text is never held whole: `chunks()` encodes a few families
/// at a time as the response is sent, and concurrent requests sharing one
/// scrape each stream from the same samples (issue 6: peak RSS). A small
/// exposition (up to `WHOLE_MAX_SAMPLES` series, a few MB) is encoded once
/// and shared instead: there, 50 clients encoding the same text each would
/// cost more CPU than holding it saves memory.
pub struct Exposition {
    head: String,
    tail: String,
    /// One per collector: `ALL`, then the custom queries of `PGMAINT_QUERIES_FILE`.
    sections: Vec<Section>,
    /// Series across all sections.
    samples: usize,
    /// The whole text, encoded by the first request (small expositions only).
    whole: OnceLock<Bytes>,
}

/// One collector's families and the sinks its runs wrote (one per database).
pub struct Section {
    pub families: &'static [&'static Family],
    pub sinks: Vec<Arc<Sink>>,
}

/// Series up to which an exposition is encoded once and shared (~5 MB of text).
const WHOLE_MAX_SAMPLES: usize = 50_000;

/// Bytes per chunk of the streamed response (a chunk ends after the family
/// that crosses this; one family of 30,000 index series is ~2.5 MB).
const CHUNK_BYTES: usize = 256 * 1024;

impl Exposition {
    pub fn new(head: String, sections: Vec<Section>, tail: String) -> Exposition {
        let samples = sections
            .iter()
            .flat_map(|s| s.sinks.iter())
            .map(|s| s.len())
            .sum();
        Exposition {
            head,
            tail,
            sections,
            samples,
            whole: OnceLock::new(),
        }
    }

    /// The whole text, encoded once and shared, if the exposition is small;
    /// `None` for a large one (stream it with `chunks()`).
    pub fn shared_text(self: &Arc<Self>) -> Option<Bytes> {
        (self.samples <= WHOLE_MAX_SAMPLES)
            .then(|| self.whole.get_or_init(|| Bytes::from(self.to_text())).clone())
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

    /// Encodes the `i`-th section family into `out`; false past the last.
    fn encode(&self, i: usize, out: &mut String) -> bool {
        let Some((s, f)) = self
            .sections
            .iter()
            .flat_map(|s| s.families.iter().map(move |f| (s, f)))
            .nth(i)
        else {
            return false;
        };
        encode_family(out, f, s.sinks.iter().map(|sink| sink.get(f.name)));
        true
    }
}

/// Iterator over an exposition's text; see `Exposition::chunks`.
pub struct Chunks {
    expo: Arc<Exposition>,
    /// Index of the next section family to encode.
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

    static FAMILY: Family = Family::gauge("pg_test_value", "A test family.", &["datname"]);
    static FAMILIES: &[&Family] = &[&FAMILY];

    /// A head over `CHUNK_BYTES` (the `pg_scrape_collector_*` series of
    /// ~1,000 databases) goes out once and the text ends: before issue 22's
    /// fix the head was resent with every chunk, forever.
    #[test]
    fn a_head_larger_than_a_chunk_is_sent_once() {
        let mut head = String::from("# TYPE pg_scrape_collector_success gauge\n");
        for i in 0..5000 {
            head.push_str(&format!(
                "pg_scrape_collector_success{{collector=\"tables\",datname=\"tenant_database_{i:05}\"}} 1\n"
            ));
        }
        assert!(head.len() > CHUNK_BYTES, "head {} bytes", head.len());
        let mut sink = Sink::default();
        sink.gauge(&FAMILY, &["a"], 1.0);
        let sections = vec![Section {
            families: FAMILIES,
            sinks: vec![Arc::new(sink)],
        }];
        let expo = Arc::new(Exposition::new(head, sections, "# tail\n".to_string()));
        let text = expo.to_text();
        assert_eq!(
            text.matches("# TYPE pg_scrape_collector_success gauge").count(),
            1
        );
        assert_eq!(text.matches("pg_scrape_collector_success{").count(), 5000);
        assert_eq!(text.matches("pg_test_value{").count(), 1);
        assert!(text.ends_with("# tail\n"));
    }
}
