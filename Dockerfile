# The galera-init image: MariaDB 10.11 + galera-4 + mariadb-backup from Debian bookworm, with
# galera-init as PID 1.
#
#   docker build -t galera-init .
#
# By default the binary is built from source on the official Rust image and the result goes
# onto debian:bookworm-slim. Both bases are build args, and a binary built elsewhere can be
# used instead of compiling: put it at prebuilt/galera-init in the build context (it must be
# built for the base's glibc, e.g. on Debian 12). scripts/docker-image.sh does that with a
# base made by debootstrap, where no registry is reachable.

ARG RUST_IMAGE=rust:1-bookworm
ARG BASE_IMAGE=debian:bookworm-slim

FROM ${RUST_IMAGE} AS build
WORKDIR /src
COPY . .
RUN set -eu; \
    if [ -x prebuilt/galera-init ]; then \
        cp prebuilt/galera-init /galera-init; \
    else \
        cargo build --release --locked; \
        cp target/release/galera-init /galera-init; \
    fi; \
    strip /galera-init 2>/dev/null || true

FROM ${BASE_IMAGE}

# mariadb-server's postinst initialises /var/lib/mysql: galera-init initialises the volume
# itself (accounts from the environment, then initdb.d), so the image ships it empty.
RUN set -eux; \
    apt-get update; \
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        mariadb-server mariadb-client galera-4 mariadb-backup rsync socat \
        tzdata ca-certificates; \
    rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/* /var/cache/debconf/*-old \
        /var/lib/mysql; \
    mkdir -p /var/lib/mysql /run/mysqld /docker-entrypoint-initdb.d; \
    chown mysql:mysql /var/lib/mysql /run/mysqld; \
    chmod 0755 /var/lib/mysql /run/mysqld

COPY --from=build /galera-init /usr/local/bin/galera-init

VOLUME /var/lib/mysql

# Clients, SST (mariabackup), Galera replication, IST, galera-init's state and health port.
EXPOSE 3306 4444 4567 4568 9200

# Docker (and Swarm) ask galera-init, which says unhealthy only when a restart would help:
# it is healthy while the node makes progress (waiting for DNS, electing, an SST of any
# length) or waits on purpose, so a long SST is never killed. Swarm lists a task in
# tasks.<service> only once it is healthy, and every node waits to see itself there: the
# short interval lets a new task be found within 2 s. The grace periods that matter
# (NON_PRIMARY_GRACE, 30 s without an answer from mariadbd) are inside galera-init; the
# retries only cover galera-init itself not answering, for 5 checks in a row.
HEALTHCHECK --interval=2s --timeout=5s --start-period=60s --retries=5 \
    CMD ["galera-init", "healthcheck"]

# galera-init drains for DRAIN_DELAY, then passes the signal to mariadbd and waits for its
# clean shutdown: give the task a long grace period (--stop-grace-period 2m).
STOPSIGNAL SIGTERM

ENTRYPOINT ["galera-init"]
CMD ["mariadbd"]
