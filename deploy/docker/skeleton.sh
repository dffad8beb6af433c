#!/bin/sh
# Copies the parts of the Cargo workspace that decide the dependency graph into OUT_DIR:
# every Cargo.toml, Cargo.lock, toolchain/cargo config, and a one-line stub for every
# target root (src/lib.rs, src/main.rs, src/bin/*, build scripts, explicit `path = "..."`).
#
# The Dockerfiles build third-party dependencies against this skeleton in their own layer.
# BuildKit caches COPY by content, so that layer is reused until a manifest, the lockfile or
# the set of target roots changes; editing code only recompiles the workspace crates.
# Same idea as cargo-chef, without installing anything into the builder image.
#
# Usage: skeleton.sh SRC_DIR OUT_DIR        (POSIX sh; deploy/validate.sh runs it too)
set -eu

src=$1
out=$2
mkdir -p "$out"
out=$(cd "$out" && pwd)
cd "$src"

# `#[allow(dead_code)]` because the same stub also stands in for library roots.
stub_line='#[allow(dead_code)] fn main() {} // skeleton stub, replaced by the real source'

copy() { # copy FILE verbatim
    mkdir -p "$out/$(dirname "$1")"
    cp "$1" "$out/$1"
}
stub() { # stub FILE if it exists (globs that matched nothing arrive here unexpanded)
    [ -f "$1" ] || return 0
    mkdir -p "$out/$(dirname "$1")"
    printf '%s\n' "$stub_line" >"$out/$1"
}

# Toolchain pins and cargo config change how every dependency is compiled.
for f in Cargo.lock rust-toolchain rust-toolchain.toml .cargo/config .cargo/config.toml; do
    if [ -f "$f" ]; then copy "$f"; fi
done

find . \( -name target -o -name .git -o -name node_modules \) -prune -o -name Cargo.toml -print |
    sed 's|^\./||' | sort |
    while read -r manifest; do
        copy "$manifest"
        dir=$(dirname "$manifest")
        # Conventional target roots. A build script is stubbed too: the real one may read
        # files that are not in the skeleton; its build-dependencies still get compiled.
        for f in "$dir/src/lib.rs" "$dir/src/main.rs" "$dir/build.rs" \
            "$dir"/src/bin/*.rs "$dir"/src/bin/*/main.rs; do
            stub "$f"
        done
        # tests/benches/examples are auto-discovered only when they exist, so they are
        # needed only when the manifest declares them ([[test]] without a path must exist).
        for kind in test bench example; do
            if grep -q "^[[:space:]]*\[\[$kind\]\]" "$manifest"; then
                for f in "$dir/${kind}s"/*.rs "$dir/${kind}s"/*/main.rs; do stub "$f"; done
            fi
        done
        # Explicit target paths: `path = "x.rs"` in [lib]/[[bin]]/..., `build = "x.rs"`.
        # (Dependency paths point at directories and do not end in .rs.)
        sed -n -e 's/^[[:space:]]*path[[:space:]]*=[[:space:]]*"\([^"]*\.rs\)".*/\1/p' \
            -e 's/^[[:space:]]*build[[:space:]]*=[[:space:]]*"\([^"]*\.rs\)".*/\1/p' "$manifest" |
            while read -r target; do stub "$dir/$target"; done
    done
