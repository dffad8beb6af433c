#!/usr/bin/env bash
# The whole test suite, as CI runs it: Rust unit and end-to-end suites (real redis-server,
# real binaries, real sockets), deployment validation, the benchmark smoke run, and the
# browser tests in Chromium. Needs redis-server on PATH, Node.js, Python 3 (and chromium and
# nginx, which .ci/run installs).
set -euo pipefail
cd "$(dirname "$0")"

echo "== cargo build (every binary the suites start) =="
cargo build --workspace --bins --locked

echo "== cargo test (unit + end-to-end) =="
cargo test --workspace --locked

echo "== deployment validation =="
deploy/validate.sh

if [ -x bench/smoke.sh ]; then
  echo "== benchmark smoke run (no speed assertions) =="
  BIN_DIR="$PWD/target/debug" bench/smoke.sh
fi

echo "== browser tests (Chromium) =="
STACK_BIN_DIR="$PWD/target/debug" tests/browser/run.sh
