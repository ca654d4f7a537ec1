//! TLS to PostgreSQL, with libpq's `sslmode` meanings, on rustls.
//!
//! tokio-postgres itself only knows disable/prefer/require and leaves
//! verification to the connector; `tokio-postgres-rustls` is the connector and
//! this module decides what it verifies:
//!
//! | sslmode | encrypts | verifies |
//! |---|---|---|
//! | `disable` | never | — |
//! | `allow`, `prefer` | if the server offers TLS, else plain | nothing |
//! | `require` | always | nothing — unless `sslrootcert` is given or `~/.postgresql/root.crt` exists: then like `verify-ca` (libpq's rule) |
//! | `verify-ca` | always | chain against `sslrootcert` (default `~/.postgresql/root.crt`, must exist) |
//! | `verify-full` | always | chain and host name (DNS name or, for an IP host, an IP SAN) |
//!
//! Client certificates come from `sslcert`/`sslkey` (default
//! `~/.postgresql/postgresql.crt`/`.key` when both exist). Files are read when
//! a database's pool is created, so a missing file is a connection error
//! (`pg_up 0` with the reason) that heals once the file appears, as with libpq.
//!
//! `connect` opens one connection through this connector, with
//! `auth_guard.rs` under it when a password must not reach an unverified server.

use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::ServerCertVerifier;
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{CertificateError, ClientConfig, RootCertStore};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpStream, UnixStream};
use tokio_postgres::config::Host;
use tokio_postgres::tls::MakeTlsConnect;
use tokio_postgres::Client;
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::auth_guard::{AuthGuard, GuardConnect};
use crate::dsn::{Dsn, SslMode};

mod socket;
mod verify;

use socket::{Socket, SyncClose};
use verify::{ChainOnly, NoVerify};

/// The connector handed to deadpool-postgres.
///
/// A thin wrapper over `MakeRustlsConnect`: tokio-postgres asks for a
/// connector with an empty host name on Unix sockets (where PostgreSQL never
/// offers TLS), which rustls would refuse as a server name. Its streams go
/// through `AuthGuard`, active when `guard` is set (`TlsPlan::guard`).
#[derive(Clone)]
pub struct MakeTls {
    inner: MakeRustlsConnect,
    guard: bool,
}

impl MakeTls {
    /// Whether a cleartext or md5 password request is refused.
    pub fn guards(&self) -> bool {
        self.guard
    }
}

impl<S> MakeTlsConnect<S> for MakeTls
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = AuthGuard<<MakeRustlsConnect as MakeTlsConnect<S>>::Stream>;
    type TlsConnect = GuardConnect<<MakeRustlsConnect as MakeTlsConnect<S>>::TlsConnect>;
    type Error = <MakeRustlsConnect as MakeTlsConnect<S>>::Error;

    fn make_tls_connect(&mut self, hostname: &str) -> Result<Self::TlsConnect, Self::Error> {
        let name = if hostname.is_empty() {
            "localhost"
        } else {
            hostname
        };
        Ok(GuardConnect {
            inner: MakeTlsConnect::<S>::make_tls_connect(&mut self.inner, name)?,
            active: self.guard,
        })
    }
}

/// What the connection string asks TLS to do, with default file paths resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct TlsPlan {
    pub mode: SslMode,
    /// Root certificates to verify against; `None`: no verification.
    pub rootcert: Option<PathBuf>,
    /// Whether the host name is checked as well (verify-full).
    pub check_host: bool,
    /// Client certificate chain and key.
    pub client: Option<(PathBuf, PathBuf)>,
    /// Refuse cleartext and md5 password requests: asked for
    /// (`Dsn::refuse_unverified_password`) and the server is not verified.
    pub guard: bool,
}

fn home_file(name: &str) -> Option<PathBuf> {
    std::env::var_os("HOME").map(|h| Path::new(&h).join(".postgresql").join(name))
}

