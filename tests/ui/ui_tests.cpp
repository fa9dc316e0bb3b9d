// The UI bindings (SPEC section 5) over a vault of fakes: what they deliver, what they filter,
// and that nothing reaches them after they are gone, even when they die inside their own call.

#include <syncvault/ui/event_tracker.hpp>
#include <syncvault/ui/status_watcher.hpp>
#include <syncvault/ui/sync_listener.hpp>

#include <syncvault.hpp>
#include <syncvault/testing/fake_clock.hpp>
#include <syncvault/testing/fake_transport.hpp>

#include <catch2/catch.hpp>

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace {

using syncvault::sync_event;
using syncvault::sync_event_status;
using syncvault::sync_status;
using syncvault::testing::fake_clock;
using syncvault::testing::fake_transport;

using test_vault = syncvault::basic_vault<fake_transport, syncvault::memory_storage, syncvault::manual_connectivity,
                                          syncvault::jittered_backoff, fake_clock>;

struct rig {
    fake_clock clock;
    fake_transport net;
    std::vector<std::function<void()>> dispatched;  // callbacks handed to `dispatch`, not yet run
    std::unique_ptr<test_vault> v;

    explicit rig(bool online = true, bool use_dispatch = false)
    {
        syncvault::vault_config cfg;
        cfg.base_url = "http://api.test";
        cfg.max_retries = 1;
        if (use_dispatch) cfg.dispatch = [this](std::function<void()> fn) { dispatched.push_back(std::move(fn)); };
        v = std::make_unique<test_vault>(cfg, net, syncvault::memory_storage{}, syncvault::manual_connectivity{online},
                                         syncvault::jittered_backoff({.seed = 1}), clock);
    }

    /** Queues a POST while offline, so its id is known before any attempt. */
    std::string queue(const std::string& key)
    {
        auto r = v->post("/items", boost::json::object{{"k", key}}, {.idempotency_key = key});
        REQUIRE(r.is_queued());
        return std::string(r.action_id());
    }

    void run_dispatched()
    {
        auto batch = std::move(dispatched);
        dispatched.clear();
        for (auto& fn : batch) fn();
    }
};

std::vector<std::string> keys_of(const std::vector<sync_event>& events)
{
    std::vector<std::string> out;
    for (const auto& e : events) out.push_back(e.idempotency_key);
    return out;
}

} // namespace

TEST_CASE("sync_listener: on_success and on_dead_letter for every action", "[ui][sync_listener]")
{
    rig r{false};
    std::vector<sync_event> ok, dead;
    syncvault::sync_listener l{*r.v, {.on_success = [&](const sync_event& e) { ok.push_back(e); },
                                      .on_dead_letter = [&](const sync_event& e) { dead.push_back(e); }}};
    r.queue("a");
    r.queue("b");
    r.net.respond(201).respond(404);  // a: success, b: permanent failure
    r.v->connectivity().set_online(true);
    r.v->process_queue();

    REQUIRE(keys_of(ok) == std::vector<std::string>{"a"});
    REQUIRE(keys_of(dead) == std::vector<std::string>{"b"});
    CHECK(ok[0].response->status == 201);
    CHECK(dead[0].response->status == 404);
    CHECK(static_cast<bool>(l));
}

