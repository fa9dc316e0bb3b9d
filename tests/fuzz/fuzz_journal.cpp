// Fuzzes the journal reader: the input is written as a journal file and opened the way a vault
// opens it after a crash. Whatever the bytes, opening must not crash, and must leave a journal
// that opens again to the same actions (recovery is idempotent) with no further diagnostic.

#include <syncvault/storage/file_journal.hpp>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <unistd.h>

namespace {
const std::filesystem::path& work_dir()
{
    static const std::filesystem::path dir = [] {
        // tmpfs when there is one: the reader is what is fuzzed, not the disk's fsync latency.
        const std::filesystem::path base = std::filesystem::is_directory("/dev/shm") ? "/dev/shm"
                                           : std::filesystem::temp_directory_path();
        auto d = base / ("syncvault-fuzz-journal-" + std::to_string(::getpid()));
        std::filesystem::create_directories(d);
        return d;
    }();
    return dir;
}
} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    const auto& dir = work_dir();
    for (const auto& entry : std::filesystem::directory_iterator(dir))
        if (entry.path().filename() != "syncvault.journal.lock") std::filesystem::remove(entry.path());
    {
        std::ofstream out(dir / std::string(syncvault::file_journal::file_name), std::ios::binary);
        out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
    }

    std::vector<syncvault::sync_action> first;
    try {
        syncvault::file_journal journal(dir, syncvault::durability::none);
        auto loaded = journal.load_all();
        if (!loaded) return 0;
        first = std::move(*loaded);
        (void)journal.take_diagnostics();
    } catch (const std::system_error&) {
        return 0;  // refused whole (e.g. not a journal at all): acceptable, nothing was destroyed
    }

    syncvault::file_journal again(dir, syncvault::durability::none);
    auto second = again.load_all();
    if (!second || *second != first) std::abort();
    if (!again.take_diagnostics().empty()) std::abort();
    return 0;
}
