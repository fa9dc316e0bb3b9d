// Network drain benchmark: how fast a vault empties a queue of N actions against the loopback
// test server, next to a raw libcurl loop that reuses its handle (the limit for a sequential
// FIFO drain) and a naive loop that makes a new handle, and so a new connection, per request.
//
//   syncvault_network_bench [N=10000] [rounds=10] [C=2000] [latency_ms=2] [threads=8]
//
// Every variant sends N requests in `rounds` chunks, taking turns with the others (the order
// rotates), so that outside load on a shared machine hits them alike; a vault's chunk is a
// fresh vault with N/rounds actions queued while offline, then drained (only the drain is
// timed), after one unmeasured warm-up chunk of each. Rates are total requests over total
// time. Then each storage drains one queue of all N actions, which shows how the drain scales
// with the queue's length. Then, with the server
// answering each request `latency_ms` late (a server that takes time to work), C POSTs go through
// one thread-safe curl_transport from `threads` threads at once and from one thread, in
// interleaved rounds (C=0 skips this). Prints tables and JSON lines.
//
// `--one-cpu` (anywhere) runs the whole process, client and server threads, on one CPU. On a
// 2-core VM a request's round trip wakes the other thread across CPUs, and what that costs
// depends on where the scheduler happens to put the threads: the raw loop's client CPU moved
// between 19 and 38 us from run to run, curl_transport's between 44 and 57 us. On one CPU the
// hand-off is a context switch, the rows repeat within a few percent, and the difference
// between two rows is the software's own cost.
// `--url http://HOST:PORT` (anywhere) drains against that server instead of the test server
// (it must answer 200 to POST /api/jobs; scripts/perf-table.sh starts an express one); the
// concurrent and lanes tables, which need the test server's latency setting, are skipped.
// Client CPU: the CPU time of the thread that drives the drain (the raw loops and
// process_queue() run on the calling thread), without the test server's thread.
#include <syncvault/background_sync.hpp>
#include <syncvault/basic_vault.hpp>
#include <syncvault/connectivity/polling_connectivity.hpp>
#include <syncvault/retry/jittered_backoff.hpp>
#include <syncvault/storage/file_journal.hpp>
#include <syncvault/storage/memory_storage.hpp>
#include <syncvault/transport/curl_transport.hpp>

#include "../support/test_server.hpp"

#include <curl/curl.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <functional>
#include <stdexcept>
#include <string>
#include <thread>
#include <string_view>
#include <utility>
#include <vector>

#include <sched.h>
#include <time.h>

namespace {

using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;
using syncvault::test_support::test_server;

const std::string body = R"({"job":12345,"state":"DONE","note":"a typical small JSON body, about 100 bytes long."})";

double thread_cpu_s()
{
    timespec ts{};
    ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return double(ts.tv_sec) + double(ts.tv_nsec) / 1e9;
}

// Wall time, the CPU time of the whole process (client, server thread, worker): the second is
// much less sensitive to other load on a shared machine; and the CPU time of the calling thread
// (the client's, for the drains that run on it).
struct stopwatch {
    steady::time_point wall = steady::now();
    std::clock_t cpu = std::clock();
    double thread_cpu = thread_cpu_s();
};

struct measure {
    std::size_t requests = 0;
    double seconds = 0, cpu_seconds = 0, client_cpu_seconds = 0;
    measure& operator+=(const measure& m)
    {
        requests += m.requests;
        seconds += m.seconds;
        cpu_seconds += m.cpu_seconds;
        client_cpu_seconds += m.client_cpu_seconds;
        return *this;
    }
    double per_s() const { return double(requests) / seconds; }
    double cpu_us() const { return cpu_seconds * 1e6 / double(requests); }
    double client_cpu_us() const { return client_cpu_seconds * 1e6 / double(requests); }
};

measure done(const stopwatch& w, std::size_t n)
{
    const std::chrono::duration<double> took = steady::now() - w.wall;
    return {n, took.count(), double(std::clock() - w.cpu) / CLOCKS_PER_SEC, thread_cpu_s() - w.thread_cpu};
}

// The server the drains go to: the test server, or the one given with --url.
std::string g_url;
std::string base_of(const test_server& server) { return g_url.empty() ? server.base_url() : g_url; }

std::string key_for(const char* run, std::size_t i) { return std::string(run) + "-" + std::to_string(i); }

std::size_t on_body(char* data, std::size_t size, std::size_t n, void* out)
{
    static_cast<std::string*>(out)->append(data, size * n);
    return size * n;
}

// One POST as the vault sends it: same headers, same body.
bool raw_post(CURL* h, const std::string& url, const std::string& key, std::string& response)
{
    const std::string key_header = "Idempotency-Key: " + key;
    curl_slist* headers = curl_slist_append(nullptr, "Content-Type: application/json");
    headers = curl_slist_append(headers, key_header.c_str());
    headers = curl_slist_append(headers, "Expect:");
    curl_easy_setopt(h, CURLOPT_URL, url.c_str());
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body.data());
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, &on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &response);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    response.clear();
    const CURLcode rc = curl_easy_perform(h);
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(headers);
    return rc == CURLE_OK && status == 200;
}

