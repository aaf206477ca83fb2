#!/usr/bin/env bash
# Starts a reeld and runs the api.video dialect's tests against it: the
# official Node client plus curl (tests/apivideo/). Usage:
# apivideo_test.sh BUILD_DIR
set -euo pipefail
build=$1
key=sk-apivideo-test
ttl=3
source "$(dirname "$0")/lib.sh"
# URL imports come from this node itself, on 127.0.0.1: allowed here.
start_reeld "$build" "$key" --max-upload-bytes $((48 << 20)) \
  --import-allow 127.0.0.0/8 --access-token-ttl "$ttl"
key2=$(new_key "$key" '{"tenant":"other"}')

# 6 s 640x360 with a tone; a lossless noisy clip of three 10 MiB chunks; a
# JPEG for thumbnails.
ffmpeg -v error -y -f lavfi -i testsrc2=size=640x360:rate=25 \
  -f lavfi -i sine=frequency=440 -t 6 -c:v libx264 -preset ultrafast \
  -g 25 -pix_fmt yuv420p -c:a aac "$work/small.mp4"
ffmpeg -v error -y -f lavfi -i testsrc2=size=640x360:rate=25 \
  -f lavfi -i anoisesrc=d=3 -vf noise=alls=40:allf=t -t 3 -c:v libx264 \
  -preset ultrafast -qp 0 -g 25 -pix_fmt yuv420p -c:a aac "$work/big.mp4"
ffmpeg -v error -y -f lavfi -i smptebars=size=320x180 -frames:v 1 \
  "$work/poster.jpg"

cd "$root"
status=0
REEL_BASE="$base" REEL_KEY="$key" REEL_KEY2="$key2" \
  REEL_WORK="$work" REEL_TOKEN_TTL="$ttl" \
  timeout 600 node --test --test-concurrency=1 tests/apivideo/ || status=$?
if [ "$status" -ne 0 ]; then
  echo "--- reeld log (last 60 lines)"; tail -60 "$work/reeld.log"
fi
exit "$status"
