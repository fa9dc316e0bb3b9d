// SPEC 9.1: faults inside the process are input too. Each test here reproduces one defect the
// 0.1 core had (issue 12's list, numbered as there) through the public API, and fails on it.

#include "vault/vault_support.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <condition_variable>
#include <stdexcept>
#include <thread>

using namespace sv_test;
using syncvault::errc;
using syncvault::sync_status;

namespace {

/** memory_storage whose calls can be made to throw or fail, and that logs what it was asked. */
struct faulty_storage {
    struct control {
        std::mutex mutex;
        bool throw_on_save = false;
        std::error_code fail_saves;   // returned by every save while set
        std::error_code fail_removes;
        std::vector<std::string> log;  // "save:<id>", "remove:<id>", "flush"
        // A gate the next save waits at (defect 7): set `hold`, wait for `held`, then `release`.
        bool hold = false, held = false, release = false;
        bool fail_held = false;  // the held save then fails
        std::condition_variable cv;
    };
    syncvault::memory_storage inner;
    std::shared_ptr<control> c = std::make_shared<control>();

    std::error_code save(const syncvault::sync_action& a)
    {
        std::unique_lock lock(c->mutex);
        c->log.push_back("save:" + a.id);
        if (c->hold) {
            c->hold = false;
            c->held = true;
            c->cv.notify_all();
            c->cv.wait(lock, [&] { return c->release; });
            if (c->fail_held) return make_error_code(errc::storage_failed);
        }
        if (c->throw_on_save) throw std::runtime_error("disk on fire");
        if (c->fail_saves) return c->fail_saves;
        lock.unlock();
        return inner.save(a);
    }
    std::error_code remove(std::string_view id)
    {
        std::lock_guard lock(c->mutex);
        c->log.push_back("remove:" + std::string(id));
        if (c->fail_removes) return c->fail_removes;
        return inner.remove(id);
    }
    syncvault::result<std::vector<syncvault::sync_action>> load_all() { return inner.load_all(); }
    std::error_code clear() { return inner.clear(); }
    std::size_t count() const { return inner.count(); }
    std::error_code flush()
    {
        std::lock_guard lock(c->mutex);
        c->log.push_back("flush");
        return {};
    }
};

/** fake_transport that throws from `send` while told to. */
struct throwing_transport {
    fake_transport inner;
    std::shared_ptr<std::atomic<int>> throws = std::make_shared<std::atomic<int>>(0);
    syncvault::result<syncvault::http_response> send(const syncvault::http_request& r)
    {
        if (*throws > 0) {
            --*throws;
            throw std::runtime_error("transport bug");
        }
        return inner.send(r);
    }
};

/** The connectivity concept's own example: nothing but `is_online()`. */
struct bare_connectivity {
    std::shared_ptr<std::atomic<bool>> up = std::make_shared<std::atomic<bool>>(true);
    bool is_online() const { return *up; }
};

template <class T = fake_transport, class S = syncvault::memory_storage, class C = syncvault::manual_connectivity>
using vault_of = syncvault::basic_vault<T, S, C, syncvault::jittered_backoff, fake_clock>;

} // namespace

TEST_CASE("1: a listener that throws mid-drain leaves the vault live and other listeners informed", "[vault][faults]")
{
    rig<> r;
    auto v = r.make(false);
    auto a = v->post("/a", nullptr), b = v->post("/b", nullptr);
    auto thrower = v->on_event([](const syncvault::sync_event& e) {
        if (e.status == syncvault::sync_event_status::started) throw std::runtime_error("listener bug");
    });
    auto status_thrower = v->on_status([](sync_status) { throw std::logic_error("status listener bug"); });
    event_log log(*v);
    v->connectivity().set_online(true);
    CHECK(v->process_queue() == 2);
    CHECK(log.lifecycle() == lifecycle{"started:1", "success:1", "started:1", "success:1"});
    CHECK(v->status() == sync_status::synced);
    CHECK(v->post("/c", nullptr).is_sent());  // no flag stayed set
}

