// The async_* family (SPEC 9.5) and send_on_caller: Asio completion tokens over the vault, with
// the fake clock and transport. Each token kind (callback, use_future, use_awaitable, deferred)
// is tried on success, dead letter, cancellation and the vault's destruction.

#include "vault/vault_support.hpp"

#include <catch2/catch.hpp>

#include <syncvault/testing/fake_clock.hpp>
#include <syncvault/testing/fake_transport.hpp>

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/json.hpp>

#include <cerrno>
#include <chrono>
#include <future>
#include <optional>
#include <thread>
#include <tuple>

using namespace sv_test;
using syncvault::errc;
using syncvault::http_response;
namespace asio = boost::asio;

namespace {

/** What a callback received, and whether it ran inside the initiating call. */
struct recorded {
    std::optional<std::error_code> ec;
    http_response response;
    int calls = 0;
};

auto recorder(recorded& r)
{
    return [&r](std::error_code ec, http_response response) {
        r.ec = ec;
        r.response = std::move(response);
        ++r.calls;
    };
}

std::string only_pending_id(const fake_vault<>& v)
{
    auto pending = const_cast<fake_vault<>&>(v).pending_actions();
    REQUIRE(pending.size() == 1);
    return pending.front().id;
}

template <class T>
bool ready(std::future<T>& f)
{
    return f.wait_for(std::chrono::seconds(5)) == std::future_status::ready;
}

} // namespace

// ---- callbacks ---------------------------------------------------------------------------------

TEST_CASE("async_post with a callback: never sends on the caller, completes on success", "[vault][async]")
{
    rig r;
    r.net.respond(201, {}, R"({"id":7})");
    auto v = r.make();
    asio::io_context io;
    recorded got;
    v->async_post("/jobs", boost::json::value{{"n", 1}}, {}, asio::bind_executor(io, recorder(got)));
    CHECK(r.net.request_count() == 0);  // online, lane free, send_on_caller: still not sent here
    CHECK(v->pending_count() == 1);
    CHECK(v->process_queue() == 1);
    CHECK(got.calls == 0);  // the handler runs on its executor, not on the draining thread
    io.run();
    REQUIRE(got.calls == 1);
    CHECK(!*got.ec);
    CHECK(got.response.status == 201);
    CHECK(got.response.body == R"({"id":7})");
}

TEST_CASE("async_* callbacks: dead letter, cancel, clear_queue, eviction, destruction", "[vault][async]")
{
    rig r;
    asio::io_context io;
    recorded got;
    auto handler = asio::bind_executor(io, recorder(got));

    SECTION("a permanent refusal: errc::rejected with the response")
    {
        r.net.respond(422, {}, "bad");
        auto v = r.make();
        v->async_put("/a", boost::json::value(1), {}, handler);
        v->process_queue();
        io.run();
        REQUIRE(got.calls == 1);
        CHECK(*got.ec == errc::rejected);
        CHECK(got.response.status == 422);
        CHECK(got.response.body == "bad");
    }
    SECTION("retries used up: the dead letter's error")
    {
        r.cfg.max_retries = 0;
        r.net.fail(errc::timeout);
        auto v = r.make();
        event_log log(*v);
        v->async_patch("/a", boost::json::value(1), {}, handler);
        v->process_queue();
        io.run();
        REQUIRE(got.calls == 1);
        REQUIRE(log.last().status == syncvault::sync_event_status::dead_letter);
        CHECK(*got.ec == log.last().error);
        CHECK(*got.ec);
    }
    SECTION("cancel(): errc::cancelled")
    {
        auto v = r.make(false);
        v->async_delete("/a/1", {}, handler);
        REQUIRE(v->cancel(only_pending_id(*v)));
        io.run();
        REQUIRE(got.calls == 1);
        CHECK(*got.ec == errc::cancelled);
    }
    SECTION("clear_queue(): errc::cancelled (it has no event of its own)")
    {
        auto v = r.make(false);
        v->async_post("/a", nullptr, {}, handler);
        CHECK(!v->clear_queue());
        io.run();
        REQUIRE(got.calls == 1);
        CHECK(*got.ec == errc::cancelled);
    }
    SECTION("evicted by drop_oldest: errc::evicted, which is a cancellation")
    {
        r.cfg.max_pending = 1;
        r.cfg.overflow = syncvault::overflow_policy::drop_oldest;
        auto v = r.make(false);
        v->async_post("/old", nullptr, {}, handler);
        CHECK(v->post("/new", nullptr).is_queued());
        io.run();
        REQUIRE(got.calls == 1);
        CHECK(*got.ec == errc::evicted);
        CHECK(*got.ec == errc::cancelled);
    }
    SECTION("the vault destroyed first: errc::cancelled")
    {
        auto v = r.make(false);
        v->async_post("/a", nullptr, {}, handler);
        v.reset();
        io.run();
        REQUIRE(got.calls == 1);
        CHECK(*got.ec == errc::cancelled);
    }
    CHECK(got.calls == 1);
}

