#!/usr/bin/env bash
# One-command demo: a throwaway PostgreSQL 15 cluster with a small scenario
# (a table with dead tuples, an unused and a duplicate index, a session idle
# in a transaction), the exporter serving it on http://127.0.0.1:9188/metrics,
# and, when installed, Prometheus (scraping every 5s, alerts/pgmaint.rules.yml
# loaded) and Alertmanager (alerts/alertmanager.yml), until Ctrl-C.
#
#   DEMO_SECONDS=N            stop after N seconds (for CI and tests)
#   PGMAINT_LISTEN_ADDRESS    exporter address          [127.0.0.1:9188]
#   DEMO_PROMETHEUS_PORT      Prometheus on 127.0.0.1   [9090, else a free port]
#   DEMO_ALERTMANAGER_PORT    Alertmanager on 127.0.0.1 [9093, else a free port]
#   DEMO_PROMETHEUS, DEMO_ALERTMANAGER   the binaries
#                             [/usr/bin/prometheus, prometheus-alertmanager or alertmanager]
#
# Everything it starts is stopped on exit (also on Ctrl-C and SIGTERM); data
# lives in temp dirs that are removed. What it needs and the machine lacks
# (PostgreSQL 15, Prometheus, Alertmanager, python3) is installed first by
# `scripts/install-deps.sh demo` (root or sudo); PGMAINT_NO_INSTALL=1 skips
# that and runs without Prometheus/Alertmanager if they are absent.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -n "${PGMAINT_NO_INSTALL:-}" ]; then
    scripts/install-deps.sh demo 2>/dev/null \
        || echo "demo: some tools are missing; scripts/install-deps.sh demo (as root) installs them"
else
    scripts/install-deps.sh demo
fi

cargo build --release --quiet

tmp=$(mktemp -d /tmp/pgmaint-demo.XXXXXX)
dir=
pids=()
cleanup() {
    trap - EXIT INT TERM
    exec 7>&- # EOF ends the idle session (its transaction rolls back)
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    # Bounded wait (10 s), then SIGKILL whatever is left.
    for _ in $(seq 100); do
        alive=0
        for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
        [ "$alive" = 0 ] && break
        sleep 0.1
    done
    for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
    [ -n "$dir" ] && scripts/pgcluster.sh stop "$dir"
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# $1 if free on 127.0.0.1, else any free port.
port_or_free() {
    python3 - "$1" <<'PY'
import socket, sys
s = socket.socket()
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    s.close()
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
PY
}

# Polls an HTTP URL until it answers 200 (at most $2 tenths of a second).
wait_http() {
    local url=$1 tries=$2
    for _ in $(seq "$tries"); do
        python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=1)' "$url" \
            2>/dev/null && return 0
        sleep 0.1
    done
    echo "demo: $url did not come up" >&2
    return 1
}

read -r dir port < <(scripts/pgcluster.sh start)

