#!/usr/bin/env bash
# Heap profile of the gateway holding N idle connections (valgrind massif), then the
# per-allocation-site difference between the plateau with connections and after they closed:
#   bench/profile/massif-s1.sh            (N=2000; writes /tmp/streamline-prof/massif.out)
#   python3 bench/profile/massif_diff.py /tmp/streamline-prof/massif.out BEFORE AFTER [DEPTH]
# (snapshot numbers: pick a detailed snapshot after the connections closed as BEFORE and one on
# the plateau as AFTER; `grep -n heap_tree=detailed` lists them.)
set -eu
cd "$(dirname "$0")/../.."
R=${BIN_DIR:-$PWD/target/release}
W=/tmp/streamline-prof; mkdir -p $W
ulimit -n "$(ulimit -Hn)"
redis-server --port 23999 --save '' --appendonly no --daemonize no --logfile $W/redis.log &
RP=$!
sleep 0.5
AI_ADDR=127.0.0.1:23998 REDIS_URL=redis://127.0.0.1:23999 $R/ai-service > $W/ai.log 2>&1 &
AP=$!
GATEWAY_ADDR=127.0.0.1:23997 REDIS_URL=redis://127.0.0.1:23999 AI_SERVICE_URL=http://127.0.0.1:23998 SHUTDOWN_TIMEOUT=2s \
  valgrind --tool=massif --threshold=0.5 --massif-out-file=$W/massif.out $R/gateway > $W/gw.log 2>&1 &
GP=$!
for i in $(seq 1 300); do curl -fs -o /dev/null http://127.0.0.1:23997/readyz && break; sleep 0.2; done
$R/loadgen run --gateway-url ws://127.0.0.1:23997/ws --ai-url http://127.0.0.1:23998 --pid gateway=$GP \
  --scenario s1 --s1-conns ${N:-2000} --s1-hold-secs 5 --connect-concurrency 32 --out $W/s1-massif.json
kill $GP; sleep 3; kill $AP $RP; wait || true
ms_print $W/massif.out > $W/massif.txt
echo "massif: $W/massif.out ($W/massif.txt)"
