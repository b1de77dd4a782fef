#!/usr/bin/env bash
# Installs the Debian 12 packages parkgw needs to build, test and run the
# demo. As root it runs apt-get; otherwise it prints the exact command.
set -euo pipefail

PACKAGES=(build-essential cmake pkg-config libmodbus-dev libpaho-mqtt-dev libssl-dev
          libsqlite3-dev libconfig-dev libsystemd-dev libjansson-dev libmicrohttpd-dev
          libcurl4-openssl-dev mosquitto mosquitto-clients)
# Test-only tools: openssl makes certificates for the TLS tests, clang and its
# runtime build the libFuzzer targets of the fuzz smoke run, chromium opens
# the dashboard in it_dashboard (with a CJK font so its screenshots show the
# enterprises' Chinese names), faketime's libfaketime steps the daemon's
# wall clock (and only it) in it_clock, poppler-utils' pdftotext reads back
# the PDF that chromium prints of the HTML statements (it_bill_html), and
# Debian's prometheus scrapes GET /metrics in it_prometheus.
if [ "${1:-}" = --test ]; then
  PACKAGES+=(openssl clang libclang-rt-14-dev chromium fonts-wqy-zenhei faketime poppler-utils
             prometheus)
fi

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ]; then
  echo "deps: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "deps: missing packages; run as root:" >&2
  echo "  sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
