#!/usr/bin/env python3
"""Driver of bench/run.sh (issue 6). Python 3 standard library only.

bench/run.sh starts the throwaway cluster, builds the exporters and calls this
with the cluster's port; see the top of bench/run.sh for what is measured.
Everything this starts (exporters, psql sessions) it stops in `finally`; their
pids are also written to WORK/pids so the shell trap can stop leftovers.
"""

import argparse
import concurrent.futures
import os
import threading
import re
import signal
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
CLK_TCK = os.sysconf("SC_CLK_TCK")
ROLES = ["bench_ours", "bench_peer", "bench_peerq", "bench_pgx", "bench_pgxf"]


def log(*a):
    print(time.strftime("[%H:%M:%S]"), *a, file=sys.stderr, flush=True)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Cluster:
    def __init__(self, port):
        self.port = port

    def url(self, role, db):
        return f"postgresql://{role}@127.0.0.1:{self.port}/{db}?sslmode=disable"

    def psql(self, sql, db="postgres", timeout=1800):
        r = subprocess.run(
            ["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1",
             "-p", str(self.port), "-U", "postgres", "-d", db, "-c", sql],
            capture_output=True, text=True, timeout=timeout)
        if r.returncode != 0:
            raise RuntimeError(f"psql failed in {db}: {r.stderr.strip()}\n{sql[:200]}")
        return r.stdout

    def statements(self):
        """{role: (calls, exec_ms)} from pg_stat_statements, per bench role."""
        out = self.psql(
            "SELECT r.rolname, sum(s.calls), sum(s.total_exec_time) "
            "FROM pg_stat_statements s JOIN pg_roles r ON r.oid = s.userid "
            "WHERE r.rolname LIKE 'bench\\_%' GROUP BY 1")
        res = {}
        for line in out.splitlines():
            role, calls, ms = line.split("|")
            res[role] = (int(calls), float(ms))
        return res


def make_database(cl, name, tables):
    t = time.time()
    cl.psql(f"DROP DATABASE IF EXISTS {name}")
    cl.psql(f"CREATE DATABASE {name}")
    # One server-side loop, COMMIT every 100 tables: no client round trip per table.
    cl.psql(f"""DO $$ BEGIN
  FOR i IN 1..{tables} LOOP
    EXECUTE format('CREATE TABLE t%s (id int PRIMARY KEY, a int, b text)', i);
    EXECUTE format('CREATE INDEX ON t%s (a)', i);
    EXECUTE format('CREATE INDEX ON t%s (b)', i);
    EXECUTE format('INSERT INTO t%s SELECT g, g, md5(g::text) FROM generate_series(1, 100) g', i);
    EXECUTE format('DELETE FROM t%s WHERE id %% 5 = 0', i);
    IF i % 100 = 0 THEN COMMIT; END IF;
  END LOOP;
END $$""", db=name)
    cl.psql("ANALYZE", db=name)
    log(f"database {name}: {tables} tables in {time.time() - t:.1f} s")


def make_databases(cl, prefix, count, tables):
    """count databases of `tables` tables each, server-side: one template
    database made by make_database, then CREATE DATABASE … TEMPLATE (a file
    copy on the server, STRATEGY FILE_COPY: no WAL of the copied files).
    Statistics counters start at zero in the copies; the catalogs (and so
    every per-table and per-index series) are the template's."""
    names = [f"{prefix}{i}" for i in range(count)]
    have = set(cl.psql(f"SELECT datname FROM pg_database WHERE datname LIKE '{prefix}%'").split())
    if set(names) <= have:
        log(f"databases {prefix}0..{count - 1}: already there (--reuse)")
        return names
    t = time.time()
    tmpl = prefix + "tmpl"
    make_database(cl, tmpl, tables)
    script = "".join(f"DROP DATABASE IF EXISTS {n};\nCREATE DATABASE {n} TEMPLATE {tmpl} STRATEGY FILE_COPY;\n"
                     for n in names)
    r = subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", str(cl.port),
                        "-U", "postgres", "-d", "postgres"], input=script, capture_output=True, text=True,
                       timeout=3600)
    if r.returncode != 0:
        raise RuntimeError(f"creating {prefix}*: {r.stderr.strip()}")
    cl.psql(f"DROP DATABASE {tmpl}")
    log(f"databases {prefix}0..{count - 1}: {count} × {tables} tables generated in {time.time() - t:.1f} s")
    return names


