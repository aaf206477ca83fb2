#!/usr/bin/env bash
# The gate: every route of the node's route table against every kind of
# credential (tests/gate_matrix/matrix.py), then the rate limits: a key past
# its tenant's limit gets 429 with Retry-After, every API answer carries
# X-RateLimit-*, and a tenant's own limit applies to its keys.
# Usage: gate_matrix_test.sh BUILD_DIR
set -euo pipefail
build=$1
key=sk-gate-matrix-admin
source "$(dirname "$0")/lib.sh"
# No limit for the matrix itself (it makes hundreds of requests a second).
start_reeld "$build" "$key" --rate-limit 0
python3 "$root/tests/gate_matrix/matrix.py" "$base" "$key"
# docs/routes.md is the route table as the node has it.
curl -sf -H "Authorization: Bearer $key" "$base/v1/admin/routes" >"$work/routes.json"
if ! python3 "$root/tests/gate_matrix/routes_md.py" "$work/routes.json" |
     diff -u "$root/docs/routes.md" - >"$work/routes.diff"; then
  echo "docs/routes.md differs from the node's route table; regenerate it:"
  echo "  python3 tests/gate_matrix/routes_md.py ROUTES_JSON > docs/routes.md"
  head -40 "$work/routes.diff"
  exit 1
fi
kill "$pid"; wait "$pid" 2>/dev/null || true; pid=

# Rate limits: 3 a second by default, tenant "fast" unlimited.
start_reeld "$build" "$key" --rate-limit 3 --tenant-rate-limit fast=0
slow=$(new_key "$key" '{"tenant":"slow"}')
fast=$(new_key "$key" '{"tenant":"fast"}')
python3 - "$base" "$slow" "$fast" <<'PY'
import sys, urllib.request, urllib.error
base, slow, fast = sys.argv[1:]
def get(key):
    req = urllib.request.Request(base + "/v1/videos",
                                 headers={"Authorization": "Bearer " + key})
    try:
        with urllib.request.urlopen(req) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()
answers = [get(slow) for _ in range(10)]
codes = [a[0] for a in answers]
errors = []
if 429 not in codes:
    errors.append(f"no 429 in {codes}")
if codes[0] != 200:
    errors.append(f"the first request answered {codes[0]}")
for status, headers, body in answers:
    for h in ("X-RateLimit-Limit", "X-RateLimit-Remaining",
              "X-RateLimit-Retry-After"):
        if headers.get(h) is None:
            errors.append(f"{status} without {h}")
    if headers.get("X-RateLimit-Limit") not in (None, "3"):
        errors.append(f"limit {headers.get('X-RateLimit-Limit')}, not 3")
    if status == 429:
        if not headers.get("Retry-After"):
            errors.append("429 without Retry-After")
        if b"rate_limited" not in body:
            errors.append(f"429 body {body[:120]!r}")
fast_codes = [get(fast)[0] for _ in range(20)]
if any(c != 200 for c in fast_codes):
    errors.append(f"the unlimited tenant got {fast_codes}")
print(f"rate limits: slow {codes}, fast {fast_codes.count(200)}/20 ok")
for e in errors:
    print("  FAIL " + e)
sys.exit(1 if errors else 0)
PY
