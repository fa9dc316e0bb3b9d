// SPEC 9.8: over a storage that reads bodies back (`load_body`), the vault keeps pending
// actions' bodies there, not in memory, and reads one back whenever it needs it. These tests run
// the public API over file_journal and sqlite_storage (real files) wrapped in `probed`, which
// counts the reads, can make them fail or throw, and flags any save that would write an empty
// body over a stored one (the data loss this feature must never cause).

#include "vault/vault_support.hpp"

#include <catch2/catch.hpp>

#include <boost/json.hpp>

#include <syncvault/storage/file_journal.hpp>
#ifndef SYNCVAULT_TESTS_NO_SQLITE
#include <syncvault/storage/sqlite_storage.hpp>
#endif

#include "storage/temp_dir.hpp"
#include "support/test_latch.hpp"

#include <atomic>
#include <memory>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

using namespace sv_test;
namespace json = boost::json;
using syncvault::errc;
using syncvault::raw_body;
using syncvault::request_options;
using syncvault::response_ref;
using syncvault::sync_action;

namespace {

/** What a test sees of the storage under a vault. */
struct body_probe {
    std::atomic<int> loads{0};             // load_body calls
    std::atomic<bool> fail{false};         // load_body returns storage_failed
    std::atomic<bool> raise{false};        // load_body throws
    std::atomic<int> empty_overwrites{0};  // saves of an empty body over a stored non-empty one
    std::atomic<bool> fail_saves{false};   // save returns storage_failed
    std::atomic<int> progress_saves{0};    // save_progress calls (models with the hook)
};

/** A storage model wrapped: every call forwarded, load_body observed. */
template <class S>
struct probed {
    S inner;
    std::shared_ptr<body_probe> probe;

    static constexpr bool thread_safe = syncvault::thread_safe_storage<S>;

    std::error_code save(const sync_action& a)
    {
        if (a.body.empty())
            if (auto stored = inner.load_body(a.id); stored && !stored->empty()) ++probe->empty_overwrites;
        if (probe->fail_saves) return make_error_code(errc::storage_failed);
        return inner.save(a);
    }
    // Forwarded where the model has it, so these tests cover the vault's attempt records too.
    std::error_code save_progress(const sync_action& a) requires syncvault::progress_storage<S>
    {
        ++probe->progress_saves;
        if (probe->fail_saves) return make_error_code(errc::storage_failed);
        return inner.save_progress(a);
    }
    std::error_code save_batch(std::span<const sync_action> batch) { return inner.save_batch(batch); }
    std::error_code remove(std::string_view id) { return inner.remove(id); }
    syncvault::result<std::vector<sync_action>> load_all() { return inner.load_all(); }
    std::error_code clear() { return inner.clear(); }
    std::size_t count() const { return inner.count(); }
    std::error_code flush() { return inner.flush(); }
    std::vector<syncvault::diagnostic> take_diagnostics() { return inner.take_diagnostics(); }
    syncvault::result<std::string> load_body(std::string_view id)
    {
        ++probe->loads;
        if (probe->raise) throw std::runtime_error("load_body: injected");
        if (probe->fail) return make_error_code(errc::storage_failed);
        return inner.load_body(id);
    }
};

static_assert(syncvault::body_reading_storage<probed<syncvault::file_journal>>);
static_assert(!syncvault::body_reading_storage<syncvault::memory_storage>);

std::string every_byte()
{
    std::string s;
    for (int i = 0; i < 256; ++i) s.push_back(static_cast<char>(i));
    return s;
}

/** A 256-byte body, different for each `i`, not UTF-8. */
std::string binary_body(int i)
{
    auto s = every_byte();
    s[0] = static_cast<char>(i);
    s[1] = static_cast<char>(i >> 8);
    return s;
}

raw_body raw(const std::string& bytes)
{
    raw_body b;
    b.bytes.assign(bytes.data(), bytes.size());  // not a string move: g++ 12 -O2 misreads it (-Warray-bounds)
    return b;
}

std::string path_of(const syncvault::http_request& r)
{
    return r.url.substr(std::string("http://api.test/v1").size());
}

}  // namespace

