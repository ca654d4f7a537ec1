//! Database TLS: libpq's `sslmode` meanings against a real `ssl = on`
//! cluster whose CA and certificates are generated here (rcgen).
//!
//! Each test owns a cluster (`ssl_cert_file` etc. must be set at start) and
//! runs one exporter per connection string, each in a database of its own,
//! so `pg_stat_ssl` rows can be told apart.
use crate::harness;

use harness::{Cluster, Dir, Exporter};
use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair};

/// A test CA that signs server and client certificates.
struct Ca {
    pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let pem = params.self_signed(&key).unwrap().pem();
        Ca {
            pem,
            issuer: Issuer::new(params, key),
        }
    }

    /// (certificate PEM, key PEM) for `names` (DNS names or IP addresses) and common name `cn`.
    fn sign(&self, cn: &str, names: &[&str], usage: ExtendedKeyUsagePurpose) -> (String, String) {
        let key = KeyPair::generate().unwrap();
        let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        let mut params = CertificateParams::new(names).unwrap();
        params.distinguished_name.push(DnType::CommonName, cn);
        params.extended_key_usages = vec![usage];
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }
}

/// A cluster with `ssl = on`, serving a certificate for `names` signed by `ca`,
/// and asking clients for certificates signed by `ca` (verified only on `cert` hba lines).
fn ssl_cluster(dir: &Dir, ca: &Ca, names: &[&str]) -> Cluster {
    let (cert, key) = ca.sign(names[0], names, ExtendedKeyUsagePurpose::ServerAuth);
    let cert = dir.write_for_postgres("server.crt", &cert, 0o644);
    let key = dir.write_for_postgres("server.key", &key, 0o600);
    let ca_file = dir.write_for_postgres("ca.crt", &ca.pem, 0o644);
    let conf = [
        "ssl = on".to_string(),
        format!("ssl_cert_file = '{cert}'"),
        format!("ssl_key_file = '{key}'"),
        format!("ssl_ca_file = '{ca_file}'"),
    ];
    let conf: Vec<&str> = conf.iter().map(String::as_str).collect();
    harness::start_cluster(None, &conf)
}

/// An exporter on `db` with connection string `url`, after one scrape: (exporter, pg_up).
async fn exporter(pg: &Cluster, db: &str, url: &str) -> (Exporter, f64) {
    let e = pg
        .spawn_exporter(
            db,
            &[("PGMAINT_DATABASE_URL", url), ("PGMAINT_COLLECTORS", "database")],
        )
        .await;
    let up = e.scrape().await.value("pg_up", &[]).expect("pg_up present");
    (e, up)
}

