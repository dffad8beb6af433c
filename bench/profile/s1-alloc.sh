#!/usr/bin/env bash
# S1 (19,000 idle connections, 10 s hold) with the gateway under different allocators, to see
# whether the per-connection RSS is allocator slack (it is not: all four land at 17.8–18.1 KB).
#   bench/profile/s1-alloc.sh      (needs libjemalloc2 and libmimalloc2.0 from Debian)
set -eu
cd "$(dirname "$0")/../.."
L=/usr/lib/x86_64-linux-gnu
for v in "glibc X=1" "arena2 MALLOC_ARENA_MAX=2" "jemalloc LD_PRELOAD=$L/libjemalloc.so.2" "mimalloc LD_PRELOAD=$L/libmimalloc.so.2"; do
  set -- $v
  GWENV="$2" bench/profile/stack.sh "s1-$1" --scenario s1 --s1-hold-secs 10 >/dev/null 2>&1
  python3 -c "import json; s=json.load(open('/tmp/streamline-prof/s1-$1.json'))['scenarios']['s1']; print('$1', s['connected'], 'conns', s['gateway_rss_per_conn_kb'], 'KB/conn')"
done
