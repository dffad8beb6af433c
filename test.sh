#!/usr/bin/env bash
# The whole test suite, as CI runs it: Rust unit and end-to-end suites (real redis-server,
# real binaries, real sockets), deployment validation, and the browser tests in Chromium.
# Needs redis-server on PATH (and chromium + node for the browser tests).
set -euo pipefail
cd "$(dirname "$0")"

echo "== cargo test (unit + end-to-end) =="
cargo test --workspace --locked

if [ -x deploy/validate.sh ]; then
  echo "== deployment validation =="
  deploy/validate.sh
fi

echo "== browser tests (Chromium) =="
STACK_BIN_DIR="$PWD/target/debug" tests/browser/run.sh
