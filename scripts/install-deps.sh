#!/usr/bin/env bash
# Installs the Debian 12 packages Herald needs to build and run it, and with
# --test also what the test suite needs (bench/compare.sh's peers included:
# the suite runs it tiny), with --bench only what bench/compare.sh needs. Uses sudo when not run as root.
# Node.js is taken from Debian only when the machine has none (a newer one
# from elsewhere is fine too).
set -euo pipefail

PACKAGES=(
  build-essential cmake pkg-config          # the toolchain
  libwebsockets-dev libmicrohttpd-dev       # client port, REST API port
  libev-dev libwebsockets-evlib-ev          # epoll under libwebsockets (its plugin)
  libjansson-dev libssl-dev                 # JSON; random ids, later HMAC and TLS
  libpcre2-dev                              # schema `pattern` regexes (ECMA-262 close enough)
  liburiparser-dev                          # schema $id/$ref URI resolution, uri formats
  libcurl4-openssl-dev                      # outbound webhook requests (multi interface)
  libsqlite3-dev                            # the durable webhook queue (WAL)
  libcjose-dev                              # JWT (JWS) verification, keys pinned to their alg
  libcmocka-dev                             # unit tests (small; the build always has them)
)
if [ "${1:-}" = --test ]; then
  PACKAGES+=(
    curl                                    # integration tests: a real HTTP client
    openssl                                 # integration tests: certificates for TLS
    chromium                                # integration tests: a real browser tab
    valgrind                                # memory checks of the unit tests
    json-schema-test-suite                  # the official JSON Schema conformance cases
    clang                                   # libFuzzer harnesses (clang-14)
  )
fi
if [ "${1:-}" = --test ] || [ "${1:-}" = --bench ]; then
  # bench/compare.sh (the test suite runs it tiny): the peers Herald is
  # measured against, and the REST load
  PACKAGES+=(
    nginx-light libnginx-mod-nchan          # the nchan peer (nginx, one worker)
    wrk                                     # scenario (d): REST publish throughput
    curl                                    # readiness checks of the peers
  )
fi

SUDO=()
if [ "$(id -u)" -ne 0 ]; then SUDO=(sudo); fi

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${1:-}" = --test ] || [ "${1:-}" = --bench ]; then
  command -v node >/dev/null && command -v npm >/dev/null || missing+=(nodejs npm)
fi

if [ "${#missing[@]}" -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  "${SUDO[@]}" apt-get update -q
  # Installing nginx would start the system's nginx service (port 80 on every
  # interface): where no policy-rc.d says otherwise, refuse service starts for
  # the time of this install.
  policy=/usr/sbin/policy-rc.d
  if [ "${1:-}" != "" ] && [ ! -e "$policy" ]; then
    trap '"${SUDO[@]}" rm -f "$policy"' EXIT
    printf '#!/bin/sh\nexit 101\n' | "${SUDO[@]}" tee "$policy" >/dev/null
    "${SUDO[@]}" chmod 755 "$policy"
  fi
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
