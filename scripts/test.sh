#!/usr/bin/env bash
# Builds syncvault's tests and runs them with CTest, stage by stage; each stage prints how long
# it took, and a summary closes the run.
#
#   gcc     g++, warnings as errors: everything, every test (BUILD_DIR, default build/gcc)
#   clang   clang 14, warnings as errors: the unit tests, every header alone
#           (syncvault_header_tests), compile-fail tests, consumers of the installed package,
#           of the build tree and of add_subdirectory, the Conan recipe and its test_package
#   asan    ASan+UBSan (clang): the unit tests and, once it exists, syncvault_storage_tests
#   tsan    TSan (clang): the unit tests tagged [thread], the threaded simulation ([threaded]),
#           concurrent curl_transport transfers ([thread] integration tests)
#   windows MinGW-w64 cross build of tests/windows, run under Wine: the vault's unit tests, the
#           storage laws over memory_storage and file_journal, and file_journal's Win32 process
#           tests (TerminateProcess of a writer, a cut at every byte, the lock across processes)
#   fuzz    libFuzzer (clang, ASan+UBSan): each target over its corpus for FUZZ_SECONDS (15)
#   format  clang-format check of the files scripts/format-check.sh lists
#
# STAGES="clang tsan" bash scripts/test.sh runs some stages only (default: all, in this order).
# The other stages build in $BUILD_ROOT/<stage> (default build/<stage>).
set -euo pipefail
cd "$(dirname "$0")/.."
stages=" ${STAGES:-gcc clang asan tsan windows fuzz format} "
root=${BUILD_ROOT:-build}
summary=()
want() { [[ "$stages" == *" $1 "* ]]; }
took() { summary+=("$1: $2 s"); echo "== $1: $2 s"; }
has_target() { ninja -C "$1" -t targets all 2>/dev/null | grep -q "^$2: phony"; }
clangxx=$(command -v clang++-14 || command -v clang++)
# ctest, counting the tests it ran for the closing line (set -o pipefail keeps its status).
ran=0
ctest() {
    local log; log=$(mktemp)
    command ctest "$@" | tee "$log"
    local n; n=$(sed -n 's/.*tests failed out of \([0-9]*\).*/\1/p' "$log" | tail -n 1)
    ran=$((ran + ${n:-0}))
    rm -f "$log"
}

if want gcc; then
stage_start=$SECONDS
build=${BUILD_DIR:-build/gcc}
start=$SECONDS
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=g++ \
      -DSYNCVAULT_WERROR=ON -DCMAKE_CXX_COMPILER_LAUNCHER=ccache
cmake --build "$build" -j2
echo "== build (g++): $((SECONDS - start)) s"
start=$SECONDS
ctest --test-dir "$build" --output-on-failure -j2
echo "== tests (g++): $((SECONDS - start)) s"
took "stage gcc (build + every test)" $((SECONDS - stage_start))
fi

if want clang; then
    start=$SECONDS
    build=$root/clang
    cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER="$clangxx" \
          -DSYNCVAULT_WERROR=ON -DSYNCVAULT_BUILD_PACKAGING_TESTS=ON -DSYNCVAULT_BUILD_EXAMPLES=OFF \
          -DCMAKE_CXX_COMPILER_LAUNCHER=ccache
    cmake --build "$build" -j2 --target syncvault_unit_tests syncvault_header_tests
    ctest --test-dir "$build" --output-on-failure -j2 \
          -R '^(syncvault_unit_tests:|headers\.|compile_fail\.|consumer\.|conan\.)'
    took "stage clang (unit tests, headers, compile-fail, consumers, Conan)" $((SECONDS - start))
fi

if want asan; then
    start=$SECONDS
    build=$root/asan
    # -fno-sanitize=function: clang 14 cannot emit that check's prologue for coroutines
    # ("Cannot represent a difference across sections"); the async tests use coroutines.
    sanitize="-fsanitize=address,undefined -fno-sanitize=function -fno-sanitize-recover=undefined"
    cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_COMPILER="$clangxx" \
          -DCMAKE_CXX_FLAGS="-O1 -fno-omit-frame-pointer $sanitize" \
          -DCMAKE_EXE_LINKER_FLAGS="$sanitize" -DSYNCVAULT_BUILD_EXAMPLES=OFF \
          -DCMAKE_CXX_COMPILER_LAUNCHER=ccache
    targets=(syncvault_unit_tests)
    has_target "$build" syncvault_storage_tests && targets+=(syncvault_storage_tests)
    cmake --build "$build" -j2 --target "${targets[@]}"
    pattern=$(IFS='|'; echo "${targets[*]}")
    ASAN_OPTIONS=detect_leaks=1:strict_string_checks=1:check_initialization_order=1 \
    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        ctest --test-dir "$build" --output-on-failure -j2 -R "^(${pattern}):"
    took "stage asan+ubsan (${targets[*]})" $((SECONDS - start))
fi

