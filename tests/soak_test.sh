#!/usr/bin/env bash
# kill -9 at random moments over a soak of repeated uploads: after the last
# restart every accepted video ends ready or failed with a reason, RocksDB
# opens cleanly, and after `reelctl gc` no blob is left without a record.
# Usage: soak_test.sh BUILD_DIR [KILLS] (default $REEL_SOAK_KILLS or 50)
set -euo pipefail
build=$1
kills=${2:-${REEL_SOAK_KILLS:-50}}
key=sk-soak-test
source "$(dirname "$0")/lib.sh"
opts=(--workers 2)

ffmpeg -v error -y -f lavfi -i testsrc2=size=320x240:rate=25 -f lavfi -i sine \
  -t 4 -c:v libx264 -preset ultrafast -g 25 -pix_fmt yuv420p -c:a aac "$work/clip.mp4"
accepted="$work/accepted"
: > "$accepted"
RANDOM=42 # the same moments on every run
for i in $(seq 1 "$kills"); do
  start_reeld "$build" "$key" "${opts[@]}" || exit 1
  for _ in 1 2 3; do
    ( out=$(curl -s -m 20 -H "Authorization: Bearer $key" -F video=@"$work/clip.mp4" \
              -F folder=root "$base/api/client/v1/uploads" || true)
      id=$(printf '%s' "$out" | python3 -c 'import json,sys
try: print(json.load(sys.stdin)["data"]["id"])
except Exception: pass')
      [ -n "$id" ] && echo "$id" >> "$accepted" ) &
  done
  # Somewhere in the upload, the probe, the transcode or the packaging.
  sleep "$(( RANDOM % 3 )).$(( RANDOM % 10 ))"
  kill -9 "$pid"
  wait "$pid" 2>/dev/null || true
  wait # the uploads
  pid=
done
echo "kills: $kills, uploads accepted: $(sort -u "$accepted" | wc -l)"

# The last start: RocksDB must open; every accepted video must finish.
start_reeld "$build" "$key" "${opts[@]}"
deadline=$((SECONDS + 240))
for id in $(sort -u "$accepted"); do
  while :; do
    v=$(curl -sf -H "Authorization: Bearer $key" "$base/v1/videos/$id") || {
      echo "accepted video $id is gone"; exit 1; }
    state=$(printf '%s' "$v" | python3 -c 'import json,sys; print(json.load(sys.stdin)["state"])')
    if [ "$state" = ready ]; then break; fi
    if [ "$state" = failed ]; then
      reason=$(printf '%s' "$v" | python3 -c 'import json,sys; print(json.load(sys.stdin)["failure_reason"] or "")')
      [ -n "$reason" ] || { echo "$id failed without a reason"; exit 1; }
      echo "failed with a reason: $id: $reason"
      break
    fi
    [ $SECONDS -lt $deadline ] || { echo "$id still $state"; tail -40 "$work/reeld.log"; exit 1; }
    sleep 0.5
  done
done
# Nothing left over: gc, then every blob directory belongs to a record.
REEL_SERVER="$base" REEL_KEY="$key" "$build/reelctl" gc --older-than 0 >/dev/null
ids=""
offset=0
while :; do # every page of the list
  page=$(curl -sf -H "Authorization: Bearer $key" "$base/v1/videos?limit=100&offset=$offset" |
    python3 -c 'import json,sys; print("\n".join(v["id"] for v in json.load(sys.stdin)["data"]))')
  [ -n "$page" ] || break
  ids+="$page"$'\n'
  offset=$((offset + 100))
done
echo "videos: $(grep -c . <<<"$ids")"
for dir in sources work media; do
  for d in "$work/data/$dir"/*; do
    [ -e "$d" ] || continue
    name=$(basename "$d")
    grep -qx "$name" <<<"$ids" || { echo "orphan left: $dir/$name"; exit 1; }
  done
done
left=$(find "$work/data/tmp" -type f | wc -l)
[ "$left" -eq 0 ] || { echo "tmp files left: $left"; exit 1; }
echo "soak: ok"
