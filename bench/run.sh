#!/usr/bin/env bash
# The benchmark: builds the release binaries, starts a private redis-server (no persistence),
# the ai-service and the gateway as separate processes on free loopback ports, runs the
# scenarios S1–S8 with `loadgen`, writes bench/results/<timestamp>.json and regenerates
# BENCHMARKS.md from it. For S8 a second stack runs beside the first on the same Redis
# (start_s8_stack in bench/start-stack.sh): fake-openai, an ai-service with PROVIDER=openai
# pointing at it, and a gateway in front of that; loadgen gets its URLs (--s8-gateway-url,
# --s8-ai-url) and the processes to watch in S8 (--s8-pid gateway=… ai-service=… redis=…
# fake-openai=…). S3's floor (`loadgen floor-server`, start_floor) runs beside them: S3 searches
# it too after the stack (--s3-floor-url, --s3-floor-pid), for the most any gateway could
# deliver here.
#
#   bench/run.sh                 full run (~10 min on 2 cores), regenerates BENCHMARKS.md
#   bench/run.sh --smoke         a handful of connections, every scenario, a few seconds;
#                                writes bench/results/smoke-<timestamp>.{json,md} only
#   bench/run.sh --no-build      use the binaries already in $BIN_DIR
#   bench/run.sh -- ARGS…        extra `loadgen run` arguments (e.g. --scenario s2,s5)
#
# Environment: BIN_DIR (default target/release), RESULTS_DIR (default bench/results),
# REDIS_SERVER / REDIS_BENCHMARK (default from PATH), KEEP_LOGS=1 to keep the services' logs.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

# shellcheck source=bench/start-stack.sh
. "$ROOT/bench/start-stack.sh"
bench_args bench/run.sh "$@"
bench_binaries
REDIS_BENCHMARK=${REDIS_BENCHMARK:-redis-benchmark}
command -v "$REDIS_BENCHMARK" >/dev/null || { echo "bench: $REDIS_BENCHMARK not found" >&2; exit 2; }

# As many file descriptors as allowed (19,000 idle connections in S1).
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

stamp=$(date -u +%Y%m%dT%H%M%SZ)
if [ "$smoke" = 1 ]; then name="smoke-$stamp"; else name="$stamp"; fi
out="$RESULTS_DIR/$name.json"
start_stack
start_s8_stack
start_floor

cmd="bench/run.sh"
[ "$smoke" = 1 ] && cmd="$cmd --smoke"
[ ${#extra[@]} -gt 0 ] && cmd="$cmd -- ${extra[*]}"
echo "bench: redis :$redis_port (pid $redis_pid), ai-service :$ai_port (pid $ai_pid), gateway :$gw_port (pid $gw_pid); fd limit $(ulimit -n); binaries $BIN_DIR" >&2
echo "bench: S8: fake-openai :$fo_port (pid $fo_pid), ai-service PROVIDER=openai :$ai8_port (pid $ai8_pid), gateway :$gw8_port (pid $gw8_pid)" >&2

smoke_flag=()
[ "$smoke" = 1 ] && smoke_flag=(--smoke)
"$BIN_DIR/loadgen" run \
  --gateway-url "ws://127.0.0.1:$gw_port/ws" \
  --ai-url "http://127.0.0.1:$ai_port" \
  --redis-port "$redis_port" \
  --redis-benchmark "$REDIS_BENCHMARK" \
  --gateway-metrics-url "http://127.0.0.1:$gw_admin_port/metrics" \
  --pid "gateway=$gw_pid" --pid "ai-service=$ai_pid" --pid "redis=$redis_pid" \
  --s8-gateway-url "ws://127.0.0.1:$gw8_port/ws" --s8-ai-url "http://127.0.0.1:$ai8_port" \
  --s8-pid "gateway=$gw8_pid" --s8-pid "ai-service=$ai8_pid" --s8-pid "redis=$redis_pid" \
  --s8-pid "fake-openai=$fo_pid" \
  --s3-floor-url "ws://127.0.0.1:$floor_port/ws" --s3-floor-pid "floor-server=$floor_pid" \
  --command "$cmd" \
  --out "$out" \
  "${smoke_flag[@]}" "${extra[@]}"

check_alive

if [ "$smoke" = 1 ] || [ ${#extra[@]} -gt 0 ]; then
  # A smoke or partial run: its report goes next to its JSON, BENCHMARKS.md is left alone.
  "$BIN_DIR/loadgen" report --input "$out" --output "$RESULTS_DIR/$name.md"
  echo "bench: results in $out and ${out%.json}.md" >&2
else
  "$BIN_DIR/loadgen" report --input "$out" --output "$ROOT/BENCHMARKS.md" --notes "$ROOT/bench/NOTES.md"
  echo "bench: results in $out; BENCHMARKS.md regenerated" >&2
fi
