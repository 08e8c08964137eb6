#!/usr/bin/env bash
# The whole test suite: installs what it needs, builds once (debug), checks formatting and
# lints, then runs every test in one nextest run. Tests that need root, a registry or runc
# skip with a reason outside CI; with CI=true a missing prerequisite fails them.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo nextest run --workspace --locked --no-fail-fast
