# Inclusive and self share of each function, per process, from a perf.data recorded with call
# graphs (stack.sh PERF=1; with fp-profile.sh's frame-pointer binaries the Rust frames are
# complete). Usage: python3 bench/profile/inclusive.py FILE.perf [TOP] [REGEX]
import re
import sys
from collections import Counter

from perfsamples import by_pid, role

top = int(sys.argv[2]) if len(sys.argv) > 2 else 40
only = re.compile(sys.argv[3]) if len(sys.argv) > 3 else None
pids = by_pid(sys.argv[1])
total = sum(len(v) for v in pids.values())
for pid, samples in sorted(pids.items(), key=lambda kv: -len(kv[1])):
    print(f'== pid {pid} ({role(samples)}): {len(samples)} samples, {100 * len(samples) / total:.1f}% of all')
    incl, selfc = Counter(), Counter()
    for s in samples:
        selfc[s[0][0][:110]] += 1
        for sym in {sym[:110] for sym, _ in s}:
            incl[sym] += 1
    shown = 0
    for sym, n in incl.most_common():
        if only and not only.search(sym):
            continue
        print(f'  {100 * n / len(samples):5.1f}% incl {100 * selfc[sym] / len(samples):5.1f}% self  {sym}')
        shown += 1
        if shown >= top:
            break
