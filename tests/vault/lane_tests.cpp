// SPEC 9.2: ordering lanes and concurrent sends.

#include "vault/vault_support.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <condition_variable>
#include <map>
#include <set>
#include <thread>

using namespace sv_test;
using syncvault::request_options;
using syncvault::sync_status;

namespace {

request_options in(std::string lane)
{
    request_options o;
    o.lane = std::move(lane);
    return o;
}

std::vector<std::string> paths(const fake_transport& net)
{
    std::vector<std::string> out;
    for (const auto& r : net.requests()) out.push_back(r.url.substr(std::string("http://api.test/v1").size()));
    return out;
}

/** fake_transport declared thread-safe (its state is behind a mutex), with a hook to hold transfers. */
struct concurrent_fake {
    static constexpr bool thread_safe = true;
    fake_transport inner;
    syncvault::result<syncvault::http_response> send(const syncvault::http_request& r) { return inner.send(r); }
};
static_assert(syncvault::concurrent_transport<concurrent_fake>);

template <class Transport>
using lane_vault = syncvault::basic_vault<Transport, syncvault::memory_storage, syncvault::manual_connectivity,
                                          syncvault::jittered_backoff, fake_clock>;

} // namespace

TEST_CASE("a head that backs off blocks only its own lane", "[vault][lanes]")
{
    rig<> r;
    r.net.respond(503);
    auto v = r.make();
    CHECK(v->post("/comments/1", nullptr, in("comments")).is_queued());
    CHECK(v->post("/comments/2", nullptr, in("comments")).is_queued());  // behind its lane's head
    CHECK(v->post("/payments/1", nullptr, in("payments")).is_sent());    // its lane is empty
    CHECK(v->post("/default", nullptr).is_sent());
    CHECK(paths(r.net) == std::vector<std::string>{"/comments/1", "/payments/1", "/default"});
    r.clock.advance(1s);
    v->poll();
    CHECK(paths(r.net).back() == "/comments/2");
    CHECK(v->pending_count() == 0);
}

TEST_CASE("lanes keep their own FIFO order, and pending_actions lists all lanes in arrival order", "[vault][lanes]")
{
    rig<> r;
    auto v = r.make(false);
    v->post("/a1", nullptr, in("a"));
    v->post("/b1", nullptr, in("b"));
    v->post("/a2", nullptr, in("a"));
    v->post("/b2", nullptr, in("b"));
    auto pending = v->pending_actions();
    REQUIRE(pending.size() == 4);
    CHECK(pending[0].path == "/a1");
    CHECK(pending[1].lane == "b");
    CHECK(pending[3].path == "/b2");
    v->connectivity().set_online(true);
    CHECK(v->process_queue() == 4);
    auto sent = paths(r.net);
    auto before = [&](std::string x, std::string y) {
        return std::find(sent.begin(), sent.end(), x) < std::find(sent.begin(), sent.end(), y);
    };
    CHECK(before("/a1", "/a2"));
    CHECK(before("/b1", "/b2"));
}

TEST_CASE("process_queue stops a lane at its first retryable failure and goes on with the others", "[vault][lanes]")
{
    rig<> r;
    auto v = r.make(false);
    v->post("/a1", nullptr, in("a"));
    v->post("/a2", nullptr, in("a"));
    v->post("/b1", nullptr, in("b"));
    r.net.respond(500);  // a1 fails
    v->connectivity().set_online(true);
    CHECK(v->process_queue() == 1);
    CHECK(paths(r.net) == std::vector<std::string>{"/a1", "/b1"});
    CHECK(v->pending_count() == 2);
}

TEST_CASE("a dead letter leaves only its lane, and requeue returns it to its lane's tail", "[vault][lanes]")
{
    rig<> r;
    auto v = r.make(false);
    auto bad = v->post("/a1", nullptr, in("a"));
    v->post("/a2", nullptr, in("a"));
    v->post("/b1", nullptr, in("b"));
    r.net.respond(422);
    v->connectivity().set_online(true);
    CHECK(v->process_queue() == 2);
    REQUIRE(v->dead_letters().size() == 1);
    CHECK(v->dead_letters()[0].lane == "a");
    v->connectivity().set_online(false);
    v->post("/a3", nullptr, in("a"));
    REQUIRE(v->requeue(bad.action_id()));
    auto pending = v->pending_actions();
    REQUIRE(pending.size() == 2);
    CHECK(pending[0].path == "/a3");
    CHECK(pending[1].path == "/a1");
    CHECK(pending[1].lane == "a");
}

TEST_CASE("a bad lane name is refused and nothing is queued", "[vault][lanes][limits]")
{
    rig<> r;
    auto v = r.make(false);
    CHECK(v->post("/a", nullptr, in("bad\nlane")).error() == syncvault::errc::invalid_request);
    CHECK(v->post("/a", nullptr, in(std::string(300, 'x'))).error() == syncvault::errc::invalid_request);
    CHECK(v->pending_count() == 0);
    CHECK(v->post("/a", nullptr, in("zürich")).is_queued());  // any text but control characters
}

