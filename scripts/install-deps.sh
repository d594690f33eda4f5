#!/usr/bin/env bash
# Installs everything galera-init needs to build, test and run its demo, on Debian 12 as
# root: MariaDB 10.11 with galera-4 and the SST tools, dnsmasq and iproute2 for the lab,
# HAProxy for the proxy test, debootstrap to build the image's base where no registry is
# reachable, and a Rust toolchain when there is none.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

packages=(mariadb-server mariadb-client galera-4 mariadb-backup rsync socat dnsmasq-base
          iproute2 iptables util-linux procps gcc libc6-dev ca-certificates curl haproxy
          debootstrap binutils)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    echo "installing: ${missing[*]}"
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
if ! command -v cargo >/dev/null; then
    echo "installing Rust (rustup, stable)"
    curl -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal -c rustfmt,clippy
fi
if ! command -v cargo-deny >/dev/null; then
    echo "installing cargo-deny (from crates.io, ~3 minutes)"
    cargo install --locked cargo-deny@0.20.2
fi
