// basic_vault's behaviour, driven by the fake clock and fake transport: no sleeps, no network.
// Tests that touch storage run over every shipped storage model (TEMPLATE_TEST_CASE), so a
// storage cannot pass its own laws yet break the vault.

#include "vault/vault_support.hpp"

#include <catch2/catch.hpp>

#include <boost/hana.hpp>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <future>
#include <map>
#include <regex>
#include <thread>

using namespace sv_test;
using syncvault::errc;
using syncvault::sync_status;

#include <syncvault/storage/file_journal.hpp>
#ifndef SYNCVAULT_TESTS_NO_SQLITE  // the MinGW build (tests/windows) has no SQLite
#include <syncvault/storage/sqlite_storage.hpp>
#endif

#include "storage/temp_dir.hpp"

// Every storage that ships, opened over the same place by each make() (a restart).
template <>
struct sv_test::storage_maker<syncvault::file_journal> {
    syncvault_tests::temp_dir dir{"vault-journal"};
    syncvault::file_journal open() { return syncvault::file_journal(dir.path(), syncvault::durability::none); }
};
#ifndef SYNCVAULT_TESTS_NO_SQLITE
template <>
struct sv_test::storage_maker<syncvault::sqlite_storage> {
    syncvault_tests::temp_dir dir{"vault-sqlite"};
    syncvault::sqlite_storage open() { return syncvault::sqlite_storage(dir / "syncvault.db"); }
};

#define VAULT_STORAGES syncvault::memory_storage, syncvault::file_journal, syncvault::sqlite_storage
#define VAULT_FILE_STORAGES syncvault::file_journal, syncvault::sqlite_storage
#else
#define VAULT_STORAGES syncvault::memory_storage, syncvault::file_journal
#define VAULT_FILE_STORAGES syncvault::file_journal
#endif

namespace {

struct job_done {
    BOOST_HANA_DEFINE_STRUCT(job_done, (int, id), (std::string, status));
};

std::string header_value(const syncvault::http_request& r, std::string_view name)
{
    auto v = syncvault::find_header(r.headers, name);
    return v ? std::string(*v) : std::string("<absent>");
}

} // namespace

// ---- the event lifecycle of each path ---------------------------------------------------------

TEMPLATE_TEST_CASE("immediate success: sent at once, queued-started-success", "[vault][lifecycle]", VAULT_STORAGES)
{
    rig<TestType> r;
    r.net.respond(201, {{"Content-Type", "application/json"}}, R"({"ok":true})");
    auto v = r.make();
    event_log log(*v);

    auto sent = v->post("/jobs", job_done{7, "DONE"}, {.idempotency_key = "job-7"});

    REQUIRE(sent.is_sent());
    CHECK_FALSE(sent.is_queued());
    CHECK(sent.response()->status == 201);
    CHECK_FALSE(sent.action_id().empty());
    CHECK(log.lifecycle() == lifecycle{"queued", "started:1", "success:1"});
    CHECK(log.last().response->body == R"({"ok":true})");
    CHECK(v->pending_count() == 0);

    auto requests = r.net.requests();
    REQUIRE(requests.size() == 1);
    CHECK(requests[0].method == syncvault::http_method::post);
    CHECK(requests[0].url == "http://api.test/v1/jobs");
    CHECK(header_value(requests[0], "Idempotency-Key") == "job-7");
    CHECK(header_value(requests[0], "Content-Type") == "application/json");
    CHECK(requests[0].body == R"({"id":7,"status":"DONE"})");
}

TEMPLATE_TEST_CASE("immediate 4xx: sent with the response, dead-lettered", "[vault][lifecycle]", VAULT_STORAGES)
{
    rig<TestType> r;
    std::vector<syncvault::sync_event> dead_callbacks;
    r.cfg.on_dead_letter = [&](const syncvault::sync_event& e) { dead_callbacks.push_back(e); };
    r.net.respond(422, {}, "bad job");
    auto v = r.make();
    event_log log(*v);

    auto sent = v->post("/jobs", boost::json::value{{"id", 1}});

    REQUIRE(sent.is_sent());
    CHECK(sent.response()->status == 422);
    CHECK(log.lifecycle() == lifecycle{"queued", "started:1", "dead_letter:1"});
    CHECK(log.last().is_permanent_failure());
    CHECK(log.last().response->body == "bad job");
    REQUIRE(v->dead_letters().size() == 1);
    CHECK(v->dead_letters()[0].id == sent.action_id());
    CHECK(v->dead_letters()[0].last_status == 422);
    REQUIRE(dead_callbacks.size() == 1);
    CHECK(dead_callbacks[0].action_id == sent.action_id());
    CHECK(v->pending_count() == 0);
}

TEMPLATE_TEST_CASE("offline then success: queued, replayed by poll when online", "[vault][lifecycle]", VAULT_STORAGES)
{
    rig<TestType> r;
    auto v = r.make(false);
    event_log log(*v);

    auto queued = v->put("/items/3", boost::json::value{{"done", true}});
    REQUIRE(queued.is_queued());
    CHECK(log.lifecycle() == lifecycle{"queued"});
    CHECK(r.net.request_count() == 0);
    CHECK(v->poll() == std::nullopt);  // offline, nothing scheduled until connectivity returns
    CHECK(r.net.request_count() == 0);

    v->connectivity().set_online(true);
    v->poll();

    CHECK(log.lifecycle() == lifecycle{"queued", "started:1", "success:1"});
    CHECK(r.net.requests().at(0).method == syncvault::http_method::put);
    CHECK(v->pending_count() == 0);
}

