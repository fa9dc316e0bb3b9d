// Unit-testing sync logic with a simulated clock: one day of traffic, outages and retries, run in
// milliseconds. The vault is built from test doubles: `fake_clock` (time moves when the test
// says), `fake_transport` (the server's answers), `manual_connectivity` (airplane mode). The
// test jumps from one interesting moment to the next: a post, a change of weather, or the time
// `poll()` says work is due, exactly as `background_sync` would, minus the waiting.

#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>

#include <syncvault.hpp>
#include <syncvault/testing/fake_clock.hpp>
#include <syncvault/testing/fake_transport.hpp>

#include <algorithm>
#include <chrono>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using syncvault::testing::fake_clock;
using syncvault::testing::fake_transport;

using test_vault = syncvault::basic_vault<fake_transport, syncvault::memory_storage, syncvault::manual_connectivity,
                                          syncvault::jittered_backoff, fake_clock>;

namespace {

// The day's weather, by time since midnight.
enum class weather { fine, airplane_mode, server_down, overloaded };

weather weather_at(std::chrono::minutes t)
{
    if (t >= 2h && t < 3h + 30min) return weather::airplane_mode;  // the phone says offline
    if (t >= 9h && t < 9h + 40min) return weather::server_down;    // connections refused
    if (t >= 17h && t < 17h + 20min) return weather::overloaded;   // 503, Retry-After: 300
    return weather::fine;
}

struct sent_request {
    std::chrono::system_clock::time_point at;
    std::string key;
    weather when;
};

} // namespace

TEST_CASE("a simulated day of outages and retries loses nothing and keeps order", "[example][day]")
{
    fake_clock clock;
    fake_transport server;
    // An outage of 40 minutes takes about 25 attempts at a 5-minute cap: allow plenty.
    syncvault::vault_config cfg{.base_url = "https://api.example.com", .max_retries = 100};
    test_vault v{cfg, server, syncvault::memory_storage{}, syncvault::manual_connectivity{},
                 syncvault::jittered_backoff({.base = 1s, .cap = 5min, .seed = 42}), clock};

    const auto midnight = clock.now();
    auto since_midnight = [&] { return std::chrono::duration_cast<std::chrono::minutes>(clock.now() - midnight); };

    // What the server saw, and in which weather (the hook runs inside every send).
    std::vector<sent_request> log;
    server.on_send([&](const syncvault::http_request& r) {
        const auto key = syncvault::find_header(r.headers, "Idempotency-Key");
        log.push_back({clock.now(), std::string(key.value_or("")), weather_at(since_midnight())});
    });
    auto apply_weather = [&] {
        const auto w = weather_at(since_midnight());
        v.connectivity().set_online(w != weather::airplane_mode);
        if (w == weather::server_down) server.fail_by_default(make_error_code(syncvault::errc::connection_failed));
        else if (w == weather::overloaded) server.respond_by_default(503, {{"Retry-After", "300"}});
        else server.respond_by_default(201);
    };

    // Every 10 minutes, from 00:05, the app records a reading: 144 posts over the day.
    std::vector<std::string> posted;
    auto next_post = midnight + 5min;
    syncvault::next_wake wake;
    int steps = 0;
    const auto end = midnight + 24h;
    const std::vector<std::chrono::minutes> boundaries{2h, 3h + 30min, 9h, 9h + 40min, 17h, 17h + 20min};
    while (clock.now() < end) {
        REQUIRE(++steps < 100'000);  // a scheduling bug must fail, not spin
        // Jump to the next moment something happens.
        auto next = std::min(next_post, end);
        if (wake) next = std::min(next, std::max(*wake, clock.now()));
        for (auto b : boundaries)
            if (midnight + b > clock.now()) next = std::min(next, midnight + b);
        clock.set(next);
        apply_weather();
        if (clock.now() == next_post) {
            const auto key = "reading-" + std::to_string(posted.size());
            auto r = v.post("/readings", boost::json::object{{"n", posted.size()}}, {.idempotency_key = key});
            REQUIRE((r.is_sent() || r.is_queued()));
            posted.push_back(key);
            next_post += 10min;
        }
        wake = v.poll();
    }

    // Nothing lost, nothing dead, nothing left over.
    CHECK(posted.size() == 144);
    CHECK(v.pending_count() == 0);
    CHECK(v.dead_letters().empty());
    CHECK(v.status() == syncvault::sync_status::synced);

    // Strict FIFO: the first request of each key comes in posting order.
    std::vector<std::string> first_seen;
    for (const auto& s : log)
        if (std::find(first_seen.begin(), first_seen.end(), s.key) == first_seen.end()) first_seen.push_back(s.key);
    CHECK(first_seen == posted);

    // Airplane mode: not one request went out.
    CHECK(std::none_of(log.begin(), log.end(), [](const auto& s) { return s.when == weather::airplane_mode; }));

    // Overload: every retry waited the 300 s the server asked for.
    for (std::size_t i = 1; i < log.size(); ++i)
        if (log[i - 1].when == weather::overloaded) CHECK(log[i].at - log[i - 1].at >= 300s);

    // The outage cost retries, spaced by backoff: dozens of attempts in 40 minutes, not thousands.
    const auto during_outage =
        std::count_if(log.begin(), log.end(), [](const auto& s) { return s.when == weather::server_down; });
    CHECK(during_outage > 1);
    CHECK(during_outage < 60);
}
