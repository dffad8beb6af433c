#!/usr/bin/env bash
# The whole test suite, exactly as CI runs it: see .ci/run (it installs redis-server, chromium
# and nginx-light only if they are missing).
exec "$(dirname "$0")/.ci/run" "$@"
