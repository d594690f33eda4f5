#!/usr/bin/env bash
# The replicated deployment (per-slot volumes) through a host loss, on the hosts of
# scripts/swarm-hosts.sh (after multi-host-trial.sh, which creates the overlay network
# dbnet). With an argument, --replicas-max-per-node that many.
#
#   bash docs/experiments/multi-host-replicated.sh      # Swarm's default placement
#   bash docs/experiments/multi-host-replicated.sh 1    # one task per host at most
set -euo pipefail
cd "$(dirname "$0")/../.."
S=scripts/swarm-hosts.sh
maxper=${1:-}
# Throwaway hosts: every galera-* volume left by an earlier trial is removed first.
for n in 1 2 3; do $S exec $n sh -c 'docker volume ls -q | grep -E "^galera-" | xargs -r docker volume rm -f' >/dev/null 2>&1 || true; done
extra=()
[ -n "$maxper" ] && extra=(--replicas-max-per-node "$maxper")
$S exec 1 docker service create -d --name rdb --replicas 3 "${extra[@]}" --network dbnet --endpoint-mode dnsrr \
    --no-resolve-image --mount 'type=volume,source=galera-{{.Task.Slot}},target=/var/lib/mysql' \
    --stop-grace-period 2m --env DB_SERVICE_NAME=rdb --env MYSQL_ROOT_PASSWORD=rootpass \
    --env CLUSTER_SIZE=3 galera-init:test >/dev/null
where() { $S exec 1 docker service ps rdb --filter desired-state=running --format '{{.Name}}@{{.Node}}:{{.CurrentState}}' | tr '\n' ' '; }
t0=$SECONDS
until [ "$(where | grep -o Running | wc -l)" = 3 ]; do sleep 1; ((SECONDS-t0<120)) || break; done
sleep 25
echo "placed: $(where)"
victim=$($S exec 1 docker service ps rdb --filter desired-state=running --format '{{.Node}}' | grep -v host1 | head -1)
n=${victim#host}
$S kill $n
echo "killed $victim"
sleep 45
echo "after 45 s: $(where)"
$S start $n
sleep 40
echo "after $victim back 40 s: $(where)"
for h in 1 2 3; do $S exec $h sh -c 'for c in $(docker ps -q -f name=rdb.); do docker exec $c mariadb -uroot -prootpass -N -e "select @@hostname, variable_value from information_schema.global_status where variable_name=\"wsrep_cluster_size\""; done' 2>/dev/null | sed "s/^/host$h: /"; done
$S exec 1 docker service rm rdb >/dev/null
