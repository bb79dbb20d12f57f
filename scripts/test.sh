#!/usr/bin/env bash
# Installs what the tests need, builds digue, runs every test (unit + integration with real
# servers on loopback), then a short libFuzzer run of each fuzz target.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
export CCACHE_DIR="${CCACHE_DIR:-$HOME/.cache/ccache}"
bash scripts/build.sh -DDIGUE_WERROR=ON
jobs=$(nproc 2>/dev/null || echo 2)
# Unit and integration tests; integration tests start their own servers on 127.0.0.1.
(cd build && ctest --output-on-failure --timeout 900 -j"$jobs")
bash scripts/fuzz.sh "${DIGUE_FUZZ_SECONDS:-30}"
