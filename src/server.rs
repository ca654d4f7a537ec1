//! HTTP: `/metrics`, `/probe` (many targets, see `probe.rs`), `/` (landing page),
//! `/healthz` and the maintenance report (`/report`, `/report.json`, see `report/`).
//!
//! `router()` is what tests drive; `run()` serves it on a listener until the
//! shutdown future resolves. A scrape never waits past its deadline: the
//! smaller of `PGMAINT_SCRAPE_TIMEOUT` and Prometheus'
//! `X-Prometheus-Scrape-Timeout-Seconds` minus a safety margin.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;
use tower_http::compression::{CompressionLayer, CompressionLevel};

use crate::collectors::{self, Scope};
use crate::metrics::Exposition;
use crate::scrape::Scraper;
use crate::web_config;

/// Time kept back from Prometheus' own scrape timeout for encoding and transfer.
const DEADLINE_MARGIN: Duration = Duration::from_millis(500);

/// Shared state: the scraper plus the exporter's own process-level counters.
///
/// These few counters live in a `prometheus` crate `Registry`; the
/// per-object families do not (see `metrics.rs` for why).
pub struct App {
    pub scraper: Arc<Scraper>,
    registry: prometheus::Registry,
    scrapes: prometheus::IntCounter,
    failures: prometheus::IntCounterVec,
    /// Held while a scrape runs: one at a time.
    running: tokio::sync::Mutex<()>,
    latest: std::sync::Mutex<Option<Latest>>,
    /// `/probe` targets (empty unless `PGMAINT_CONFIG_FILE` has auth modules).
    pub probes: Arc<crate::probe::Probes>,
    probe_targets: prometheus::IntGauge,
    probe_connections: prometheus::IntGauge,
}

pub type AppState = Arc<App>;

impl App {
    pub fn new(scraper: Scraper) -> AppState {
        let registry = prometheus::Registry::new();
        let scrapes = prometheus::IntCounter::new(
            "pgmaint_exporter_scrapes_total",
            "Scrapes served by /metrics since the exporter started.",
        )
        .expect("valid metric");
        let failures = prometheus::IntCounterVec::new(
            prometheus::Opts::new(
                "pgmaint_exporter_collector_failures_total",
                "Collector runs that failed (success 0) since the exporter started, by collector.",
            ),
            &["collector"],
        )
        .expect("valid metric");
        registry.register(Box::new(scrapes.clone())).expect("unique");
        registry.register(Box::new(failures.clone())).expect("unique");
        let probe_targets = prometheus::IntGauge::new(
            "pgmaint_exporter_probe_targets",
            "/probe targets held open right now (PGMAINT_MAX_TARGETS caps them).",
        )
        .expect("valid metric");
        let probe_connections = prometheus::IntGauge::new(
            "pgmaint_exporter_probe_connections_open",
            "Database connections open across all /probe targets (PGMAINT_MAX_CONNECTIONS_TOTAL caps them).",
        )
        .expect("valid metric");
        let probes = crate::probe::Probes::new(scraper.config());
        if !scraper.config().auth_modules.is_empty() {
            registry
                .register(Box::new(probe_targets.clone()))
                .expect("unique");
            registry
                .register(Box::new(probe_connections.clone()))
                .expect("unique");
        }
        Arc::new(App {
            scraper: Arc::new(scraper),
            registry,
            scrapes,
            failures,
            running: tokio::sync::Mutex::new(()),
            latest: std::sync::Mutex::new(None),
            probes,
            probe_targets,
            probe_connections,
        })
    }

    /// The body for a scrape request that arrived at `arrived`.
    ///
    /// Scrapes are coalesced: one runs at a time; a request that arrives
    /// while one is in flight waits for it and shares its result, and a
    /// result younger than `PGMAINT_MIN_SCRAPE_INTERVAL` is served again, so
    /// two Prometheus replicas or a burst of clients never multiply the load
    /// on the database. A request whose deadline passes while waiting gets
    /// the latest result there is.
    pub async fn shared_scrape(&self, arrived: Instant, timeout: Duration) -> Arc<Exposition> {
        let deadline = arrived + timeout;
        let reusable = |latest: &Option<Latest>| {
            latest.as_ref().and_then(|l| {
                let fresh =
                    l.finished >= arrived || l.finished.elapsed() < self.scraper.config().min_scrape_interval;
                fresh.then(|| Arc::clone(&l.expo))
            })
        };
        let _turn = match tokio::time::timeout_at(deadline.into(), self.running.lock()).await {
            Ok(turn) => turn,
            Err(_) => {
                if let Some(l) = self.latest.lock().unwrap().as_ref() {
                    return Arc::clone(&l.expo);
                }
                // The very first scrape is still running: wait for it (its own
                // deadline bounds the wait) rather than guess at pg_up.
                self.running.lock().await
            }
        };
        if let Some(expo) = reusable(&self.latest.lock().unwrap()) {
            return expo;
        }
        self.scrape_now(deadline.saturating_duration_since(Instant::now()))
            .await
    }

