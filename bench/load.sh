#!/usr/bin/env bash
# Load benchmark: wrk against one node's hot reads, with nginx serving the
# same segment file from the same directory as the baseline, in the same run.
#
#   (1) API reads:  GET /v1/videos/{id} with an API key (the whole model)
#   (2) segments:   GET /media/{id}/<top rung>/seg_00001.m4s from reel
#   (3) baseline:   the same URL from nginx (Debian's), root = reel's data
#                   directory, so /media/{id}/... is the very same file
#
# Each run is wrk -t2 -c64 --latency for DURATION seconds after a 1 s
# warm-up. Prints requests/s, p50/p99/max latency, MiB/s, errors, the
# server's CPU use, the ratio of reel's segment throughput to nginx's, and
# PASS/FAIL against the targets:
#   API reads   >= 30000 requests/s with p99 < 10 ms at 64 connections
#   segments    >= 0.5x nginx's throughput (MiB/s)
# A run with errors (non-2xx answers, timeouts, socket errors) does not
# meet its target. Benches report: the exit status is 0 whether or not the
# targets are met, 2 only when the run itself failed (no node, no video).
#
# Usage: bench/load.sh [DURATION]   (seconds per run, default 10)
# Environment:
#   REEL_LOAD_SEGMENT       media path to fetch instead of <top rung>/seg_00001.m4s,
#                           e.g. 240p/ts_00001.ts
#   REEL_LOAD_HTTP_THREADS  reeld --http-threads (default: reeld's, 16)
#   REEL_LOAD_CONNECTIONS   wrk -c (default 64)
# Installs wrk and nginx with apt-get when missing (root or sudo).
# A summary is also written to bench/out/load-<time>.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

duration=${1:-10}
conns=${REEL_LOAD_CONNECTIONS:-64}
threads=2
key=sk-bench-load
target_rps=30000
target_p99_ms=10
target_ratio=0.5

reeld_pid="" nginx_pid="" work=""
t_start=15 t_make=120 t_upload=60 t_ready=300

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  for p in "$nginx_pid" "$reeld_pid"; do
    [ -n "$p" ] || continue
    kill -TERM "$p" 2>/dev/null || true
    for _ in $(seq 1 50); do
      kill -0 "$p" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
  [ -n "$work" ] && [ -d "$work" ] && rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 2' INT TERM

die() {
  echo "bench: $*" >&2
  exit 2
}

calc() { awk "BEGIN { printf \"%.${2:-1}f\", $1 }"; }
verdict() { awk "BEGIN { exit !($1) }" && echo PASS || echo FAIL; }

pick_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# CPU seconds (user + system) of the given processes.
cpu_of() {
  local ticks total=0 p
  ticks=$(getconf CLK_TCK)
  for p in "$@"; do
    total=$((total + $(awk '{ print $14 + $15 }' "/proc/$p/stat" 2>/dev/null || echo 0)))
  done
  calc "$total / $ticks" 2
}

