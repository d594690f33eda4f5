#!/usr/bin/env bash
# Builds the galera-init image where no registry is reachable (this is what the tests use):
# a Debian bookworm base made once with debootstrap from the host's package mirror and kept
# as galera-init-base:bookworm, then the repository's Dockerfile on that base, with a binary
# built on this host (Debian 12, so the same glibc) instead of a Rust build stage.
#
#   scripts/docker-image.sh [--binary PATH] [--tag TAG]
#
# Defaults: target/release/galera-init (built if missing), tag galera-init:local. With a
# registry, `docker build -t galera-init .` is all it takes.
set -euo pipefail
cd "$(dirname "$0")/.."

binary=target/release/galera-init
tag=galera-init:local
base=galera-init-base:bookworm
while (($#)); do
    case $1 in
        --binary) binary=$2; shift 2 ;;
        --tag) tag=$2; shift 2 ;;
        *) echo "usage: $0 [--binary PATH] [--tag TAG]" >&2; exit 2 ;;
    esac
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

if ! docker image inspect "$base" >/dev/null 2>&1; then
    mirror=$(awk '/^URIs:/ { print $2; exit }' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
    mirror=${mirror:-http://deb.debian.org/debian}
    echo "building $base with debootstrap from $mirror"
    debootstrap --variant=minbase bookworm "$work/root" "$mirror" >"$work/debootstrap.log" 2>&1 || {
        tail -20 "$work/debootstrap.log" >&2
        exit 1
    }
    rm -rf "$work"/root/var/lib/apt/lists/* "$work"/root/var/cache/apt/*.bin \
        "$work"/root/var/cache/apt/archives/*.deb
    tar -C "$work/root" -c . | docker import \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'CMD ["bash"]' - "$base" >/dev/null
    rm -rf "$work/root"
fi

if [ ! -x "$binary" ]; then
    [ "$binary" = target/release/galera-init ] || { echo "$binary: not found" >&2; exit 1; }
    cargo build --release --locked
fi
mkdir -p "$work/context/prebuilt"
cp Dockerfile "$work/context/"
cp "$binary" "$work/context/prebuilt/galera-init"
strip "$work/context/prebuilt/galera-init"
docker build -q --build-arg RUST_IMAGE="$base" --build-arg BASE_IMAGE="$base" -t "$tag" \
    "$work/context" >/dev/null
echo "$tag"
