// A whole vault on the real network: curl_transport, polling_connectivity, file_journal and
// background_sync against the loopback server (tests/support/test_server.hpp).
#include <syncvault/background_sync.hpp>
#include <syncvault/basic_vault.hpp>
#include <syncvault/response_ref.hpp>
#include <syncvault/connectivity/polling_connectivity.hpp>
#include <syncvault/retry/jittered_backoff.hpp>
#include <syncvault/storage/file_journal.hpp>
#include <syncvault/transport/curl_transport.hpp>

#include "support/test_server.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <future>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using syncvault::test_support::step;
using syncvault::test_support::test_server;

namespace {

using net_vault = syncvault::basic_vault<syncvault::curl_transport, syncvault::file_journal,
                                         syncvault::polling_connectivity, syncvault::jittered_backoff,
                                         std::chrono::system_clock>;
using steady = std::chrono::steady_clock;

/** A fresh journal directory, removed at the end of the test. */
struct temp_dir {
    std::filesystem::path path = std::filesystem::temp_directory_path() /
                                 ("syncvault-net-" + std::to_string(steady::now().time_since_epoch().count()));
    temp_dir() { std::filesystem::create_directories(path); }
    ~temp_dir() { std::filesystem::remove_all(path); }
};

syncvault::vault_config config_for(const test_server& server, const temp_dir& dir)
{
    syncvault::vault_config cfg;
    cfg.base_url = server.base_url() + "/api";
    cfg.storage_path = dir.path;
    cfg.max_retries = 50;  // outages in these tests must not dead-letter anything
    cfg.connect_timeout = 2s;
    cfg.receive_timeout = 5s;
    cfg.probe_interval = 50ms;
    cfg.probe_max_interval = 200ms;
    cfg.probe_timeout = 1s;
    cfg.storage_durability = syncvault::durability::none;
    return cfg;
}

/** Quick, predictable retries (no jitter), capped at 2 s so a Retry-After of 1 s is honoured. */
syncvault::jittered_backoff quick_backoff()
{
    return syncvault::jittered_backoff({.base = 50ms, .cap = 2s, .kind = syncvault::jittered_backoff::jitter::none, .seed = 1});
}

net_vault make_vault(const syncvault::vault_config& cfg)
{
    return net_vault(cfg, syncvault::curl_transport(cfg), syncvault::file_journal(cfg), syncvault::polling_connectivity(cfg),
                     quick_backoff());
}

/** Waits for a real-network outcome, up to a generous bound. */
template <class Condition>
bool eventually(Condition done, std::chrono::milliseconds timeout = 20s)
{
    const auto deadline = steady::now() + timeout;
    while (!done()) {
        if (steady::now() > deadline) return false;
        std::this_thread::sleep_for(5ms);
    }
    return true;
}

syncvault::request_options keyed(std::string key)
{
    syncvault::request_options o;
    o.idempotency_key = std::move(key);
    return o;
}

/** Collects events from any thread. */
struct event_log {
    std::mutex mutex;
    std::vector<syncvault::sync_event> events;
    void add(const syncvault::sync_event& e)
    {
        std::lock_guard lock(mutex);
        events.push_back(e);
    }
    std::optional<syncvault::sync_event> find(syncvault::sync_event_status s)
    {
        std::lock_guard lock(mutex);
        for (const auto& e : events)
            if (e.status == s) return e;
        return std::nullopt;
    }
};

} // namespace

TEST_CASE("vault: queued while the server is down, drained in order once it is back",
          "[integration][vault][network]")
{
    test_server server;
    temp_dir dir;
    auto cfg = config_for(server, dir);
    server.stop();
    auto v = make_vault(cfg);

    std::vector<std::string> keys;
    for (int i = 0; i < 5; ++i) {
        keys.push_back("job-" + std::to_string(i));
        auto r = v.post("/jobs", syncvault::raw_body{"job " + std::to_string(i), "text/plain"}, keyed(keys.back()));
        REQUIRE(r.is_queued());
    }
    CHECK(v.pending_count() == 5);
    CHECK_FALSE(v.connectivity().is_online());  // the first attempt was refused

    // The first response back is lost after the server applied it: the re-send must not
    // apply it twice.
    server.script(step::drop_after_effect());
    server.start();
    syncvault::background_sync sync{v};

    INFO("the drop turns connectivity offline: poll() must schedule a probe, or nothing wakes the worker");
    REQUIRE(eventually([&] { return v.pending_count() == 0; }));
    CHECK(v.connectivity().is_online());
    CHECK(v.dead_letters().empty());

    const auto log = server.effect_log();
    REQUIRE(log.size() == 5);
    for (int i = 0; i < 5; ++i) {
        CHECK(log[i].idempotency_key == keys[i]);  // FIFO
        CHECK(log[i].body == "job " + std::to_string(i));
        CHECK(log[i].target == "/api/jobs");
        CHECK(server.effects(keys[i]) == 1);
    }
    CHECK(server.deliveries(keys[0]) == 2);  // lost response, re-sent with the same key
    CHECK(v.status() == syncvault::sync_status::synced);
}

