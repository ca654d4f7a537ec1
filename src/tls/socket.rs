//! The socket under every PostgreSQL connection, closed synchronously.
//!
//! PostgreSQL keeps a backend's socket open until the process has exited:
//! on Terminate (or end of file) the backend calls `proc_exit`, whose
//! shmem-exit callbacks run first — `pgstat_beshutdown_hook` clears its
//! `pg_stat_activity` entry, `ProcKill` frees its PGPROC — and its
//! proc-exit callback `socket_close` (pqcomm.c) deliberately leaves the
//! socket to the kernel, "so clients can perform a synchronous close: wait
//! till the transport layer reports connection closure, and you can be sure
//! the backend has exited" (REL_14 to REL_18 alike).
//!
//! `SyncClose` does that close. Its `poll_shutdown` (called by
//! tokio-postgres' `Connection` after it wrote Terminate, under rustls'
//! close_notify when TLS is on) shuts our write half and then reads and
//! discards until end of file, so the connection's driver ends — and
//! `pool.rs` frees the connection's slot — only once the server no longer
//! counts the session. A server that has not closed within `CLOSE_WAIT`
//! gets a warning and the socket is dropped anyway (issue 22).
//!
//! `Socket` is the TCP or Unix stream `tls::connect` opens.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpStream, UnixStream};
use tokio::time::Sleep;

/// How long a closing connection waits for the server to close its end.
/// A backend exits in milliseconds; this only bounds a hung server.
pub const CLOSE_WAIT: Duration = Duration::from_secs(2);

/// A TCP or Unix-domain stream to PostgreSQL.
#[derive(Debug)]
pub enum Socket {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl AsyncRead for Socket {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Socket::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            Socket::Unix(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Socket {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Socket::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            Socket::Unix(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Socket::Tcp(s) => Pin::new(s).poll_flush(cx),
            Socket::Unix(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Socket::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            Socket::Unix(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

/// A stream whose shutdown completes when the peer has closed its end
/// (see the module docs).
#[derive(Debug)]
pub struct SyncClose<S> {
    inner: S,
    wait: Duration,
    /// Set once our write half is shut: when waiting for the peer ends.
    closing: Option<Pin<Box<Sleep>>>,
}

impl<S> SyncClose<S> {
    /// `wait`: how long `poll_shutdown` waits for the peer's end of file.
    pub fn new(inner: S, wait: Duration) -> Self {
        SyncClose {
            inner,
            wait,
            closing: None,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for SyncClose<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for SyncClose<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.closing.is_none() {
            ready!(Pin::new(&mut this.inner).poll_shutdown(cx))?;
            this.closing = Some(Box::pin(tokio::time::sleep(this.wait)));
        }
        let mut scratch = [0u8; 512];
        loop {
            let mut buf = ReadBuf::new(&mut scratch);
            match Pin::new(&mut this.inner).poll_read(cx, &mut buf) {
                Poll::Ready(Ok(())) if buf.filled().is_empty() => return Poll::Ready(Ok(())),
                // What the server still sends (a TLS close_notify, say) is of no use now.
                Poll::Ready(Ok(())) => {}
                // A reset closes the connection as surely as end of file.
                Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::ConnectionReset => {
                    return Poll::Ready(Ok(()))
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => {}
            }
            let expired = this
                .closing
                .as_mut()
                .is_some_and(|timer| timer.as_mut().poll(cx).is_ready());
            if expired {
                tracing::warn!(
                    wait_ms = this.wait.as_millis() as u64,
                    "the server did not close a connection we closed; its session may still count \
                     against the connection cap for a while"
                );
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("the server did not close the connection within {:?}", this.wait),
                )));
            }
            if buf.filled().is_empty() {
                // Pending: woken by more bytes, end of file or the timer.
                return Poll::Pending;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// A "server" that, once it has read the client's end of file, waits
    /// `linger` before closing its end: shutdown returns only after that.
    async fn shutdown_against(linger: Duration, wait: Duration) -> (io::Result<()>, Duration) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut sink = Vec::new();
            s.read_to_end(&mut sink).await.unwrap();
            s.write_all(b"bye").await.unwrap();
            tokio::time::sleep(linger).await;
            drop(s);
            sink
        });
        let mut client = SyncClose::new(TcpStream::connect(addr).await.unwrap(), wait);
        client.write_all(b"X\0\0\0\x04").await.unwrap();
        let start = Instant::now();
        let result = client.shutdown().await;
        let took = start.elapsed();
        // The server saw everything written before the shutdown.
        if linger < wait {
            assert_eq!(server.await.unwrap(), b"X\0\0\0\x04");
        }
        (result, took)
    }

    #[tokio::test]
    async fn shutdown_returns_after_the_peer_closed() {
        let linger = Duration::from_millis(300);
        let (result, took) = shutdown_against(linger, Duration::from_secs(5)).await;
        assert!(result.is_ok(), "{result:?}");
        assert!(took >= linger, "returned after {took:?}, before the peer closed");
        assert!(took < Duration::from_secs(5), "{took:?}");
    }

    #[tokio::test]
    async fn shutdown_gives_up_at_the_timeout() {
        let wait = Duration::from_millis(300);
        let (result, took) = shutdown_against(Duration::from_secs(30), wait).await;
        assert_eq!(result.unwrap_err().kind(), io::ErrorKind::TimedOut);
        assert!(took >= wait && took < Duration::from_secs(10), "{took:?}");
    }
}