TEMPLATE_TEST_CASE("retries then dead letter after max_retries", "[vault][lifecycle][retry]", VAULT_STORAGES)
{
    rig<TestType> r;
    r.cfg.max_retries = 2;
    r.net.respond_by_default(503);
    auto v = r.make();
    event_log log(*v);

    auto first = v->post("/pay", boost::json::value{{"amount", 5}}, {.idempotency_key = "pay-1"});
    REQUIRE(first.is_queued());
    CHECK(log.lifecycle() == lifecycle{"queued", "started:1", "failed:1"});

    r.clock.advance(1s);  // retry 0: 1 s
    v->poll();
    r.clock.advance(2s);  // retry 1: 2 s
    v->poll();
    r.clock.advance(1h);
    v->poll();

    CHECK(log.lifecycle() == lifecycle{"queued", "started:1", "failed:1", "started:2", "failed:2", "started:3", "dead_letter:3"});
    CHECK(r.net.request_count() == 3);  // 1 + max_retries
    CHECK(log.last().error == errc::max_retries_exceeded);
    REQUIRE(log.last().response);
    CHECK(log.last().response->status == 503);
    for (const auto& req : r.net.requests()) CHECK(header_value(req, "Idempotency-Key") == "pay-1");
    REQUIRE(v->dead_letters().size() == 1);
    CHECK(v->dead_letters()[0].attempts == 3);
}

TEMPLATE_TEST_CASE("requeue starts a new lifecycle at the tail with attempts reset", "[vault][lifecycle][dead_letter]", VAULT_STORAGES)
{
    rig<TestType> r;
    r.net.respond(400);
    auto v = r.make();
    auto dead = v->post("/a", nullptr);
    REQUIRE(v->dead_letters().size() == 1);
    v->connectivity().set_online(false);
    auto later = v->post("/b", nullptr);
    event_log log(*v);

    REQUIRE(v->requeue(dead.action_id()));
    CHECK_FALSE(v->requeue(dead.action_id()));  // no longer a dead letter
    CHECK(v->dead_letters().empty());
    auto pending = v->pending_actions();
    REQUIRE(pending.size() == 2);
    CHECK(pending[0].id == later.action_id());  // requeued goes to the tail
    CHECK(pending[1].id == dead.action_id());
    CHECK(pending[1].attempts == 0);

    v->connectivity().set_online(true);
    CHECK(v->process_queue() == 2);
    CHECK(log.lifecycle(dead.action_id()) == lifecycle{"queued", "started:1", "success:1"});
    auto requests = r.net.requests();
    REQUIRE(requests.size() == 3);
    CHECK(requests[1].url == "http://api.test/v1/b");
    CHECK(requests[2].url == "http://api.test/v1/a");
}

TEST_CASE("drop_dead_letter forgets it, unknown ids are refused", "[vault][dead_letter]")
{
    rig<> r;
    r.net.respond(404);
    auto v = r.make();
    auto dead = v->delete_("/x");
    REQUIRE(v->dead_letters().size() == 1);
    CHECK_FALSE(v->drop_dead_letter("nope"));
    CHECK_FALSE(v->requeue("nope"));
    CHECK(v->drop_dead_letter(dead.action_id()));
    CHECK(v->dead_letters().empty());
    CHECK(r.storage.shared.count() == 0);
}

TEST_CASE("the dead-letter list is bounded, oldest dropped first", "[vault][dead_letter]")
{
    rig<> r;
    r.cfg.max_dead_letters = 2;
    r.net.respond_by_default(400);
    auto v = r.make();
    auto a = v->post("/a", nullptr), b = v->post("/b", nullptr), c = v->post("/c", nullptr);
    auto dead = v->dead_letters();
    REQUIRE(dead.size() == 2);
    CHECK(dead[0].id == b.action_id());
    CHECK(dead[1].id == c.action_id());
    CHECK(r.storage.shared.count() == 2);
}

// ---- the retry table --------------------------------------------------------------------------

TEST_CASE("retry table: every row", "[vault][retry]")
{
    struct row {
        std::optional<int> status;
        errc error;
        syncvault::sync_event_status expected;
    };
    using S = syncvault::sync_event_status;
    const std::vector<row> rows = {
        {200, {}, S::success}, {201, {}, S::success}, {204, {}, S::success}, {299, {}, S::success},
        {408, {}, S::failed},  {429, {}, S::failed},  {500, {}, S::failed},  {502, {}, S::failed},
        {503, {}, S::failed},  {504, {}, S::failed},  {599, {}, S::failed},
        {std::nullopt, errc::timeout, S::failed}, {std::nullopt, errc::connection_failed, S::failed},
        // 401 is neither (SPEC 9.3): `failed`, not counted, the vault pauses ([auth] tests).
        {401, {}, S::failed},      {400, {}, S::dead_letter}, {403, {}, S::dead_letter},
        {404, {}, S::dead_letter}, {409, {}, S::dead_letter}, {422, {}, S::dead_letter},
        {100, {}, S::dead_letter}, {101, {}, S::dead_letter}, {301, {}, S::dead_letter},
        {302, {}, S::dead_letter}, {304, {}, S::dead_letter}, {307, {}, S::dead_letter},
        {600, {}, S::dead_letter},
    };
    for (const auto& [status, error, expected] : rows) {
        CAPTURE(status.value_or(0), static_cast<int>(error));
        rig<> r;
        if (status) r.net.respond(*status);
        else r.net.fail(error);
        auto v = r.make();
        event_log log(*v);
        auto result = v->post("/x", nullptr);
        CHECK(log.last().status == expected);
        CHECK(result.is_queued() == (expected == S::failed));
        CHECK(result.is_sent() == (expected != S::failed));
        CHECK(v->pending_count() == (expected == S::failed ? 1u : 0u));
        CHECK(v->dead_letters().size() == (expected == S::dead_letter ? 1u : 0u));
        if (!status) CHECK(log.last().error == error);
    }
}

