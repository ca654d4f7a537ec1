//! Refusing to hand a password to a server nobody verified.
//!
//! tokio-postgres answers whatever authentication request the server sends:
//! `AuthenticationCleartextPassword` (code 3) gets the password itself,
//! `AuthenticationMD5Password` (code 5) an md5 hash that is cracked offline.
//! Its only switch is `channel_binding = require`, which also refuses trust
//! and plain SCRAM, so it cannot be the default. Instead, `AuthGuard` sits
//! under tokio-postgres' protocol code, reads the server's first message
//! after the start-up packet, and fails the read — before tokio-postgres has
//! seen the request, so before any password is written — when it is code 3
//! or 5 and the server's certificate was not verified (no `verify-ca`,
//! `verify-full`, or `require` with a root certificate).
//!
//! It guards both layers: the socket (for a server that declines TLS) and,
//! through `GuardConnect`, the TLS stream (whose plaintext the socket guard
//! cannot see). `tls::connect` opens the socket itself for that reason:
//! `tokio_postgres::Config::connect` gives no way to wrap it.
//!
//! SCRAM is let through: it never sends the password, though a fake server
//! that picks the salt and iteration count gets a proof it can attack
//! offline. Only `allowed_targets` (see `probe/allowed.rs`) and a verified
//! certificate keep the exporter off a fake server; this guard stops the
//! two methods that give the secret away outright or cheaply.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::tls::{ChannelBinding, TlsConnect, TlsStream};

/// PostgreSQL's SSLRequest: length 8, code 80877103.
const SSL_REQUEST: [u8; 8] = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];

/// Where the guarded stream is in the start-up exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Nothing written yet.
    Start,
    /// SSLRequest sent: the next byte read is `S` or `N`.
    SslReply,
    /// The server's first message: its type byte, length and, for `R`, the
    /// authentication code (9 bytes in all).
    First { head: [u8; 9], got: usize },
    /// Past the authentication request (or TLS took over): bytes pass.
    Through,
}

/// A stream that refuses a cleartext or md5 password request (see the module docs).
#[derive(Debug)]
pub struct AuthGuard<S> {
    inner: S,
    phase: Phase,
}

impl<S> AuthGuard<S> {
    /// `active: false` is a plain pass-through.
    pub fn new(inner: S, active: bool) -> Self {
        AuthGuard {
            inner,
            phase: if active { Phase::Start } else { Phase::Through },
        }
    }

    /// Looks at bytes just read; an error refuses the connection.
    fn inspect(&mut self, mut bytes: &[u8]) -> io::Result<()> {
        while let Some(&b) = bytes.first() {
            match &mut self.phase {
                Phase::Through => return Ok(()),
                Phase::Start => self.phase = Phase::First { head: [0; 9], got: 0 },
                Phase::SslReply => {
                    bytes = &bytes[1..];
                    self.phase = if b == b'N' {
                        // Declined: the start-up continues in plaintext here.
                        Phase::First { head: [0; 9], got: 0 }
                    } else {
                        // `S`: the TLS layer has its own guard (`GuardConnect`).
                        Phase::Through
                    };
                }
                Phase::First { head, got } => {
                    let n = (head.len() - *got).min(bytes.len());
                    head[*got..*got + n].copy_from_slice(&bytes[..n]);
                    *got += n;
                    bytes = &bytes[n..];
                    if head[0] != b'R' {
                        self.phase = Phase::Through;
                    } else if *got == head.len() {
                        let code = u32::from_be_bytes([head[5], head[6], head[7], head[8]]);
                        self.phase = Phase::Through;
                        if let Some(what) = match code {
                            3 => Some("a cleartext password"),
                            5 => Some("an md5 password hash"),
                            _ => None,
                        } {
                            return Err(io::Error::new(
                                io::ErrorKind::PermissionDenied,
                                format!(
                                    "refused: the server asked for {what}, but its certificate was not verified; \
                                     use sslmode=verify-full with sslrootcert, SCRAM on the server, \
                                     or allow_unverified_password_auth: true in the auth module"
                                ),
                            ));
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for AuthGuard<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?;
        if this.phase != Phase::Through {
            let new = buf.filled()[before..].to_vec();
            this.inspect(&new)?;
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for AuthGuard<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.phase == Phase::Start && !buf.is_empty() {
            this.phase = if buf.starts_with(&SSL_REQUEST) {
                Phase::SslReply
            } else {
                Phase::First { head: [0; 9], got: 0 }
            };
        }
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

impl<S: TlsStream + Unpin> TlsStream for AuthGuard<S> {
    fn channel_binding(&self) -> ChannelBinding {
        self.inner.channel_binding()
    }
}

/// A TLS connector whose stream is guarded.
pub struct GuardConnect<T> {
    pub inner: T,
    pub active: bool,
}

impl<S, T> TlsConnect<S> for GuardConnect<T>
where
    T: TlsConnect<S>,
    T::Future: Send + 'static,
    T::Stream: Send + 'static,
{
    type Stream = AuthGuard<T::Stream>;
    type Error = T::Error;
    type Future = Pin<Box<dyn Future<Output = Result<AuthGuard<T::Stream>, T::Error>> + Send>>;

    fn connect(self, stream: S) -> Self::Future {
        let active = self.active;
        let handshake = self.inner.connect(stream);
        Box::pin(async move { handshake.await.map(|s| AuthGuard::new(s, active)) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(active: bool, wrote: &[u8], reads: &[&[u8]]) -> io::Result<()> {
        let mut g = AuthGuard::new((), active);
        if g.phase == Phase::Start {
            g.phase = if wrote.starts_with(&SSL_REQUEST) {
                Phase::SslReply
            } else {
                Phase::First { head: [0; 9], got: 0 }
            };
        }
        for r in reads {
            g.inspect(r)?;
        }
        Ok(())
    }

    const CLEARTEXT: &[u8] = &[b'R', 0, 0, 0, 8, 0, 0, 0, 3];
    const MD5: &[u8] = &[b'R', 0, 0, 0, 12, 0, 0, 0, 5, 1, 2, 3, 4];
    const SASL: &[u8] = &[b'R', 0, 0, 0, 23, 0, 0, 0, 10];
    const OK: &[u8] = &[b'R', 0, 0, 0, 8, 0, 0, 0, 0];

    #[test]
    fn refuses_cleartext_and_md5_however_split() {
        let startup = b"\0\0\0\x08\0\x03\0\0";
        assert!(feed(true, startup, &[CLEARTEXT]).is_err());
        assert!(feed(true, startup, &[MD5]).is_err());
        assert!(feed(true, startup, &[&MD5[..3], &MD5[3..7], &MD5[7..]]).is_err());
        assert!(feed(true, &SSL_REQUEST, &[b"N", CLEARTEXT]).is_err());
        let joined: Vec<u8> = [b"N".as_slice(), MD5].concat();
        assert!(feed(true, &SSL_REQUEST, &[&joined]).is_err());
    }

    #[test]
    fn lets_the_rest_through() {
        let startup = b"\0\0\0\x08\0\x03\0\0";
        assert!(feed(true, startup, &[SASL]).is_ok());
        assert!(feed(true, startup, &[OK, CLEARTEXT]).is_ok());
        assert!(feed(true, startup, &[b"E\0\0\0\x05x"]).is_ok());
        // `S`: TLS follows, guarded on its own layer.
        assert!(feed(true, &SSL_REQUEST, &[b"S", CLEARTEXT]).is_ok());
        assert!(feed(false, startup, &[CLEARTEXT]).is_ok());
    }
}
