#!/usr/bin/env bash
# cargo deny check advisories (deny.toml), against the RustSec database: the live one when
# github.com can be reached, otherwise the snapshot in third_party/rustsec-advisory-db
# (the output says which, and the snapshot's date). Either way a crate in Cargo.lock with a
# known advisory fails the suite.
set -euo pipefail
cd "$(dirname "$0")/.."

if timeout 20 git ls-remote https://github.com/rustsec/advisory-db HEAD >/dev/null 2>&1; then
    echo "cargo deny: advisories against the live RustSec database"
    exec cargo deny check advisories
fi

snap=third_party/rustsec-advisory-db
. <(grep -E '^(commit|date)=' "$snap/SOURCE")
# cargo deny looks for the database of its default URL in <db-path>/advisory-db-<hash of
# the URL> (cargo-deny 0.20), as a git checkout: its HEAD's date is the database's date.
root=target/advisory-db
db=$root/advisory-db-3157b0e258782691
rm -rf "$root"
mkdir -p "$db"
tar xzf "$snap/snapshot.tar.gz" -C "$db"
git -C "$db" init -q
git -C "$db" add -A
GIT_AUTHOR_DATE=$date GIT_COMMITTER_DATE=$date git -C "$db" \
    -c user.name=snapshot -c user.email=snapshot@localhost commit -q -m "RustSec $commit"
sed "s|^\[advisories\]$|[advisories]\ndb-path = \"$PWD/$root\"|" deny.toml >"$root/deny.toml"
echo "cargo deny: advisories against the RustSec snapshot of $date (commit ${commit:0:12}):" \
    "github.com is not reachable"
cargo fetch --locked -q
exec cargo deny --offline --config "$root/deny.toml" check advisories
