#!/usr/bin/env bash
# Scaling benchmark: the same 60 s 1080p source through (1) one node pinned
# to one core, (2) two nodes of one cluster over mutual TLS (as reel always
# runs), each pinned to its own core, uploaded to the first, and (3) the
# same two nodes without TLS, from a build made for this comparison only
# (cmake -DREEL_BENCH_PLAINTEXT=ON in build-bench-plain/; release builds
# cannot turn TLS off). Each is run RUNS times (default 3), interleaved, and
# the medians are compared. Targets: two nodes over TLS at least 1.8x one
# node; TLS costs at most 0.05 of that speedup against plaintext.
#
# Usage: bench/scale.sh [SECONDS] [RUNS]   (defaults 60 and 3)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
runs=${2:-3}
[ "$(nproc)" -ge 2 ] || { echo "needs 2 cores"; exit 1; }
./ops/install-deps.sh
./ops/build.sh >/dev/null
echo "building the plaintext comparison build (build-bench-plain/)..."
cmake -S . -B build-bench-plain -DCMAKE_BUILD_TYPE=Release \
  -DREEL_BENCH_PLAINTEXT=ON >/dev/null
cmake --build build-bench-plain -j"$(nproc)" --target reeld >/dev/null
work=$(mktemp -d /tmp/reel-bench-scale-XXXXXX)
. bench/lib.sh
trap bench_cleanup EXIT
make_source "$seconds" "$work/source.mp4"
secret=bench-scale-cluster-secret

stop_all() {
  for p in "${bench_pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${bench_pids[@]}"; do wait "$p" 2>/dev/null || true; done
  bench_pids=()
  rm -rf "${work:?}"/solo* "${work:?}"/a* "${work:?}"/b*
}

# pair BINARY_DIR ENV...: two nodes, a on core 0 and b on core 1; writes the
# ladder time of one upload to a into $work/last.
pair() {
  local bin=$1; shift
  local c1 c2
  c1=$(free_port); c2=$(free_port)
  REEL_BIN=$bin start_node a env "$@" taskset -c 0 -- --workers 1 \
    --cluster-listen "127.0.0.1:$c1" --cluster-secret "$secret" --replicas 1
  local url_a=$NODE_URL
  REEL_BIN=$bin start_node b env "$@" taskset -c 1 -- --workers 1 \
    --cluster-listen "127.0.0.1:$c2" --cluster-secret "$secret" \
    --join "127.0.0.1:$c1" --replicas 1
  for _ in $(seq 1 100); do
    n=$(curl -sf -H "Authorization: Bearer sk-bench" "$url_a/v1/admin/nodes" |
      python3 -c 'import json,sys; print(sum(m["state"]=="up" for m in json.load(sys.stdin)["data"]))')
    [ "$n" = 2 ] && break
    sleep 0.2
  done
  upload_and_wait "$url_a" "$work/source.mp4" "$work/pair.json"
  stop_all
  video_times "$work/pair.json" | cut -d' ' -f1 > "$work/last"
}

one=(); tls=(); plain=()
for r in $(seq 1 "$runs"); do
  echo "run $r of $runs: one node on core 0..."
  start_node solo taskset -c 0 -- --workers 1
  upload_and_wait "$NODE_URL" "$work/source.mp4" "$work/solo.json"
  one+=("$(video_times "$work/solo.json" | cut -d' ' -f1)")
  stop_all
  echo "run $r of $runs: two nodes over TLS..."
  pair build
  tls+=("$(cat "$work/last")")
  echo "run $r of $runs: two nodes without TLS (benchmark build)..."
  pair build-bench-plain REEL_BENCH_PLAINTEXT=1
  plain+=("$(cat "$work/last")")
done

median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
m_one=$(median "${one[@]}"); m_tls=$(median "${tls[@]}"); m_plain=$(median "${plain[@]}")
s_tls=$(echo "$m_one / $m_tls" | bc -l)
s_plain=$(echo "$m_one / $m_plain" | bc -l)
cost=$(echo "$s_plain - $s_tls" | bc -l)
printf '\nsource           %d s of 1080p30, %d runs (medians)\n' "$seconds" "$runs"
printf 'one node         %7.1f s (1 core)       runs: %s\n' "$m_one" "${one[*]}"
printf 'two nodes, TLS   %7.1f s (1 core each)  runs: %s\n' "$m_tls" "${tls[*]}"
printf 'two nodes, plain %7.1f s (1 core each)  runs: %s\n' "$m_plain" "${plain[*]}"
printf 'speedup, TLS     %7.2fx  (target >= 1.80x) %s\n' "$s_tls" "$(verdict "$s_tls >= 1.8")"
printf 'speedup, plain   %7.2fx\n' "$s_plain"
printf 'TLS cost         %7.3f  of the speedup (target <= 0.05) %s\n' "$cost" "$(verdict "$cost <= 0.05")"
