#!/usr/bin/env bash
# Everything CI runs for clients/js (@streamline/client), from a clean clone:
#   npm ci · type check (src, then the tests against the built .d.ts) · build ·
#   staleness of src/wire against shared-proto · staleness of the web bundle
#   (gateway/static/streamline-client.js) against src · node --test against the real stack.
# Needs Node >= 20, cargo, redis-server, and the binaries `cargo build -p gateway -p ai-service`
# makes, taken from STACK_BIN_DIR (default <repo>/target/debug).
set -euo pipefail
cd "$(dirname "$0")"
repo="$(cd ../.. && pwd)"
export STACK_BIN_DIR="${STACK_BIN_DIR:-$repo/target/debug}"
for bin in gateway ai-service; do
  if [ ! -x "$STACK_BIN_DIR/$bin" ]; then
    echo "clients/js: missing $STACK_BIN_DIR/$bin (run: cargo build -p gateway -p ai-service)" >&2
    exit 1
  fi
done

echo "== clients/js: npm ci =="
npm ci --no-audit --no-fund
echo "== clients/js: type check (src) =="
npx tsc -p tsconfig.json --noEmit
echo "== clients/js: build =="
npx tsc -p tsconfig.json
echo "== clients/js: type check (tests, against dist) =="
npx tsc -p test/tsconfig.json
echo "== clients/js: generated wire types up to date =="
scripts/gen-wire.sh --check
echo "== clients/js: web bundle (gateway/static/streamline-client.js) up to date =="
node scripts/bundle.mjs --check
echo "== clients/js: tests (real redis-server, ai-service, gateway) =="
node --test --test-concurrency=1 test/
