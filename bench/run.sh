#!/usr/bin/env bash
# The benchmark: builds the release binaries, starts a private redis-server (no persistence),
# the ai-service and the gateway as separate processes on free loopback ports, runs the
# scenarios S1–S6 with `loadgen`, writes bench/results/<timestamp>.json and regenerates
# BENCHMARKS.md from it.
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

smoke=0
build=1
extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --smoke) smoke=1 ;;
    --no-build) build=0 ;;
    --) shift; extra=("$@"); break ;;
    *) echo "bench/run.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done

BIN_DIR=${BIN_DIR:-$ROOT/target/release}
RESULTS_DIR=${RESULTS_DIR:-$ROOT/bench/results}
REDIS_SERVER=${REDIS_SERVER:-redis-server}
REDIS_BENCHMARK=${REDIS_BENCHMARK:-redis-benchmark}

if [ "$build" = 1 ]; then
  echo "bench: cargo build --release -p loadgen -p gateway -p ai-service" >&2
  cargo build --release -p loadgen -p gateway -p ai-service
  BIN_DIR=$ROOT/target/release
fi
for b in loadgen gateway ai-service; do
  [ -x "$BIN_DIR/$b" ] || { echo "bench: $BIN_DIR/$b is missing (build it, or set BIN_DIR)" >&2; exit 2; }
done
command -v "$REDIS_SERVER" >/dev/null || { echo "bench: $REDIS_SERVER not found" >&2; exit 2; }
command -v "$REDIS_BENCHMARK" >/dev/null || { echo "bench: $REDIS_BENCHMARK not found" >&2; exit 2; }

# As many file descriptors as allowed (19,000 idle connections in S1).
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

mkdir -p "$RESULTS_DIR"
stamp=$(date -u +%Y%m%dT%H%M%SZ)
if [ "$smoke" = 1 ]; then name="smoke-$stamp"; else name="$stamp"; fi
out="$RESULTS_DIR/$name.json"
work=$(mktemp -d "${TMPDIR:-/tmp}/streamline-bench.XXXXXX")

pids=()
cleanup() {
  local rc=$?
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [ "$rc" != 0 ] || [ "${KEEP_LOGS:-0}" = 1 ]; then
    for f in "$work"/*.log; do
      [ -f "$f" ] || continue
      echo "---- $(basename "$f") (last 20 lines) ----" >&2
      tail -n 20 "$f" >&2
    done
    echo "bench: logs kept in $work" >&2
  else
    rm -rf "$work"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A loopback port nobody listens on (below the ephemeral range, so no client socket takes it).
free_port() {
  local p
  for _ in $(seq 1 200); do
    p=$((20000 + RANDOM % 12000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      echo "$p"
      return 0
    fi
  done
  echo "bench: no free port" >&2
  return 1
}

wait_http() {
  local url=$1 name=$2
  for _ in $(seq 1 200); do
    if curl -fsS -o /dev/null --max-time 2 "$url" 2>/dev/null; then return 0; fi
    sleep 0.05
  done
  echo "bench: $name did not become ready at $url" >&2
  return 1
}

redis_port=$(free_port)
"$REDIS_SERVER" --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no \
  --maxclients 10000 --daemonize no --logfile "$work/redis.log" &
redis_pid=$!
pids+=("$redis_pid")
for _ in $(seq 1 100); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$redis_port") 2>/dev/null; then break; fi
  sleep 0.05
done

ai_port=$(free_port)
AI_ADDR="127.0.0.1:$ai_port" SHUTDOWN_TIMEOUT=2s REDIS_URL="redis://127.0.0.1:$redis_port" \
  "$BIN_DIR/ai-service" >"$work/ai-service.log" 2>&1 &
ai_pid=$!
pids+=("$ai_pid")
wait_http "http://127.0.0.1:$ai_port/readyz" ai-service

gw_port=$(free_port)
GATEWAY_ADDR="127.0.0.1:$gw_port" SHUTDOWN_TIMEOUT=2s REDIS_URL="redis://127.0.0.1:$redis_port" \
  AI_SERVICE_URL="http://127.0.0.1:$ai_port" \
  "$BIN_DIR/gateway" >"$work/gateway.log" 2>&1 &
gw_pid=$!
pids+=("$gw_pid")
wait_http "http://127.0.0.1:$gw_port/readyz" gateway

cmd="bench/run.sh"
[ "$smoke" = 1 ] && cmd="$cmd --smoke"
[ ${#extra[@]} -gt 0 ] && cmd="$cmd -- ${extra[*]}"
echo "bench: redis :$redis_port (pid $redis_pid), ai-service :$ai_port (pid $ai_pid), gateway :$gw_port (pid $gw_pid); fd limit $(ulimit -n); binaries $BIN_DIR" >&2

smoke_flag=()
[ "$smoke" = 1 ] && smoke_flag=(--smoke)
"$BIN_DIR/loadgen" run \
  --gateway-url "ws://127.0.0.1:$gw_port/ws" \
  --ai-url "http://127.0.0.1:$ai_port" \
  --redis-port "$redis_port" \
  --redis-benchmark "$REDIS_BENCHMARK" \
  --pid "gateway=$gw_pid" --pid "ai-service=$ai_pid" --pid "redis=$redis_pid" \
  --command "$cmd" \
  --out "$out" \
  "${smoke_flag[@]}" "${extra[@]}"

for pid in "$gw_pid" "$ai_pid" "$redis_pid"; do
  kill -0 "$pid" 2>/dev/null || { echo "bench: a service (pid $pid) died during the run" >&2; exit 1; }
done

if [ "$smoke" = 1 ] || [ ${#extra[@]} -gt 0 ]; then
  # A smoke or partial run: its report goes next to its JSON, BENCHMARKS.md is left alone.
  "$BIN_DIR/loadgen" report --input "$out" --output "$RESULTS_DIR/$name.md"
  echo "bench: results in $out and ${out%.json}.md" >&2
else
  "$BIN_DIR/loadgen" report --input "$out" --output "$ROOT/BENCHMARKS.md" --notes "$ROOT/bench/NOTES.md"
  echo "bench: results in $out; BENCHMARKS.md regenerated" >&2
fi
