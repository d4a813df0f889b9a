#!/usr/bin/env bash
# Builds the libFuzzer harnesses of test/fuzz (clang-14, ASan + UBSan,
# warnings as errors, into build-fuzz/) and runs each one for SECONDS
# (default 60) on a scratch copy of its seed corpus test/fuzz/corpus/<module>/:
# new inputs never go into the committed corpus. Exits non-zero when a
# harness finds a crash, a timeout or a leak; the input that did it is kept
# under build-fuzz/fuzz-work/<harness>/artifacts/ (save it as
# test/fuzz/regressions/<module>-<short-name>).
# Prints the CPU time used and the number of runs.
#   ./scripts/fuzz.sh [SECONDS]
#   CC=clang-15        another clang (default clang-14)
#   FUZZ_JOBS=N        N fuzzing processes per harness (libFuzzer -fork=N) that
#                      keep going after a finding; the run still fails at the end
#   FUZZ_ARGS="..."    more libFuzzer flags, e.g. "-seed=1 -only_ascii=1"
#   FUZZ_RESUME=1      start from the scratch corpus a previous run grew
# Replay a saved input: build-fuzz/test/fuzz/schema_fuzz test/fuzz/regressions/<file>;
# all of them: ctest --test-dir build-fuzz -L fuzz
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-60}
if ! [[ $seconds =~ ^[1-9][0-9]*$ ]]; then
  echo "usage: $0 [SECONDS]" >&2
  exit 2
fi
jobs=${FUZZ_JOBS:-0}
read -r -a extra <<<"${FUZZ_ARGS:-}"

CC=${CC:-clang-14} cmake -S . -B build-fuzz -DHERALD_FUZZ=ON -DHERALD_WERROR=ON \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:strict_string_checks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

# Flags from test/fuzz/<harness>.options ("[libfuzzer]" then "key = value" lines);
# a dictionary is named relative to test/fuzz.
options_of() {
  local file=test/fuzz/$1.options key value
  [ -f "$file" ] || return 0
  while IFS='=' read -r key value; do
    key=${key//[[:space:]]/}
    value=${value#"${value%%[![:space:]]*}"}
    value=${value%"${value##*[![:space:]]}"}
    case $key in
      '' | '#'* | '['*) ;;
      dict) echo "-dict=$PWD/test/fuzz/$value" ;;
      *) echo "-$key=$value" ;;
    esac
  done <"$file"
}

total_cpu=0
total_runs=0
failed=()
for src in test/fuzz/*_fuzz.c; do
  name=$(basename "$src" .c)
  module=${name%_fuzz}
  cmake --build build-fuzz --target "$name" -j"$(nproc)" >&2

  work=build-fuzz/fuzz-work/$name
  if [ "${FUZZ_RESUME:-0}" = 1 ] && [ -d "$work/corpus" ]; then
    rm -rf "$work/artifacts"
  else
    rm -rf "$work"
  fi
  mkdir -p "$work/corpus" "$work/artifacts"
  if [ -d "test/fuzz/corpus/$module" ]; then
    cp -R "test/fuzz/corpus/$module/." "$work/corpus/"
  fi
  mapfile -t opts < <(options_of "$name")
  args=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
        -artifact_prefix="$PWD/$work/artifacts/" "${opts[@]}")
  if [ "$jobs" -gt 0 ]; then
    args+=(-fork="$jobs" -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1)
  fi
  args+=("${extra[@]}")

  echo "fuzz: $name for ${seconds}s (log: $work/log)" >&2
  rc=0
  TIMEFORMAT='%3U %3S'
  { time { "build-fuzz/test/fuzz/$name" "${args[@]}" "$work/corpus" >"$work/log" 2>&1 || rc=$?; }; } 2>"$work/cpu"

  read -r user sys <"$work/cpu"
  cpu=$(awk -v u="$user" -v s="$sys" 'BEGIN { printf "%.1f", u + s }')
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log" | tail -1)
  if [ -z "$runs" ]; then # fork mode: the last status line counts every job's runs
    runs=$(sed -n 's/^#\([0-9]\{1,\}\)[: ].*/\1/p' "$work/log" | tail -1)
  fi
  runs=${runs:-0}
  total_cpu=$(awk -v a="$total_cpu" -v b="$cpu" 'BEGIN { printf "%.1f", a + b }')
  total_runs=$((total_runs + runs))

  findings=$(find "$work/artifacts" -type f | sort)
  if [ "$rc" -ne 0 ] || [ -n "$findings" ]; then
    failed+=("$name")
    echo "fuzz: $name FAILED (exit $rc); last lines of $work/log:" >&2
    grep -E 'ERROR|SUMMARY|^ *#[0-9]+ 0x|deadly signal|Test unit written' "$work/log" | head -40 >&2 || true
    while read -r f; do
      [ -z "$f" ] || echo "fuzz: finding $f" >&2
    done <<<"$findings"
  fi
  echo "fuzz: $name: $runs runs, ${cpu}s CPU"
done

echo "fuzz: total: $total_runs runs, ${total_cpu}s CPU"

# Inputs that once crashed or hung a harness must keep passing.
if ! ctest --test-dir build-fuzz -L fuzz --output-on-failure >&2; then
  failed+=(regressions)
fi
if [ "${#failed[@]}" -gt 0 ]; then
  echo "fuzz: findings in ${failed[*]}" >&2
  exit 1
fi
