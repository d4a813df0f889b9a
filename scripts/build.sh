#!/usr/bin/env bash
# Configures and builds Herald. HERALD_SANITIZE=1 builds with ASan+UBSan
# into build-asan/ instead of build/. Prints the build directory last.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${HERALD_SANITIZE:-0}" = 1 ]; then
  dir=build-asan
  opts=(-DHERALD_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug)
else
  dir=build
  opts=()
fi
cmake -S . -B "$dir" "${opts[@]}" >/dev/null
cmake --build "$dir" -j"$(nproc)" >&2
echo "$dir"