TEST_CASE("backoff: next attempt follows the retry policy, poll says when", "[vault][retry]")
{
    rig<> r;
    r.cfg.max_retries = 5;
    r.net.respond(500).respond(500).respond(500);
    auto v = r.make();
    const auto start = r.clock.now();
    v->post("/x", nullptr);
    CHECK(v->pending_actions().at(0).next_attempt_at == start + 1s);
    CHECK(v->poll() == start + 1s);
    r.clock.advance(999ms);
    CHECK(v->poll() == start + 1s);  // not due yet: nothing sent
    CHECK(r.net.request_count() == 1);
    r.clock.advance(1ms);
    CHECK(v->poll() == r.clock.now() + 2s);  // second attempt failed: 2 s more
    CHECK(r.net.request_count() == 2);
    r.clock.advance(2s);
    CHECK(v->poll() == r.clock.now() + 4s);
    r.clock.advance(4s);
    CHECK(v->poll() == std::nullopt);  // succeeded: nothing left
    CHECK(r.net.request_count() == 4);
}

TEST_CASE("Retry-After in seconds on 429 sets the delay", "[vault][retry][retry_after]")
{
    rig<> r;
    r.net.respond(429, {{"Retry-After", "45"}});
    auto v = r.make();
    v->post("/x", nullptr);
    const auto due = r.clock.now() + 45s;
    CHECK(v->pending_actions().at(0).next_attempt_at == due);
    r.clock.advance(44s);
    v->poll();
    CHECK(r.net.request_count() == 1);
    r.clock.advance(1s);
    v->poll();
    CHECK(r.net.request_count() == 2);
    CHECK(v->pending_count() == 0);
}

TEST_CASE("Retry-After as an HTTP date on 503", "[vault][retry][retry_after]")
{
    rig<> r;  // fake clock starts at Thu, 01 Jan 2026 00:00:00 GMT
    r.net.respond(503, {{"retry-after", "Thu, 01 Jan 2026 00:00:30 GMT"}});
    auto v = r.make();
    v->post("/x", nullptr);
    CHECK(v->pending_actions().at(0).next_attempt_at == fake_clock::epoch() + 30s);
}

TEST_CASE("Retry-After is capped by the policy's maximum and ignored on other statuses", "[vault][retry][retry_after]")
{
    rig<> r;
    r.net.respond(429, {{"Retry-After", "100000"}}).respond(500, {{"Retry-After", "50"}});
    auto v = r.make();
    v->post("/x", nullptr);
    CHECK(v->pending_actions().at(0).next_attempt_at == r.clock.now() + 60s);  // cap
    r.clock.advance(60s);
    v->poll();
    CHECK(v->pending_actions().at(0).next_attempt_at == r.clock.now() + 2s);  // backoff, not 50 s
}

// ---- ordering ---------------------------------------------------------------------------------

TEST_CASE("strict FIFO: while the head backs off, the actions behind it wait", "[vault][order]")
{
    rig<> r;
    r.net.respond(503);
    auto v = r.make();
    auto a = v->post("/a", nullptr);
    REQUIRE(a.is_queued());
    auto b = v->post("/b", nullptr);  // online, but an earlier action waits: queued, not sent
    auto c = v->post("/c", nullptr);
    CHECK(b.is_queued());
    CHECK(c.is_queued());
    CHECK(r.net.request_count() == 1);

    v->poll();  // head not due: nobody goes
    CHECK(r.net.request_count() == 1);

    r.clock.advance(1s);
    v->poll();
    auto requests = r.net.requests();
    REQUIRE(requests.size() == 4);
    CHECK(requests[1].url.ends_with("/a"));
    CHECK(requests[2].url.ends_with("/b"));
    CHECK(requests[3].url.ends_with("/c"));
}

TEST_CASE("process_queue ignores timers, stops at a retryable failure, goes on past a permanent one", "[vault][process_queue]")
{
    rig<> r;
    auto v = r.make(false);
    for (auto p : {"/1", "/2", "/3", "/4"}) v->post(p, nullptr);
    CHECK(v->process_queue() == 0);  // offline: nothing, at once
    CHECK(r.net.request_count() == 0);

    v->connectivity().set_online(true);
    r.net.respond(200).respond(400).respond(503);
    CHECK(v->process_queue() == 1);  // /1 ok, /2 dead, /3 retry: stop
    CHECK(r.net.request_count() == 3);
    CHECK(v->pending_count() == 2);
    CHECK(v->dead_letters().size() == 1);

    CHECK(v->process_queue() == 2);  // backoff timer ignored
    CHECK(v->pending_count() == 0);
}

// ---- idempotency ------------------------------------------------------------------------------

TEST_CASE("a key equal to a pending action's key is not queued again", "[vault][idempotency]")
{
    rig<> r;
    auto v = r.make(false);
    event_log log(*v);
    auto first = v->post("/pay", boost::json::value{{"n", 1}}, {.idempotency_key = "order-9"});
    auto again = v->post("/pay", boost::json::value{{"n", 1}}, {.idempotency_key = "order-9"});
    CHECK(again.is_queued());
    CHECK(again.action_id() == first.action_id());
    CHECK(v->pending_count() == 1);
    CHECK(log.lifecycle() == lifecycle{"queued"});

    v->connectivity().set_online(true);
    v->poll();
    CHECK(r.net.request_count() == 1);
    // Once delivered, the key is free again: a new request makes a new action.
    auto third = v->post("/pay", nullptr, {.idempotency_key = "order-9"});
    CHECK(third.is_sent());
    CHECK(third.action_id() != first.action_id());
}

