#!/usr/bin/env bash
# Starts redis + ai-service + gateway on fixed loopback ports and runs `loadgen run` with the
# given arguments; PERF=1 records a perf profile (cpu-clock, frame pointers) of the three
# services meanwhile (PERF_G: perf's call-graph option, default -g, frame pointers; e.g.
# PERF_G="--call-graph dwarf,16384" for the normal release build); GWENV="K=V …" adds environment to the gateway (e.g. an LD_PRELOAD), AIENV
# to the ai-service.
#   bench/profile/stack.sh NAME --scenario s2            → /tmp/streamline-prof/NAME.json
#   PERF=1 bench/profile/stack.sh NAME --scenario s2     → also NAME.perf;
#   python3 bench/profile/incl.py /tmp/streamline-prof/NAME.perf   (share by component; inclusive.py: by function)
set -eu
cd "$(dirname "$0")/../.."
name=$1; shift
R=${BIN_DIR:-$PWD/target/release}
W=/tmp/streamline-prof; mkdir -p $W
ulimit -n "$(ulimit -Hn)"
redis-server --port 23999 --save '' --appendonly no --daemonize no --logfile $W/redis.log &
RP=$!
sleep 0.5
env ${AIENV:-X=1} AI_ADDR=127.0.0.1:23998 REDIS_URL=redis://127.0.0.1:23999 SHUTDOWN_TIMEOUT=2s $R/ai-service > $W/ai.log 2>&1 &
AP=$!
env ${GWENV:-X=1} GATEWAY_ADDR=127.0.0.1:23997 REDIS_URL=redis://127.0.0.1:23999 AI_SERVICE_URL=http://127.0.0.1:23998 SHUTDOWN_TIMEOUT=2s \
  $R/gateway > $W/gw.log 2>&1 &
GP=$!
for i in $(seq 1 300); do curl -fs -o /dev/null http://127.0.0.1:23997/readyz && curl -fs -o /dev/null http://127.0.0.1:23998/readyz && break; sleep 0.1; done
if [ "${PERF:-0}" = 1 ]; then
  perf record -F ${PERF_F:-499} -e cpu-clock ${PERF_G:--g} -p $GP,$AP,$RP -o $W/$name.perf > $W/perf.log 2>&1 &
  PP=$!
fi
$R/loadgen run --gateway-url ws://127.0.0.1:23997/ws --ai-url http://127.0.0.1:23998 --redis-port 23999 \
  --pid gateway=$GP --pid ai-service=$AP --pid redis=$RP --out $W/$name.json "$@" || true
if [ "${PERF:-0}" = 1 ]; then kill -INT $PP; wait $PP 2>/dev/null || true; fi
kill $GP $AP; sleep 2.5; kill $RP; wait 2>/dev/null || true
echo "results: $W/$name.json"
