#!/usr/bin/env bash
# A full disk during an upload and during a transcode: clear errors, the
# node keeps serving, nothing half-written is kept, and work succeeds once
# space returns. The data directory is a 48 MiB tmpfs this test mounts
# (it needs root; without it the test says so and exits 77, which CTest
# reports as skipped, never as passed).
# Usage: diskfull_test.sh BUILD_DIR
set -euo pipefail
build=$1
key=sk-diskfull-test
source "$(dirname "$0")/lib.sh"
small_fs="$work/data"
mkdir -p "$small_fs"
if ! mount -t tmpfs -o size=48m tmpfs "$small_fs" 2>/dev/null; then
  echo "SKIP: cannot mount a small file system here (needs root)"; exit 77
fi
trap 'cleanup_all' EXIT
cleanup_all() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
  pid=
  umount "$small_fs" 2>/dev/null || umount -l "$small_fs" 2>/dev/null || true
  cleanup
}
start_reeld "$build" "$key" --workers 1
auth=(-H "Authorization: Bearer $key")
upload() {
  curl -s -w '\n%{http_code}' "${auth[@]}" -F video=@"$1" -F folder=root "$base/api/client/v1/uploads"
}
state_of() {
  curl -sf "${auth[@]}" "$base/v1/videos/$1" | python3 -c 'import json,sys; j=json.load(sys.stdin); print(j["state"], j["failure_reason"] or "")'
}
wait_done() {
  for _ in $(seq 1 240); do
    s=$(state_of "$1")
    case "$s" in ready*|failed*) echo "$s"; return;; esac
    sleep 0.25
  done
  echo "timeout $s"
}

# 1. An upload larger than the space left: refused with a clear error, the
#    partial file removed, the node still answers.
head -c $((60 << 20)) /dev/urandom > "$work/huge.bin"
out=$(upload "$work/huge.bin")
code=$(tail -1 <<<"$out")
echo "upload into a full disk: $code $(head -1 <<<"$out")"
[ "$code" = 507 ] || { echo "expected 507 Insufficient Storage"; exit 1; }
grep -q "space" <<<"$out" || { echo "the error does not say why"; exit 1; }
[ -z "$(ls -A "$small_fs/tmp")" ] || { echo "a partial upload was kept"; exit 1; }
curl -sf "$base/healthz" >/dev/null

# 2. A transcode that runs out of space: the video waits (and says why)
#    instead of failing: a full disk is not bad media.
ffmpeg -v error -y -f lavfi -i testsrc2=size=640x360:rate=25 -f lavfi -i sine -t 8 \
  -c:v libx264 -preset ultrafast -g 25 -pix_fmt yuv420p -c:a aac "$work/clip.mp4"
avail=$(df --output=avail -B1 "$small_fs" | tail -1)
filler_size=$(( avail - $(stat -c %s "$work/clip.mp4") - (512 << 10) ))
head -c "$filler_size" /dev/zero > "$small_fs/filler" 2>/dev/null || true
out=$(upload "$work/clip.mp4")
code=$(tail -1 <<<"$out")
[ "$code" = 202 ] || { echo "the clip should fit: $code $(head -1 <<<"$out")"; exit 1; }
id=$(head -1 <<<"$out" | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["id"])')
waiting=
for _ in $(seq 1 240); do
  waiting=$(curl -sf "${auth[@]}" "$base/v1/videos/$id" | python3 -c 'import json,sys; j=json.load(sys.stdin); print(j["state"], j["waiting"] or "")')
  case "$waiting" in *space*) break;; failed*|ready*) break;; esac
  sleep 0.25
done
echo "transcode on a full disk: $waiting"
case "$waiting" in transcoding*space*|probing*space*) ;; *) echo "expected a video that waits and says the disk is full"; exit 1;; esac

# 3. Space returns: the same video goes on by itself, a new one succeeds
#    too; a restart finds the store intact.
rm -f "$small_fs/filler"
s=$(wait_done "$id")
echo "after space returned: $s"
[ "${s%% *}" = ready ] || { grep -E 'video\.|error|warn' "$work/reeld.log" | tail -40; exit 1; }
[ "$(curl -sf "${auth[@]}" "$base/v1/videos/$id" | python3 -c 'import json,sys; print(json.load(sys.stdin)["waiting"])')" = None ] || { echo "still says it waits"; exit 1; }
out=$(upload "$work/clip.mp4")
id2=$(head -1 <<<"$out" | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["id"])')
s=$(wait_done "$id2")
[ "${s%% *}" = ready ] || { echo "new upload: $s"; exit 1; }
kill "$pid"; wait "$pid" || true; pid=
start_reeld "$build" "$key" --workers 1
[ "$(state_of "$id" | cut -d' ' -f1)" = ready ] || exit 1
echo "diskfull: ok"
