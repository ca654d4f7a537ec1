//! `/probe` as an attacker would use it (issue 17): fake PostgreSQL servers
//! written here, on 127.0.0.1, ask for a cleartext (code 3) or md5 (code 5)
//! password and record every byte the exporter sends after the start-up
//! packet. A target outside `allowed_targets` gets no connection at all; an
//! unverified server gets no password unless the module opts in; a verified
//! one does; closed, silent and non-PostgreSQL ports answer alike; a
//! server's error text cannot forge a log line.
use crate::harness;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use harness::{Dir, Exporter, Samples};
use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What a fake server does after the start-up packet.
#[derive(Clone)]
enum Script {
    /// Ask for a password with this authentication code (3 cleartext, 5 md5).
    Auth(u32),
    /// Send an ErrorResponse with this message.
    Error(String),
}

/// A fake PostgreSQL server on 127.0.0.1.
struct Fake {
    port: u16,
    /// Connections accepted.
    conns: Arc<AtomicUsize>,
    /// Bytes received after the start-up packet, across connections.
    received: Arc<Mutex<Vec<u8>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Fake {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// `tls`: the acceptor to answer an SSLRequest with `S`; `None` answers `N`.
async fn fake(script: Script, tls: Option<tokio_rustls::TlsAcceptor>) -> Fake {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let conns = Arc::new(AtomicUsize::new(0));
    let received = Arc::new(Mutex::new(Vec::new()));
    let (c, r) = (conns.clone(), received.clone());
    let task = tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            c.fetch_add(1, Ordering::SeqCst);
            let (script, tls, r) = (script.clone(), tls.clone(), r.clone());
            tokio::spawn(async move {
                let _ = tokio::time::timeout(Duration::from_secs(10), serve(sock, script, tls, r)).await;
            });
        }
    });
    Fake {
        port,
        conns,
        received,
        task,
    }
}

async fn read_packet<S: AsyncRead + Unpin>(s: &mut S) -> std::io::Result<Vec<u8>> {
    let len = s.read_u32().await? as usize;
    let mut body = vec![0; len.saturating_sub(4)];
    s.read_exact(&mut body).await?;
    Ok(body)
}

async fn serve(
    mut sock: TcpStream,
    script: Script,
    tls: Option<tokio_rustls::TlsAcceptor>,
    received: Arc<Mutex<Vec<u8>>>,
) -> std::io::Result<()> {
    let first = read_packet(&mut sock).await?;
    if first == [0x04, 0xd2, 0x16, 0x2f] {
        if let Some(acceptor) = tls {
            sock.write_all(b"S").await?;
            let mut tls = acceptor.accept(sock).await?;
            read_packet(&mut tls).await?;
            return converse(&mut tls, script, received).await;
        }
        sock.write_all(b"N").await?;
        read_packet(&mut sock).await?;
    }
    converse(&mut sock, script, received).await
}

async fn converse<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    script: Script,
    received: Arc<Mutex<Vec<u8>>>,
) -> std::io::Result<()> {
    match script {
        Script::Auth(code) => {
            let mut msg = vec![b'R'];
            if code == 5 {
                msg.extend(12u32.to_be_bytes());
                msg.extend(5u32.to_be_bytes());
                msg.extend([1, 2, 3, 4]);
            } else {
                msg.extend(8u32.to_be_bytes());
                msg.extend(code.to_be_bytes());
            }
            s.write_all(&msg).await?;
            let mut buf = [0; 4096];
            let n = s.read(&mut buf).await?;
            if n == 0 {
                return Ok(());
            }
            received.lock().unwrap().extend_from_slice(&buf[..n]);
            // A password message: refuse it like PostgreSQL would.
            error_response(s, "password authentication failed for user \"mon\"").await
        }
        Script::Error(text) => error_response(s, &text).await,
    }
}

async fn error_response<S: AsyncWrite + Unpin>(s: &mut S, text: &str) -> std::io::Result<()> {
    let mut body = Vec::new();
    for (k, v) in [(b'S', "FATAL"), (b'V', "FATAL"), (b'C', "28P01"), (b'M', text)] {
        body.push(k);
        body.extend(v.as_bytes());
        body.push(0);
    }
    body.push(0);
    let mut msg = vec![b'E'];
    msg.extend((body.len() as u32 + 4).to_be_bytes());
    msg.extend(body);
    s.write_all(&msg).await?;
    s.flush().await
}