TEST_CASE("1: a dispatcher that throws drops that callback only", "[vault][faults]")
{
    rig<> r;
    int dispatched = 0;
    r.cfg.dispatch = [&](std::function<void()> fn) {
        if (++dispatched % 2 == 0) throw std::runtime_error("UI queue closed");
        fn();
    };
    auto v = r.make();
    for (int i = 0; i < 5; ++i) CHECK(v->post("/a" + std::to_string(i), nullptr).is_sent());
    CHECK(v->status() == sync_status::synced);
    CHECK(r.net.request_count() == 5);
}

TEST_CASE("1: before_send or the transport throwing is a failed attempt, retried", "[vault][faults]")
{
    SECTION("before_send")
    {
        rig<> r;
        int calls = 0;
        r.cfg.before_send = [&](syncvault::http_request&) {
            if (++calls == 1) throw std::runtime_error("token store unavailable");
        };
        auto v = r.make();
        event_log log(*v);
        auto res = v->post("/a", nullptr);
        CHECK(res.is_queued());
        CHECK(r.net.request_count() == 0);
        CHECK(v->status() == sync_status::error);
        r.clock.advance(2s);
        v->poll();
        CHECK(log.lifecycle() == lifecycle{"queued", "started:1", "failed:1", "started:2", "success:2"});
        CHECK(v->status() == sync_status::synced);
    }
    SECTION("transport")
    {
        fake_clock clock;
        throwing_transport t;
        *t.throws = 1;
        vault_of<throwing_transport> v{test_config(), t, syncvault::memory_storage{},
                                       syncvault::manual_connectivity{true}, exact_backoff(), clock};
        event_log log(v);
        CHECK(v.post("/a", nullptr).is_queued());
        CHECK(log.last().error == errc::connection_failed);
        clock.advance(2s);
        v.poll();
        CHECK(log.lifecycle() == lifecycle{"queued", "started:1", "failed:1", "started:2", "success:2"});
        CHECK(v.pending_count() == 0);
    }
}

TEST_CASE("2: a save that throws during enqueue leaves no reservation and no phantom key", "[vault][faults]")
{
    fake_clock clock;
    faulty_storage s;
    vault_of<fake_transport, faulty_storage> v{test_config(), fake_transport{}, s, syncvault::manual_connectivity{false},
                                               exact_backoff(), clock};
    s.c->throw_on_save = true;
    auto failed = v.post("/pay", nullptr, {.idempotency_key = "k1"});
    CHECK(failed.error() == errc::storage_failed);
    CHECK(v.pending_count() == 0);
    s.c->throw_on_save = false;
    auto again = v.post("/pay", nullptr, {.idempotency_key = "k1"});
    REQUIRE(again.is_queued());
    CHECK(v.pending_count() == 1);
    CHECK(v.post("/other", nullptr).is_queued());  // nothing stalls behind a ghost
    v.connectivity().set_online(true);
    CHECK(v.process_queue() == 2);
}

TEST_CASE("3: a queued callback that clears and posts during an immediate send", "[vault][faults][reentrancy]")
{
    rig<> r;
    auto v = r.make();
    std::string inner_id;
    bool once = false;
    auto sub = v->on_event([&](const syncvault::sync_event& e) {
        if (e.status != syncvault::sync_event_status::queued || once) return;
        once = true;
        CHECK_FALSE(v->clear_queue());
        inner_id = std::string(v->post("/second", nullptr).action_id());
    });
    auto first = v->post("/first", nullptr);
    // As if in sequence: /first was queued, then cleared (before any attempt), then /second queued.
    CHECK(first.is_queued());
    REQUIRE_FALSE(inner_id.empty());
    CHECK(first.action_id() != inner_id);
    CHECK(r.net.request_count() == 0);
    REQUIRE(v->pending_count() == 1);
    CHECK(v->pending_actions()[0].id == inner_id);
    CHECK(v->process_queue() == 1);
    REQUIRE(r.net.request_count() == 1);
    CHECK(r.net.requests()[0].url == "http://api.test/v1/second");
}

