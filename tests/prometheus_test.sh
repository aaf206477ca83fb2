#!/usr/bin/env bash
# Debian's Prometheus server (installed by ops/install-deps.sh) scrapes a
# reeld every second; through Prometheus' HTTP API the test checks that the
# core series (docs/metrics.md) are there, and that they move when a video
# is uploaded and processed. Usage: prometheus_test.sh BUILD_DIR
set -euo pipefail
build=$1
key=sk-prometheus-test
source "$(dirname "$0")/lib.sh"

if ! command -v prometheus >/dev/null; then
  echo "prometheus is not installed: run ops/install-deps.sh"
  exit 1
fi

# lib.sh's trap stops reeld and removes $work; Prometheus (whose data is in
# $work) is stopped first.
prom_pid=
stop_all() {
  if [ -n "$prom_pid" ]; then
    kill "$prom_pid" 2>/dev/null || true
    wait "$prom_pid" 2>/dev/null || true
  fi
  cleanup
}
trap stop_all EXIT

failures=0
fail() {
  echo "FAIL: $*"
  failures=$((failures + 1))
}
dump_logs() {
  echo "--- reeld log (last 30 lines)"; tail -30 "$work/reeld.log"
  echo "--- prometheus log (last 30 lines)"; tail -30 "$work/prom.log"
}

start_reeld "$build" "$key"

# Prometheus, scraping that reeld every second.
prom_port=$(python3 "$root/tests/free_port.py")
prom="http://127.0.0.1:$prom_port"
cat >"$work/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: reel
    static_configs:
      - targets: ["127.0.0.1:$port"]
EOF
prometheus --config.file="$work/prometheus.yml" \
  --storage.tsdb.path="$work/prom" \
  --web.listen-address="127.0.0.1:$prom_port" >"$work/prom.log" 2>&1 &
prom_pid=$!

# The value of an instant query's first sample, or "none" when it has none.
query() {
  curl -sf --max-time 2 --get --data-urlencode "query=$1" "$prom/api/v1/query" |
    python3 -c '
import json, sys
r = json.load(sys.stdin)
res = r["data"]["result"] if r.get("status") == "success" else []
print(res[0]["value"][1] if res else "none")' 2>/dev/null || echo none
}
# expect SECONDS EXPR COND [EXPR COND ...]: polls Prometheus until every
# COND (Python, on v: the value of EXPR's first sample, None when it has
# none) holds, for at most SECONDS; prints each EXPR's last value, and a FAIL
# line for each that never held. The status is the number of those.
expect() {
  python3 - "$prom" "$@" <<'PY'
import json, sys, time, urllib.parse, urllib.request
prom, seconds, args = sys.argv[1], float(sys.argv[2]), sys.argv[3:]
pairs = list(zip(args[0::2], args[1::2]))
def value(expr):
    url = prom + "/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    try:
        res = json.load(urllib.request.urlopen(url, timeout=2))["data"]["result"]
    except Exception:
        return None
    return float(res[0]["value"][1]) if res else None
deadline = time.monotonic() + seconds
pending = dict(pairs)
last = {}
while True:
    for expr, cond in list(pending.items()):
        v = last[expr] = value(expr)
        if v is not None and eval(cond, {"v": v}):
            del pending[expr]
    if not pending or time.monotonic() > deadline:
        break
    time.sleep(0.25)
for expr, cond in pairs:
    ok = expr not in pending
    print(f"{'  ok' if ok else 'FAIL:'} {expr} = {last[expr]}"
          + ("" if ok else f", expected {cond}"))
sys.exit(len(pending))
PY
}