class ActivitySampler:
    """Counts the exporter's backends (pg_stat_activity, by role) every
    ~50 ms in one long-lived psql session, from start() to stop()."""

    def __init__(self, cl, role):
        self.samples = []
        self.stop_flag = threading.Event()
        self.p = subprocess.Popen(
            ["psql", "-X", "-q", "-At", "-h", "127.0.0.1", "-p", str(cl.port), "-U", "postgres", "-d", "postgres"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, bufsize=1)
        self.sql = f"SELECT count(*) FROM pg_stat_activity WHERE usename = '{role}';\n"
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stop_flag.is_set():
            self.p.stdin.write(self.sql)
            self.p.stdin.flush()
            line = self.p.stdout.readline()
            if not line:
                return
            self.samples.append(int(line))
            time.sleep(0.05)

    def stop(self):
        self.stop_flag.set()
        self.thread.join(timeout=5)
        try:
            self.p.stdin.close()
            self.p.wait(timeout=5)
        except Exception:
            self.p.kill()
        return max(self.samples, default=0), len(self.samples)


def floor_sql():
    """Our exporter's per-table and per-index SQL, from the source: the shared selection
    (which also carries every column `tables` publishes: tables has no query of its own)
    and indexes."""
    qs = []
    for f in ("selection", "indexes"):
        path = os.path.join(ROOT, "src", "collectors", f + ".rs")
        if not os.path.exists(path):
            path = os.path.join(ROOT, "src", "collectors", f, "mod.rs")
        src = open(path).read()
        # String consts, and consts built with concatcp!(A, "literal", B) from them.
        consts = {n: v for n, v in re.findall(r'const (\w+): &str = "(.*?)";\n', src, re.S)}
        for n, args in re.findall(r'const (\w+): &str = concatcp!\((.*?)\);\n', src, re.S):
            parts = re.findall(r'"((?:[^"\\]|\\.)*)"|(\w+)', args, re.S)
            consts[n] = "".join(lit if name == "" else consts[name] for lit, name in parts)
        # One statement per version range (selection: SQL_14 for 14-17, SQL_18;
        # indexes: SQL_14, SQL_15 for ≥ 15): the bench runs PostgreSQL 15.
        m = [consts[n] for n in ("SQL", "SQL_15", "SQL_14") if n in consts][:1]
        if not m:
            raise RuntimeError(f"no `const SQL` in {path}")
        qs += [q.replace('\\"', '"') for q in m]
    return qs


class Floor:
    """The same catalog queries in one long-lived psql session per database."""

    name = "floor"

    def __init__(self, cl, dbs, work, enabled=True):
        self.queries = floor_sql()
        self.sessions = []
        self.enabled = enabled
        for db in dbs if enabled else []:
            err = open(os.path.join(work, f"floor-{db}.log"), "w")
            p = subprocess.Popen(
                ["psql", "-X", "-q", "-h", "127.0.0.1", "-p", str(cl.port), "-U", "postgres", "-d", db],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, text=True, bufsize=1)
            p.stdin.write("\\o /dev/null\n\\timing on\n")
            self.sessions.append(p)
        self.times = []

    def run_once(self):
        if not self.enabled:
            return float("nan")
        total = 0.0
        for p in self.sessions:
            p.stdin.write("".join(q + ";\n" for q in self.queries) + "\\echo __END__\n")
            p.stdin.flush()
            n = 0
            while True:
                line = p.stdout.readline()
                if not line:
                    raise RuntimeError("floor psql session ended")
                if line.startswith("__END__"):
                    break
                m = re.match(r"Time: ([\d.]+) ms", line)
                if m:
                    total += float(m.group(1)) / 1000
                    n += 1
            if n != len(self.queries):
                raise RuntimeError("a floor query failed (see floor-*.log)")
        return total

    def stop(self):
        for p in self.sessions:
            try:
                p.stdin.close()
                p.wait(timeout=10)
            except Exception:
                p.kill()


class FreshFloor:
    """The floor's SQL with a fresh session per database, `cap` sessions at a time (issue 22).

    When the databases outnumber the connections, every scrape opens a backend per database and
    plans each statement on cold catalog caches; the long-lived sessions of `Floor` pay neither.
    This is what PostgreSQL itself needs for that: `cap` threads, each running `pgbench -n -C -t 1`
    in its share of the databases one after the other; pgbench's latency includes the connection
    and excludes its own start-up. The time is the slowest thread's sum."""

    name = "fresh floor"

    def __init__(self, cl, dbs, work, cap, queries):
        self.cl, self.dbs, self.cap = cl, dbs, cap
        self.pgbench = shutil.which("pgbench") or "/usr/lib/postgresql/15/bin/pgbench"
        self.script = os.path.join(work, "floor-fresh.sql")
        with open(self.script, "w") as f:
            f.write("".join(q + ";\n" for q in queries))
        self.times = []

    def one(self, db):
        r = subprocess.run([self.pgbench, "-n", "-C", "-t", "1", "-f", self.script, "-h", "127.0.0.1",
                            "-p", str(self.cl.port), "-U", "postgres", db], capture_output=True, text=True)
        m = re.search(r"latency average = ([\d.]+) ms", r.stdout)
        if r.returncode != 0 or not m:
            raise RuntimeError(f"pgbench failed in {db}: {r.stderr.strip()[:300]}")
        return float(m.group(1)) / 1000

    def run_once(self):
        shares = [self.dbs[i::self.cap] for i in range(self.cap)]
        try:
            with concurrent.futures.ThreadPoolExecutor(self.cap) as pool:
                sums = list(pool.map(lambda share: sum(self.one(db) for db in share), shares))
        except RuntimeError as e:
            log(f"  fresh floor: {e}")
            return float("nan")
        return max(sums)


class Exporter:
    def __init__(self, name, label, role, argv, env, work):
        self.name, self.label, self.role = name, label, role
        self.port = free_port()
        argv = [a.replace("{PORT}", str(self.port)) for a in argv]
        self.url = f"http://127.0.0.1:{self.port}/metrics"
        self.logf = open(os.path.join(work, f"{name}.log"), "w")
        full_env = dict(os.environ)
        full_env.update({k: v.replace("{PORT}", str(self.port)) for k, v in env.items()})
        self.proc = subprocess.Popen(argv, env=full_env, stdout=self.logf, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        with open(os.path.join(work, "pids"), "a") as f:
            f.write(f"{self.proc.pid}\n")
        self.work = work
        self.times, self.sizes, self.stmts, self.exec_ms = [], [], [], []
        self.body = None

    def wait_ready(self, timeout=60):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.label} exited (see {self.logf.name})")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"{self.label} did not listen within {timeout} s")

    def cpu(self):
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime

    def hwm_mib(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
        return float("nan")

    def curl_argv(self, out):
        return ["curl", "-s", "--max-time", "300", "-o", out, "-w", "%{http_code} %{size_download} %{time_total}",
                self.url]

    def scrape(self, out=None):
        out = out or os.path.join(self.work, f"{self.name}.body")
        r = subprocess.run(self.curl_argv(out), capture_output=True, text=True)
        code, size, t = r.stdout.split()
        return int(code), int(size), float(t), out

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def series_count(path):
    n = 0
    with open(path, "rb") as f:
        for line in f:
            if line.strip() and not line.startswith(b"#"):
                n += 1
    return n


def start_exporters(args, cl, dbs, work, multi, ours_only=False):
    """The exporters of one case; dbs are the databases whose tables are exported."""
    exps = []
    main_db = "postgres" if multi else dbs[0]
    ours_env = {
        "PGMAINT_DATABASE_URL": cl.url("bench_ours", main_db),
        "PGMAINT_LISTEN_ADDRESS": "127.0.0.1:{PORT}",
        "PGMAINT_MAX_TABLES_PER_DATABASE": "20000",
        "PGMAINT_MIN_SCRAPE_INTERVAL": "0s",
        # Many databases: one pattern rather than a thousand names.
        "PGMAINT_INCLUDE_DATABASES": dbs[0].rsplit("_", 1)[0] + "_[0-9]+" if multi else ",".join(dbs),
        "PGMAINT_LOG_LEVEL": "warn",
        "PGMAINT_MAX_CONNECTIONS": args.max_connections,
    }
    if not multi:
        # One big database: time the whole of it. The multi-database cases
        # keep the defaults (10 s scrape timeout, 4 connections): the target
        # is every collector within the default deadline (issue 22).
        ours_env.update({"PGMAINT_SCRAPE_TIMEOUT": "60s", "PGMAINT_STATEMENT_TIMEOUT": "60s"})
    exps.append(Exporter("ours", "ours", "bench_ours", [args.ours], ours_env, work))
    if ours_only:
        exps[0].wait_ready()
        return exps
    peer_args = ["--web.listen-address=127.0.0.1:{PORT}", "--log.level=warn"]
    if multi:
        peer_args += ["--auto-discover-databases", "--include-databases=" + ",".join(dbs)]
    for name, role, extra in (("peer", "bench_peer", []),
                              ("peerq", "bench_peerq", ["--extend.query-path=" + os.path.join(HERE, "queries.yaml")])):
        label = "peer(default)" if name == "peer" else "peer(queries.yaml)"
        exps.append(Exporter(name, label, role, [args.peer] + peer_args + extra,
                             {"DATA_SOURCE_NAME": cl.url(role, main_db)}, work))
    if args.pgx:
        # nbari/pg_exporter 0.22.2, default settings: its `stat` and `index` collectors visit every
        # database of the cluster by themselves (only the bench databases have tables).
        base = [args.pgx, "--listen", "127.0.0.1", "--port", "{PORT}"]
        exps.append(Exporter("pgx", "pg_exporter", "bench_pgx",
                             base + ["--dsn", cl.url("bench_pgx", main_db)], {}, work))
        exps.append(Exporter("pgxf", "pg_exporter(+index,database,stat)", "bench_pgxf",
                             base + ["--dsn", cl.url("bench_pgxf", main_db),
                                     "--collector.index", "--collector.database", "--collector.stat"], {}, work))
    for e in exps:
        e.wait_ready()
    return exps


def run_case(args, cl, title, dbs, work, multi=False):
    log(f"case {title}: starting exporters")
    exps = start_exporters(args, cl, dbs, work, multi, ours_only=multi and args.ours_only)
    # The floor holds one psql session per database: not for hundreds.
    floor = Floor(cl, dbs, work, enabled=len(dbs) <= 100)
    fresh = FreshFloor(cl, dbs, work, int(args.max_connections), floor.queries) if multi else None
    sampler = ActivitySampler(cl, "bench_ours")
    try:
        # Warm-up: one scrape each (connection pools, first-scrape caches), not counted.
        for e in exps:
            code, size, t, _ = e.scrape()
            log(f"  warm-up {e.label}: HTTP {code}, {size} bytes, {t:.2f} s")
        floor.run_once()
        time.sleep(args.settle)
        cpu0 = {e.name: e.cpu() for e in exps}
        for r in range(args.rounds):
            for e in exps:
                s0 = cl.statements()
                code, size, t, path = e.scrape()
                s1 = cl.statements()
                if code != 200:
                    log(f"  {e.label}: HTTP {code}")
                e.times.append(t)
                e.sizes.append(size)
                c0, m0 = s0.get(e.role, (0, 0.0))
                c1, m1 = s1.get(e.role, (0, 0.0))
                e.stmts.append(c1 - c0)
                e.exec_ms.append(m1 - m0)
                e.body = path
            floor.times.append(floor.run_once())
            if fresh:
                fresh.times.append(fresh.run_once())
            log(f"  round {r + 1}/{args.rounds}: " + ", ".join(
                f"{e.name} {e.times[-1]:.2f}s" for e in exps) + f", floor {floor.times[-1]:.2f}s"
                + (f", fresh floor {fresh.times[-1]:.2f}s" if fresh else ""))
        for e in exps:
            e.cpu_per_scrape = (e.cpu() - cpu0[e.name]) / args.rounds
            e.hwm = e.hwm_mib()
            e.series = series_count(e.body)
            e.failed = failed_collectors(e.body) if e.name == "ours" else None
            e.ages = result_ages(e.body) if e.name == "ours" else None
        # Burst: 4 simultaneous scrapes of each exporter in turn.
        for e in exps:
            s0 = cl.statements()
            outs = [os.path.join(work, f"{e.name}.burst{i}") for i in range(4)]
            t0 = time.time()
            procs = [subprocess.Popen(e.curl_argv(o), stdout=subprocess.PIPE, text=True) for o in outs]
            res = [p.communicate()[0].split() for p in procs]
            e.burst_wall = time.time() - t0
            s1 = cl.statements()
            e.burst_stmts = s1.get(e.role, (0, 0.0))[0] - s0.get(e.role, (0, 0.0))[0]
            ref = statistics.median(e.sizes)
            e.burst_ok = sum(1 for code, size, _ in res
                             if code == "200" and abs(int(size) - ref) <= 0.05 * ref)
            e.burst_hwm = e.hwm_mib()
            log(f"  burst {e.label}: {e.burst_wall:.2f} s, {e.burst_stmts} statements, "
                f"{e.burst_ok}/4 HTTP 200 with full body, codes {[x[0] for x in res]}")
    finally:
        peak, samples = sampler.stop()
        for e in exps:
            e.stop()
        floor.stop()
    return report(title, exps, floor, len(dbs), (peak, samples, args.max_connections), fresh)


def failed_collectors(path):
    """Series pg_scrape_collector_success 0 in our last body."""
    n = 0
    with open(path, "rb") as f:
        for line in f:
            if line.startswith(b"pg_scrape_collector_success{") and line.rstrip().endswith(b" 0"):
                n += 1
    return n


def result_ages(path):
    """pg_scrape_collector_age_seconds in our last body, cached collectors (bloat, sizes) left out as
    PgmaintCollectorDataStale leaves them: (read in this scrape, served with an age, the largest age)."""
    ages = []
    with open(path, "rb") as f:
        for line in f:
            if (line.startswith(b"pg_scrape_collector_age_seconds{")
                    and b'collector="bloat"' not in line and b'collector="sizes"' not in line):
                ages.append(float(line.rsplit(None, 1)[1]))
    return (sum(1 for a in ages if a == 0), sum(1 for a in ages if a > 0), max(ages, default=0.0))


def fmt_t(xs):
    if any(x != x for x in xs):
        return "—"
    return f"{statistics.median(xs):.3f} ({min(xs):.2f}–{max(xs):.2f})"


def report(title, exps, floor, ndbs, activity, fresh=None):
    cols = [e.label for e in exps] + ["floor (psql)"]
    rows = [
        ("scrape s, median (min–max)", [fmt_t(e.times) for e in exps] + [fmt_t(floor.times)]),
        ("exporter CPU s / scrape", [f"{e.cpu_per_scrape:.3f}" for e in exps] + ["—"]),
        ("peak RSS MiB (VmHWM)", [f"{e.hwm:.0f}" for e in exps] + ["—"]),
        ("peak RSS MiB after burst", [f"{e.burst_hwm:.0f}" for e in exps] + ["—"]),
        ("body bytes", [f"{int(statistics.median(e.sizes)):,}" for e in exps] + ["—"]),
        ("series", [f"{e.series:,}" for e in exps] + ["—"]),
        ("statements / scrape", [f"{statistics.median(e.stmts):.0f}" for e in exps] + [str(len(floor.queries) * len(floor.sessions))]),
        ("statements / database", [f"{statistics.median(e.stmts) / ndbs:.1f}" for e in exps] + [str(len(floor.queries))]),
        ("server exec ms / scrape", [f"{statistics.median(e.exec_ms):.0f}" for e in exps] + ["—"]),
        ("collectors failed (success 0)", [str(e.failed) if e.failed is not None else "—" for e in exps] + ["—"]),
        ("per-database results (bloat, sizes aside): this scrape's / older (max age s)",
         [f"{e.ages[0]:,} / {e.ages[1]:,} ({e.ages[2]:.0f})" if e.ages else "—" for e in exps] + ["—"]),
        ("burst of 4: wall s", [f"{e.burst_wall:.2f}" for e in exps] + ["—"]),
        ("burst of 4: statements", [str(e.burst_stmts) for e in exps] + ["—"]),
        ("burst of 4: HTTP 200 + full body", [f"{e.burst_ok}/4" for e in exps] + ["—"]),
    ]
    peak, samples, cap = activity
    lines = [f"### {title}", "",
             f"Our backends in pg_stat_activity (sampled every ~50 ms, {samples} samples): "
             f"max {peak}, PGMAINT_MAX_CONNECTIONS {cap}.", ""]
    if fresh:
        lines[-1:-1] = [f"Fresh floor (the floor's SQL in a new session per database, {fresh.cap} at a time, "
                        f"pgbench -C): {fmt_t(fresh.times)} s.", ""]
    lines.append("| | " + " | ".join(cols) + " |")
    lines.append("|---|" + "---|" * len(cols))
    for name, vals in rows:
        lines.append(f"| {name} | " + " | ".join(vals) + " |")
    ours = exps[0]
    med = statistics.median
    fl = med(floor.times)
    lines += ["", "| ratio ours / … | scrape time | CPU / scrape | peak RSS | peak RSS in burst | burst statements / one scrape |",
              "|---|---|---|---|---|---|"]
    for e in exps[1:]:
        lines.append(
            f"| {e.label} | {med(ours.times) / med(e.times):.2f} | {ratio(ours.cpu_per_scrape, e.cpu_per_scrape)} | "
            f"{ours.hwm / e.hwm:.2f} | {ours.burst_hwm / e.burst_hwm:.2f} | "
            f"ours {ratio(ours.burst_stmts, med(ours.stmts))}, {e.label} {ratio(e.burst_stmts, med(e.stmts))} |")
    if floor.enabled:
        lines.append(f"| floor (psql) | {med(ours.times) / fl:.2f} | | | | |")
    if fresh:
        lines.append(f"| fresh floor (a new session per database, {fresh.cap} at a time) | "
                     f"{med(ours.times) / med(fresh.times):.2f} | | | | |")
    text = "\n".join(lines) + "\n"
    print(text, flush=True)
    return text


def ratio(a, b):
    return f"{a / b:.2f}" if b else "—"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--tables", default="100,2000,10000")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--multi", action="store_true", help="also the multi-database cases (--dbs)")
    ap.add_argument("--dbs", default="10x200,100x10,1000x2", help="multi-database cases, DATABASESxTABLES")
    ap.add_argument("--ours-only", action="store_true", help="multi-database cases: our exporter only, no peers")
    ap.add_argument("--reuse", action="store_true",
                    help="keep the generated databases and reuse those already there (a cluster kept between runs)")
    ap.add_argument("--max-connections", default="4", help="PGMAINT_MAX_CONNECTIONS (reported; 4 is the default)")
    ap.add_argument("--ours", required=True)
    ap.add_argument("--peer", required=True)
    ap.add_argument("--pgx", default="")
    ap.add_argument("--settle", type=float, default=2.0, help="seconds between warm-up and measuring")
    ap.add_argument("--out", default="", help="also write the tables to this file")
    args = ap.parse_args()
    cl = Cluster(args.port)
    for role in ROLES:
        cl.psql(f"DO $$ BEGIN CREATE ROLE {role} LOGIN IN ROLE pg_monitor; "
                f"EXCEPTION WHEN duplicate_object THEN NULL; END $$")
    cl.psql("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
    sizes = [int(x.replace("_", "")) for x in args.tables.split(",") if x.strip()]
    cases = [(f"{n:,} tables (1 database)", n, 1, False) for n in sizes]
    if args.multi:
        for spec in args.dbs.split(","):
            if spec.strip():
                d, t = (int(x) for x in spec.lower().split("x"))
                cases.append((f"{d:,} databases × {t:,} tables", t, d, True))
    texts = []
    for title, tables, ndbs, multi in cases:
        if multi:
            dbs = make_databases(cl, f"bench_m{ndbs}x{tables}_", ndbs, tables)
        else:
            dbs = [f"bench_t{tables}"]
            make_database(cl, dbs[0], tables)
        texts.append(run_case(args, cl, title, dbs, args.work, multi))
        if not args.reuse:
            for db in dbs:  # keep the disk small for the next case
                cl.psql(f"DROP DATABASE {db} WITH (FORCE)")
    if args.out:
        with open(args.out, "w") as f:
            f.write("\n".join(texts))


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(130)
