#!/usr/bin/env bash
# HTTPS served by reeld itself (--tls-cert/--tls-key) with a self-signed
# certificate, checked with curl: health, an upload that becomes ready, URLs
# handed out with https://, plain HTTP and unverified clients refused, bad
# certificate options refused at start with exit status 2. Then the logs:
# every stderr line is one logfmt line (ts, level, node, event; video= on a
# video's events), and --log-level warn keeps info lines out.
# Usage: tls_test.sh BUILD_DIR
set -euo pipefail
build=$(cd "$1" && pwd)
key=sk-tls-test
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/reel-tls-test-XXXXXX)
free_port() {
  python3 "$root/tests/free_port.py"
}
pids=()
cleanup() {
  for p in "${pids[@]}"; do
    kill "$p" 2>/dev/null && wait "$p" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT

fail() {
  echo "FAIL: $*"
  for f in "$work"/*.err; do
    [ -e "$f" ] && { echo "--- $f (last 30 lines)"; tail -30 "$f"; }
  done
  exit 1
}
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

# reeld NAME PORT [options...]: starts a reeld in the background (stdout in
# NAME.out, stderr in NAME.err); sets $last_pid.
reeld() {
  local name=$1 p=$2
  shift 2
  "$build/reeld" --listen "127.0.0.1:$p" --data "$work/$name-data" \
    --bootstrap-key "$key" --workers 2 --chunk-seconds 2 --segment-seconds 2 \
    --player-dir "$root/node_modules/hls.js/dist" "$@" \
    </dev/null >"$work/$name.out" 2>"$work/$name.err" &
  last_pid=$!
  pids+=("$last_pid")
}
# wait_healthy PID URL [curl options...]: until URL/healthz answers 200,
# at most 15 s.
wait_healthy() {
  local p=$1 url=$2
  shift 2
  local deadline=$((SECONDS + 15))
  while [ $SECONDS -lt $deadline ]; do
    curl -sf -m 2 "$@" "$url/healthz" >/dev/null && return 0
    kill -0 "$p" 2>/dev/null || fail "reeld exited at start"
    sleep 0.1
  done
  fail "reeld did not answer $url/healthz within 15 s"
}
# expect_refused_start WHAT PATTERN [reeld options...]: reeld must exit with
# status 2 within 10 s and say PATTERN on stderr.
expect_refused_start() {
  local what=$1 pattern=$2
  shift 2
  local rc=0
  timeout 10 "$build/reeld" --listen "127.0.0.1:$(free_port)" \
    --data "$work/refused-data" --bootstrap-key "$key" "$@" \
    </dev/null >"$work/refused.out" 2>"$work/refused.txt" || rc=$?
  [ "$rc" = 2 ] || fail "$what: exit status $rc, not 2: $(cat "$work/refused.txt")"
  grep -q -- "$pattern" "$work/refused.txt" ||
    fail "$what: no \"$pattern\" in: $(cat "$work/refused.txt")"
  [ ! -e "$work/refused-data" ] || fail "$what: the data directory was opened"
  echo "ok: $what: $(head -1 "$work/refused.txt")"
}
# upload BASE [curl options...]: uploads clip.mp4, prints the video id.
upload() {
  local b=$1
  shift
  curl -sf -m 20 "$@" -H "Authorization: Bearer $key" -F "video=@$work/clip.mp4" \
    -F folder=root "$b/api/client/v1/uploads" | json 'd["data"]["id"]'
}
# wait_ready BASE ID [curl options...]: the native record once it is ready
# (in $work/video.json), at most 40 s.
wait_ready() {
  local b=$1 id=$2
  shift 2
  local deadline=$((SECONDS + 40)) state=
  while [ $SECONDS -lt $deadline ]; do
    curl -sf -m 5 "$@" -H "Authorization: Bearer $key" "$b/v1/videos/$id" \
      >"$work/video.json" || fail "GET /v1/videos/$id failed"
    state=$(json 'd["state"]' <"$work/video.json")
    [ "$state" = ready ] && return 0
    [ "$state" = failed ] && fail "video $id failed: $(cat "$work/video.json")"
    sleep 0.3
  done
  fail "video $id not ready within 40 s (state $state)"
}
# check_logfmt FILE: every line is one logfmt line with ts, level, node and
# event first; a video's events (video.*, chunk.*, task.*) carry video=.
check_logfmt() {
  local f=$1 bad
  bad=$(grep -Ev '^ts=[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z level=(debug|info|warn|error) node=[^ ]+ event=[a-z_.]+( [a-z0-9_]+=("([^"\\]|\\.)*"|[^ "]*))*$' "$f" || true)
  [ -z "$bad" ] || fail "$f: lines that are not logfmt: $bad"
  bad=$(grep -E ' event=(video|chunk|task)\.' "$f" | grep -v ' video=[^ ]' || true)
  [ -z "$bad" ] || fail "$f: a video's event without video=: $bad"
}

command -v openssl >/dev/null || fail "the openssl command is missing (Debian: openssl)"
cd "$work"
# A self-signed certificate for 127.0.0.1, and a few bad ones.
openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 \
  -addext subjectAltName=IP:127.0.0.1 -days 2 \
  -keyout key.pem -out cert.pem 2>/dev/null
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 \
  -out other-key.pem 2>/dev/null
openssl pkey -in key.pem -aes256 -passout pass:secret -out encrypted-key.pem
openssl req -x509 -newkey rsa:1024 -nodes -subj /CN=127.0.0.1 -days 2 \
  -keyout weak-key.pem -out weak-cert.pem 2>/dev/null
ffmpeg -v error -y -f lavfi -i testsrc2=size=320x240:rate=25 \
  -f lavfi -i sine=frequency=440 -t 3 -c:v libx264 -preset ultrafast \
  -g 25 -pix_fmt yuv420p -c:a aac clip.mp4

# Refused at start, before the data directory is touched.
expect_refused_start "--tls-cert alone" "--tls-cert needs --tls-key" \
  --tls-cert cert.pem
expect_refused_start "--tls-key alone" "--tls-key needs --tls-cert" \
  --tls-key key.pem
expect_refused_start "missing key file" "cannot read $work/missing-key.pem" \
  --tls-cert cert.pem --tls-key "$work/missing-key.pem"
expect_refused_start "missing certificate" "cannot read missing.pem" \
  --tls-cert missing.pem --tls-key key.pem
expect_refused_start "a key for another certificate" "does not match" \
  --tls-cert cert.pem --tls-key other-key.pem
expect_refused_start "a certificate as key" "no PEM private key" \
  --tls-cert cert.pem --tls-key cert.pem
expect_refused_start "an encrypted key" "encrypted" \
  --tls-cert cert.pem --tls-key encrypted-key.pem
expect_refused_start "a key OpenSSL refuses for TLS" "key too small" \
  --tls-cert weak-cert.pem --tls-key weak-key.pem

# The HTTPS node.
port=$(free_port)
base="https://127.0.0.1:$port"
reeld tls "$port" --tls-cert cert.pem --tls-key key.pem
tls_pid=$last_pid
wait_healthy "$tls_pid" "$base" --cacert cert.pem
grep -q "listening on $base " tls.out || fail "start line: $(cat tls.out)"
code=$(curl -s -m 5 --cacert cert.pem -o /dev/null -w '%{http_code}' "$base/healthz")
[ "$code" = 200 ] || fail "/healthz over https answered $code"
echo "ok: /healthz over https: 200"

rc=0
curl -s -m 5 -o /dev/null "http://127.0.0.1:$port/healthz" || rc=$?
[ "$rc" != 0 ] || fail "plain http to the TLS port succeeded"
echo "ok: plain http to the TLS port fails (curl exit $rc)"
rc=0
curl -s -m 5 -o /dev/null "$base/healthz" || rc=$?
[ "$rc" = 60 ] || fail "curl without --cacert: exit $rc, not 60 (verification)"
echo "ok: curl without --cacert fails verification (exit 60)"

id=$(upload "$base" --cacert cert.pem)
[ -n "$id" ] || fail "no id from the upload"
wait_ready "$base" "$id" --cacert cert.pem
hls=$(json 'd["playback"]["hls"]' <video.json)
case "$hls" in
  "$base/media/$id/"*) ;;
  *) fail "playback.hls is $hls, not under $base/" ;;
esac
# No URL handed out is plain http.
if grep -o '"http://[^"]*"' video.json; then
  fail "plain http URLs in the record"
fi
curl -sf -m 10 --cacert cert.pem "$hls" >master.m3u8 || fail "GET $hls"
head -1 master.m3u8 | grep -q '^#EXTM3U' || fail "master playlist: $(head -3 master.m3u8)"
! grep -q 'http://' master.m3u8 || fail "plain http URLs in the master playlist"
echo "ok: upload over https ready; playback.hls $hls"

# reelctl over https, trusting the certificate through OpenSSL's variable.
SSL_CERT_FILE="$work/cert.pem" timeout 20 "$build/reelctl" --server "$base" \
  --key "$key" status >reelctl.txt || fail "reelctl status over https: $(cat reelctl.txt)"
grep -q "url .*$base" reelctl.txt || fail "reelctl status: $(cat reelctl.txt)"
echo "ok: reelctl status over https (SSL_CERT_FILE)"

# The HTTPS node's logs at the default level: logfmt, info lines present,
# the video's events with video=.
kill "$tls_pid"
rc=0
wait "$tls_pid" || rc=$?
[ "$rc" = 0 ] || fail "reeld (tls) exited with $rc on SIGTERM"
check_logfmt tls.err
grep -q " level=info .* event=video.state video=$id state=ready" tls.err ||
  fail "no video.state ready line with video=$id in tls.err"
grep -q " event=node.ready .*tls=on" tls.err || fail "no node.ready tls=on line"
echo "ok: tls node's stderr: $(wc -l <tls.err) logfmt lines"

# A plain HTTP node at --log-level warn: no info line after an upload.
port2=$(free_port)
base2="http://127.0.0.1:$port2"
reeld warn "$port2" --log-level warn
warn_pid=$last_pid
wait_healthy "$warn_pid" "$base2"
id2=$(upload "$base2")
wait_ready "$base2" "$id2"
json 'd["playback"]["hls"]' <video.json | grep -q "^$base2/" ||
  fail "plain node hands out $(json 'd["playback"]["hls"]' <video.json)"
kill "$warn_pid"
wait "$warn_pid" || true
check_logfmt warn.err
! grep -E ' level=(info|debug) ' warn.err ||
  fail "--log-level warn let info or debug lines through"
echo "ok: --log-level warn: no info lines ($(wc -l <warn.err) lines in all)"
echo "PASS"
