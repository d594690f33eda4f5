#!/usr/bin/env bash
# A multi-host Docker Swarm on one machine (issue 19): three Docker engines, each in its own
# container on one bridge network, joined into one swarm of three managers, with an image
# loaded into each (there is no registry). Each engine keeps /var/lib/docker on a volume of
# the outer engine, so its images, containers and local volumes survive the host
# container's death, as a real host's disk does; /run is a tmpfs, emptied at each start
# as a host's is at boot (a pid file left there would stop dockerd from starting).
#
#   scripts/swarm-hosts.sh up [--image TAG]...   start (or finish starting) the hosts
#   scripts/swarm-hosts.sh down                  remove the hosts, their disks and network
#   scripts/swarm-hosts.sh kill N | start N      a host lost (SIGKILL) and back
#   scripts/swarm-hosts.sh exec N CMD...         a command on host N (docker ... there)
#
# Run as root where a Docker engine answers. `--privileged` fails on this machine kind (one
# capability, CAP_SYS_RESOURCE, is not granted), so each host gets every other capability,
# no seccomp, AppArmor or masked paths, /dev/fuse and the cgroup tree read-write.
set -euo pipefail
cd "$(dirname "$0")/.."

prefix=${SWARM_HOSTS_PREFIX:-gi-host}
net=${prefix}-net
hosts=(1 2 3)
host_image=galera-init-host:bookworm
base=galera-init-base:bookworm

die() { echo "swarm-hosts: $*" >&2; exit 1; }
name() { echo "${prefix}$1"; }
on() { local n=$1; shift; docker exec "$(name "$n")" "$@"; }

# The engines' image: Debian's docker.io on the bookworm base that scripts/docker-image.sh
# makes with debootstrap.
host_image() {
    docker image inspect "$host_image" >/dev/null 2>&1 && return
    docker image inspect "$base" >/dev/null 2>&1 || scripts/docker-image.sh >/dev/null
    local ctx
    ctx=$(mktemp -d)
    cat >"$ctx/Dockerfile" <<EOF
FROM $base
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        docker.io iproute2 iptables ca-certificates procps \
    && rm -rf /var/lib/apt/lists/*
VOLUME /var/lib/docker
CMD ["dockerd", "--storage-driver", "overlay2", "--host", "unix:///var/run/docker.sock"]
EOF
    docker build -q -t "$host_image" "$ctx" >/dev/null
    rm -rf "$ctx"
}

# Starts host N's container (its disk is the volume NAME-docker, kept across kills).
run_host() {
    local n=$1 c
    c=$(name "$n")
    if docker container inspect "$c" >/dev/null 2>&1; then
        docker start "$c" >/dev/null
    else
        docker run -d --name "$c" --hostname "host$n" --network "$net" \
            --cap-add ALL --cap-drop SYS_RESOURCE \
            --security-opt seccomp=unconfined --security-opt apparmor=unconfined \
            --security-opt systempaths=unconfined \
            --device /dev/fuse -v /sys/fs/cgroup:/sys/fs/cgroup:rw --tmpfs /run \
            -v "$c-docker:/var/lib/docker" "$host_image" >/dev/null
    fi
    local i
    for i in $(seq 1 120); do
        on "$n" docker info >/dev/null 2>&1 && return
        sleep 0.5
    done
    docker logs --tail 20 "$c" >&2 || true
    die "the engine of $c did not answer within 60 s"
}

addr() { docker inspect -f "{{(index .NetworkSettings.Networks \"$net\").IPAddress}}" "$(name "$1")"; }

# Host 1 creates the swarm; 2 and 3 join as managers (three managers: the swarm keeps its
# quorum when one host is lost).
form_swarm() {
    local state
    state=$(on 1 docker info --format '{{.Swarm.LocalNodeState}}')
    if [ "$state" != active ]; then
        on 1 docker swarm init --advertise-addr "$(addr 1)" >/dev/null
    fi
    local token n
    token=$(on 1 docker swarm join-token -q manager)
    for n in "${hosts[@]:1}"; do
        state=$(on "$n" docker info --format '{{.Swarm.LocalNodeState}}')
        [ "$state" = active ] || on "$n" docker swarm join --token "$token" "$(addr 1):2377" >/dev/null
    done
}

load_image() {
    local tag=$1 n
    for n in "${hosts[@]}"; do
        docker save "$tag" | on_stdin "$n" docker load >/dev/null
    done
}
on_stdin() { local n=$1; shift; docker exec -i "$(name "$n")" "$@"; }

cmd=${1:-}
shift || true
case $cmd in
    up)
        images=()
        while (($#)); do
            case $1 in
                --image) images+=("$2"); shift 2 ;;
                *) die "up: unknown argument $1" ;;
            esac
        done
        host_image
        docker network inspect "$net" >/dev/null 2>&1 || docker network create "$net" >/dev/null
        for n in "${hosts[@]}"; do run_host "$n"; done
        form_swarm
        for t in "${images[@]}"; do load_image "$t"; done
        on 1 docker node ls
        ;;
    down)
        for n in "${hosts[@]}"; do
            docker rm -f -v "$(name "$n")" >/dev/null 2>&1 || true
            docker volume rm "$(name "$n")-docker" >/dev/null 2>&1 || true
        done
        docker network rm "$net" >/dev/null 2>&1 || true
        ;;
    kill) docker kill -s KILL "$(name "${1:?host number}")" >/dev/null ;;
    start) run_host "${1:?host number}" ;;
    exec) n=${1:?host number}; shift; on "$n" "$@" ;;
    *) die "usage: $0 up [--image TAG]... | down | kill N | start N | exec N CMD..." ;;
esac
