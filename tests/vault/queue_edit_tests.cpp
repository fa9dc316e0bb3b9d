// SPEC 9.4: editing the queue. Coalescing repeated updates, `after` dependencies and
// `response_ref` placeholders filled from a parent's response.

#include "vault/vault_support.hpp"

#include <catch2/catch.hpp>

#include <boost/json.hpp>

using namespace sv_test;
namespace json = boost::json;
using syncvault::errc;
using syncvault::http_method;
using syncvault::request_options;
using syncvault::response_ref;
using syncvault::sync_action;

namespace {

request_options coalescing(std::string key, std::string lane = {})
{
    request_options o;
    o.coalesce_key = std::move(key);
    o.lane = std::move(lane);
    return o;
}

request_options waiting_for(std::vector<std::string> ids, std::string lane = {})
{
    request_options o;
    o.after = std::move(ids);
    o.lane = std::move(lane);
    return o;
}

std::string path_of(const syncvault::http_request& r)
{
    return r.url.substr(std::string("http://api.test/v1").size());
}

std::vector<std::string> sent(const fake_transport& net)
{
    std::vector<std::string> out;
    for (const auto& r : net.requests()) out.push_back(std::string(syncvault::to_string(r.method)) + " " + path_of(r));
    return out;
}

json::value body_of(const syncvault::http_request& r)
{
    return json::parse(r.body);
}

std::vector<sync_action> stored(rig<>& r)
{
    return r.storage.shared.load_all().value();
}

}  // namespace

// ---- coalescing ------------------------------------------------------------------------------

TEST_CASE("100 offline toggles of one field become one request carrying the last value", "[vault][coalesce]")
{
    rig<> r;
    auto v = r.make(false);
    const auto first = v->patch("/todos/7", json::object{{"done", false}}, coalescing("todo-7-done"));
    REQUIRE(first.is_queued());
    for (int i = 1; i < 100; ++i) {
        auto again = v->patch("/todos/7", json::object{{"done", i % 2 == 1}}, coalescing("todo-7-done"));
        REQUIRE(again.is_queued());
        CHECK(again.action_id() == first.action_id());  // the result names the surviving action
    }
    CHECK(v->pending_count() == 1);
    CHECK(stored(r).size() == 1);
    const auto key = v->pending_actions().at(0).idempotency_key;
    v->connectivity().set_online(true);
    CHECK(v->process_queue() == 1);
    REQUIRE(r.net.requests().size() == 1);
    CHECK(body_of(r.net.requests()[0]) == json::parse(R"({"done":true})"));
    CHECK(*syncvault::find_header(r.net.requests()[0].headers, "Idempotency-Key") == key);
}

