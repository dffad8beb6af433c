#!/usr/bin/env bash
# The scale-out measurement (issue 18, deliverable 5): the same offered load, an S2-like wave
# (SCALE_CHATS chats, each `!demo` at SCALE_RATE tokens/s for SCALE_SECS seconds, on its own
# connection), against each layout in turn, every process started fresh for its layout:
#
#   single    one gateway + one ai-service on one redis-server
#   cluster   two gateways + two ai-services on a local Redis Cluster of SCALE_SHARDS masters
#             (no replicas); gateway i calls ai-service i, and loadgen spreads its connections
#             over the gateways round robin (`--gateway-url` given twice)
#   cluster1  (only when named in SCALE_LAYOUTS) one gateway + one ai-service on the Cluster:
#             separates what the Cluster costs from what a second pair of processes costs
#
# Per layout: a short warm-up wave (not measured), `CONFIG RESETSTAT` on every shard, the
# measured wave (`loadgen run --scenario s2`, CPU of every process via `--pid NAME=PID`,
# /proc/net/sockstat sampled every 0.5 s), then each shard's `INFO commandstats`, `DBSIZE`
# and `INFO memory`. `loadgen scale-report` turns the folders into bench/results/scale-<stamp>.json
# and .md: delivered tokens/s, p50/p99, CPU % and µs of CPU per delivered token for each
# process and each role, and each shard's share of Redis's CPU and commands.
#
#   bench/scale.sh               both layouts at 300 chats × 50 tokens/s for 15 s (~2 min)
#   bench/scale.sh --smoke       5 chats, a second per layout (checks the script; CI-sized);
#                                writes bench/results/scale-smoke-<stamp>.*
#   bench/scale.sh --no-build    use the binaries already in $BIN_DIR
#   bench/scale.sh -- ARGS…      extra `loadgen run` arguments, for every layout
#
# Environment: SCALE_CHATS (300), SCALE_RATE (50), SCALE_SECS (15), SCALE_SHARDS (3),
# SCALE_LAYOUTS ("single cluster"), BIN_DIR (default target/release), RESULTS_DIR (default
# bench/results), REDIS_SERVER (default from PATH; redis-cli must be on PATH too),
# KEEP_LOGS=1 to keep the services' logs and the layouts' folders.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

# shellcheck source=bench/start-stack.sh
. "$ROOT/bench/start-stack.sh"
bench_args bench/scale.sh "$@"
bench_binaries
command -v redis-cli >/dev/null || { echo "bench: redis-cli not found" >&2; exit 2; }
SCALE_CHATS=${SCALE_CHATS:-300}
SCALE_RATE=${SCALE_RATE:-50}
SCALE_SECS=${SCALE_SECS:-15}
SCALE_SHARDS=${SCALE_SHARDS:-3}
SCALE_LAYOUTS=${SCALE_LAYOUTS:-single cluster}
for v in SCALE_CHATS SCALE_RATE SCALE_SECS SCALE_SHARDS; do
  [[ ${!v} =~ ^[1-9][0-9]*$ ]] || { echo "bench/scale.sh: $v must be a positive integer" >&2; exit 2; }
done
for l in $SCALE_LAYOUTS; do
  case "$l" in
    single | cluster | cluster1) ;;
    *) echo "bench/scale.sh: unknown layout $l in SCALE_LAYOUTS (single, cluster, cluster1)" >&2; exit 2 ;;
  esac
done

ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