TEST_CASE("async_*: bad input, a full queue and storage failures complete at once, posted", "[vault][async][errors]")
{
    rig r;
    r.cfg.max_pending = 1;
    auto v = r.make(false);
    asio::io_context io;
    recorded bad_path, bad_header, bad_key, bad_lane, bad_body, full;
    v->async_post("//evil.example/x", nullptr, {}, asio::bind_executor(io, recorder(bad_path)));
    v->async_post("/x", nullptr, {.headers = {{"X-A", "a\r\nb"}}}, asio::bind_executor(io, recorder(bad_header)));
    v->async_post("/x", nullptr, {.idempotency_key = "a b"}, asio::bind_executor(io, recorder(bad_key)));
    v->async_post("/x", nullptr, {.lane = "a\nb"}, asio::bind_executor(io, recorder(bad_lane)));
    v->async_post("/x", boost::json::value{{"s", "\xff\xfe"}}, {}, asio::bind_executor(io, recorder(bad_body)));
    CHECK(v->post("/fills-the-queue", nullptr).is_queued());
    v->async_post("/x", nullptr, {}, asio::bind_executor(io, recorder(full)));
    CHECK(bad_path.calls + bad_header.calls + full.calls == 0);  // never inside the initiating call
    io.run();
    CHECK(*bad_path.ec == errc::invalid_path);
    CHECK(*bad_header.ec == errc::invalid_header);
    CHECK(*bad_key.ec == errc::invalid_key);
    CHECK(*bad_lane.ec == errc::invalid_lane);
    CHECK(*bad_body.ec == errc::invalid_body);
    for (auto* e : {&bad_path, &bad_header, &bad_key, &bad_lane, &bad_body}) CHECK(*e->ec == errc::invalid_request);
    CHECK(*full.ec == errc::queue_full);
    CHECK(v->pending_count() == 1);
}

/** memory_storage whose inserts fail as a full disk does. */
struct full_disk_storage : syncvault::memory_storage {
    std::error_code save(const syncvault::sync_action&) { return std::error_code(ENOSPC, std::generic_category()); }
};

TEST_CASE("a full disk: post and async_post report storage_failed with the system cause", "[vault][async][errors]")
{
    fake_clock clock;
    fake_transport net;
    syncvault::basic_vault<fake_transport, full_disk_storage, syncvault::manual_connectivity, syncvault::jittered_backoff,
                           fake_clock>
        v{test_config(), net, full_disk_storage{}, syncvault::manual_connectivity{false}, exact_backoff(), clock};
    const auto r = v.post("/a", nullptr);
    CHECK(r.error() == errc::storage_failed);
    CHECK(r.error() == std::errc::no_space_on_device);
    auto f = v.async_post("/a", nullptr, {}, asio::use_future);
    REQUIRE(ready(f));
    const auto ec = std::get<0>(f.get());
    CHECK(ec == errc::storage_failed);
    CHECK(ec == std::errc::no_space_on_device);
    CHECK(v.pending_count() == 0);
}

