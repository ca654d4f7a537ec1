//! The HTTP server loop: accepts connections (plain or TLS) and serves the
//! router on each, with the limits that keep slow or idle clients from
//! exhausting the process (issue 17 item 3):
//!
//! - **at most `PGMAINT_HTTP_MAX_CONNECTIONS` connections** (lowered to fit
//!   `RLIMIT_NOFILE` at start). When all are taken and another client
//!   connects, the connection idle the longest (no request in progress) is
//!   closed to make room, so a scraper is served while hundreds of idle or
//!   trickling clients are connected; only when every connection has a
//!   request in progress does a new one wait;
//! - **`PGMAINT_HTTP_READ_HEADER_TIMEOUT`**: a request whose headers have not
//!   all arrived this long after its first byte (or a TLS handshake not done
//!   by then) closes the connection — the 1-byte-per-second client;
//! - **`PGMAINT_HTTP_IDLE_TIMEOUT`**: a connection with no request in
//!   progress and no bytes either way for this long is closed.
//!
//! hyper's own `header_read_timeout` is not used: in hyper 1.x it also runs
//! while a kept-alive connection waits for its next request, so it would cap
//! the idle time too. Here bytes are seen by a wrapper around the socket and
//! requests by a layer around the router; a watchdog task per connection
//! applies both limits.
//!
//! `accept` failing (out of file descriptors) closes the longest-idle
//! connection and retries at once, instead of sleeping a second as
//! `axum::serve` does while every client waits.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, Semaphore};
use tokio_rustls::TlsAcceptor;

/// File descriptors kept back from `RLIMIT_NOFILE` for everything that is
/// not an HTTP connection (listener, epoll, log, files read by collectors,
/// pg_restore), on top of the database connection caps.
const RESERVED_FDS: u64 = 64;

/// The limits of one server.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_connections: usize,
    pub read_header_timeout: Duration,
    pub idle_timeout: Duration,
}

impl Limits {
    /// `max_connections` lowered so that, with the database connections the
    /// exporter may open, the process stays under its soft `RLIMIT_NOFILE`.
    pub fn fitted_to_fd_limit(mut self, database_connections: usize) -> Limits {
        let mut rl = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit writes into the struct we pass and nothing else.
        if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) } != 0 || rl.rlim_cur == libc::RLIM_INFINITY
        {
            return self;
        }
        let room = rl
            .rlim_cur
            .saturating_sub(RESERVED_FDS + database_connections as u64);
        let fitted = usize::try_from(room).unwrap_or(usize::MAX).max(1);
        if fitted < self.max_connections {
            tracing::warn!(
                configured = self.max_connections,
                used = fitted,
                nofile = rl.rlim_cur,
                "PGMAINT_HTTP_MAX_CONNECTIONS lowered to fit the open-files limit (ulimit -n)"
            );
            self.max_connections = fitted;
        }
        self
    }
}

/// What the watchdog knows of one connection.
struct Conn {
    /// Milliseconds since `Registry::base` of the last byte read or written.
    last_io: AtomicU64,
    /// Milliseconds since `base` (plus one; 0: none) of the first byte read
    /// while no request was in progress: a request's headers are arriving.
    reading_since: AtomicU64,
    in_flight: AtomicUsize,
    closing: AtomicBool,
    close: Notify,
}

/// Every open connection, for the cap's evictions.
struct Registry {
    base: Instant,
    next_id: AtomicU64,
    conns: Mutex<HashMap<u64, Arc<Conn>>>,
}

impl Registry {
    fn now(&self) -> u64 {
        self.base.elapsed().as_millis() as u64
    }

    /// Closes the connection idle the longest with no request in progress;
    /// false if there is none.
    fn evict_one(&self) -> bool {
        let victim = {
            let conns = self.conns.lock().unwrap_or_else(|e| e.into_inner());
            conns
                .values()
                .filter(|c| c.in_flight.load(Ordering::Acquire) == 0 && !c.closing.load(Ordering::Acquire))
                .min_by_key(|c| c.last_io.load(Ordering::Acquire))
                .cloned()
        };
        match victim {
            Some(c) => {
                c.closing.store(true, Ordering::Release);
                c.close.notify_one();
                true
            }
            None => false,
        }
    }
}

/// Removes a connection from the registry when its task ends.
struct Registered {
    registry: Arc<Registry>,
    id: u64,
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.registry
            .conns
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.id);
    }
}

/// The socket, noting when bytes pass.
struct Watched<T> {
    inner: T,
    conn: Arc<Conn>,
    registry: Arc<Registry>,
}

