// The vault's own cost per drained action, without a network: n actions queued offline, then
// drained by process_queue() through a transport that answers 200 at once. Prints the CPU time
// of the draining thread per action (the enqueue is not counted), over file_journal (bodies read
// back from storage, SPEC 9.8) and over memory_storage, median of `rounds` fresh vaults.
// network_bench measures the same drain against a real server and libcurl; this isolates the core
// (profile it: PERF_CTL=FIFO with `perf record -D -1 --control fifo:FIFO` records the drains only).
//
//   syncvault_drain_bench [n=30000] [rounds=3] [directory=$TMPDIR]
//
// Prints one line per storage and a JSON line. Not a test.

#include <syncvault/basic_vault.hpp>
#include <syncvault/connectivity/manual_connectivity.hpp>
#include <syncvault/retry/jittered_backoff.hpp>
#include <syncvault/storage/file_journal.hpp>
#include <syncvault/storage/memory_storage.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace {

/** Answers every request at once: what is left is the vault's work. */
struct instant_transport {
    static constexpr bool thread_safe = true;
    syncvault::result<syncvault::http_response> send(const syncvault::http_request&)
    {
        return syncvault::http_response{200, {}, "{}"};
    }
};

double thread_cpu_seconds()
{
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return double(ts.tv_sec) + double(ts.tv_nsec) * 1e-9;
}

/** Tells a `perf record --control fifo:...` to record only the drain. */
void perf_control(const char* command)
{
    if (const char* fifo = std::getenv("PERF_CTL")) std::ofstream(fifo) << command << '\n';
}

template <class Storage>
double drain_us_per_action(Storage storage, std::size_t n, const syncvault::vault_config& cfg)
{
    syncvault::basic_vault<instant_transport, Storage, syncvault::manual_connectivity, syncvault::jittered_backoff,
                           std::chrono::system_clock>
        v{cfg, instant_transport{}, std::move(storage), syncvault::manual_connectivity{false}};
    const boost::json::value body = {{"title", std::string(200, 'x')}, {"done", false}, {"n", 1}};
    for (std::size_t i = 0; i < n; ++i)
        if (!v.post("/todos", body).is_queued()) throw std::runtime_error("post was not queued");
    v.connectivity().set_online(true);
    perf_control("enable");
    const double start = thread_cpu_seconds();
    v.process_queue();
    const double cpu = thread_cpu_seconds() - start;
    perf_control("disable");
    if (v.pending_count() != 0) throw std::runtime_error("the queue did not drain");
    return cpu * 1e6 / double(n);
}

double median(std::vector<double> v)
{
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv)
{
    namespace fs = std::filesystem;
    const std::size_t n = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 30000;
    const int rounds = argc > 2 ? std::atoi(argv[2]) : 3;
    const fs::path dir = fs::path(argc > 3 ? argv[3] : fs::temp_directory_path()) / "syncvault-drain-bench";

    syncvault::vault_config cfg;
    cfg.base_url = "http://api.test";
    cfg.storage_path = dir;
    cfg.max_pending = n + 1;
    cfg.max_pending_bytes = std::size_t(1) << 30;
    cfg.storage_durability = syncvault::durability::none;  // the enqueue is not what is measured

    std::vector<double> journal, memory;
    for (int r = 0; r < rounds; ++r) {
        fs::remove_all(dir);
        journal.push_back(drain_us_per_action(syncvault::file_journal{cfg}, n, cfg));
        memory.push_back(drain_us_per_action(syncvault::memory_storage{}, n, cfg));
    }
    fs::remove_all(dir);
    std::printf("drain of %zu actions, instant transport, CPU per action (median of %d)\n", n, rounds);
    std::printf("  vault + file_journal    %6.2f us\n", median(journal));
    std::printf("  vault + memory_storage  %6.2f us\n", median(memory));
    std::printf("{\"bench\":\"drain_core\",\"n\":%zu,\"file_journal_us\":%.3f,\"memory_storage_us\":%.3f}\n", n,
                median(journal), median(memory));
}