TEST_CASE("a generated key is a UUIDv4, sent on every attempt and kept across restarts", "[vault][idempotency]")
{
    rig<> r;
    r.net.respond(500);
    auto v = r.make();
    v->post("/x", nullptr);
    const auto key = v->pending_actions().at(0).idempotency_key;
    CHECK(std::regex_match(key, std::regex("[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")));
    v.reset();
    v = r.make();
    r.clock.advance(1s);
    v->poll();
    auto requests = r.net.requests();
    REQUIRE(requests.size() == 2);
    CHECK(header_value(requests[0], "Idempotency-Key") == key);
    CHECK(header_value(requests[1], "Idempotency-Key") == key);
}

TEST_CASE("the key header name is configurable, a key given as a header is used as the key", "[vault][idempotency]")
{
    rig<> r;
    r.cfg.idempotency_header = "X-Request-Id";
    auto v = r.make();
    v->post("/x", nullptr, {.headers = {{"x-request-id", "abc"}}});
    auto req = r.net.requests().at(0);
    CHECK(header_value(req, "X-Request-Id") == "abc");
    CHECK(header_value(req, "Idempotency-Key") == "<absent>");
    CHECK(std::count_if(req.headers.begin(), req.headers.end(),
                        [](auto& h) { return syncvault::header_name_equals(h.name, "x-request-id"); }) == 1);
}

// ---- status -----------------------------------------------------------------------------------

TEST_CASE("status: current value on subscribe, each change once", "[vault][status]")
{
    rig<> r;
    auto v = r.make(false);
    std::vector<sync_status> seen;
    auto sub = v->on_status([&](sync_status s) { seen.push_back(s); });
    CHECK(seen == std::vector{sync_status::synced});

    v->post("/a", nullptr);
    v->post("/b", nullptr);
    CHECK(v->status() == sync_status::pending);
    v->connectivity().set_online(true);
    r.net.respond(500);
    v->poll();  // fails: error
    CHECK(v->status() == sync_status::error);
    r.clock.advance(1s);
    v->poll();  // both succeed
    CHECK(v->status() == sync_status::synced);
    CHECK(seen == std::vector{sync_status::synced, sync_status::pending, sync_status::syncing, sync_status::error,
                              sync_status::syncing, sync_status::pending, sync_status::syncing, sync_status::synced});
}

TEST_CASE("status: error stays until a success or clear_queue", "[vault][status]")
{
    rig<> r;
    r.net.respond(503);
    auto v = r.make();
    v->post("/a", nullptr);
    CHECK(v->status() == sync_status::error);
    v->connectivity().set_online(false);
    v->post("/b", nullptr);
    CHECK(v->status() == sync_status::error);
    v->clear_queue();
    CHECK(v->status() == sync_status::synced);
    CHECK(v->pending_count() == 0);
}

TEST_CASE("status is syncing while a transfer runs", "[vault][status]")
{
    rig<> r;
    auto v = r.make();
    sync_status during{};
    r.net.on_send([&](const syncvault::http_request&) { during = v->status(); });
    v->post("/a", nullptr);
    CHECK(during == sync_status::syncing);
}

// ---- restarts ---------------------------------------------------------------------------------

TEMPLATE_TEST_CASE("attempts and next-attempt time survive a restart, no second queued event", "[vault][restart]", VAULT_STORAGES)
{
    rig<TestType> r;
    r.net.respond(503).respond(503);
    auto v = r.make();
    auto a = v->post("/a", boost::json::value{{"x", 1}});
    const auto before = v->pending_actions().at(0);
    CHECK(before.attempts == 1);
    v.reset();

    v = r.make();
    event_log log(*v);
    auto after = v->pending_actions();
    REQUIRE(after.size() == 1);
    CHECK(after[0].id == a.action_id());
    CHECK(after[0].attempts == 1);
    CHECK(after[0].next_attempt_at == before.next_attempt_at);
    CHECK(after[0].body == before.body);
    CHECK(v->poll() == before.next_attempt_at);

    r.clock.advance(1s);
    v->poll();  // attempt 2 fails: 2 s
    r.clock.advance(2s);
    v->poll();
    CHECK(log.lifecycle() == lifecycle{"started:2", "failed:2", "started:3", "success:3"});
}

TEMPLATE_TEST_CASE("dead letters survive a restart", "[vault][restart][dead_letter]", VAULT_STORAGES)
{
    rig<TestType> r;
    r.net.respond(410);
    auto v = r.make();
    auto dead = v->post("/gone", nullptr);
    v.reset();
    v = r.make();
    REQUIRE(v->dead_letters().size() == 1);
    CHECK(v->dead_letters()[0].id == dead.action_id());
    CHECK(v->pending_count() == 0);
    CHECK(v->requeue(dead.action_id()));
    v.reset();
    v = r.make();
    CHECK(v->dead_letters().empty());
    CHECK(v->pending_count() == 1);
}

TEST_CASE("a next-attempt time beyond the cap (the clock jumped back) is clamped on load", "[vault][restart]")
{
    rig<> r;
    r.net.respond(503);
    auto v = r.make();
    v->post("/a", nullptr);
    v.reset();
    r.clock.set(fake_clock::epoch() - 24h);
    v = r.make();
    CHECK(v->pending_actions().at(0).next_attempt_at == r.clock.now() + 60s);
}