    async fn scrape_now(&self, timeout: Duration) -> Arc<Exposition> {
        let started = Instant::now();
        let snap = self.scraper.scrape(timeout).await;
        self.scrapes.inc();
        for r in snap.runs.iter().filter(|r| !r.success) {
            self.failures.with_label_values(&[r.collector]).inc();
        }
        self.probe_targets.set(self.probes.targets() as i64);
        self.probe_connections.set(self.probes.open_connections() as i64);
        // The prometheus crate only fails on invalid metric names: ours are constants.
        let tail = prometheus::TextEncoder::new()
            .encode_to_string(&self.registry.gather())
            .unwrap_or_default();
        let up = snap.up;
        let expo = Arc::new(Exposition::new(
            snap,
            self.scraper.config(),
            self.scraper.pools().open_connections(),
            tail,
        ));
        tracing::debug!(seconds = started.elapsed().as_secs_f64(), up, "scrape done");
        // Dropping the previous scrape here, before anyone encodes this one,
        // keeps at most two scrapes' samples alive.
        *self.latest.lock().unwrap() = Some(Latest {
            finished: Instant::now(),
            expo: Arc::clone(&expo),
        });
        expo
    }
}

/// The most recent scrape.
struct Latest {
    finished: Instant,
    expo: Arc<Exposition>,
}

pub fn router(state: AppState) -> Router {
    let web = state.scraper.config().web_config.clone();
    let app = Router::new()
        .route("/", get(landing))
        .route("/metrics", get(metrics))
        .route("/probe", get(probe))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/report", get(crate::report::html_page))
        .route("/report.json", get(crate::report::json))
        .route("/runbook", get(crate::runbook::page))
        // gzip when the client asks for it, at the fastest level: at 30 MB of
        // text level 6 costs ~10x the time for a ~6 % smaller body.
        .layer(CompressionLayer::new().quality(CompressionLevel::Fastest))
        .with_state(state);
    // Basic auth (PGMAINT_WEB_CONFIG_FILE) guards every path, /healthz included.
    match web {
        Some(web) => web_config::protect(app, &web),
        None => app,
    }
}

/// Serves until `shutdown` resolves, then finishes in-flight requests.
/// Connections are capped and timed out as `http.rs` describes.
pub async fn run(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let config = state.scraper.config();
    let web = config.web_config.clone();
    let limits = crate::http::Limits {
        max_connections: config.http_max_connections,
        read_header_timeout: config.http_read_header_timeout,
        idle_timeout: config.http_idle_timeout,
    }
    .fitted_to_fd_limit(config.max_connections + config.max_connections_total);
    let tls = web
        .as_ref()
        .and_then(|w| w.tls.clone())
        .map(tokio_rustls::TlsAcceptor::from);
    // HTTP/2 only over TLS, when the web config allows it (ALPN); plain
    // HTTP is HTTP/1.1, as it was with axum::serve.
    let http2 = tls.is_some() && web.as_ref().is_some_and(|w| w.http2);
    crate::http::serve(listener, router(state), tls, http2, limits, shutdown).await
}

/// The scrape deadline for this request.
pub fn scrape_timeout(configured: Duration, headers: &HeaderMap) -> Duration {
    match headers
        .get("X-Prometheus-Scrape-Timeout-Seconds")
        .and_then(|v| v.to_str().ok())
    {
        Some(v) => timeout_from_header(configured, v),
        None => configured,
    }
}

/// The deadline for an `X-Prometheus-Scrape-Timeout-Seconds` value: never
/// longer than `configured`, whatever the text (`1e308`, `NaN`, `-1`,
/// `18446744073709551616`, junk: `configured`), and never a panic.
pub fn timeout_from_header(configured: Duration, value: &str) -> Duration {
    let Some(secs) = value
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s > 0.0)
    else {
        return configured;
    };
    // Compared as seconds first: Duration::from_secs_f64 panics above ~1.8e19.
    if secs >= configured.as_secs_f64() {
        return configured;
    }
    let Ok(d) = Duration::try_from_secs_f64(secs) else {
        return configured;
    };
    // Keep a margin, but never less than half of what Prometheus allows.
    d.saturating_sub(DEADLINE_MARGIN).max(d / 2).min(configured)
}

async fn metrics(State(app): State<AppState>, headers: HeaderMap) -> Response {
    let arrived = Instant::now();
    let timeout = scrape_timeout(app.scraper.config().scrape_timeout, &headers);
    let expo = app.shared_scrape(arrived, timeout).await;
    exposition_response(expo)
}

