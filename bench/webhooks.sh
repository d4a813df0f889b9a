#!/bin/sh
# Webhook delivery throughput and publish latency: runs bench/webhooks.js
# (its header says what is measured) after checking the build, with a hard
# limit on the whole run.
#   bench/webhooks.sh [rounds=3] [deliveries=20000] [latency_publishes=2000]
# env: as bench/webhooks.js (PER_ENDPOINT, TMPDIR, PROFILE, HERALDD, HOOK_RECEIVER);
#      LIMIT_S: the hard limit in seconds (default 3600).
set -eu
cd "$(dirname "$0")/.."
for f in "${HERALDD:-build/heraldd}" "${HOOK_RECEIVER:-build/bench/hook_receiver}"; do
  if [ ! -x "$f" ]; then
    echo "webhooks.sh: $f not found: build first (make -C build -j2)" >&2
    exit 2
  fi
done
# SIGTERM first: the driver then kills the heraldd and receivers it started.
exec timeout --kill-after=30 "${LIMIT_S:-3600}" node bench/webhooks.js "$@"
