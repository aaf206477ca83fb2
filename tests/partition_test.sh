#!/usr/bin/env bash
# Partitions, a skewed clock and crashes against three real reeld, each in a
# network namespace of its own (tests/partition/harness.py): twenty cycles of
# a node cut off, a 2/3 split, a one-way cut, a flapping link and a kill -9
# as the network heals, with the last node's clock 60 s ahead. Clients
# upload (retrying with an Idempotency-Key), rename and delete throughout;
# afterwards every node must agree, nothing accepted may be lost or doubled,
# nothing deleted may come back, every rename answered 200 must hold, every
# ready video must play from every node, and every chunk must have been
# counted under one owner epoch. Needs root and iproute2 (CI runs as root);
# elsewhere it says so and exits 77, which CTest reports as skipped.
# Usage: partition_test.sh BUILD_DIR [CYCLES]
set -euo pipefail
build=$(cd "$1" && pwd)
cycles=${2:-20}
root=$(cd "$(dirname "$0")/.." && pwd)
if [ "$(id -u)" -ne 0 ] || ! command -v ip >/dev/null || ! ip netns list >/dev/null 2>&1; then
  echo "SKIP: network namespaces need root and iproute2"; exit 77
fi
if ! command -v faketime >/dev/null; then
  echo "SKIP: faketime is missing (ops/install-deps.sh installs it)"; exit 77
fi
work=$(mktemp -d /tmp/reel-partition-test-XXXXXX)
trap 'rm -rf "$work"' EXIT
# 4 s at 25 fps: 100 frames, two chunks.
ffmpeg -v error -y -f lavfi -i testsrc=size=160x120:rate=25 -t 4 \
  -pix_fmt yuv420p -c:v libx264 "$work/clip.mp4"
timeout --signal=TERM 600 python3 "$root/tests/partition/harness.py" \
  --build "$build" --clip "$work/clip.mp4" --frames 100 \
  --cycles "$cycles" --skew 60 --report "$work/report.json"
