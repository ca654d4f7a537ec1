#!/usr/bin/env bash
# The project's test command: starts one throwaway PostgreSQL 15 cluster for
# the whole run, runs every test with nextest, and stops the cluster even when
# tests fail. Extra arguments go to `cargo nextest run`.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --all-targets --quiet
read -r dir port < <(scripts/pgcluster.sh start)
trap 'scripts/pgcluster.sh stop "$dir"' EXIT
export PGMAINT_TEST_PGPORT=$port PGMAINT_TEST_PGDIR=$dir
echo "test cluster: PostgreSQL 15 on 127.0.0.1:$port ($dir)"
cargo nextest run --no-fail-fast "$@"