impl TlsPlan {
    /// libpq's rules for which files are used, given the environment's `HOME`.
    pub fn new(dsn: &Dsn) -> Result<TlsPlan, String> {
        let verifying = matches!(dsn.sslmode, SslMode::VerifyCa | SslMode::VerifyFull);
        let rootcert =
            match dsn.sslmode {
                SslMode::Disable | SslMode::Allow | SslMode::Prefer => None,
                SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => {
                    match dsn.sslrootcert.as_deref() {
                    Some("system") => {
                        return Err(
                            "sslrootcert=system is not supported; give the path of a PEM file with the CA certificates"
                                .into(),
                        )
                    }
                    Some(p) => Some(PathBuf::from(p)),
                    None => match home_file("root.crt") {
                        Some(p) if p.exists() => Some(p),
                        Some(p) if verifying => {
                            return Err(format!(
                                "sslmode={} needs a root certificate: {} does not exist (set sslrootcert, or use sslmode=require to encrypt without verifying)",
                                mode_name(dsn.sslmode),
                                p.display()
                            ))
                        }
                        None if verifying => {
                            return Err(format!(
                                "sslmode={} needs a root certificate: set sslrootcert (HOME is not set, so ~/.postgresql/root.crt cannot be used)",
                                mode_name(dsn.sslmode)
                            ))
                        }
                        _ => None,
                    },
                }
                }
            };
        let client = match (&dsn.sslcert, &dsn.sslkey) {
            (Some(c), Some(k)) => Some((PathBuf::from(c), PathBuf::from(k))),
            (Some(_), None) | (None, Some(_)) => {
                return Err("sslcert and sslkey must be given together".into())
            }
            (None, None) => match (home_file("postgresql.crt"), home_file("postgresql.key")) {
                (Some(c), Some(k)) if c.exists() && k.exists() => Some((c, k)),
                _ => None,
            },
        };
        Ok(TlsPlan {
            mode: dsn.sslmode,
            check_host: dsn.sslmode == SslMode::VerifyFull,
            guard: dsn.refuse_unverified_password && rootcert.is_none(),
            rootcert,
            client,
        })
    }

    /// Reads the files and builds the connector.
    pub fn connector(&self) -> Result<MakeTls, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS setup: {e}"))?;
        let verifier: Arc<dyn ServerCertVerifier> = match &self.rootcert {
            None => Arc::new(NoVerify(provider.clone())),
            Some(path) => {
                let roots = load_roots(path)?;
                let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                    .build()
                    .map_err(|e| format!("sslrootcert={}: {e}", path.display()))?;
                if self.check_host {
                    webpki
                } else {
                    Arc::new(ChainOnly(webpki))
                }
            }
        };
        let builder = builder.dangerous().with_custom_certificate_verifier(verifier);
        let config = match &self.client {
            None => builder.with_no_client_auth(),
            Some((cert, key)) => {
                let chain = load_certs(cert, "sslcert")?;
                let key = PrivateKeyDer::from_pem_file(key).map_err(|e| {
                    format!(
                        "sslkey={}: cannot read a private key: {}",
                        key.display(),
                        pem_error(e)
                    )
                })?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| format!("sslcert/sslkey: {e}"))?
            }
        };
        Ok(MakeTls {
            inner: MakeRustlsConnect::new(config),
            guard: self.guard,
        })
    }

    /// A DBA's explanation of a failed connection, if TLS is why.
    pub fn explain(&self, err: &tokio_postgres::Error) -> Option<String> {
        // tokio-postgres' own message is only the kind ("error performing TLS
        // handshake"); the reason is further down the source chain.
        let mut chain = Vec::new();
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
        while let Some(e) = source {
            let rustls_err = e.downcast_ref::<rustls::Error>().or_else(|| {
                e.downcast_ref::<std::io::Error>()?
                    .get_ref()?
                    .downcast_ref::<rustls::Error>()
            });
            if let Some(r) = rustls_err {
                return Some(self.describe(r));
            }
            chain.push(e.to_string());
            source = e.source();
        }
        if chain.iter().any(|m| m.contains("server does not support TLS")) {
            return Some(format!(
                "sslmode={} but the server does not support TLS (ssl = off in its postgresql.conf?)",
                mode_name(self.mode)
            ));
        }
        chain
            .first()
            .is_some_and(|m| m.contains("TLS"))
            .then(|| chain.join(": "))
    }

    fn describe(&self, e: &rustls::Error) -> String {
        let root = self
            .rootcert
            .as_ref()
            .map(|p| format!(" (sslrootcert={})", p.display()))
            .unwrap_or_default();
        match e {
            rustls::Error::InvalidCertificate(c) => match c {
                CertificateError::UnknownIssuer => {
                    format!("certificate verify failed: unknown CA{root}")
                }
                CertificateError::NotValidForNameContext { expected, presented } => format!(
                    "server certificate is for {}, not {} (sslmode=verify-full checks the host name)",
                    if presented.is_empty() {
                        "no host name".to_string()
                    } else {
                        presented
                            .iter()
                            .map(|n| san_text(n))
                            .collect::<Vec<_>>()
                            .join(", ")
                    },
                    expected.to_str()
                ),
                CertificateError::NotValidForName => {
                    "server certificate is not for this host name (sslmode=verify-full checks the host name)"
                        .into()
                }
                other => format!("certificate verify failed: {other}{root}"),
            },
            rustls::Error::AlertReceived(alert) => {
                let client = self
                    .client
                    .as_ref()
                    .map(|(c, _)| format!(" (sslcert={})", c.display()))
                    .unwrap_or_default();
                format!("the server ended the TLS handshake with alert {alert:?}: it may not accept our client certificate{client}")
            }
            other => format!("TLS handshake failed: {other}"),
        }
    }
}

