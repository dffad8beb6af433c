#!/usr/bin/env bash
# CI smoke run of the benchmark: every scenario with a handful of connections, a few seconds
# in all, then the soak for a few seconds (bench/soak.sh --smoke) and the scale-out
# measurement (bench/scale.sh --smoke); checks only that they run and produce JSON (never
# speed or memory).
#
# Binaries come from $BIN_DIR: default target/release if it holds all four, else
# target/debug (as left by `cargo test --workspace`; whichever of loadgen, gateway,
# ai-service and fake-openai (S8's upstream) is missing there is built in debug first).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

if [ -z "${BIN_DIR:-}" ]; then
  if [ -x target/release/loadgen ] && [ -x target/release/gateway ] && [ -x target/release/ai-service ] \
    && [ -x target/release/fake-openai ]; then
    BIN_DIR=$ROOT/target/release
  else
    BIN_DIR=$ROOT/target/debug
  fi
fi
missing=()
for b in loadgen gateway ai-service; do
  [ -x "$BIN_DIR/$b" ] || missing+=(-p "$b")
done
[ -x "$BIN_DIR/fake-openai" ] || missing+=(-p test-support)
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

# new_json PREFIX CMD…: runs CMD (its output to stderr) and prints the path of the
# RESULTS_DIR/PREFIX-*.json it wrote; fails if it wrote none.
new_json() {
  local prefix=$1 before after latest
  shift
  before=$(ls "$RESULTS_DIR"/"$prefix"-*.json 2>/dev/null | wc -l || true)
  "$@" >&2
  latest=$(ls -t "$RESULTS_DIR"/"$prefix"-*.json 2>/dev/null | head -n 1 || true)
  after=$(ls "$RESULTS_DIR"/"$prefix"-*.json 2>/dev/null | wc -l || true)
  if [ -z "$latest" ] || [ "$after" -le "$before" ]; then
    echo "smoke: $* produced no JSON" >&2
    return 1
  fi
  echo "$latest"
}

latest=$(new_json smoke bench/run.sh --smoke --no-build "$@")
# Every scenario must be present in the JSON.
for s in s1 s2 s3 s4 s5 s6 s7 s8; do
  grep -q "\"$s\": {" "$latest" || { echo "smoke: scenario $s missing from $latest" >&2; exit 1; }
done
# S8 ran against its second stack (not skipped for want of --s8-gateway-url).
grep -q '"provider": "openai (fake-openai process)"' "$latest" \
  || { echo "smoke: S8 did not run against fake-openai in $latest" >&2; exit 1; }
# S3 searched its floor too (loadgen floor-server, started by bench/run.sh), and it answered.
grep -q '"server": "loadgen floor-server' "$latest" \
  || { echo "smoke: S3's floor did not run in $latest" >&2; exit 1; }
grep -q '"first_failing_chats"' "$latest" || { echo "smoke: no S3 search in $latest" >&2; exit 1; }
# The soak, for a few seconds with a handful of sockets: it must produce its JSON (no speed or
# memory assertions).
soak_latest=$(new_json soak-smoke bench/soak.sh --smoke --no-build)
grep -q '"soak": {' "$soak_latest" || { echo "smoke: soak missing from $soak_latest" >&2; exit 1; }
[ -s "${soak_latest%.json}.md" ] || { echo "smoke: soak report ${soak_latest%.json}.md missing" >&2; exit 1; }
# The scale-out measurement (bench/scale.sh --smoke: a second per layout, one redis-server and
# a 3-master Cluster): its JSON must hold both layouts, and its Markdown must exist.
scale_latest=$(new_json scale-smoke bench/scale.sh --smoke --no-build)
for l in single cluster; do
  grep -q "\"name\": \"$l\"" "$scale_latest" || { echo "smoke: layout $l missing from $scale_latest" >&2; exit 1; }
done
[ -s "${scale_latest%.json}.md" ] || { echo "smoke: scale report ${scale_latest%.json}.md missing" >&2; exit 1; }
echo "smoke: ok ($latest, $soak_latest, $scale_latest)"
