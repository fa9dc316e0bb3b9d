#!/usr/bin/env bash
# Builds the libFuzzer targets with clang 14 (ASan + UBSan) and runs each over its seed corpus
# for FUZZ_SECONDS (default 20). A finding fails the script and leaves the input in the build dir.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${FUZZ_BUILD_DIR:-build/fuzz}
seconds=${FUZZ_SECONDS:-20}
cmake -S . -B "$build" -G Ninja -DCMAKE_CXX_COMPILER=clang++ -DSYNCVAULT_BUILD_FUZZERS=ON \
      -DSYNCVAULT_BUILD_TESTS=OFF -DSYNCVAULT_BUILD_EXAMPLES=OFF -DSYNCVAULT_INSTALL=OFF \
      -DSYNCVAULT_WERROR=ON -DCMAKE_CXX_COMPILER_LAUNCHER=ccache >/dev/null
cmake --build "$build" -j2
for fuzzer in "$build"/tests/fuzz/fuzz_*; do
  [ -x "$fuzzer" ] || continue
  name=$(basename "$fuzzer"); name=${name#fuzz_}
  work="$build/corpus/$name"; mkdir -p "$work"
  cp -n tests/fuzz/corpus/"$name"/* "$work"/ 2>/dev/null || true
  echo "== fuzz $name for ${seconds}s"
  status=0
  "$fuzzer" -max_total_time="$seconds" -print_final_stats=1 -artifact_prefix="$build/" "$work" \
    >"$build/fuzz_$name.log" 2>&1 || status=$?
  grep -E "stat::number_of_executed_units|SUMMARY|runtime error" "$build/fuzz_$name.log" || true
  if [ "$status" -ne 0 ]; then echo "fuzz $name found a failing input (see $build/fuzz_$name.log)"; exit 1; fi
done
