// Memory a vault holds per pending action (SPEC 9.8): n actions with 256-byte bodies enqueued
// offline into a vault over file_journal (bodies in storage) and over memory_storage (bodies in
// memory, the storage's copy included), then the file_journal vault reopened over them. Counts
// the heap in use (glibc mallinfo2: exact, independent of page reuse) and the resident set.
//
//   syncvault_memory_bench [n=100000] [directory=$TMPDIR]
//
// Prints one line per row. Not a test.

#include <syncvault/basic_vault.hpp>
#include <syncvault/connectivity/manual_connectivity.hpp>
#include <syncvault/retry/jittered_backoff.hpp>
#include <syncvault/storage/file_journal.hpp>
#include <syncvault/storage/memory_storage.hpp>
#include <syncvault/testing/fake_clock.hpp>
#include <syncvault/testing/fake_transport.hpp>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>

#include <malloc.h>
#include <unistd.h>

namespace {

template <class Storage>
using bench_vault = syncvault::basic_vault<syncvault::testing::fake_transport, Storage, syncvault::manual_connectivity,
                                           syncvault::jittered_backoff, syncvault::testing::fake_clock>;

std::size_t heap_in_use()
{
    return mallinfo2().uordblks;
}

std::size_t rss_bytes()
{
    long pages = 0, resident = 0;
    if (FILE* f = std::fopen("/proc/self/statm", "r")) {
        if (std::fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
        std::fclose(f);
    }
    return static_cast<std::size_t>(resident) * static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
}

syncvault::vault_config config(std::size_t n)
{
    syncvault::vault_config cfg;
    cfg.base_url = "http://bench.test/v1";
    cfg.max_pending = n + 1;
    cfg.max_pending_bytes = (n + 1) * 1024;
    return cfg;
}

/** 256 bytes, different per action (so nothing is shared), not UTF-8. */
syncvault::raw_body body(std::size_t i)
{
    std::string s(256, '\0');
    for (std::size_t k = 0; k < s.size(); ++k) s[k] = static_cast<char>((i * 31 + k * 7) & 0xFF);
    return {std::move(s), "application/octet-stream"};
}

void row(const char* what, std::size_t n, std::size_t heap0, std::size_t heap1, std::size_t rss0, std::size_t rss1)
{
    const auto per = [n](std::size_t a, std::size_t b) { return b > a ? double(b - a) / double(n) : 0.0; };
    std::printf("%-58s heap %7.0f B/action   rss %7.0f B/action   (n=%zu)\n", what, per(heap0, heap1), per(rss0, rss1),
                n);
}

template <class Storage>
std::unique_ptr<bench_vault<Storage>> open(std::size_t n, Storage s)
{
    syncvault::testing::fake_clock clock;
    return std::make_unique<bench_vault<Storage>>(config(n), syncvault::testing::fake_transport{}, std::move(s),
                                                  syncvault::manual_connectivity{false}, syncvault::jittered_backoff{},
                                                  clock);
}

template <class Vault>
void enqueue(Vault& v, std::size_t n)
{
    for (std::size_t i = 0; i < n; ++i)
        if (!v.post("/items/" + std::to_string(i), body(i)).is_queued()) {
            std::fprintf(stderr, "enqueue %zu failed\n", i);
            std::exit(1);
        }
}

}  // namespace

int main(int argc, char** argv)
{
    const std::size_t n = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 100000;
    const std::filesystem::path base =
        argc > 2 ? std::filesystem::path(argv[2]) : std::filesystem::temp_directory_path();
    const auto dir = base / ("syncvault-memory-bench-" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir);

    {
        auto h0 = heap_in_use();
        auto r0 = rss_bytes();
        auto v = open(n, syncvault::memory_storage{});
        enqueue(*v, n);
        row("vault + memory_storage (bodies in memory, twice)", n, h0, heap_in_use(), r0, rss_bytes());
    }
    malloc_trim(0);
    {
        auto h0 = heap_in_use();
        auto r0 = rss_bytes();
        auto v = open(n, syncvault::file_journal(dir, syncvault::durability::none));
        enqueue(*v, n);
        row("vault + file_journal, after enqueue", n, h0, heap_in_use(), r0, rss_bytes());
    }
    malloc_trim(0);
    {
        auto h0 = heap_in_use();
        auto r0 = rss_bytes();
        auto v = open(n, syncvault::file_journal(dir, syncvault::durability::none));
        if (v->pending_count() != n) {
            std::fprintf(stderr, "reopened %zu actions, expected %zu\n", v->pending_count(), n);
            return 1;
        }
        malloc_trim(0);
        row("vault + file_journal, after a reopen", n, h0, heap_in_use(), r0, rss_bytes());
    }
    std::filesystem::remove_all(dir);
}
