#!/usr/bin/env bash
# Checks with clang-format (.clang-format at the root) the files that are kept formatted.
# Fatal: a listed file that clang-format would change fails the check. Add a file here once it
# is formatted (`clang-format -i <file>`); files not listed yet are left alone, so nobody's
# work in progress is reformatted under them.
set -euo pipefail
cd "$(dirname "$0")/.."
files=(
  tests/policies/policy_tests.cpp
  tests/compile_fail/models.hpp
  tests/compile_fail/compile_ok.cpp
  tests/compile_fail/missing_transport.cpp
  tests/compile_fail/missing_storage.cpp
  tests/compile_fail/missing_connectivity.cpp
  tests/compile_fail/missing_retry_policy.cpp
  tests/compile_fail/missing_clock.cpp
  tests/consumer/consumer.cpp
  tests/headers/main.cpp
  include/syncvault/testing/simulation.hpp
  include/syncvault/testing/simulation/*.hpp
  tests/simulation/simulation_tests.cpp
  conan/test_package/test_package.cpp
  include/syncvault/detail/file_layer.hpp
  include/syncvault/detail/file_handle.hpp
  include/syncvault/detail/file_layer_posix.hpp
  include/syncvault/detail/file_layer_win32.hpp
  tests/windows/main.cpp
  tests/windows/child_process.hpp
  tests/windows/file_journal_windows_tests.cpp
  tests/windows/network_windows_tests.cpp
  include/syncvault/response_ref.hpp
  include/syncvault/detail/response_refs.hpp
  include/syncvault/detail/json_merge.hpp
  include/syncvault/detail/coalesce.hpp
  tests/vault/queue_edit_tests.cpp
  include/syncvault/src.hpp
  include/syncvault/vault_src.hpp
  include/syncvault/detail/compile_mode.hpp
  include/syncvault/detail/uuid.hpp
  include/syncvault/detail/url_encode.hpp
  include/syncvault/connectivity/polling_connectivity.hpp
  include/syncvault/impl/uuid.ipp
  include/syncvault/impl/url_encode.ipp
  include/syncvault/impl/request_check.ipp
  include/syncvault/impl/polling_connectivity.ipp
  tests/separate/*.cpp
  tests/vault/body_storage_tests.cpp
  tests/bench/memory_bench.cpp
  tests/bench/drain_bench.cpp
)
format=$(command -v clang-format-14 || command -v clang-format)
"$format" --dry-run --Werror "${files[@]}"
echo "clang-format: ${#files[@]} files formatted"
