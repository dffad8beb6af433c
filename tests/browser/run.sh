#!/usr/bin/env bash
# Browser tests of the reference web client. Call after `cargo build -p gateway -p ai-service`.
# Env: STACK_BIN_DIR (default <repo>/target/debug), CHROMIUM_PATH (default /usr/bin/chromium).
set -euo pipefail
cd "$(dirname "$0")"
if [ -f package-lock.json ]; then
  npm ci --no-audit --no-fund
else
  npm install --no-audit --no-fund
fi
exec node --test --test-concurrency=1 browser.test.mjs