measure raw_reused(test_server& server, std::size_t n, std::size_t first)
{
    const std::string url = base_of(server) + "/api/jobs";
    CURL* h = curl_easy_init();
    std::string response;
    const stopwatch w;
    for (std::size_t i = 0; i < n; ++i)
        if (!raw_post(h, url, key_for("raw", first + i), response)) throw std::runtime_error("raw loop: request failed");
    const auto m = done(w, n);
    curl_easy_cleanup(h);
    return m;
}

measure naive_new_handle(test_server& server, std::size_t n, std::size_t first)
{
    const std::string url = base_of(server) + "/api/jobs";
    std::string response;
    const stopwatch w;
    for (std::size_t i = 0; i < n; ++i) {
        CURL* h = curl_easy_init();
        const bool ok = raw_post(h, url, key_for("naive", first + i), response);
        curl_easy_cleanup(h);
        if (!ok) throw std::runtime_error("naive loop: request failed");
    }
    return done(w, n);
}

// The transport alone, as the vault calls it: what the vault adds is the rest.
measure transport_only(test_server& server, std::size_t n, std::size_t first)
{
    syncvault::vault_config cfg;
    cfg.base_url = base_of(server);
    syncvault::curl_transport t{cfg};
    syncvault::http_request r{syncvault::http_method::post, base_of(server) + "/api/jobs",
                              {{"Content-Type", "application/json"}, {"Idempotency-Key", ""}}, body};
    const stopwatch w;
    for (std::size_t i = 0; i < n; ++i) {
        r.headers[1].value = key_for("transport", first + i);
        auto res = t.send(r);
        if (!res || res->status != 200) throw std::runtime_error("curl_transport loop: request failed");
    }
    return done(w, n);
}

// n POSTs through one transport from `threads` threads at once (1: one at a time), each thread
// taking the next request as soon as its last one is answered.
measure transport_concurrent(test_server& server, syncvault::curl_transport& t, std::size_t n, unsigned threads,
                             std::size_t first)
{
    std::atomic<std::size_t> next{0};
    std::atomic<bool> failed{false};
    const stopwatch w;
    std::vector<std::thread> workers;
    for (unsigned k = 0; k < threads; ++k)
        workers.emplace_back([&] {
            syncvault::http_request r{syncvault::http_method::post, base_of(server) + "/api/jobs",
                                      {{"Content-Type", "application/json"}, {"Idempotency-Key", ""}}, body};
            for (std::size_t i = next.fetch_add(1); i < n; i = next.fetch_add(1)) {
                r.headers[1].value = key_for("concurrent", first + i);
                auto res = t.send(r);
                if (!res || res->status != 200 || res->body != body) failed = true;
            }
        });
    for (auto& worker : workers) worker.join();
    if (failed) throw std::runtime_error("concurrent curl_transport: a request failed");
    return done(w, n);
}

