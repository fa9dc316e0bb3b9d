#!/usr/bin/env bash
# The README's demo: installs what a fresh Debian 12 machine lacks, builds the Todo example and
# runs its scripted tour (server down, changes queue, the app restarts, the server comes back,
# the queue drains to "all caught up"). Everything runs on 127.0.0.1; nothing else is needed.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
build=${BUILD_DIR:-build/demo}
launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
echo "== building the Todo example in $build"
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DSYNCVAULT_BUILD_TESTS=OFF \
      -DSYNCVAULT_BUILD_EXAMPLES=ON -DSYNCVAULT_INSTALL=OFF "${launcher[@]}" >/dev/null
cmake --build "$build" --target todo -j2
echo
exec "$build/examples/todo" --demo
