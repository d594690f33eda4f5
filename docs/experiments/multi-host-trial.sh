#!/usr/bin/env bash
# A first trial of the recommended multi-host deployment (issue 19) on the three hosts of
# scripts/swarm-hosts.sh: global mode on hosts labelled galera=yes, each host's own
# galera-data volume. Forms the cluster, writes, loses host 2 (its container SIGKILLed,
# its disk kept) and brings it back, drains host 3 and makes it active again, kills all
# three hosts and starts them again, writing a row before each step and printing every
# node's rows after it, with the times.
#
#   scripts/swarm-hosts.sh up --image galera-init:test
#   bash docs/experiments/multi-host-trial.sh [IMAGE]
#   scripts/swarm-hosts.sh down
set -euo pipefail
cd "$(dirname "$0")/../.."
S=scripts/swarm-hosts.sh
image=${1:-galera-init:test}
sqlq() { # sqlq HOST STATEMENT: runs it in host HOST's db task; prints the rows
    local c
    c=$($S exec "$1" docker ps -q -f name=db. 2>/dev/null | head -1)
    [ -n "$c" ] || return 1
    $S exec "$1" docker exec "$c" mariadb -uroot -prootpass -N -e "$2" 2>/dev/null
}
state() { # "size status state" of host N's node, or nothing
    sqlq "$1" "select group_concat(variable_value order by variable_name separator ' ') from information_schema.global_status where variable_name in ('wsrep_cluster_size','wsrep_cluster_status','wsrep_local_state_comment')" || true
}
wait_all() { # wait_all N: until every host's node says N Primary Synced; prints seconds
    local t0=$SECONDS n ok
    while ((SECONDS - t0 < 300)); do
        ok=0
        for n in 1 2 3; do [ "$(state $n)" = "$1 Primary Synced" ] && ok=$((ok + 1)); done
        [ $ok = 3 ] && { echo $((SECONDS - t0)); return; }
        sleep 1
    done
    echo "timeout: $(state 1) / $(state 2) / $(state 3)" >&2
    return 1
}

for n in 1 2 3; do $S exec 1 docker node update --label-add galera=yes "host$n" >/dev/null; done
$S exec 1 docker network inspect dbnet >/dev/null 2>&1 ||
    $S exec 1 docker network create -d overlay --attachable dbnet >/dev/null
$S exec 1 docker service create -d --name db --mode global \
    --constraint node.labels.galera==yes --network dbnet --endpoint-mode dnsrr \
    --no-resolve-image --mount type=volume,source=galera-data,target=/var/lib/mysql \
    --stop-grace-period 2m --env DB_SERVICE_NAME=db --env MYSQL_ROOT_PASSWORD=rootpass \
    --env MYSQL_DATABASE=mytestdb --env MYSQL_USER=u --env MYSQL_PASSWORD=p \
    --env CLUSTER_SIZE=3 "$image" >/dev/null
echo "formed: 3 Synced across 3 hosts after $(wait_all 3) s"

sqlq 1 "create table mytestdb.t (id int primary key); insert into mytestdb.t values (1),(2),(3)"
$S kill 2
t0=$SECONDS
for n in 1 3; do
    until [ "$(state $n)" = "2 Primary Synced" ]; do
        ((SECONDS - t0 < 60)) || { echo "host $n: $(state $n)" >&2; exit 1; }
        sleep 0.5
    done
done
echo "host 2 lost: hosts 1 and 3 a Primary component of 2 after $((SECONDS - t0)) s"
sqlq 3 "insert into mytestdb.t values (4),(5)"
$S start 2
echo "host 2 back: 3 Synced after $(wait_all 3) s"
rows() { for n in 1 2 3; do echo "  host $n rows: $(sqlq $n 'select group_concat(id order by id) from mytestdb.t')"; done; }
rows

sqlq 1 "insert into mytestdb.t values (6)"
t0=$SECONDS
$S exec 1 docker node update --availability drain host3 >/dev/null
until [ "$(state 1)" = "2 Primary Synced" ] && [ -z "$(state 3)" ]; do
    ((SECONDS - t0 < 180)) || { echo "drain: $(state 1) / $(state 3)" >&2; exit 1; }
    sleep 0.5
done
echo "host 3 drained: its task stopped, hosts 1 and 2 a Primary component of 2 after $((SECONDS - t0)) s"
sqlq 2 "insert into mytestdb.t values (7)"
$S exec 1 docker node update --availability active host3 >/dev/null
echo "host 3 active again: 3 Synced after $(wait_all 3) s"
rows

sqlq 3 "insert into mytestdb.t values (8)"
for n in 1 2 3; do $S kill $n; done
t0=$SECONDS
for n in 1 2 3; do $S start $n; done
echo "all three hosts killed and started again: 3 Synced after $(wait_all 3) s (from the start of the engines)"
rows
