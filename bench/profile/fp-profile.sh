#!/usr/bin/env bash
# CPU profile of the whole stack under load, with complete Rust call stacks: builds the
# gateway and the ai-service with frame pointers into target/fp (the normal release build is
# untouched), runs stack.sh with PERF=1 and the given loadgen arguments, and prints each
# process's inclusive profile.
#   bench/profile/fp-profile.sh NAME --scenario s2 --s2-chats 1266 --s2-rate 50 --s2-tokens 400
# Needs perf. Afterwards: python3 bench/profile/inclusive.py /tmp/streamline-prof/NAME.perf 60 'gateway::|store::'
set -eu
cd "$(dirname "$0")/../.."
name=$1; shift
cargo build --release -p loadgen
RUSTFLAGS="-C force-frame-pointers=yes" CARGO_TARGET_DIR=target/fp cargo build --release -p gateway -p ai-service
ln -sf "$PWD/target/release/loadgen" target/fp/release/loadgen
BIN_DIR=$PWD/target/fp/release PERF=1 bench/profile/stack.sh "$name" "$@"
python3 bench/profile/inclusive.py "/tmp/streamline-prof/$name.perf" 40