# The target is up: Prometheus' own view (targets API), then a scrape's
# samples.
up=
for _ in $(seq 1 60); do
  up=$(curl -sf --max-time 2 "$prom/api/v1/targets" | python3 -c '
import json, sys
t = json.load(sys.stdin)["data"]["activeTargets"]
print(",".join(x["health"] for x in t))' 2>/dev/null || true)
  [ "$up" = up ] && break
  sleep 0.25
done
if [ "$up" != up ]; then
  echo "FAIL: the reeld target is not up in Prometheus (health: '$up')"
  dump_logs; exit 1
fi

# The core series exist before any video: start_reeld's health checks were
# counted, the other counters and gauges are there at 0.
echo "before the video:"
core=(up reel_http_requests_total reel_http_request_duration_seconds_bucket
  reel_http_response_bytes_total reel_ingest_bytes_total
  reel_ingest_active_uploads reel_scheduler_task_retries_total
  reel_video_failures_total reel_replication_lag_blobs
  reel_cluster_failovers_total reel_store_bytes reel_blob_bytes
  reel_webhook_deliveries_total reel_webhook_retries_total
  reel_webhook_outbox)
checks=()
for s in "${core[@]}"; do checks+=("count($s)" 'v >= 1'); done
expect 10 "${checks[@]}" \
  'up{job="reel"}' 'v == 1' \
  'sum(reel_http_requests_total{route="healthz"})' 'v >= 1' ||
  fail "core series missing in Prometheus"

frames0=$(query 'sum(reel_transcode_frames_total) or vector(0)')
ingest0=$(query 'reel_ingest_bytes_total')
[ "$ingest0" != none ] || ingest0=0

# A 4 s 320x240 clip with a tone, uploaded with the Uploads API.
ffmpeg -v error -y -f lavfi -i testsrc2=size=320x240:rate=25 \
  -f lavfi -i sine=frequency=440 -t 4 -c:v libx264 -preset ultrafast \
  -g 25 -pix_fmt yuv420p -c:a aac "$work/clip.mp4"
size=$(stat -c %s "$work/clip.mp4")
id=$(curl -sf --max-time 10 -H "Authorization: Bearer $key" \
  -F video=@"$work/clip.mp4" -F folder=root "$base/api/client/v1/uploads" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["id"])')
state=
for _ in $(seq 1 120); do
  state=$(curl -sf --max-time 2 -H "Authorization: Bearer $key" \
    "$base/v1/videos/$id" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["state"])' || true)
  [ "$state" = ready ] || [ "$state" = failed ] && break
  sleep 0.25
done
if [ "$state" != ready ]; then
  echo "FAIL: video $id is '$state', not ready"
  dump_logs; exit 1
fi

# After the next scrapes: the frame counter grew by the clip's 100 frames
# (at least; once per rung) and ingest bytes by its size, the video is
# counted as ready, the upload and the tasks were counted, the queue is
# empty again and nothing failed.
echo "after the video (frames were $frames0, ingest bytes $ingest0):"
expect 10 \
  'sum(reel_transcode_frames_total)' "v >= $frames0 + 100" \
  'reel_ingest_bytes_total' "v >= $ingest0 + $size" \
  'reel_videos{state="ready"}' 'v >= 1' \
  'sum(reel_transcode_media_seconds_total)' 'v >= 3.5' \
  'reel_http_requests_total{route="uploads.create",code="202"}' 'v >= 1' \
  'reel_scheduler_tasks_run_total{kind="chunk"}' 'v >= 1' \
  'sum(reel_scheduler_tasks)' 'v == 0' \
  'reel_store_bytes' 'v > 0' \
  'sum(reel_video_failures_total)' 'v == 0' ||
  fail "series did not move as the video was processed"

# ops/prometheus.yml is a valid configuration.
if command -v promtool >/dev/null; then
  promtool check config "$root/ops/prometheus.yml" >"$work/promtool.log" 2>&1 ||
    { cat "$work/promtool.log"; fail "promtool rejects ops/prometheus.yml"; }
fi

# ops/grafana-dashboard.json: a Grafana dashboard on a Prometheus data
# source variable whose every expression Prometheus accepts and names only
# metrics that /metrics serves; and every metric /metrics serves is in the
# catalog, docs/metrics.md.
curl -sf --max-time 5 "$base/metrics" >"$work/metrics.txt"
python3 - "$root/ops/grafana-dashboard.json" "$work/metrics.txt" \
    "$root/docs/metrics.md" "$root/ops/metrics.cpp" "$prom" <<'PY' ||
import json, re, sys, urllib.parse, urllib.request
dash_path, metrics_path, doc_path, decl_path, prom = sys.argv[1:6]
dash = json.load(open(dash_path))
text = open(metrics_path).read()
doc = open(doc_path).read()
errors = []

# What /metrics serves (families, # TYPE, and sample names), and what
# ops/metrics.cpp declares: a family without a series yet is not served
# (reel_cluster_nodes on a node without a cluster).
served = set(re.findall(r"^# TYPE (\S+) ", text, re.M))
declared = set(re.findall(r'\.Name\("([a-z0-9_]+)"\)', open(decl_path).read()))
families = served | declared
samples = set(re.findall(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)", text, re.M))
known = families | samples | {f + s for f in families
                              for s in ("_bucket", "_sum", "_count")}
for f in sorted(served - declared):
    errors.append(f"{f} is served but not declared in ops/metrics.cpp")
for f in sorted(families):
    if f"`{f}`" not in doc:
        errors.append(f"{f} is not in docs/metrics.md")

# The dashboard's shape.
variables = {v["name"]: v for v in dash["templating"]["list"]}
ds = variables.get("datasource", {})
if ds.get("type") != "datasource" or ds.get("query") != "prometheus":
    errors.append("no Prometheus data source variable named datasource")
if dash.get("schemaVersion", 0) < 36:
    errors.append("schemaVersion is older than Grafana 10's")
panels = dash["panels"]
ids = [p["id"] for p in panels]
if len(ids) != len(set(ids)):
    errors.append("panel ids are not unique")
exprs = []
for p in panels:
    g = p["gridPos"]
    if g["x"] + g["w"] > 24:
        errors.append(f"panel {p['title']!r} is wider than the grid")
    if p["type"] == "row":
        continue
    if p.get("datasource", {}).get("uid") != "${datasource}":
        errors.append(f"panel {p['title']!r} does not use $datasource")
    if not p.get("targets"):
        errors.append(f"panel {p['title']!r} has no query")
    for t in p.get("targets", []):
        exprs.append((p["title"], t["expr"]))
for v in variables.values():
    if v["type"] == "query":
        m = re.fullmatch(r"label_values\((.*), *(\w+)\)", v["definition"])
        exprs.append((f"variable {v['name']}", m.group(1)))
titles = " ".join(p["title"].lower() for p in panels)
for want in ("requests/s", "latency", "queue", "failures", "up"):
    if want not in titles:
        errors.append(f"no panel about {want}")

with_data = 0
for title, expr in exprs:
    names = set(re.findall(r"\breel_[a-z0-9_]+", expr))
    names |= set(re.findall(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\{", expr))
    for n in sorted(names):
        if n != "up" and n not in known:
            errors.append(f"{title!r}: {n} is not a metric /metrics serves")
    q = (expr.replace("$__rate_interval", "1m")
             .replace("$job", "reel").replace("$instance", ".*"))
    url = prom + "/api/v1/query?" + urllib.parse.urlencode({"query": q})
    try:
        r = json.load(urllib.request.urlopen(url, timeout=5))
    except Exception as e:  # 400 for a bad expression
        errors.append(f"{title!r}: Prometheus refuses {q!r}: {e}")
        continue
    if r.get("status") != "success":
        errors.append(f"{title!r}: {q!r}: {r}")
    elif r["data"]["result"]:
        with_data += 1
print(f"dashboard: {len(exprs)} expressions, {with_data} with data now; "
      f"{len(served)} metric families served, {len(declared)} declared")
for e in errors:
    print("  " + e)
sys.exit(1 if errors else 0)
PY
  fail "the dashboard or the catalog"

if [ "$failures" -ne 0 ]; then
  dump_logs; exit 1
fi
echo "prometheus_test: ok"