TEST_CASE("vault: a new action wakes background_sync, which sends it", "[integration][vault][network]")
{
    test_server server;
    temp_dir dir;
    auto v = make_vault(config_for(server, dir));
    syncvault::background_sync sync{v};

    // Queued behind nothing, but the server answers 503 first: the worker retries it.
    server.script(step::respond(503, "busy"));
    auto r = v.put("/jobs/9", syncvault::raw_body{"x", "text/plain"}, keyed("wake-1"));
    REQUIRE(r.is_queued());
    REQUIRE(eventually([&] { return v.pending_count() == 0; }));
    CHECK(server.effects("wake-1") == 1);
    CHECK(server.deliveries("wake-1") == 2);
}

TEST_CASE("vault: Retry-After is respected", "[integration][vault][network]")
{
    test_server server;
    temp_dir dir;
    auto v = make_vault(config_for(server, dir));
    server.script(step::retry_after(429, "1"));

    auto r = v.post("/jobs", syncvault::raw_body{"x", "text/plain"}, keyed("ra-1"));
    REQUIRE(r.is_queued());
    syncvault::background_sync sync{v};
    REQUIRE(eventually([&] { return v.pending_count() == 0; }));

    const auto requests = server.requests();
    REQUIRE(requests.size() == 2);
    // The policy alone would have retried after 50 ms.
    CHECK(requests[1].received_at - requests[0].received_at >= 950ms);
    CHECK(server.effects("ra-1") == 1);
}

TEST_CASE("vault: a receive timeout leads to a retry, applied once", "[integration][vault][network]")
{
    test_server server;
    temp_dir dir;
    auto cfg = config_for(server, dir);
    cfg.receive_timeout = 300ms;
    auto v = make_vault(cfg);
    event_log events;
    auto sub = v.on_event([&](const syncvault::sync_event& e) { events.add(e); });

    server.script(step::slow(5s));  // applies the effect, answers too late
    auto r = v.post("/jobs", syncvault::raw_body{"x", "text/plain"}, keyed("slow-1"));
    REQUIRE(r.is_queued());
    auto failed = events.find(syncvault::sync_event_status::failed);
    REQUIRE(failed);
    CHECK(failed->error == syncvault::errc::timeout);

    syncvault::background_sync sync{v};
    REQUIRE(eventually([&] { return v.pending_count() == 0; }));
    CHECK(server.deliveries("slow-1") == 2);
    CHECK(server.effects("slow-1") == 1);
}

TEST_CASE("vault: a 4xx is dead-lettered with its response", "[integration][vault][network]")
{
    test_server server;
    temp_dir dir;
    auto cfg = config_for(server, dir);
    server.stop();
    auto v = make_vault(cfg);
    event_log events;
    auto sub = v.on_event([&](const syncvault::sync_event& e) { events.add(e); });

    REQUIRE(v.post("/jobs", syncvault::raw_body{"bad", "text/plain"}, keyed("bad-1")).is_queued());
    server.script(step::respond(422, R"({"error":"invalid job"})", {{"Content-Type", "application/json"}}));
    server.start();
    syncvault::background_sync sync{v};

    REQUIRE(eventually([&] { return events.find(syncvault::sync_event_status::dead_letter).has_value(); }));
    const auto dead = *events.find(syncvault::sync_event_status::dead_letter);
    REQUIRE(dead.response);
    CHECK(dead.response->status == 422);
    CHECK(dead.response->body == R"({"error":"invalid job"})");
    CHECK(v.pending_count() == 0);
    REQUIRE(v.dead_letters().size() == 1);
    CHECK(v.dead_letters()[0].last_status == 422);
    CHECK(server.effect_count() == 0);
}

