#!/usr/bin/env bash
# Starts a reeld, uploads a clip, waits until it is ready and runs the
# browser test against its embed page. Usage: player_test.sh BUILD_DIR
set -euo pipefail
build=$1
key=sk-player-test
source "$(dirname "$0")/lib.sh"
start_reeld "$build" "$key"

# 12 s of moving pattern with a tone, 640x360: rungs 360p and 240p (or
# more), several segments each.
ffmpeg -v error -y -f lavfi -i testsrc2=size=854x480:rate=25 \
  -f lavfi -i sine=frequency=440 -t 12 -c:v libx264 -preset ultrafast \
  -g 25 -pix_fmt yuv420p -c:a aac "$work/clip.mp4"
id=$(curl -sf -H "Authorization: Bearer $key" -F video=@"$work/clip.mp4" \
  -F folder=root "$base/api/client/v1/uploads" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["id"])')
for _ in $(seq 1 600); do
  state=$(curl -sf -H "Authorization: Bearer $key" \
    "$base/v1/videos/$id" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["state"])')
  [ "$state" = ready ] || [ "$state" = failed ] && break
  sleep 0.2
done
if [ "$state" != ready ]; then
  echo "video ended in state $state"; cat "$work/reeld.log"; exit 1
fi

cd "$root"
REEL_BASE="$base" REEL_VIDEO="$id" \
  timeout 180 node --test tests/player/