/// Whether the exporter's session in `db` is encrypted, as the server sees it.
async fn server_sees_ssl(pg: &Cluster, db: &str) -> Vec<bool> {
    let admin = pg.client("postgres").await;
    admin
        .query(
            "SELECT s.ssl FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid)
              WHERE a.application_name = 'pgmaint-exporter' AND a.datname = $1",
            &[&db],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

fn url(pg: &Cluster, host: &str, db: &str, params: &str) -> String {
    format!("postgresql://postgres@{host}:{}/{db}?{params}", pg.port)
}

#[tokio::test]
async fn sslmodes_against_an_ssl_server() {
    let dir = Dir::new("dbtls");
    let ca = Ca::new("pgmaint test CA");
    let other_ca = Ca::new("some other CA");
    let pg = ssl_cluster(&dir, &ca, &["localhost", "127.0.0.1"]);
    let ca_file = dir.file("ca.crt");
    let wrong_ca = dir.write_for_postgres("wrong-ca.crt", &other_ca.pem, 0o644);

    // require: encrypted, nothing verified.
    let db = pg.fresh_db().await;
    let (e, up) = exporter(&pg, &db.name, &url(&pg, "127.0.0.1", &db.name, "sslmode=require")).await;
    assert_eq!(up, 1.0, "{}", e.logs());
    assert_eq!(server_sees_ssl(&pg, &db.name).await, vec![true]);
    drop(e);

    // disable against an ssl=on server: plain.
    let db = pg.fresh_db().await;
    let (e, up) = exporter(&pg, &db.name, &url(&pg, "127.0.0.1", &db.name, "sslmode=disable")).await;
    assert_eq!(up, 1.0, "{}", e.logs());
    assert_eq!(server_sees_ssl(&pg, &db.name).await, vec![false]);
    drop(e);

    // prefer (the default) takes TLS when offered.
    let db = pg.fresh_db().await;
    let (e, up) = exporter(&pg, &db.name, &url(&pg, "127.0.0.1", &db.name, "sslmode=prefer")).await;
    assert_eq!(up, 1.0, "{}", e.logs());
    assert_eq!(server_sees_ssl(&pg, &db.name).await, vec![true]);
    drop(e);

    // verify-ca with the right CA.
    let db = pg.fresh_db().await;
    let params = format!("sslmode=verify-ca&sslrootcert={ca_file}");
    let (e, up) = exporter(&pg, &db.name, &url(&pg, "127.0.0.1", &db.name, &params)).await;
    assert_eq!(up, 1.0, "{}", e.logs());
    assert_eq!(server_sees_ssl(&pg, &db.name).await, vec![true]);
    drop(e);

    // verify-ca with a CA that did not sign the server's certificate.
    let db = pg.fresh_db().await;
    let params = format!("sslmode=verify-ca&sslrootcert={wrong_ca}");
    let (e, up) = exporter(&pg, &db.name, &url(&pg, "127.0.0.1", &db.name, &params)).await;
    assert_eq!(up, 0.0);
    let want = format!("certificate verify failed: unknown CA (sslrootcert={wrong_ca})");
    assert!(e.logs().contains(&want), "no {want:?} in {}", e.logs());
    assert!(server_sees_ssl(&pg, &db.name).await.is_empty());
    drop(e);

    // require with sslrootcert verifies the chain, as libpq does.
    let db = pg.fresh_db().await;
    let params = format!("sslmode=require&sslrootcert={wrong_ca}");
    let (e, up) = exporter(&pg, &db.name, &url(&pg, "127.0.0.1", &db.name, &params)).await;
    assert_eq!(up, 0.0);
    assert!(e.logs().contains("unknown CA"), "{}", e.logs());
    drop(e);

    // verify-full by IP address (IP SAN) and by DNS name.
    for host in ["127.0.0.1", "localhost"] {
        let db = pg.fresh_db().await;
        let params = format!("sslmode=verify-full&sslrootcert={ca_file}");
        let (e, up) = exporter(&pg, &db.name, &url(&pg, host, &db.name, &params)).await;
        assert_eq!(up, 1.0, "verify-full to {host}: {}", e.logs());
        assert_eq!(server_sees_ssl(&pg, &db.name).await, vec![true]);
    }

    // verify-ca with a root file that does not exist.
    let db = pg.fresh_db().await;
    let missing = dir.file("nope.crt");
    let params = format!("sslmode=verify-ca&sslrootcert={missing}");
    let (e, up) = exporter(&pg, &db.name, &url(&pg, "127.0.0.1", &db.name, &params)).await;
    assert_eq!(up, 0.0);
    let want = format!("sslrootcert={missing}: cannot read certificates: No such file");
    assert!(e.logs().contains(&want), "no {want:?} in {}", e.logs());
}

#[tokio::test]
async fn verify_full_refuses_a_certificate_for_another_host() {
    let dir = Dir::new("dbtls-name");
    let ca = Ca::new("pgmaint test CA");
    let pg = ssl_cluster(&dir, &ca, &["db.example"]);
    let ca_file = dir.file("ca.crt");

    // The chain is good: verify-ca accepts it.
    let db = pg.fresh_db().await;
    let params = format!("sslmode=verify-ca&sslrootcert={ca_file}");
    let (e, up) = exporter(&pg, &db.name, &url(&pg, "127.0.0.1", &db.name, &params)).await;
    assert_eq!(up, 1.0, "{}", e.logs());
    drop(e);

    // verify-full also checks the name: refused, and the log says why.
    let db = pg.fresh_db().await;
    let params = format!("sslmode=verify-full&sslrootcert={ca_file}");
    let (e, up) = exporter(&pg, &db.name, &url(&pg, "127.0.0.1", &db.name, &params)).await;
    assert_eq!(up, 0.0);
    let logs = e.logs();
    assert!(
        logs.contains("server certificate is for db.example, not 127.0.0.1"),
        "{logs}"
    );
    assert!(logs.contains("reporting pg_up 0"), "{logs}");
    assert!(server_sees_ssl(&pg, &db.name).await.is_empty());
}

#[tokio::test]
async fn client_certificate_authentication() {
    let dir = Dir::new("dbtls-client");
    let ca = Ca::new("pgmaint test CA");
    let pg = ssl_cluster(&dir, &ca, &["localhost", "127.0.0.1"]);
    let ca_file = dir.file("ca.crt");
    let (cert, key) = ca.sign("certuser", &[], ExtendedKeyUsagePurpose::ClientAuth);
    let cert = dir.write_for_postgres("client.crt", &cert, 0o644);
    let key = dir.write_for_postgres("client.key", &key, 0o600);

    // certuser may log in only over TLS with a certificate whose CN is its name.
    let hba = format!("{}/data/pg_hba.conf", pg.dir);
    let old = std::fs::read_to_string(&hba).unwrap();
    std::fs::write(
        &hba,
        format!("hostssl all certuser 127.0.0.1/32 cert\nhost all certuser 127.0.0.1/32 reject\n{old}"),
    )
    .unwrap();
    let admin = pg.client("postgres").await;
    admin
        .batch_execute("CREATE ROLE certuser LOGIN IN ROLE pg_monitor; SELECT pg_reload_conf()")
        .await
        .unwrap();
    let db = pg.fresh_db().await;
    let base = |params: &str| {
        format!(
            "postgresql://certuser@127.0.0.1:{}/{}?sslmode=verify-full&sslrootcert={ca_file}{params}",
            pg.port, db.name
        )
    };

    // Without a client certificate the server refuses certuser.
    let e = pg
        .spawn_exporter(
            &db.name,
            &[
                ("PGMAINT_DATABASE_URL", &base("")),
                ("PGMAINT_COLLECTORS", "database"),
            ],
        )
        .await;
    let up = harness::eventually(std::time::Duration::from_secs(10), || async {
        let up = e.scrape().await.value("pg_up", &[]).unwrap();
        // Wait until the new pg_hba.conf is in force (reload is asynchronous).
        (up == 0.0).then_some(up)
    })
    .await;
    assert_eq!(up, 0.0);
    // The exporter's log has only "db error" for a server-side refusal
    // (ConnError::Connect); the server says why.
    let server_log = std::fs::read_to_string(format!("{}/server.log", pg.dir)).unwrap();
    assert!(
        server_log.contains("connection requires a valid client certificate"),
        "{server_log}"
    );
    drop(e);

    let e = pg
        .spawn_exporter(
            &db.name,
            &[
                (
                    "PGMAINT_DATABASE_URL",
                    &base(&format!("&sslcert={cert}&sslkey={key}")),
                ),
                ("PGMAINT_COLLECTORS", "database"),
            ],
        )
        .await;
    assert_eq!(e.scrape().await.value("pg_up", &[]), Some(1.0), "{}", e.logs());
    let row = admin
        .query_one(
            "SELECT s.ssl, s.client_dn, a.usename FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid)
              WHERE a.application_name = 'pgmaint-exporter' AND a.datname = $1",
            &[&db.name],
        )
        .await
        .unwrap();
    assert!(row.get::<_, bool>(0));
    assert_eq!(row.get::<_, Option<String>>(1).as_deref(), Some("/CN=certuser"));
    assert_eq!(row.get::<_, String>(2), "certuser");
}

#[tokio::test]
async fn require_against_a_server_without_ssl_fails_clearly() {
    // The shared cluster runs with ssl = off.
    let pg = harness::cluster();
    let db = pg.fresh_db().await;
    let (e, up) = exporter(&pg, &db.name, &url(&pg, "127.0.0.1", &db.name, "sslmode=require")).await;
    assert_eq!(up, 0.0);
    let logs = e.logs();
    assert!(
        logs.contains("sslmode=require but the server does not support TLS"),
        "{logs}"
    );
    drop(e);
    // prefer falls back to a plain connection.
    let (e, up) = exporter(&pg, &db.name, &url(&pg, "127.0.0.1", &db.name, "sslmode=prefer")).await;
    assert_eq!(up, 1.0, "{}", e.logs());
}

#[tokio::test]
async fn unix_sockets_connect_without_tls() {
    // PostgreSQL never offers TLS on a Unix socket; prefer (the default) goes plain.
    let pg = harness::cluster();
    let db = pg.fresh_db().await;
    let dsn = format!(
        "host={} port={} user=postgres dbname={}",
        pg.dir, pg.port, db.name
    );
    let (e, up) = exporter(&pg, &db.name, &dsn).await;
    assert_eq!(up, 1.0, "{}", e.logs());
    let (e, up) = exporter(&pg, &db.name, &format!("{dsn} sslmode=require")).await;
    assert_eq!(up, 0.0);
    assert!(
        e.logs().contains("the server does not support TLS"),
        "{}",
        e.logs()
    );
}
