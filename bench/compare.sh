#!/usr/bin/env bash
# Side-by-side benchmark of heraldd against nchan (nginx, one worker) and a
# single-process Node `ws` broadcast server (issue 6). The same load
# generator (bench/loadgen) drives each server in turn, on free loopback
# ports, through the same scenarios; the server's CPU time is read from /proc
# (utime+stime of the process and its children) around each scenario, so the
# figure "server CPU-us per delivered message" stays comparable although the
# client and the server share the machine. Prints one table at the end:
# scenario x server, with Herald/peer ratios.
#
#   bench/compare.sh [--quick] [--runs N] [--only herald,nchan,ws]
#                    [--scenarios a,b,c,d,e] [--out FILE] [--no-install]
#                    [--no-build] [--keep] [--table FILE]
#
# Scenarios (full sizes; --quick: 50 connections, 100 for the second idle
# size, 2 s each: it checks that the harness works, not how fast):
#   (a) fan-out: one topic, 1,000 and then 10,000 subscribers, 100-byte
#       payloads at a fixed publish rate (A_RATE); then a ramp to saturation
#       with 10,000 subscribers
#   (b) latency at 50% of the server's saturation publish rate from (a); then
#       every server at the same offered load: 50% of nchan's saturation
#       rate (when nchan runs)
#   (c) idle memory: RSS delta / N at 10,000 and 19,000 idle connections
#   (d) REST publish throughput: wrk with bench/peers/post.lua over
#       keep-alive, against each server's publish endpoint and against
#       nginx's `return 204` (the ceiling)
#   (e) routing: 10,000 connections, each on its own topic, publishes spread
#       over all topics
# Each scenario gets a freshly started server, so none inherits another's
# memory or topics. With (a), bench/send_floor also runs once per run: what
# one bare 100-byte loopback write costs the writer, the floor under (a)'s
# CPU per delivery at low rates (printed under the table).
#
# Options:
#   --quick         tiny counts and 2 s runs (the test suite's smoke run)
#   --runs N        run everything N times; the table shows medians
#   --only LIST     servers to run, of herald,nchan,ws (default: all three)
#   --scenarios L   scenarios to run, of a,b,c,d,e (default: all; b runs the
#                   ramp of (a) when a is left out)
#   --out FILE      also write the table to FILE, and the raw figures to
#                   FILE.tsv
#   --no-install    do not call scripts/install-deps.sh --bench
#   --no-build      do not build (use HERALDD and LOADGEN as they are)
#   --keep          keep the run directory (logs, configs) even on success
#   --table FILE    only print the table of an earlier run's raw figures
#                   (its results.tsv, or the FILE.tsv of --out) and exit
# Environment:
#   HERALDD, LOADGEN, NGINX, NCHAN_MODULE, WRK, SEND_FLOOR   the programs
#       (defaults: the build's heraldd, build/bench/loadgen or bench/loadgen,
#       nginx, /usr/lib/nginx/modules/ngx_nchan_module.so, wrk, send_floor
#       beside the load generator)
#   LIMIT_S     hard limit on the whole run in seconds (default: 240 with
#               --quick, else 600 + 1500 per run); servers are killed on exit
#   A_RATE      publishes/s of the fixed-rate part of (a) (default 20; 10 quick)
#   E_RATE      publishes/s of (e), spread over all topics (default 5000; 50 quick)
#   RAMP_RATE   publishes/s of the first step of (a)'s ramp (default 4; 100 quick); each
#               step (2 s; 0.5 s quick) is 1.5x the last, until one fails
#               (loadgen --help: "Ramp"), for at most 120 s (8 s quick)
#   WRK_THREADS, WRK_CONNS   wrk's -t and -c in (d) (default 1 and 50)
#   TMPDIR      where the run directory goes
#   HERALD_HISTORY  heraldd's history log: unset leaves heraldd's default
#               (durable; also what a heraldd from before the log takes),
#               durable, memory (history.durable false) or off
#               (history.enabled false)
set -euo pipefail
SELF=$(realpath "$0")
cd "$(dirname "$SELF")/.."
ARGS=("$@")

QUICK=0 RUNS=1 ONLY=herald,nchan,ws SCENARIOS=a,b,c,d,e OUT="" INSTALL=1 BUILD=1 KEEP=0 TABLE_FROM=""
case "${HERALD_HISTORY:-}" in
  "") HISTORY_CONF="" ;;
  durable) HISTORY_CONF='"history": {"enabled": true, "durable": true},' ;;
  memory) HISTORY_CONF='"history": {"enabled": true, "durable": false},' ;;
  off) HISTORY_CONF='"history": {"enabled": false},' ;;
  *) echo "compare.sh: HERALD_HISTORY is durable, memory or off" >&2; exit 2 ;;
