#!/usr/bin/env bash
# Starts a reeld and runs the Gcore and Flare dialects' tests against it
# (tests/dialects/). Usage: dialects_test.sh BUILD_DIR
set -euo pipefail
build=$1
key=sk-dialects-test
source "$(dirname "$0")/lib.sh"
# The test's origin server is on 127.0.0.1: allowed here.
start_reeld "$build" "$key" --import-allow 127.0.0.0/8

key2=$(new_key "$key" '{"tenant":"other"}')
pat=$(new_key "$key" '{"tenant":"default","scopes":["videos:read","videos:write","uploads:write"]}')
pat_read=$(new_key "$key" '{"tenant":"default","scopes":["videos:read"]}')

ffmpeg -v error -y -f lavfi -i testsrc2=size=640x360:rate=25 \
  -f lavfi -i sine=frequency=440 -t 6 -c:v libx264 -preset ultrafast \
  -g 25 -pix_fmt yuv420p -c:a aac "$work/small.mp4"
ffmpeg -v error -y -f lavfi -i smptebars=size=320x180 -frames:v 1 \
  "$work/poster.jpg"
# A JPEG over 1 MB (noise does not compress).
ffmpeg -v error -y -f lavfi -i nullsrc=size=1600x900 -vf noise=alls=100:allf=t \
  -frames:v 1 -q:v 1 "$work/big.jpg"

cd "$root"
status=0
REEL_BASE="$base" REEL_KEY="$key" REEL_KEY2="$key2" REEL_PAT="$pat" \
  REEL_PAT_READ="$pat_read" REEL_WORK="$work" \
  timeout 600 node --test --test-concurrency=1 tests/dialects/ || status=$?
if [ "$status" -ne 0 ]; then
  echo "--- reeld log (last 60 lines)"; tail -60 "$work/reeld.log"
fi
exit "$status"