TEST_CASE("vault: background_sync stops promptly while the server stalls", "[integration][vault][network]")
{
    test_server server;
    temp_dir dir;
    auto cfg = config_for(server, dir);
    cfg.receive_timeout = 60s;
    server.stop();
    auto v = make_vault(cfg);
    REQUIRE(v.post("/jobs", syncvault::raw_body{"x", "text/plain"}, keyed("stall-1")).is_queued());
    server.script(step::stall());
    server.start();

    std::optional<syncvault::background_sync<net_vault>> sync;
    sync.emplace(v);
    REQUIRE(server.wait_for_requests(1, 20s));  // the worker's transfer now hangs

    const auto start = steady::now();
    sync.reset();
    CHECK(steady::now() - start < 2s);
    CHECK(v.pending_count() == 1);  // interrupted, not lost
    CHECK(server.effect_count() == 0);
}

TEST_CASE("vault: background_sync stops promptly while idle", "[integration][vault][network]")
{
    test_server server;
    temp_dir dir;
    auto v = make_vault(config_for(server, dir));
    std::optional<syncvault::background_sync<net_vault>> sync;
    sync.emplace(v);
    REQUIRE(eventually([&] { return sync->polls() >= 1; }));
    const auto start = steady::now();
    sync.reset();
    CHECK(steady::now() - start < 1s);
}

TEST_CASE("vault: a server that never answers blocks neither post (send_on_caller off) nor async_post",
          "[integration][vault][network][async]")
{
    test_server server;
    temp_dir dir;
    auto cfg = config_for(server, dir);
    cfg.receive_timeout = 30s;
    cfg.send_on_caller = false;
    server.script(step::stall());  // accepts, reads the request, never answers
    std::optional<net_vault> v;
    v.emplace(cfg, syncvault::curl_transport(cfg), syncvault::file_journal(cfg), syncvault::polling_connectivity(cfg),
              quick_backoff());

    auto start = steady::now();
    CHECK(v->post("/jobs", syncvault::raw_body{"a", "text/plain"}, keyed("never-1")).is_queued());
    std::promise<std::error_code> outcome;
    v->async_post("/jobs", syncvault::raw_body{"b", "text/plain"}, keyed("never-2"),
                  [&](std::error_code ec, syncvault::http_response) { outcome.set_value(ec); });
    CHECK(steady::now() - start < 1s);
    CHECK(server.request_count() == 0);  // nothing was sent on this thread

    std::optional<syncvault::background_sync<net_vault>> sync;
    sync.emplace(*v);
    REQUIRE(server.wait_for_requests(1, 20s));  // the worker's transfer now hangs
    start = steady::now();
    CHECK(v->post("/jobs", syncvault::raw_body{"c", "text/plain"}, keyed("never-3")).is_queued());
    CHECK(steady::now() - start < 1s);
    sync.reset();  // interrupts the hanging transfer
    CHECK(v->pending_count() == 3);
    auto done = outcome.get_future();
    v.reset();  // the vault's destruction completes what still waits
    REQUIRE(done.wait_for(5s) == std::future_status::ready);
    CHECK(done.get() == syncvault::errc::cancelled);
}

// ---- SPEC 9.3 against a server that behaves like the real ones ----------------------------------

TEST_CASE("an access token that expired while offline pauses the queue, and a refresh resumes it", "[network][auth]")
{
    test_server::options o;
    o.require_token = true;
    test_server server(o);
    temp_dir dir;
    auto cfg = config_for(server, dir);
    std::mutex token_mutex;
    std::string token = server.issue_token(1h);
    cfg.before_send = [&](syncvault::http_request& r) {
        std::lock_guard lock(token_mutex);
        r.headers.push_back({"Authorization", "Bearer " + token});
    };
    bool refresh_works = false;
    int refreshes = 0;
    cfg.refresh_auth = [&](const syncvault::http_response& r) {
        CHECK(r.status == 401);
        ++refreshes;
        if (!refresh_works) return false;  // the user must log in again
        std::lock_guard lock(token_mutex);
        token = server.issue_token(1h);
        return true;
    };
    auto v = make_vault(cfg);
    server.stop();  // offline for a day
    for (int i = 0; i < 5; ++i) CHECK(v.post("/todos", boost::json::object{{"n", i}}, keyed("todo-" + std::to_string(i))).is_queued());
    server.expire_tokens();  // ...and the token expired meanwhile
    server.start();

    syncvault::background_sync sync{v};
    REQUIRE(eventually([&] { return v.is_paused(); }));
    CHECK(v.pending_count() == 5);  // 0.1 dead-lettered them one after another
    CHECK(v.dead_letters().empty());
    CHECK(server.effect_count() == 0);

    refresh_works = true;  // the user logged in again
    v.resume();
    REQUIRE(eventually([&] { return v.pending_count() == 0; }));
    CHECK(server.effect_count() == 5);
    CHECK(v.dead_letters().empty());
    CHECK(refreshes == 2);
}