esac
usage() { sed -n '2,/^set -euo/p' "$SELF" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) QUICK=1 ;;
    --runs) RUNS=${2:?--runs N}; shift ;;
    --only) ONLY=${2:?--only LIST}; shift ;;
    --scenarios) SCENARIOS=${2:?--scenarios LIST}; shift ;;
    --out) OUT=${2:?--out FILE}; shift ;;
    --no-install) INSTALL=0 ;;
    --no-build) BUILD=0 ;;
    --keep) KEEP=1 ;;
    --table) TABLE_FROM=${2:?--table FILE}; shift ;;
    -h|--help) usage ;;
    *) echo "compare.sh: unknown option $1" >&2; usage ;;
  esac
  shift
done
case "$RUNS" in ''|*[!0-9]*|0) echo "compare.sh: --runs takes a positive integer" >&2; exit 2 ;; esac
for s in ${ONLY//,/ }; do
  case "$s" in herald|nchan|ws) ;; *) echo "compare.sh: unknown server $s (herald, nchan, ws)" >&2; exit 2 ;; esac
done
for s in ${SCENARIOS//,/ }; do
  case "$s" in a|b|c|d|e) ;; *) echo "compare.sh: unknown scenario $s (a, b, c, d, e)" >&2; exit 2 ;; esac
done
has() { case ",$1," in *",$2,"*) return 0 ;; esac; return 1; }

# ---- the table ---------------------------------------------------------
# Medians over the runs; ratios are Herald / peer of the same row (see the
# "want" column for which way is better). The (d) ceiling row compares
# Herald's REST publish rate with nginx's `return 204`.
table() {
  awk -F'\t' '
    function median(key,   n, i, j, t, v) {
      n = split(vals[key], v, " ")
      if (n == 0) return ""
      for (i = 2; i <= n; i++) { t = v[i] + 0; for (j = i - 1; j >= 1 && v[j] + 0 > t; j--) v[j + 1] = v[j]; v[j + 1] = t }
      return n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
    }
    function fmt(x) {
      if (x == "") return "-"
      if (x + 0 >= 100 || x + 0 == int(x + 0)) return sprintf("%.0f", x)
      return sprintf("%.3g", x)
    }
    function ratio(h, p) { return (h == "" || p == "" || p + 0 == 0) ? "-" : sprintf("%.2f", h / p) }
    function row(label, scen, metric, want,   h, n, w, hs) {
      h = median(scen SUBSEP metric SUBSEP "herald")
      n = median(scen SUBSEP metric SUBSEP "nchan")
      w = median(scen SUBSEP metric SUBSEP "ws")
      if (h == "" && n == "" && w == "") return
      hs = h
      if (scen == "d_ceiling") { hs = median("d_rest" SUBSEP "rps" SUBSEP "herald"); h = hs }
      printf "%-34s %-22s %-6s %12s %12s %12s %9s %9s\n", label, metric, want, fmt(hs), fmt(n), fmt(w), ratio(h, n), ratio(h, w)
    }
    $1 == "_meta" { meta[$2] = $5; next }
    $5 != "" { k = $1 SUBSEP $2 SUBSEP $3; vals[k] = vals[k] (vals[k] == "" ? "" : " ") $5 }
    END {
      quick = meta["quick"]; runs = meta["runs"]; a_small = meta["a_small"]; a_large = meta["a_large"]
      a_rate = meta["a_rate"]; c1 = meta["c1"]; c2 = meta["c2"]; e_conns = meta["e_conns"]; e_rate = meta["e_rate"]
      printf "%-34s %-22s %-6s %12s %12s %12s %9s %9s\n", "scenario", "metric", "want", "herald", "nchan", "ws", "H/nchan", "H/ws"
      la = "(a) fan-out " a_small " subs @" a_rate "/s"
      row(la, "a_small", "delivered_per_s", "high"); row("", "a_small", "cpu_us_per_msg", "low")
      row("", "a_small", "p50_us", "low"); row("", "a_small", "p99_us", "low"); row("", "a_small", "lost", "low")
      row("", "a_small", "publish_errors", "low")
      la = "(a) fan-out " a_large " subs @" a_rate "/s"
      row(la, "a_large", "delivered_per_s", "high"); row("", "a_large", "cpu_us_per_msg", "low")
      row("", "a_large", "p50_us", "low"); row("", "a_large", "p99_us", "low"); row("", "a_large", "lost", "low")
      row("", "a_large", "publish_errors", "low")
      la = "(a) ramp, " a_large " subs"
      row(la, "a_ramp", "sat_rate", "high"); row("", "a_ramp", "sat_delivered_per_s", "high")
      row("", "a_ramp", "cpu_us_per_msg", "low"); row("", "a_ramp", "lost", "low")
      la = "(b) 50% of saturation, " a_large " subs"
      row(la, "b_half", "offered_rate", "-"); row("", "b_half", "p50_us", "low"); row("", "b_half", "p99_us", "low")
      row("", "b_half", "p999_us", "low"); row("", "b_half", "max_us", "low"); row("", "b_half", "cpu_us_per_msg", "low")
      la = "(b) same load (50% of nchan sat.)"
      row(la, "b_same", "offered_rate", "-"); row("", "b_same", "p50_us", "low"); row("", "b_same", "p99_us", "low")
      row("", "b_same", "p999_us", "low"); row("", "b_same", "max_us", "low"); row("", "b_same", "cpu_us_per_msg", "low")
      row("", "b_same", "lost", "low")
      row("(c) idle " c1 " conns", "c_idle1", "bytes_per_conn", "low")
      row("(c) idle " c2 " conns", "c_idle2", "bytes_per_conn", "low")
      row("(d) REST publish (wrk)", "d_rest", "rps", "high"); row("", "d_rest", "cpu_us_per_req", "low")
      row("(d) Herald vs nginx return 204", "d_ceiling", "rps", "high")
      la = "(e) routing " e_conns " topics @" e_rate "/s"
      row(la, "e_routing", "delivered_per_s", "high"); row("", "e_routing", "cpu_us_per_msg", "low")
      row("", "e_routing", "p99_us", "low"); row("", "e_routing", "lost", "low")
      row("", "e_routing", "publish_errors", "low")
      fl = median("floor" SUBSEP "send_us" SUBSEP "-")
      if (fl != "") printf "floor: one 100-byte write to a loopback TCP socket costs the writer %s CPU-us here (bench/send_floor %s)\n", fmt(fl), meta["floor_args"]
      printf "(medians of %d run%s; H/x = Herald / x on the same row%s)\n", runs, (runs > 1 ? "s" : ""), (quick ? "; --quick: harness check only, not a measurement" : "")
    }' "$1"
}
if [ -n "$TABLE_FROM" ]; then table "$TABLE_FROM"; exit 0; fi