/// A CA, and a TLS acceptor for 127.0.0.1 signed by it (`signed`) or
/// self-signed; returns the acceptor and the CA's PEM.
fn tls_acceptor(signed: bool) -> (tokio_rustls::TlsAcceptor, String) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(DnType::CommonName, "fake CA");
    let ca_pem = ca.self_signed(&ca_key).unwrap().pem();
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let cert = if signed {
        params.signed_by(&key, &issuer).unwrap()
    } else {
        params.self_signed(&key).unwrap()
    };
    let chain = vec![CertificateDer::from_pem_slice(cert.pem().as_bytes()).unwrap()];
    let key = PrivateKeyDer::from_pem_slice(key.serialize_pem().as_bytes()).unwrap();
    let config =
        rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .unwrap();
    (tokio_rustls::TlsAcceptor::from(Arc::new(config)), ca_pem)
}

/// An exporter whose `/probe` uses `config` (the auth modules); its own
/// `/metrics` points at a port nobody listens on.
async fn exporter(dir: &Dir, config: &str) -> Exporter {
    let file = dir.write("config.yml", config, 0o600);
    let nowhere = format!("postgresql://mon@127.0.0.1:{}/postgres", harness::free_port());
    Exporter::spawn(&[
        ("PGMAINT_DATABASE_URL", nowhere.as_str()),
        ("PGMAINT_CONFIG_FILE", file.as_str()),
        ("PGMAINT_LOG_LEVEL", "debug"),
        ("PGMAINT_MIN_SCRAPE_INTERVAL", "0s"),
        ("PGMAINT_COLLECTORS", "database"),
    ])
    .await
}

