#!/usr/bin/env bash
# Runs every test: installs what the tests need, then formatting, lints, the
# API docs (a broken intra-doc link fails) and the whole workspace's tests
# (which start their own KMS emulators, SoftHSM tokens and proxy processes on
# 127.0.0.1 and stop them when done).
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/install-test-deps.sh
cargo fmt --all -- --check
python3 scripts/module-cycles.py
cargo clippy --workspace --all-targets -- -D warnings
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --quiet
cargo test --workspace
