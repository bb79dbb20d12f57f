#!/usr/bin/env bash
# Installs what digue needs, builds it, and runs the daemon on conf/digue.toml: SMTP on
# 127.0.0.1:2525, LMDB store, spool and Maildir delivery under ./data. Ctrl-C stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh --build-only
bash scripts/build.sh
mkdir -p data
exec build/digued --config conf/digue.toml