# The whole run is bounded: re-run this script under timeout(1), which on
# expiry signals its whole process group (servers and load generators too);
# the EXIT trap below then stops what is left.
if [ -z "${COMPARE_SH_LIMITED:-}" ]; then
  if [ "$QUICK" = 1 ]; then limit=${LIMIT_S:-240}; else limit=${LIMIT_S:-$((600 + 1500 * RUNS))}; fi
  export COMPARE_SH_LIMITED=1
  exec timeout --kill-after=20 "$limit" bash "$SELF" "${ARGS[@]}"
fi

log() { printf 'compare.sh: %s\n' "$*" >&2; }
die() { log "$*"; exit 2; }

# ---- sizes -------------------------------------------------------------
if [ "$QUICK" = 1 ]; then
  A_SMALL=50 A_LARGE=50 C_N1=50 C_N2=100 E_CONNS=50
  DUR=2 RAMP_STEP_S=0.5 RAMP_MAX_S=8 IDLE_S=2 WRK_DUR=2
  A_RATE=${A_RATE:-10} E_RATE=${E_RATE:-50}
  SLACK=20      # seconds a loadgen run may take beyond its duration
else
  A_SMALL=1000 A_LARGE=10000 C_N1=10000 C_N2=19000 E_CONNS=10000
  DUR=10 RAMP_STEP_S=2 RAMP_MAX_S=120 IDLE_S=10 WRK_DUR=10
  A_RATE=${A_RATE:-20} E_RATE=${E_RATE:-5000}
  SLACK=90      # connecting 19,000 sockets and closing them included
fi
# The ramp must start below every server's saturation: with 10,000
# subscribers all three were past a 100 ms p99 at 10 publishes/s here.
if [ "$QUICK" = 1 ]; then RAMP_RATE=${RAMP_RATE:-100}; else RAMP_RATE=${RAMP_RATE:-4}; fi
PAYLOAD=100
WRK_THREADS=${WRK_THREADS:-1} WRK_CONNS=${WRK_CONNS:-50}
CORES=$(nproc)
CLK_TCK=$(getconf CLK_TCK)
NOFILE=$(ulimit -Hn)
[ "$NOFILE" = unlimited ] && NOFILE=1048576

# ---- install and build -------------------------------------------------
if [ "$INSTALL" = 1 ]; then
  ./scripts/install-deps.sh --bench
fi
if has "$ONLY" ws && [ ! -d test/integration/node_modules/ws ]; then
  if [ "$INSTALL" = 1 ]; then
    (cd test/integration && npm ci --no-audit --no-fund --loglevel=error)
  else
    die "test/integration/node_modules/ws is missing (cd test/integration && npm ci)"
  fi
