#!/usr/bin/env bash
# CPU profile of S8's provider path: starts the bench stack and S8's second stack
# (bench/start-stack.sh: fake-openai, an ai-service with PROVIDER=openai, its gateway), runs
# one S8 step of CHATS chats (`loadgen run --scenario s8`, the --s3-* search flags pinned to
# that one size) and records the S8 ai-service and fake-openai with perf meanwhile (cpu-clock,
# DWARF call graphs, so the normal release binaries serve; std has no frame pointers anyway).
#   bench/profile/s8-profile.sh NAME CHATS [loadgen args…]  → /tmp/streamline-prof/NAME.{json,perf}
#   python3 bench/profile/inclusive.py /tmp/streamline-prof/NAME.perf 50
# Environment: BIN_DIR (default target/release), FREQ (perf sampling rate, default 499).
# Run it under the exclusive bench lock: flock -x /work/bench.lock bench/profile/s8-profile.sh …
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
name=$1
chats=$2
shift 2
# shellcheck source=bench/start-stack.sh
. "$ROOT/bench/start-stack.sh"
bench_args s8-profile.sh --no-build
bench_binaries
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
W=/tmp/streamline-prof
mkdir -p "$W"
start_stack
start_s8_stack
perf record -F "${FREQ:-499}" -e cpu-clock --call-graph dwarf,16384 -p "$ai8_pid,$fo_pid" \
  -o "$W/$name.perf" >"$W/$name.perf.log" 2>&1 &
perf_pid=$!
sleep 1
"$BIN_DIR/loadgen" run --scenario s8 \
  --s8-gateway-url "ws://127.0.0.1:$gw8_port/ws" --s8-ai-url "http://127.0.0.1:$ai8_port" \
  --s8-pid "gateway=$gw8_pid" --s8-pid "ai-service=$ai8_pid" --s8-pid "redis=$redis_pid" \
  --s8-pid "fake-openai=$fo_pid" \
  --s3-start "$chats" --s3-max "$chats" --s3-refine-steps 0 \
  --out "$W/$name.json" "$@"
kill -INT "$perf_pid"
wait "$perf_pid" 2>/dev/null || true
check_alive
echo "s8-profile: $W/$name.json, $W/$name.perf" >&2