TEST_CASE("4: a failing disk makes the vault back off, with bounded diagnostics", "[vault][faults]")
{
    fake_clock clock;
    faulty_storage s;
    vault_of<fake_transport, faulty_storage> v{test_config(), fake_transport{}, s, syncvault::manual_connectivity{false},
                                               exact_backoff(), clock};
    REQUIRE(v.post("/a", nullptr).is_queued());
    s.c->fail_saves = std::make_error_code(std::errc::no_space_on_device);
    v.connectivity().set_online(true);
    std::optional<std::chrono::system_clock::time_point> wake;
    for (int i = 0; i < 1000; ++i) wake = v.poll();  // a driver that polls as told
    REQUIRE(wake);
    CHECK(*wake > clock.now());  // not "now": no spinning
    CHECK(v.status() == sync_status::error);
    CHECK(v.diagnostics().size() == 1);  // one per failure episode
    CHECK(v.transport().request_count() == 0);
    s.c->fail_saves = {};
    clock.set(*wake);
    v.poll();
    CHECK(v.pending_count() == 0);
    CHECK(v.status() == sync_status::synced);
}

TEST_CASE("5: a connectivity with only is_online() is looked at again while work waits", "[vault][liveness]")
{
    fake_clock clock;
    bare_connectivity c;
    *c.up = false;
    vault_of<fake_transport, syncvault::memory_storage, bare_connectivity> v{
        test_config(), fake_transport{}, syncvault::memory_storage{}, c, exact_backoff(), clock};
    REQUIRE(v.post("/a", nullptr).is_queued());
    auto wake = v.poll();
    REQUIRE(wake);  // 0.1 said nothing: a background_sync slept forever
    *c.up = true;
    clock.set(*wake);
    v.poll();
    CHECK(v.pending_count() == 0);
}

TEST_CASE("6: a wall clock that jumps back 30 days moves no wait beyond the cap", "[vault][liveness]")
{
    rig<> r;
    r.net.respond(503);
    auto v = r.make();
    REQUIRE(v->post("/a", nullptr).is_queued());
    r.clock.set(r.clock.now() - 24h * 30);
    auto wake = v->poll();
    REQUIRE(wake);
    CHECK(*wake <= r.clock.now() + 60s);
    r.clock.set(*wake);
    v->poll();
    CHECK(v->pending_count() == 0);
}

TEST_CASE("7: a second caller with the same key is not told 'queued' for a write that then fails", "[vault][faults][thread]")
{
    fake_clock clock;
    faulty_storage s;
    vault_of<fake_transport, faulty_storage> v{test_config(), fake_transport{}, s, syncvault::manual_connectivity{false},
                                               exact_backoff(), clock};
    {
        std::lock_guard lock(s.c->mutex);
        s.c->hold = s.c->fail_held = true;
    }
    syncvault::send_result first = syncvault::send_result::failed({});
    std::thread a([&] { first = v.post("/pay", nullptr, {.idempotency_key = "k"}); });
    {
        std::unique_lock lock(s.c->mutex);
        s.c->cv.wait(lock, [&] { return s.c->held; });  // the first write is under way
    }
    syncvault::send_result second = syncvault::send_result::failed({});
    std::thread b([&] { second = v.post("/pay", nullptr, {.idempotency_key = "k"}); });
    // Let the second caller reach the vault while the first write is held (a threaded test).
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    {
        std::lock_guard lock(s.c->mutex);
        s.c->release = true;
    }
    s.c->cv.notify_all();
    a.join();
    b.join();
    CHECK(first.error() == errc::storage_failed);
    REQUIRE(second.is_queued());  // its own write, made after the first one failed
    REQUIRE(v.pending_count() == 1);
    CHECK(v.pending_actions()[0].id == second.action_id());
}

