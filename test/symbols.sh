#!/usr/bin/env bash
# Fails when a static library defines a global symbol without its module's
# prefix (docs: STYLE.md, convention 2), listing every such symbol.
#   symbols.sh ALLOW_FILE LIB=PREFIX=ARCHIVE...
# ALLOW_FILE lines are "LIB SYMBOL" (# comments): offenders accepted for now.
# An allowed name that is no longer exported is reported, so the list can
# shrink, but does not fail the test.
set -euo pipefail

allow_file=$1
shift
NM=${NM:-nm}

allowed=$(sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$allow_file" | awk '{print $1 " " $2}')
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
  accepted=()
  for s in $syms; do
    # AddressSanitizer's ODR indicator for a global (gcc __odr_asan.NAME,
    # clang __odr_asan_gen_NAME): judged by the global's own name
    name=${s#__odr_asan.}
    name=${name#__odr_asan_gen_}
    case $name in "$prefix"*) continue ;; esac
    if grep -qxF "$lib $name" <<<"$allowed"; then
      accepted+=("$s")
    else
      bad+=("$s")
    fi
  done
  if [ ${#bad[@]} -gt 0 ]; then
    echo "FAIL $lib: ${#bad[@]} global symbol(s) without the prefix $prefix:"
    printf '  %s\n' "${bad[@]}"
    status=1
  else
    echo "ok   $lib: every global symbol starts with $prefix"
  fi
  if [ ${#accepted[@]} -gt 0 ]; then
    echo "     $lib: ${#accepted[@]} allowed for now ($(basename "$allow_file")): ${accepted[*]}"
  fi
  for a in $(awk -v l="$lib" '$1 == l {print $2}' <<<"$allowed"); do
    grep -qxF "$a" <<<"$syms" || echo "note $lib: $a is no longer exported: remove it from $(basename "$allow_file")"
  done
done
exit $status