fi
builddir=build
if [ "$BUILD" = 1 ]; then
  builddir=$(./scripts/build.sh)
fi
HERALDD=${HERALDD:-$builddir/heraldd}
# bench/CMakeLists.txt builds bench/loadgen.c into the build's bench/.
if [ -z "${LOADGEN:-}" ]; then
  for f in "$builddir/bench/loadgen" bench/loadgen; do
    if [ -x "$f" ]; then LOADGEN=$f; break; fi
  done
fi
if [ -z "${LOADGEN:-}" ] || [ ! -x "$LOADGEN" ]; then
  die "no load generator: build bench/loadgen (or set LOADGEN)"
fi
# the floor: a bare loopback write's CPU, printed under the table (optional)
SEND_FLOOR=${SEND_FLOOR:-$(dirname "$LOADGEN")/send_floor}
NGINX=${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}
NCHAN_MODULE=${NCHAN_MODULE:-/usr/lib/nginx/modules/ngx_nchan_module.so}
WRK=${WRK:-wrk}
if has "$ONLY" herald; then [ -x "$HERALDD" ] || die "$HERALDD not found: build first"; fi
if has "$ONLY" nchan; then
  [ -x "$NGINX" ] || die "nginx not found (scripts/install-deps.sh --bench)"
  [ -f "$NCHAN_MODULE" ] || die "$NCHAN_MODULE not found (scripts/install-deps.sh --bench)"
fi
if has "$ONLY" ws; then command -v node >/dev/null || die "node not found"; fi
if has "$SCENARIOS" d; then command -v "$WRK" >/dev/null || die "wrk not found (scripts/install-deps.sh --bench)"; fi
command -v curl >/dev/null || die "curl not found"

RUNDIR=$(mktemp -d "${TMPDIR:-/tmp}/herald-compare.XXXXXX")
RESULTS=$RUNDIR/results.tsv   # scenario, metric, server, run, value
: > "$RESULTS"
for kv_ in quick="$QUICK" runs="$RUNS" a_small="$A_SMALL" a_large="$A_LARGE" a_rate="$A_RATE" \
           c1="$C_N1" c2="$C_N2" e_conns="$E_CONNS" e_rate="$E_RATE"; do
  printf '_meta\t%s\t-\t-\t%s\n' "${kv_%%=*}" "${kv_#*=}" >> "$RESULTS"
done
FAILED=()