TEST_CASE("8: clear_queue is synced and reports storage failures", "[vault][durability]")
{
    fake_clock clock;
    faulty_storage s;
    vault_of<fake_transport, faulty_storage> v{test_config(), fake_transport{}, s, syncvault::manual_connectivity{false},
                                               exact_backoff(), clock};
    auto a = v.post("/a", nullptr), b = v.post("/b", nullptr);
    s.c->log.clear();
    CHECK_FALSE(v.clear_queue());
    CHECK(s.c->log == std::vector<std::string>{"remove:" + std::string(a.action_id()),
                                               "remove:" + std::string(b.action_id()), "flush"});
    CHECK(v.pending_count() == 0);

    auto c = v.post("/c", nullptr);
    s.c->fail_removes = std::make_error_code(std::errc::io_error);
    CHECK(v.clear_queue() == std::errc::io_error);
    CHECK(v.pending_count() == 1);  // what storage still holds stays queued
}

TEST_CASE("9: a GET waits for at most the transfer in progress", "[vault][thread]")
{
    rig<> r;
    auto v = r.make(false);
    for (auto p : {"/a", "/b", "/c"}) v->post(p, nullptr);
    std::atomic<bool> get_started{false};
    std::thread reader;
    r.net.on_send([&](const syncvault::http_request& req) {
        if (req.url.ends_with("/a")) {
            reader = std::thread([&] {
                get_started = true;
                CHECK(v->get("/status").is_sent());
            });
            while (!get_started) std::this_thread::yield();
            // Give the reader time to queue for the transport (a threaded test: no fake clock here).
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
    });
    v->connectivity().set_online(true);
    v->process_queue();
    reader.join();
    auto requests = r.net.requests();
    REQUIRE(requests.size() == 4);
    CHECK(requests[1].url.ends_with("/status"));  // right after the transfer it waited for
}

TEST_CASE("12: action_id() of a temporary result does not dangle", "[vault][api]")
{
    rig<> r;
    auto v = r.make(false);
    static_assert(std::is_same_v<decltype(v->post("/a", nullptr).action_id()), std::string>);
    auto id = v->post("/a", nullptr).action_id();
    REQUIRE(v->pending_count() == 1);
    CHECK(id == v->pending_actions()[0].id);
}

TEST_CASE("13: receive_timeout of milliseconds::max() is a valid config", "[vault][config]")
{
    rig<> r;
    r.cfg.receive_timeout = std::chrono::milliseconds::max();
    r.cfg.connect_timeout = std::chrono::milliseconds::max();
    auto v = r.make();
    CHECK(v->post("/a", nullptr).is_sent());
}

TEST_CASE("destroying a vault while a background_sync drives it is refused", "[vault][api]")
{
    rig<> r;
    auto v = r.make();
    {
        syncvault::background_sync sync{*v};
        // attach_driver is what background_sync registered through; its end releases the vault.
    }
    v.reset();  // fine once the driver is gone
    SUCCEED();
}

TEST_CASE("a vault nobody drives says so once, a minute after actions started waiting", "[vault][liveness]")
{
    rig<> r;
    auto v = r.make(false);
    v->post("/a", nullptr);
    r.clock.advance(30s);
    v->post("/b", nullptr);
    CHECK(v->diagnostics().empty());
    r.clock.advance(31s);
    v->post("/c", nullptr);
    REQUIRE(v->diagnostics().size() == 1);
    CHECK(v->diagnostics()[0].message.find("background_sync") != std::string::npos);
    r.clock.advance(10min);
    v->post("/d", nullptr);
    CHECK(v->diagnostics().size() == 1);  // once

    rig<> driven;
    auto w = driven.make(false);
    w->post("/a", nullptr);
    driven.clock.advance(50s);
    w->poll();  // driven: the minute starts again
    driven.clock.advance(50s);
    w->post("/b", nullptr);
    CHECK(w->diagnostics().empty());
}

TEST_CASE("SPEC 9.4: a coalescing write that fails or throws leaves the queue exactly as it was", "[vault][faults][coalesce]")
{
    fake_clock clock;
    faulty_storage s;
    vault_of<fake_transport, faulty_storage> v{test_config(), fake_transport{}, s, syncvault::manual_connectivity{false},
                                               exact_backoff(), clock};
    syncvault::request_options o;
    o.coalesce_key = "title";
    auto x = v.post("/todos", boost::json::object{{"title", "a"}}, o);
    REQUIRE(x.is_queued());
    const auto before = v.pending_actions();

    SECTION("a save that fails: the error says why, memory and storage keep the earlier action")
    {
        s.c->fail_saves = std::make_error_code(std::errc::no_space_on_device);
        auto y = v.patch("/todos/1", boost::json::object{{"title", "b"}}, o);
        CHECK(y.error() == std::errc::no_space_on_device);
        s.c->fail_saves = {};
    }
    SECTION("a save that throws")
    {
        s.c->throw_on_save = true;
        auto y = v.patch("/todos/1", boost::json::object{{"title", "b"}}, o);
        CHECK(y.error() == errc::storage_failed);
        s.c->throw_on_save = false;
    }
    SECTION("a DELETE whose removal fails cancels nothing")
    {
        s.c->fail_removes = std::make_error_code(std::errc::io_error);
        auto y = v.delete_("/todos/1", o);
        CHECK(y.error() == errc::storage_failed);
        s.c->fail_removes = {};
    }
    CHECK(v.pending_actions() == before);
    CHECK(s.inner.load_all().value() == before);
    // And the edit is not wedged: the next one merges.
    auto z = v.patch("/todos/1", boost::json::object{{"title", "c"}}, o);
    CHECK(z.action_id() == x.action_id());
    CHECK(boost::json::parse(v.pending_actions().at(0).body) == boost::json::parse(R"({"title":"c"})"));
}

TEST_CASE("SPEC 9.4: listeners that call the vault back while a chain fails", "[vault][faults][after]")
{
    rig<> r;
    auto v = r.make(false);
    auto parent = v->post("/p", nullptr);
    syncvault::request_options o;
    o.after = {std::string(parent.action_id())};
    o.lane = "children";
    auto child = v->post("/c", nullptr, o);
    std::vector<bool> requeued;
    auto sub = v->on_event([&](const syncvault::sync_event& e) {
        // Re-entrant: from inside the cascade's events, try to requeue the dependent (its parent
        // is still dead: refused) and post more work.
        if (e.status == syncvault::sync_event_status::dead_letter && e.action_id == child.action_id()) {
            requeued.push_back(v->requeue(child.action_id()));
            v->post("/after-the-fall", nullptr);
        }
        throw std::runtime_error("listener bug");
    });
    r.net.respond(400);
    v->connectivity().set_online(true);
    v->process_queue();
    CHECK(requeued == std::vector<bool>{false});
    CHECK(v->dead_letters().size() == 2);
    CHECK(r.net.request_count() == 2);  // /p, then /after-the-fall
    CHECK(v->pending_count() == 0);
}

TEST_CASE("SPEC 9.4: the first attempt of a coalescable action is synced before it is sent", "[vault][faults][coalesce]")
{
    // SPEC 7 lets a power cut forget attempt counts; one that made a sent action look never
    // attempted would let a later request merge into it, and the merged part would be lost.
    fake_clock clock;
    faulty_storage s;
    fake_transport net;
    vault_of<fake_transport, faulty_storage> v{test_config(), net, s, syncvault::manual_connectivity{false},
                                               exact_backoff(), clock};
    std::vector<std::vector<std::string>> logs_at_send;
    net.on_send([&](const syncvault::http_request&) {
        std::lock_guard lock(s.c->mutex);
        logs_at_send.push_back(s.c->log);
    });
    syncvault::request_options o;
    o.coalesce_key = "prefs";
    const std::string coalescable(v.put("/prefs", boost::json::object{{"a", 1}}, o).action_id());
    const std::string plain(v.put("/other", boost::json::object{{"a", 1}}).action_id());
    v.connectivity().set_online(true);
    REQUIRE(v.process_queue() == 2);
    REQUIRE(logs_at_send.size() == 2);
    const auto& first = logs_at_send[0];
    REQUIRE(first.size() >= 2);
    CHECK(first[first.size() - 2] == "save:" + coalescable);
    CHECK(first.back() == "flush");
    CHECK(logs_at_send[1].back() == "save:" + plain);  // no coalesce key: lazily, as SPEC 7 says
}

// Simulator, file_journal queue edits, seed 10181: a DELETE cancelled a never-sent POST and its
// dependent was dead-lettered after the POST's removal was synced; a power cut lost the dead
// letter, and the dependent came back pending with a parent storage no longer held (which reads
// as a parent that succeeded: it would have been sent).
TEST_CASE("SPEC 9.4: a cancelled parent's dependents are dead letters in storage before it leaves, under one sync",
          "[vault][faults][after]")
{
    fake_clock clock;
    faulty_storage s;
    vault_of<fake_transport, faulty_storage> v{test_config(), fake_transport{}, s, syncvault::manual_connectivity{false},
                                               exact_backoff(), clock};
    syncvault::request_options create;
    create.coalesce_key = "note8";
    auto parent = v.post("/notes", boost::json::object{{"title", "a"}}, create);
    syncvault::request_options waits;
    waits.after = {std::string(parent.action_id())};
    auto child = v.put("/items/11", boost::json::object{{"done", true}}, waits);
    waits.after = {std::string(child.action_id())};
    auto grandchild = v.put("/items/12", boost::json::object{{"done", true}}, waits);
    REQUIRE(grandchild.is_queued());
    const auto before = s.inner.load_all().value();
    s.c->log.clear();
    auto position = [&](const std::string& entry) {
        return std::find(s.c->log.begin(), s.c->log.end(), entry) - s.c->log.begin();
    };
    auto stored_state = [&](std::string_view id) {
        for (const auto& a : s.inner.load_all().value())
            if (a.id == id) return a.state;
        FAIL("not stored: " << id);
        return syncvault::action_state::pending;
    };

    SECTION("cancel() and a coalescing DELETE write the dead letters first")
    {
        const bool by_delete = GENERATE(false, true);
        if (by_delete) REQUIRE(v.delete_("/notes/8", create).is_queued());
        else REQUIRE(v.cancel(parent.action_id()));
        const auto removed = position("remove:" + std::string(parent.action_id()));
        REQUIRE(removed < std::ptrdiff_t(s.c->log.size()));
        CHECK(position("save:" + std::string(child.action_id())) < removed);
        CHECK(position("save:" + std::string(grandchild.action_id())) < removed);
        CHECK(std::find(s.c->log.begin() + removed, s.c->log.end(), "flush") != s.c->log.end());
        CHECK(stored_state(child.action_id()) == syncvault::action_state::dead);
        CHECK(stored_state(grandchild.action_id()) == syncvault::action_state::dead);
        CHECK(v.pending_count() == 0);
    }
    SECTION("a removal that fails puts the dependents back as they were")
    {
        s.c->fail_removes = std::make_error_code(std::errc::io_error);
        CHECK_FALSE(v.cancel(parent.action_id()));
        CHECK(v.delete_("/notes/8", create).error() == errc::storage_failed);
        s.c->fail_removes = {};
        CHECK(s.inner.load_all().value() == before);
        CHECK(v.pending_count() == 3);
        CHECK(v.dead_letters().empty());
    }
    SECTION("a dependent's dead letter that cannot be saved cancels nothing")
    {
        s.c->fail_saves = std::make_error_code(std::errc::no_space_on_device);
        CHECK_FALSE(v.cancel(parent.action_id()));
        s.c->fail_saves = {};
        CHECK(s.inner.load_all().value() == before);
        CHECK(v.pending_count() == 3);
    }
}
