#!/usr/bin/env bash
# A/B of TCP_NODELAY on the gateway's accepted sockets without touching its code: an
# LD_PRELOAD shim (nodelay.c) sets it after accept4(). Runs S2 and S4 without, then with it.
set -eu
cd "$(dirname "$0")/../.."
gcc -shared -fPIC -O2 -o /tmp/streamline-prof-nodelay.so bench/profile/nodelay.c -ldl
bench/profile/stack.sh ab-base --scenario s2,s4 >/dev/null 2>&1
GWENV="LD_PRELOAD=/tmp/streamline-prof-nodelay.so" bench/profile/stack.sh ab-nodelay --scenario s2,s4 >/dev/null 2>&1
for n in ab-base ab-nodelay; do
  python3 - "$n" <<'PY'
import json,sys
n=sys.argv[1]; d=json.load(open(f'/tmp/streamline-prof/{n}.json'))['scenarios']
s2=d['s2']['latency']; s4=d['s4']
late=s4['cancel_latency_sent_1s_or_later_after_ack']
print(f"{n}: S2 p99 {s2['p99_ms']} ms (p99.9 {s2['p999_ms']}); S4 p99 {s4['cancel_latency']['p99_ms']} ms, cancels sent >=1 s after ack p99 {late['p99_ms']} max {late['max_ms']} ms")
PY
done