TEST_CASE("409 'in progress' from an idempotency server after a lost response is retried, not dead-lettered",
          "[network][409]")
{
    test_server::options o;
    o.conflict_while_in_progress = true;
    test_server server(o);
    temp_dir dir;
    auto cfg = config_for(server, dir);
    cfg.receive_timeout = 150ms;  // shorter than the server's work: the first response is lost
    server.script(step::slow(1500ms));
    auto v = make_vault(cfg);
    std::vector<int> statuses;
    std::mutex m;
    auto sub = v.on_event([&](const syncvault::sync_event& e) {
        std::lock_guard lock(m);
        if (e.response) statuses.push_back(e.response->status);
    });
    CHECK(v.post("/payments", boost::json::object{{"amount", 42}}, keyed("pay-1")).is_queued());
    syncvault::background_sync sync{v};
    REQUIRE(eventually([&] { return v.pending_count() == 0; }));
    CHECK(v.dead_letters().empty());
    CHECK(server.effects("pay-1") == 1);
    std::lock_guard lock(m);
    CHECK(std::find(statuses.begin(), statuses.end(), 409) != statuses.end());  // the server did say 409
    CHECK(statuses.back() == 200);
}

// ---- SPEC 9.2 on the real network ---------------------------------------------------------------

TEST_CASE("lanes drain concurrently against a real server, each in its own order", "[network][lanes][thread]")
{
    test_server server;
    server.set_latency(5ms);
    temp_dir dir;
    auto cfg = config_for(server, dir);
    cfg.max_in_flight = 4;
    auto v = make_vault(cfg);
    v.connectivity().report(false);
    constexpr int lanes = 4, per_lane = 10;
    for (int i = 0; i < per_lane; ++i)
        for (int lane = 0; lane < lanes; ++lane) {
            auto o = keyed("l" + std::to_string(lane) + "-" + std::to_string(i));
            o.lane = "lane" + std::to_string(lane);
            REQUIRE(v.post("/lane/" + std::to_string(lane), boost::json::object{{"i", i}}, o).is_queued());
        }
    v.connectivity().report(true);  // online before the workers start: no probe connects
    {
        syncvault::background_sync sync{v};
        CHECK(sync.workers() == 4);
        REQUIRE(eventually([&] { return v.pending_count() == 0; }));
    }
    CHECK(v.dead_letters().empty());
    const auto effects = server.effect_log();
    REQUIRE(effects.size() == std::size_t(lanes * per_lane));
    for (int lane = 0; lane < lanes; ++lane) {  // per-lane order as posted
        int next = 0;
        for (const auto& e : effects)
            if (e.idempotency_key.starts_with("l" + std::to_string(lane) + "-")) {
                CHECK(e.idempotency_key == "l" + std::to_string(lane) + "-" + std::to_string(next));
                ++next;
            }
    }
    // Transfers ran side by side: curl_transport keeps one connection per concurrent transfer
    // (one at a time would reuse a single connection).
    CHECK(server.connection_count() > 1);
    CHECK(server.connection_count() <= 4);
}

// ---- SPEC 9.4 against a server that assigns ids ------------------------------------------------

namespace {

/** Whether any request the server saw still carries a `response_ref` placeholder. */
bool any_placeholder(const std::vector<syncvault::test_support::recorded_request>& requests)
{
    const auto has = [](std::string_view s) { return s.find("~svref:") != std::string_view::npos; };
    return std::any_of(requests.begin(), requests.end(), [&](const auto& r) {
        return has(r.target) || has(r.body) ||
               std::any_of(r.headers.begin(), r.headers.end(), [&](const auto& h) { return has(h.value); });
    });
}

} // namespace