TEST_CASE("sync_listener: filters by action id and by idempotency key", "[ui][sync_listener]")
{
    rig r{false};
    const auto a = r.queue("key-a");
    const auto b = r.queue("key-b");
    r.queue("key-c");
    std::vector<std::string> by_id, by_key, by_both, mismatched;
    auto record = [](std::vector<std::string>& into) {
        return [&into](const sync_event& e) {
            into.push_back(e.idempotency_key + ":" + std::string(to_string(e.status)));
        };
    };
    syncvault::sync_listener l1{*r.v, {.on_success = record(by_id), .on_dead_letter = record(by_id), .action_id = a}};
    syncvault::sync_listener l2{*r.v, {.on_success = record(by_key), .on_dead_letter = record(by_key),
                                       .idempotency_key = "key-b"}};
    syncvault::sync_listener l3{*r.v, {.on_success = record(by_both), .action_id = a, .idempotency_key = "key-a"}};
    syncvault::sync_listener l4{*r.v, {.on_success = record(mismatched), .action_id = a, .idempotency_key = "key-b"}};

    r.net.respond(200).respond(422).respond(200);
    r.v->connectivity().set_online(true);
    CHECK(r.v->process_queue() == 2);

    CHECK(by_id == std::vector<std::string>{"key-a:success"});
    CHECK(by_key == std::vector<std::string>{"key-b:dead_letter"});
    CHECK(by_both == std::vector<std::string>{"key-a:success"});
    CHECK(mismatched.empty());
    (void)b;
}

TEST_CASE("sync_listener: nothing after destruction or reset", "[ui][sync_listener]")
{
    rig r{false};
    int calls = 0;
    auto l = std::make_unique<syncvault::sync_listener>(
        *r.v, syncvault::sync_listener_options{.on_success = [&](const sync_event&) { ++calls; }});
    syncvault::sync_listener kept{*r.v, {.on_success = [&](const sync_event&) { ++calls; }}};
    kept.reset();
    CHECK_FALSE(kept);
    l.reset();
    r.queue("a");
    r.v->connectivity().set_online(true);
    CHECK(r.v->process_queue() == 1);
    CHECK(calls == 0);
}

TEST_CASE("sync_listener: destroyed from inside its own callback", "[ui][sync_listener]")
{
    rig r{false};
    int calls = 0;
    std::optional<syncvault::sync_listener> l;
    l.emplace(*r.v, syncvault::sync_listener_options{.on_success = [&](const sync_event&) {
                  ++calls;
                  l.reset();  // the listener (and the lambda's owner) dies mid-call
              }});
    r.queue("a");
    r.queue("b");
    r.v->connectivity().set_online(true);
    CHECK(r.v->process_queue() == 2);
    CHECK(calls == 1);
    CHECK_FALSE(l.has_value());
}

TEST_CASE("sync_listener: may outlive the vault", "[ui][sync_listener]")
{
    rig r;
    syncvault::sync_listener l{*r.v, {.on_success = [](const sync_event&) {}}};
    r.v.reset();
    l.reset();  // the vault is gone: unsubscribing is a no-op, not a crash
    CHECK_FALSE(l);
}

TEST_CASE("status_watcher: the current value at once, then each change", "[ui][status_watcher]")
{
    rig r{false};
    r.queue("a");
    std::vector<sync_status> seen;
    syncvault::status_watcher w{*r.v, [&](sync_status s) { seen.push_back(s); }};
    REQUIRE(seen == std::vector{sync_status::pending});
    CHECK(w.status() == sync_status::pending);

    r.net.respond(503).respond(200);
    r.v->connectivity().set_online(true);
    r.v->process_queue();  // stops at the 503
    CHECK(w.status() == sync_status::error);
    r.v->process_queue();
    CHECK(seen == std::vector{sync_status::pending, sync_status::syncing, sync_status::error, sync_status::syncing,
                              sync_status::synced});
    CHECK(w.status() == sync_status::synced);
}

TEST_CASE("status_watcher: without a render function, the getter alone", "[ui][status_watcher]")
{
    rig r{false};
    syncvault::status_watcher w{*r.v};
    CHECK(w.status() == sync_status::synced);
    r.queue("a");
    CHECK(w.status() == sync_status::pending);
    syncvault::status_watcher empty;
    CHECK(empty.status() == sync_status::synced);
    CHECK_FALSE(empty);
}

