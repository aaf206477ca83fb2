# Shared by the benchmarks: a hard-to-compress source, reeld processes on
# free 127.0.0.1 ports, uploads and the times the video model records.
# Source it after setting `work` (a temp directory the caller removes).

bench_pids=()
bench_cleanup() {
  for p in "${bench_pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${bench_pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# make_source SECONDS OUT: 1080p30 with moving detail and noise (about
# 9 Mbit/s) and a tone.
make_source() {
  echo "making a $1 s 1080p30 source with moving detail (about 9 Mbit/s)..."
  timeout 900 ffmpeg -v error -y \
    -f lavfi -i "testsrc2=size=1920x1080:rate=30,noise=alls=12:allf=t" \
    -f lavfi -i "sine=frequency=440:sample_rate=48000" -t "$1" \
    -c:v libx264 -preset ultrafast -b:v 9M -maxrate 10M -bufsize 20M -g 60 \
    -pix_fmt yuv420p -c:a aac -b:a 128k "$2"
}

# start_node NAME PREFIX... -- REELD ARGS: starts reeld (through PREFIX, e.g.
# taskset) on a free port; sets NODE_URL and NODE_PID. REEL_BIN names the
# build directory to take reeld from (default build).
start_node() {
  local name=$1; shift
  local prefix=()
  while [ "$1" != "--" ]; do prefix+=("$1"); shift; done
  shift
  local port; port=$(free_port)
  "${prefix[@]}" "./${REEL_BIN:-build}/reeld" --listen "127.0.0.1:$port" \
    --data "$work/$name" --node-id "$name" --bootstrap-key sk-bench "$@" \
    >"$work/$name.log" 2>&1 &
  NODE_PID=$!
  bench_pids+=("$NODE_PID")
  NODE_URL="http://127.0.0.1:$port"
  for _ in $(seq 1 100); do
    curl -sf "$NODE_URL/healthz" >/dev/null && return 0
    sleep 0.1
  done
  echo "reeld $name did not start"; tail "$work/$name.log"; return 1
}

# upload_and_wait URL FILE OUT_JSON: uploads, waits for ready, saves the
# video model. Polls once a second with curl alone: the times come from the
# record's history, and a busier poll would take CPU from the node.
upload_and_wait() {
  local id state
  id=$(curl -sf -H "Authorization: Bearer sk-bench" -F video=@"$2" \
    -F folder=root "$1/api/client/v1/uploads" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["id"])')
  for _ in $(seq 1 3600); do
    state=$(curl -sf -H "Authorization: Bearer sk-bench" "$1/api/client/v1/uploads/$id" |
      grep -o '"status_text":"[a-z]*"' | cut -d'"' -f4)
    [ "$state" = completed ] || [ "$state" = failed ] && break
    sleep 1
  done
  curl -sf -H "Authorization: Bearer sk-bench" "$1/v1/videos/$id" > "$3"
  [ "$state" = completed ] || { echo "video $state"; return 1; }
}

# video_times JSON: prints "SECONDS_TO_READY SECONDS_TO_PLAYABLE", both from
# upload complete (the record's creation).
video_times() {
  python3 - "$1" <<'PY'
import json, sys
from datetime import datetime
v = json.load(open(sys.argv[1]))
def ts(s): return datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ").timestamp()
hist = {h["state"]: h["at"] for h in v["history"]}
created = ts(v["created_at"])
print(ts(hist["ready"]) - created, ts(v["playable_at"]) - created)
PY
}

verdict() { if [ "$(echo "$1" | bc -l)" = 1 ]; then echo PASS; else echo FAIL; fi; }
