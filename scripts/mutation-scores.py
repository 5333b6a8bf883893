#!/usr/bin/env python3
# Scores of one Stryker JSON report (run with --disable-bail) by which tests are counted: the old unit tests, the
# unit tests added for issue 13, the simulator. Usage: python3 scripts/mutation-scores.py src/TwoPhase.Protocol/StrykerOutput/<run>/reports/mutation-report.json
import json,sys,collections
r=json.load(open(sys.argv[1]))
names={}
for f,d in r.get('testFiles',{}).items():
    for t in d['tests']:
        names[t['id']]=t['name']
def kind(tid):
    n=names.get(tid,tid)
    if 'SimulationTests' in n: return 'sim'
    if any(c in n for c in ('PhaseTwoRedriveTests','PhaseTwoSendTests','CoordinatorContractTests')): return 'new'
    return 'old'
sets={'unit before (old unit tests)':{'old'},'unit after (old + new unit tests)':{'old','new'},'with simulation, before new tests':{'old','sim'},'with simulation, after (everything)':{'old','new','sim'},'simulation alone':{'sim'}}
res=collections.defaultdict(lambda:[0,0])
perfile=collections.defaultdict(lambda:collections.defaultdict(lambda:[0,0]))
surv=[]
for f,d in r['files'].items():
    fn=f.split('TwoPhase.Protocol/')[-1]
    src=d['source'].split('\n')
    for m in d['mutants']:
        st=m['status']
        if st not in ('Killed','Survived','Timeout','NoCoverage'): continue
        kb={kind(t) for t in (m.get('killedBy') or [])}
        cb={kind(t) for t in (m.get('coveredBy') or [])}
        for label,s in sets.items():
            if st=='Killed': det=bool(kb & s)
            elif st=='Timeout': det=bool(cb & s) if cb else True
            else: det=False
            res[label][0]+=det; res[label][1]+=1
            perfile[label][fn][0]+=det; perfile[label][fn][1]+=1
        if st in('Survived','NoCoverage'):
            l=m['location']['start']['line']
            surv.append(f"{fn}:{l} [{st}] {m['mutatorName']}: {m.get('replacement','')[:80]!r} | {src[l-1].strip()[:90]}")
for label,(k,t) in res.items():
    print(f"{label}: {k}/{t} = {100*k/t:.1f}%  ", '; '.join(f"{fn} {a}/{b}" for fn,(a,b) in sorted(perfile[label].items())))
print('\n'.join(surv))
