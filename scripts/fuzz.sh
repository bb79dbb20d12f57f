#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, ASan+UBSan) in build-fuzz and runs each for N seconds
# (default 30). Fails on any crash or sanitizer report.
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-30}"
CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DDIGUE_FUZZ=ON -DDIGUE_TESTS=OFF \
  -DCMAKE_CXX_FLAGS="-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined" \
  >/dev/null
targets=$(cd fuzz && ls *_fuzz.cpp | sed 's/\.cpp$//')
cmake --build build-fuzz -j"$(nproc)" --target $targets
for t in $targets; do
  corpus="build-fuzz/corpus-$t"
  artifacts="build-fuzz/artifacts-$t"
  log="build-fuzz/fuzz-$t.log"
  mkdir -p "$corpus" "$artifacts"
  seeds=()
  [ -d "fuzz/seeds/$t" ] && seeds+=("fuzz/seeds/$t")
  echo "fuzz: $t for ${secs}s (log: $log)"
  # The whole run goes to the log; crash inputs go to $artifacts, not the source tree.
  rc=0
  "build-fuzz/$t" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$artifacts/" "$corpus" "${seeds[@]}" >"$log" 2>&1 || rc=$?
  if [ "$rc" -ne 0 ]; then
    cat "$log"
    echo "fuzz: $t FAILED (exit $rc); full log: $log; crash inputs in $artifacts/" >&2
    exit 1
  fi
  tail -n 4 "$log"
done
echo "fuzz: all targets ran clean"
