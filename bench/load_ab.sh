#!/usr/bin/env bash
# A/B of API reads: this build's reeld against another binary (e.g. the
# commit before a change), both up at once, each with the same small clip,
# wrk rounds alternated between them so that the machine's noise falls on
# both alike. Prints each round, the medians and the ratio (this build /
# base) of requests/s, p99 and server CPU per read.
#
# Usage: bench/load_ab.sh BASE_REELD [ROUNDS] [SECONDS]   (defaults 6 and 4)
#   e.g. git worktree add /tmp/base HEAD~5 && cmake -S /tmp/base -B /tmp/base/build
#        -DCMAKE_BUILD_TYPE=Release && cmake --build /tmp/base/build --target reeld
#        && bench/load_ab.sh /tmp/base/build/reeld
# Both get --rate-limit 0 when they know it (one key makes every request).
# Needs wrk (apt-get install wrk), ffmpeg, curl, python3.
set -euo pipefail
cd "$(dirname "$0")/.."
base_bin=${1:?usage: bench/load_ab.sh BASE_REELD [ROUNDS] [SECONDS]}
rounds=${2:-6}
seconds=${3:-4}
[ -x build/reeld ] || { echo "build/reeld is missing: build first"; exit 2; }
[ -x "$base_bin" ] || { echo "$base_bin is not an executable"; exit 2; }
command -v wrk >/dev/null || { echo "wrk is missing (apt-get install wrk)"; exit 2; }
work=$(mktemp -d /tmp/reel-bench-ab-XXXXXX)
. bench/lib.sh
trap bench_cleanup EXIT
key=sk-bench-load-ab

ffmpeg -v error -y -f lavfi -i testsrc2=size=1280x720:rate=25 \
  -f lavfi -i sine=frequency=440 -t 8 -c:v libx264 -preset ultrafast -g 50 \
  -pix_fmt yuv420p -c:a aac "$work/clip.mp4"

# node NAME BINARY: starts it, uploads the clip, waits for ready; prints
# "PID URL ID".
node() {
  local name=$1 bin=$2 port extra=()
  port=$(free_port)
  "$bin" --help 2>&1 | grep -q -- --rate-limit && extra=(--rate-limit 0)
  "$bin" --listen "127.0.0.1:$port" --data "$work/$name" --bootstrap-key "$key" \
    --workers 2 --log-level warn "${extra[@]}" >"$work/$name.log" 2>&1 &
  local pid=$!
  bench_pids+=("$pid")
  local url="http://127.0.0.1:$port"
  for _ in $(seq 1 100); do curl -sf "$url/healthz" >/dev/null && break; sleep 0.1; done
  local id
  id=$(curl -sf -H "Authorization: Bearer $key" -F video=@"$work/clip.mp4" \
         -F folder=root "$url/api/client/v1/uploads" |
       python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["id"])')
  for _ in $(seq 1 600); do
    curl -sf -H "Authorization: Bearer $key" "$url/v1/videos/$id" |
      grep -q '"state":"ready"' && break
    sleep 0.5
  done
  echo "$pid $url $id"
}

read -r pid_new url_new id_new < <(node new build/reeld)
read -r pid_base url_base id_base < <(node base "$base_bin")

cpu() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
# round PID URL ID: one wrk run; prints "req/s p99_ms cpu_us_per_read".
round() {
  local before after out rps p99
  before=$(cpu "$1")
  out=$(wrk -t2 -c64 -d"${seconds}s" --latency \
          -H "Authorization: Bearer $key" "$2/v1/videos/$3")
  after=$(cpu "$1")
  rps=$(awk '/Requests\/sec/ { print $2 }' <<<"$out")
  p99=$(awk '$1 == "99%" { v=$2; if (v ~ /us$/) { sub(/us/,"",v); v/=1000 }
                           else if (v ~ /ms$/) sub(/ms/,"",v);
                           else if (v ~ /s$/) { sub(/s/,"",v); v*=1000 }
                           print v }' <<<"$out")
  local ticks; ticks=$(getconf CLK_TCK)
  awk -v r="$rps" -v p="$p99" -v c="$((after - before))" -v t="$ticks" -v s="$seconds" \
    'BEGIN { printf "%.0f %.2f %.1f\n", r, p, c / t * 1e6 / (r * s) }'
}

echo "API reads: GET /v1/videos/{id}, wrk -t2 -c64 -d${seconds}s, $rounds rounds alternated"
echo "new  $(pwd)/build/reeld"
echo "base $base_bin"
printf '%-6s %-5s %10s %9s %12s\n' round node "req/s" "p99 ms" "CPU us/read"
: >"$work/new.txt"; : >"$work/base.txt"
for r in $(seq 1 "$rounds"); do
  if [ $((r % 2)) -eq 1 ]; then order="new base"; else order="base new"; fi
  for which in $order; do
    if [ "$which" = new ]; then res=$(round "$pid_new" "$url_new" "$id_new")
    else res=$(round "$pid_base" "$url_base" "$id_base"); fi
    echo "$res" >>"$work/$which.txt"
    printf '%-6s %-5s %10s %9s %12s\n' "$r" "$which" $res
  done
done
python3 - "$work/new.txt" "$work/base.txt" <<'PY'
import statistics, sys
def cols(path):
    rows = [list(map(float, l.split())) for l in open(path) if l.strip()]
    return [statistics.median(c) for c in zip(*rows)]
new, base = cols(sys.argv[1]), cols(sys.argv[2])
print(f"median new   {new[0]:.0f} req/s, p99 {new[1]:.2f} ms, {new[2]:.1f} us CPU/read")
print(f"median base  {base[0]:.0f} req/s, p99 {base[1]:.2f} ms, {base[2]:.1f} us CPU/read")
print(f"ratio new/base: req/s {new[0]/base[0]:.2f}x, p99 {new[1]/base[1]:.2f}x, "
      f"CPU per read {new[2]/base[2]:.2f}x")
PY