# ---- processes ---------------------------------------------------------
SERVER_PID="" SERVER_NAME="" LG_PID=""
stop_pid() { # stop_pid PID: SIGTERM, up to 10 s, then SIGKILL; reaps it
  local p=$1 _
  [ -n "$p" ] || return 0
  kill -TERM "$p" 2>/dev/null || true
  for _ in $(seq 1 100); do
    kill -0 "$p" 2>/dev/null || break
    # a zombie child counts as alive for kill -0: wait reaps it below
    [ "$(awk '{print $3}' "/proc/$p/stat" 2>/dev/null)" = Z ] && break
    sleep 0.1
  done
  kill -KILL "$p" 2>/dev/null || true
  wait "$p" 2>/dev/null || true
}
cleanup() {
  local rc=$?
  trap - EXIT
  if [ -n "$LG_PID" ]; then stop_pid "$LG_PID"; fi
  if [ -n "$SERVER_PID" ]; then stop_pid "$SERVER_PID"; fi
  if [ "$KEEP" = 1 ] || [ "$rc" -ne 0 ]; then
    log "run directory kept: $RUNDIR"
  else
    rm -rf "$RUNDIR"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# The process and its descendants (nginx: the master and its worker).
proc_tree() {
  ps -e -o pid= -o ppid= | awk -v root="$1" '
    { parent[$1] = $2 }
    END {
      print root; n = 1; list[1] = root
      for (i = 1; i <= n; i++)
        for (p in parent) if (parent[p] == list[i]) { list[++n] = p; print p }
    }'
}
# utime+stime in clock ticks of the process tree (all threads included).
cpu_ticks() {
  local total=0 p s
  for p in $(proc_tree "$1"); do
    s=$(cat "/proc/$p/stat" 2>/dev/null) || continue
    s=${s##*) }            # the fields after "(comm)": field 3 onwards
    # shellcheck disable=SC2086
    set -- $s
    total=$((total + ${12} + ${13}))   # fields 14 (utime), 15 (stime)
  done
  echo "$total"
}
# VmRSS in kB of the process tree.
rss_kb() {
  local total=0 p v
  for p in $(proc_tree "$1"); do
    v=$(awk '/^VmRSS:/ {print $2}' "/proc/$p/status" 2>/dev/null) || continue
    total=$((total + ${v:-0}))
  done
  echo "$total"
}
free_port() { # a loopback port nothing listens on, below the ephemeral range
  local p _
  for _ in $(seq 1 100); do
    p=$((20000 + RANDOM % 12000))
    if ! ss -Hltn "sport = :$p" 2>/dev/null | grep -q .; then echo "$p"; return 0; fi
  done
  return 1
}
wait_for() { # wait_for SECONDS CMD...: until CMD succeeds (and the server lives)
  local deadline=$((SECONDS + $1)); shift
  while [ $SECONDS -lt $deadline ]; do
    "$@" && return 0
    kill -0 "$SERVER_PID" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

# ---- the servers -------------------------------------------------------
# start_server NAME: starts it in the background on free loopback ports and
# sets SERVER_PID, PROTO, SUB_URL, PUB_URL (with {topic}), REST_URL.
start_server() {
  local name=$1 dir=$RUNDIR/$1.$2
  mkdir -p "$dir"
  : > "$dir/out.log"
  SERVER_NAME=$name
  case "$name" in
    herald)
      cat > "$dir/herald.json" <<EOF
{
  "client": {
    "listen": "127.0.0.1:0", "workers": $CORES, "max_connections": $NOFILE,
    "max_connections_per_ip": 0, "rate_per_s": 0,
    "ping_interval_s": 0, "idle_timeout_s": 0
  },
  "api": { "listen": "127.0.0.1:0", "rate_per_s": 0 },
  $HISTORY_CONF
  "data_dir": "$dir/var",
  "log_level": "info"
}
EOF
      "$HERALDD" -c "$dir/herald.json" > "$dir/out.log" 2>&1 &
      SERVER_PID=$!
      herald_ready() { [ "$(grep -c 'event=listening' "$dir/out.log")" -ge 2 ]; }
      wait_for 20 herald_ready || { log "heraldd did not start:"; cat "$dir/out.log" >&2; return 1; }
      local caddr aaddr
      caddr=$(sed -n 's/.*event=listening port=client addr=\([^ ]*\).*/\1/p' "$dir/out.log" | head -1)
      aaddr=$(sed -n 's/.*event=listening port=api addr=\([^ ]*\).*/\1/p' "$dir/out.log" | head -1)
      PROTO=herald
      SUB_URL="ws://$caddr/ws"
      PUB_URL="http://$aaddr/v1/topics/{topic}/events"
      REST_URL="http://$aaddr/v1/topics/bench.rest/events"
      ;;
    nchan)
      local port; port=$(free_port) || { log "no free port"; return 1; }
      sed -e "s#@MODULE@#$NCHAN_MODULE#g; s#@RUNDIR@#$dir#g; s#@PORT@#$port#g" \
          -e "s#@USER@#$(id -un) $(id -gn)#g; s#@NOFILE@#$NOFILE#g; s#@CONNECTIONS@#$((2 * NOFILE))#g" \
          bench/peers/nchan.conf.template > "$dir/nginx.conf"
      "$NGINX" -p "$dir/" -e "$dir/error.log" -c "$dir/nginx.conf" > "$dir/out.log" 2>&1 &
      SERVER_PID=$!
      nchan_ready() { [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/204")" = 204 ]; }
      wait_for 20 nchan_ready || { log "nginx did not start:"; cat "$dir/out.log" "$dir/error.log" >&2; return 1; }
      PROTO=nchan
      SUB_URL="ws://127.0.0.1:$port/sub/{topic}"
      PUB_URL="http://127.0.0.1:$port/pub/{topic}"
      REST_URL="http://127.0.0.1:$port/pub/bench.rest"
      CEIL_URL="http://127.0.0.1:$port/204"
      ;;
    ws)
      node bench/peers/ws_server.js 0 > "$dir/out.log" 2>&1 &
      SERVER_PID=$!
      ws_ready() { grep -q '^listening [0-9]' "$dir/out.log"; }
      wait_for 20 ws_ready || { log "ws_server.js did not start:"; cat "$dir/out.log" >&2; return 1; }
      local port; port=$(awk '/^listening/ {print $2; exit}' "$dir/out.log")
      PROTO=ws
      SUB_URL="ws://127.0.0.1:$port/sub/{topic}"
      PUB_URL="http://127.0.0.1:$port/publish/{topic}"
      REST_URL="http://127.0.0.1:$port/publish/bench.rest"
      ;;
  esac
  sleep 0.3   # let start-up allocations settle before the baselines
}
stop_server() {
  stop_pid "$SERVER_PID"
  SERVER_PID=""
}