TEST_CASE("coalescing keeps the earlier action's id, key and place: PUT replaces, PATCH merges by RFC 7396",
          "[vault][coalesce]")
{
    rig<> r;
    auto v = r.make(false);
    request_options keyed = coalescing("doc");
    keyed.idempotency_key = "create-doc-1";

    SECTION("PUT into a POST: the POST stays a POST with the new body")
    {
        auto x = v->post("/docs", json::object{{"title", "a"}, {"tags", json::array{"x"}}}, keyed);
        v->post("/other", nullptr);
        auto y = v->put("/docs/ignored", json::object{{"title", "b"}}, coalescing("doc"));
        CHECK(y.action_id() == x.action_id());
        auto pending = v->pending_actions();
        REQUIRE(pending.size() == 2);
        CHECK(pending[0].id == x.action_id());  // its place: still ahead of /other
        CHECK(pending[0].method == http_method::post);
        CHECK(pending[0].path == "/docs");
        CHECK(pending[0].idempotency_key == "create-doc-1");
        CHECK(json::parse(pending[0].body) == json::parse(R"({"title":"b"})"));
    }
    SECTION("PATCH into a POST applies the patch: null removes the member")
    {
        v->post("/docs", json::object{{"title", "a"}, {"note", "n"}, {"meta", {{"k", 1}}}}, keyed);
        v->patch("/docs/1", json::parse(R"({"note":null,"meta":{"j":2},"title":"c"})"), coalescing("doc"));
        auto a = v->pending_actions().at(0);
        CHECK(a.method == http_method::post);
        CHECK(json::parse(a.body) == json::parse(R"({"title":"c","meta":{"k":1,"j":2}})"));
    }
    SECTION("PATCH into a PATCH composes: a null is kept, it must still delete on the server")
    {
        v->patch("/docs/1", json::parse(R"({"a":1,"meta":{"k":1}})"), coalescing("doc"));
        v->patch("/docs/1", json::parse(R"({"a":null,"meta":{"j":null}})"), coalescing("doc"));
        auto a = v->pending_actions().at(0);
        CHECK(v->pending_count() == 1);
        CHECK(a.method == http_method::patch);
        CHECK(json::parse(a.body) == json::parse(R"({"a":null,"meta":{"k":1,"j":null}})"));
    }
    SECTION("a PATCH no single merge patch can fold (an object over a scalar) queues behind")
    {
        v->patch("/docs/1", json::parse(R"({"meta":5})"), coalescing("doc"));
        v->patch("/docs/1", json::parse(R"({"meta":{"j":1}})"), coalescing("doc"));
        CHECK(v->pending_count() == 2);
    }
    SECTION("PUT into a PATCH turns it into that PUT")
    {
        v->patch("/docs/1", json::parse(R"({"a":1})"), coalescing("doc"));
        v->put("/docs/1", json::parse(R"({"b":2})"), coalescing("doc"));
        auto a = v->pending_actions().at(0);
        CHECK(a.method == http_method::put);
        CHECK(json::parse(a.body) == json::parse(R"({"b":2})"));
    }
    SECTION("DELETE after a PUT turns it into that DELETE")
    {
        v->put("/docs/1", json::parse(R"({"a":1})"), coalescing("doc"));
        auto d = v->delete_("/docs/1", coalescing("doc"));
        CHECK(d.is_queued());
        auto a = v->pending_actions().at(0);
        CHECK(v->pending_count() == 1);
        CHECK(a.method == http_method::delete_);
        CHECK(a.body.empty());
        CHECK(!syncvault::find_header(a.headers, "Content-Type"));
    }
    SECTION("a PATCH whose body is not a JSON object, or a POST, queues behind")
    {
        v->post("/docs", json::object{{"a", 1}}, coalescing("doc"));
        v->patch("/docs/1", json::array{1}, coalescing("doc"));
        v->post("/docs", json::object{{"a", 2}}, coalescing("doc"));
        CHECK(v->pending_count() == 3);
    }
    // Whatever the merge, storage holds what memory holds.
    CHECK(stored(r) == v->pending_actions());
}

TEST_CASE("DELETE after a never-sent POST cancels both, nothing reaches the server", "[vault][coalesce]")
{
    rig<> r;
    auto v = r.make(false);
    event_log log(*v);
    auto x = v->post("/todos", json::object{{"title", "oops"}}, coalescing("todo-tmp"));
    auto d = v->delete_("/todos/whatever", coalescing("todo-tmp"));
    CHECK(d.is_queued());
    CHECK(d.action_id() == x.action_id());
    CHECK(log.lifecycle(x.action_id()) == lifecycle{"queued", "cancelled:0"});
    CHECK(v->pending_count() == 0);
    CHECK(stored(r).empty());
    v->connectivity().set_online(true);
    v->process_queue();
    CHECK(r.net.requests().empty());
}

TEST_CASE("an action ever attempted, or in another lane, is never coalesced into", "[vault][coalesce]")
{
    rig<> r;
    r.net.respond(503);
    auto v = r.make();
    auto x = v->put("/prefs", json::object{{"theme", "dark"}}, coalescing("prefs"));
    REQUIRE(x.is_queued());  // attempted once: its effect may have reached the server
    auto y = v->put("/prefs", json::object{{"theme", "light"}}, coalescing("prefs"));
    CHECK(y.action_id() != x.action_id());
    auto z = v->put("/prefs", json::object{{"theme", "blue"}}, coalescing("prefs"));
    CHECK(z.action_id() == y.action_id());  // y was never attempted
    auto other = v->put("/prefs", json::object{{"theme", "red"}}, coalescing("prefs", "elsewhere"));
    CHECK(other.action_id() != y.action_id());
    CHECK(v->pending_count() == 2);  // x and y queued; `other` was sent in its empty lane
    r.clock.advance(1s);
    v->poll();
    CHECK(sent(r.net) == std::vector<std::string>{"PUT /prefs", "PUT /prefs", "PUT /prefs", "PUT /prefs"});
    CHECK(body_of(r.net.requests()[3]) == json::parse(R"({"theme":"blue"})"));
}