TEST_CASE("lanes survive a restart", "[vault][lanes][restart]")
{
    rig<> r;
    auto v = r.make(false);
    v->post("/a", nullptr, in("photos"));
    v.reset();
    v = r.make(false);
    REQUIRE(v->pending_count() == 1);
    CHECK(v->pending_actions()[0].lane == "photos");
}

TEST_CASE("max_in_flight: concurrent transfers on a thread-safe transport, one per lane", "[vault][lanes][thread]")
{
    concurrent_fake t;
    fake_clock clock;
    auto cfg = test_config();
    cfg.max_in_flight = 4;
    lane_vault<concurrent_fake> v{cfg, t, syncvault::memory_storage{}, syncvault::manual_connectivity{false},
                                  exact_backoff(), clock};
    for (int lane = 0; lane < 4; ++lane)
        for (int i = 0; i < 3; ++i)
            v.post("/l" + std::to_string(lane) + "/" + std::to_string(i), nullptr, in("lane" + std::to_string(lane)));

    std::mutex m;
    std::condition_variable cv;
    std::set<std::string> lanes_in_flight;
    std::size_t in_flight = 0, most = 0;
    bool same_lane_twice = false;
    t.inner.on_send([&](const syncvault::http_request& req) {
        const auto lane = req.url.substr(std::string("http://api.test/v1/").size(), 2);
        std::unique_lock lock(m);
        same_lane_twice |= !lanes_in_flight.insert(lane).second;
        most = std::max(most, ++in_flight);
        cv.notify_all();
        // Hold the first transfers until four run at once (bounded, so a bug fails, not hangs).
        cv.wait_for(lock, std::chrono::seconds(5), [&] { return most >= 4; });
        lanes_in_flight.erase(lane);
        --in_flight;
    });
    v.connectivity().set_online(true);
    std::vector<std::thread> drains;
    std::atomic<std::size_t> successes{0};
    for (int i = 0; i < 4; ++i) drains.emplace_back([&] { successes += v.process_queue(); });
    for (auto& d : drains) d.join();
    successes += v.process_queue();  // whatever a drain that found no free slot left
    CHECK(most == 4);
    CHECK_FALSE(same_lane_twice);
    CHECK(successes == 12);
    CHECK(v.pending_count() == 0);
    CHECK(v.status() == sync_status::synced);
    auto sent = paths(t.inner);
    for (int lane = 0; lane < 4; ++lane) {  // per-lane order held
        std::vector<std::string> mine;
        for (auto& p : sent)
            if (p.starts_with("/l" + std::to_string(lane))) mine.push_back(p);
        CHECK(mine == std::vector<std::string>{"/l" + std::to_string(lane) + "/0", "/l" + std::to_string(lane) + "/1",
                                               "/l" + std::to_string(lane) + "/2"});
    }
}

TEST_CASE("max_in_flight without a thread-safe transport never sends concurrently", "[vault][lanes][thread]")
{
    // fake_transport itself is thread-safe: this wrapper does not say so, as a user's own
    // transport would not.
    struct serial_fake {
        fake_transport inner;
        syncvault::result<syncvault::http_response> send(const syncvault::http_request& r) { return inner.send(r); }
    };
    static_assert(!syncvault::concurrent_transport<serial_fake>);
    fake_clock clock;
    serial_fake t;
    syncvault::vault_config cfg = test_config();
    cfg.max_in_flight = 4;
    lane_vault<serial_fake> v{cfg, t, syncvault::memory_storage{}, syncvault::manual_connectivity{false},
                              exact_backoff(), clock};
    for (int i = 0; i < 8; ++i) v.post("/x" + std::to_string(i), nullptr, in("lane" + std::to_string(i % 4)));
    v.connectivity().set_online(true);
    std::vector<std::thread> drains;
    for (int i = 0; i < 4; ++i) drains.emplace_back([&] { v.process_queue(); });
    for (auto& d : drains) d.join();
    v.process_queue();
    CHECK(v.pending_count() == 0);
    CHECK(t.inner.request_count() == 8);
    CHECK(t.inner.max_concurrent_sends() == 1);
}

TEST_CASE("background_sync runs max_in_flight workers", "[vault][lanes][thread]")
{
    rig<> r;
    r.cfg.max_in_flight = 3;
    auto v = r.make();
    syncvault::background_sync sync{*v};
    CHECK(sync.workers() == 3);
}

TEST_CASE("reconnect_jitter: the first drain after the network returns waits at most the jitter", "[vault][lanes]")
{
    rig<> r;
    r.cfg.reconnect_jitter = 10s;
    auto v = r.make(false);
    v->post("/a", nullptr);
    v->poll();  // seen offline
    v->connectivity().set_online(true);
    const auto back = r.clock.now();
    auto wake = v->poll();
    if (r.net.request_count() == 0) {  // a jitter above zero was drawn
        REQUIRE(wake);
        CHECK(*wake > back);
        CHECK(*wake <= back + 10s);
        r.clock.set(*wake);
        v->poll();
    }
    CHECK(r.net.request_count() == 1);
    CHECK(v->pending_count() == 0);
}
