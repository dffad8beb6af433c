# Inclusive and self share of each function, per process, from a perf.data recorded with call
# graphs (stack.sh PERF=1; with fp-profile.sh's frame-pointer binaries the Rust frames are
# complete). Usage: python3 bench/profile/inclusive.py FILE.perf [TOP] [REGEX]
import re
import subprocess
import sys
from collections import Counter, defaultdict

f = sys.argv[1]
top = int(sys.argv[2]) if len(sys.argv) > 2 else 40
only = re.compile(sys.argv[3]) if len(sys.argv) > 3 else None
out = subprocess.run(['perf', 'script', '-i', f, '-F', 'comm,pid,tid,ip,sym,dso'],
                     capture_output=True, text=True).stdout
by_pid = defaultdict(list)
for block in out.split('\n\n'):
    lines = block.strip('\n').split('\n')
    m = re.match(r'\s*(.*?)\s+(\d+)/(\d+)', lines[0]) if lines else None
    if not m:
        continue
    frames = []
    for line in lines[1:]:
        fm = re.match(r'\s*([0-9a-f]+)\s+(.*?)\s+\((.*)\)\s*$', line)
        if fm:
            frames.append((re.sub(r'::h[0-9a-f]{16}', '', fm.group(2))[:110], fm.group(3).split('/')[-1]))
    if frames:
        by_pid[m.group(2)].append(frames)
total = sum(len(v) for v in by_pid.values())
for pid, samples in sorted(by_pid.items(), key=lambda kv: -len(kv[1])):
    dsos = Counter(fr[1] for s in samples for fr in s)
    role = next((d for d, _ in dsos.most_common() if d in ('gateway', 'ai-service', 'redis-server', 'redis-check-rdb', 'loadgen')), '?')
    print(f'== pid {pid} ({role}): {len(samples)} samples, {100 * len(samples) / total:.1f}% of all')
    incl, selfc = Counter(), Counter()
    for s in samples:
        selfc[s[0][0]] += 1
        for sym in {fr[0] for fr in s}:
            incl[sym] += 1
    shown = 0
    for sym, n in incl.most_common():
        if only and not only.search(sym):
            continue
        print(f'  {100 * n / len(samples):5.1f}% incl {100 * selfc[sym] / len(samples):5.1f}% self  {sym}')
        shown += 1
        if shown >= top:
            break
