// polling_connectivity (Boost.Asio on Winsock) and background_sync (std::thread on winpthreads)
// run under Wine: a TCP probe of a loopback listener brings a vault back online, and the worker
// thread drains the queue. The transport is the fake: curl_transport is tested on Linux only.

#include <syncvault/background_sync.hpp>
#include <syncvault/basic_vault.hpp>
#include <syncvault/connectivity/polling_connectivity.hpp>
#include <syncvault/retry/jittered_backoff.hpp>
#include <syncvault/storage/file_journal.hpp>
#include <syncvault/testing/fake_transport.hpp>

#include "storage/temp_dir.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <catch2/catch.hpp>

#include <chrono>
#include <string>
#include <thread>

using namespace std::chrono_literals;

namespace {

/** A socket listening on 127.0.0.1: the kernel completes connects without an accept(). */
struct listener {
    boost::asio::io_context io;
    boost::asio::ip::tcp::acceptor acceptor{io, {boost::asio::ip::address_v4::loopback(), 0}};
    unsigned short port() const { return acceptor.local_endpoint().port(); }
};

syncvault::vault_config config_for(unsigned short port)
{
    syncvault::vault_config cfg;
    cfg.base_url = "http://127.0.0.1:" + std::to_string(port) + "/api";
    cfg.probe_interval = 50ms;
    cfg.probe_max_interval = 200ms;
    cfg.probe_timeout = 1s;
    cfg.max_retries = 50;
    cfg.storage_durability = syncvault::durability::none;
    return cfg;
}

template <class Condition>
bool eventually(Condition done, std::chrono::milliseconds timeout = 20s)
{
    const auto until = std::chrono::steady_clock::now() + timeout;
    while (!done()) {
        if (std::chrono::steady_clock::now() > until) return false;
        std::this_thread::sleep_for(10ms);
    }
    return true;
}

}  // namespace

TEST_CASE("polling_connectivity probes with Winsock: a closed port stays offline, a listener brings it back",
          "[windows][connectivity]")
{
    unsigned short closed_port = 0;
    {
        listener l;
        closed_port = l.port();
    }  // closed: connects are refused
    syncvault::polling_connectivity closed{config_for(closed_port)};
    closed.report(false);
    auto next = closed.tick(std::chrono::system_clock::now());
    REQUIRE(next);
    next = closed.tick(*next);  // probes, is refused, backs off
    CHECK(!closed.is_online());
    REQUIRE(next);

    listener open;
    syncvault::polling_connectivity net{config_for(open.port())};
    CHECK(net.is_online());  // starts online
    bool changed_to = true;
    int changes = 0;
    net.set_change_handler([&](bool online) {
        changed_to = online;
        ++changes;
    });
    net.report(false);
    CHECK(!net.is_online());
    CHECK(!changed_to);
    next = net.tick(std::chrono::system_clock::now());
    REQUIRE(next);
    CHECK(!net.tick(*next));  // the probe connects: online, nothing more to schedule
    CHECK(net.is_online());
    CHECK(changed_to);
    CHECK(changes == 2);
}

TEST_CASE("background_sync drains a vault on Windows once a probe finds the network back",
          "[windows][connectivity][thread]")
{
    using win_vault =
        syncvault::basic_vault<syncvault::testing::fake_transport, syncvault::file_journal,
                               syncvault::polling_connectivity, syncvault::jittered_backoff, std::chrono::system_clock>;
    listener l;
    syncvault_tests::temp_dir dir("win-sync");
    auto cfg = config_for(l.port());
    cfg.storage_path = dir.path();
    syncvault::testing::fake_transport net;
    net.fail(syncvault::errc::connection_failed);  // the first attempt: the network is down
    net.respond_by_default(200);
    win_vault v(cfg, net, syncvault::file_journal(cfg), syncvault::polling_connectivity(cfg),
                syncvault::jittered_backoff(
                    {.base = 50ms, .cap = 1s, .kind = syncvault::jittered_backoff::jitter::none, .seed = 1}));
    syncvault::background_sync sync{v};
    for (int i = 0; i < 3; ++i) {
        auto r = v.post("/jobs", syncvault::raw_body{"job " + std::to_string(i), "text/plain"});
        REQUIRE((r.is_queued() || r.is_sent()));
    }
    REQUIRE(eventually([&] { return v.pending_count() == 0; }));
    CHECK(v.connectivity().is_online());
    const auto sent = net.requests();
    REQUIRE(sent.size() == 4);  // one failure, then the three in order
    CHECK(sent[1].body == "job 0");
    CHECK(sent[3].body == "job 2");
}
