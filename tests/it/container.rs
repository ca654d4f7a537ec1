//! The container image, really built and run: the project's `Dockerfile`,
//! unchanged, built with the legacy builder (`DOCKER_BUILDKIT=0`) against
//! local stand-ins for its base images (`scripts/container-bases.sh`, a test
//! aid: no registry can be reached here), then run against the test cluster
//! with `--network host` and scraped from outside the container.
//!
//! The engine: an already running one is used and left running; otherwise
//! the test starts `dockerd` itself (root; `scripts/install-deps.sh` installs
//! `docker.io`) and stops it at the end. Only when no engine can be started
//! is the test skipped, with a message saying why.

use crate::harness;
use crate::harness::{repo, text};

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const IMAGE: &str = "pgmaint-exporter:container-test";

fn docker(args: &[&str]) -> Output {
    Command::new("docker")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("docker {args:?}: {e}"))
}

/// `docker ARGS`, panicking with its output unless it succeeds; stdout trimmed.
fn docker_ok(args: &[&str]) -> String {
    let o = docker(args);
    assert!(o.status.success(), "docker {args:?}:\n{}", text(&o));
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

fn engine_answers() -> bool {
    Command::new("docker")
        .args(["info", "--format", "{{.ServerVersion}}"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// The Docker engine: `started` is the `dockerd` this test started (and stops).
struct Engine {
    started: Option<Child>,
    log: PathBuf,
}

impl Engine {
    /// An answering engine, or why there cannot be one.
    fn up() -> Result<Engine, String> {
        let log = std::env::temp_dir().join(format!("pgmaint-dockerd-{}.log", std::process::id()));
        if engine_answers() {
            return Ok(Engine { started: None, log });
        }
        if !harness::is_root() {
            return Err("no Docker engine answers and dockerd needs root to start".into());
        }
        let out = std::fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
        let err = out.try_clone().map_err(|e| e.to_string())?;
        // At low priority: the builds run in the engine's children, which
        // inherit its niceness (a shared machine).
        let child = Command::new("nice")
            .args(["-n", "10", "dockerd"])
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("dockerd: {e} (apt-get install docker.io)"))?;
        let mut engine = Engine {
            started: Some(child),
            log,
        };
        let until = Instant::now() + Duration::from_secs(60);
        while Instant::now() < until {
            if engine_answers() {
                eprintln!("container: started dockerd");
                return Ok(engine);
            }
            if let Some(Ok(Some(status))) = engine.started.as_mut().map(|c| c.try_wait()) {
                engine.started = None;
                return Err(format!(
                    "dockerd exited with {status}: {}",
                    std::fs::read_to_string(&engine.log).unwrap_or_default()
                ));
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        Err(format!(
            "dockerd did not answer within 60 s: {}",
            std::fs::read_to_string(&engine.log).unwrap_or_default()
        ))
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        let Some(child) = self.started.as_mut() else {
            return;
        };
        // SIGTERM: dockerd stops its containers and its containerd, then exits.
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let until = Instant::now() + Duration::from_secs(60);
        while Instant::now() < until {
            if let Ok(Some(_)) = child.try_wait() {
                eprintln!("container: stopped dockerd");
                let _ = std::fs::remove_file(&self.log);
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// A running container, removed on drop.
struct Container(String);

impl Drop for Container {
    fn drop(&mut self) {
        let _ = docker(&["rm", "-f", &self.0]);
    }
}

async fn scrape(addr: &str) -> Option<harness::Samples> {
    let r = reqwest::get(format!("http://{addr}/metrics")).await.ok()?;
    if r.status() != 200 {
        return None;
    }
    Some(harness::Samples::parse(&r.text().await.ok()?))
}

#[tokio::test]
async fn image_builds_runs_as_10001_is_healthy_and_verifies_a_backup() {
    let engine = match Engine::up() {
        Ok(e) => e,
        Err(why) => {
            eprintln!("SKIPPED container test: no Docker engine could be started: {why}");
            return;
        }
    };

    // Local stand-ins for the Dockerfile's FROM images (cached; see the script).
    let t = Instant::now();
    let bases = Command::new(repo().join("scripts/container-bases.sh"))
        .current_dir(repo())
        .stdin(Stdio::null())
        .output()
        .expect("scripts/container-bases.sh");
    assert!(
        bases.status.success(),
        "scripts/container-bases.sh:\n{}",
        text(&bases)
    );
    eprintln!(
        "container: base images ready in {:.0} s",
        t.elapsed().as_secs_f64()
    );

    // The real Dockerfile, unchanged; at low priority (a shared machine):
    // the build's containers get a quarter of the default CPU weight.
    let t = Instant::now();
    let build = Command::new("docker")
        .args(["build", "-q", "--cpu-shares", "256", "-t", IMAGE, "."])
        .args(["--build-arg", "PGMAINT_REVISION=container-test"])
        .env("DOCKER_BUILDKIT", "0")
        .current_dir(repo())
        .stdin(Stdio::null())
        .output()
        .expect("docker build");
    assert!(build.status.success(), "docker build:\n{}", text(&build));
    let size: f64 = docker_ok(&["image", "inspect", "-f", "{{.Size}}", IMAGE])
        .parse()
        .unwrap();
    eprintln!(
        "container: image built in {:.0} s, {:.1} MB",
        t.elapsed().as_secs_f64(),
        size / 1e6
    );

    // A real archive of a test database, made on the host by PostgreSQL 15's
    // pg_dump; readable by the image's UID 10001 through a read-only mount.
    let pg = harness::cluster();
    let db = pg.fresh_db().await;
    db.batch(
        "CREATE TABLE meetings (id int PRIMARY KEY, title text);
         INSERT INTO meetings SELECT g, 'm' || g FROM generate_series(1, 1000) g;",
    )
    .await;
    let dir = harness::Dir::new("container");
    let dump = dir.path().join("backup_20261201_020000.dump");
    pg.pg_dump(&db.name, "c", &dump);
    let _ = Command::new("chmod")
        .args(["-R", "a+rX"])
        .arg(dir.path())
        .status();

    let port = harness::free_port();
    let addr = format!("127.0.0.1:{port}");
    let name = format!("pgmaint-container-test-{}", std::process::id());
    let _ = docker(&["rm", "-f", &name]);
    let mount = format!("{}:/backups:ro", dir.path().display());
    docker_ok(&[
        "run",
        "-d",
        "--name",
        &name,
        "--network",
        "host",
        "-e",
        &format!("PGMAINT_DATABASE_URL={}", pg.url(&db.name)),
        "-e",
        &format!("PGMAINT_INCLUDE_DATABASES={}", db.name),
        "-e",
        &format!("PGMAINT_LISTEN_ADDRESS={addr}"),
        "-e",
        "PGMAINT_BACKUP_DIRS=/backups",
        "-e",
        "PGMAINT_BACKUP_MIN_AGE=0s",
        "-v",
        &mount,
        IMAGE,
    ]);
    let container = Container(name);

    // From outside the container: up, and the backup read back by the
    // pg_restore 18 inside (the verification runs in the background).
    let m = harness::eventually(Duration::from_secs(90), || async {
        let m = scrape(&addr).await?;
        (m.value("pg_up", &[]) == Some(1.0)
            && m.has("pg_backup_newest_verified")
            && m.has("pg_scrape_collector_success"))
        .then_some(m)
    })
    .await;
    let logs = || text(&docker(&["logs", &container.0]));
    let expected: Vec<&str> = pgmaint_exporter::collectors::ALL
        .iter()
        .filter(|c| c.default_enabled())
        .map(|c| c.name())
        .collect();
    let mut seen = Vec::new();
    for s in m.find("pg_scrape_collector_success", &[]) {
        let collector = s.labels.get("collector").cloned().unwrap_or_default();
        assert_eq!(s.value, 1.0, "collector {collector} failed: {}", logs());
        seen.push(collector);
    }
    for c in &expected {
        assert!(
            seen.iter().any(|s| s == c),
            "no pg_scrape_collector_success for default collector {c}: saw {seen:?}"
        );
    }
    eprintln!("container: {} collectors succeeded: {seen:?}", seen.len());
    let d = [("dir", "/backups")];
    assert_eq!(m.value("pg_backup_files", &d), Some(1.0));
    assert_eq!(m.value("pg_backup_newest_verified", &d), Some(1.0), "{}", logs());
    assert_eq!(m.value("pg_backup_newest_unverifiable", &d), Some(0.0));
    let toc = m.value("pg_backup_newest_toc_entries", &d).unwrap_or(0.0);
    assert!(toc >= 3.0, "toc entries {toc}");
    assert_eq!(
        m.value(
            "pg_backup_newest_info",
            &[
                ("dir", "/backups"),
                ("format", "custom"),
                ("datname", db.name.as_str())
            ]
        ),
        Some(1.0)
    );

    // Runs as the image's unprivileged user.
    assert_eq!(docker_ok(&["exec", &container.0, "id", "-u"]), "10001");
    assert_eq!(
        docker_ok(&["inspect", "-f", "{{.Config.User}}", &container.0]),
        "10001:10001"
    );
    // pg_restore of PostgreSQL 18 on PATH.
    let v = docker_ok(&["exec", &container.0, "pg_restore", "--version"]);
    assert!(v.starts_with("pg_restore (PostgreSQL) 18."), "{v}");

    // Its own HEALTHCHECK (first run 30 s after start) reports healthy.
    let until = Instant::now() + Duration::from_secs(120);
    loop {
        let h = docker_ok(&["inspect", "-f", "{{.State.Health.Status}}", &container.0]);
        if h == "healthy" {
            break;
        }
        assert_ne!(
            h,
            "unhealthy",
            "{}",
            docker_ok(&["inspect", "-f", "{{json .State.Health}}", &container.0])
        );
        assert!(Instant::now() < until, "health still {h} after 120 s");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    eprintln!("container: healthy, UID 10001, {v}, backup verified ({toc} TOC entries)");

    drop(container);
    drop(engine);
}