fn mode_name(m: SslMode) -> &'static str {
    match m {
        SslMode::Disable => "disable",
        SslMode::Allow => "allow",
        SslMode::Prefer => "prefer",
        SslMode::Require => "require",
        SslMode::VerifyCa => "verify-ca",
        SslMode::VerifyFull => "verify-full",
    }
}

/// webpki shows names as `DnsName("db.example")` / `IpAddress(10.0.0.1)`: keep the name.
fn san_text(presented: &str) -> &str {
    presented
        .strip_prefix("DnsName(\"")
        .and_then(|n| n.strip_suffix("\")"))
        .or_else(|| presented.strip_prefix("IpAddress(")?.strip_suffix(')'))
        .unwrap_or(presented)
}

fn pem_error(e: rustls::pki_types::pem::Error) -> String {
    match e {
        rustls::pki_types::pem::Error::Io(io) => io.to_string(),
        rustls::pki_types::pem::Error::NoItemsFound => "no PEM item of that kind found".into(),
        other => format!("{other:?}"),
    }
}

fn load_certs(path: &Path, key: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| {
            format!(
                "{key}={}: cannot read certificates: {}",
                path.display(),
                pem_error(e)
            )
        })?;
    if certs.is_empty() {
        return Err(format!(
            "{key}={}: no PEM certificate in the file",
            path.display()
        ));
    }
    Ok(certs)
}

fn load_roots(path: &Path) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    for cert in load_certs(path, "sslrootcert")? {
        roots
            .add(cert)
            .map_err(|e| format!("sslrootcert={}: {e}", path.display()))?;
    }
    Ok(roots)
}

/// The task that drives a connection's socket.
pub type Driver = Pin<Box<dyn Future<Output = Result<(), tokio_postgres::Error>> + Send>>;

/// Why a connection could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error(transparent)]
    Pg(#[from] tokio_postgres::Error),
    #[error("cannot connect to {host}:{port}: {source}")]
    Socket {
        host: String,
        port: u16,
        source: io::Error,
    },
}

/// Opens a connection: the hosts in order (each address of a name in
/// turn), like tokio-postgres, but on our own socket, so every connection
/// closes synchronously (`socket::SyncClose`) and, when the connector
/// guards, goes through `AuthGuard`.
pub async fn connect(pg: &tokio_postgres::Config, tls: &MakeTls) -> Result<(Client, Driver), ConnectError> {
    let ports = pg.get_ports();
    let mut last = None;
    for (i, host) in pg.get_hosts().iter().enumerate() {
        let port = ports.get(i).or(ports.first()).copied().unwrap_or(5432);
        match connect_host(pg, tls, host, port).await {
            Ok(done) => return Ok(done),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| ConnectError::Socket {
        host: String::new(),
        port: 5432,
        source: io::Error::new(io::ErrorKind::InvalidInput, "no host to connect to"),
    }))
}