impl<T> Watched<T> {
    fn saw_bytes(&self, read: bool) {
        let now = self.registry.now();
        self.conn.last_io.store(now, Ordering::Release);
        if read && self.conn.in_flight.load(Ordering::Acquire) == 0 {
            let _ = self
                .conn
                .reading_since
                .compare_exchange(0, now + 1, Ordering::AcqRel, Ordering::Acquire);
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Watched<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.saw_bytes(true);
        }
        r
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Watched<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, data);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.saw_bytes(false);
        }
        r
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.saw_bytes(false);
        }
        r
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Marks a request in progress on its connection for as long as it runs.
struct InFlight(Arc<Conn>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Router layer: a request's headers are complete once it gets here.
async fn track(State(conn): State<Arc<Conn>>, req: Request, next: Next) -> Response {
    conn.in_flight.fetch_add(1, Ordering::AcqRel);
    conn.reading_since.store(0, Ordering::Release);
    let _busy = InFlight(conn);
    next.run(req).await
}

/// Resolves when the connection is to be closed: headers too slow, idle
/// too long, or evicted to make room.
async fn watchdog(conn: &Conn, registry: &Registry, limits: Limits) {
    let tick = (limits.read_header_timeout.min(limits.idle_timeout) / 4)
        .clamp(Duration::from_millis(50), Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = conn.close.notified() => return,
            _ = tokio::time::sleep(tick) => {}
        }
        if conn.in_flight.load(Ordering::Acquire) > 0 {
            continue;
        }
        let now = registry.now();
        let reading = conn.reading_since.load(Ordering::Acquire);
        if reading != 0 && now.saturating_sub(reading - 1) >= limits.read_header_timeout.as_millis() as u64 {
            tracing::debug!(
                "closing a connection: request headers not complete within PGMAINT_HTTP_READ_HEADER_TIMEOUT"
            );
            return;
        }
        if now.saturating_sub(conn.last_io.load(Ordering::Acquire)) >= limits.idle_timeout.as_millis() as u64
        {
            tracing::debug!("closing a connection idle for PGMAINT_HTTP_IDLE_TIMEOUT");
            return;
        }
    }
}

/// Serves `app` on `listener` until `shutdown` resolves, then lets requests
/// in progress finish. With `tls`, every connection is a TLS one (a client
/// that does not complete the handshake within the read-header timeout is
/// dropped unserved).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    tls: Option<TlsAcceptor>,
    http2: bool,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let registry = Arc::new(Registry {
        base: Instant::now(),
        next_id: AtomicU64::new(0),
        conns: Mutex::new(HashMap::new()),
    });
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    let mut last_warning: Option<Instant> = None;
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors, most likely: make room now.
                    if last_warning.map_or(true, |t| t.elapsed() > Duration::from_secs(10)) {
                        tracing::warn!("accept failed: {e}; closing the longest-idle connection");
                        last_warning = Some(Instant::now());
                    }
                    if !registry.evict_one() {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    tokio::task::yield_now().await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let slot = match slots.clone().try_acquire_owned() {
            Ok(s) => s,
            Err(_) => {
                registry.evict_one();
                // The evicted connection frees its slot as its task ends; if
                // every connection is busy with a request, wait for one.
                tokio::select! {
                    s = slots.clone().acquire_owned() => match s {
                        Ok(s) => s,
                        Err(_) => break,
                    },
                    _ = &mut shutdown => break,
                }
            }
        };
        // No Nagle delay between a response's headers and body: the second
        // write would wait for the client's delayed ACK (docs/performance.md).
        let _ = tcp.set_nodelay(true);
        let conn = Arc::new(Conn {
            last_io: AtomicU64::new(registry.now()),
            reading_since: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            closing: AtomicBool::new(false),
            close: Notify::new(),
        });
        let id = registry.next_id.fetch_add(1, Ordering::Relaxed);
        registry
            .conns
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, conn.clone());
        let registered = Registered {
            registry: registry.clone(),
            id,
        };
        let io = Watched {
            inner: tcp,
            conn: conn.clone(),
            registry: registry.clone(),
        };
        let app = app
            .clone()
            .layer(axum::middleware::from_fn_with_state(conn.clone(), track));
        let watcher = graceful.watcher();
        let tls = tls.clone();
        let registry = registry.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let _registered = registered;
            let served = async {
                let mut builder = auto::Builder::new(TokioExecutor::new());
                if !http2 {
                    builder = builder.http1_only();
                }
                builder.http1().header_read_timeout(None);
                let service = TowerToHyperService::new(app);
                let result = match tls {
                    None => {
                        let c = builder.serve_connection_with_upgrades(TokioIo::new(io), service);
                        watcher.watch(c.into_owned()).await
                    }
                    Some(acceptor) => {
                        let handshake = tokio::time::timeout(limits.read_header_timeout, acceptor.accept(io));
                        let stream: tokio_rustls::server::TlsStream<Watched<TcpStream>> =
                            match handshake.await {
                                Ok(Ok(s)) => s,
                                Ok(Err(e)) => {
                                    tracing::debug!(%peer, "TLS handshake failed: {e}");
                                    return;
                                }
                                Err(_) => {
                                    tracing::debug!(%peer, "TLS handshake timed out");
                                    return;
                                }
                            };
                        let c = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
                        watcher.watch(c.into_owned()).await
                    }
                };
                if let Err(e) = result {
                    tracing::debug!(%peer, "connection ended: {e}");
                }
            };
            tokio::select! {
                _ = served => {}
                _ = watchdog(&conn, &registry, limits) => {}
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_fits_the_fd_limit() {
        let l = Limits {
            max_connections: usize::MAX / 2,
            read_header_timeout: Duration::from_secs(1),
            idle_timeout: Duration::from_secs(1),
        };
        let fitted = l.fitted_to_fd_limit(10);
        let mut rl = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: as above.
        assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) }, 0);
        if rl.rlim_cur != libc::RLIM_INFINITY {
            assert!((fitted.max_connections as u64) < rl.rlim_cur);
        }
    }
}