TEST_CASE("status_watcher: the render function may call the vault", "[ui][status_watcher]")
{
    rig r{false};
    std::vector<std::string> lines;
    syncvault::status_watcher w{*r.v, [&](sync_status s) {
                                    lines.push_back(std::string(to_string(s)) + " " +
                                                    std::to_string(r.v->pending_count()));
                                }};
    r.queue("a");
    r.v->connectivity().set_online(true);
    r.v->process_queue();
    CHECK(lines == std::vector<std::string>{"synced 0", "pending 1", "syncing 1", "synced 0"});
}

TEST_CASE("status_watcher: nothing after destruction, even through dispatch", "[ui][status_watcher]")
{
    rig r{false, true};
    int renders = 0;
    auto w = std::make_unique<syncvault::status_watcher>(*r.v, [&](sync_status) { ++renders; });
    r.queue("a");
    CHECK(r.dispatched.size() == 2);  // the current value and the change, waiting for the UI thread
    CHECK(w->status() == sync_status::synced);  // the getter follows what has been delivered
    w.reset();
    r.run_dispatched();
    CHECK(renders == 0);

    syncvault::status_watcher live{*r.v, [&](sync_status) { ++renders; }};
    r.run_dispatched();
    CHECK(renders == 1);
    CHECK(live.status() == sync_status::pending);
}

TEST_CASE("status_watcher: destroyed from inside its own render", "[ui][status_watcher]")
{
    rig r{false};
    std::vector<sync_status> seen;
    std::optional<syncvault::status_watcher> w;
    w.emplace(*r.v, [&](sync_status s) {
        seen.push_back(s);
        if (s == sync_status::pending) w.reset();
    });
    r.queue("a");
    r.v->connectivity().set_online(true);
    r.v->process_queue();
    CHECK(seen == std::vector{sync_status::synced, sync_status::pending});
    CHECK_FALSE(w.has_value());
}

TEST_CASE("status_watcher: moves keep the subscription, assignment ends the old one", "[ui][status_watcher]")
{
    rig r{false};
    int first = 0, second = 0;
    syncvault::status_watcher a{*r.v, [&](sync_status) { ++first; }};
    syncvault::status_watcher b{std::move(a)};
    syncvault::status_watcher c{*r.v, [&](sync_status) { ++second; }};
    CHECK(first == 1);
    CHECK(second == 1);
    c = std::move(b);  // c's own subscription ends; it now carries a's
    r.queue("x");
    CHECK(first == 2);
    CHECK(second == 1);
    CHECK(c.status() == sync_status::pending);
}

TEST_CASE("event_tracker: empty until an event, then the last one", "[ui][event_tracker]")
{
    rig r{false};
    const auto id = r.queue("a");
    r.queue("b");
    std::vector<std::string> renders;
    syncvault::event_tracker t{*r.v, id,
                               [&](const sync_event& e) { renders.push_back(std::string(to_string(e.status))); }};
    CHECK_FALSE(t.last());
    CHECK_FALSE(t.last_status());

    r.net.respond(500).respond(200).respond(200);
    r.v->connectivity().set_online(true);
    r.v->process_queue();
    CHECK(t.last_status() == sync_event_status::failed);
    CHECK(t.last()->attempt == 1);
    r.v->process_queue();
    CHECK(renders == std::vector<std::string>{"started", "failed", "started", "success"});
    REQUIRE(t.last());
    CHECK(t.last()->action_id == id);
    CHECK(t.last()->attempt == 2);
}

TEST_CASE("event_tracker: by key sees an immediate send that by-id tracking cannot", "[ui][event_tracker]")
{
    rig r;
    std::vector<sync_event_status> seen;
    auto t = syncvault::event_tracker::for_key(*r.v, "todo-1", [&](const sync_event& e) { seen.push_back(e.status); });
    auto other = syncvault::event_tracker::for_key(*r.v, "todo-2");
    auto sent = r.v->post("/todos", boost::json::object{{"text", "milk"}}, {.idempotency_key = "todo-1"});
    REQUIRE(sent.is_sent());
    CHECK(seen == std::vector{sync_event_status::queued, sync_event_status::started, sync_event_status::success});
    CHECK(t.last()->action_id == sent.action_id());
    CHECK_FALSE(other.last());

    syncvault::event_tracker late{*r.v, sent.action_id()};  // every event already fired
    CHECK_FALSE(late.last());
}

