// SPEC 9.3 (401 pauses, 409 after an unknown outcome, on_rejected) and 9.4's cancel,
// max_pending_bytes and overflow.

#include "vault/vault_support.hpp"

#include <catch2/catch.hpp>

using namespace sv_test;
using syncvault::errc;
using syncvault::rejection;
using syncvault::sync_status;

TEST_CASE("401 without refresh_auth: failed, not counted, and the vault pauses", "[vault][auth]")
{
    rig<> r;
    r.cfg.max_retries = 0;
    auto v = r.make(false);
    auto a = v->post("/a", nullptr);
    event_log log(*v);
    r.net.respond(401);
    v->connectivity().set_online(true);
    CHECK(v->process_queue() == 0);
    CHECK(v->is_paused());
    CHECK(v->status() == sync_status::error);
    CHECK(log.lifecycle() == lifecycle{"started:1", "failed:1"});
    REQUIRE(log.last().response);
    CHECK(log.last().response->status == 401);
    REQUIRE(v->pending_count() == 1);
    CHECK(v->pending_actions()[0].attempts == 0);  // does not count toward max_retries
    CHECK(v->dead_letters().empty());

    r.clock.advance(1h);
    v->poll();
    CHECK(v->post("/b", nullptr).is_queued());  // nothing is sent while paused
    CHECK(r.net.request_count() == 1);

    v->resume();
    CHECK_FALSE(v->is_paused());
    v->poll();
    CHECK(v->pending_count() == 0);
    CHECK(log.lifecycle(a.action_id()) == lifecycle{"started:1", "failed:1", "started:1", "success:1"});
}

TEST_CASE("401 with refresh_auth: new credentials, tried again at once", "[vault][auth]")
{
    rig<> r;
    std::string token = "old";
    int refreshes = 0;
    r.cfg.before_send = [&](syncvault::http_request& req) { req.headers.push_back({"Authorization", "Bearer " + token}); };
    r.cfg.refresh_auth = [&](const syncvault::http_response& resp) {
        CHECK(resp.status == 401);
        ++refreshes;
        token = "new";
        return true;
    };
    auto v = r.make();
    r.net.respond(401).respond(201);
    auto res = v->post("/a", nullptr);
    REQUIRE(res.is_sent());
    CHECK(res.response()->status == 201);
    CHECK(refreshes == 1);
    auto requests = r.net.requests();
    REQUIRE(requests.size() == 2);
    CHECK(syncvault::find_header(requests[1].headers, "Authorization") == "Bearer new");
    CHECK_FALSE(v->is_paused());
}

TEST_CASE("a second 401 right after a refresh pauses instead of looping", "[vault][auth]")
{
    rig<> r;
    int refreshes = 0;
    r.cfg.refresh_auth = [&](const syncvault::http_response&) {
        ++refreshes;
        return true;
    };
    auto v = r.make();
    r.net.respond_by_default(401);
    CHECK(v->post("/a", nullptr).is_queued());
    CHECK(refreshes == 1);
    CHECK(r.net.request_count() == 2);
    CHECK(v->is_paused());
}

TEST_CASE("a refresh_auth that throws counts as no new credentials", "[vault][auth][faults]")
{
    rig<> r;
    r.cfg.refresh_auth = [](const syncvault::http_response&) -> bool { throw std::runtime_error("keychain locked"); };
    auto v = r.make();
    r.net.respond(401);
    CHECK(v->post("/a", nullptr).is_queued());
    CHECK(v->is_paused());
}

TEST_CASE("pause() by the application holds every send until resume()", "[vault][auth]")
{
    rig<> r;
    auto v = r.make();
    v->pause();
    CHECK(v->status() == sync_status::error);
    CHECK(v->post("/a", nullptr).is_queued());
    CHECK(v->process_queue() == 0);
    CHECK(r.net.request_count() == 0);
    v->resume();
    CHECK(v->process_queue() == 1);
    CHECK(v->status() == sync_status::synced);
    v->pause();
    v.reset();
    v = r.make();
    CHECK_FALSE(v->is_paused());  // a pause is not persisted
}

TEST_CASE("409 after an attempt with an unknown outcome is retried; otherwise it is a rejection", "[vault][409]")
{
    SECTION("after a timeout")
    {
        rig<> r;
        auto v = r.make();
        r.net.fail(errc::timeout).respond(409).respond(200);
        event_log log(*v);
        CHECK(v->post("/pay", nullptr).is_queued());
        r.clock.advance(1s);
        v->poll();
        CHECK(v->dead_letters().empty());
        r.clock.advance(2s);
        v->poll();
        CHECK(log.lifecycle() == lifecycle{"queued", "started:1", "failed:1", "started:2", "failed:2", "started:3", "success:3"});
    }
    SECTION("after a crash mid-attempt")
    {
        rig<> r;
        auto v = r.make(false);
        v->post("/pay", nullptr);
        auto crashed = v->pending_actions()[0];
        crashed.attempts = 1;  // what storage holds after a crash during attempt 1
        REQUIRE_FALSE(r.storage.shared.save(crashed));
        v.reset();
        v = r.make();
        r.net.respond(409).respond(200);
        CHECK(v->process_queue() == 0);
        CHECK(v->dead_letters().empty());
        r.clock.advance(4s);
        CHECK(v->process_queue() == 1);
    }
    SECTION("on the first attempt")
    {
        rig<> r;
        auto v = r.make();
        r.net.respond(409);
        auto res = v->post("/pay", nullptr);
        CHECK(res.is_sent());
        CHECK(v->dead_letters().size() == 1);
    }
    SECTION("after attempts that all got an answer")
    {
        rig<> r;
        auto v = r.make();
        r.net.respond(503).respond(409);
        CHECK(v->post("/pay", nullptr).is_queued());
        r.clock.advance(1s);
        v->poll();
        CHECK(v->dead_letters().size() == 1);
    }
}

