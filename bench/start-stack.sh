# Sourced by bench/run.sh and bench/soak.sh (not run by itself), from the repository root:
# their common arguments, binaries, and the stack they measure. A private redis-server (no
# persistence), the ai-service and the gateway run as separate processes on free loopback
# ports and are stopped at exit (the last lines of their logs are printed when the run failed,
# or always with KEEP_LOGS=1).
#
#   bench_args NAME "$@"   --smoke, --no-build, -- ARGS… → smoke, build, extra
#   bench_binaries         builds (unless --no-build) and checks loadgen, gateway, ai-service,
#                          fake-openai and redis-server; sets BIN_DIR, RESULTS_DIR, REDIS_SERVER
#   start_stack            AI_ENV: an array of extra KEY=VALUE for the ai-service (e.g.
#                          STREAM_TTL=60s); sets redis_port redis_pid ai_port ai_pid gw_port
#                          gw_pid, and pids (all three); work is the folder of their logs
#   start_s8_stack         S8's second stack on the same Redis: a fake-openai process (the
#                          test kit's fast OpenAI-compatible server, one runtime thread), an
#                          ai-service with PROVIDER=openai pointing at it, and a gateway in
#                          front of that ai-service. A second pair rather than a restart of the
#                          first, so S3 and S8 of one run share the Redis and its baseline and
#                          nothing restarts between scenarios; the pair idles while the other
#                          scenarios run. The prompts' `!demo tokens=N rate=R` line steers
#                          fake-openai as it steers the demo model. Sets fo_port fo_pid ai8_port
#                          ai8_pid gw8_port gw8_pid (added to pids)
#   start_floor            S3's floor: `loadgen floor-server` (paced chunk frames, nothing else
#                          per token; loadgen/src/floor.rs), which S3 searches after the stack.
#                          Sets floor_port floor_pid (added to pids)
#   check_alive            fails the run if a service died meanwhile

bench_args() {
  local name=$1
  shift
  smoke=0
  build=1
  extra=()
  while [ $# -gt 0 ]; do
    case "$1" in
      --smoke) smoke=1 ;;
      --no-build) build=0 ;;
      --) shift; extra=("$@"); break ;;
      *) echo "$name: unknown argument $1" >&2; exit 2 ;;
    esac
    shift
  done
}

bench_binaries() {
  BIN_DIR=${BIN_DIR:-$ROOT/target/release}
  RESULTS_DIR=${RESULTS_DIR:-$ROOT/bench/results}
  REDIS_SERVER=${REDIS_SERVER:-redis-server}
  if [ "$build" = 1 ]; then
    echo "bench: cargo build --release -p loadgen -p gateway -p ai-service -p test-support --bins" >&2
    cargo build --release -p loadgen -p gateway -p ai-service -p test-support --bins
    BIN_DIR=$ROOT/target/release
  fi
  for b in loadgen gateway ai-service fake-openai; do
    [ -x "$BIN_DIR/$b" ] || { echo "bench: $BIN_DIR/$b is missing (build it, or set BIN_DIR)" >&2; exit 2; }
  done
  command -v "$REDIS_SERVER" >/dev/null || { echo "bench: $REDIS_SERVER not found" >&2; exit 2; }
  mkdir -p "$RESULTS_DIR"
}

pids=()
work=$(mktemp -d "${TMPDIR:-/tmp}/streamline-bench.XXXXXX")

