//! HTTP: `/metrics`, `/probe` (many targets, see `probe/`), `/` (landing page),
//! `/healthz` and the maintenance report (`/report`, `/report.json`, see `report/`).
//!
//! `router()` is what tests drive; `run()` serves it on a listener until the
//! shutdown future resolves. Handlers only map requests to scrape calls and
//! scrape results to responses: deadlines, coalescing and caches are the
//! scrape layer's (`scrape/`).

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

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
use crate::probe::{AuthModule, Probes};
use crate::scrape::{scrape_timeout, Coalescer, Scraper};
use crate::web::{self, WebConfig};

/// Shared state: the coalesced scraper of `/metrics` and the `/probe` targets.
pub struct App {
    pub scrape: Arc<Coalescer>,
    /// `/probe` targets (empty unless `PGMAINT_CONFIG_FILE` has auth modules).
    pub probes: Arc<Probes>,
}

pub type AppState = Arc<App>;

impl App {
    /// `auth_modules`: what `/probe` may use (`probe::auth_modules`).
    /// Fails only if the exporter's own constant metric names were refused
    /// (see `Coalescer::new`): called once, at start-up.
    pub fn new(scraper: Scraper, auth_modules: BTreeMap<String, AuthModule>) -> prometheus::Result<AppState> {
        let probing = !auth_modules.is_empty();
        let probes = Probes::new(scraper.config(), auth_modules, scraper.custom());
        let scrape = Coalescer::new(scraper)?;
        if probing {
            scrape.register(Box::new(crate::probe::Gauges::new(probes.clone())?))?;
        }
        Ok(Arc::new(App {
            scrape: Arc::new(scrape),
            probes,
        }))
    }
}

/// `web`: the checked `PGMAINT_WEB_CONFIG_FILE` (`web::from_config`).
pub fn router(state: AppState, web: Option<Arc<WebConfig>>) -> Router {
    // The report reads only the coalesced scrape, not the rest of `App`.
    let report = Router::new()
        .route("/report", get(crate::report::html_page))
        .route("/report.json", get(crate::report::json))
        .with_state(state.scrape.clone());
    let app = Router::new()
        .route("/", get(landing))
        .route("/metrics", get(metrics))
        .route("/probe", get(probe))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/runbook", get(crate::runbook::page))
        .merge(report)
        // gzip when the client asks for it, at the fastest level: at 30 MB of
        // text level 6 costs ~10x the time for a ~6 % smaller body.
        .layer(CompressionLayer::new().quality(CompressionLevel::Fastest))
        .with_state(state);
    // Basic auth (PGMAINT_WEB_CONFIG_FILE) guards every path, /healthz included.
    match web {
        Some(web) => web::protect(app, &web),
        None => app,
    }
}

/// Serves until `shutdown` resolves, then finishes in-flight requests.
/// Connections are capped and timed out as `http.rs` describes.
pub async fn run(
    listener: TcpListener,
    state: AppState,
    web: Option<Arc<WebConfig>>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let config = state.scrape.scraper.config();
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
    crate::http::serve(listener, router(state, web), tls, http2, limits, shutdown).await
}

async fn metrics(State(app): State<AppState>, headers: HeaderMap) -> Response {
    let arrived = Instant::now();
    let timeout = scrape_timeout(app.scrape.scraper.config().scrape_timeout, &headers);
    let scraped = app.scrape.shared_scrape(arrived, timeout).await;
    exposition_response(Arc::clone(&scraped.expo))
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
    match crate::probe::handle(app.probes.clone(), params, headers).await {
        Ok(scraped) => exposition_response(Arc::clone(&scraped.expo)),
        Err(e) => e.into_response(),
    }
}

async fn landing(State(app): State<AppState>) -> Html<String> {
    let config = app.scrape.scraper.config();
    let mut rows = String::new();
    for c in collectors::ALL {
        let scope = match c.scope() {
            Scope::Cluster => "cluster",
            Scope::PerDatabase => "every database",
        };
        let on = if collectors::is_enabled(config, *c) {
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
