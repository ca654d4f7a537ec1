#!/usr/bin/env bash
# Throwaway PostgreSQL clusters for tests and the demo.
#
#   scripts/pgcluster.sh start [BINDIR]  → prints "DIR PORT" of a running cluster
#   scripts/pgcluster.sh stop DIR        → stops it and removes DIR
#   scripts/pgcluster.sh standby PRIMARY_PORT SLOT [BINDIR]
#                                        → a streaming standby of the cluster on
#                                          PRIMARY_PORT (pg_basebackup -R, creating
#                                          physical slot SLOT); prints "DIR PORT"
#
# PostgreSQL refuses to run as root, so under root the server runs as the
# unprivileged user `pgmaint` (created once, under a lock). Data lives in a
# temp dir that user owns; the server listens on 127.0.0.1 and a unix socket
# in DIR; trust authentication (loopback only). BINDIR defaults to
# Debian's PostgreSQL 15 (override with PGMAINT_PG_BINDIR).
set -euo pipefail

PGUSER_OS=${PGMAINT_OS_USER:-pgmaint}

as_pg() {
    if [ "$(id -u)" = 0 ]; then runuser -u "$PGUSER_OS" -- "$@"; else "$@"; fi
}

ensure_user() {
    [ "$(id -u)" = 0 ] || return 0
    id "$PGUSER_OS" >/dev/null 2>&1 && return 0
    (
        flock 9
        id "$PGUSER_OS" >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin "$PGUSER_OS"
    ) 9>/tmp/pgmaint-useradd.lock
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

start() {
    local bindir=${1:-${PGMAINT_PG_BINDIR:-/usr/lib/postgresql/15/bin}}
    ensure_user
    local dir
    dir=$(mktemp -d /tmp/pgmaint-pg.XXXXXX)
    chmod 755 "$dir"
    [ "$(id -u)" = 0 ] && chown "$PGUSER_OS" "$dir"
    as_pg "$bindir/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --locale=C >"$dir/initdb.log" 2>&1 || {
        cat "$dir/initdb.log" >&2; exit 1; }
    local extra=${PGMAINT_PG_CONF:-}
    for attempt in 1 2 3; do
        local port
        port=$(free_port)
        cat >"$dir/data/postgresql.auto.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir'
shared_preload_libraries = 'pg_stat_statements'
max_connections = 300
max_prepared_transactions = 10
fsync = off
synchronous_commit = off
full_page_writes = off
track_io_timing = on
log_min_messages = warning
$extra
CONF
        if as_pg "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null 2>&1; then
            echo "$dir $port"
            return 0
        fi
    done
    cat "$dir/server.log" >&2
    exit 1
}

# pg_basebackup copies postgresql.auto.conf (the primary's port and socket
# directory) and -R appends primary_conninfo to it; the lines appended here
# come last, so they win. `-c fast`: pg_basebackup otherwise waits for a
# spread checkpoint (minutes).
standby() {
    local primary_port=$1 slot=$2
    local bindir=${3:-${PGMAINT_PG_BINDIR:-/usr/lib/postgresql/15/bin}}
    ensure_user
    local dir
    dir=$(mktemp -d /tmp/pgmaint-pg.XXXXXX)
    chmod 755 "$dir"
    [ "$(id -u)" = 0 ] && chown "$PGUSER_OS" "$dir"
    as_pg "$bindir/pg_basebackup" -D "$dir/data" -R -C -S "$slot" -X stream -c fast \
        -d "host=127.0.0.1 port=$primary_port user=postgres application_name=pgmaint_standby" \
        >"$dir/basebackup.log" 2>&1 || { cat "$dir/basebackup.log" >&2; exit 1; }
    for attempt in 1 2 3; do
        local port
        port=$(free_port)
        as_pg tee -a "$dir/data/postgresql.auto.conf" >/dev/null <<CONF
port = $port
unix_socket_directories = '$dir'
CONF
        if as_pg "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null 2>&1; then
            echo "$dir $port"
            return 0
        fi
    done
    cat "$dir/server.log" >&2
    exit 1
}

stop() {
    local dir=$1
    local bindir=${2:-${PGMAINT_PG_BINDIR:-/usr/lib/postgresql/15/bin}}
    [ -d "$dir/data" ] || return 0
    as_pg "$bindir/pg_ctl" -D "$dir/data" -m immediate -w -t 30 stop >/dev/null 2>&1 || true
    rm -rf "$dir"
}

case "${1:-}" in
    start) shift; start "$@" ;;
    stop) shift; stop "$@" ;;
    standby) shift; standby "$@" ;;
    *) echo "usage: $0 start [BINDIR] | stop DIR [BINDIR] | standby PRIMARY_PORT SLOT [BINDIR]" >&2; exit 2 ;;
esac
