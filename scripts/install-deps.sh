#!/usr/bin/env bash
# Installs syncvault's build and test dependencies from Debian 12's packages (needs root).
set -euo pipefail
packages=(g++ clang cmake ninja-build ccache libboost1.81-dev libboost-json1.81-dev
          libboost-url1.81-dev catch2 libcurl4-openssl-dev libsqlite3-dev libssl-dev openssl
          libclang-rt-14-dev clang-format python3
          g++-mingw-w64-x86-64-posix wine64)  # the `windows` stage: MinGW-w64 cross build, Wine
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo_cmd=""; [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${missing[@]}"
fi
