#!/usr/bin/env bash
# The walk-through people have used for years to run Galera on Docker Swarm, unchanged but
# for two additions:
# - one named volume per replica slot, so that a restarted task (a new container) finds its
#   data again; without it every full outage loses every row;
# - a stop grace period long enough for InnoDB and Galera to shut down cleanly (Docker's
#   default is 10 s, after which the task is killed and must recover).
# IMAGE is the galera-init image (docker build -t galera-init . at the repository root).
set -euo pipefail
IMAGE=${IMAGE:-galera-init}

docker network create -d overlay dbmysqlnet
docker service create --name mysqldbcluster --network dbmysqlnet --replicas=1 \
  --mount type=volume,source=galera-{{.Task.Slot}},target=/var/lib/mysql --stop-grace-period 2m \
  --env DB_SERVICE_NAME=mysqldbcluster --env MYSQL_ROOT_PASSWORD=rootpass \
  --env MYSQL_DATABASE=mytestdb --env MYSQL_USER=mysqldbuser --env MYSQL_PASSWORD=mysqldbpass \
  "$IMAGE"
docker service scale mysqldbcluster=3

# Where the kernel has no IPVS (service virtual IPs and the ingress mesh do not work), add
# `--endpoint-mode dnsrr` to `docker service create`: galera-init finds its peers through
# tasks.mysqldbcluster either way. With a locally built image and no registry, add
# `--no-resolve-image`.
