#!/usr/bin/env bash
# One-command demo: a throwaway PostgreSQL 15 cluster with a small scenario
# (a table with dead tuples, an unused index, an idle transaction), and the
# exporter serving it on http://127.0.0.1:9188/metrics until Ctrl-C.
# DEMO_SECONDS=N stops it after N seconds (for CI).
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --quiet
read -r dir port < <(scripts/pgcluster.sh start)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    scripts/pgcluster.sh stop "$dir"
}
trap cleanup EXIT INT TERM

psql="psql -X -q -h 127.0.0.1 -p $port -U postgres"
$psql -d postgres -c "CREATE DATABASE meetings"
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
# A session left idle in a transaction.
( echo "BEGIN; SELECT count(*) FROM users; SELECT pg_sleep(0);"; sleep 100000 ) | $psql -d meetings >/dev/null &
pids+=($!)

export PGMAINT_DATABASE_URL="postgresql://postgres@127.0.0.1:$port/meetings"
export PGMAINT_LISTEN_ADDRESS=${PGMAINT_LISTEN_ADDRESS:-127.0.0.1:9188}
echo "PostgreSQL 15 on 127.0.0.1:$port; exporter on http://$PGMAINT_LISTEN_ADDRESS/metrics (Ctrl-C stops both)"
target/release/pgmaint-exporter &
pids+=($!)
if [ -n "${DEMO_SECONDS:-}" ]; then sleep "$DEMO_SECONDS"; else wait "${pids[-1]}"; fi