# (a) Tools: wrk and nginx from Debian, as ops/install-deps.sh installs.
missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || missing+=(nginx)
if [ ${#missing[@]} -gt 0 ]; then
  echo "bench: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq \
    --no-install-recommends "${missing[@]}" >/dev/null || die "cannot install ${missing[*]}"
fi
nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)
for t in curl ffmpeg python3; do
  command -v "$t" >/dev/null || die "$t is missing (./ops/install-deps.sh)"
done
[ -x build/reeld ] || die "build/reeld is missing: build first (./ops/build.sh)"
binary_time=$(date -r build/reeld +%Y-%m-%dT%H:%M:%S)
load_before=$(cut -d' ' -f1-3 /proc/loadavg)

work=$(mktemp -d /tmp/reel-bench-load-XXXXXX)
chmod 755 "$work" # nginx's workers read the media below it

# (b) A small clip: 8 s of 1280x720 with a tone, a keyframe every 2 s. Its
# ladder is 720p..240p, two 4 s segments per rung.
echo "bench: making an 8 s 1280x720 clip"
timeout "$t_make" ffmpeg -v error -y \
  -f lavfi -i testsrc2=size=1280x720:rate=25 -f lavfi -i sine=frequency=440 \
  -t 8 -c:v libx264 -preset ultrafast -g 50 -pix_fmt yuv420p -c:a aac \
  "$work/clip.mp4" || die "ffmpeg failed"

# (c) One node on a free port with its own data directory.
data=$work/data
# --rate-limit 0: one key makes every request here; its default limit
# (100/s) would answer nearly all of them 429. The gate still runs in full
# (authentication, scope, the limiter's bookkeeping is skipped only).
reeld_args=(--data "$data" --bootstrap-key "$key" --workers 2 --log-level warn
            --rate-limit 0)
[ -n "${REEL_LOAD_HTTP_THREADS:-}" ] && reeld_args+=(--http-threads "$REEL_LOAD_HTTP_THREADS")
port=$(pick_port)
./build/reeld --listen "127.0.0.1:$port" "${reeld_args[@]}" >"$work/reeld.log" 2>&1 &
reeld_pid=$!
url=http://127.0.0.1:$port
up=0
for _ in $(seq 1 $((t_start * 10))); do
  kill -0 "$reeld_pid" 2>/dev/null || break
  curl -sf -m 1 "$url/healthz" >/dev/null 2>&1 && { up=1; break; }
  sleep 0.1
done
[ "$up" = 1 ] || { tail -5 "$work/reeld.log" >&2; die "reeld did not start"; }

# (d) Upload it and wait until it is ready.
echo "bench: uploading to reeld (pid $reeld_pid) on $url"
id=$(timeout "$t_upload" curl -sf -H "Authorization: Bearer $key" \
  -F video=@"$work/clip.mp4" -F folder=root "$url/api/client/v1/uploads" |
  sed -n 's/.*"id":"\([0-9a-f-]*\)".*/\1/p') || die "the upload failed"
[ -n "$id" ] || die "the upload answered no id"
state=""
deadline=$((SECONDS + t_ready))
while [ $SECONDS -lt $deadline ]; do
  state=$(curl -sf -m 5 -H "Authorization: Bearer $key" "$url/v1/videos/$id" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["state"])' || true)
  [ "$state" = ready ] || [ "$state" = failed ] && break
  sleep 0.5
done
[ "$state" = ready ] || die "video $id is ${state:-unknown}, not ready"
curl -sf -H "Authorization: Bearer $key" "$url/v1/videos/$id" >"$work/video.json"
segment=${REEL_LOAD_SEGMENT:-$(python3 -c '
import json, sys
v = json.load(open(sys.argv[1]))
print(v["renditions"][0]["name"] + "/seg_00001.m4s")' "$work/video.json")}
[ -f "$data/media/$id/$segment" ] || die "no file $segment in $data/media/$id"
seg_bytes=$(stat -c %s "$data/media/$id/$segment")
api_path=/v1/videos/$id
seg_path=/media/$id/$segment

# (e) nginx as the current user, everything under $work/nginx, serving
# $data: /media/{id}/... is reel's own media directory.
ng=$work/nginx
mkdir -p "$ng/tmp"
nport=$(pick_port)
user_line=""
[ "$(id -u)" -eq 0 ] && user_line="user $(id -un) $(id -gn);"
cat >"$ng/nginx.conf" <<EOF
$user_line
worker_processes auto;
daemon off;
pid $ng/nginx.pid;
error_log $ng/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  tcp_nodelay on;
  keepalive_requests 1000;
  keepalive_timeout 10;
  client_body_temp_path $ng/tmp/body;
  proxy_temp_path $ng/tmp/proxy;
  fastcgi_temp_path $ng/tmp/fastcgi;
  uwsgi_temp_path $ng/tmp/uwsgi;
  scgi_temp_path $ng/tmp/scgi;
  types {
    application/vnd.apple.mpegurl m3u8;
    video/iso.segment m4s;
    video/mp2t ts;
    video/mp4 mp4;
  }
  default_type application/octet-stream;
  server {
    listen 127.0.0.1:$nport;
    root $data;
    location /media/ {
      add_header Cache-Control "public, max-age=31536000";
      add_header Access-Control-Allow-Origin "*";
    }
  }
}
EOF
"$nginx_bin" -p "$ng" -e "$ng/error.log" -c "$ng/nginx.conf" >"$ng/stdout.log" 2>&1 &
nginx_pid=$!
nurl=http://127.0.0.1:$nport
up=0
for _ in $(seq 1 50); do
  kill -0 "$nginx_pid" 2>/dev/null || break
  curl -sf -m 1 -o /dev/null "$nurl$seg_path" && { up=1; break; }
  sleep 0.1
done
[ "$up" = 1 ] || { cat "$ng/stdout.log" "$ng/error.log" >&2; die "nginx did not start"; }

# Both must answer the same bytes.
a=$(curl -sf "$url$seg_path" | sha256sum | cut -c1-64)
b=$(curl -sf "$nurl$seg_path" | sha256sum | cut -c1-64)
[ "$a" = "$b" ] || die "reel and nginx answer different bytes for $seg_path"
api_bytes=$(curl -sf -H "Authorization: Bearer $key" "$url$api_path" | wc -c)

# (f) wrk runs. A Lua done() prints the figures in one line.
cat >"$work/report.lua" <<'EOF'
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "WRK %.0f %.0f %.0f %.0f %.0f %.0f %d %d %d %d %d\n",
    summary.requests, summary.duration, summary.bytes,
    latency:percentile(50), latency:percentile(99), latency.max,
    e.connect, e.read, e.write, e.status, e.timeout))
