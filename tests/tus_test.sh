#!/usr/bin/env bash
# Starts a reeld and runs the tus tests against it: tus-js-client the way
# Gcore's Streaming API uses it, plus raw requests (tests/tus/), and, on a
# second reeld serving HTTPS, Gcore's documented upload flow to
# "https://{hostname}/upload/"; then, with curl, an upload that outlives a
# restart of reeld and an expired upload swept at start.
# Usage: tus_test.sh BUILD_DIR
set -euo pipefail
build=$1
key=sk-tus-test
max=$((48 << 20))
source "$(dirname "$0")/lib.sh"
start_reeld "$build" "$key" --max-upload-bytes "$max"

# The HTTPS node (its own port, data and certificate): Gcore's clients
# upload to https://{hostname}/upload/.
tls_port=$(python3 "$root/tests/free_port.py")
tls_base="https://127.0.0.1:$tls_port"
tls_pid=
trap '[ -n "$tls_pid" ] && kill "$tls_pid" 2>/dev/null && wait "$tls_pid" 2>/dev/null; cleanup' EXIT
openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 \
  -addext subjectAltName=IP:127.0.0.1 -days 2 \
  -keyout "$work/tls-key.pem" -out "$work/tls-cert.pem" 2>/dev/null
"$build/reeld" --listen "127.0.0.1:$tls_port" --data "$work/tls-data" \
  --bootstrap-key "$key" --chunk-seconds 2 --segment-seconds 2 \
  --tls-cert "$work/tls-cert.pem" --tls-key "$work/tls-key.pem" \
  --player-dir "$root/node_modules/hls.js/dist" >"$work/reeld-tls.log" 2>&1 &
tls_pid=$!
for _ in $(seq 1 100); do
  curl -sf --cacert "$work/tls-cert.pem" "$tls_base/healthz" >/dev/null && break
  sleep 0.1
done
curl -sf --cacert "$work/tls-cert.pem" "$tls_base/healthz" >/dev/null ||
  { echo "the HTTPS reeld did not start:"; cat "$work/reeld-tls.log"; exit 1; }

# 6 s 640x360 with a tone (a few hundred KiB: several 256 KiB chunks).
ffmpeg -v error -y -f lavfi -i testsrc2=size=640x360:rate=25 \
  -f lavfi -i sine=frequency=440 -t 6 -c:v libx264 -preset ultrafast \
  -g 25 -pix_fmt yuv420p -c:a aac "$work/clip.mp4"

cd "$root"
status=0
REEL_BASE="$base" REEL_KEY="$key" REEL_WORK="$work" REEL_MAX_UPLOAD="$max" \
  REEL_TLS_BASE="$tls_base" NODE_EXTRA_CA_CERTS="$work/tls-cert.pem" \
  timeout 180 node --test --test-concurrency=1 tests/tus/ || status=$?
if [ "$status" -ne 0 ]; then
  echo "--- reeld log (last 60 lines)"; tail -60 "$work/reeld.log"
  echo "--- HTTPS reeld log (last 30 lines)"; tail -30 "$work/reeld-tls.log"
  exit "$status"
fi
kill "$tls_pid"; wait "$tls_pid" 2>/dev/null || true; tls_pid=

fail() { echo "FAIL: $*"; echo "--- reeld log (last 40 lines)"; tail -40 "$work/reeld.log"; exit 1; }
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
b64() { printf %s "$1" | base64 -w0; }
# A response's status and one header: "STATUS VALUE".
status_and() {
  local header=$1; shift
  curl -s -o /dev/null -D - "$@" |
    awk -v h="$(echo "$header" | tr A-Z a-z)" '
      NR == 1 { s = $2 }
      { line = $0; sub(/\r$/, "", line); split(line, kv, ": ")
        if (tolower(kv[1]) == h) v = kv[2] }
      END { print s, v }'
}

# An upload that outlives a restart.
size=$(stat -c %s "$work/clip.mp4")
half=$((size / 2))
head -c "$half" "$work/clip.mp4" >"$work/first"
tail -c +$((half + 1)) "$work/clip.mp4" >"$work/rest"
video=$(curl -sf -H "Authorization: APIKey $key" -H 'Content-Type: application/json' \
  -d '{"video":{"name":"restart"}}' "$base/streaming/videos" | json 'd[0]["id"]')
params=$(curl -sf -H "Authorization: APIKey $key" "$base/streaming/videos/$video/upload")
token=$(echo "$params" | json 'd["token"]')
uuid=$(echo "$params" | json 'd["video"]["slug"]')
read -r code url < <(status_and Location -X POST -H 'Tus-Resumable: 1.0.0' \
  -H "Upload-Length: $size" \
  -H "Upload-Metadata: filename $(b64 clip.mp4),token $(b64 "$token"),video_id $(b64 "$video")" \
  "$base/upload/")
[ "$code" = 201 ] || fail "creation answered $code"
patch() { # OFFSET FILE -> "STATUS NEW_OFFSET"
  status_and Upload-Offset -X PATCH -H 'Tus-Resumable: 1.0.0' \
    -H 'Content-Type: application/offset+octet-stream' -H "Upload-Offset: $1" \
    --data-binary "@$2" "$url"
}
read -r code offset < <(patch 0 "$work/first")
[ "$code" = 204 ] && [ "$offset" = "$half" ] || fail "first half: $code $offset"

# An upload left idle past its expiry, as the node would have left it.
expired=ExpiredUpload0123456789ab
printf %s "{\"video\":\"$uuid\",\"tenant\":\"default\",\"length\":10,\"offset\":0,\"expires_ms\":1}" \
  >"$work/data/tus/$expired.json"
: >"$work/data/tus/$expired.bin"

kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
start_reeld "$build" "$key" --max-upload-bytes "$max"

[ ! -e "$work/data/tus/$expired.json" ] && [ ! -e "$work/data/tus/$expired.bin" ] ||
  fail "the expired upload was not swept at start"
read -r code offset < <(status_and Upload-Offset -I -H 'Tus-Resumable: 1.0.0' "$url")
[ "$code" = 200 ] && [ "$offset" = "$half" ] || fail "HEAD after restart: $code $offset"
read -r code offset < <(patch "$half" "$work/rest")
[ "$code" = 204 ] && [ "$offset" = "$size" ] || fail "second half: $code $offset"
sum=$(sha256sum "$work/clip.mp4" | cut -d' ' -f1)
for _ in $(seq 1 80); do
  got=$(curl -sf -H "Authorization: Bearer $key" "$base/v1/videos/$uuid" |
    json 'd["source"]["sha256"]')
  [ "$got" = "$sum" ] && break
  sleep 0.25
done
[ "$got" = "$sum" ] || fail "source after restart: $got, want $sum"
[ ! -e "$work/data/tus/$(basename "$url").bin" ] || fail "the .bin stayed behind"
echo "ok - an upload outlives a restart; an expired one is swept at start"
