#!/bin/bash
# An experiment for issue 18 (see docs/failover-groundwork.md), after three-local-nodes.sh.
# $1: none | evict1 | evict2 ; kills n3's mariadbd, measures the longest gap between acknowledged writes on n1
mode=$1
uuid=$(mariadb -S /tmp/ev/n3/sock -Nse "show status like 'wsrep_gcomm_uuid'" | cut -f2)
python3 - "$mode" "$uuid" <<'PY'
import subprocess, time, sys, threading, os, signal
mode, uuid = sys.argv[1], sys.argv[2]
stamps=[]
stop=False
def writer():
    p=subprocess.Popen(["mariadb","-S","/tmp/ev/n1/sock","-N","--unbuffered"],stdin=subprocess.PIPE,stdout=subprocess.PIPE,text=True,bufsize=1)
    while not stop:
        p.stdin.write("insert into t.w (v) values (1); select 1;\n"); p.stdin.flush()
        p.stdout.readline(); stamps.append(time.monotonic())
    p.stdin.close()
t=threading.Thread(target=writer); t.start()
time.sleep(1.5)
pid=int(open("/tmp/ev/n3/pid").read())
k=time.monotonic(); os.kill(pid, signal.SIGKILL)
if mode!="none":
    socks=["/tmp/ev/n1/sock"]+(["/tmp/ev/n2/sock"] if mode=="evict2" else [])
    for s in socks:
        subprocess.Popen(["mariadb","-S",s,"-e",f"SET GLOBAL wsrep_provider_options='evs.evict={uuid}'"])
time.sleep(10); stop=True; t.join()
after=[s for s in stamps if s>k]
before=[s for s in stamps if s<=k]
seq=[before[-1]]+after; gap=max(b-a for a,b in zip(seq,seq[1:])) if after else None
print(f"{mode}: writes {len(stamps)}, longest gap after the kill {gap:.3f}s" if gap else f"{mode}: no write after kill")
PY
mariadb -S /tmp/ev/n1/sock -Nse "show status where variable_name in ('wsrep_cluster_size','wsrep_evs_evict_list')"