TEST_CASE("async_post with a pending idempotency key follows the existing action", "[vault][async]")
{
    rig r;
    r.net.respond(200, {}, "done");
    auto v = r.make(false);
    asio::io_context io;
    recorded first, second;
    v->async_post("/a", nullptr, {.idempotency_key = "k1"}, asio::bind_executor(io, recorder(first)));
    v->async_post("/a", nullptr, {.idempotency_key = "k1"}, asio::bind_executor(io, recorder(second)));
    CHECK(v->pending_count() == 1);
    v->connectivity().set_online(true);
    CHECK(v->process_queue() == 1);
    io.run();
    REQUIRE(first.calls == 1);
    REQUIRE(second.calls == 1);
    CHECK(!*second.ec);
    CHECK(second.response.body == "done");
}

// ---- std::future -------------------------------------------------------------------------------

TEST_CASE("async_* with use_future: a future of (error_code, response), never an exception", "[vault][async][thread]")
{
    rig r;
    SECTION("success")
    {
        r.net.respond(200, {}, "ok");
        auto v = r.make();
        auto f = v->async_post("/a", boost::json::value(1), {}, asio::use_future);
        CHECK(f.wait_for(std::chrono::milliseconds(0)) == std::future_status::timeout);
        v->process_queue();
        REQUIRE(ready(f));
        auto [ec, response] = f.get();
        CHECK(!ec);
        CHECK(response.body == "ok");
    }
    SECTION("dead letter")
    {
        r.net.respond(404);
        auto v = r.make();
        auto f = v->async_delete("/a/1", {}, asio::use_future);
        v->process_queue();
        REQUIRE(ready(f));
        auto [ec, response] = f.get();
        CHECK(ec == errc::rejected);
        CHECK(response.status == 404);
    }
    SECTION("cancel")
    {
        auto v = r.make(false);
        auto f = v->async_put("/a", boost::json::value(1), {}, asio::use_future);
        REQUIRE(v->cancel(only_pending_id(*v)));
        REQUIRE(ready(f));
        CHECK(std::get<0>(f.get()) == errc::cancelled);
    }
    SECTION("the vault destroyed")
    {
        auto v = r.make(false);
        auto f = v->async_patch("/a", boost::json::value(1), {}, asio::use_future);
        v.reset();
        REQUIRE(ready(f));
        CHECK(std::get<0>(f.get()) == errc::cancelled);
    }
    SECTION("GET: the response, on the system executor; offline fails fast")
    {
        r.net.respond(200, {}, "page");
        auto v = r.make();
        auto f = v->async_get("/p", {}, asio::use_future);
        REQUIRE(ready(f));
        auto [ec, response] = f.get();
        CHECK(!ec);
        CHECK(response.body == "page");
        v->connectivity().set_online(false);
        auto g = v->async_head("/p", {}, asio::use_future);
        REQUIRE(ready(g));
        CHECK(std::get<0>(g.get()) == errc::offline);
    }
    SECTION("GET queued while offline completes like an action")
    {
        r.net.respond(200, {}, "late page");
        auto v = r.make(false);
        auto f = v->async_get("/p", {.queue_if_offline = true}, asio::use_future);
        for (int i = 0; i < 500 && v->pending_count() == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(2));
        REQUIRE(v->pending_count() == 1);
        v->connectivity().set_online(true);
        v->process_queue();
        REQUIRE(ready(f));
        auto [ec, response] = f.get();
        CHECK(!ec);
        CHECK(response.body == "late page");
    }
}

// ---- coroutines --------------------------------------------------------------------------------