TEST_CASE("vault: a chain created offline replays across a restart with the ids the server assigned",
          "[integration][vault][network][chain]")
{
    test_server::options o;
    o.assign_ids_from = 1000;
    test_server server(o);
    temp_dir dir;
    auto cfg = config_for(server, dir);
    {
        auto v = make_vault(cfg);
        v.connectivity().report(false);  // offline: nothing is attempted
        auto created = v.post("/todos", boost::json::object{{"text", "milk"}}, keyed("create"));
        REQUIRE(created.is_queued());
        const auto id = syncvault::response_ref(created.action_id(), "/id");
        auto done = keyed("done");
        done.headers.push_back({"X-Parent", id});
        REQUIRE(v.patch("/todos/" + id, boost::json::object{{"done", true}}, done).is_queued());
        // A whole-string placeholder takes the referenced value's JSON type (a number here); one
        // inside a longer string is replaced by its text.
        REQUIRE(v.post("/todos", boost::json::object{{"text", "oat milk"}, {"parent", id}, {"note", "after #" + id}},
                       keyed("child"))
                    .is_queued());
        CHECK(v.pending_count() == 3);
    }  // the app quits while offline: the chain waits in the journal
    CHECK(server.request_count() == 0);

    auto v = make_vault(cfg);
    REQUIRE(v.pending_count() == 3);
    {
        syncvault::background_sync sync{v};
        REQUIRE(eventually([&] { return v.pending_count() == 0; }));
    }
    CHECK(v.dead_letters().empty());
    const auto requests = server.requests();
    CHECK_FALSE(any_placeholder(requests));
    const auto log = server.effect_log();
    REQUIRE(log.size() == 3);
    CHECK(log[0].idempotency_key == "create");
    CHECK(log[0].method == "POST");
    CHECK(log[0].target == "/api/todos");
    CHECK(log[1].idempotency_key == "done");
    CHECK(log[1].method == "PATCH");
    CHECK(log[1].target == "/api/todos/1000");  // the id the server assigned to "create"
    CHECK(boost::json::parse(log[1].body) == boost::json::parse(R"({"done":true})"));
    const auto patch = std::find_if(requests.begin(), requests.end(), [](const auto& r) { return r.method == "PATCH"; });
    REQUIRE(patch != requests.end());
    CHECK(patch->header_value("X-Parent") == "1000");
    CHECK(log[2].idempotency_key == "child");
    const auto child = boost::json::parse(log[2].body);
    REQUIRE(child.is_object());
    CHECK(child.at("parent").is_int64());  // a JSON number, not the string "1000"
    CHECK(child.at("parent") == 1000);
    CHECK(child.at("note") == "after #1000");
    CHECK(child.at("text") == "oat milk");
    CHECK(server.effects("create") == 1);
}

TEST_CASE("vault: 100 offline toggles of one field with one coalesce key are one request on the wire",
          "[integration][vault][network][coalesce]")
{
    test_server server;
    temp_dir dir;
    auto v = make_vault(config_for(server, dir));
    v.connectivity().report(false);  // offline: nothing is attempted, so each toggle may merge
    std::string survivor;
    for (int i = 0; i < 100; ++i) {
        syncvault::request_options o;
        o.coalesce_key = "todo-7-done";
        auto r = v.patch("/todos/7", boost::json::object{{"done", i % 2 == 0}}, o);
        REQUIRE(r.is_queued());
        if (i == 0) survivor = r.action_id();
        CHECK(r.action_id() == survivor);  // each names the first toggle's action
    }
    REQUIRE(v.pending_count() == 1);
    const auto key = v.pending_actions().at(0).idempotency_key;

    v.connectivity().report(true);
    {
        syncvault::background_sync sync{v};
        REQUIRE(eventually([&] { return v.pending_count() == 0; }));
    }
    CHECK(v.dead_letters().empty());
    REQUIRE(server.request_count() == 1);
    const auto request = server.requests().at(0);
    CHECK(request.method == "PATCH");
    CHECK(request.target == "/api/todos/7");
    CHECK(request.header_value("Idempotency-Key") == key);
    CHECK(boost::json::parse(request.body) == boost::json::parse(R"({"done":false})"));  // the 100th toggle
}
