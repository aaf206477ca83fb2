#!/usr/bin/env bash
# Installs what reel needs to build, run and test, when it is missing.
# Debian 12; needs root (or sudo). Safe to run again: it only installs what
# is not there yet.
set -euo pipefail

packages=(
  cmake g++ make pkg-config
  libcaf-dev libasio-dev librocksdb-dev
  libavformat-dev libavcodec-dev libavfilter-dev libswscale-dev
  libswresample-dev libavutil-dev
  libcpp-httplib-dev prometheus-cpp-dev libboost-test-dev nlohmann-json3-dev
  libssl-dev
  ffmpeg curl python3 bc time openssl
  chromium chromium-driver
  clang libclang-rt-dev # tests/fuzz_test.sh: libFuzzer, ASan, UBSan
  prometheus # tests/prometheus_test.sh runs its own server on a free port
  iproute2 faketime # tests/partition_test.sh: network namespaces, a skewed clock
)
# Node.js for the player (hls.js) and the browser tests: the machine's own
# if it has one, else Debian's.
command -v node >/dev/null 2>&1 || packages+=(nodejs npm)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" \
    || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
  echo "reel: installing ${missing[*]}" >&2
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq \
    --no-install-recommends "${missing[@]}" >/dev/null
fi

# npm packages: hls.js (served by reeld as its player) and the tools the
# tests drive. Installed from the lock file when missing or out of date.
cd "$(dirname "$0")/.."
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "reel: installing npm packages" >&2
  npm ci --no-audit --no-fund --loglevel=error >/dev/null
fi
