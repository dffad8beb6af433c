#!/usr/bin/env bash
# Rebuilds a vendored crate, vendor/<crate>, from the registry's archive and vendor/<crate>.patch.
#
#   vendor/revendor.sh CRATE               replace vendor/CRATE with archive + patch
#   vendor/revendor.sh CRATE --make-patch  write vendor/CRATE.patch from vendor/CRATE
#                                          (after a deliberate change there; the header is kept)
#
# CRATE is one of the crates configured below (actix-http, actix-ws, metrics-util). The archive is the
# exact version in Cargo.lock, taken from cargo's download cache when it is there, otherwise
# downloaded by cargo itself (`cargo fetch` in a throw-away package, which checks it against
# the registry index); either way its SHA-256 must be the one pinned below. After a run,
# `git status --porcelain vendor/` is empty when the committed tree is exactly archive + patch.
#
# Upgrading a vendored crate: set its VERSION and SHA256 (the index's `cksum`, also in
# Cargo.lock), run with --make-patch against the old tree first if it has unrecorded changes,
# then run without --make-patch, fix what no longer applies, and re-run what the patch header
# names as its check (BENCHMARKS.md S1 for actix-http, service-kit's histogram tests for
# metrics-util).
set -euo pipefail

name="${1:-}"
case "$name" in
  actix-http)
    VERSION=3.20.0
    SHA256=d20a22850ea7fecad12c5f8cd97d246c3af1f04ef400033977c2f13425c45816
    # In the archive but not vendored: build and test inputs of actix-http's own repository
    # (its Cargo.toml's [[example]], [[test]] and [[bench]] tables go with them, in the patch).
    DROP=(.cargo_vcs_info.json Cargo.toml.orig Cargo.lock CHANGES.md benches examples tests)
    ;;
  actix-ws)
    VERSION=0.4.0
    SHA256=decf53c3cdd63dd6f289980b430238f9a2f6d19f8bce8e418272e08d3da43f0f
    # Likewise; its [[example]] tables go in the patch.
    DROP=(.cargo_vcs_info.json Cargo.toml.orig Cargo.lock CHANGELOG.md examples)
    ;;
  metrics-util)
    VERSION=0.20.4
    SHA256=96f8722f8562635f92f8ed992f26df0532266eb03d5202607c20c0d7e9745e13
    # Likewise; its [[example]] and [[bench]] tables go in the patch.
    DROP=(.cargo_vcs_info.json Cargo.toml.orig Cargo.lock CHANGELOG.md benches examples)
    ;;
  *)
    echo "usage: $0 actix-http|actix-ws|metrics-util [--make-patch]" >&2
    exit 2
    ;;
esac

mode=apply
case "${2:-}" in
  "") ;;
  --make-patch) mode=make-patch ;;
  *) echo "usage: $0 $name [--make-patch]" >&2; exit 2 ;;
esac

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
patch_file="$here/$name.patch"
target="$here/$name"

locked="$(awk -v n="$name" '$0 == "name = \"" n "\"" { getline; gsub(/version = |"/, ""); print }' "$root/Cargo.lock")"
if [[ "$locked" != "$VERSION" ]]; then
  echo "revendor: Cargo.lock has $name $locked, this script is for $VERSION" >&2
  exit 1
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

cache="${CARGO_HOME:-$HOME/.cargo}/registry/cache"
crate="$(ls "$cache"/*/"$name-$VERSION".crate 2>/dev/null | head -n 1 || true)"
if [[ -z "$crate" ]]; then
  echo "revendor: $name $VERSION is not in $cache; fetching it with cargo" >&2
  mkdir -p "$work/fetch/src"
  cat > "$work/fetch/Cargo.toml" <<TOML
[package]
name = "revendor-fetch"
version = "0.0.0"
edition = "2021"
publish = false

[dependencies]
$name = { version = "=$VERSION", default-features = false }

[workspace]
TOML
  : > "$work/fetch/src/lib.rs"
  host="$(rustc -vV | sed -n 's/^host: //p')"
  cargo fetch --quiet --manifest-path "$work/fetch/Cargo.toml" --target "$host"
  crate="$(ls "$cache"/*/"$name-$VERSION".crate | head -n 1)"
fi
echo "$SHA256  $crate" | sha256sum --check --quiet

tar -xzf "$crate" -C "$work"
tree="$work/$name-$VERSION"
for f in "${DROP[@]}"; do
  rm -rf "${tree:?}/$f"
done
# A repository of its own, so that git diff and git apply see only this tree (never the
# project's repository around a temporary directory).
git -C "$tree" init --quiet
git -C "$tree" add -A
git -C "$tree" -c user.name=revendor -c user.email=revendor@localhost \
  commit --quiet --no-gpg-sign -m "$name $VERSION as published"

if [[ "$mode" == make-patch ]]; then
  find "$tree" -mindepth 1 -maxdepth 1 ! -name .git -exec rm -rf {} +
  cp -R "$target"/. "$tree"/
  git -C "$tree" add -A
  header="$(sed '/^diff --git /,$d' "$patch_file")"
  { printf '%s\n\n' "$header"; git -C "$tree" diff --cached --no-color --no-ext-diff; } > "$work/new.patch"
  mv "$work/new.patch" "$patch_file"
  echo "revendor: wrote $patch_file"
  exit 0
fi

git -C "$tree" apply --whitespace=nowarn "$patch_file"
rm -rf "$tree/.git"
rm -rf "$target"
mv "$tree" "$target"
echo "revendor: vendor/$name is $name $VERSION + vendor/$name.patch"