cleanup() {
  local rc=$?
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  if { [ "$rc" != 0 ] || [ "${KEEP_LOGS:-0}" = 1 ]; } && ls "$work"/*.log >/dev/null 2>&1; then
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

start_stack() {
  start_redis_standalone
  redis_port=${shard_ports[0]}
  redis_pid=${shard_pids[0]}
  start_ai_service main "$redis_url"
  start_gateway main "$redis_url" "$ai_port"
}

# A port that accepts TCP connections (a process just started on it).
wait_tcp() {
  local port=$1 name=$2
  for _ in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    sleep 0.05
  done
  echo "bench: $name did not listen on :$port" >&2
  return 1
}

start_s8_stack() {
  fo_port=$(free_port)
  "$BIN_DIR/fake-openai" --addr "127.0.0.1:$fo_port" --threads 1 >"$work/fake-openai.log" 2>&1 &
  fo_pid=$!
  pids+=("$fo_pid")
  wait_tcp "$fo_port" fake-openai
  # The launchers set ai_* and gw_*: keep the main stack's, and name the S8 pair's *8_*.
  local main=("$ai_port" "$ai_admin_port" "$ai_pid" "$gw_port" "$gw_admin_port" "$gw_pid")
  start_ai_service s8 "$redis_url" PROVIDER=openai \
    OPENAI_BASE_URL="http://127.0.0.1:$fo_port/v1" OPENAI_MODEL=fake-model
  start_gateway s8 "$redis_url" "$ai_port"
  ai8_port=$ai_port ai8_admin_port=$ai_admin_port ai8_pid=$ai_pid
  gw8_port=$gw_port gw8_admin_port=$gw_admin_port gw8_pid=$gw_pid
  ai_port=${main[0]} ai_admin_port=${main[1]} ai_pid=${main[2]}
  gw_port=${main[3]} gw_admin_port=${main[4]} gw_pid=${main[5]}
}

start_floor() {
  floor_port=$(free_port)
  "$BIN_DIR/loadgen" floor-server --addr "127.0.0.1:$floor_port" >"$work/floor-server.log" 2>&1 &
  floor_pid=$!
  pids+=("$floor_pid")
  wait_tcp "$floor_port" "the floor server"
}

# Fails the run if a service died while loadgen ran (the S8 stack too, when it was started).
check_alive() {
  for pid in "$gw_pid" "$ai_pid" "$redis_pid" ${fo_pid:-} ${ai8_pid:-} ${gw8_pid:-} ${floor_pid:-}; do
    kill -0 "$pid" 2>/dev/null || { echo "bench: a service (pid $pid) died during the run" >&2; exit 1; }
  done
}

# Scale-out layouts (bench/scale.sh): several gateways and ai-services on one redis-server or
# on a local Redis Cluster. Each process joins `pids` (stopped at exit, or by stop_stack).
#
#   start_redis_standalone   one redis-server; sets redis_url, shard_ports and shard_pids
#   start_redis_cluster N    N cluster-enabled masters, no replicas (`redis-cli --cluster
#                            create … --cluster-replicas 0`), waits for cluster_state:ok on
#                            each; sets redis_url (redis-cluster://…?node=…), shard_ports,
#                            shard_pids
#   start_ai_service NAME URL [K=V…]  an ai-service on REDIS_URL=URL (AI_ENV as in start_stack,
#                            then K=V…; log ai-service-NAME.log); sets ai_port, ai_admin_port,
#                            ai_pid. start_stack and start_s8_stack use it too.
#   start_gateway NAME URL AI        a gateway on REDIS_URL=URL, AI_SERVICE_URL
#                            http://127.0.0.1:AI; sets gw_port, gw_admin_port, gw_pid
#   stop_stack               stops every process in pids (for the next layout)

wait_redis() {
  local port=$1
  for _ in $(seq 1 100); do
    if [ "$(redis-cli -p "$port" ping 2>/dev/null)" = PONG ]; then return 0; fi
    sleep 0.05
  done
  echo "bench: redis on :$port did not answer PING" >&2
  return 1
}

start_redis_standalone() {
  local port
  port=$(free_port)
  "$REDIS_SERVER" --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
    --maxclients 10000 --daemonize no --logfile "$work/redis-$port.log" &
  pids+=("$!")
  shard_ports=("$port")
  shard_pids=("$!")
  wait_redis "$port"
  redis_url="redis://127.0.0.1:$port"
}

start_redis_cluster() {
  local n=$1 i port nodes=() ok
  shard_ports=()
  shard_pids=()
  for i in $(seq 1 "$n"); do
    port=$(free_port)
    # The bus port defaults to port + 10000, which may be taken: give it a free one.
    "$REDIS_SERVER" --port "$port" --cluster-port "$(free_port)" --bind 127.0.0.1 \
      --cluster-enabled yes --cluster-config-file "nodes-$port.conf" --dir "$work" \
      --save '' --appendonly no --maxclients 10000 --daemonize no \
      --logfile "$work/redis-$port.log" &
    pids+=("$!")
    shard_pids+=("$!")
    shard_ports+=("$port")
    nodes+=("127.0.0.1:$port")
  done
  for port in "${shard_ports[@]}"; do wait_redis "$port"; done
  redis-cli --cluster create "${nodes[@]}" --cluster-replicas 0 --cluster-yes \
    >"$work/cluster-create.log" 2>&1 || { cat "$work/cluster-create.log" >&2; return 1; }
  for _ in $(seq 1 200); do
    ok=0
    for port in "${shard_ports[@]}"; do
      redis-cli -p "$port" cluster info 2>/dev/null | grep -q '^cluster_state:ok' && ok=$((ok + 1))
    done
    [ "$ok" = "$n" ] && break
    sleep 0.05
  done
  [ "$ok" = "$n" ] || { echo "bench: the cluster on ${shard_ports[*]} did not become ok" >&2; return 1; }
  redis_url="redis-cluster://${nodes[0]}"
  for i in $(seq 1 $((n - 1))); do
    redis_url="$redis_url$([ "$i" = 1 ] && echo '?' || echo '&')node=${nodes[$i]}"
  done
}

start_ai_service() {
  local name=$1 url=$2
  shift 2
  ai_port=$(free_port)
  ai_admin_port=$(free_port)
  env "${AI_ENV[@]+"${AI_ENV[@]}"}" "$@" AI_ADDR="127.0.0.1:$ai_port" \
    ADMIN_ADDR="127.0.0.1:$ai_admin_port" SHUTDOWN_TIMEOUT=2s REDIS_URL="$url" \
    "$BIN_DIR/ai-service" >"$work/ai-service-$name.log" 2>&1 &
  ai_pid=$!
  pids+=("$ai_pid")
  wait_http "http://127.0.0.1:$ai_admin_port/readyz" "ai-service $name"
}

start_gateway() {
  local name=$1 url=$2 ai=$3
  gw_port=$(free_port)
  gw_admin_port=$(free_port)
  GATEWAY_ADDR="127.0.0.1:$gw_port" ADMIN_ADDR="127.0.0.1:$gw_admin_port" SHUTDOWN_TIMEOUT=2s \
    REDIS_URL="$url" AI_SERVICE_URL="http://127.0.0.1:$ai" \
    "$BIN_DIR/gateway" >"$work/gateway-$name.log" 2>&1 &
  gw_pid=$!
  pids+=("$gw_pid")
  wait_http "http://127.0.0.1:$gw_admin_port/readyz" "gateway $name"
}

stop_stack() {
  local pid
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  pids=()
}