async fn connect_host(
    pg: &tokio_postgres::Config,
    tls: &MakeTls,
    host: &Host,
    port: u16,
) -> Result<(Client, Driver), ConnectError> {
    let timeout = pg
        .get_connect_timeout()
        .copied()
        .unwrap_or(Duration::from_secs(5));
    let (name, sockets) = match host {
        Host::Tcp(h) => {
            let addrs = tokio::net::lookup_host((h.as_str(), port))
                .await
                .map_err(|source| ConnectError::Socket {
                    host: h.clone(),
                    port,
                    source,
                })?;
            (h.clone(), addrs.map(Target::Tcp).collect::<Vec<_>>())
        }
        Host::Unix(dir) => (
            String::new(),
            vec![Target::Unix(dir.join(format!(".s.PGSQL.{port}")))],
        ),
    };
    let socket_error = |source| ConnectError::Socket {
        host: match host {
            Host::Tcp(h) => h.clone(),
            Host::Unix(dir) => dir.display().to_string(),
        },
        port,
        source,
    };
    let mut last = socket_error(io::Error::new(
        io::ErrorKind::NotFound,
        "the host name has no address",
    ));
    for target in sockets {
        let socket = match tokio::time::timeout(timeout, target.open(pg)).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                last = socket_error(e);
                continue;
            }
            Err(_) => {
                last = socket_error(io::Error::new(io::ErrorKind::TimedOut, "connect timed out"));
                continue;
            }
        };
        let stream = AuthGuard::new(SyncClose::new(socket, socket::CLOSE_WAIT), tls.guards());
        let connector = MakeTlsConnect::<GuardedSocket>::make_tls_connect(&mut tls.clone(), &name)
            .map_err(|e| socket_error(io::Error::other(e.to_string())))?;
        match pg.connect_raw(stream, connector).await {
            Ok((client, conn)) => return Ok((client, Box::pin(conn))),
            Err(e) => last = ConnectError::Pg(e),
        }
    }
    Err(last)
}

/// The stream tokio-postgres speaks over (TLS goes on top of it).
type GuardedSocket = AuthGuard<SyncClose<Socket>>;

/// One address to try.
enum Target {
    Tcp(std::net::SocketAddr),
    Unix(PathBuf),
}

impl Target {
    /// Opens the socket with tokio-postgres' options: no Nagle delay, TCP
    /// keepalives as configured.
    async fn open(self, pg: &tokio_postgres::Config) -> io::Result<Socket> {
        match self {
            Target::Tcp(addr) => {
                let s = TcpStream::connect(addr).await?;
                s.set_nodelay(true)?;
                if pg.get_keepalives() {
                    let mut keepalive = socket2::TcpKeepalive::new().with_time(pg.get_keepalives_idle());
                    if let Some(interval) = pg.get_keepalives_interval() {
                        keepalive = keepalive.with_interval(interval);
                    }
                    if let Some(retries) = pg.get_keepalives_retries() {
                        keepalive = keepalive.with_retries(retries);
                    }
                    socket2::SockRef::from(&s).set_tcp_keepalive(&keepalive)?;
                }
                Ok(Socket::Tcp(s))
            }
            Target::Unix(path) => Ok(Socket::Unix(UnixStream::connect(path).await?)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(s: &str) -> Result<TlsPlan, String> {
        TlsPlan::new(&Dsn::parse(s).unwrap())
    }

    #[test]
    fn modes_choose_verification() {
        let p = plan("host=h sslmode=require").unwrap();
        assert_eq!(p.rootcert, home_file("root.crt").filter(|p| p.exists()));
        let p = plan("host=h sslmode=require sslrootcert=/ca.pem").unwrap();
        assert_eq!(p.rootcert.as_deref(), Some(Path::new("/ca.pem")));
        assert!(!p.check_host);
        let p = plan("host=h sslmode=prefer sslrootcert=/ca.pem").unwrap();
        assert_eq!(p.rootcert, None);
        let p = plan("host=h sslmode=verify-full sslrootcert=/ca.pem").unwrap();
        assert!(p.check_host);
        assert!(plan("host=h sslmode=verify-ca sslrootcert=system")
            .unwrap_err()
            .contains("system"));
        assert!(plan("host=h sslmode=require sslcert=/c.pem")
            .unwrap_err()
            .contains("sslkey"));
    }

    #[test]
    fn presented_names_are_plain() {
        assert_eq!(san_text("DnsName(\"db.example\")"), "db.example");
        assert_eq!(san_text("IpAddress(10.0.0.1)"), "10.0.0.1");
        assert_eq!(san_text("DirectoryName"), "DirectoryName");
    }

    #[test]
    fn missing_root_file_is_named() {
        let e = plan("host=h sslmode=verify-ca sslrootcert=/nonexistent/ca.pem")
            .unwrap()
            .connector()
            .err()
            .unwrap();
        assert!(e.contains("sslrootcert=/nonexistent/ca.pem"), "{e}");
        assert!(e.contains("No such file"), "{e}");
    }
}