/// The HTTP answer for a finished scrape (`/metrics` and `/probe`): a small
/// exposition's text encoded once and shared, a large one streamed family by
/// family (see `Exposition`), never held whole.
pub fn exposition_response(expo: Arc<Exposition>) -> Response {
    let content_type = [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")];
    if let Some(text) = expo.shared_text() {
        return (StatusCode::OK, content_type, text).into_response();
    }
    let chunks = expo
        .chunks()
        .map(|c| Ok::<_, std::convert::Infallible>(Bytes::from(c)));
    (
        StatusCode::OK,
        content_type,
        Body::from_stream(futures::stream::iter(chunks)),
    )
        .into_response()
}

async fn probe(
    State(app): State<AppState>,
    axum::extract::Query(params): axum::extract::Query<Vec<(String, String)>>,
    headers: HeaderMap,
) -> Response {
    crate::probe::handle(app.probes.clone(), params, headers).await
}

async fn landing(State(app): State<AppState>) -> Html<String> {
    let config = app.scraper.config();
    let mut rows = String::new();
    for c in collectors::ALL {
        let scope = match c.scope() {
            Scope::Cluster => "cluster",
            Scope::PerDatabase => "every database",
        };
        let on = if config.collector_enabled(c.name()) {
            "on"
        } else {
            "off"
        };
        rows.push_str(&format!(
            "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
            c.name(),
            on,
            scope,
            html_escape(c.description())
        ));
    }
    Html(format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>pgmaint-exporter</title>\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<style>body{{font-family:sans-serif;max-width:52rem;margin:2rem auto;padding:0 1rem}}\
table{{border-collapse:collapse}}td,th{{border-bottom:1px solid #ddd;padding:.3rem .6rem;text-align:left}}</style></head>\
<body><h1>pgmaint-exporter {version}</h1>\
<p>PostgreSQL maintenance-health exporter for Prometheus.</p>\
<h2>Endpoints</h2><ul>\
<li><a href=\"/metrics\">/metrics</a> — Prometheus metrics</li>\
<li><a href=\"/report\">/report</a> — maintenance report: what needs doing now, with the commands \
(<a href=\"/report.json\">JSON</a>)</li>\
<li><code>/probe?target=host:port&amp;auth_module=NAME</code> — another server's metrics (auth modules of PGMAINT_CONFIG_FILE)</li>\
<li><a href=\"/healthz\">/healthz</a> — liveness of the exporter itself</li></ul>\
<h2>Collectors</h2><table><tr><th>name</th><th>enabled</th><th>scope</th><th>what</th></tr>\n{rows}</table>\
<p>Watching database <code>{db}</code>; at most {max} connections.</p></body></html>",
        version = env!("CARGO_PKG_VERSION"),
        db = html_escape(&config.main_database()),
        max = config.max_connections,
    ))
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_header_shortens_the_deadline() {
        let mut h = HeaderMap::new();
        assert_eq!(
            scrape_timeout(Duration::from_secs(10), &h),
            Duration::from_secs(10)
        );
        h.insert("X-Prometheus-Scrape-Timeout-Seconds", "4".parse().unwrap());
        assert_eq!(
            scrape_timeout(Duration::from_secs(10), &h),
            Duration::from_millis(3500)
        );
        h.insert("X-Prometheus-Scrape-Timeout-Seconds", "0.5".parse().unwrap());
        assert_eq!(
            scrape_timeout(Duration::from_secs(10), &h),
            Duration::from_millis(250)
        );
        h.insert("X-Prometheus-Scrape-Timeout-Seconds", "30".parse().unwrap());
        assert_eq!(
            scrape_timeout(Duration::from_secs(10), &h),
            Duration::from_secs(10)
        );
        h.insert("X-Prometheus-Scrape-Timeout-Seconds", "junk".parse().unwrap());
        assert_eq!(
            scrape_timeout(Duration::from_secs(10), &h),
            Duration::from_secs(10)
        );
    }

    #[test]
    fn any_header_value_gives_a_bounded_timeout() {
        let ten = Duration::from_secs(10);
        for v in [
            "1e308",
            "18446744073709551616",
            "1.8446744073709552e19",
            "NaN",
            "inf",
            "-inf",
            "-1",
            "0",
            "-0",
            "",
            "   ",
            "1e-320",
            "0x10",
            "9".repeat(400).as_str(),
        ] {
            let d = timeout_from_header(ten, v);
            assert!(d <= ten, "{v:?} gave {d:?}");
        }
        assert_eq!(timeout_from_header(ten, "1e308"), ten);
        assert_eq!(timeout_from_header(ten, "NaN"), ten);
        assert!(timeout_from_header(ten, "1e-320") <= Duration::from_nanos(1));
    }
}
