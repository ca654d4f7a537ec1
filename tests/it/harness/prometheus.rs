//! A real Prometheus server (`/usr/bin/prometheus`, Debian's `prometheus`
//! package) for the tests that check what Prometheus makes of the exporter:
//! the dashboards' queries, the alert rules, label values it stores. Started on
//! a free loopback port with the test's `prometheus.yml`, ready once `/-/ready`
//! answers, killed and its directory removed on drop.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Prometheus {
    child: Child,
    dir: PathBuf,
    log: PathBuf,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// A client with a 30 s timeout, for the API and for the exporter.
    pub http: reqwest::Client,
}

impl Prometheus {
    /// Writes `config` as `dir/prometheus.yml` (creating `dir`) and starts
    /// Prometheus on it, TSDB in `dir/data`, log in `dir/prometheus.log`;
    /// returns once it is ready (panics after 60 s or if it exits).
    pub async fn start(dir: &Path, config: &str) -> Prometheus {
        std::fs::create_dir_all(dir).unwrap();
        let port = super::free_port();
        let config_path = dir.join("prometheus.yml");
        std::fs::write(&config_path, config).unwrap();
        let log = dir.join("prometheus.log");
        let out = std::fs::File::create(&log).unwrap();
        let child = Command::new("/usr/bin/prometheus")
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!("--storage.tsdb.path={}", dir.join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stderr(Stdio::from(out.try_clone().unwrap()))
            .stdout(Stdio::from(out))
            .spawn()
            .expect("/usr/bin/prometheus (apt-get install prometheus)");
        let mut p = Prometheus {
            child,
            dir: dir.to_path_buf(),
            log,
            base: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
        };
        let until = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(r) = p.http.get(format!("{}/-/ready", p.base)).send().await {
                if r.status() == 200 {
                    return p;
                }
            }
            if let Ok(Some(st)) = p.child.try_wait() {
                panic!("prometheus exited with {st}: {}", p.logs());
            }
            assert!(Instant::now() < until, "prometheus not ready: {}", p.logs());
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// GET `path` (e.g. `/api/v1/query`) with `query`: (status, body).
    pub async fn get(&self, path: &str, query: &[(&str, &str)]) -> (u16, String) {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .query(query)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{path}: {e}"));
        let status = r.status().as_u16();
        (status, r.text().await.unwrap())
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