TEST_CASE("a coalesced action survives a restart as merged", "[vault][coalesce]")
{
    rig<> r;
    {
        auto v = r.make(false);
        v->post("/notes", json::object{{"text", "a"}}, coalescing("note"));
        v->patch("/notes/1", json::object{{"text", "ab"}}, coalescing("note"));
    }
    auto v = r.make(true);
    CHECK(v->process_queue() == 1);
    REQUIRE(r.net.requests().size() == 1);
    CHECK(sent(r.net)[0] == "POST /notes");
    CHECK(body_of(r.net.requests()[0]) == json::parse(R"({"text":"ab"})"));
}

// ---- after -----------------------------------------------------------------------------------

TEST_CASE("after: an action waits for its parents in other lanes to succeed", "[vault][after]")
{
    rig<> r;
    auto v = r.make(false);
    auto parent = v->post("/albums", json::object{{"name", "trip"}}, waiting_for({}, "albums"));
    auto child = v->post("/photos", json::object{{"n", 1}}, waiting_for({std::string(parent.action_id())}, "photos"));
    v->connectivity().set_online(true);
    r.net.respond(503);  // the parent fails once: the child must not overtake it
    v->poll();
    CHECK(sent(r.net) == std::vector<std::string>{"POST /albums"});
    CHECK(v->pending_count() == 2);
    r.clock.advance(1s);
    v->poll();
    CHECK(sent(r.net) == std::vector<std::string>{"POST /albums", "POST /albums", "POST /photos"});
    CHECK(v->pending_count() == 0);
    (void)child;
}

TEST_CASE("after: a failed or cancelled parent dead-letters its dependents, transitively", "[vault][after]")
{
    rig<> r;
    auto v = r.make(false);
    event_log log(*v);
    auto a = v->post("/a", nullptr, waiting_for({}, "1"));
    auto b = v->post("/b", nullptr, waiting_for({std::string(a.action_id())}, "2"));
    auto c = v->post("/c", nullptr, waiting_for({std::string(b.action_id())}, "3"));
    auto free = v->post("/free", nullptr, waiting_for({}, "4"));

    SECTION("a permanent failure")
    {
        r.net.respond(422);
        v->connectivity().set_online(true);
        v->process_queue();
        CHECK(sent(r.net) == std::vector<std::string>{"POST /a", "POST /free"});
    }
    SECTION("a cancellation")
    {
        REQUIRE(v->cancel(a.action_id()));
    }

    auto dead = v->dead_letters();
    for (const auto& id : {b.action_id(), c.action_id()}) {
        CHECK(log.lifecycle(id).back() == "dead_letter:0");
        auto it = std::find_if(dead.begin(), dead.end(), [&](auto& d) { return d.id == id; });
        REQUIRE(it != dead.end());
        CHECK(it->last_error == int(errc::dependency_failed));
    }
    for (const auto& e : log.events)
        if (e.action_id == b.action_id() && e.status == syncvault::sync_event_status::dead_letter)
            CHECK(e.error == errc::dependency_failed);
    // Storage agrees: they are dead letters there too.
    for (const auto& s : stored(r))
        if (s.id == b.action_id() || s.id == c.action_id()) CHECK(s.state == syncvault::action_state::dead);
    (void)free;
}

TEST_CASE("after: unknown ids do not hold a request back, a dead letter refuses it", "[vault][after]")
{
    rig<> r;
    auto v = r.make();
    auto done = v->post("/done", nullptr);
    REQUIRE(done.is_sent());  // succeeded and left
    CHECK(v->post("/x", nullptr, waiting_for({std::string(done.action_id()), "never-existed"})).is_sent());

    r.net.respond(400);
    auto dead = v->post("/bad", nullptr);
    REQUIRE(v->dead_letters().size() == 1);
    auto refused = v->post("/y", nullptr, waiting_for({std::string(dead.action_id())}));
    CHECK(refused.error() == errc::dependency_failed);
    CHECK(v->pending_count() == 0);
    CHECK(v->post("/z", nullptr, waiting_for({"bad id with spaces"})).error() == errc::invalid_request);
}

