#!/usr/bin/env python3
"""The workspace's `rust-version` is what the locked dependencies need (run by
deploy/validate.sh).

  cargo metadata --format-version 1 --locked --offline --filter-platform x86_64-unknown-linux-gnu \\
      | rust_version.py

The highest `rust-version` among the registry packages resolved for Linux (cargo metadata
reads it from their manifests) must equal the workspace members' `rust-version`: lower, and a
toolchain the manifest accepts cannot build the lock; higher, and the manifest claims more than
is needed. Exit status 1 on a mismatch.
"""
import json
import sys


def version(v):
    """'1.89' and '1.89.0' are the same version."""
    parts = [int(x) for x in v.split(".")]
    return tuple(parts + [0] * (3 - len(parts)))


def main():
    meta = json.load(sys.stdin)
    resolved = {n["id"] for n in meta["resolve"]["nodes"]}
    members = set(meta["workspace_members"])
    deps = [
        (version(p["rust_version"]), p["name"], p["version"])
        for p in meta["packages"]
        if p["id"] in resolved and p["id"] not in members and p.get("rust_version")
    ]
    need = max(deps)
    declared = {p["name"]: p.get("rust_version") for p in meta["packages"] if p["id"] in members}
    bad = {n: v for n, v in declared.items() if v is None or version(v) != need[0]}
    needers = sorted(f"{n} {v}" for r, n, v in deps if r == need[0])
    print(f"locked dependencies need Rust {'.'.join(map(str, need[0]))} ({', '.join(needers)})")
    if bad:
        for n, v in sorted(bad.items()):
            print(f"FAIL package {n} declares rust-version {v!r}")
        return 1
    print(f"every workspace package declares it ({len(declared)} packages)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
