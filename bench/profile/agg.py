import sys,re,subprocess
from collections import defaultdict,Counter
# perf script output: header line "comm pid/tid ..." then stack frames "\t addr sym (dso)"
f=sys.argv[1]; top=int(sys.argv[2]) if len(sys.argv)>2 else 25
out=subprocess.run(['perf','script','-i',f,'-F','pid,tid,ip,sym,dso'],capture_output=True,text=True).stdout
samples=[]; cur=None
for line in out.split('\n'):
    if not line.strip():
        if cur: samples.append(cur); cur=None
        continue
    if not line.startswith('\t') and not line.startswith(' '):
        m=re.match(r'\s*(\d+)/(\d+)',line)
        cur={'pid':int(m.group(1)),'frames':[]}
    else:
        m=re.match(r'\s*([0-9a-f]+)\s+(.*?)\s+\((.*)\)\s*$',line)
        if m and cur is not None: cur['frames'].append((m.group(2),m.group(3).split('/')[-1]))
if cur: samples.append(cur)
bypid=defaultdict(list)
for s in samples: bypid[s['pid']].append(s)
tot=len(samples)
for pid,ss in sorted(bypid.items(),key=lambda x:-len(x[1])):
    dsos=Counter(fr[1] for s in ss for fr in s['frames'][:1])
    role=[d for d,_ in dsos.most_common() if d in ('gateway','ai-service','redis-check-rdb','redis-server')]
    print(f'== pid {pid} {role[:1]} {len(ss)} samples = {100*len(ss)/tot:.1f}% of recorded')
    selfc=Counter()
    incl=Counter()
    for s in ss:
        if s['frames']: selfc[s['frames'][0][0][:100]]+=1
        seen=set()
        for sym,d in s['frames']:
            k=sym[:100]
            if k not in seen: incl[k]+=1; seen.add(k)
    print('  self:')
    for k,v in selfc.most_common(top): print(f'   {100*v/len(ss):5.1f}% {k}')
    if len(sys.argv)>3:
        print('  inclusive (matching %s):'%sys.argv[3])
        for k,v in incl.most_common(400):
            if re.search(sys.argv[3],k): print(f'   {100*v/len(ss):5.1f}% {k}')
