import re,sys
from collections import defaultdict
lines=open(sys.argv[1]).read().split('\n')
snaps={}
i=0
cur=None
while i<len(lines):
    l=lines[i]
    if l.startswith('snapshot='):
        cur=int(l.split('=')[1]); snaps[cur]={'tree':None}
    elif l.startswith('mem_heap_B=') and cur is not None:
        snaps[cur]['heap']=int(l.split('=')[1])
    elif l.startswith('heap_tree=detailed') or l.startswith('heap_tree=peak'):
        # parse tree
        i+=1
        stack=[]
        root=None
        def parse(i):
            l=lines[i]
            m=re.match(r'(\s*)n(\d+): (\d+) (.*)',l)
            ind=len(m.group(1)); n=int(m.group(2)); b=int(m.group(3)); d=m.group(4)
            node={'b':b,'d':d,'c':[]}
            i+=1
            for _ in range(n):
                c,i=parse(i); node['c'].append(c)
            return node,i
        root,i=parse(i)
        snaps[cur]['tree']=root
        continue
    i+=1
skip=re.compile(r'alloc/src|core/src|UnknownInlinedFun \(library|hashbrown|raw_vec|__rust|malloc|realloc|calloc|std/src|alloc::|<alloc|core::')
def label(node,depth=0,acc=None):
    # returns list of (bytes,label)
    out=[]
    def walk(n,frames):
        d=n['d']
        m=re.search(r': (.*)$',d)
        fn=m.group(1) if m else d
        meaningful = not skip.search(d) and 'heap allocation' not in d
        f2=frames+([fn[:110]] if meaningful else [])
        if len(f2)>=int(sys.argv[4] if len(sys.argv)>4 else 3) or not n['c']:
            out.append((n['b'],' <- '.join(f2) or fn[:100]))
            return
        s=sum(c['b'] for c in n['c'])
        for c in n['c']: walk(c,f2)
        if n['b']-s>0: out.append((n['b']-s,' <- '.join(f2)+' (other)'))
    for c in node['c']: walk(c,[])
    agg=defaultdict(int)
    for b,lb in out: agg[lb]+=b
    return agg
a=int(sys.argv[2]); b=int(sys.argv[3])
A=label(snaps[a]['tree']); B=label(snaps[b]['tree'])
print('heap',snaps[a]['heap'],'->',snaps[b]['heap'],'diff',snaps[b]['heap']-snaps[a]['heap'])
d={k:B.get(k,0)-A.get(k,0) for k in set(A)|set(B)}
for k,v in sorted(d.items(),key=lambda x:-x[1])[:25]:
    print(f'{v:>12,} {k}')
