#!/usr/bin/env bash
# Upload benchmark: one 1 GiB upload through the Uploads API of a fresh reeld.
#
# Measures the upload's throughput (curl's time_total and size_upload) and the
# node's peak memory (VmHWM, and VmRSS sampled while the upload runs), and
# compares the throughput with copying the same bytes on the same file system.
# Targets: >= 150 MiB/s and < 150 MiB peak RSS.
#
# The file is random bytes, not a video: the upload is accepted (202) and the
# video then fails at probing ("not a media file"), which is expected and fast.
# This measures ingest only, not transcoding.
#
# Usage: bench/upload.sh
# Environment:
#   REEL_BENCH_SIZE_MIB  size of the upload in MiB (default 1024)
#   REEL_BENCH_DIR       where the temporary directory goes (default $TMPDIR
#                        or /tmp); it needs about 3x the size free
#   REEL_BENCH_BUILD=1   run an incremental build of reeld first, even if
#                        build/reeld exists
# Exit status: 0 both targets met, 1 a target missed, 2 the run itself failed.
# A summary is also written to bench/out/upload-<time>.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

size_mib=${REEL_BENCH_SIZE_MIB:-1024}
target_mibps=150
target_rss_mib=150
key=sk-bench-upload
reeld_pid=""
sampler_pid=""
work=""

# Every step is bounded in time (seconds).
t_build=1800 t_start=15 t_make=300 t_copy=300 t_upload=600 t_process=120

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [ -n "$sampler_pid" ]; then
    kill "$sampler_pid" 2>/dev/null || true
    wait "$sampler_pid" 2>/dev/null || true
  fi
  if [ -n "$reeld_pid" ] && kill -0 "$reeld_pid" 2>/dev/null; then
    kill -TERM "$reeld_pid" 2>/dev/null || true
    for _ in $(seq 1 50); do
      kill -0 "$reeld_pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$reeld_pid" 2>/dev/null || true
    wait "$reeld_pid" 2>/dev/null || true
  fi
  if [ -n "$work" ] && [ -d "$work" ]; then
    rm -rf "$work"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 2' INT TERM

die() {
  echo "bench: $*" >&2
  exit 2
}

# Decimal arithmetic without bc.
calc() { awk "BEGIN { printf \"%.1f\", $1 }"; }
calc2() { awk "BEGIN { printf \"%.2f\", $1 }"; }

# A port nobody listens on (the start below retries if it was taken since).
pick_port() {
  local p
  for _ in $(seq 1 50); do
    p=$((20000 + RANDOM % 40000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      echo "$p"
      return 0
    fi
  done
  return 1
}

kib_of() { # field of /proc/PID/status in KiB, 0 if gone
  awk -v f="$2:" '$1 == f { print $2; found = 1 } END { if (!found) print 0 }' \
    "/proc/$1/status" 2>/dev/null || echo 0
}

# (a) Build if needed.
if [ ! -x build/reeld ] || [ "${REEL_BENCH_BUILD:-0}" = 1 ]; then
  echo "bench: building reeld"
  if [ -d build ] && [ -f build/CMakeCache.txt ]; then
    timeout "$t_build" cmake --build build -j"$(nproc)" --target reeld \
      || die "build failed"
  else
    timeout "$t_build" ./ops/build.sh || die "build failed"
  fi
fi
command -v curl >/dev/null || die "curl is missing (./ops/install-deps.sh)"

# A temporary directory for the file, the node's data and the baseline copy.
base=${REEL_BENCH_DIR:-${TMPDIR:-/tmp}}
work=$(mktemp -d "$base/reel-bench.XXXXXX")
need_kib=$((size_mib * 1024 * 3 + 512 * 1024))
free_kib=$(df -Pk "$work" | awk 'NR == 2 { print $4 }')
[ "$free_kib" -ge "$need_kib" ] \
  || die "need $((need_kib / 1024)) MiB free in $base, have $((free_kib / 1024)) MiB"

# (c) The file: random bytes, so nothing compresses or deduplicates it.
file=$work/upload.bin
echo "bench: writing ${size_mib} MiB of random bytes to $file"
timeout "$t_make" head -c "$((size_mib * 1048576))" /dev/urandom >"$file" \
  || die "cannot create the file"
bytes=$(stat -c %s "$file")
[ "$bytes" -eq $((size_mib * 1048576)) ] || die "file has $bytes bytes"
sync "$file" # its dirty pages must not be flushed during the measurements

# (f) Baselines on the same file system: read it, and copy it with an fsync
# (reel fsyncs the upload before answering 202).
t0=$(date +%s.%N)
timeout "$t_copy" cat "$file" >/dev/null || die "cat failed"
t1=$(date +%s.%N)
timeout "$t_copy" cp "$file" "$work/copy.bin" || die "cp failed"
timeout "$t_copy" sync "$work/copy.bin" || die "sync failed"
t2=$(date +%s.%N)
rm -f "$work/copy.bin"
sync -f "$work" 2>/dev/null || true
cat_s=$(calc2 "$t1 - $t0")
cp_s=$(calc2 "$t2 - $t1")
cat_mibps=$(calc "$bytes / 1048576 / ($t1 - $t0)")
cp_mibps=$(calc "$bytes / 1048576 / ($t2 - $t1)")

# (b) A node on a free port with a temporary data directory.
data=$work/data
log=$work/reeld.log
port=""
for _ in 1 2 3; do
  port=$(pick_port) || die "no free port found"
  ./build/reeld --listen "127.0.0.1:$port" --data "$data" \
    --bootstrap-key "$key" --log-level warn >"$log" 2>&1 &
  reeld_pid=$!
  up=0
  for _ in $(seq 1 $((t_start * 10))); do
    if ! kill -0 "$reeld_pid" 2>/dev/null; then
      break
    fi
    if curl -sf -m 1 "http://127.0.0.1:$port/healthz" >/dev/null 2>&1; then
      up=1
      break
    fi
    sleep 0.1
  done
  [ "$up" = 1 ] && break
  kill -KILL "$reeld_pid" 2>/dev/null || true
  wait "$reeld_pid" 2>/dev/null || true
  reeld_pid=""
done
[ -n "$reeld_pid" ] || { tail -5 "$log" >&2; die "reeld did not start"; }
url=http://127.0.0.1:$port
idle_rss_kib=$(kib_of "$reeld_pid" VmRSS)

# (e) Sample VmRSS while the upload runs.
samples=$work/rss.txt
(
  while kill -0 "$reeld_pid" 2>/dev/null; do
    kib_of "$reeld_pid" VmRSS
    sleep 0.05
  done
) >"$samples" 2>/dev/null &
sampler_pid=$!

# (d) The upload, timed by curl.
echo "bench: uploading to reeld (pid $reeld_pid) on $url"
body=$work/response.json
stats=$(timeout "$t_upload" curl -sS -o "$body" \
  -w '%{http_code} %{time_total} %{size_upload}' \
  -H "Authorization: Bearer $key" \
  -F "video=@$file;type=application/octet-stream" -F folder=root \
  "$url/api/client/v1/uploads") || die "the upload failed or timed out"
upload_hwm_kib=$(kib_of "$reeld_pid" VmHWM)
kill "$sampler_pid" 2>/dev/null || true
wait "$sampler_pid" 2>/dev/null || true
sampler_pid=""

read -r code upload_s upload_bytes <<<"$stats"
[ "$code" = 202 ] || { cat "$body" >&2; echo >&2; die "upload answered $code, not 202"; }
id=$(sed -n 's/.*"id":"\([0-9a-f-]*\)".*/\1/p' "$body")
sampled_max_kib=$(sort -n "$samples" | tail -1)
n_samples=$(wc -l <"$samples")

# The random bytes are not a video: wait for the node to say so.
state="" reason=""
deadline=$((SECONDS + t_process))
while [ $SECONDS -lt $deadline ]; do
  info=$(curl -sS -m 5 -H "Authorization: Bearer $key" \
    "$url/api/client/v1/uploads/$id" || true)
  case "$info" in
    *'"status":6'*) state=completed; break ;;
    *'"status":7'*)
      state=failed
      reason=$(sed -n 's/.*"error":"\([^"]*\)".*/\1/p' <<<"$info")
      break ;;
  esac
  sleep 0.2
