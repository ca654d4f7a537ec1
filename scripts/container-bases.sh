#!/usr/bin/env bash
# TEST AID, not a way to build release images: makes local stand-ins for the
# three base images the Dockerfile names, on a machine that can reach Debian's
# package mirror but no container registry, so tests/it/container.rs can build
# the real Dockerfile unchanged with the legacy builder (DOCKER_BUILDKIT=0).
#
#   debian:bookworm-slim  `debootstrap --variant=minbase bookworm` (a bit larger
#                         than Docker's slim image: it keeps man pages and locales)
#   rust:1-bookworm       that root + gcc/libc6-dev + this machine's Rust
#                         toolchain (rustup's `stable`, without its docs) at the
#                         official image's paths (RUSTUP_HOME=/usr/local/rustup,
#                         CARGO_HOME=/usr/local/cargo), and this machine's CA
#                         bundle so cargo trusts the TLS proxy in front of
#                         crates.io here. That proxy is a property of this
#                         machine; the Dockerfile knows nothing of it.
#   postgres:18-bookworm  that root + PostgreSQL 18's pg_restore and libpq, built
#                         in a bookworm root from Debian's postgresql-18 source
#                         package (Debian has no bookworm binary of 18, and
#                         sid's binaries need glibc 2.38), installed where PGDG's
#                         image has them: /usr/lib/postgresql/18/bin/pg_restore,
#                         /usr/lib/x86_64-linux-gnu/libpq.so.5*. Only the client
#                         parts; no server.
#
# The expensive pieces are cached in $PGMAINT_CONTAINER_CACHE
# [/var/cache/pgmaint-container]: the debootstrap root (bookworm-minbase.tar,
# ~1 min to make) and the built client (pg18-client.tar, several minutes).
# An image that already exists is kept; `--rebuild` re-makes the images (not
# the cache; delete the cache dir for that). Needs root and a running engine.
set -euo pipefail
cd "$(dirname "$0")/.."

cache=${PGMAINT_CONTAINER_CACHE:-/var/cache/pgmaint-container}
rebuild=${1:-}
mkdir -p "$cache"
work=$(mktemp -d /tmp/pgmaint-bases.XXXXXX)
trap 'rm -rf "$work"' EXIT

have_image() { [ "$rebuild" != --rebuild ] && docker image inspect "$1" >/dev/null 2>&1; }
log() { echo "container-bases: $*" >&2; }

