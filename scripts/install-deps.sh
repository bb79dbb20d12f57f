#!/usr/bin/env bash
# Installs every Debian 12 package digue needs to build, run and test. Idempotent: safe to
# run again; it skips apt-get when every package is already installed.
set -euo pipefail

build_pkgs=(
  build-essential cmake ninja-build ccache pkg-config git
  libboost1.81-dev libssl-dev libc-ares-dev libpcre2-dev liblmdb-dev lmdb-utils
  libspdlog-dev libfmt-dev libtomlplusplus-dev libsystemd-dev
  libclamav-dev libtesseract-dev libleptonica-dev tesseract-ocr tesseract-ocr-eng
  libhiredis-dev libpsl-dev libidn2-dev publicsuffix
  catch2 clang libclang-rt-14-dev
)
test_pkgs=(
  python3 python3-yaml swaks openssl iproute2 procps psmisc util-linux
  postfix nsd dnsutils redis-server dovecot-lmtpd
  clamav clamav-testfiles bogofilter spamassassin
)

want=("${build_pkgs[@]}")
if [ "${1:-}" != "--build-only" ]; then want+=("${test_pkgs[@]}"); fi

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then exit 0; fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
# Postfix is installed only for its smtp-sink/smtp-source test tools: no MTA configuration.
echo "postfix postfix/main_mailer_type select No configuration" | $SUDO debconf-set-selections
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
# Package post-install scripts may start daemons we only want as test tools; the tests start
# their own instances on loopback ports.
for svc in nsd redis-server dovecot postfix clamav-freshclam; do
  $SUDO service "$svc" stop >/dev/null 2>&1 || true
done
