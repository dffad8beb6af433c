#!/usr/bin/env bash
# The memory soak (issue 20): builds the release binaries, starts a private redis-server, the
# ai-service and the gateway as separate processes on free loopback ports (as bench/run.sh
# does), and runs `loadgen run --scenario soak`: SOAK_SOCKETS sockets chatting back to back
# (`!demo tokens=20 rate=200`, every third chat cancelled after its first chunk) for
# SOAK_DURATION, sampling the RSS of both services and Redis `used_memory` every 10 s.
# Writes bench/results/soak-<timestamp>.json and, next to it, the Markdown section to paste
# into BENCHMARKS.md (`loadgen soak-report`): the samples over time, the growth after warm-up
# per 10,000 chats for each process (target < 2 MB) and whether Redis plateaus.
#
#   bench/soak.sh                    30 minutes, 200 sockets, STREAM_TTL=10m
#   STREAM_TTL=60s SOAK_DURATION=3m SOAK_SOCKETS=50 bench/soak.sh
#                                    a short soak whose Redis can plateau within the run
#   bench/soak.sh --smoke            a few seconds, a handful of sockets (CI); no assertions
#                                    on memory; writes bench/results/soak-smoke-<timestamp>.*
#   bench/soak.sh --no-build         use the binaries already in $BIN_DIR
#   bench/soak.sh -- ARGS…           extra `loadgen run` arguments (e.g. --soak-sample-every 5s)
#
# Environment: STREAM_TTL (the ai-service's, default 10m), SOAK_DURATION (default 30m),
# SOAK_SOCKETS (default 200), BIN_DIR (default target/release), RESULTS_DIR (default
# bench/results), REDIS_SERVER (default from PATH), KEEP_LOGS=1 to keep the services' logs.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

# shellcheck source=bench/start-stack.sh
. "$ROOT/bench/start-stack.sh"
bench_args bench/soak.sh "$@"
bench_binaries
STREAM_TTL=${STREAM_TTL:-10m}
SOAK_DURATION=${SOAK_DURATION:-30m}
SOAK_SOCKETS=${SOAK_SOCKETS:-200}

stamp=$(date -u +%Y%m%dT%H%M%SZ)
if [ "$smoke" = 1 ]; then name="soak-smoke-$stamp"; else name="soak-$stamp"; fi
out="$RESULTS_DIR/$name.json"

AI_ENV=("STREAM_TTL=$STREAM_TTL")
start_stack

cmd="STREAM_TTL=$STREAM_TTL SOAK_DURATION=$SOAK_DURATION SOAK_SOCKETS=$SOAK_SOCKETS bench/soak.sh"
[ "$smoke" = 1 ] && cmd="$cmd --smoke"
[ ${#extra[@]} -gt 0 ] && cmd="$cmd -- ${extra[*]}"
echo "soak: redis :$redis_port (pid $redis_pid), ai-service :$ai_port (pid $ai_pid), gateway :$gw_port (pid $gw_pid); STREAM_TTL=$STREAM_TTL; binaries $BIN_DIR" >&2

smoke_flag=()
[ "$smoke" = 1 ] && smoke_flag=(--smoke)
"$BIN_DIR/loadgen" run \
  --scenario soak \
  --gateway-url "ws://127.0.0.1:$gw_port/ws" \
  --ai-url "http://127.0.0.1:$ai_port" \
  --redis-port "$redis_port" \
  --pid "gateway=$gw_pid" --pid "ai-service=$ai_pid" --pid "redis=$redis_pid" \
  --soak-duration "$SOAK_DURATION" --soak-sockets "$SOAK_SOCKETS" --soak-stream-ttl "$STREAM_TTL" \
  --command "$cmd" \
  --out "$out" \
  "${smoke_flag[@]}" "${extra[@]}"

check_alive

"$BIN_DIR/loadgen" soak-report --input "$out" --output "${out%.json}.md"
echo "soak: results in $out; the BENCHMARKS.md section in ${out%.json}.md" >&2