done
[ -n "$state" ] || state="still processing after ${t_process}s"
final_hwm_kib=$(kib_of "$reeld_pid" VmHWM)

# (g) Figures and verdicts.
mib=$(calc "$upload_bytes / 1048576")
upload_mibps=$(calc "$upload_bytes / 1048576 / $upload_s")
ratio=$(calc2 "($upload_bytes / $upload_s) / ($bytes / ($t2 - $t1))")
rss_mib=$(calc "$upload_hwm_kib / 1024")
verdict() { awk "BEGIN { exit !($1) }" && echo PASS || echo FAIL; }
v_tput=$(verdict "$upload_mibps >= $target_mibps")
v_rss=$(verdict "$rss_mib < $target_rss_mib")

mkdir -p bench/out
report=bench/out/upload-$(date +%Y%m%d-%H%M%S).txt
{
  echo "reel upload benchmark  $(date -u +%Y-%m-%dT%H:%M:%SZ)  $(nproc) cores"
  echo "binary   $root/build/reeld ($(date -r build/reeld +%Y-%m-%dT%H:%M:%S))"
  echo "file     $bytes bytes of random data (not a video; units: 1 MiB = 1048576 bytes)"
  echo
  echo "upload   POST /api/client/v1/uploads -> $code, $mib MiB body in $(calc2 "$upload_s") s = $upload_mibps MiB/s"
  echo "baseline cat file >/dev/null          : $cat_s s = $cat_mibps MiB/s (page cache)"
  echo "baseline cp + sync, same file system  : $cp_s s = $cp_mibps MiB/s"
  echo "ratio    reel upload / cp+sync        : $ratio"
  echo "memory   reeld VmRSS idle $(calc "$idle_rss_kib / 1024") MiB;" \
    "max sampled during upload $(calc "$sampled_max_kib / 1024") MiB ($n_samples samples);" \
    "VmHWM after upload $rss_mib MiB; VmHWM after processing $(calc "$final_hwm_kib / 1024") MiB"
  echo "video    $state${reason:+: $reason} (expected: the file is not a video)"
  echo
  echo "throughput  $upload_mibps MiB/s  (target >= $target_mibps MiB/s)  $v_tput"
  echo "peak RSS    $rss_mib MiB  (target < $target_rss_mib MiB)  $v_rss"
} | tee "$report"

[ "$v_tput" = PASS ] && [ "$v_rss" = PASS ] && exit 0
exit 1
