# syntax=docker/dockerfile:1
# ai-service image. Build from the repository root (the context must be the workspace):
#   docker build -f deploy/docker/ai-service.Dockerfile -t llm-stream/ai-service .
# gateway.Dockerfile is the same recipe for the other binary: change both together.

ARG RUST_IMAGE=rust:1-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

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
# Real sources. COPY keeps the files' original mtimes, which can be older than the stub
# build above; cargo would then keep the stub binaries. Touching every source forces the
# workspace crates (and only them) to rebuild. The --help check fails the build if a stub
# ever slips through (a stub prints nothing).
COPY . .
RUN find . -path ./target -prune -o -name '*.rs' -exec touch {} + \
    && cargo build --release --locked --package ai-service \
    && help=$(./target/release/ai-service --help) && test -n "$help" \
    && install -D -m 0755 target/release/ai-service /out/ai-service

# --- runtime ------------------------------------------------------------------------------
# bookworm-slim rather than distroless: same glibc as the builder, and curl for HEALTHCHECK.
FROM ${RUNTIME_IMAGE} AS runtime
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid 10001 --home-dir /nonexistent --no-create-home \
        --shell /usr/sbin/nologin app
COPY --from=builder /out/ai-service /usr/local/bin/ai-service

# Numeric user: Kubernetes can only verify runAsNonRoot against a numeric UID.
USER 10001:10001
# The binary defaults to 127.0.0.1, which is unreachable from outside a container.
ENV AI_ADDR=0.0.0.0:8081
EXPOSE 8081
# Liveness only (/healthz must not depend on Redis). The port is read from AI_ADDR at
# check time (hence `sh -c`), so the check follows an overridden address.
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["sh", "-c", "curl -fsS --max-time 2 -o /dev/null \"http://127.0.0.1:${AI_ADDR##*:}/healthz\""]
# The binary is PID 1: it must handle SIGTERM itself (stop taking new work, finish or
# hand over running generations within SHUTDOWN_TIMEOUT).
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/ai-service"]