template <>
struct sv_test::storage_maker<probed<syncvault::file_journal>> {
    syncvault_tests::temp_dir dir{"bodies-journal"};
    std::shared_ptr<body_probe> probe = std::make_shared<body_probe>();
    probed<syncvault::file_journal> open()
    {
        return {syncvault::file_journal(dir.path(), syncvault::durability::none), probe};
    }
};
#ifndef SYNCVAULT_TESTS_NO_SQLITE
template <>
struct sv_test::storage_maker<probed<syncvault::sqlite_storage>> {
    syncvault_tests::temp_dir dir{"bodies-sqlite"};
    std::shared_ptr<body_probe> probe = std::make_shared<body_probe>();
    probed<syncvault::sqlite_storage> open() { return {syncvault::sqlite_storage(dir / "syncvault.db"), probe}; }
};
#define BODY_STORAGES probed<syncvault::file_journal>, probed<syncvault::sqlite_storage>
#else
#define BODY_STORAGES probed<syncvault::file_journal>
#endif

TEMPLATE_TEST_CASE("bodies in storage: sent byte-identical, read back from storage, not kept in memory",
                   "[vault][bodies]", BODY_STORAGES)
{
    rig<TestType> r;
    auto& probe = *r.storage.probe;
    auto v = r.make(false);
    std::vector<std::string> ids, bodies;
    for (int i = 0; i < 5; ++i) {
        bodies.push_back(binary_body(i));
        ids.emplace_back(v->post("/blob/" + std::to_string(i), raw(bodies.back())).action_id());
    }
    const auto doc = json::parse(R"({"name":"caf\u00e9","n":1})");
    bodies.push_back(json::serialize(doc));
    ids.emplace_back(v->put("/json", doc).action_id());
    ids.emplace_back(v->delete_("/gone").action_id());  // no body: nothing to read back
    bodies.emplace_back();
    CHECK(probe.loads == 0);

    // pending_actions() returns whole actions: each body read back from storage, once.
    auto listed = v->pending_actions();
    REQUIRE(listed.size() == ids.size());
    for (std::size_t i = 0; i < ids.size(); ++i) {
        CHECK(listed[i].id == ids[i]);
        CHECK(listed[i].body == bodies[i]);
    }
    CHECK(probe.loads == 6);  // kept in memory, the bodies would not be read at all

    v->connectivity().set_online(true);
    CHECK(v->process_queue() == ids.size());
    const auto sent = r.net.requests();
    REQUIRE(sent.size() == ids.size());
    for (std::size_t i = 0; i < ids.size(); ++i) CHECK(sent[i].body == bodies[i]);
    CHECK(probe.loads == 12);
    CHECK(probe.empty_overwrites == 0);
    CHECK(v->pending_count() == 0);
}

TEMPLATE_TEST_CASE("bodies in storage: read back after a reopen, and after a retry", "[vault][bodies][restart]",
                   BODY_STORAGES)
{
    rig<TestType> r;
    auto& probe = *r.storage.probe;
    auto v = r.make(false);
    const auto a = std::string(v->post("/a", raw(binary_body(1))).action_id());
    const auto b = std::string(v->post("/b", raw(binary_body(2))).action_id());
    v.reset();

    v = r.make(false);
    CHECK(probe.loads == 0);  // opening reads every record once, then drops the bodies
    auto listed = v->pending_actions();
    REQUIRE(listed.size() == 2);
    CHECK(listed[0].body == binary_body(1));
    CHECK(listed[1].body == binary_body(2));

    r.net.respond(503);
    v->connectivity().set_online(true);
    v->poll();  // a fails, b waits behind it: a's attempt count saved, its body intact
    CHECK(probe.empty_overwrites == 0);
    v.reset();

    v = r.make();
    CHECK(v->pending_actions().at(0).attempts == 1);
    // The attempt was recorded without rewriting the body, through save_progress.
    CHECK((probe.progress_saves > 0) == syncvault::progress_storage<decltype(r.storage.open().inner)>);
    r.clock.advance(1s);
    v->poll();
    const auto sent = r.net.requests();
    REQUIRE(sent.size() == 3);
    CHECK(sent[0].body == binary_body(1));
    CHECK(sent[1].body == binary_body(1));
    CHECK(sent[2].body == binary_body(2));
    CHECK(path_of(sent[2]) == "/b");
    CHECK(v->pending_count() == 0);
    CHECK(probe.empty_overwrites == 0);
    (void)a;
    (void)b;
}