TEST_CASE("requeue: a dependent waits until its dead parent is requeued first", "[vault][after]")
{
    rig<> r;
    auto v = r.make(false);
    auto parent = v->post("/p", nullptr);
    auto child = v->post("/c", nullptr, waiting_for({std::string(parent.action_id())}, "other"));
    r.net.respond(400);
    v->connectivity().set_online(true);
    v->process_queue();
    REQUIRE(v->dead_letters().size() == 2);
    CHECK_FALSE(v->requeue(child.action_id()));  // it could only fail again
    CHECK(v->requeue(parent.action_id()));
    CHECK(v->requeue(child.action_id()));
    v->process_queue();
    CHECK(sent(r.net) == std::vector<std::string>{"POST /p", "POST /p", "POST /c"});
}

// ---- response_ref ----------------------------------------------------------------------------

TEST_CASE("response_ref fills path, header and JSON body from the parent's response", "[vault][refs]")
{
    rig<> r;
    auto v = r.make(false);
    auto create = v->post("/todos", json::object{{"title", "milk"}});
    const std::string id(create.action_id());
    request_options o;
    o.headers = {{"X-Parent", "todo " + response_ref(id, "/id")}};
    auto edit =
        v->patch("/todos/" + response_ref(id, "/id") + "/items",
                 json::object{{"parent", response_ref(id, "/id")},
                              {"label", "#" + response_ref(id, "/id") + " of " + response_ref(id, "/owner/name")},
                              {"meta", response_ref(id, "/meta")}},
                 o);
    REQUIRE(edit.is_queued());
    CHECK(v->pending_actions().at(1).after == std::vector<std::string>{id});  // a reference implies after

    r.net.respond(201, {}, R"({"id":42,"owner":{"name":"ann/b"},"meta":{"k":[1,2]}})");
    v->connectivity().set_online(true);
    CHECK(v->process_queue() == 2);
    REQUIRE(r.net.requests().size() == 2);
    const auto patch = r.net.requests()[1];
    CHECK(path_of(patch) == "/todos/42/items");
    CHECK(*syncvault::find_header(patch.headers, "X-Parent") == "todo 42");
    CHECK(body_of(patch) == json::parse(R"({"parent":42,"label":"#42 of ann/b","meta":{"k":[1,2]}})"));
}

TEST_CASE("response_ref: text put in a path is percent-encoded", "[vault][refs]")
{
    rig<> r;
    auto v = r.make(false);
    auto create = v->post("/files", nullptr);
    v->delete_("/files/" + response_ref(create.action_id(), "/name"));
    r.net.respond(201, {}, R"({"name":"a b/c"})");
    v->connectivity().set_online(true);
    v->process_queue();
    REQUIRE(r.net.requests().size() == 2);
    CHECK(path_of(r.net.requests()[1]) == "/files/a%20b%2Fc");
}

TEST_CASE("response_ref: the filled request is stored before its first attempt and survives a restart", "[vault][refs]")
{
    rig<> r;
    std::string child_id;
    {
        auto v = r.make(false);
        auto create = v->post("/todos", json::object{{"title", "milk"}});
        child_id =
            v->patch("/todos/" + response_ref(create.action_id(), "/id"), json::object{{"done", true}}).action_id();
        r.net.respond(201, {}, R"({"id":"t-9"})").fail(errc::timeout);
        v->connectivity().set_online(true);
        v->process_queue();
        auto s = stored(r);
        REQUIRE(s.size() == 1);
        CHECK(s[0].id == child_id);
        CHECK(s[0].path == "/todos/t-9");
        CHECK(s[0].after.empty());
    }
    auto v = r.make(true);
    CHECK(v->process_queue() == 1);
    CHECK(sent(r.net) == std::vector<std::string>{"POST /todos", "PATCH /todos/t-9", "PATCH /todos/t-9"});
}

TEST_CASE("response_ref: a pointer that does not resolve, or a parent that is gone, fails the dependent",
          "[vault][refs]")
{
    rig<> r;
    auto v = r.make(false);
    event_log log(*v);
    auto create = v->post("/todos", nullptr);
    auto child = v->patch("/todos/" + response_ref(create.action_id(), "/missing"), json::object{{"a", 1}});
    auto grandchild = v->post("/more", nullptr, waiting_for({std::string(child.action_id())}, "x"));
    r.net.respond(201, {}, R"({"id":1})");
    v->connectivity().set_online(true);
    v->process_queue();
    CHECK(sent(r.net) == std::vector<std::string>{"POST /todos"});
    CHECK(log.lifecycle(child.action_id()).back() == "dead_letter:0");
    CHECK(log.lifecycle(grandchild.action_id()).back() == "dead_letter:0");
    CHECK(v->dead_letters().size() == 2);

    // The parent succeeded and left: its response is gone, so a new reference cannot be filled.
    auto late = v->post("/x/" + response_ref(create.action_id(), "/id"), nullptr);
    CHECK(late.error() == errc::dependency_failed);
    CHECK(v->pending_count() == 0);
}

TEST_CASE("coalescing and chains: a create, two renames and a completion chained on the server's id",
          "[vault][coalesce][refs]")
{
    rig<> r;
    auto v = r.make(false);
    auto create = v->post("/todos", json::object{{"title", "milk"}});
    const std::string ref = response_ref(create.action_id(), "/id");
    auto rename1 = v->patch("/todos/" + ref, json::object{{"title", "oat milk"}}, coalescing("todo-title"));
    auto rename2 = v->patch("/todos/" + ref, json::object{{"title", "soy milk"}}, coalescing("todo-title"));
    CHECK(rename2.action_id() == rename1.action_id());
    v->patch("/todos/" + ref, json::object{{"done", true}});
    CHECK(v->pending_count() == 3);
    r.net.respond(201, {}, R"({"id":17})");
    v->connectivity().set_online(true);
    CHECK(v->process_queue() == 3);
    CHECK(sent(r.net) == std::vector<std::string>{"POST /todos", "PATCH /todos/17", "PATCH /todos/17"});
    CHECK(body_of(r.net.requests()[1]) == json::parse(R"({"title":"soy milk"})"));
}

TEST_CASE("coalescing never folds a request into the action it references", "[vault][coalesce][refs]")
{
    rig<> r;
    auto v = r.make(false);
    auto create = v->post("/todos", json::object{{"title", "a"}}, coalescing("t"));
    SECTION("a body naming the earlier action's own response could never be filled: queued behind")
    {
        auto link =
            v->put("/todos/x", json::object{{"self", response_ref(create.action_id(), "/id")}}, coalescing("t"));
        CHECK(link.action_id() != create.action_id());
        CHECK(v->pending_count() == 2);
    }
    SECTION("a reference in the path goes away with the merge (the create keeps its path): folded")
    {
        auto rename = v->patch("/todos/" + response_ref(create.action_id(), "/id"), json::object{{"title", "b"}},
                               coalescing("t"));
        CHECK(rename.action_id() == create.action_id());
        CHECK(v->pending_count() == 1);
        CHECK(json::parse(v->pending_actions().at(0).body) == json::parse(R"({"title":"b"})"));
    }
}

TEST_CASE("a requeued action is never coalesced into: its first lifecycle may have reached the server",
          "[vault][coalesce]")
{
    rig<> r;
    r.net.respond(504).respond(504).respond(504).respond(504);  // applied, perhaps, but never answered well
    r.cfg.max_retries = 0;
    auto v = r.make();
    auto x = v->put("/notes/1", json::object{{"text", "a"}}, coalescing("note-1"));
    REQUIRE(v->dead_letters().size() == 1);
    v->connectivity().set_online(false);
    REQUIRE(v->requeue(x.action_id()));
    CHECK(v->pending_actions().at(0).attempts == 0);  // a new lifecycle
    auto y = v->patch("/notes/1", json::object{{"text", "b"}}, coalescing("note-1"));
    CHECK(y.action_id() != x.action_id());
    CHECK(v->pending_count() == 2);
}
