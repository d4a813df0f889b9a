#!/usr/bin/env bash
# Two heraldd binaries side by side on one fixed-rate fan-out, alternating,
# for a claim that one is faster or slower than the other: each run starts
# the binary on free loopback ports (the config of bench/compare.sh), has
# bench/loadgen subscribe N connections to one topic and publish at RATE for
# DURATION seconds, and prints the server's CPU-us per delivery (from /proc)
# and the losses. Bounded: loadgen stops by itself; a run is killed after
# DURATION + 60 s.
#   bench/ab_fanout.sh BIN_A BIN_B [RATE=200] [RUNS=2] [N=10000] [DURATION=6]
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 2 ] || { sed -n '2,9p' "$0" >&2; exit 2; }
A=$1 B=$2 RATE=${3:-200} RUNS=${4:-2} N=${5:-10000} DUR=${6:-6}
LOADGEN=${LOADGEN:-build/bench/loadgen}
ulimit -n "$(ulimit -Hn)"

one() { # BIN: one run; prints "key=value ..." of loadgen's result
  local bin=$1 dir pid c a
  dir=$(mktemp -d)
  cat > "$dir/h.json" <<J
{"client":{"listen":"127.0.0.1:0","workers":$(nproc),"max_connections":$((N + 1000)),
 "max_connections_per_ip":0,"rate_per_s":0,"ping_interval_s":0,"idle_timeout_s":0},
 "api":{"listen":"127.0.0.1:0","rate_per_s":0},"data_dir":"$dir/var","log_level":"info"}
J
  "$bin" -c "$dir/h.json" > "$dir/log" 2>&1 &
  pid=$!
  for _ in $(seq 100); do [ "$(grep -c event=listening "$dir/log")" -ge 2 ] && break; sleep 0.1; done
  c=$(sed -n 's/.*port=client addr=\([^ ]*\).*/\1/p' "$dir/log")
  a=$(sed -n 's/.*port=api addr=\([^ ]*\).*/\1/p' "$dir/log")
  timeout $((DUR + 60)) "$LOADGEN" --url "ws://$c/ws" --pub "http://$a/v1/topics/{topic}/events" \
    -n "$N" --rate "$RATE" --duration-s "$DUR" --server-pid "$pid" 2>&1 |
    sed -n 's/^result: //p' | tr ' ' '\n' |
    grep -E '^(delivered_per_s|server_cpu_us_per_delivery|lost)=' | tr '\n' ' '
  echo
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  rm -rf "$dir"
}

for i in $(seq "$RUNS"); do
  printf 'run %d A %s: %s\n' "$i" "$A" "$(one "$A")"
  printf 'run %d B %s: %s\n' "$i" "$B" "$(one "$B")"
done
