#!/usr/bin/env bash
# Installs what is missing, builds, and starts one reel node in the
# foreground on 127.0.0.1:8080 with its data in ./data. The first start
# prints the admin API key. Extra arguments go to reeld (see reeld --help).
set -euo pipefail
cd "$(dirname "$0")"
./ops/install-deps.sh
./ops/build.sh
exec ./build/reeld --listen 127.0.0.1:8080 --data ./data "$@"
