#!/usr/bin/env python3
"""Cost of /probe targets, for docs/scaling.md (issue 9).

    bench/fleet.py [--targets 100] [--tables-per-target 20] [--big 2000] [--rounds 3]

Starts a throwaway PostgreSQL 15 cluster (scripts/pgcluster.sh), creates one
database per target (N small tables each) and one database of --big tables,
runs the release exporter (target/release/pgmaint-exporter, build it first)
with an auth module, and measures per probe: exporter CPU (utime+stime from
/proc/PID/stat), server execution time (pg_stat_statements of the exporter's
role), wall time; and the exporter's RSS with all targets held. Each target
is host:port/dbN&database=dbN: its own Scraper, pools and caches, as a
separate server would have.
"""
import argparse, json, os, subprocess, sys, tempfile, time, urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PSQL = "/usr/lib/postgresql/15/bin/psql"
TICK = os.sysconf("SC_CLK_TCK")


def psql(port, db, sql):
    return subprocess.run([PSQL, "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-d", db,
                           "-Atq", "-v", "ON_ERROR_STOP=1", "-c", sql],
                          check=True, capture_output=True, text=True).stdout.strip()


def cpu(pid):
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / TICK


def mem(pid, key):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(key):
            return int(line.split()[1]) / 1024
    return 0.0


def server_ms(port):
    return float(psql(port, "postgres", "SELECT coalesce(sum(total_exec_time),0) FROM pg_stat_statements s "
                      "JOIN pg_roles r ON r.oid = s.userid WHERE r.rolname = 'bench'"))


def get(url):
    with urllib.request.urlopen(url, timeout=120) as r:
        return r.read()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--targets", type=int, default=100)
    ap.add_argument("--tables-per-target", type=int, default=20)
    ap.add_argument("--big", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    out = subprocess.run([f"{REPO}/scripts/pgcluster.sh", "start"], check=True, capture_output=True, text=True).stdout
    cdir, port = out.split()
    exporter = None
    try:
        psql(port, "postgres", "CREATE EXTENSION pg_stat_statements; CREATE ROLE bench LOGIN IN ROLE pg_monitor")
        mk = ("DO $$ BEGIN FOR i IN 1..{n} LOOP EXECUTE format('CREATE TABLE t%s (id int PRIMARY KEY, v text); "
              "CREATE INDEX ON t%s (v); INSERT INTO t%s SELECT g, g::text FROM generate_series(1,100) g', i, i, i); "
              "END LOOP; END $$; ANALYZE")
        t = time.time()
        for i in range(a.targets):
            psql(port, "postgres", f"CREATE DATABASE d{i}")
            psql(port, f"d{i}", mk.format(n=a.tables_per_target))
        psql(port, "postgres", "CREATE DATABASE big")
        psql(port, "big", mk.format(n=a.big))
        print(f"setup {time.time() - t:.0f} s", file=sys.stderr)
        cfg = tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False)
        cfg.write("auth_modules:\n  bench:\n    user: bench\n    sslmode: disable\n    allowed_targets: [127.0.0.1/32]\n")
        cfg.close()
        env = dict(PATH=os.environ["PATH"], PGMAINT_DATABASE_URL=f"postgresql://bench@127.0.0.1:{port}/postgres",
                   PGMAINT_INCLUDE_DATABASES="postgres", PGMAINT_CONFIG_FILE=cfg.name,
                   PGMAINT_LISTEN_ADDRESS="127.0.0.1:19188", PGMAINT_MIN_SCRAPE_INTERVAL="0s",
                   PGMAINT_MAX_TARGETS=str(a.targets + 10), PGMAINT_MAX_CONNECTIONS="2",
                   PGMAINT_MAX_CONNECTIONS_TOTAL="16", PGMAINT_MAX_TABLES_PER_DATABASE="20000",
                   PGMAINT_SCRAPE_TIMEOUT="60s", PGMAINT_STATEMENT_TIMEOUT="60s", PGMAINT_LOG_LEVEL="warn")
        exporter = subprocess.Popen([f"{REPO}/target/release/pgmaint-exporter"], env=env)
        base = "http://127.0.0.1:19188"
        for _ in range(100):
            try:
                get(base + "/healthz"); break
            except Exception:
                time.sleep(0.1)
        rss0 = mem(exporter.pid, "VmRSS")
        url = lambda i: f"{base}/probe?target=127.0.0.1:{port}/d{i}&database=d{i}&auth_module=bench"
        first_t = time.time()
        for i in range(a.targets):  # first probe: creates the target (connect, discovery, sizes)
            get(url(i))
        first = (time.time() - first_t) / a.targets
        c0, s0, t0 = cpu(exporter.pid), server_ms(port), time.time()
        body = 0
        for _ in range(a.rounds):
            for i in range(a.targets):
                body += len(get(url(i)))
        n = a.rounds * a.targets
        small = dict(cpu_ms=(cpu(exporter.pid) - c0) * 1000 / n, server_ms=(server_ms(port) - s0) / n,
                     wall_ms=(time.time() - t0) * 1000 / n, body_kb=body / 1024 / n, first_wall_ms=first * 1000,
                     rss_idle_mib=rss0, rss_held_mib=mem(exporter.pid, "VmRSS"),
                     rss_per_target_kib=(mem(exporter.pid, "VmRSS") - rss0) * 1024 / a.targets)
        big_url = f"{base}/probe?target=127.0.0.1:{port}/big&database=big&auth_module=bench"
        get(big_url)
        c0, s0, t0 = cpu(exporter.pid), server_ms(port), time.time()
        for _ in range(a.rounds):
            body = len(get(big_url))
        big = dict(tables=a.big, cpu_ms=(cpu(exporter.pid) - c0) * 1000 / a.rounds,
                   server_ms=(server_ms(port) - s0) / a.rounds, wall_ms=(time.time() - t0) * 1000 / a.rounds,
                   body_kb=body / 1024, rss_hwm_mib=mem(exporter.pid, "VmHWM"))
        print(json.dumps(dict(date=time.strftime("%Y-%m-%d"), cores=os.cpu_count(), targets=a.targets,
                              tables_per_target=a.tables_per_target, small=small, big=big), indent=1))
    finally:
        if exporter:
            exporter.kill()
        subprocess.run([f"{REPO}/scripts/pgcluster.sh", "stop", cdir])


main()
