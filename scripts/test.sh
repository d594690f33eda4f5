#!/usr/bin/env bash
# The whole test suite, as root on Debian 12: formatting, lints and cargo deny, unit tests, and the
# integration tests that run galera-init as PID 1 of mini containers against real mariadbd.
# The integration tests run one at a time (--test-threads=1) to fit two cores.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"

cargo fmt --check
cargo clippy --all-targets -- -D warnings
# The supply chain (deny.toml): licences, bans, sources; advisories where the RustSec
# database can be fetched (it lives on github.com).
cargo deny check bans licenses sources
if timeout 20 git ls-remote https://github.com/RustSec/advisory-db HEAD >/dev/null 2>&1; then
    cargo deny check advisories
else
    echo "cargo deny: advisories skipped: github.com (the RustSec database) is not reachable"
fi
cargo test -- --test-threads=1
