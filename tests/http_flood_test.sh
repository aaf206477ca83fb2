#!/usr/bin/env bash
# The HTTP front (http/front.cpp) against real reelds: endless and oversized
# request heads (431/414, memory bounded), a head that trickles (dropped at
# its deadline), a flood of thousands of connections (others still
# answered, memory bounded), the connection cap (room made from idle
# connections, 503 when all are busy), pipelining, --metrics-listen and
# X-Content-Type-Options on every answer. The checks are in
# tests/http_flood/checks.py. Usage: http_flood_test.sh BUILD_DIR
set -euo pipefail
build=$1
key=sk-flood-test
source "$(dirname "$0")/lib.sh"

free_port() {
  python3 "$root/tests/free_port.py"
}
metrics_port=$(free_port)
start_reeld "$build" "$key" --metrics-listen "127.0.0.1:$metrics_port"

# A second node with room for 4 connections and 2 threads kept ready.
small_port=$(free_port)
"$build/reeld" --listen "127.0.0.1:$small_port" --data "$work/small-data" \
  --bootstrap-key "$key" --http-max-connections 4 --http-threads 2 \
  --player-dir "$root/node_modules/hls.js/dist" >"$work/small.log" 2>&1 &
small_pid=$!
stop_small() {
  kill "$small_pid" 2>/dev/null && wait "$small_pid" 2>/dev/null || true
  cleanup
}
trap stop_small EXIT
for _ in $(seq 1 100); do
  curl -sf "http://127.0.0.1:$small_port/healthz" >/dev/null && break
  sleep 0.1
done

status=0
REEL_PORT=$port REEL_PID=$pid REEL_KEY=$key REEL_METRICS_PORT=$metrics_port \
  REEL_SMALL_PORT=$small_port REEL_SMALL_PID=$small_pid \
  timeout 120 python3 "$root/tests/http_flood/checks.py" || status=$?
if [ "$status" -ne 0 ]; then
  echo "--- reeld log (last 30 lines)"; tail -30 "$work/reeld.log"
  echo "--- small reeld log (last 30 lines)"; tail -30 "$work/small.log"
  exit "$status"
fi
# Both stop cleanly on SIGTERM, even with a request whose body trickles in
# forever on the small node (cut 10 s after the stop began).
python3 - "$small_port" "$key" <<'PY' &
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"POST /v1/folders HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
          b"Content-Length: 100000\r\nAuthorization: Bearer " + sys.argv[2].encode() + b"\r\n\r\n")
end = time.time() + 60
try:
    while time.time() < end:
        s.sendall(b" ")
        time.sleep(0.5)
except OSError:
    pass
PY
trickler=$!
sleep 1
for p in "$pid" "$small_pid"; do
  started=$(date +%s.%N)
  kill "$p"
  timeout 20 tail --pid="$p" -f /dev/null ||
    { echo "FAIL: reeld $p did not stop within 20 s of SIGTERM"; exit 1; }
  rc=0
  wait "$p" || rc=$?
  [ "$rc" = 0 ] || { echo "FAIL: reeld $p exited with $rc on SIGTERM"; exit 1; }
  echo "ok: reeld $p stopped $(python3 -c "import sys,time; print(round(time.time()-float(sys.argv[1]),1))" "$started") s after SIGTERM"
done
pid=
kill "$trickler" 2>/dev/null || true
wait "$trickler" 2>/dev/null || true
echo "ok: both nodes stopped cleanly on SIGTERM (one with a body trickling in)"
echo "PASS"