// ---- bad input: clear errors, queue unchanged ---------------------------------------------------

TEST_CASE("max_pending: queue_full, queue unchanged", "[vault][limits]")
{
    rig<> r;
    r.cfg.max_pending = 2;
    auto v = r.make(false);
    v->post("/a", nullptr);
    v->post("/b", nullptr);
    const auto before = v->pending_actions();
    auto full = v->post("/c", nullptr);
    CHECK(full.error() == errc::queue_full);
    CHECK_FALSE(full.is_queued());
    CHECK(v->pending_actions() == before);
    CHECK(r.storage.shared.count() == 2);
}

TEST_CASE("max_body_bytes: payload_too_large, measured serialized, queue unchanged", "[vault][limits]")
{
    rig<> r;
    r.cfg.max_body_bytes = 16;
    auto v = r.make(false);
    CHECK(v->post("/a", boost::json::value{{"k", "123456"}}).is_queued());  // {"k":"123456"}: 14 bytes
    auto big = v->post("/b", boost::json::value{{"k", "12345678901"}});
    CHECK(big.error() == errc::payload_too_large);
    CHECK(v->post("/c", syncvault::raw_body{std::string(17, 'x'), "text/plain"}).error() == errc::payload_too_large);
    CHECK(v->pending_count() == 1);
}

TEST_CASE("CR, LF and NUL in header names and values are rejected", "[vault][limits][headers]")
{
    rig<> r;
    auto v = r.make();
    const std::vector<syncvault::header> bad = {
        {"X-A", "one\r\ntwo"}, {"X-A", "line\n"}, {"X-A", std::string("n\0ul", 4)},
        {"X-\rA", "v"}, {"X-A\n", "v"}, {std::string("X\0A", 3), "v"}, {"", "v"}, {"Bad Name", "v"},
    };
    for (const auto& h : bad) {
        CAPTURE(h.name, h.value);
        CHECK(v->post("/x", nullptr, {.headers = {h}}).error() == errc::invalid_request);
        CHECK(v->get("/x", {.headers = {h}}).error() == errc::invalid_request);
    }
    CHECK(r.net.request_count() == 0);
    CHECK(v->pending_count() == 0);
}

TEST_CASE("paths that escape base_url are rejected", "[vault][limits][path]")
{
    rig<> r;
    auto v = r.make();
    for (const char* path : {"//evil.example/x", "http://evil.example/x", "https:x", "/../x", "/a/../../x",
                             "/a/%2e%2e/b", "/a/%2E%2e/b", "/a/.%2e/b", "/a/%252e%252e/b", "/a/..%2fb",
                             "/a/..%5cb", "/a\\..\\b", "/a b", "/a\r\nHost: x", "/a#frag", "/a/%zz"}) {
        CAPTURE(path);
        CHECK(v->post(path, nullptr).error() == errc::invalid_request);
        CHECK(v->get(path).error() == errc::invalid_request);
    }
    CHECK(r.net.request_count() == 0);
    CHECK(v->pending_count() == 0);

    CHECK(v->post("jobs", nullptr).is_sent());
    CHECK(v->post("/jobs/7?verbose=1", nullptr).is_sent());
    CHECK(v->post("/a/..b/c", nullptr).is_sent());  // "..b" is a name, not a parent step
    auto requests = r.net.requests();
    CHECK(requests[0].url == "http://api.test/v1/jobs");
    CHECK(requests[1].url == "http://api.test/v1/jobs/7?verbose=1");
}

TEST_CASE("idempotency keys: empty generates, too long or control characters are rejected", "[vault][limits][idempotency]")
{
    rig<> r;
    auto v = r.make(false);
    CHECK(v->post("/x", nullptr, {.idempotency_key = std::string(256, 'k')}).error() == errc::invalid_request);
    CHECK(v->post("/x", nullptr, {.idempotency_key = "a\nb"}).error() == errc::invalid_request);
    CHECK(v->post("/x", nullptr, {.idempotency_key = "a b"}).error() == errc::invalid_request);
    CHECK(v->pending_count() == 0);
    CHECK(v->post("/x", nullptr, {.idempotency_key = std::string(255, 'k')}).is_queued());
}

TEST_CASE("bodies: invalid UTF-8 in JSON is rejected, raw bytes are kept intact", "[vault][body]")
{
    rig<> r;
    auto v = r.make(false);
    CHECK(v->post("/x", boost::json::value{{"s", "\xff\xfe"}}).error() == errc::invalid_request);
    std::string bytes;
    for (int i = 0; i < 256; ++i) bytes += char(i);
    auto raw = v->post("/blob", syncvault::raw_body{bytes, "application/octet-stream"});
    REQUIRE(raw.is_queued());
    v->connectivity().set_online(true);
    v->poll();
    auto req = r.net.requests().at(0);
    CHECK(req.body == bytes);
    CHECK(header_value(req, "Content-Type") == "application/octet-stream");
}