enum class drive { process_queue, background_sync };

// Queues n actions while the vault believes it is offline, then times the drain.
template <class Storage>
measure vault_drain(test_server& server, std::size_t n, std::size_t first, drive how,
                    const std::filesystem::path& dir)
{
    using vault_type = syncvault::basic_vault<syncvault::curl_transport, Storage, syncvault::polling_connectivity,
                                              syncvault::jittered_backoff, std::chrono::system_clock>;
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    syncvault::vault_config cfg;
    cfg.base_url = base_of(server) + "/api";
    cfg.storage_path = dir;
    cfg.max_pending = n + 1;
    cfg.storage_durability = syncvault::durability::none;  // the enqueue phase is not measured
    measure m;
    {
        vault_type v{cfg};
        v.connectivity().report(false);
        syncvault::raw_body b{body, "application/json"};
        for (std::size_t i = 0; i < n; ++i) {
            syncvault::request_options o;
            o.idempotency_key = key_for("vault", first + i);
            if (!v.post("/jobs", b, o).is_queued()) throw std::runtime_error("vault: post was not queued");
        }
        const stopwatch w;
        if (how == drive::process_queue) {
            v.connectivity().report(true);
            if (v.process_queue() != n) throw std::runtime_error("vault: drain incomplete");
        } else {
            syncvault::background_sync sync{v};
            v.connectivity().report(true);  // wakes the worker
            while (v.pending_count() != 0) std::this_thread::sleep_for(200us);
        }
        m = done(w, n);
        if (!v.dead_letters().empty()) throw std::runtime_error("vault: dead letters");
    }
    std::filesystem::remove_all(dir);
    return m;
}

// `lanes` lanes of `per_lane` actions each, queued offline, drained by a background_sync with
// `max_in_flight` workers (SPEC 9.2): at most one transfer per lane, lanes in parallel.
measure vault_lanes_drain(test_server& server, std::size_t lanes, std::size_t per_lane, std::size_t max_in_flight,
                          std::size_t first, const std::filesystem::path& dir)
{
    using vault_type = syncvault::basic_vault<syncvault::curl_transport, syncvault::file_journal,
                                              syncvault::polling_connectivity, syncvault::jittered_backoff,
                                              std::chrono::system_clock>;
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    syncvault::vault_config cfg;
    cfg.base_url = base_of(server) + "/api";
    cfg.storage_path = dir;
    cfg.max_pending = lanes * per_lane + 1;
    cfg.max_in_flight = max_in_flight;
    cfg.storage_durability = syncvault::durability::none;  // the enqueue phase is not measured
    measure m;
    {
        vault_type v{cfg};
        v.connectivity().report(false);
        syncvault::raw_body b{body, "application/json"};
        for (std::size_t i = 0; i < per_lane; ++i)
            for (std::size_t lane = 0; lane < lanes; ++lane) {
                syncvault::request_options o;
                o.idempotency_key = key_for("lanes", first + i * lanes + lane);
                o.lane = "lane-" + std::to_string(lane);
                if (!v.post("/jobs", b, o).is_queued()) throw std::runtime_error("lanes: post was not queued");
            }
        const stopwatch w;
        {
            syncvault::background_sync sync{v};
            v.connectivity().report(true);  // wakes the workers
            while (v.pending_count() != 0) std::this_thread::sleep_for(200us);
        }
        m = done(w, lanes * per_lane);
        if (!v.dead_letters().empty()) throw std::runtime_error("lanes: dead letters");
    }
    std::filesystem::remove_all(dir);
    return m;
}

// One measured variant; `run(k)` sends k requests.
struct variant {
    const char* name;
    std::function<measure(std::size_t)> run;
    measure total{};
};

} // namespace

