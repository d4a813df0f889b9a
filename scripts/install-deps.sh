#!/usr/bin/env bash
# Installs the Debian 12 packages Herald needs to build, run and test.
# Uses sudo when not run as root. Node.js is taken from Debian only when the
# machine has none (a newer one from elsewhere is fine too).
set -euo pipefail

PACKAGES=(
  build-essential cmake pkg-config          # the toolchain
  libwebsockets-dev libmicrohttpd-dev       # client port, REST API port
  libjansson-dev libssl-dev                 # JSON; random ids, later HMAC and TLS
  libcmocka-dev                             # unit tests
  curl valgrind                             # integration tests, leak checks
)

SUDO=()
if [ "$(id -u)" -ne 0 ]; then SUDO=(sudo); fi

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
command -v node >/dev/null && command -v npm >/dev/null || missing+=(nodejs npm)

if [ "${#missing[@]}" -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  "${SUDO[@]}" apt-get update -q
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
