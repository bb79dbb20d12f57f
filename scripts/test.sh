#!/usr/bin/env bash
# Installs what the tests need, builds digue, runs every test (unit + integration with real
# servers on loopback), then a short libFuzzer run of each fuzz target.
set -euo pipefail
cd "$(dirname "$0")/.."
# The tests start real servers that need root: smtp-sink -u nobody, Dovecot, a tmpfs mount.
if [ "$(id -u)" -ne 0 ]; then
  echo "scripts/test.sh: must run as root (smtp-sink -u nobody, Dovecot and the tmpfs" \
    "mount in the tests need it)" >&2
  exit 1
fi
# The test data (corpus, SPF suite, MIME samples) lives next to the checkout.
if [ ! -d ../shared/data ]; then
  echo "scripts/test.sh: $(cd .. && pwd)/shared/data is missing: the tests read their data" \
    "(corpus, SPF suite, MIME samples) from ../shared/data next to the checkout" >&2
  exit 1
fi
bash scripts/install-deps.sh
export CCACHE_DIR="${CCACHE_DIR:-$HOME/.cache/ccache}"
bash scripts/build.sh -DDIGUE_WERROR=ON
jobs=$(nproc 2>/dev/null || echo 2)
# Unit and integration tests; integration tests start their own servers on 127.0.0.1.
(cd build && ctest --output-on-failure --timeout 900 -j"$jobs")
bash scripts/fuzz.sh "${DIGUE_FUZZ_SECONDS:-30}"