int main(int argc, char** argv_in)
{
    std::vector<char*> positional;  // argv without --url URL and --one-cpu
    bool one_cpu = false;
    for (int i = 0; i < argc; ++i) {
        if (std::string_view(argv_in[i]) == "--url" && i + 1 < argc)
            g_url = argv_in[++i];
        else if (std::string_view(argv_in[i]) == "--one-cpu")
            one_cpu = true;
        else
            positional.push_back(argv_in[i]);
    }
    argc = int(positional.size());
    char** argv = positional.data();
    const std::size_t n = argc > 1 ? std::stoull(argv[1]) : 10'000;
    const int rounds = std::max(1, argc > 2 ? std::stoi(argv[2]) : 10);
    const std::size_t concurrent_n = argc > 3 ? std::stoull(argv[3]) : 2'000;
    const auto latency = std::chrono::milliseconds(argc > 4 ? std::stoll(argv[4]) : 2);
    const unsigned threads = std::max(1u, argc > 5 ? unsigned(std::stoul(argv[5])) : 8u);
    if (one_cpu) {  // before any thread starts: they inherit it
        cpu_set_t set;
        CPU_ZERO(&set);
        if (::sched_getaffinity(0, sizeof set, &set) != 0) throw std::runtime_error("sched_getaffinity failed");
        int first = 0;
        while (!CPU_ISSET(first, &set)) ++first;
        CPU_ZERO(&set);
        CPU_SET(first, &set);
        if (::sched_setaffinity(0, sizeof set, &set) != 0) throw std::runtime_error("sched_setaffinity failed");
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const auto dir = std::filesystem::temp_directory_path() / "syncvault-network-bench";
    test_server server;
    std::printf("syncvault network benchmark: drain %zu POSTs (%zu-byte JSON body) to %s, %d interleaved rounds%s\n",
                n, body.size(), base_of(server).c_str(), rounds, one_cpu ? ", every thread on one CPU" : "");

    std::size_t sequence = 0;  // idempotency keys stay unique across chunks
    auto keys = [&](std::size_t chunk) { return std::exchange(sequence, sequence + chunk); };
    std::vector<variant> variants{
        {"raw libcurl loop, one reused handle (the limit)", [&](std::size_t c) { return raw_reused(server, c, keys(c)); }, {}},
        {"naive libcurl loop, new handle per request", [&](std::size_t c) { return naive_new_handle(server, c, keys(c)); }, {}},
        {"curl_transport loop (no vault)", [&](std::size_t c) { return transport_only(server, c, keys(c)); }, {}},
        {"vault, file_journal, process_queue()",
         [&](std::size_t c) { return vault_drain<syncvault::file_journal>(server, c, keys(c), drive::process_queue, dir); }, {}},
        {"vault, memory_storage, process_queue()",
         [&](std::size_t c) { return vault_drain<syncvault::memory_storage>(server, c, keys(c), drive::process_queue, dir); }, {}},
        {"vault, file_journal, background_sync",
         [&](std::size_t c) { return vault_drain<syncvault::file_journal>(server, c, keys(c), drive::background_sync, dir); }, {}},
    };
    const std::size_t chunk = std::max<std::size_t>(1, n / std::size_t(rounds));
    // Warm-up, not counted: connections, caches, and a JIT-compiled server (node) reach their
    // steady state before the first measured chunk.
    for (auto& v : variants) v.run(std::min<std::size_t>(chunk, 1000));
    server.reset_records();
    for (int round = 0; round < rounds; ++round) {
        for (std::size_t i = 0; i < variants.size(); ++i) {
            auto& v = variants[(i + std::size_t(round)) % variants.size()];  // rotate the order
            v.total += v.run(chunk);
        }
        server.reset_records();
    }
    const double raw = variants[0].total.per_s(), naive = variants[1].total.per_s(),
                 transport = variants[2].total.per_s(), journal = variants[3].total.per_s(),
                 memory = variants[4].total.per_s(), background = variants[5].total.per_s();
    const double raw_cpu = variants[0].total.cpu_us(), journal_cpu = variants[3].total.cpu_us();
    const double raw_client = variants[0].total.client_cpu_us(), journal_client = variants[3].total.client_cpu_us(),
                 memory_client = variants[4].total.client_cpu_us();
    server.reset_records();
    const auto journal_full = vault_drain<syncvault::file_journal>(server, n, keys(n), drive::process_queue, dir);
    server.reset_records();
    const auto memory_full = vault_drain<syncvault::memory_storage>(server, n, keys(n), drive::process_queue, dir);

    std::printf("\n%-52s %12s %8s %12s %12s\n", "drain", "requests", "vs raw", "CPU/request", "client CPU");
    for (const auto& v : variants) {
        std::printf("%-52s %10.0f/s %7.2fx %9.1f us", v.name, v.total.per_s(), v.total.per_s() / raw, v.total.cpu_us());
        if (&v == &variants[5])
            std::printf(" %12s\n", "(worker)");  // background_sync drains on its own thread
        else
            std::printf(" %9.1f us\n", v.total.client_cpu_us());
    }
    std::printf("\none drain of %zu queued actions:\n", n);
    std::printf("%-52s %10.0f/s %7.2fx %9.1f us\n", "vault, file_journal, process_queue()", journal_full.per_s(),
                journal_full.per_s() / raw, journal_full.cpu_us());
    std::printf("%-52s %10.0f/s %7.2fx %9.1f us\n", "vault, memory_storage, process_queue()", memory_full.per_s(),
                memory_full.per_s() / raw, memory_full.cpu_us());
    std::printf("\n%-52s %7.2fx (goal %.2fx)\n", "vault (file_journal) vs raw reused loop, throughput",
                journal / raw, 0.9);
    std::printf("%-52s %+7.1f us per request\n", "vault (file_journal) CPU cost over the raw loop",
                journal_cpu - raw_cpu);
    std::printf("%-52s %+7.1f us per request (goal <= 5)\n", "  of which on the client thread", journal_client - raw_client);

    std::printf("{\"bench\":\"network\",\"n\":%zu,\"raw_reused_per_s\":%.0f,\"naive_new_handle_per_s\":%.0f,\"curl_transport_per_s\":%.0f,"
                "\"vault_file_journal_per_s\":%.0f,\"vault_memory_per_s\":%.0f,\"vault_background_sync_per_s\":%.0f,"
                "\"ratio_vs_raw\":%.3f,\"goal\":0.9,\"raw_cpu_us\":%.1f,\"vault_cpu_us\":%.1f,\"rounds\":%d,"
                "\"full_queue_file_journal_per_s\":%.0f,\"full_queue_memory_per_s\":%.0f,"
                "\"raw_client_cpu_us\":%.2f,\"vault_client_cpu_us\":%.2f,\"vault_memory_client_cpu_us\":%.2f,"
                "\"client_cpu_over_raw_us\":%.2f,\"curl_transport_client_cpu_us\":%.2f,\"server\":\"%s\",\"one_cpu\":%s}\n",
                n, raw, naive, transport, journal, memory, background, journal / raw, raw_cpu, journal_cpu, rounds,
                journal_full.per_s(), memory_full.per_s(), raw_client, journal_client, memory_client,
                journal_client - raw_client, variants[2].total.client_cpu_us(), g_url.empty() ? "test_server" : "url",
                one_cpu ? "true" : "false");

    if (concurrent_n == 0 || !g_url.empty()) return 0;
    if (!syncvault::concurrent_transport<syncvault::curl_transport>) {
        std::printf("\ncurl_transport is not thread-safe in this build: concurrent transfers skipped\n");
        return 0;
    }
    // Concurrent transfers through one transport against a server with latency. Each mode
    // keeps one transport for all its rounds (connections stay open, as in an app).
    server.set_latency(latency);
    syncvault::vault_config tcfg;
    tcfg.base_url = base_of(server);
    syncvault::curl_transport one_at_a_time{tcfg}, shared{tcfg};
    measure sequential_total, concurrent_total;
    const std::size_t cchunk = std::max<std::size_t>(1, concurrent_n / std::size_t(rounds));
    server.reset_records();
    for (int round = 0; round < rounds; ++round) {
        if (round % 2 == 0) {
            sequential_total += transport_concurrent(server, one_at_a_time, cchunk, 1, keys(cchunk));
            concurrent_total += transport_concurrent(server, shared, cchunk, threads, keys(cchunk));
        } else {
            concurrent_total += transport_concurrent(server, shared, cchunk, threads, keys(cchunk));
            sequential_total += transport_concurrent(server, one_at_a_time, cchunk, 1, keys(cchunk));
        }
    }
    const auto connections = server.connection_count();  // both modes, every round
    server.set_latency(0ms);
    std::printf("\n%zu POSTs through one curl_transport, server latency %lld ms per response:\n",
                sequential_total.requests, static_cast<long long>(latency.count()));
    std::printf("%-52s %10.0f/s %9.1f us CPU\n", "one at a time (1 thread)", sequential_total.per_s(),
                sequential_total.cpu_us());
    char label[64];
    std::snprintf(label, sizeof label, "%u threads at once, one shared transport", threads);
    std::printf("%-52s %10.0f/s %9.1f us CPU\n", label, concurrent_total.per_s(), concurrent_total.cpu_us());
    std::printf("%-52s %7.2fx (ideal %ux); connections opened: %zu\n", "speed-up",
                concurrent_total.per_s() / sequential_total.per_s(), threads, connections);
    std::printf("{\"bench\":\"network_concurrent\",\"n\":%zu,\"latency_ms\":%lld,\"threads\":%u,"
                "\"sequential_per_s\":%.0f,\"concurrent_per_s\":%.0f,\"speedup\":%.2f,\"connections\":%zu}\n",
                sequential_total.requests, static_cast<long long>(latency.count()), threads, sequential_total.per_s(),
                concurrent_total.per_s(), concurrent_total.per_s() / sequential_total.per_s(), connections);

    // Lanes (SPEC 9.2): the vault drains `threads` lanes with max_in_flight 1 and `threads`.
    server.set_latency(latency);
    const std::size_t lanes = threads, per_lane = std::max<std::size_t>(1, cchunk / lanes);
    measure one_total, many_total;
    for (int round = 0; round < rounds; ++round) {
        const std::size_t k = lanes * per_lane;
        if (round % 2 == 0) {
            one_total += vault_lanes_drain(server, lanes, per_lane, 1, keys(k), dir);
            many_total += vault_lanes_drain(server, lanes, per_lane, threads, keys(k), dir);
        } else {
            many_total += vault_lanes_drain(server, lanes, per_lane, threads, keys(k), dir);
            one_total += vault_lanes_drain(server, lanes, per_lane, 1, keys(k), dir);
        }
        server.reset_records();
    }
    server.set_latency(0ms);
    std::printf("\nvault drain of %zu lanes x %zu actions (file_journal, background_sync), server latency %lld ms:\n",
                lanes, per_lane * std::size_t(rounds), static_cast<long long>(latency.count()));
    std::printf("%-52s %10.0f/s %9.1f us CPU\n", "max_in_flight = 1", one_total.per_s(), one_total.cpu_us());
    std::snprintf(label, sizeof label, "max_in_flight = %u", threads);
    std::printf("%-52s %10.0f/s %9.1f us CPU\n", label, many_total.per_s(), many_total.cpu_us());
    std::printf("%-52s %7.2fx (goal 6x with 8)\n", "speed-up", many_total.per_s() / one_total.per_s());
    std::printf("{\"bench\":\"network_lanes\",\"lanes\":%zu,\"n\":%zu,\"latency_ms\":%lld,\"max_in_flight\":%u,"
                "\"one_per_s\":%.0f,\"many_per_s\":%.0f,\"speedup\":%.2f}\n",
                lanes, one_total.requests, static_cast<long long>(latency.count()), threads, one_total.per_s(),
                many_total.per_s(), many_total.per_s() / one_total.per_s());
    return 0;
}
