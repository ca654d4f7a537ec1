#!/usr/bin/env bash
# The exporter's role: LOGIN, member of pg_monitor, nothing else (not a
# superuser). Its password is the compose secret `pgmaint_password`, which the
# exporter reads through PGMAINT_DATABASE_PASSWORD_FILE. Run once by the
# postgres image's entrypoint, on an empty data directory (tests/it/packaging.rs
# runs it against a test cluster, with PGMAINT_PASSWORD_FILE pointing elsewhere).
set -euo pipefail
password=$(tr -d '\n' <"${PGMAINT_PASSWORD_FILE:-/run/secrets/pgmaint_password}")
psql -v ON_ERROR_STOP=1 -X -q --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
    -v pgmaint_password="$password" <<'SQL'
CREATE ROLE pgmaint LOGIN PASSWORD :'pgmaint_password' IN ROLE pg_monitor;
SQL
