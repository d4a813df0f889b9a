#!/usr/bin/env bash
# The second README command: installs what the tests need (when missing),
# builds, and runs the whole test suite with ctest: cmocka unit tests, and
# integration tests against a real heraldd (npm ws, curl, headless Chromium).
#   HERALD_SANITIZE=1  the same suite on an ASan+UBSan build (build-asan/)
#   HERALD_VALGRIND=1  then run the unit tests, and the integration tests with
#                      heraldd, under valgrind memcheck (errors and definite
#                      or indirect leaks fail the test)
# Extra arguments go to ctest, e.g. ./scripts/test.sh -L unit
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/install-deps.sh --test
dir=$(./scripts/build.sh)
(cd test/integration && npm ci --no-audit --no-fund --loglevel=error)

if [ "${HERALD_SANITIZE:-0}" = 1 ]; then
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1
  export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
fi

ctest --test-dir "$dir" --output-on-failure -j2 "$@"

if [ "${HERALD_VALGRIND:-0}" = 1 ]; then
  # valgrind cannot follow PCRE2's JIT code (false "uninitialised" reports):
  # regexes run on PCRE2's interpreter there.
  export HERALD_REGEX_JIT=0
  vg_opts="--leak-check=full --show-leak-kinds=definite,indirect --errors-for-leak-kinds=definite,indirect"
  ctest --test-dir "$dir" -L unit --output-on-failure \
    --overwrite MemoryCheckCommandOptions="$vg_opts --error-exitcode=1" -T memcheck
  # the tests assert heraldd's exit code 0: valgrind's verdict reaches them
  HERALD_WRAPPER="valgrind -q $vg_opts --error-exitcode=99" \
    ctest --test-dir "$dir" -L integration --output-on-failure -j2
fi
