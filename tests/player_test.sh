#!/usr/bin/env bash
# Starts a reeld, uploads a clip, waits until it is ready and runs the
# browser test against its embed page. Usage: player_test.sh BUILD_DIR
set -euo pipefail
build=$1
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/reel-player-XXXXXX)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
key=sk-player-test
pid=
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

"$build/reeld" --listen "127.0.0.1:$port" --data "$work/data" \
  --bootstrap-key "$key" --chunk-seconds 2 --segment-seconds 2 \
  --player-dir "$root/node_modules/hls.js/dist" >"$work/reeld.log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do
  curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break
  sleep 0.1
done

# 12 s of moving pattern with a tone, 640x360: rungs 360p and 240p (or
# more), several segments each.
ffmpeg -v error -y -f lavfi -i testsrc2=size=854x480:rate=25 \
  -f lavfi -i sine=frequency=440 -t 12 -c:v libx264 -preset ultrafast \
  -g 25 -pix_fmt yuv420p -c:a aac "$work/clip.mp4"
id=$(curl -sf -H "Authorization: Bearer $key" -F video=@"$work/clip.mp4" \
  -F folder=root "http://127.0.0.1:$port/api/client/v1/uploads" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["id"])')
for _ in $(seq 1 600); do
  state=$(curl -sf -H "Authorization: Bearer $key" \
    "http://127.0.0.1:$port/v1/videos/$id" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["state"])')
  [ "$state" = ready ] || [ "$state" = failed ] && break
  sleep 0.2
done
if [ "$state" != ready ]; then
  echo "video ended in state $state"; cat "$work/reeld.log"; exit 1
fi

cd "$root"
REEL_BASE="http://127.0.0.1:$port" REEL_VIDEO="$id" \
  timeout 180 node --test tests/player/
