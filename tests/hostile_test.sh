#!/usr/bin/env bash
# Hostile input against one reeld (tests/hostile/): makes the bad media,
# a canary video that must keep playing, and keys of two tenants.
# Usage: hostile_test.sh BUILD_DIR
set -euo pipefail
build=$1
key=sk-hostile-test
source "$(dirname "$0")/lib.sh"
# No --import-allow: loopback imports must be refused.
start_reeld "$build" "$key" --max-upload-bytes $((8 << 20))

key2=$(new_key "$key" '{"tenant":"other"}')
pat_read=$(new_key "$key" '{"tenant":"default","scopes":["videos:read"]}')

media=$(mktemp -d /tmp/reel-hostile-media-XXXXXX)
trap 'cleanup; rm -rf "$media"' EXIT
ff() { ffmpeg -v error -y "$@"; }
ff -f lavfi -i testsrc2=size=320x240:rate=25 -f lavfi -i sine -t 3 \
  -c:v libx264 -preset ultrafast -pix_fmt yuv420p -c:a aac "$media/small.mp4"
head -c $((10 << 20)) /dev/urandom > "$media/big.bin"
mkdir "$media/bad"
size=$(stat -c %s "$media/small.mp4")
head -c $((size / 2)) "$media/small.mp4" > "$media/bad/truncated.mp4"
ff -f lavfi -i smptebars=size=64x64 -frames:v 1 "$media/bad/disguised.mp4.png"
mv "$media/bad/disguised.mp4.png" "$media/bad/disguised.mp4"
head -c 4096 /dev/urandom > "$media/bad/noise.mp4"
ff -f lavfi -i sine -t 1 -c:a aac "$media/bad/audio-only.m4a"
# A picture size and a frame rate no camera makes (headers only).
printf 'YUV4MPEG2 W20000 H20000 F25:1 Ip A1:1 C420jpeg\nFRAME\n' > "$media/bad/huge.y4m"
head -c 1000 /dev/zero >> "$media/bad/huge.y4m"
{ printf 'YUV4MPEG2 W64 H64 F100000:1 Ip A1:1 C420jpeg\n'
  for _ in 1 2 3; do printf 'FRAME\n'; head -c 6144 /dev/zero; done; } > "$media/bad/fps.y4m"
# A video with 200 audio streams.
maps=()
for _ in $(seq 1 200); do maps+=(-map 1:a); done
ff -f lavfi -i testsrc2=size=64x64:rate=5 -f lavfi -i sine -t 0.4 -map 0:v "${maps[@]}" \
  -c:v libx264 -preset ultrafast -c:a pcm_s16le "$media/bad/streams.mkv"
# A video stream with no frames at all.
ff -f lavfi -i testsrc2=size=64x64:rate=5 -frames:v 0 -c:v libx264 "$media/bad/no-frames.mp4" || true
[ -s "$media/bad/no-frames.mp4" ] || rm -f "$media/bad/no-frames.mp4"

canary=$(curl -sf -H "Authorization: Bearer $key" -F video=@"$media/small.mp4" -F folder=root \
  "$base/api/client/v1/uploads" | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["id"])')
for _ in $(seq 1 240); do
  state=$(curl -sf -H "Authorization: Bearer $key" "$base/v1/videos/$canary" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["state"])')
  [ "$state" = ready ] && break
  sleep 0.25
done
[ "$state" = ready ] || { echo "canary: $state"; tail -30 "$work/reeld.log"; exit 1; }

cd "$root"
status=0
REEL_BASE="$base" REEL_KEY="$key" REEL_KEY2="$key2" REEL_PAT_READ="$pat_read" \
  REEL_DATA="$work/data" REEL_WORK="$media" REEL_CANARY="$canary" \
  timeout 400 node --test --test-concurrency=1 tests/hostile/ || status=$?
if [ "$status" -ne 0 ]; then
  echo "--- reeld log (last 60 lines)"; tail -60 "$work/reeld.log"
fi
kill -0 "$pid" || { echo "reeld died"; exit 1; }
exit "$status"
