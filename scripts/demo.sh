#!/usr/bin/env bash
# Starts a local demo cluster of three nodes (as root on Debian 12): each is galera-init as
# PID 1 in its own network, mount, UTS and PID namespaces, with a dnsmasq answering
# tasks.mysqldbcluster. Shows that it is up; press Enter to stop it.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"

cargo build --release --bin galera-init --example demo
GALERA_INIT_BIN="$PWD/target/release/galera-init" exec target/release/examples/demo