# The Debian mirror apt uses here (deb822 sources first, then sources.list).
mirror=$(sed -n 's/^URIs: *\([^ ]*debian\)$/\1/p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)
[ -n "$mirror" ] || mirror=$(awk '$1 == "deb" && $2 ~ /debian\/?$/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null)
mirror=${mirror:-http://deb.debian.org/debian}

# ---- debian:bookworm-slim ----
if [ ! -s "$cache/bookworm-minbase.tar" ]; then
    log "debootstrap --variant=minbase bookworm from $mirror"
    nice debootstrap --variant=minbase bookworm "$work/root" "$mirror" >"$work/debootstrap.log" 2>&1 \
        || { tail -20 "$work/debootstrap.log" >&2; exit 1; }
    rm -rf "$work/root/var/cache/apt/archives/"*.deb "$work/root/var/lib/apt/lists/"*
    tar -C "$work/root" -cf "$cache/bookworm-minbase.tar.part" .
    mv "$cache/bookworm-minbase.tar.part" "$cache/bookworm-minbase.tar"
    rm -rf "$work/root"
fi
if ! have_image debian:bookworm-slim; then
    log "debian:bookworm-slim <- $cache/bookworm-minbase.tar"
    docker import --change 'CMD ["bash"]' "$cache/bookworm-minbase.tar" debian:bookworm-slim >/dev/null
fi

# ---- rust:1-bookworm ----
if ! have_image rust:1-bookworm; then
    toolchain=$(rustc --print sysroot)
    log "rust:1-bookworm <- debian:bookworm-slim + gcc + $toolchain"
    mkdir "$work/rust"
    cp /etc/ssl/certs/ca-certificates.crt "$work/rust/ca-certificates.crt"
    cat >"$work/rust/Dockerfile" <<'EOF'
FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
RUN mkdir -p /usr/local/rustup/toolchains/stable-x86_64-unknown-linux-gnu /usr/local/cargo/bin
EOF
    DOCKER_BUILDKIT=0 docker build -q --cpu-shares 256 -t pgmaint-bases/rust-gcc "$work/rust" >/dev/null
    cid=$(docker create pgmaint-bases/rust-gcc true)
    tar -C "$toolchain" --exclude=./share/doc -cf - . \
        | docker cp - "$cid:/usr/local/rustup/toolchains/stable-x86_64-unknown-linux-gnu/"
    # cargo, rustc … on PATH as in the official image (there rustup's proxies;
    # here links to the one toolchain, which finds its sysroot through them).
    mkdir -p "$work/bin/usr/local/cargo/bin"
    for b in "$toolchain"/bin/*; do
        ln -s "/usr/local/rustup/toolchains/stable-x86_64-unknown-linux-gnu/bin/${b##*/}" \
            "$work/bin/usr/local/cargo/bin/${b##*/}"
    done
    tar -C "$work/bin" -cf - usr | docker cp - "$cid:/"
    docker commit \
        --change 'ENV RUSTUP_HOME=/usr/local/rustup CARGO_HOME=/usr/local/cargo' \
        --change 'ENV PATH=/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'CMD ["bash"]' "$cid" rust:1-bookworm >/dev/null
    docker rm "$cid" >/dev/null
    docker rmi pgmaint-bases/rust-gcc >/dev/null
fi

# ---- postgres:18-bookworm ----
if [ ! -s "$cache/pg18-client.tar" ]; then
    log "building PostgreSQL 18's pg_restore and libpq from Debian's postgresql-18 source (minutes)"
    cat >"$work/build-pg18.sh" <<'EOF'
set -eu
export DEBIAN_FRONTEND=noninteractive
# Source only, from sid: bookworm has no postgresql-18.
echo "deb-src $1 sid main" >/etc/apt/sources.list.d/sid-src.list
# This machine's clock may be past sid's Release validity; the source is checked by its hashes anyway.
apt-get update -qq -o Acquire::Check-Valid-Until=false
apt-get install -y -qq --no-install-recommends dpkg-dev make gcc libc6-dev bison flex perl pkg-config \
    libssl-dev zlib1g-dev liblz4-dev libzstd-dev libkrb5-dev libldap2-dev xz-utils bzip2 >/dev/null
cd /build
apt-get source -qq postgresql-18 >/dev/null 2>&1
cd postgresql-18-*/
./configure -q --prefix=/usr/lib/postgresql/18 --libdir=/usr/lib/x86_64-linux-gnu \
    --includedir=/usr/include/postgresql --disable-rpath \
    --with-openssl --with-lz4 --with-zstd --with-gssapi --with-ldap --without-icu --without-readline
make -s -j"$(nproc)" -C src/interfaces/libpq
make -s -j"$(nproc)" -C src/bin/pg_dump
make -s -C src/interfaces/libpq install DESTDIR=/build/out
make -s -C src/bin/pg_dump install DESTDIR=/build/out
rm -rf /build/out/usr/include /build/out/usr/lib/x86_64-linux-gnu/*.a /build/out/usr/lib/x86_64-linux-gnu/pkgconfig
LD_LIBRARY_PATH=/build/out/usr/lib/x86_64-linux-gnu /build/out/usr/lib/postgresql/18/bin/pg_restore --version
EOF
    mkdir "$work/build"
    cp "$work/build-pg18.sh" "$work/build/"
    docker run --rm --cpu-shares 256 -v "$work/build:/build" debian:bookworm-slim \
        bash /build/build-pg18.sh "$mirror" >"$work/pg18.log" 2>&1 \
        || { tail -30 "$work/pg18.log" >&2; exit 1; }
    tail -1 "$work/pg18.log" | grep -q 'pg_restore (PostgreSQL) 18' \
        || { tail -5 "$work/pg18.log" >&2; exit 1; }
    tar -C "$work/build/out" -cf "$cache/pg18-client.tar.part" .
    mv "$cache/pg18-client.tar.part" "$cache/pg18-client.tar"
    rm -rf "$work/build"
fi
if ! have_image postgres:18-bookworm; then
    log "postgres:18-bookworm <- debian:bookworm-slim + $cache/pg18-client.tar"
    mkdir "$work/pg"
    cp "$cache/pg18-client.tar" "$work/pg/"
    cat >"$work/pg/Dockerfile" <<'EOF'
FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends \
        libgssapi-krb5-2 libldap-2.5-0 liblz4-1 libssl3 libzstd1 zlib1g \
    && rm -rf /var/lib/apt/lists/*
ADD pg18-client.tar /
RUN /usr/lib/postgresql/18/bin/pg_restore --version
EOF
    DOCKER_BUILDKIT=0 docker build -q --cpu-shares 256 -t postgres:18-bookworm "$work/pg" >/dev/null
fi
log "ready: debian:bookworm-slim rust:1-bookworm postgres:18-bookworm"
