// sqlite_storage beyond the laws: crashes, foreign and locked files, schema versions,
// permissions, and errors that keep SQLite's words.

#include <syncvault/storage/sqlite_storage.hpp>

#include <syncvault/testing/storage_laws.hpp>

#include "storage/temp_dir.hpp"

#include <catch2/catch.hpp>

#include <sqlite3.h>

#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

namespace {

using syncvault::errc;
using syncvault::sqlite_storage;
using syncvault::sync_action;
using syncvault::testing::detail::reference_model;
using syncvault::testing::detail::sample_action;
using namespace std::chrono_literals;

sqlite_storage::impl_options_unused_guard* unused = nullptr;

} // namespace
