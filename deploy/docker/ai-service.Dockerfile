# syntax=docker/dockerfile:1
# ai-service image. Build from the repository root (the context must be the workspace):
#   docker build -f deploy/docker/ai-service.Dockerfile -t llm-stream/ai-service \
#     --build-arg STREAMLINE_COMMIT="$(git rev-parse HEAD)" .
# gateway.Dockerfile is the same recipe for the other binary: change both together.
#
# Base images are pinned to exact versions on Debian stable (trixie): the Rust toolchain the
# workspace is tested with, and a Debian point release. They are pinned by tag only (no
# digest): the digests cannot be looked up where these files are written. Pin them by digest
# in your build (`--build-arg RUST_IMAGE=rust:1.95.0-trixie@sha256:...`) or let a bot such
# as Renovate add and bump them.

ARG RUST_IMAGE=rust:1.95.0-trixie
ARG RUNTIME_IMAGE=debian:13.2-slim

# --- planner: reduce the workspace to manifests + stub targets (see skeleton.sh) -----------
FROM ${RUST_IMAGE} AS planner
WORKDIR /src
COPY . .
RUN sh deploy/docker/skeleton.sh /src /skeleton

# --- builder ------------------------------------------------------------------------------
FROM ${RUST_IMAGE} AS builder
WORKDIR /src
# Dependency layer: rebuilt only when a manifest, Cargo.lock or the set of targets changes.
COPY --from=planner /skeleton/ ./
RUN cargo build --release --locked --package ai-service
# The commit this image is built from, for streamline_build_info{commit} (`unknown` without
# it). Declared after the dependency layer, so a new commit does not rebuild the dependencies.
ARG STREAMLINE_COMMIT=unknown
# Real sources. COPY keeps the files' original mtimes, which can be older than the stub
# build above; cargo would then keep the stub binaries. Touching every source forces the
# workspace crates (and only them) to rebuild. The --help check fails the build if a stub
# ever slips through (a stub prints nothing).
COPY . .
RUN find . -path ./target -prune -o -name '*.rs' -exec touch {} + \
    && STREAMLINE_COMMIT="${STREAMLINE_COMMIT}" cargo build --release --locked --package ai-service \
    && help=$(./target/release/ai-service --help) && test -n "$help" \
    && install -D -m 0755 target/release/ai-service /out/ai-service

# --- runtime ------------------------------------------------------------------------------
# debian slim rather than distroless: same glibc as the builder. No curl: the binary checks
# its own health (`ai-service --healthcheck`).
FROM ${RUNTIME_IMAGE} AS runtime
ARG STREAMLINE_COMMIT=unknown
LABEL org.opencontainers.image.title="streamline ai-service" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.revision="${STREAMLINE_COMMIT}"
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid 10001 --home-dir /nonexistent --no-create-home \
        --shell /usr/sbin/nologin app
COPY --from=builder /out/ai-service /usr/local/bin/ai-service
COPY LICENSE /usr/share/doc/streamline/LICENSE

# Numeric user: Kubernetes can only verify runAsNonRoot against a numeric UID.
USER 10001:10001
# The binary defaults to 127.0.0.1, which is unreachable from outside a container.
# ADMIN_ADDR: /metrics, the probes (and the ai-service's admin API), for the internal network.
ENV AI_ADDR=0.0.0.0:8081 ADMIN_ADDR=0.0.0.0:9091
EXPOSE 8081 9091
# Liveness only (/healthz must not depend on Redis). The binary asks its admin port (it reads
# ADMIN_ADDR itself, so the check follows an overridden address).
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["/usr/local/bin/ai-service", "--healthcheck"]
# The binary is PID 1: it must handle SIGTERM itself (stop taking messages, let generations finish).
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/ai-service"]