TEST_CASE("invalid config throws at construction naming the field", "[vault][config]")
{
    auto build = [](syncvault::vault_config cfg) {
        fake_vault<> v(std::move(cfg), fake_transport{}, syncvault::memory_storage{}, syncvault::manual_connectivity{},
                       exact_backoff(), fake_clock{});
    };
    auto with = [](auto change) {
        auto cfg = test_config();
        change(cfg);
        return cfg;
    };
    CHECK_THROWS_WITH(build(with([](auto& c) { c.base_url = ""; })), Catch::Contains("base_url"));
    CHECK_THROWS_WITH(build(with([](auto& c) { c.base_url = "not a url"; })), Catch::Contains("base_url"));
    CHECK_THROWS_WITH(build(with([](auto& c) { c.base_url = "ftp://h/x"; })), Catch::Contains("base_url"));
    CHECK_THROWS_WITH(build(with([](auto& c) { c.base_url = "http://h/x?q=1"; })), Catch::Contains("base_url"));
    CHECK_THROWS_WITH(build(with([](auto& c) { c.max_retries = -1; })), Catch::Contains("max_retries"));
    CHECK_THROWS_WITH(build(with([](auto& c) { c.max_pending = 0; })), Catch::Contains("max_pending"));
    CHECK_THROWS_WITH(build(with([](auto& c) { c.idempotency_header = "Bad Header"; })),
                      Catch::Contains("idempotency_header"));
    CHECK_THROWS_WITH(build(with([](auto& c) { c.connect_timeout = -1s; })), Catch::Contains("connect_timeout"));
    CHECK_NOTHROW(build(test_config()));
}

// ---- GET and HEAD -----------------------------------------------------------------------------

TEST_CASE("GET/HEAD: sent when online, not actions, fail fast offline unless asked to queue", "[vault][get]")
{
    rig<> r;
    r.net.respond(200, {}, "[1,2]");
    auto v = r.make();
    event_log log(*v);
    auto got = v->get("/items");
    REQUIRE(got.is_sent());
    CHECK(got.response()->body == "[1,2]");
    CHECK(got.action_id().empty());
    CHECK(log.lifecycle().empty());

    v->connectivity().set_online(false);
    CHECK(v->head("/items").error() == errc::offline);
    CHECK(r.net.request_count() == 1);
    auto queued = v->get("/items", {.queue_if_offline = true});
    CHECK(queued.is_queued());
    CHECK(log.lifecycle() == lifecycle{"queued"});
    v->connectivity().set_online(true);
    v->poll();
    CHECK(r.net.requests().at(1).method == syncvault::http_method::get);
    CHECK(log.lifecycle() == lifecycle{"queued", "started:1", "success:1"});
}

// ---- secrets ----------------------------------------------------------------------------------

TEST_CASE("sensitive headers are sent but never stored, before_send refreshes a token per attempt", "[vault][secrets]")
{
    rig<> r;
    int token = 0;
    r.cfg.before_send = [&](syncvault::http_request& req) {
        std::erase_if(req.headers, [](auto& h) { return syncvault::header_name_equals(h.name, "Authorization"); });
        req.headers.push_back({"Authorization", "Bearer t" + std::to_string(++token)});
    };
    r.net.respond(503);
    auto v = r.make();
    v->post("/x", nullptr, {.headers = {{"Authorization", "Bearer stale"}, {"Cookie", "c=1"}, {"X-Trace", "7"}}});

    auto stored = r.storage.shared.load_all().value().at(0);
    CHECK_FALSE(syncvault::find_header(stored.headers, "Authorization"));
    CHECK_FALSE(syncvault::find_header(stored.headers, "Cookie"));
    CHECK(syncvault::find_header(stored.headers, "X-Trace") == "7");

    r.clock.advance(1s);
    v->poll();
    auto requests = r.net.requests();
    REQUIRE(requests.size() == 2);
    CHECK(header_value(requests[0], "Authorization") == "Bearer t1");
    CHECK(header_value(requests[1], "Authorization") == "Bearer t2");
    CHECK(header_value(requests[1], "Cookie") == "c=1");  // this process still has it
}

TEST_CASE("after a restart only before_send can supply sensitive headers", "[vault][secrets][restart]")
{
    rig<> r;
    r.net.respond(503);
    auto v = r.make();
    v->post("/x", nullptr, {.headers = {{"Cookie", "c=1"}}});
    v.reset();
    v = r.make();
    r.clock.advance(1s);
    v->poll();
    CHECK(header_value(r.net.requests().at(1), "Cookie") == "<absent>");
}

// ---- write-ahead --------------------------------------------------------------------------------

TEST_CASE("write-ahead: durable before the first attempt, off: stored only if it must wait", "[vault][write_ahead]")
{
    for (bool write_ahead : {true, false}) {
        CAPTURE(write_ahead);
        rig<> r;
        r.cfg.write_ahead = write_ahead;
        std::size_t stored_during_send = 99;
        r.net.on_send([&](const syncvault::http_request&) { stored_during_send = r.storage.shared.count(); });
        r.net.respond(200).respond(503);
        auto v = r.make();
        CHECK(v->post("/a", nullptr).is_sent());
        CHECK(stored_during_send == (write_ahead ? 1u : 0u));
        CHECK(v->post("/b", nullptr).is_queued());
        CHECK(r.storage.shared.count() == 1);  // /b must wait, so it is stored either way
    }
}

// ---- expiry -------------------------------------------------------------------------------------

TEST_CASE("an action older than the key lifetime is dead-lettered, not replayed", "[vault][expiry]")
{
    rig<> r;
    r.cfg.idempotency_key_lifetime = 24h;
    auto v = r.make(false);
    event_log log(*v);
    v->post("/old", nullptr);
    r.clock.advance(25h);
    v->connectivity().set_online(true);
    v->poll();
    CHECK(r.net.request_count() == 0);
    CHECK(log.lifecycle() == lifecycle{"queued", "dead_letter:0"});
    CHECK(log.last().error == errc::key_expired);
    CHECK(v->dead_letters().size() == 1);
}

// ---- event filters and dispatch ---------------------------------------------------------------

