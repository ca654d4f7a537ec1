# syntax=docker/dockerfile:1
# pgmaint-exporter image: a static-ish Rust binary on debian:bookworm-slim,
# running as an unprivileged user, with PostgreSQL 18's pg_restore alongside.
#
#   docker build -t pgmaint-exporter --build-arg PGMAINT_REVISION="$(git rev-parse --short=12 HEAD)" .
#   docker run -e PGMAINT_DATABASE_URL=postgresql://pgmaint@db:5432/postgres -p 9188:9188 pgmaint-exporter
#
# CI builds this file unchanged and runs the image (tests/it/container.rs, against
# local stand-ins for the three base images: scripts/container-bases.sh, a test
# aid); `hadolint Dockerfile` lints it (tests/it/packaging.rs). See docs/deployment.md.

# ---- PostgreSQL 18 client binaries (official image, same Debian release) ----
FROM postgres:18-bookworm AS pgclient

# ---- build ----
FROM rust:1-bookworm AS builder
WORKDIR /src

# Dependencies first, against a dummy crate: this layer is reused until
# Cargo.toml, Cargo.lock or build.rs change.
COPY Cargo.toml Cargo.lock build.rs ./
RUN mkdir src \
    && echo 'fn main() {}' > src/main.rs \
    && touch src/lib.rs \
    && cargo build --release --locked \
    && rm -rf src

# The real source, and docs/runbook.md that GET /runbook compiles in
# (include_str!). COPY keeps the files' old mtimes, so touch them, or cargo
# would consider the dummy build up to date.
COPY docs/runbook.md ./docs/runbook.md
COPY src ./src
# build.rs reads the revision from git, which is not in the build context.
ARG PGMAINT_REVISION=unknown
ENV PGMAINT_REVISION=${PGMAINT_REVISION}
RUN touch src/main.rs src/lib.rs \
    && cargo build --release --locked \
    && cp target/release/pgmaint-exporter /pgmaint-exporter \
    && /pgmaint-exporter --version

# ---- runtime ----
FROM debian:bookworm-slim

# Shared libraries of libpq (TLS, Kerberos, LDAP) and of pg_restore 18
# (zlib, lz4, zstd), from Debian bookworm like the PGDG build in postgres:18-bookworm.
# DL3008 (pin apt package versions) is ignored: the base image tag pins the Debian
# release, and exact versions would break the build at every Debian security update.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        libgssapi-krb5-2 libldap-2.5-0 liblz4-1 libssl3 libzstd1 zlib1g \
    && rm -rf /var/lib/apt/lists/*

# pg_restore of the newest PostgreSQL major, with PGDG's libpq 18. The glob
# matches the architecture's multiarch directory (x86_64-linux-gnu, aarch64-linux-gnu…);
# ldconfig then finds libpq in /usr/local/lib. `pg_restore --version` fails the
# build when a shared library is missing.
COPY --from=pgclient /usr/lib/postgresql/18/bin/pg_restore /usr/lib/postgresql/18/bin/pg_restore
COPY --from=pgclient /usr/lib/*-linux-gnu/libpq.so.5* /usr/local/lib/
RUN ldconfig \
    && /usr/lib/postgresql/18/bin/pg_restore --version

COPY --from=builder /pgmaint-exporter /usr/local/bin/pgmaint-exporter

# A fixed numeric UID/GID so Kubernetes' runAsNonRoot can verify it.
RUN groupadd --system --gid 10001 pgmaint \
    && useradd --system --uid 10001 --gid pgmaint --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin pgmaint
USER 10001:10001

ENV PATH=/usr/lib/postgresql/18/bin:$PATH \
    PGMAINT_LISTEN_ADDRESS=0.0.0.0:9188
EXPOSE 9188

# No curl in the slim image: bash's /dev/tcp sends the request and the first
# response line must carry status 200. The port is the one in PGMAINT_LISTEN_ADDRESS.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["bash", "-c", "exec 3<>\"/dev/tcp/127.0.0.1/${PGMAINT_LISTEN_ADDRESS##*:}\" && printf 'GET /healthz HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n' >&3 && head -n 1 <&3 | grep -q ' 200 '"]

ENTRYPOINT ["/usr/local/bin/pgmaint-exporter"]
