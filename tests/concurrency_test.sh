#!/usr/bin/env bash
# 100 distinct small videos uploaded at once to one node while it transcodes:
# every upload is accepted (202) with its own id, every video becomes ready
# with the checksum and name of its own file (none lost, none mixed up), the
# tenant holds exactly those 100 videos, the node's peak memory stays under
# a bound, and it still answers /healthz afterwards.
# Usage: concurrency_test.sh BUILD_DIR
set -euo pipefail
build=$1
key=sk-concurrency-test
n=100
max_rss_mib=600
ready_within_s=300
source "$(dirname "$0")/lib.sh"
start_reeld "$build" "$key" --workers 2 --log-level warn

sampler=
stop_sampler() {
  if [ -n "$sampler" ]; then
    kill "$sampler" 2>/dev/null || true
    wait "$sampler" 2>/dev/null || true
  fi
  sampler=
}
trap 'stop_sampler; cleanup' EXIT
fail() {
  echo "FAIL: $*"
  echo "--- reeld log (last 40 lines)"
  tail -40 "$work/reeld.log"
  exit 1
}

# 10 clips of 1 s at 160x120, each with another hue; then 100 files that
# differ in a metadata tag (remuxed, not re-encoded): 100 distinct checksums.
mkdir -p "$work/clips" "$work/up"
seq 0 9 | xargs -P 2 -I{} ffmpeg -v error -y \
  -f lavfi -i "testsrc2=size=160x120:rate=10:duration=1" \
  -vf "hue=h={}*36" -c:v libx264 -preset ultrafast -g 10 -pix_fmt yuv420p \
  "$work/clips/base{}.mp4"
seq 0 $((n - 1)) | xargs -P 2 -I{} sh -c \
  'ffmpeg -v error -y -i "$1/clips/base$(($2 % 10)).mp4" -c copy \
     -metadata comment="clip $2" "$1/up/clip$2.mp4"' _ "$work" {}
(cd "$work/up" && sha256sum clip*.mp4) >"$work/sums"
[ "$(cut -c1-64 "$work/sums" | sort -u | wc -l)" -eq "$n" ] \
  || fail "the $n test files do not have $n distinct checksums"

# reeld's VmRSS every 0.5 s from here on.
(
  while kill -0 "$pid" 2>/dev/null; do
    awk '$1 == "VmRSS:" { print $2 }' "/proc/$pid/status" 2>/dev/null || true
    sleep 0.5
  done
) >"$work/rss" &
sampler=$!

# All at once through the Uploads API; one line per file: name, HTTP
# status, the id answered (or "-").
t0=$SECONDS
seq 0 $((n - 1)) | xargs -P "$n" -I{} sh -c '
  f=clip$2.mp4
  code=$(curl -s -m 120 -o "$1/resp$2.json" -w "%{http_code}" \
    -H "Authorization: Bearer $3" -F "video=@$1/up/$f" -F folder=root \
    "$4/api/client/v1/uploads") || code="curl-exit-$?"
  id=$(sed -n "s/.*\"id\":\"\([0-9a-f-]*\)\".*/\1/p" "$1/resp$2.json" 2>/dev/null)
  echo "$f $code ${id:--}" >"$1/result$2"' _ "$work" {} "$key" "$base"
cat "$work"/result* >"$work/results"

bad=$(awk '$2 != 202' "$work/results")
[ -z "$bad" ] || fail "uploads not answered 202 (file status id):"$'\n'"$bad"
[ "$(wc -l <"$work/results")" -eq "$n" ] || fail "$(wc -l <"$work/results") results for $n uploads"
[ "$(awk '$3 != "-"' "$work/results" | wc -l)" -eq "$n" ] || fail "uploads answered without an id"
dups=$(awk '{ print $3 }' "$work/results" | sort | uniq -d)
[ -z "$dups" ] || fail "ids answered more than once: $dups"
echo "ok: $n uploads answered 202 with $n distinct ids ($((SECONDS - t0)) s for all of them)"

# Every video ready with its own file's checksum and name; exactly these n
# in the tenant. Polls the list (one request a second), then reads each
# video by id.
python3 - "$base" "$key" "$work/results" "$work/sums" "$ready_within_s" <<'PY' || fail "see above"
import json, sys, time, urllib.request

base, key, results, sums, within = sys.argv[1:6]
def get(path):
    req = urllib.request.Request(base + path, headers={"Authorization": "Bearer " + key})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.load(r)

sha = {}
for line in open(sums):
    digest, name = line.split()
    sha[name.lstrip("*")] = digest
ids = {}
for line in open(results):
    name, _, vid = line.split()
    ids[vid] = name

start = time.time()
states = {}
while True:
    states, total, offset = {}, 0, 0
    while True:
        page = get(f"/v1/videos?limit=100&offset={offset}")
        total = page["pagination"]["total"]
        for v in page["data"]:
            states[v["id"]] = v["state"]
        offset += 100
        if offset >= total:
            break
    pending = [i for i in ids if states.get(i) not in ("ready", "failed")]
    if not pending or time.time() - start > float(within):
        break
    time.sleep(1)
took = time.time() - start

errors = []
extra = set(states) - set(ids)
if extra or total != len(ids):
    errors.append(f"the tenant holds {total} videos, expected {len(ids)}; not uploaded here: {sorted(extra)}")
for vid, name in sorted(ids.items(), key=lambda x: x[1]):
    v = get(f"/v1/videos/{vid}")
    if v["state"] != "ready":
        errors.append(f"{name} ({vid}) is {v['state']}"
                      + (f": {v['failure_reason']}" if v.get("failure_reason") else ""))
    if v["source"].get("sha256") != sha[name]:
        errors.append(f"{name} ({vid}) has source.sha256 {v['source'].get('sha256')}, its file {sha[name]}")
    if v["filename"] != name:
        errors.append(f"{vid} was uploaded as {name} but is named {v['filename']}")
for e in errors[:20]:
    print("  " + e)
if errors:
    print(f"{len(errors)} problems ({took:.0f} s after the uploads)")
    sys.exit(1)
print(f"ok: all {len(ids)} videos ready with their own file's checksum and name "
      f"({took:.0f} s after the uploads)")
PY

stop_sampler
peak_kib=$(sort -n "$work/rss" | tail -1)
hwm_kib=$(awk '$1 == "VmHWM:" { print $2 }' "/proc/$pid/status")
echo "reeld memory: peak VmRSS sampled $((peak_kib / 1024)) MiB" \
  "($(wc -l <"$work/rss") samples), VmHWM $((hwm_kib / 1024)) MiB" \
  "(bound $max_rss_mib MiB)"
[ "$peak_kib" -lt $((max_rss_mib * 1024)) ] && [ "$hwm_kib" -lt $((max_rss_mib * 1024)) ] \
  || fail "reeld used more than $max_rss_mib MiB"

kill -0 "$pid" 2>/dev/null || fail "reeld is gone"
curl -sf -m 5 "$base/healthz" >/dev/null || fail "/healthz does not answer"
echo "ok: /healthz answers"