TEST_CASE("event_tracker: follows a requeued dead letter through its new lifecycle", "[ui][event_tracker]")
{
    rig r{false};
    const auto id = r.queue("a");
    syncvault::event_tracker t{*r.v, id};
    r.net.respond(400);
    r.v->connectivity().set_online(true);
    r.v->process_queue();
    CHECK(t.last_status() == sync_event_status::dead_letter);
    REQUIRE(r.v->requeue(id));
    CHECK(t.last_status() == sync_event_status::queued);
    r.v->process_queue();
    CHECK(t.last_status() == sync_event_status::success);
}

TEST_CASE("event_tracker: nothing after destruction or reset", "[ui][event_tracker]")
{
    rig r{false};
    const auto id = r.queue("a");
    int renders = 0;
    auto t = std::make_unique<syncvault::event_tracker>(*r.v, id, [&](const sync_event&) { ++renders; });
    syncvault::event_tracker stopped{*r.v, id, [&](const sync_event&) { ++renders; }};
    stopped.reset();
    t.reset();
    r.v->connectivity().set_online(true);
    r.v->process_queue();
    CHECK(renders == 0);
    CHECK_FALSE(stopped.last());
}

TEST_CASE("event_tracker: destroyed from inside its own render", "[ui][event_tracker]")
{
    rig r{false};
    const auto id = r.queue("a");
    std::vector<sync_event_status> seen;
    std::optional<syncvault::event_tracker> t;
    t.emplace(*r.v, id, [&](const sync_event& e) {
        seen.push_back(e.status);
        t.reset();
    });
    r.v->connectivity().set_online(true);
    r.v->process_queue();
    CHECK(seen == std::vector{sync_event_status::started});
    CHECK_FALSE(t.has_value());
}

TEST_CASE("event_tracker: moved, it keeps tracking, moved-from is empty", "[ui][event_tracker]")
{
    rig r{false};
    const auto id = r.queue("a");
    syncvault::event_tracker a{*r.v, id};
    std::vector<syncvault::event_tracker> trackers;
    trackers.push_back(std::move(a));
    r.v->connectivity().set_online(true);
    r.v->process_queue();
    CHECK(trackers[0].last_status() == sync_event_status::success);
    CHECK_FALSE(a.last());  // NOLINT(bugprone-use-after-move): the documented moved-from state
}

TEST_CASE("bindings destroyed on one thread while another delivers: nothing after destruction", "[ui][threads]")
{
    rig r;
    std::atomic<bool> stop{false};
    std::thread worker([&] {  // events and status changes delivered on this thread
        for (int i = 0; !stop; ++i) (void)r.v->post("/items", boost::json::object{{"i", i}});
    });

    struct probe {
        std::atomic<bool> destroyed{false}, late{false};
        std::atomic<int> calls{0};
        void hit()
        {
            ++calls;
            if (destroyed) late = true;
        }
    };
    std::vector<std::shared_ptr<probe>> probes;
    for (int i = 0; i < 300; ++i) {
        auto p = std::make_shared<probe>();
        probes.push_back(p);
        {
            syncvault::status_watcher w{*r.v, [p](sync_status) { p->hit(); }};
            syncvault::sync_listener l{*r.v, {.on_success = [p](const sync_event&) { p->hit(); }}};
            auto t = syncvault::event_tracker::for_key(*r.v, "none", [p](const sync_event&) { p->hit(); });
        }
        p->destroyed = true;  // destructors returned: no call may start from here on
    }
    stop = true;
    worker.join();

    int late = 0, calls = 0;
    for (const auto& p : probes) {
        late += p->late;
        calls += p->calls;
    }
    CHECK(late == 0);
    CHECK(calls >= 300);  // at least every watcher's current value
}