TEST_CASE("async_* with use_awaitable in a coroutine on an io_context", "[vault][async][coroutine]")
{
    rig r;
    asio::io_context io;
    std::vector<std::string> seen;

    SECTION("success, dead letter, then a GET")
    {
        r.net.respond(201, {}, "created").respond(400, {}, "nope").respond(200, {}, "list");
        auto v = r.make();
        asio::co_spawn(
            io,
            [&]() -> asio::awaitable<void> {
                // Arguments as variables: g++ 12 mishandles temporaries inside a co_await
                // expression (a string literal: "array used as initializer"; a `{}` options
                // temporary: destroyed twice). Named arguments work on every compiler.
                const std::string items = "/items", item = "/items/1";
                const syncvault::request_options none;
                const boost::json::value one = {{"a", 1}}, two = {{"a", 2}};
                auto [ec, created] = co_await v->async_post(items, one, none, asio::use_awaitable);
                seen.push_back((ec ? ec.message() : "ok") + " " + std::to_string(created.status));
                auto [ec2, refused] = co_await v->async_put(item, two, none, asio::use_awaitable);
                seen.push_back((ec2 == errc::rejected ? "rejected" : ec2.message()) + " " + refused.body);
                auto [ec3, list] = co_await v->async_get(items, none, asio::use_awaitable);
                seen.push_back((ec3 ? ec3.message() : "ok") + " " + list.body);
            },
            asio::detached);
        // The worker: drains whenever the coroutine is suspended on an action.
        std::function<void()> drive = [&] {
            v->process_queue();
            if (seen.size() < 3) asio::post(io, drive);
        };
        asio::post(io, drive);
        io.run();
        CHECK(seen == std::vector<std::string>{"ok 201", "rejected nope", "ok list"});
    }
    SECTION("cancel and destruction")
    {
        auto v = r.make(false);
        asio::co_spawn(
            io,
            [&]() -> asio::awaitable<void> {
                const std::string a = "/a", b = "/b";
                const syncvault::request_options none;
                auto [ec, r1] = co_await v->async_post(a, nullptr, none, asio::use_awaitable);
                seen.push_back(ec == errc::cancelled ? "cancelled" : ec.message());
                auto [ec2, r2] = co_await v->async_post(b, nullptr, none, asio::use_awaitable);
                seen.push_back(ec2 == errc::cancelled ? "cancelled" : ec2.message());
            },
            asio::detached);
        asio::post(io, [&] {
            REQUIRE(v->cancel(only_pending_id(*v)));
            asio::post(io, [&] { v.reset(); });  // the second post is pending by now
        });
        io.run();  // returns: nothing keeps the context busy once both have completed
        CHECK(seen == std::vector<std::string>{"cancelled", "cancelled"});
    }
}

// ---- deferred ----------------------------------------------------------------------------------

TEST_CASE("async_* with deferred: nothing happens until the operation is launched", "[vault][async]")
{
    rig r;
    r.net.respond(204);
    auto v = r.make();
    auto op = v->async_delete(std::string("/a/1"), {}, asio::deferred);  // the temporary path is copied
    CHECK(v->pending_count() == 0);
    recorded got;
    std::move(op)(recorder(got));
    CHECK(v->pending_count() == 1);
    v->process_queue();
    REQUIRE(got.calls == 1);  // a plain callback: the system executor, run where it completed
    CHECK(!*got.ec);
    CHECK(got.response.status == 204);

    SECTION("and on destruction")
    {
        v->connectivity().set_online(false);
        recorded late;
        auto op2 = v->async_post("/b", nullptr, {}, asio::deferred);
        std::move(op2)(recorder(late));
        v.reset();
        REQUIRE(late.calls == 1);
        CHECK(*late.ec == errc::cancelled);
    }
}

// ---- never blocking the caller -----------------------------------------------------------------

TEST_CASE("a server that never answers blocks neither async_post nor post with send_on_caller false",
          "[vault][async][thread]")
{
    rig r;
    std::promise<void> release;
    auto released = release.get_future().share();
    r.net.on_send([released](const syncvault::http_request&) { released.wait(); });  // hangs until released
    r.cfg.send_on_caller = false;
    auto v = r.make();
    auto f = v->async_post("/a", nullptr, {}, asio::use_future);
    auto q = v->post("/b", nullptr);
    CHECK(q.is_queued());
    CHECK(r.net.request_count() == 0);
    std::thread worker([&] { v->process_queue(); });
    // A transfer hangs on the worker; the caller still returns at once.
    for (int i = 0; i < 500 && r.net.request_count() == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(2));
    CHECK(v->post("/c", nullptr).is_queued());
    CHECK(r.net.request_count() == 1);
    release.set_value();
    worker.join();
    REQUIRE(ready(f));
    CHECK(!std::get<0>(f.get()));
}
