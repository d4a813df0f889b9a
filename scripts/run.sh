#!/usr/bin/env bash
# The first README command: installs what is needed, builds, and runs heraldd
# on the embedded default config (conf/herald.json; data under ./var).
# Extra arguments go to heraldd, e.g. ./scripts/run.sh --log-level debug
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
dir=$(./scripts/build.sh)
exec "$dir/heraldd" "$@"
