#!/usr/bin/env bash
# Scaling benchmark: the same 60 s 1080p source through (1) one node pinned
# to one core, (2) two nodes of one cluster, each pinned to its own core,
# uploaded to the first. Prints both ladder times (upload complete to ready)
# and the speedup. Target: at least 1.7x.
#
# Usage: bench/scale.sh [SECONDS]   (default 60)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
[ "$(nproc)" -ge 2 ] || { echo "needs 2 cores"; exit 1; }
./ops/install-deps.sh
./ops/build.sh >/dev/null
work=$(mktemp -d /tmp/reel-bench-scale-XXXXXX)
. bench/lib.sh
trap bench_cleanup EXIT
make_source "$seconds" "$work/source.mp4"

echo "(1) one node on core 0..."
start_node solo taskset -c 0 -- --workers 1
upload_and_wait "$NODE_URL" "$work/source.mp4" "$work/solo.json"
read -r one_s _ < <(video_times "$work/solo.json")
kill "$NODE_PID"; wait "$NODE_PID" 2>/dev/null || true

echo "(2) two nodes, cores 0 and 1..."
c1=$(free_port); c2=$(free_port)
start_node a taskset -c 0 -- --workers 1 --cluster-listen "127.0.0.1:$c1" --cluster-secret bench-scale-cluster-secret --replicas 1
url_a=$NODE_URL
start_node b taskset -c 1 -- --workers 1 --cluster-listen "127.0.0.1:$c2" --cluster-secret bench-scale-cluster-secret --join "127.0.0.1:$c1" --replicas 1
for _ in $(seq 1 100); do
  n=$(curl -sf -H "Authorization: Bearer sk-bench" "$url_a/v1/admin/nodes" |
    python3 -c 'import json,sys; print(sum(m["state"]=="up" for m in json.load(sys.stdin)["data"]))')
  [ "$n" = 2 ] && break
  sleep 0.2
done
upload_and_wait "$url_a" "$work/source.mp4" "$work/pair.json"
read -r two_s _ < <(video_times "$work/pair.json")

speedup=$(echo "$one_s / $two_s" | bc -l)
printf '\nsource         %d s of 1080p30\n' "$seconds"
printf 'one node       %7.1f s (1 core)\n' "$one_s"
printf 'two nodes      %7.1f s (1 core each)\n' "$two_s"
printf 'speedup        %7.2fx  (target >= 1.70x) %s\n' "$speedup" "$(verdict "$speedup >= 1.7")"
