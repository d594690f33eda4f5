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
# The supply chain (deny.toml): licences, bans, sources, and advisories (against the live
# RustSec database, or its vendored snapshot where github.com cannot be reached).
cargo deny check bans licenses sources
scripts/advisories.sh
cargo test -- --test-threads=1
