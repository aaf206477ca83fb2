#!/usr/bin/env bash
# Installs what is missing, builds, and runs the whole test suite (CTest).
set -euo pipefail
cd "$(dirname "$0")"
./ops/install-deps.sh
./ops/build.sh
cd build
ctest --output-on-failure -j2 "$@"