psql="psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p $port -U postgres"
$psql -d postgres <<'SQL'
CREATE DATABASE meetings;
-- The exporter's role: what docs/deployment.md recommends (trust auth here, no password).
CREATE ROLE pgmaint LOGIN IN ROLE pg_monitor;
SQL
$psql -d meetings <<'SQL'
CREATE TABLE users (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, email text NOT NULL, created_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE meetings (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, owner_id bigint REFERENCES users, title text,
                       starts_at timestamptz, created_at timestamptz NOT NULL DEFAULT now()) WITH (autovacuum_enabled = off);
INSERT INTO users (email) SELECT 'user' || g || '@example.com' FROM generate_series(1, 2000) g;
INSERT INTO meetings (owner_id, title, starts_at)
  SELECT 1 + g % 2000, 'Meeting ' || g, now() + g * interval '1 hour' FROM generate_series(1, 50000) g;
CREATE INDEX meetings_title_idx ON meetings (title);          -- never used
CREATE INDEX meetings_title_idx2 ON meetings (title);         -- a duplicate
ANALYZE;
DELETE FROM meetings WHERE id % 4 = 0;                          -- dead tuples autovacuum will not clean
SQL

# A session left idle in a transaction: psql reads its statements from a FIFO
# the script keeps open (fd 7), so after them it waits, transaction open,
# until the script exits and closes the FIFO. REPEATABLE READ keeps its
# snapshot, so it also holds back the xmin horizon (pg_xmin_horizon_age).
mkfifo "$tmp/idle.fifo"
$psql -d meetings <"$tmp/idle.fifo" >/dev/null &
pids+=($!)
exec 7>"$tmp/idle.fifo"
echo "BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT count(*) FROM users;" >&7
for _ in $(seq 100); do
    state=$($psql -d meetings -Atc "SELECT count(*) FROM pg_stat_activity WHERE datname = 'meetings' AND state = 'idle in transaction'")
    [ "$state" -ge 1 ] && break
    sleep 0.1
done
[ "$state" -ge 1 ] || { echo "demo: the idle-in-transaction session did not start" >&2; exit 1; }

export PGMAINT_DATABASE_URL="postgresql://pgmaint@127.0.0.1:$port/meetings"
export PGMAINT_LISTEN_ADDRESS=${PGMAINT_LISTEN_ADDRESS:-127.0.0.1:9188}
target/release/pgmaint-exporter &
exporter_pid=$!
pids+=($exporter_pid)
wait_http "http://$PGMAINT_LISTEN_ADDRESS/healthz" 150
echo "PostgreSQL 15 on 127.0.0.1:$port (database meetings); exporter on http://$PGMAINT_LISTEN_ADDRESS/metrics"

prometheus_bin=${DEMO_PROMETHEUS:-/usr/bin/prometheus}
alertmanager_bin=${DEMO_ALERTMANAGER:-$(command -v prometheus-alertmanager || command -v alertmanager || true)}
am_port=
if [ -n "$alertmanager_bin" ] && [ -x "$alertmanager_bin" ] && [ -f alerts/alertmanager.yml ]; then
    am_port=${DEMO_ALERTMANAGER_PORT:-$(port_or_free 9093)}
    mkdir "$tmp/alertmanager"
    "$alertmanager_bin" --config.file=alerts/alertmanager.yml --storage.path="$tmp/alertmanager" \
        --web.listen-address="127.0.0.1:$am_port" --cluster.listen-address= \
        >"$tmp/alertmanager.log" 2>&1 &
    pids+=($!)
    wait_http "http://127.0.0.1:$am_port/-/ready" 300 || { cat "$tmp/alertmanager.log" >&2; exit 1; }
    echo "Alertmanager on http://127.0.0.1:$am_port"
elif [ -n "$alertmanager_bin" ]; then
    echo "Alertmanager: alerts/alertmanager.yml not found, not started"
fi

if [ -x "$prometheus_bin" ]; then
    prom_port=${DEMO_PROMETHEUS_PORT:-$(port_or_free 9090)}
    mkdir "$tmp/prometheus"
    {
        echo "global: {scrape_interval: 5s, scrape_timeout: 4s, evaluation_interval: 5s}"
        if [ -f alerts/pgmaint.rules.yml ]; then
            echo "rule_files: [\"$PWD/alerts/pgmaint.rules.yml\"]"
        fi
        if [ -n "$am_port" ]; then
            echo "alerting: {alertmanagers: [{static_configs: [{targets: [\"127.0.0.1:$am_port\"]}]}]}"
        fi
        echo "scrape_configs: [{job_name: pgmaint, static_configs: [{targets: [\"$PGMAINT_LISTEN_ADDRESS\"]}]}]"
    } >"$tmp/prometheus.yml"
    "$prometheus_bin" --config.file="$tmp/prometheus.yml" --storage.tsdb.path="$tmp/prometheus" \
        --web.listen-address="127.0.0.1:$prom_port" >"$tmp/prometheus.log" 2>&1 &
    pids+=($!)
    wait_http "http://127.0.0.1:$prom_port/-/ready" 300 || { cat "$tmp/prometheus.log" >&2; exit 1; }
    rules=$([ -f alerts/pgmaint.rules.yml ] && echo "alerts/pgmaint.rules.yml loaded" || echo "no alerts/pgmaint.rules.yml")
    echo "Prometheus on http://127.0.0.1:$prom_port ($rules; alerts: http://127.0.0.1:$prom_port/alerts)"
fi

echo "demo running; Ctrl-C stops everything"
# `sleep &; wait` rather than a foreground sleep, so Ctrl-C and SIGTERM run the trap at once.
if [ -n "${DEMO_SECONDS:-}" ]; then
    sleep "$DEMO_SECONDS" &
    pids+=($!)
    wait "${pids[-1]}"
else
    wait "$exporter_pid"
fi