TEMPLATE_TEST_CASE("bodies in storage: a dead letter keeps its body, and a requeued one is sent whole",
                   "[vault][bodies][dead_letter]", BODY_STORAGES)
{
    rig<TestType> r;
    auto& probe = *r.storage.probe;
    auto v = r.make(false);
    const std::string id(v->post("/gone", raw(binary_body(7))).action_id());
    r.net.respond(410);
    v->connectivity().set_online(true);
    v->process_queue();
    REQUIRE(v->dead_letters().size() == 1);
    CHECK(v->dead_letters()[0].body == binary_body(7));
    v.reset();

    v = r.make();
    REQUIRE(v->dead_letters().size() == 1);
    CHECK(v->dead_letters()[0].body == binary_body(7));
    REQUIRE(v->requeue(id));
    const int before = probe.loads;
    CHECK(v->pending_actions().at(0).body == binary_body(7));
    CHECK(probe.loads == before + 1);  // the requeued action left memory once stored
    CHECK(v->process_queue() == 1);
    REQUIRE(r.net.requests().size() == 2);
    CHECK(r.net.requests()[1].body == binary_body(7));
    CHECK(probe.empty_overwrites == 0);
}

TEMPLATE_TEST_CASE("bodies in storage: a read that fails or throws leaves the queue intact, sent once storage recovers",
                   "[vault][bodies][storage_failure]", BODY_STORAGES)
{
    const bool throws = GENERATE(false, true);
    rig<TestType> r;
    auto& probe = *r.storage.probe;
    std::vector<syncvault::diagnostic> seen;
    r.cfg.on_diagnostic = [&](const syncvault::diagnostic& d) { seen.push_back(d); };
    auto v = r.make(false);
    const std::string id(v->post("/a", raw(binary_body(3))).action_id());
    v->post("/b", raw(binary_body(4)));

    (throws ? probe.raise : probe.fail) = true;
    v->connectivity().set_online(true);
    CHECK(v->process_queue() == 0);
    CHECK(v->poll().has_value());     // storage is tried again later
    CHECK(r.net.requests().empty());  // never sent without its body
    CHECK(v->pending_count() == 2);
    CHECK(v->status() == syncvault::sync_status::error);
    REQUIRE(!seen.empty());
    CHECK(seen.back().error == errc::storage_failed);
    // pending_actions() leaves out what it cannot read, and says so.
    CHECK(v->pending_actions().empty());

    probe.raise = probe.fail = false;
    auto listed = v->pending_actions();
    REQUIRE(listed.size() == 2);
    CHECK(listed[0].attempts == 0);  // the attempt was not made, nor counted
    r.clock.advance(1min);
    v->poll();
    REQUIRE(r.net.requests().size() == 2);
    CHECK(r.net.requests()[0].body == binary_body(3));
    CHECK(r.net.requests()[1].body == binary_body(4));
    CHECK(v->pending_count() == 0);
    CHECK(probe.empty_overwrites == 0);

    v.reset();  // and nothing was lost on the way
    v = r.make(false);
    CHECK(v->pending_count() == 0);
    (void)id;
}

