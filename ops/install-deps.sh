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
  ffmpeg curl
)

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
