#!/usr/bin/env bash
# Webhooks: the node tests (tests/webhooks/), then a delivery that waits in
# the outbox across a restart of reeld. Usage: webhooks_test.sh BUILD_DIR
set -euo pipefail
build=$1
key=sk-webhooks-test
source "$(dirname "$0")/lib.sh"
opts=(--import-allow 127.0.0.0/8 --webhook-retry-seconds 1)
start_reeld "$build" "$key" "${opts[@]}"

ffmpeg -v error -y -f lavfi -i testsrc2=size=320x240:rate=25 \
  -f lavfi -i sine=frequency=440 -t 3 -c:v libx264 -preset ultrafast \
  -g 25 -pix_fmt yuv420p -c:a aac "$work/small.mp4"

cd "$root"
status=0
REEL_BASE="$base" REEL_KEY="$key" REEL_WORK="$work" \
  timeout 300 node --test --test-concurrency=1 tests/webhooks/ || status=$?
if [ "$status" -ne 0 ]; then
  echo "--- reeld log (last 60 lines)"; tail -60 "$work/reeld.log"; exit "$status"
fi

# Across a restart: the receiver is down, so the delivery waits; reeld
# restarts; the receiver comes up and gets it, signed.
hook_port=$(python3 "$root/tests/free_port.py")
auth=(-H "Authorization: Bearer $key" -H 'Content-Type: application/json')
secret=$(curl -sf "${auth[@]}" -d "{\"url\":\"http://127.0.0.1:$hook_port/later\",\"events\":[\"video.ready\"]}" \
  "$base/v1/webhooks" | python3 -c 'import json,sys; print(json.load(sys.stdin)["secret"])')
id=$(curl -sf -H "Authorization: Bearer $key" -F video=@"$work/small.mp4" -F folder=root \
  "$base/api/client/v1/uploads" | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["id"])')
pending() {
  curl -sf -H "Authorization: Bearer $key" "$base/v1/webhooks/deliveries?status=$1" |
    python3 -c "import json,sys; print(sum(1 for d in json.load(sys.stdin)['data'] if d['video']=='$id'))"
}
for _ in $(seq 1 240); do
  [ "$(pending pending)" = 1 ] && break
  sleep 0.5
done
[ "$(pending pending)" = 1 ] || { echo "no pending delivery"; tail -30 "$work/reeld.log"; exit 1; }
kill "$pid"; wait "$pid" || true
start_reeld "$build" "$key" "${opts[@]}"
python3 - "$hook_port" "$secret" "$work/received" <<'PY' &
import hashlib, hmac, http.server, sys
port, secret, out = int(sys.argv[1]), sys.argv[2].encode(), sys.argv[3]
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers['Content-Length']))
        good = self.headers['X-Reel-Signature'] == 'sha256=' + hmac.new(secret, body, hashlib.sha256).hexdigest()
        open(out, 'w').write(('signed ' if good else 'BAD ') + body.decode())
        self.send_response(200); self.end_headers()
    def log_message(self, *a): pass
s = http.server.HTTPServer(('127.0.0.1', port), H)
s.timeout = 60
s.handle_request()
PY
receiver=$!
for _ in $(seq 1 120); do
  [ -s "$work/received" ] && break
  sleep 0.5
done
kill "$receiver" 2>/dev/null || true
grep -q "^signed .*\"video.ready\".*$id" "$work/received" || {
  echo "not delivered after the restart: $(cat "$work/received" 2>/dev/null)"; tail -30 "$work/reeld.log"; exit 1; }
echo "delivered after a restart: ok"
