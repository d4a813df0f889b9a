#!/usr/bin/env bash
# Fails when a static library defines a global symbol without its module's
# prefix (STYLE.md, convention 2), listing every such symbol.
#   symbols.sh LIB=PREFIX=ARCHIVE...
set -euo pipefail

NM=${NM:-nm}
status=0
for spec in "$@"; do
  lib=${spec%%=*}
  rest=${spec#*=}
  prefix=${rest%%=*}
  archive=${rest#*=}
  if [ ! -f "$archive" ]; then
    echo "FAIL $lib: no archive at $archive (not built?)"
    status=1
    continue
  fi
  # defined globals: "address TYPE name" (nm prints "file.o:" headers and blank lines too)
  syms=$("$NM" -g --defined-only "$archive" | awk 'NF == 3 {print $3}' | sort -u)
  bad=()
  for s in $syms; do
    # AddressSanitizer's ODR indicator for a global (gcc __odr_asan.NAME,
    # clang __odr_asan_gen_NAME): judged by the global's own name
    name=${s#__odr_asan.}
    name=${name#__odr_asan_gen_}
    case $name in "$prefix"*) continue ;; esac
    # the one deliberate exception: gateway/ws_rx_guard.c defines recv() in
    # glibc's place, to see what libwebsockets reads (unmasked frames)
    if [ "$lib" = herald_gateway ] && [ "$name" = recv ]; then continue; fi
    bad+=("$s")
  done
  if [ ${#bad[@]} -gt 0 ]; then
    echo "FAIL $lib: ${#bad[@]} global symbol(s) without the prefix $prefix:"
    printf '  %s\n' "${bad[@]}"
    status=1
  else
    echo "ok   $lib: every global symbol starts with $prefix"
  fi
done
exit $status
