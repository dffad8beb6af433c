# Share of each process's samples by component (categories below), from a perf.data recorded by
# stack.sh (PERF=1). The categories suit stacks without frame pointers; with fp-profile.sh's
# complete stacks use inclusive.py. Usage: python3 bench/profile/incl.py FILE.perf
import re
import sys

from perfsamples import by_pid, role

pids = by_pid(sys.argv[1])
total = sum(len(v) for v in pids.values())
cats=[(n,re.compile(p)) for n,p in [
 ('syscall write/sendto',r'sys_sendto|sys_write|sys_writev|ksys_write'),
 ('syscall read/recv',r'sys_recvfrom|sys_read|ksys_read'),
 ('epoll/futex/sched',r'sys_epoll_wait|sys_futex|schedule|finish_task_switch'),
 ('serde_json',r'serde_json|serde_core'),
 ('fred (redis client)',r'fred::'),
 ('store::',r'store::'),
 ('actix ws/http',r'actix_ws|actix_http'),
 ('gateway sink',r'gateway::sink'),
 ('gateway streams/hub',r'gateway::streams|gateway::hub'),
 ('ai generation',r'ai_service::generation'),
 ('demo provider',r'demo::'),
 ('malloc/free',r'^(malloc|_int_malloc|_int_free|cfree|free|realloc|_int_realloc|malloc_consolidate|unlink_chunk)'),
 ('metrics',r'^metrics|metrics_util|metrics_exporter'),
 ('tracing',r'tracing'),
 ('tokio timers',r'tokio::runtime::time'),
 ('hyper/reqwest',r'hyper|reqwest'),
]]
for pid, samples in sorted(pids.items(), key=lambda kv: -len(kv[1])):
    print(f'== {role(samples)} {len(samples)} samples ({100 * len(samples) / total:.1f}%)')
    for name, rx in cats:
        n = sum(1 for s in samples if any(rx.search(sym) for sym, _ in s))
        if n:
            print(f'   {100 * n / len(samples):5.1f}%  {name}')