stamp=$(date -u +%Y%m%dT%H%M%SZ)
if [ "$smoke" = 1 ]; then name="scale-smoke-$stamp"; else name="scale-$stamp"; fi
cmd="SCALE_CHATS=$SCALE_CHATS SCALE_RATE=$SCALE_RATE SCALE_SECS=$SCALE_SECS SCALE_SHARDS=$SCALE_SHARDS SCALE_LAYOUTS=\"$SCALE_LAYOUTS\" bench/scale.sh"
[ "$smoke" = 1 ] && cmd="$cmd --smoke"
[ ${#extra[@]} -gt 0 ] && cmd="$cmd -- ${extra[*]}"

wave_args=(--scenario s2 --s2-chats "$SCALE_CHATS" --s2-rate "$SCALE_RATE"
  --s2-tokens $((SCALE_RATE * SCALE_SECS)))
smoke_flag=()
[ "$smoke" = 1 ] && smoke_flag=(--smoke)

# run_layout NAME GATEWAYS REDIS: starts the layout, measures it into $work/NAME, stops it.
run_layout() {
  local lname=$1 n=$2 redis=$3 dir=$work/$1 i j port sampler
  mkdir -p "$dir"
  if [ "$redis" = cluster ]; then start_redis_cluster "$SCALE_SHARDS"; else start_redis_standalone; fi
  local urls=() procs=() first_ai=""
  for i in $(seq 1 "$n"); do
    start_ai_service "$i" "$redis_url" REPLICA_ID="ai-$i"
    [ -n "$first_ai" ] || first_ai=$ai_port
    start_gateway "$i" "$redis_url" "$ai_port"
    urls+=(--gateway-url "ws://127.0.0.1:$gw_port/ws")
    procs+=(--pid "gateway-$i=$gw_pid" --pid "ai-service-$i=$ai_pid")
  done
  local shards_json=""
  for j in "${!shard_ports[@]}"; do
    procs+=(--pid "redis-$((j + 1))=${shard_pids[$j]}")
    shards_json="$shards_json${shards_json:+, }{\"name\": \"redis-$((j + 1))\", \"port\": ${shard_ports[$j]}}"
  done
  printf '{"gateways": %s, "ai_services": %s, "redis": "%s", "redis_url": "%s", "shards": [%s]}\n' \
    "$n" "$n" "$redis" "$redis_url" "$shards_json" >"$dir/layout.json"
  echo "scale: $lname: $n gateway(s) + $n ai-service(s) on $redis_url (${urls[*]})" >&2

  if [ "$smoke" = 0 ]; then
    # Warm-up: connections, script loading on every shard, allocator pools; not measured.
    "$BIN_DIR/loadgen" run --smoke --scenario s2 "${urls[@]}" --ai-url "http://127.0.0.1:$first_ai" \
      --out "$dir/warmup.json" >/dev/null
  fi
  for port in "${shard_ports[@]}"; do redis-cli -p "$port" config resetstat >/dev/null; done
  (while :; do cat /proc/net/sockstat; sleep 0.5; done) >"$dir/sockstat.txt" 2>/dev/null &
  sampler=$!
  pids+=("$sampler")
  "$BIN_DIR/loadgen" run "${wave_args[@]}" "${urls[@]}" "${procs[@]}" \
    --ai-url "http://127.0.0.1:$first_ai" --redis-port "${shard_ports[0]}" \
    --command "$cmd" --out "$dir/loadgen.json" "${smoke_flag[@]}" "${extra[@]}"
  kill "$sampler" 2>/dev/null || true
  for j in "${!shard_ports[@]}"; do
    redis-cli -p "${shard_ports[$j]}" info commandstats >"$dir/redis-$((j + 1)).commandstats"
    redis-cli -p "${shard_ports[$j]}" dbsize >"$dir/redis-$((j + 1)).dbsize"
    redis-cli -p "${shard_ports[$j]}" info memory >"$dir/redis-$((j + 1)).memory"
  done
  for pid in "${pids[@]}"; do
    [ "$pid" = "$sampler" ] && continue
    kill -0 "$pid" 2>/dev/null || { echo "scale: $lname: a process (pid $pid) died during the run" >&2; exit 1; }
  done
  stop_stack
}

layout_args=()
for l in $SCALE_LAYOUTS; do
  case "$l" in
    single) run_layout single 1 standalone ;;
    cluster) run_layout cluster 2 cluster ;;
    cluster1) run_layout cluster1 1 cluster ;;
  esac
  layout_args+=(--layout "$l=$work/$l")
done

"$BIN_DIR/loadgen" scale-report "${layout_args[@]}" --command "$cmd" \
  --output-json "$RESULTS_DIR/$name.json" --output-md "$RESULTS_DIR/$name.md"
echo "scale: results in $RESULTS_DIR/$name.json and $RESULTS_DIR/$name.md" >&2