TEMPLATE_TEST_CASE("bodies in storage: cancel and on_rejected see whole actions", "[vault][bodies][cancel]",
                   BODY_STORAGES)
{
    rig<TestType> r;
    auto& probe = *r.storage.probe;
    std::string rejected_body;
    r.cfg.on_rejected = [&](sync_action& a, const syncvault::http_response&) {
        rejected_body = a.body;
        a.body = binary_body(9);  // edited: the retry sends this, and storage keeps it
        return syncvault::rejection::retry;
    };
    auto v = r.make(false);
    const std::string cancelled(v->post("/c", raw(binary_body(5))).action_id());
    v->post("/r", raw(binary_body(6)));
    CHECK(v->cancel(cancelled));

    r.net.respond(422);
    v->connectivity().set_online(true);
    v->process_queue();
    CHECK(rejected_body == binary_body(6));
    v.reset();

    v = r.make();
    REQUIRE(v->pending_actions().size() == 1);
    CHECK(v->pending_actions()[0].body == binary_body(9));
    r.clock.advance(1min);
    v->poll();
    REQUIRE(r.net.requests().size() == 2);
    CHECK(r.net.requests()[0].body == binary_body(6));
    CHECK(r.net.requests()[1].body == binary_body(9));
    CHECK(probe.empty_overwrites == 0);
}

TEMPLATE_TEST_CASE("bodies in storage: max_pending_bytes counts bodies that left memory", "[vault][bodies][limits]",
                   BODY_STORAGES)
{
    rig<TestType> r;
    r.cfg.max_pending_bytes = 3 * 256;
    auto v = r.make(false);
    for (int i = 0; i < 3; ++i) CHECK(v->post("/a", raw(binary_body(i))).is_queued());
    CHECK(v->post("/a", raw(binary_body(3))).error() == errc::queue_full);
    v.reset();
    v = r.make(false);  // after a reopen too
    CHECK(v->post("/a", raw(binary_body(3))).error() == errc::queue_full);
    CHECK(v->post("/a", nullptr).is_queued());  // an empty body fits
    v->connectivity().set_online(true);
    r.net.respond(201);
    v->process_queue();
    CHECK(v->pending_count() == 0);
    CHECK_FALSE(v->post("/a", raw(binary_body(3))).error());
}

TEMPLATE_TEST_CASE("bodies in storage: coalescing and response_ref chains still work",
                   "[vault][bodies][coalesce][refs]", BODY_STORAGES)
{
    rig<TestType> r;
    auto& probe = *r.storage.probe;
    auto v = r.make(false);
    request_options doc;
    doc.coalesce_key = "doc/1";
    const std::string create(v->post("/items", json::object{{"title", "milk"}}).action_id());
    const auto put = v->put("/docs/1", json::object{{"a", 1}, {"b", 2}}, doc);
    v->post("/plain", raw(binary_body(1)));  // in between: its body leaves memory
    CHECK(v->patch("/docs/1", json::object{{"b", nullptr}, {"c", 3}}, doc).action_id() == put.action_id());
    request_options waits;
    auto edit =
        v->patch("/items/" + response_ref(create, "/id"), json::object{{"id", response_ref(create, "/id")}}, waits);
    REQUIRE(edit.is_queued());
    v.reset();

    v = r.make(false);  // a reopen between edits: coalescing still merges into the stored action
    CHECK(v->patch("/docs/1", json::object{{"d", 4}}, doc).action_id() == put.action_id());
    r.net.respond(201, {}, R"({"id":42})");
    v->connectivity().set_online(true);
    CHECK(v->process_queue() == 4);
    const auto sent = r.net.requests();
    REQUIRE(sent.size() == 4);
    CHECK(path_of(sent[0]) == "/items");
    CHECK(json::parse(sent[1].body) == json::parse(R"({"a":1,"c":3,"d":4})"));
    CHECK(sent[2].body == binary_body(1));
    CHECK(path_of(sent[3]) == "/items/42");
    CHECK(json::parse(sent[3].body) == json::parse(R"({"id":42})"));
    CHECK(probe.empty_overwrites == 0);
}

