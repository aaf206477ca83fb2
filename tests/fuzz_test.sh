#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz/ with clang into BUILD_DIR/fuzz
# (configured once, then rebuilt incrementally) and runs every target over
# its corpus for a bounded time, as many at once as there are cores. Fails
# on any crash, sanitizer report, timeout or out-of-memory; the input that
# did it is kept under BUILD_DIR/fuzz/crashes/ and printed in base64.
# New inputs go to a scratch directory, never into the corpus.
# Usage: fuzz_test.sh BUILD_DIR [SECONDS_PER_TARGET]   (default 20;
# REEL_FUZZ_SECONDS works too).
set -euo pipefail
build=$(cd "$1" && pwd)
seconds=${2:-${REEL_FUZZ_SECONDS:-20}}
root=$(cd "$(dirname "$0")/.." && pwd)
fuzz_build=$build/fuzz
targets=(fuzz_multipart fuzz_probe fuzz_json_patch fuzz_content_range
         fuzz_tus_metadata)
jobs=$(nproc)

if ! command -v clang++ >/dev/null 2>&1; then
  echo "fuzz_test: clang++ is missing (ops/install-deps.sh installs clang)"
  exit 1
fi

mkdir -p "$fuzz_build"
if [ ! -f "$fuzz_build/CMakeCache.txt" ]; then
  if ! CC=clang CXX=clang++ cmake -S "$root" -B "$fuzz_build" -DREEL_FUZZ=ON \
      >"$fuzz_build/configure.log" 2>&1; then
    cat "$fuzz_build/configure.log"
    rm -f "$fuzz_build/CMakeCache.txt"
    exit 1
  fi
fi
start=$(date +%s)
if ! cmake --build "$fuzz_build" -j"$jobs" >"$fuzz_build/build.log" 2>&1; then
  grep -E -B2 -A8 "error|undefined reference" "$fuzz_build/build.log" | head -80
  exit 1
fi
echo "fuzz_test: targets built in $(($(date +%s) - start)) s"

work=$(mktemp -d /tmp/reel-fuzz-XXXXXX)
trap 'rm -rf "$work"' EXIT
run() {
  local t=$1
  mkdir -p "$work/$t"
  "$fuzz_build/$t" "$work/$t" "$root/tests/fuzz/corpus/$t" \
    -dict="$root/tests/fuzz/$t.dict" -max_total_time="$seconds" \
    -timeout=5 -rss_limit_mb=1024 -artifact_prefix="$work/$t." \
    -print_final_stats=1 >"$work/$t.log" 2>&1
}

start=$(date +%s)
declare -A pid_of
status=0
failed=()
for t in "${targets[@]}"; do
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n || true; done
  run "$t" &
  pid_of[$t]=$!
done
for t in "${targets[@]}"; do
  if wait "${pid_of[$t]}"; then
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/$t.log")
    echo "fuzz_test: $t: ${runs:-?} inputs, no crash"
  else
    status=1
    failed+=("$t")
  fi
done

for t in "${failed[@]}"; do
  echo "=== fuzz_test: $t FAILED; its report:"
  grep -v -E '^#[0-9]+\s+(NEW|REDUCE|pulse|RELOAD)|NEW_FUNC|Uses: ' \
    "$work/$t.log" | tail -60
  mkdir -p "$fuzz_build/crashes"
  for a in "$work/$t".*; do
    [ -f "$a" ] || continue
    keep=$fuzz_build/crashes/$(basename "$a")
    cp "$a" "$keep"
    echo "--- input kept as $keep; reproduce with: $fuzz_build/$t $keep"
    echo "--- the input in base64:"
    head -c 4096 "$a" | base64 -w 76
  done
done
echo "fuzz_test: ${#targets[@]} targets, ${seconds} s each, ran in" \
  "$(($(date +%s) - start)) s"
exit "$status"
