import sys,re,subprocess
from collections import defaultdict,Counter
f=sys.argv[1]  # a perf.data recorded by stack.sh (PERF=1)
out=subprocess.run(['perf','script','-i',f,'-F','pid,tid,ip,sym,dso'],capture_output=True,text=True).stdout
samples=[]; cur=None
for line in out.split('\n'):
    if not line.strip():
        if cur: samples.append(cur); cur=None
        continue
    if not line.startswith('\t') and not line.startswith(' '):
        m=re.match(r'\s*(\d+)/(\d+)',line); cur={'pid':int(m.group(1)),'frames':[]}
    else:
        m=re.match(r'\s*([0-9a-f]+)\s+(.*?)\s+\((.*)\)\s*$',line)
        if m and cur is not None: cur['frames'].append((m.group(2),m.group(3).split('/')[-1]))
if cur: samples.append(cur)
bypid=defaultdict(list)
for s in samples: bypid[s['pid']].append(s)
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
for pid,ss in sorted(bypid.items(),key=lambda x:-len(x[1])):
    dsos=Counter(fr[1] for s in ss for fr in s['frames'])
    role=[d for d,_ in dsos.most_common() if d in ('gateway','ai-service','redis-check-rdb','redis-server')][:1]
    print(f'== {role} {len(ss)} samples ({100*len(ss)/len(samples):.1f}%)')
    for n,rx in cats:
        c=sum(1 for s in ss if any(rx.search(fr[0]) for fr in s['frames']))
        if c: print(f'   {100*c/len(ss):5.1f}%  {n}')
