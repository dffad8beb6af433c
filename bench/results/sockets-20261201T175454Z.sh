#!/usr/bin/env bash
# Kernel slab memory per idle TCP socket: /proc/meminfo Slab sampled every second while S1 holds
# N idle connections (both ends on loopback: 2 sockets per connection).
set -euo pipefail
cd /work/wt-scale
stamp=$(date -u +%Y%m%dT%H%M%SZ)
out=bench/results/sockets-$stamp.txt
N=${N:-10000}
{ echo "# bench: kernel slab per idle socket; N=$N; $(date -u)"; echo "# columns: unix_s Slab_kB SUnreclaim_kB sockstat-TCP-line"; } > "$out"
(while :; do echo "$(date +%s) $(awk '/^Slab:/{s=$2}/^SUnreclaim:/{u=$2}END{print s, u}' /proc/meminfo) $(grep TCP: /proc/net/sockstat)"; sleep 1; done) >> "$out" &
sampler=$!
RESULTS_DIR=/tmp/slab-results bench/run.sh --no-build -- --scenario s1 --s1-conns "$N" --s1-hold-secs 8
kill $sampler
mkdir -p bench/results
cp /tmp/slab-results/*.json "bench/results/sockets-$stamp-s1.json"
echo "$out"
