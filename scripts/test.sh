#!/usr/bin/env bash
# Builds syncvault's tests with g++ (warnings as errors) and runs them with CTest.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD_DIR:-build/gcc}
start=$SECONDS
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=g++ \
      -DSYNCVAULT_WERROR=ON -DCMAKE_CXX_COMPILER_LAUNCHER=ccache
cmake --build "$build" -j2
echo "== build (g++): $((SECONDS - start)) s"
start=$SECONDS
ctest --test-dir "$build" --output-on-failure -j2
echo "== tests (g++): $((SECONDS - start)) s"