end
EOF

# unanswered PORT: how many of wrk's connections the server on PORT is not
# answering: all of them less the server's connections that have sent bytes
# (ss shows bytes_sent). A connection still waiting in the listen backlog,
# or accepted but queued for a server thread, counts as not answered.
unanswered() {
  command -v ss >/dev/null || { echo "?"; return; }
  ss -tniH state established "( sport = :$1 )" 2>/dev/null |
    awk -v c="$conns" '/bytes_sent:/ { s++ } END { print c - s }'
}

# run_wrk LABEL URL PORT [HEADER]: sets the global r_* figures.
run_wrk() {
  local label=$1 target=$2 tport=$3 header=${4:-} pids out line
  local hdr=()
  [ -n "$header" ] && hdr=(-H "$header")
  if [ "$label" = nginx ]; then
    pids=("$nginx_pid" $(pgrep -P "$nginx_pid" || true))
  else
    pids=("$reeld_pid")
  fi
  wrk -t"$threads" -c"$conns" -d1s "${hdr[@]}" "$target" >/dev/null 2>&1 || true
  local cpu0 cpu1
  cpu0=$(cpu_of "${pids[@]}")
  # Connections a server never answers complete no request, so wrk's
  # latencies cannot show them: count them at 30, 60 and 90 % of the run
  # and keep the smallest count (a connection just opened is not stuck).
  (
    for f in 0.3 0.3 0.3; do
      sleep "$(calc "$duration * $f" 2)"
      unanswered "$tport"
    done
  ) >"$work/unanswered-$label.txt" &
  local sampler=$!
  out=$(wrk -t"$threads" -c"$conns" -d"${duration}s" --latency \
    -s "$work/report.lua" "${hdr[@]}" "$target" 2>&1) || true
  wait "$sampler" || true
  cpu1=$(cpu_of "${pids[@]}")
  r_stuck=$(sort -n "$work/unanswered-$label.txt" | head -1)
  echo "$out" >"$work/wrk-$label.txt"
  line=$(grep '^WRK ' <<<"$out" || true)
  [ -n "$line" ] || { echo "$out" >&2; die "wrk gave no figures for $label"; }
  read -r _ r_n r_us r_bytes r_p50 r_p99 r_max e_conn e_read e_write e_status e_timeout <<<"$line"
  r_rps=$(calc "$r_n / ($r_us / 1000000)" 0)
  r_mibps=$(calc "$r_bytes / 1048576 / ($r_us / 1000000)")
  r_p50ms=$(calc "$r_p50 / 1000" 2)
  r_p99ms=$(calc "$r_p99 / 1000" 2)
  r_maxms=$(calc "$r_max / 1000" 1)
  r_err=$((e_conn + e_read + e_write + e_status + e_timeout))
  r_errtext="non-2xx $e_status, timeouts $e_timeout, socket connect/read/write $e_conn/$e_read/$e_write"
  r_cpu=$(calc "($cpu1 - $cpu0) / ($r_us / 1000000)" 2)
}