TEST_CASE("events_for and events_for_key filter, subscriptions end when destroyed", "[vault][events]")
{
    rig<> r;
    auto v = r.make(false);
    std::vector<std::string> by_id, by_key;
    auto a = v->post("/a", nullptr, {.idempotency_key = "ka"});
    auto s1 = v->events_for(a.action_id(), [&](auto& e) { by_id.push_back(describe(e)); });
    auto s2 = v->events_for_key("kb", [&](auto& e) { by_key.push_back(describe(e)); });
    v->post("/b", nullptr, {.idempotency_key = "kb"});
    v->connectivity().set_online(true);
    v->poll();
    CHECK(by_id == lifecycle{"started:1", "success:1"});
    CHECK(by_key == lifecycle{"queued", "started:1", "success:1"});

    s1.reset();
    s2 = {};
    v->connectivity().set_online(false);
    v->post("/c", nullptr, {.idempotency_key = "kb"});
    CHECK(by_key.size() == 3);
}

TEST_CASE("dispatch receives every callback, in order", "[vault][events][dispatch]")
{
    rig<> r;
    std::vector<std::function<void()>> posted;
    r.cfg.dispatch = [&](std::function<void()> fn) { posted.push_back(std::move(fn)); };
    auto v = r.make();
    std::vector<std::string> seen;
    auto sub = v->on_event([&](auto& e) { seen.push_back(describe(e)); });
    v->post("/a", nullptr);
    CHECK(seen.empty());  // nothing ran on this thread
    for (auto& fn : posted) fn();
    CHECK(seen == lifecycle{"queued", "started:1", "success:1"});
}

// ---- re-entrancy and threads ------------------------------------------------------------------

TEST_CASE("a callback that calls back into the vault does not deadlock", "[vault][events][reentrancy]")
{
    rig<> r;
    auto v = r.make(false);
    std::vector<std::size_t> counts;
    std::size_t nested_drain = 99;
    bool posted_follow_up = false;
    auto sub = v->on_event([&](const syncvault::sync_event& e) {
        counts.push_back(v->pending_count());
        (void)v->status();
        (void)v->pending_actions();
        if (e.is_success() && !posted_follow_up) {
            posted_follow_up = true;
            nested_drain = v->process_queue();  // a drain is running: returns 0 at once
            v->post("/follow-up", nullptr);
        }
    });
    auto status_sub = v->on_status([&](sync_status) { (void)v->dead_letters(); });
    v->post("/a", nullptr);
    v->connectivity().set_online(true);
    v->poll();
    CHECK(nested_drain == 0);
    CHECK(posted_follow_up);
    v->poll();
    CHECK(r.net.request_count() == 2);
    CHECK(v->pending_count() == 0);
}

TEST_CASE("a subscription destroyed from inside its own callback", "[vault][events][reentrancy]")
{
    rig<> r;
    auto v = r.make();
    int calls = 0;
    syncvault::subscription sub;
    sub = v->on_event([&](const syncvault::sync_event&) {
        ++calls;
        sub.reset();
    });
    v->post("/a", nullptr);
    CHECK(calls == 1);
}

TEST_CASE("two threads calling process_queue never send one action twice", "[vault][thread]")
{
    rig<> r;
    r.cfg.max_pending = 1000;
    auto v = r.make(false);
    constexpr int n = 300;
    for (int i = 0; i < n; ++i) v->post("/x/" + std::to_string(i), nullptr, {.idempotency_key = "k" + std::to_string(i)});
    v->connectivity().set_online(true);
    r.net.respond(503).respond(500);  // a couple of failures on the way

    std::atomic<std::size_t> successes{0};
    auto drain = [&] {
        while (v->pending_count() > 0) successes += v->process_queue();
    };
    std::thread t1(drain), t2(drain);
    std::thread poster([&] {
        for (int i = n; i < n + 50; ++i) v->post("/x/" + std::to_string(i), nullptr, {.idempotency_key = "k" + std::to_string(i)});
    });
    t1.join();
    t2.join();
    poster.join();
    while (v->pending_count() > 0) successes += v->process_queue();

    CHECK(r.net.max_concurrent_sends() == 1);
    std::map<std::string, int> sends_per_key;
    std::vector<int> order;
    for (const auto& req : r.net.requests()) ++sends_per_key[header_value(req, "Idempotency-Key")];
    CHECK(sends_per_key.size() == std::size_t(n + 50));
    int duplicates = 0;
    for (auto& [key, count] : sends_per_key) duplicates += count - 1;
    CHECK(duplicates == 2);  // exactly the two scripted failures were re-sent
}

TEST_CASE("a post while another transfer is in flight is queued at once, not blocked", "[vault][thread]")
{
    rig<> r;
    auto v = r.make();
    std::promise<void> in_flight, release;
    auto released = release.get_future().share();
    r.net.on_send([&, released](const syncvault::http_request& req) {
        if (req.url.ends_with("/slow")) {
            in_flight.set_value();
            released.wait();
        }
    });
    auto slow = std::async(std::launch::async, [&] { return v->post("/slow", nullptr); });
    in_flight.get_future().wait();

    auto quick = v->post("/quick", nullptr);  // must not wait for /slow's transfer
    CHECK(quick.is_queued());
    CHECK(v->status() == sync_status::syncing);
    release.set_value();
    CHECK(slow.get().is_sent());
    v->poll();
    CHECK(v->pending_count() == 0);
    auto requests = r.net.requests();
    REQUIRE(requests.size() == 2);
    CHECK(requests[1].url.ends_with("/quick"));
}

// ---- plugging in a user's own transport -------------------------------------------------------