# ---- measuring -----------------------------------------------------------
record() { printf '%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$SERVER_NAME" "$RUN" "$3" >> "$RESULTS"; }
fail() { FAILED+=("$SERVER_NAME run $RUN: $1"); log "FAILED: $SERVER_NAME run $RUN: $1"; }
# kv FILE KEY: KEY's value in the last "result:" line of FILE.
kv() { grep '^result:' "$1" 2>/dev/null | tail -1 | tr ' ' '\n' | sed -n "s/^$2=//p" | head -1; }
# cpu_us_per FROM TO COUNT: server CPU-us per unit from two tick readings.
cpu_us_per() {
  awk -v a="$1" -v b="$2" -v n="$3" -v hz="$CLK_TCK" \
    'BEGIN { if (n > 0) printf "%.3f", (b - a) * 1e6 / hz / n }'
}

# The keys of loadgen's final "result: key=value ..." line (bench/loadgen.c).
K_DELIVERED=delivered            # messages received by all subscribers together
K_DELIVERED_PS=deliveries_per_s  # the same per second
K_LOST=lost                      # expected (2xx publishes x subscribers) less delivered
K_P50=p50_us K_P99=p99_us K_P999=p999_us K_MAX=max_us
K_SAT_RATE=saturated_pub_per_s   # --ramp: publishes/s of the best step
K_SAT_DELIVERED_PS=saturated_per_s  # --ramp: deliveries/s of the best step
# Lines loadgen prints once every connection is subscribed ("connected: ...")
# and after its warm-up probes ("warm-up: ...", nchan and ws): the server's
# CPU is read again at each, so connecting and warming up are not charged to
# the delivered messages (to within the 0.1 s polling period; when neither
# appears, the reading from before loadgen started is kept).
START_MARK='^(connected|warm-up): '
# The line of --idle-s once every connection is subscribed.
IDLE_MARK='^idle: holding '

# lg LOG LIMIT_S ARGS...: runs loadgen in the background into LOG, bounded by
# LIMIT_S; meanwhile samples the server's RSS (peak into LG_RSS_PEAK) and
# reads its CPU when START_MARK appears (LG_CPU0; LG_CPU1 after the end).
# Returns loadgen's exit status (124: timed out).
lg() {
  local logf=$1 limit=$2 rc=0 rss marks; shift 2
  LG_CPU0=$(cpu_ticks "$SERVER_PID") LG_RSS_PEAK=0 LG_MARKED=0
  echo "+ $LOADGEN $*" > "$logf.cmd"
  : > "$logf"
  timeout --kill-after=5 "$limit" "$LOADGEN" "$@" > "$logf" 2>&1 &
  LG_PID=$!
  while kill -0 "$LG_PID" 2>/dev/null; do
    marks=$(grep -Ec "$START_MARK" "$logf" || true)
    if [ "${marks:-0}" -gt "$LG_MARKED" ]; then
      LG_CPU0=$(cpu_ticks "$SERVER_PID") LG_MARKED=$marks
    fi
    if grep -Eq "$IDLE_MARK" "$logf"; then
      rss=$(rss_kb "$SERVER_PID")
      [ "$rss" -gt "$LG_RSS_PEAK" ] && LG_RSS_PEAK=$rss
    fi
    sleep 0.1
  done
  wait "$LG_PID" || rc=$?
  LG_PID=""
  LG_CPU1=$(cpu_ticks "$SERVER_PID")
  if ! kill -0 "$SERVER_PID" 2>/dev/null; then log "$SERVER_NAME died during $(basename "$logf")"; rc=99; fi
  if ! grep -q '^result:' "$logf"; then [ "$rc" -ne 0 ] || rc=98; fi
  return "$rc"
}
lg_common() { # the arguments every scenario passes ({topic}: t0, t1, ...)
  echo --url "$SUB_URL" --proto "$PROTO"
}

# (a), (b), (e): one loadgen run with publishing; records the figures.
# DURATION "ramp": --ramp, bounded by RAMP_MAX_S, instead of --duration-s.
scen_delivery() { # SCEN CONNS TOPICS RATE DURATION [extra loadgen args]
  local scen=$1 conns=$2 topics=$3 rate=$4 dur=$5 logf rc=0; shift 5
  logf=$RUNDIR/$SERVER_NAME.$scen.run$RUN.log
  local timing limit
  if [ "$dur" = ramp ]; then
    timing=(--ramp --step-s "$RAMP_STEP_S" --max-s "$RAMP_MAX_S") limit=$((RAMP_MAX_S + SLACK))
  else
    timing=(--duration-s "$dur") limit=$((dur + SLACK))
  fi
  # shellcheck disable=SC2046
  lg "$logf" "$limit" $(lg_common) --pub "$PUB_URL" --payload "$PAYLOAD" \
    --connections "$conns" --topics "$topics" --rate "$rate" "${timing[@]}" "$@" || rc=$?
  if [ "$rc" -ne 0 ]; then fail "$scen (loadgen exit $rc, see $logf)"; return 1; fi
  local delivered subscribed
  delivered=$(kv "$logf" "$K_DELIVERED") subscribed=$(kv "$logf" subscribed)
  if [ "${subscribed:-0}" -lt "$conns" ]; then
    fail "$scen (${subscribed:-0} of $conns connections subscribed, see $logf)"; return 1
  fi
  record "$scen" publish_errors "$(kv "$logf" errors)"
  record "$scen" delivered_per_s "$(kv "$logf" "$K_DELIVERED_PS")"
  record "$scen" lost "$(kv "$logf" "$K_LOST")"
  record "$scen" p50_us "$(kv "$logf" "$K_P50")"
  record "$scen" p99_us "$(kv "$logf" "$K_P99")"
  record "$scen" p999_us "$(kv "$logf" "$K_P999")"
  record "$scen" max_us "$(kv "$logf" "$K_MAX")"
  record "$scen" cpu_us_per_msg "$(cpu_us_per "$LG_CPU0" "$LG_CPU1" "${delivered:-0}")"
  record "$scen" cpu_from_mark "$LG_MARKED"
  LAST_LOG=$logf
}

# (c): N idle connections; bytes of RSS per connection over the baseline.
scen_idle() { # SCEN CONNS
  local scen=$1 conns=$2 logf base rc=0
  logf=$RUNDIR/$SERVER_NAME.$scen.run$RUN.log
  base=$(rss_kb "$SERVER_PID")
  # loadgen opens and subscribes CONNS connections, prints IDLE_MARK, holds
  # them IDLE_S seconds publishing nothing, and closes them: the figure is
  # the peak RSS sampled while they are held.
  # shellcheck disable=SC2046
  lg "$logf" $((IDLE_S + SLACK)) $(lg_common) --connections "$conns" --topics 1 \
    --idle-s "$IDLE_S" || rc=$?
  if [ "$rc" -ne 0 ]; then fail "$scen (loadgen exit $rc, see $logf)"; return 1; fi
  local subscribed; subscribed=$(kv "$logf" subscribed)
  if [ "${subscribed:-0}" -lt "$conns" ] || [ "$LG_RSS_PEAK" = 0 ]; then
    fail "$scen (${subscribed:-0} of $conns connections subscribed, see $logf)"; return 1
  fi
  record "$scen" rss_base_kb "$base"
  record "$scen" rss_peak_kb "$LG_RSS_PEAK"
  record "$scen" bytes_per_conn "$(awk -v a="$base" -v b="$LG_RSS_PEAK" -v n="$conns" \
    'BEGIN { printf "%.0f", (b - a) * 1024 / n }')"
}

# (d): wrk POSTs over keep-alive; requests/s and server CPU-us per request.
scen_wrk() { # SCEN URL
  local scen=$1 url=$2 logf rc=0 c0 c1
  logf=$RUNDIR/$SERVER_NAME.$scen.run$RUN.log
  c0=$(cpu_ticks "$SERVER_PID")
  echo "+ $WRK -t$WRK_THREADS -c$WRK_CONNS -d${WRK_DUR}s -s bench/peers/post.lua $url" > "$logf.cmd"
  timeout --kill-after=5 $((WRK_DUR + 30)) "$WRK" -t"$WRK_THREADS" -c"$WRK_CONNS" -d"${WRK_DUR}s" \
    -s bench/peers/post.lua "$url" > "$logf" 2>&1 &
  LG_PID=$!
  wait "$LG_PID" || rc=$?
  LG_PID=""
  c1=$(cpu_ticks "$SERVER_PID")
  local reqs non2xx
  reqs=$(kv "$logf" requests) non2xx=$(kv "$logf" non2xx)
  if [ "$rc" -ne 0 ] || [ -z "$reqs" ] || [ "${non2xx:-1}" != 0 ]; then
    fail "$scen (wrk exit $rc, non-2xx ${non2xx:-?}, see $logf)"; return 1
  fi
  record "$scen" rps "$(kv "$logf" rps)"
  record "$scen" p99_us "$(kv "$logf" p99_us)"
  record "$scen" cpu_us_per_req "$(cpu_us_per "$c0" "$c1" "$reqs")"
}

# One server, every chosen scenario, each on a fresh server.
with_server() { # with_server TAG FUNCTION ARGS...
  local tag=$1; shift
  if ! start_server "$SERVER_NAME" "$tag.run$RUN"; then
    fail "$tag: the server did not start"; SERVER_PID=""; return 0
  fi
  "$@" || true
  stop_server
}
half_rate() { # RATE: half of it in publishes/s, at least 0.1
  awk -v s="$1" 'BEGIN { h = s / 2; printf "%.2f", (h < 0.1 ? 0.1 : h) }'
}
run_server() {
  local sat
  if has "$SCENARIOS" a; then
    with_server a1 scen_delivery a_small "$A_SMALL" 1 "$A_RATE" "$DUR"
    with_server a2 scen_delivery a_large "$A_LARGE" 1 "$A_RATE" "$DUR"
  fi
  if has "$SCENARIOS" a || has "$SCENARIOS" b; then
    # --rate is the ramp's first step, multiplied by 1.5 every RAMP_STEP_S
    # until a step fails (loadgen --help: "Ramp").
    LAST_LOG=""
    with_server ramp scen_delivery a_ramp "$A_LARGE" 1 "$RAMP_RATE" ramp
    sat=""
    if [ -n "$LAST_LOG" ]; then
      sat=$(kv "$LAST_LOG" "$K_SAT_RATE")
      SAT[$SERVER_NAME]=$sat
      record a_ramp sat_rate "$sat"
      record a_ramp sat_delivered_per_s "$(kv "$LAST_LOG" "$K_SAT_DELIVERED_PS")"
    fi
    if has "$SCENARIOS" b; then
      if [ -n "$sat" ]; then
        local half; half=$(half_rate "$sat")
        with_server b scen_delivery b_half "$A_LARGE" 1 "$half" "$DUR"
        record b_half offered_rate "$half"
      else
        fail "b_half: no saturation rate from the ramp of (a)"
      fi
    fi
  fi
  if has "$SCENARIOS" c; then
    with_server c1 scen_idle c_idle1 "$C_N1"
    with_server c2 scen_idle c_idle2 "$C_N2"
  fi
  if has "$SCENARIOS" d; then
    with_server d scen_wrk_all
  fi
  if has "$SCENARIOS" e; then
    with_server e scen_delivery e_routing "$E_CONNS" "$E_CONNS" "$E_RATE" "$DUR"
  fi
}
scen_wrk_all() {
  scen_wrk d_rest "$REST_URL" || true
  if [ "$SERVER_NAME" = nchan ]; then scen_wrk d_ceiling "$CEIL_URL" || true; fi
}

# ---- the runs ----------------------------------------------------------
log "run directory $RUNDIR; servers $ONLY; scenarios $SCENARIOS; runs $RUNS$([ "$QUICK" = 1 ] && echo ' (quick)')"
log "loadgen $LOADGEN; heraldd $HERALDD; $CORES cores; CLK_TCK $CLK_TCK"
declare -A SAT # saturation publish rate of this run's ramp, by server
for RUN in $(seq 1 "$RUNS"); do
  SAT=()
  for SERVER_NAME in herald nchan ws; do
    has "$ONLY" "$SERVER_NAME" || continue
    log "run $RUN: $SERVER_NAME"
    run_server
  done
  # the floor under (a)'s CPU per delivery: one bare write per connection
  if has "$SCENARIOS" a && [ -x "$SEND_FLOOR" ]; then
    if [ "$QUICK" = 1 ]; then fargs="50 3 100"; else fargs="5000 20 100"; fi
    # shellcheck disable=SC2086
    if fout=$(timeout 60 "$SEND_FLOOR" $fargs); then
      printf '_meta\tfloor_args\t-\t-\t%s\n' "$fargs" >> "$RESULTS"
      SERVER_NAME=- record floor send_us "$(sed -n 's/.*writer \([0-9.]*\) us CPU per write.*/\1/p' <<<"$fout")"
    else
      SERVER_NAME=- fail "send_floor $fargs"
    fi
  fi
  # (b) at the same offered load for all: half of nchan's saturation rate
  if has "$SCENARIOS" b && [ -n "${SAT[nchan]:-}" ]; then
    same=$(half_rate "${SAT[nchan]}")
    for SERVER_NAME in herald nchan ws; do
      has "$ONLY" "$SERVER_NAME" || continue
      log "run $RUN: $SERVER_NAME at $same publishes/s (50% of nchan's saturation)"
      with_server b_same scen_delivery b_same "$A_LARGE" 1 "$same" "$DUR"
      record b_same offered_rate "$same"
    done
  fi
done

# ---- the table ----------------------------------------------------------
echo
table "$RESULTS" | tee "$RUNDIR/table.txt"
if [ -n "$OUT" ]; then
  cp "$RUNDIR/table.txt" "$OUT"
  cp "$RESULTS" "$OUT.tsv"
fi
if [ "${#FAILED[@]}" -gt 0 ]; then
  log "${#FAILED[@]} failed:"
  printf '  %s\n' "${FAILED[@]}" >&2
  exit 1
fi