printf 'bench: wrk -t%d -c%d -d%ss --latency, each after a 1 s warm-up\n' \
  "$threads" "$conns" "$duration"
echo "bench: (1) reel  GET $api_path"
run_wrk api "$url$api_path" "$port" "Authorization: Bearer $key"
api=("$r_rps" "$r_p50ms" "$r_p99ms" "$r_maxms" "$r_mibps" "$r_err" "$r_errtext" "$r_cpu" "$r_stuck")
echo "bench: (2) reel  GET $seg_path"
run_wrk reel "$url$seg_path" "$port"
seg=("$r_rps" "$r_p50ms" "$r_p99ms" "$r_maxms" "$r_mibps" "$r_err" "$r_errtext" "$r_cpu" "$r_stuck")
echo "bench: (3) nginx GET $seg_path"
run_wrk nginx "$nurl$seg_path" "$nport"
ngx=("$r_rps" "$r_p50ms" "$r_p99ms" "$r_maxms" "$r_mibps" "$r_err" "$r_errtext" "$r_cpu" "$r_stuck")

ratio=$(calc "${seg[4]} / ${ngx[4]}" 2)
stuck() { [ "$1" = "?" ] && echo 0 || echo "$1"; }
v_api=$(verdict "${api[0]} >= $target_rps && ${api[2]} < $target_p99_ms && ${api[5]} == 0 && $(stuck "${api[8]}") == 0")
v_seg=$(verdict "$ratio >= $target_ratio && ${seg[5]} == 0 && $(stuck "${seg[8]}") == 0")

line() { # LABEL FIGURES...
  printf '%-15s %6s req/s  p50 %6s ms  p99 %7s ms  max %7s ms  %7s MiB/s  server CPU %s cores\n' \
    "$1" "$2" "$3" "$4" "$5" "$6" "$9"
  printf '%-15s errors: %s; connections never answered: %s of %s\n' "" "$8" "${10}" "$conns"
}

mkdir -p bench/out
report=bench/out/load-$(date +%Y%m%d-%H%M%S).txt
{
  echo
  echo "reel load benchmark  $(date -u +%Y-%m-%dT%H:%M:%SZ)  $(nproc) cores (wrk runs on the same cores)"
  echo "binary   $root/build/reeld ($binary_time)${REEL_LOAD_HTTP_THREADS:+, --http-threads $REEL_LOAD_HTTP_THREADS}"
  echo "load     average $load_before before, $(cut -d' ' -f1-3 /proc/loadavg) after (other work on the machine skews every figure)"
  echo "nginx    $("$nginx_bin" -v 2>&1 | sed 's/^nginx version: //'), worker_processes auto, sendfile on"
  echo "wrk      -t$threads -c$conns -d${duration}s --latency; 1 MiB = 1048576 bytes"
  echo "API      GET $api_path ($api_bytes bytes)"
  echo "segment  GET $seg_path ($seg_bytes bytes)"
  echo
  line "reel API read" "${api[@]}"
  line "reel segment" "${seg[@]}"
  line "nginx segment" "${ngx[@]}"
  echo
  echo "API reads   ${api[0]} req/s, p99 ${api[2]} ms  (target >= $target_rps req/s, p99 < $target_p99_ms ms)  $v_api"
  echo "segments    reel / nginx = ${ratio}x  (target >= ${target_ratio}x)  $v_seg"
  echo "(a target is met only with no errors and every connection answered)"
} | tee "$report"
exit 0