TEST_CASE("on_rejected: dead_letter, drop or retry with edits", "[vault][rejected]")
{
    rig<> r;
    rejection choice = rejection::dead_letter;
    r.cfg.on_rejected = [&](syncvault::sync_action& a, const syncvault::http_response& resp) {
        CHECK(resp.status == 409);
        if (choice == rejection::retry) a.body = R"({"rebased":true})";
        return choice;
    };
    auto v = r.make();
    event_log log(*v);

    SECTION("dead_letter")
    {
        r.net.respond(409);
        v->post("/doc", nullptr);
        CHECK(v->dead_letters().size() == 1);
    }
    SECTION("drop")
    {
        choice = rejection::drop;
        r.net.respond(409);
        CHECK(v->post("/doc", nullptr).is_sent());
        CHECK(v->dead_letters().empty());
        CHECK(v->pending_count() == 0);
        CHECK(log.lifecycle() == lifecycle{"queued", "started:1", "cancelled:1"});
    }
    SECTION("retry, with the edit persisted before the next attempt")
    {
        choice = rejection::retry;
        r.net.respond(409).respond(200);
        CHECK(v->post("/doc", nullptr).is_queued());
        v.reset();  // restart: the edit must have reached storage
        v = r.make();
        REQUIRE(v->pending_count() == 1);
        CHECK(v->pending_actions()[0].body == R"({"rebased":true})");
        r.clock.advance(1s);
        v->poll();
        CHECK(r.net.requests().back().body == R"({"rebased":true})");
        CHECK(v->pending_count() == 0);
    }
    SECTION("a hook that throws leaves the default")
    {
        r.cfg.on_rejected = [](syncvault::sync_action&, const syncvault::http_response&) -> rejection {
            throw std::runtime_error("bug");
        };
        v = r.make();
        r.net.respond(422);
        v->post("/doc", nullptr);
        CHECK(v->dead_letters().size() == 1);
    }
}

TEST_CASE("cancel: a pending action, not one in flight", "[vault][cancel]")
{
    rig<> r;
    auto v = r.make(false);
    auto a = v->post("/a", nullptr), b = v->post("/b", nullptr);
    event_log log(*v);
    CHECK(v->cancel(a.action_id()));
    CHECK_FALSE(v->cancel(a.action_id()));
    CHECK_FALSE(v->cancel("no-such-id"));
    CHECK(log.lifecycle() == lifecycle{"cancelled:0"});
    CHECK(log.last().error == errc::cancelled);
    REQUIRE(v->pending_count() == 1);
    v.reset();
    v = r.make(false);
    REQUIRE(v->pending_count() == 1);  // storage forgot it too
    CHECK(v->pending_actions()[0].id == b.action_id());

    bool tried = false, in_flight_refused = false;
    r.net.on_send([&](const syncvault::http_request&) {
        if (tried) return;
        tried = true;
        in_flight_refused = !v->cancel(std::string(b.action_id()));
    });
    v->connectivity().set_online(true);
    CHECK(v->process_queue() == 1);
    CHECK(in_flight_refused);
}

TEST_CASE("max_pending_bytes with reject_new and drop_oldest", "[vault][limits]")
{
    rig<> r;
    r.cfg.max_pending_bytes = 100;
    auto big = syncvault::raw_body{std::string(40, 'x'), "text/plain"};
    SECTION("reject_new")
    {
        auto v = r.make(false);
        CHECK(v->post("/1", big).is_queued());
        CHECK(v->post("/2", big).is_queued());
        CHECK(v->post("/3", big).error() == errc::queue_full);
        CHECK(v->pending_count() == 2);
    }
    SECTION("drop_oldest")
    {
        r.cfg.overflow = syncvault::overflow_policy::drop_oldest;
        auto v = r.make(false);
        event_log log(*v);
        auto first = v->post("/1", big);
        v->post("/2", big);
        CHECK(v->post("/3", big).is_queued());
        auto pending = v->pending_actions();
        REQUIRE(pending.size() == 2);
        CHECK(pending[0].path == "/2");
        CHECK(log.lifecycle(first.action_id()) == lifecycle{"queued", "cancelled:0"});
        v.reset();
        v = r.make(false);
        CHECK(v->pending_count() == 2);
        CHECK(v->post("/4", syncvault::raw_body{std::string(101, 'x'), "text/plain"}).error() == errc::queue_full);
    }
}
