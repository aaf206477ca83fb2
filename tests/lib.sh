# Shared by the shell tests: a work directory, a free port, and a reeld on
# it that is stopped (and the directory removed) when the test exits.
# Usage: source tests/lib.sh; start_reeld BUILD_DIR KEY [reeld options...]
# Sets: root (the source tree), work, port, pid, base.
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
work=$(mktemp -d /tmp/reel-test-XXXXXX)
port=$(python3 "$root/tests/free_port.py")
base="http://127.0.0.1:$port"
pid=
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

start_reeld() {
  local build=$1 key=$2
  shift 2
  "$build/reeld" --listen "127.0.0.1:$port" --data "$work/data" \
    --bootstrap-key "$key" --chunk-seconds 2 --segment-seconds 2 \
    --player-dir "$root/node_modules/hls.js/dist" "$@" \
    >"$work/reeld.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 100); do
    curl -sf "$base/healthz" >/dev/null && return 0
    sleep 0.1
  done
  echo "reeld did not start:"; cat "$work/reeld.log"; return 1
}

# Makes an API key with the admin key $1 from a JSON body $2 (POST
# /v1/keys) and prints it.
new_key() {
  curl -sf -H "Authorization: Bearer $1" -H 'Content-Type: application/json' \
    -d "$2" "$base/v1/keys" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])'
}
