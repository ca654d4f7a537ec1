#!/usr/bin/env bash
# The project's test command: starts one throwaway PostgreSQL 15 cluster for
# the whole run, runs every test with nextest, and stops the cluster even when
# tests fail. Extra arguments go to `cargo nextest run`. The version matrix's
# other servers come from scripts/pg-versions.sh (cached after the first run).
# First it installs what the tests need and the machine lacks
# (scripts/install-deps.sh: apt and pip need root, or sudo; nothing is
# installed when everything is there).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh

cargo build --all-targets --quiet
# PostgreSQL 14, 16, 17, 18 for the version matrix (tests/it/versions.rs);
# installed once, then cached.
scripts/pg-versions.sh >/dev/null
read -r dir port < <(scripts/pgcluster.sh start)
trap 'scripts/pgcluster.sh stop "$dir"' EXIT
export PGMAINT_TEST_PGPORT=$port PGMAINT_TEST_PGDIR=$dir
echo "test cluster: PostgreSQL 15 on 127.0.0.1:$port ($dir)"
cargo nextest run --no-fail-fast "$@"
