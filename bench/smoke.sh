#!/usr/bin/env bash
# CI smoke run of the benchmark: every scenario with a handful of connections, a few seconds
# in all; checks only that it runs and produces JSON (never speed).
#
# Binaries come from $BIN_DIR: default target/release if it holds all three, else
# target/debug (as left by `cargo test --workspace`; whichever of loadgen, gateway and
# ai-service is missing there is built in debug first).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

if [ -z "${BIN_DIR:-}" ]; then
  if [ -x target/release/loadgen ] && [ -x target/release/gateway ] && [ -x target/release/ai-service ]; then
    BIN_DIR=$ROOT/target/release
  else
    BIN_DIR=$ROOT/target/debug
  fi
fi
missing=()
for b in loadgen gateway ai-service; do
  [ -x "$BIN_DIR/$b" ] || missing+=(-p "$b")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$BIN_DIR" = "$ROOT/target/debug" ]; then
    echo "smoke: building ${missing[*]} (debug)" >&2
    cargo build --locked "${missing[@]}"
  else
    echo "smoke: binaries missing in $BIN_DIR" >&2
    exit 2
  fi
fi

RESULTS_DIR=${RESULTS_DIR:-$ROOT/bench/results}
export BIN_DIR RESULTS_DIR
before=$(ls "$RESULTS_DIR"/smoke-*.json 2>/dev/null | wc -l || true)
bench/run.sh --smoke --no-build "$@"
latest=$(ls -t "$RESULTS_DIR"/smoke-*.json 2>/dev/null | head -n 1 || true)
after=$(ls "$RESULTS_DIR"/smoke-*.json 2>/dev/null | wc -l || true)
if [ -z "$latest" ] || [ "$after" -le "$before" ]; then
  echo "smoke: no JSON produced" >&2
  exit 1
fi
# Every scenario must be present in the JSON.
for s in s1 s2 s3 s4 s5 s6; do
  grep -q "\"$s\": {" "$latest" || { echo "smoke: scenario $s missing from $latest" >&2; exit 1; }
done
echo "smoke: ok ($latest)"