namespace {
/** A transport written as a user would: no fakes of ours, just the concept's one function. */
struct echo_transport {
    std::vector<std::string> seen;
    syncvault::result<syncvault::http_response> send(const syncvault::http_request& r)
    {
        seen.push_back(std::string(syncvault::to_string(r.method)) + " " + r.url);
        if (r.url.ends_with("/down")) return syncvault::errc::connection_failed;
        return syncvault::http_response{200, {{"X-Echo", r.body}}, r.body};
    }
};
} // namespace

TEST_CASE("a user-written transport plugs in", "[vault][custom]")
{
    syncvault::basic_vault<echo_transport, syncvault::memory_storage, syncvault::manual_connectivity,
                           syncvault::jittered_backoff, fake_clock>
        v{test_config()};
    auto sent = v.post("/echo", job_done{1, "x"});
    REQUIRE(sent.is_sent());
    auto echoed = syncvault::body_as<job_done>(*sent.response());
    REQUIRE(echoed.has_value());
    CHECK(echoed->id == 1);
    CHECK(echoed->status == "x");
    CHECK(v.post("/down", nullptr).is_queued());
    CHECK(v.transport().seen == std::vector<std::string>{"POST http://api.test/v1/echo", "POST http://api.test/v1/down"});
}

// ---- secrets on disk --------------------------------------------------------------------------

namespace {
std::string read_all_files(const std::filesystem::path& dir)
{
    std::string bytes;
    for (const auto& entry : std::filesystem::recursive_directory_iterator(dir)) {
        if (!entry.is_regular_file()) continue;
        std::ifstream in(entry.path(), std::ios::binary);
        bytes.append(std::istreambuf_iterator<char>(in), {});
    }
    return bytes;
}
} // namespace

TEMPLATE_TEST_CASE("no sensitive header reaches the storage files, which are 0600", "[vault][secrets][files]",
                   VAULT_FILE_STORAGES)
{
    rig<TestType> r;
    r.cfg.sensitive_headers.push_back("X-Api-Key");
    r.net.respond(503);
    auto v = r.make();
    v->post("/pay", boost::json::value{{"amount", 5}},
            {.headers = {{"Authorization", "Bearer SECRET-TOKEN-123"}, {"cookie", "session=SECRET-COOKIE-456"},
                         {"X-Api-Key", "SECRET-KEY-789"}, {"X-Trace", "visible-marker"}}});
    r.net.respond(400);
    r.clock.advance(1s);
    v->poll();  // an update and a dead letter written too
    REQUIRE(v->dead_letters().size() == 1);
    v->storage().flush();

    const auto bytes = read_all_files(r.storage.dir.path());
    CHECK(bytes.find("visible-marker") != std::string::npos);  // the reader sees what is stored
    CHECK(bytes.find("SECRET-TOKEN-123") == std::string::npos);
    CHECK(bytes.find("SECRET-COOKIE-456") == std::string::npos);
    CHECK(bytes.find("SECRET-KEY-789") == std::string::npos);
    // ...while every attempt did carry them.
    for (const auto& req : r.net.requests()) CHECK(header_value(req, "Authorization") == "Bearer SECRET-TOKEN-123");

#ifndef _WIN32  // std::filesystem shows no ACL; tests/windows checks the owner-only DACL
    for (const auto& entry : std::filesystem::recursive_directory_iterator(r.storage.dir.path())) {
        if (!entry.is_regular_file()) continue;
        CAPTURE(entry.path().string());
        const auto perms = entry.status().permissions();
        CHECK((perms & (std::filesystem::perms::group_all | std::filesystem::perms::others_all)) ==
              std::filesystem::perms::none);
    }
#endif
}

// ---- a probing connectivity -------------------------------------------------------------------

namespace {
/** Goes offline on a network failure; probes once a second while offline (tick) and finds the
 *  network back when `reachable` says so. Like polling_connectivity, without sockets. */
struct probe_connectivity {
    bool online = true;
    bool reachable = true;
    std::optional<std::chrono::system_clock::time_point> next_probe;
    bool is_online() const { return online; }
    void report(bool ok)
    {
        online = ok;
        if (!ok) next_probe.reset();
    }
    std::optional<std::chrono::system_clock::time_point> tick(std::chrono::system_clock::time_point now)
    {
        if (online) return std::nullopt;
        if (next_probe && now >= *next_probe) online = reachable;
        if (online) return std::nullopt;
        if (!next_probe || now >= *next_probe) next_probe = now + 1s;
        return next_probe;
    }
};
} // namespace

TEST_CASE("poll schedules the probe when a failure during the drain turns connectivity offline", "[vault][poll]")
{
    fake_clock clock;
    fake_transport net;
    net.attach_clock(clock);
    syncvault::basic_vault<fake_transport, syncvault::memory_storage, probe_connectivity, syncvault::jittered_backoff,
                           fake_clock>
        v{test_config(), net, syncvault::memory_storage{}, probe_connectivity{}, exact_backoff(), clock};
    net.fail(errc::connection_failed).fail(errc::connection_failed);
    CHECK(v.post("/a", nullptr).is_queued());  // the immediate attempt failed: offline
    CHECK_FALSE(v.connectivity().is_online());
    v.connectivity().reachable = false;
    auto wake = v.poll();
    REQUIRE(wake);  // the probe, not "nothing scheduled"
    CHECK(*wake == clock.now() + 1s);

    clock.advance(1s);
    v.connectivity().reachable = true;
    wake = v.poll();  // probe finds the network, the due attempt goes, fails: offline again
    CHECK(net.request_count() == 2);
    REQUIRE(wake);    // so the next probe must be scheduled by this very poll
    CHECK(*wake == clock.now() + 1s);
    clock.advance(10min);
    v.poll();  // probe online, the retry succeeds
    CHECK(v.pending_count() == 0);
}
