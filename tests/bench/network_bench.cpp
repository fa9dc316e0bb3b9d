// Network drain benchmark: how fast a vault empties a queue of N actions against the loopback
// test server, next to a raw libcurl loop that reuses its handle (the limit for a sequential
// FIFO drain) and a naive loop that makes a new handle, and so a new connection, per request.
//
//   syncvault_network_bench [N=10000] [rounds=3]
//
// Prints a table and one JSON line. Each measure is the median of its rounds.
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
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;
using syncvault::test_support::test_server;

const std::string body = R"({"job":12345,"state":"DONE","note":"a typical small JSON body, about 100 bytes long."})";

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

double raw_reused(test_server& server, std::size_t n)
{
    const std::string url = server.base_url() + "/api/jobs";
    CURL* h = curl_easy_init();
    std::string response;
    const auto start = steady::now();
    for (std::size_t i = 0; i < n; ++i)
        if (!raw_post(h, url, key_for("raw", i), response)) throw std::runtime_error("raw loop: request failed");
    const std::chrono::duration<double> took = steady::now() - start;
    curl_easy_cleanup(h);
    return double(n) / took.count();
}

double naive_new_handle(test_server& server, std::size_t n)
{
    const std::string url = server.base_url() + "/api/jobs";
    std::string response;
    const auto start = steady::now();
    for (std::size_t i = 0; i < n; ++i) {
        CURL* h = curl_easy_init();
        const bool ok = raw_post(h, url, key_for("naive", i), response);
        curl_easy_cleanup(h);
        if (!ok) throw std::runtime_error("naive loop: request failed");
    }
    const std::chrono::duration<double> took = steady::now() - start;
    return double(n) / took.count();
}

// The transport alone, as the vault calls it: what the vault adds is the rest.
double transport_only(test_server& server, std::size_t n)
{
    syncvault::vault_config cfg;
    cfg.base_url = server.base_url();
    syncvault::curl_transport t{cfg};
    syncvault::http_request r{syncvault::http_method::post, server.base_url() + "/api/jobs",
                              {{"Content-Type", "application/json"}, {"Idempotency-Key", ""}}, body};
    const auto start = steady::now();
    for (std::size_t i = 0; i < n; ++i) {
        r.headers[1].value = key_for("transport", i);
        auto res = t.send(r);
        if (!res || res->status != 200) throw std::runtime_error("curl_transport loop: request failed");
    }
    const std::chrono::duration<double> took = steady::now() - start;
    return double(n) / took.count();
}

enum class drive { process_queue, background_sync };

// Queues n actions while the vault believes it is offline, then times the drain.
template <class Storage>
double vault_drain(test_server& server, std::size_t n, drive how, const std::filesystem::path& dir)
{
    using vault_type = syncvault::basic_vault<syncvault::curl_transport, Storage, syncvault::polling_connectivity,
                                              syncvault::jittered_backoff, std::chrono::system_clock>;
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    syncvault::vault_config cfg;
    cfg.base_url = server.base_url() + "/api";
    cfg.storage_path = dir;
    cfg.max_pending = n + 1;
    cfg.storage_durability = syncvault::durability::none;  // the enqueue phase is not measured
    double rate = 0;
    {
        vault_type v{cfg};
        v.connectivity().report(false);
        syncvault::raw_body b{body, "application/json"};
        for (std::size_t i = 0; i < n; ++i) {
            syncvault::request_options o;
            o.idempotency_key = key_for("vault", i);
            if (!v.post("/jobs", b, o).is_queued()) throw std::runtime_error("vault: post was not queued");
        }
        const auto start = steady::now();
        if (how == drive::process_queue) {
            v.connectivity().report(true);
            if (v.process_queue() != n) throw std::runtime_error("vault: drain incomplete");
        } else {
            syncvault::background_sync sync{v};
            v.connectivity().report(true);  // wakes the worker
            while (v.pending_count() != 0) std::this_thread::sleep_for(200us);
        }
        const std::chrono::duration<double> took = steady::now() - start;
        rate = double(n) / took.count();
        if (!v.dead_letters().empty()) throw std::runtime_error("vault: dead letters");
    }
    std::filesystem::remove_all(dir);
    return rate;
}

// The machine may be shared: run the variants in interleaved rounds, so that a burst of
// outside load hits them alike, and keep each one's median.
struct variant {
    const char* name;
    std::function<double()> run;
    std::vector<double> rates;
    double median() const
    {
        auto r = rates;
        std::sort(r.begin(), r.end());
        return r[r.size() / 2];
    }
};

} // namespace

int main(int argc, char** argv)
{
    const std::size_t n = argc > 1 ? std::stoull(argv[1]) : 10'000;
    const int rounds = argc > 2 ? std::stoi(argv[2]) : 3;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const auto dir = std::filesystem::temp_directory_path() / "syncvault-network-bench";
    test_server server;
    std::printf("syncvault network benchmark: drain %zu POSTs (%zu-byte JSON body) to %s, median of %d interleaved rounds\n",
                n, body.size(), server.base_url().c_str(), rounds);

    std::vector<variant> variants{
        {"raw libcurl loop, one reused handle (the limit)", [&] { return raw_reused(server, n); }, {}},
        {"naive libcurl loop, new handle per request", [&] { return naive_new_handle(server, n); }, {}},
        {"curl_transport loop (no vault)", [&] { return transport_only(server, n); }, {}},
        {"vault, file_journal, process_queue()",
         [&] { return vault_drain<syncvault::file_journal>(server, n, drive::process_queue, dir); }, {}},
        {"vault, memory_storage, process_queue()",
         [&] { return vault_drain<syncvault::memory_storage>(server, n, drive::process_queue, dir); }, {}},
        {"vault, file_journal, background_sync",
         [&] { return vault_drain<syncvault::file_journal>(server, n, drive::background_sync, dir); }, {}},
    };
    for (int round = 0; round < rounds; ++round)
        for (std::size_t i = 0; i < variants.size(); ++i) {
            auto& v = variants[(i + std::size_t(round)) % variants.size()];  // rotate the order
            server.reset_records();
            v.rates.push_back(v.run());
        }
    const double raw = variants[0].median(), naive = variants[1].median(), transport = variants[2].median(),
                 journal = variants[3].median(), memory = variants[4].median(), background = variants[5].median();

    auto row = [&](const char* name, double rate) {
        std::printf("%-52s %10.0f/s %7.2fx\n", name, rate, rate / raw);
    };
    std::printf("\n%-52s %12s %8s\n", "drain", "requests", "vs raw");
    for (const auto& v : variants) row(v.name, v.median());
    std::printf("\n%-52s %7.2fx %7.2fx\n", "goal: vault (file_journal) vs raw reused loop", journal / raw, 0.9);

    std::printf("{\"bench\":\"network\",\"n\":%zu,\"raw_reused_per_s\":%.0f,\"naive_new_handle_per_s\":%.0f,\"curl_transport_per_s\":%.0f,"
                "\"vault_file_journal_per_s\":%.0f,\"vault_memory_per_s\":%.0f,\"vault_background_sync_per_s\":%.0f,"
                "\"ratio_vs_raw\":%.3f,\"goal\":0.9,\"rounds\":%d}\n",
                n, raw, naive, transport, journal, memory, background, journal / raw, rounds);
    return 0;
}