TEST_CASE("bodies over memory_storage stay in memory", "[vault][bodies]")
{
    rig<> r;
    auto v = r.make(false);
    v->post("/a", raw(binary_body(1)));
    CHECK(v->pending_actions().at(0).body == binary_body(1));
    CHECK(r.storage.shared.load_all().value().at(0).body == binary_body(1));
}

TEMPLATE_TEST_CASE("bodies in storage: concurrent producers, drainers and readers see whole bodies",
                   "[vault][bodies][thread]", BODY_STORAGES)
{
    rig<TestType> r;
    r.cfg.max_in_flight = 2;
    auto v = r.make(false);
    // A body is a function of its path, so any request or listed action can be checked alone.
    auto body_for = [](const std::string& path) {
        std::string s = path + ":";
        while (s.size() < 256) s.push_back(static_cast<char>(0x80 + s.size() % 100));
        return s;
    };
    constexpr int producers = 3, each = 40;
    std::atomic<int> bad_listed{0};
    std::atomic<bool> producing{true};
    syncvault_tests::latch start(producers + 3);
    std::vector<std::thread> threads;
    for (int p = 0; p < producers; ++p)
        threads.emplace_back([&, p] {
            request_options lane;
            lane.lane = "p" + std::to_string(p);  // lanes: transfers run side by side
            start.arrive_and_wait();
            for (int i = 0; i < each; ++i) {
                const auto path = "/p" + std::to_string(p) + "/" + std::to_string(i);
                (void)v->post(path, raw(body_for(path)), lane);
            }
        });
    for (int d = 0; d < 2; ++d)
        threads.emplace_back([&] {
            start.arrive_and_wait();
            while (producing) v->process_queue();
        });
    threads.emplace_back([&] {
        start.arrive_and_wait();
        while (producing)
            for (const auto& a : v->pending_actions())
                if (a.body != body_for(a.path)) ++bad_listed;
    });
    v->connectivity().set_online(true);
    for (int p = 0; p < producers; ++p) threads[std::size_t(p)].join();
    producing = false;
    for (auto& t : threads)
        if (t.joinable()) t.join();
    v->process_queue();
    CHECK(v->pending_count() == 0);
    CHECK(bad_listed == 0);
    std::set<std::string> delivered;
    for (const auto& req : r.net.requests()) {
        const auto path = path_of(req);
        CHECK(req.body == body_for(path));
        delivered.insert(path);
    }
    CHECK(delivered.size() == std::size_t(producers * each));
    CHECK(r.storage.probe->empty_overwrites == 0);
}

TEMPLATE_TEST_CASE("bodies in storage: a filled dependent whose saves fail keeps its filled body",
                   "[vault][bodies][refs][storage_failure]", BODY_STORAGES)
{
    rig<TestType> r;
    auto& probe = *r.storage.probe;
    auto v = r.make(false);
    const std::string create(v->post("/items", json::object{{"title", "milk"}}).action_id());
    auto edit = v->patch("/items/" + response_ref(create, "/id"), json::object{{"id", response_ref(create, "/id")}});
    REQUIRE(edit.is_queued());
    // From the parent's transfer on, storage refuses writes: the filled dependent cannot be
    // saved (storage keeps its placeholders), nor can its attempt count.
    r.net.on_send([&](const syncvault::http_request& req) {
        if (path_of(req) == "/items") probe.fail_saves = true;
    });
    r.net.respond(201, {}, R"({"id":42})");
    v->connectivity().set_online(true);
    v->process_queue();
    REQUIRE(r.net.requests().size() == 1);
    CHECK(v->pending_count() == 1);

    probe.fail_saves = false;
    r.clock.advance(1min);
    v->poll();
    REQUIRE(r.net.requests().size() == 2);
    CHECK(path_of(r.net.requests()[1]) == "/items/42");
    CHECK(json::parse(r.net.requests()[1].body) == json::parse(R"({"id":42})"));
    CHECK(v->pending_count() == 0);
    CHECK(probe.empty_overwrites == 0);
}
