#!/usr/bin/env bash
# Configures and builds Herald, warnings as errors (HERALD_WERROR).
# HERALD_SANITIZE=1 builds with ASan+UBSan into build-asan/ instead of
# build/. Prints the build directory last.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${HERALD_SANITIZE:-0}" = 1 ]; then
  dir=build-asan
  opts=(-DHERALD_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug -DHERALD_WERROR=ON)
else
  dir=build
  opts=(-DHERALD_WERROR=ON)
fi
cmake -S . -B "$dir" "${opts[@]}" >/dev/null
cmake --build "$dir" -j"$(nproc)" >&2
echo "$dir"
