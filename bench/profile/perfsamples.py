# Reads a perf.data (recorded with call graphs, e.g. by stack.sh PERF=1) through `perf script`:
# the one parser behind incl.py and inclusive.py.
import re
import subprocess
from collections import Counter, defaultdict

ROLES = ('gateway', 'ai-service', 'redis-server', 'redis-check-rdb', 'loadgen', 'fake-openai')


def by_pid(path):
    """{pid: [sample, ...]}, each sample a list of (symbol, dso file name), innermost first."""
    out = subprocess.run(['perf', 'script', '-i', path, '-F', 'pid,tid,ip,sym,dso'],
                         capture_output=True, text=True).stdout
    samples = defaultdict(list)
    for block in out.split('\n\n'):
        lines = block.strip('\n').split('\n')
        head = re.match(r'\s*(\d+)/(\d+)', lines[0]) if lines else None
        if not head:
            continue
        frames = []
        for line in lines[1:]:
            m = re.match(r'\s*([0-9a-f]+)\s+(.*?)\s+\((.*)\)\s*$', line)
            if m:
                frames.append((re.sub(r'::h[0-9a-f]{16}', '', m.group(2)), m.group(3).split('/')[-1]))
        if frames:
            samples[head.group(1)].append(frames)
    return samples


def role(samples):
    """Which of our processes a pid's samples come from (by the binaries in its stacks)."""
    dsos = Counter(dso for s in samples for _, dso in s)
    return next((d for d, _ in dsos.most_common() if d in ROLES), '?')