if want tsan; then
    start=$SECONDS
    build=$root/tsan
    cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_COMPILER="$clangxx" \
          -DCMAKE_CXX_FLAGS="-O1 -fsanitize=thread" -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=thread" \
          -DSYNCVAULT_BUILD_EXAMPLES=OFF -DCMAKE_CXX_COMPILER_LAUNCHER=ccache
    cmake --build "$build" -j2 --target syncvault_unit_tests syncvault_simulation_tests syncvault_integration_tests
    # Catch2 runs every test case tagged [thread] (the vault's, the fakes', the UI bindings'),
    # then the threaded simulation: concurrent posters and pollers with faults.
    TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
        "$build/tests/syncvault_unit_tests" "[thread]" --reporter compact
    TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
        "$build/tests/syncvault_simulation_tests" "[threaded]" --reporter compact
    # Concurrent transfers through one thread-safe curl_transport against the loopback server.
    TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
        "$build/tests/syncvault_integration_tests" "[thread]" --reporter compact
    took "stage tsan ([thread] tests, [threaded] simulation)" $((SECONDS - start))
fi

if want windows; then
    start=$SECONDS
    build=$(realpath -m "$root/windows")
    # Boost and Catch2 are the host's headers, reached through a folder holding only these two
    # links: the host's /usr/include (glibc's headers) must never reach the MinGW compiler.
    sysinc=$build/system-include
    mkdir -p "$sysinc"
    ln -sfn /usr/include/boost "$sysinc/boost"
    ln -sfn /usr/include/catch2 "$sysinc/catch2"
    # -O0: MinGW compiles of these headers are slow and the tests wait on I/O, not on the CPU.
    cmake -S tests/windows -B "$build/build" -G Ninja -DCMAKE_BUILD_TYPE= -DCMAKE_CXX_FLAGS=-O0 \
          -DCMAKE_TOOLCHAIN_FILE="$PWD/cmake/toolchains/mingw-w64-x86_64.cmake" \
          -DSYNCVAULT_WIN_SYSTEM_INCLUDE="$sysinc" -DCMAKE_CXX_COMPILER_LAUNCHER=ccache
    # ccache caches the translation units that use the precompiled header only with these.
    CCACHE_SLOPPINESS=pch_defines,time_macros,include_file_mtime,include_file_ctime \
        cmake --build "$build/build" -j2
    echo "== build (MinGW-w64): $((SECONDS - start)) s"
    # A Wine prefix of our own (its first use takes a few seconds to create), no debug chatter,
    # and a tmpfs (Wine's Z: drive is /) for the tests that open thousands of journals.
    export WINEPREFIX=$build/wineprefix WINEDEBUG=-all
    scratch=""
    if [ -d /dev/shm ] && [ -w /dev/shm ]; then
        scratch=$(mktemp -d /dev/shm/syncvault-wine-XXXXXX)
    fi
    log=$(mktemp)
    # Every test runs. libstdc++ 12 emulates std::atomic::wait on Windows (no futex), and under
    # Wine a waiter hung now and then (about 1 run in 10): the tests use a latch on a condition
    # variable (tests/support/test_latch.hpp), and file_journal's group commit waits on one there
    # (detail/epoch_signal.hpp). `-d yes`: each case's time as it ends, so a hang names the case
    # after the last one listed. The run takes about a minute; a run that hangs (the timeout) is
    # reported with that name and run once more, a failing test fails the stage at once.
    wine_run() {
        SYNCVAULT_TEST_SCRATCH=${scratch:+Z:${scratch//\//\\}} \
            timeout 300 wine "$build/build/syncvault_windows_tests.exe" --reporter compact -d yes \
            2>&1 | tee "$log"
    }
    wine_status=0
    wine_run || wine_status=$?
    if [ "$wine_status" -eq 124 ]; then
        echo "== WINE RUN HUNG (timeout) after: $(grep ' s: ' "$log" | tail -n 1); running it once more"
        wine_run
    elif [ "$wine_status" -ne 0 ]; then
        exit "$wine_status"
    fi
    [ -n "$scratch" ] && rm -rf "$scratch"
    # Catch2's closing line: "Passed all N test cases with M assertions." (compact reporter)
    wine_cases=$(sed -n 's/.*all \([0-9]*\) test cases.*/\1/p' "$log" | tail -n 1)
    rm -f "$log"
    took "stage windows (MinGW-w64 build, ${wine_cases:-?} Catch2 test cases under Wine)" $((SECONDS - start))
fi

if want fuzz; then
    start=$SECONDS
    FUZZ_BUILD_DIR=$root/fuzz FUZZ_SECONDS=${FUZZ_SECONDS:-15} bash scripts/fuzz.sh
    took "stage fuzz (journal reader, Retry-After, JSON bodies, paths)" $((SECONDS - start))
fi

if want format; then
    start=$SECONDS
    bash scripts/format-check.sh
    took "stage format" $((SECONDS - start))
fi

echo "== summary"
printf '   %s\n' "${summary[@]}"
echo "ctest: $ran passed, 0 failed"