/// A probe with a 2 s scrape timeout (failed probes answer at the deadline).
async fn probe(e: &Exporter, query: &str) -> (u16, String) {
    let r = reqwest::Client::new()
        .get(format!("http://{}/probe?{query}", e.addr))
        .header("X-Prometheus-Scrape-Timeout-Seconds", "2")
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

/// The password went nowhere: the fake got no `p` (PasswordMessage) and no
/// byte of the secret.
fn got_nothing(f: &Fake, secret: &str) -> bool {
    let got = f.received.lock().unwrap();
    got.is_empty() && !String::from_utf8_lossy(&got).contains(secret)
}

fn got_secret(f: &Fake, secret: &str) -> bool {
    String::from_utf8_lossy(&f.received.lock().unwrap()).contains(secret)
}

#[tokio::test]
async fn a_target_outside_allowed_targets_gets_no_connection() {
    let dir = Dir::new("allow");
    let secret = harness::unique_secret("fleet");
    let pw = dir.write("pw", &format!("{secret}\n"), 0o600);
    let evil = fake(Script::Auth(3), None).await;
    let other = harness::free_port();
    let e = exporter(
        &dir,
        &format!(
            "auth_modules:
  fleet:
    user: mon
    password_file: {pw}
    sslmode: disable
    allowed_targets: [\"127.0.0.1:{other}\", db1.example, 10.0.0.0/8]
  unlisted:
    user: mon
    password: {secret}
    sslmode: disable
"
        ),
    )
    .await;
    for query in [
        format!("target=127.0.0.1:{}&auth_module=fleet", evil.port),
        format!("target=localhost:{}&auth_module=fleet", evil.port),
        format!("target=[::ffff:127.0.0.1]:{}&auth_module=fleet", evil.port),
        format!("target=127.0.0.1:{}/postgres&auth_module=fleet", evil.port),
        format!("target=127.0.0.1:{}&auth_module=unlisted", evil.port),
        format!("target=127.0.0.1:{other}&auth_module=unlisted"),
    ] {
        let (status, body) = probe(&e, &query).await;
        assert_eq!(status, 403, "{query}: {body}");
        assert!(body.contains("not allowed"), "{body}");
        assert!(!body.contains(&secret), "{body}");
    }
    let (_, body) = probe(
        &e,
        &format!("target=127.0.0.1:{}&auth_module=unlisted", evil.port),
    )
    .await;
    assert!(body.contains("allow_any_target"), "{body}");
    assert_eq!(
        evil.conns.load(Ordering::SeqCst),
        0,
        "a refused target was connected to"
    );
    assert!(got_nothing(&evil, &secret));
    assert!(!e.logs().contains(&secret));
}

#[tokio::test]
async fn an_unverified_server_gets_no_password_unless_the_module_opts_in() {
    let dir = Dir::new("unverified");
    let secret = harness::unique_secret("pw");
    let pw = dir.write("pw", &format!("{secret}\n"), 0o600);
    let cleartext = fake(Script::Auth(3), None).await;
    let md5 = fake(Script::Auth(5), None).await;
    let (self_signed, _) = tls_acceptor(false);
    let tls_cleartext = fake(Script::Auth(3), Some(self_signed.clone())).await;
    let tls_md5 = fake(Script::Auth(5), Some(self_signed)).await;
    let opted = fake(Script::Auth(3), None).await;
    let bound = fake(Script::Auth(3), Some(tls_acceptor(false).0)).await;
    let e = exporter(
        &dir,
        &format!(
            "auth_modules:
  plain:
    user: mon
    password_file: {pw}
    sslmode: prefer
    allowed_targets: [127.0.0.1/32]
  tls:
    user: mon
    password: {secret}
    sslmode: require
    allowed_targets: [127.0.0.1/32]
  opted:
    user: mon
    password: {secret}
    sslmode: disable
    allow_unverified_password_auth: true
    allowed_targets: [\"127.0.0.1:{}\"]
  bound:
    user: mon
    password: {secret}
    sslmode: require
    allow_unverified_password_auth: true
    allowed_targets: [\"127.0.0.1:{}\"]
    options:
      channel_binding: require
",
            opted.port, bound.port
        ),
    )
    .await;
    for (f, module) in [
        (&cleartext, "plain"),
        (&md5, "plain"),
        (&tls_cleartext, "tls"),
        (&tls_md5, "tls"),
        (&bound, "bound"),
    ] {
        let (status, body) = probe(&e, &format!("target=127.0.0.1:{}&auth_module={module}", f.port)).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(Samples::parse(&body).value("pg_up", &[]), Some(0.0), "{body}");
        assert!(
            f.conns.load(Ordering::SeqCst) >= 1,
            "the fake on {} was never reached",
            f.port
        );
        assert!(
            got_nothing(f, &secret),
            "the fake on {} received {:?}",
            f.port,
            f.received.lock().unwrap()
        );
    }
    let logs = e.logs();
    assert!(
        logs.contains("asked for a cleartext password, but its certificate was not verified"),
        "{logs}"
    );
    assert!(logs.contains("asked for an md5 password hash"), "{logs}");
    // The same fake, once the module opts in, does get the password: the
    // fakes above would have recorded it.
    let (status, _) = probe(&e, &format!("target=127.0.0.1:{}&auth_module=opted", opted.port)).await;
    assert_eq!(status, 200);
    assert!(
        got_secret(&opted, &secret),
        "{:?}",
        opted.received.lock().unwrap()
    );
    assert!(!e.logs().contains(&secret));
}

#[tokio::test]
async fn a_verified_server_gets_the_password() {
    let dir = Dir::new("verified");
    let secret = harness::unique_secret("pw");
    let (acceptor, ca) = tls_acceptor(true);
    let ca = dir.write("ca.crt", &ca, 0o600);
    let server = fake(Script::Auth(3), Some(acceptor)).await;
    let (stranger, _) = tls_acceptor(true);
    let impostor = fake(Script::Auth(3), Some(stranger)).await;
    let e = exporter(
        &dir,
        &format!(
            "auth_modules:
  fleet:
    user: mon
    password: {secret}
    sslmode: verify-full
    sslrootcert: {ca}
    allowed_targets: [127.0.0.1/32]
"
        ),
    )
    .await;
    let (status, _) = probe(&e, &format!("target=127.0.0.1:{}&auth_module=fleet", server.port)).await;
    assert_eq!(status, 200);
    assert!(
        got_secret(&server, &secret),
        "verify-full: the CA's server is trusted"
    );
    // A certificate from another CA fails the handshake: nothing sent.
    let (status, _) = probe(
        &e,
        &format!("target=127.0.0.1:{}&auth_module=fleet", impostor.port),
    )
    .await;
    assert_eq!(status, 200);
    assert!(impostor.conns.load(Ordering::SeqCst) >= 1);
    assert!(got_nothing(&impostor, &secret));
}

/// The exposition without the lines whose values are timings.
fn shape(body: &str) -> String {
    body.lines()
        .filter(|l| !l.contains("duration_seconds") || l.starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn closed_silent_and_foreign_ports_answer_alike() {
    let dir = Dir::new("oracle");
    let closed = harness::free_port();
    // Accepts and never speaks (like a filtered port, a connection that hangs).
    let silent = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    let held = Arc::new(Mutex::new(Vec::new()));
    let h = held.clone();
    let silent_task = tokio::spawn(async move {
        while let Ok((s, _)) = silent.accept().await {
            h.lock().unwrap().push(s);
        }
    });
    // Speaks another protocol at once.
    let foreign = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let foreign_port = foreign.local_addr().unwrap().port();
    let foreign_task = tokio::spawn(async move {
        while let Ok((mut s, _)) = foreign.accept().await {
            let _ = s.write_all(b"SSH-2.0-OpenSSH_9.6\r\n").await;
        }
    });
    let e = exporter(
        &dir,
        "auth_modules:\n  fleet:\n    user: mon\n    password: x\n    sslmode: disable\n    allowed_targets: [127.0.0.1/32]\n",
    )
    .await;
    let client = reqwest::Client::new();
    let mut answers = Vec::new();
    for port in [closed, silent_port, foreign_port] {
        let started = Instant::now();
        let r = client
            .get(format!(
                "http://{}/probe?target=127.0.0.1:{port}&auth_module=fleet",
                e.addr
            ))
            .header("X-Prometheus-Scrape-Timeout-Seconds", "2")
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let body = r.text().await.unwrap();
        answers.push((port, status, started.elapsed(), shape(&body)));
    }
    silent_task.abort();
    foreign_task.abort();
    let (_, status0, _, body0) = &answers[0];
    for (port, status, took, body) in &answers {
        assert_eq!(status, status0, "port {port}");
        assert_eq!(body, body0, "port {port}");
        // The deadline (2 s less the margin, at least 1 s), never much more.
        assert!(
            *took >= Duration::from_millis(900) && *took < Duration::from_millis(2500),
            "port {port} took {took:?}"
        );
    }
    assert!(body0.contains("pg_up 0"), "{body0}");
}

#[tokio::test]
async fn a_server_error_with_a_newline_cannot_forge_a_log_line() {
    let dir = Dir::new("forge");
    let forged = "level=ERROR msg=\"forged by the server\"";
    let text = format!("no such role\n{forged}\r\n\u{1b}[2J");
    let evil = fake(Script::Error(text), None).await;
    let e = exporter(
        &dir,
        "auth_modules:\n  fleet:\n    user: mon\n    sslmode: disable\n    allowed_targets: [127.0.0.1/32]\n",
    )
    .await;
    let (status, _) = probe(&e, &format!("target=127.0.0.1:{}&auth_module=fleet", evil.port)).await;
    assert_eq!(status, 200);
    // The same through /metrics: the exporter's own DSN pointing at the fake.
    let url = format!(
        "postgresql://mon@127.0.0.1:{}/postgres?sslmode=disable",
        evil.port
    );
    let m = Exporter::spawn(&[
        ("PGMAINT_DATABASE_URL", url.as_str()),
        ("PGMAINT_LOG_LEVEL", "debug"),
    ])
    .await;
    m.get("/metrics").await;
    let json = Exporter::spawn(&[
        ("PGMAINT_DATABASE_URL", url.as_str()),
        ("PGMAINT_LOG_FORMAT", "json"),
    ])
    .await;
    json.get("/metrics").await;
    for logs in [e.logs(), m.logs(), json.logs()] {
        assert!(
            logs.contains("no such role"),
            "the server's message was not logged: {logs}"
        );
        assert!(logs.contains("forged by the server"), "{logs}");
        for line in logs.lines() {
            assert!(!line.starts_with("level=ERROR"), "forged line: {line}");
            assert!(
                !line.contains('\u{1b}') && !line.contains('\r'),
                "raw control character: {line:?}"
            );
        }
    }
    for line in json.logs().lines() {
        serde_json::from_str::<serde_json::Value>(line).unwrap_or_else(|e| panic!("{e}: {line}"));
    }
}

/// A real PostgreSQL whose pg_hba.conf asks `mon` for a cleartext password
/// (`password` method): refused without the opt-in, up with it; and a
/// server on the list with trust auth is probed as usual.
#[tokio::test]
async fn a_real_server_asking_for_a_cleartext_password() {
    let secret = harness::unique_secret("clear");
    let pg = harness::password_cluster("password", &secret).await;
    let dir = Dir::new("realclear");
    let allowed = format!("\"127.0.0.1:{}\"", pg.port);
    let e = exporter(
        &dir,
        &format!(
            "auth_modules:
  guarded:
    user: mon
    password: {secret}
    sslmode: disable
    allowed_targets: [{allowed}]
  opted:
    user: mon
    password: {secret}
    sslmode: disable
    allow_unverified_password_auth: true
    allowed_targets: [{allowed}]
  trusted:
    user: postgres
    sslmode: disable
    allowed_targets: [{allowed}]
"
        ),
    )
    .await;
    let up = |body: &str| Samples::parse(body).value("pg_up", &[]);
    let (_, body) = probe(&e, &format!("target=127.0.0.1:{}&auth_module=guarded", pg.port)).await;
    assert_eq!(up(&body), Some(0.0), "{body}");
    assert!(
        e.logs().contains("asked for a cleartext password"),
        "{}",
        e.logs()
    );
    let (_, body) = probe(&e, &format!("target=127.0.0.1:{}&auth_module=opted", pg.port)).await;
    assert_eq!(up(&body), Some(1.0), "{}", e.logs());
    let (_, body) = probe(&e, &format!("target=127.0.0.1:{}&auth_module=trusted", pg.port)).await;
    assert_eq!(up(&body), Some(1.0), "{}", e.logs());
    // Without /dbname the target's first database is `postgres`, not `mon`.
    assert!(
        e.logs().contains("datname=postgres") && !e.logs().contains("datname=mon"),
        "{}",
        e.logs()
    );
    assert!(!e.logs().contains(&secret));
}
