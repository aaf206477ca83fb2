#!/usr/bin/env bash
# What TLS costs on the data plane (blob transfers between nodes): the same
# file fetched over 127.0.0.1 with mutual TLS and without, in one process,
# interleaved (bench/blob_bench.cpp). Prints MB/s per run and the medians.
#
# Usage: bench/dataplane.sh [SIZE_MIB] [RUNS]   (defaults 1024 and 3)
set -euo pipefail
cd "$(dirname "$0")/.."
./ops/install-deps.sh
./ops/build.sh >/dev/null
work=$(mktemp -d /tmp/reel-bench-dataplane-XXXXXX)
trap 'rm -rf "$work"' EXIT
./build/blob_bench "$work" "${1:-1024}" "${2:-3}"
