#ifndef SYNCVAULT_TESTING_SIMULATION_QUEUE_EDITS_HPP
#define SYNCVAULT_TESTING_SIMULATION_QUEUE_EDITS_HPP

/**
 * @file
 * SPEC 9.4 in a run (`simulation_options::queue_edits`): the workload that coalesces, chains and
 * cancels, and the rules the oracle holds it to, under the same crashes, power cuts and faults
 * as every other action:
 *
 * | invariant | what it means |
 * |---|---|
 * | `placeholder` | no request reaches the server with a `response_ref` placeholder in its path, headers or body |
 * | `dependency` | a dependent reaches the server only after every parent it waits for succeeded there; a dependent of a parent that failed or was cancelled ends dead with `dependency_failed`, never sent; nothing else ends so |
 * | `response-ref` | a request naming a parent carries the id the server assigned to that parent |
 * | `coalescing` | the server's objects equal the application's requests applied one by one, in order (PUT, RFC 7396 PATCH, DELETE, POST): merging never changes the effect |
 * | `lost-update` | a request is never merged into an action the server already saw, nor into one that is not the newest pending with its lane and coalesce key |
 */

#include <syncvault/response_ref.hpp>
#include <syncvault/testing/simulation/simulator.hpp>
#include <boost/json.hpp>

#include <algorithm>
#include <string>
#include <vector>

namespace syncvault::testing {

namespace detail {
inline bool has_placeholder(std::string_view s)
{
    return s.find("~svref:") != std::string_view::npos;
}
}  // namespace detail

// ---- the workload ---------------------------------------------------------------------------------

template <class StorageFactory, class RetryPolicy, class Server, class Transport, class Connectivity>
void simulation<StorageFactory, RetryPolicy, Server, Transport, Connectivity>::runner::op_edit()
{
    auto lane = [&] { return lanes_.size() > 1 ? lanes_[erng_.below(lanes_.size())] : std::string(); };
    auto small = [&] { return boost::json::value(std::int64_t(erng_.below(100))); };
    auto maybe_null = [&] { return erng_.chance(0.3) ? boost::json::value(nullptr) : small(); };
    auto newest = [&](const std::string& path, http_method m) {
        for (std::size_t i = actions_.size(); i-- > 0;)
            if (actions_[i].edit.parts.front().path == path && actions_[i].edit.parts.front().method == m)
                return int(i);
        return -1;
    };
    request_options o;
    boost::json::value body;
    http_method method = http_method::patch;
    std::string path, what;
    const auto r = erng_.below(100);
    if (r < 15 || (r < 50 && notes_.empty())) {
        // An object created offline-first at a path of the app's choosing, edits to follow.
        path = "/notes/" + std::to_string(++note_counter_);
        method = http_method::post;
        o.coalesce_key = "note" + std::to_string(note_counter_);
        o.lane = lane();
        body = boost::json::object{{"a", small()}, {"b", small()}, {"c", boost::json::object{{"x", small()}}}};
        what = "create";
    } else if (r < 50) {
        // An edit of a note, coalescing with the pending ones (a plain one now and then).
        const auto& first = actions_[notes_[erng_.below(notes_.size())]];
        path = first.edit.parts.front().path;
        o.lane = first.lane;
        if (!erng_.chance(0.15)) o.coalesce_key = first.edit.coalesce_key;
        const auto k = erng_.below(100);
        method = k < 50 ? http_method::patch : k < 80 ? http_method::put : http_method::delete_;
        if (method == http_method::patch) {
            boost::json::object p;
            if (erng_.chance(0.6)) p["a"] = small();
            if (erng_.chance(0.5)) p["b"] = maybe_null();
            if (erng_.chance(0.5))
                p["c"] = erng_.chance(0.2) ? boost::json::value(nullptr)
                                           : boost::json::object{{"x", maybe_null()}, {"y", small()}};
            body = std::move(p);
        } else if (method == http_method::put) {
            body = boost::json::object{{"a", small()}, {"c", boost::json::object{{"y", small()}}}};
        }
        what = "edit";
    } else if (r < 65) {
        // A create whose id the server assigns.
        path = "/things";
        method = http_method::post;
        o.lane = lane();
        body = boost::json::object{{"name", "t" + std::to_string(++note_counter_)}};
        what = "create";
    } else if (r < 90 && !things_.empty()) {
        // Requests on a thing created offline: its id is a placeholder until the server assigns it.
        const auto p = things_[things_.size() - 1 - erng_.below(std::min<std::size_t>(things_.size(), 4))];
        const auto& parent = actions_[p];
        std::string id;
        if (parent.st == state::pending || parent.st == state::dead) {
            id = response_ref(parent.id, "/id");
            edit_refs_.push_back({p, id});
        } else if (auto a = assigned_.find(parent.key); a != assigned_.end()) {
            id = a->second;  // the app knows it by now
        } else {
            return step_poll("poll (app)");
        }
        o.lane = lane();  // a chain across lanes
        const auto k = erng_.below(100);
        method = k < 45   ? http_method::patch
                 : k < 65 ? http_method::put
                 : k < 90 ? http_method::post
                          : http_method::delete_;
        path = "/things/" + id + (method == http_method::post ? "/notes" : "");
        if (method != http_method::post && erng_.chance(0.6)) o.coalesce_key = "thing" + std::to_string(parent.no);
        if (method == http_method::patch)
            body = boost::json::object{{"owner", id}, {"v", maybe_null()}};
        else if (method != http_method::delete_)
            body = boost::json::object{{"owner", id}, {"v", small()}};
        what = "chain";
    } else {
        // `after` alone: wait for an earlier action of any lane (pending, dead or long gone).
        method = erng_.chance(0.5) ? http_method::put : http_method::patch;
        path = "/items/" + std::to_string(erng_.below(20));
        o.lane = lane();
        const auto n = erng_.between(1, 2);
        for (std::int64_t k = 0; k < n && !actions_.empty(); ++k)
            o.after.push_back(
                actions_[actions_.size() - 1 - erng_.below(std::min<std::size_t>(actions_.size(), 8))].id);
        body = boost::json::object{{"v", small()}};
        what = "after";
    }
    auto shown = path;  // the trace names actions #n, never by their random ids
    for (const auto& ref : edit_refs_)
        if (auto at = shown.find(ref.text); at != std::string::npos)
            shown.replace(at, ref.text.size(), "{#" + std::to_string(actions_[ref.parent].no) + ".id}");
    std::string note_text = std::string(detail::method_name(method)) + " " + shown + " (" + what;
    if (!o.coalesce_key.empty()) note_text += " coalesce=" + o.coalesce_key;
    for (const auto& id : o.after)
        if (auto i = index_of(id); i >= 0) note_text += " after=#" + std::to_string(actions_[std::size_t(i)].no);
    for (const auto& ref : edit_refs_) note_text += " ref=#" + std::to_string(actions_[ref.parent].no);
    if (!o.lane.empty()) note_text += " lane=" + o.lane;
    begin_step(note_text + ")");
    struct cancelling_scope {
        bool& flag;
        ~cancelling_scope() { flag = false; }
    } scope{cancelling_ = true};
    request(method, path, body, o, online_);
    edit_refs_.clear();
    if (alive_ && !violation_ && method == http_method::post) {
        const auto made = newest(path, method);
        if (made >= 0 && actions_[std::size_t(made)].st != state::removed) {
            if (what == "create" && path != "/things") notes_.push_back(std::size_t(made));
            if (path == "/things") things_.push_back(std::size_t(made));
        }
    }
    if (method == http_method::delete_ && path.rfind("/notes/", 0) == 0)  // that note is gone: new ones follow
        std::erase_if(notes_, [&](auto i) { return actions_[i].edit.parts.front().path == path; });
    if (notes_.size() > 4) notes_.erase(notes_.begin());
    if (things_.size() > 8) things_.erase(things_.begin());
    end_step();
}

template <class StorageFactory, class RetryPolicy, class Server, class Transport, class Connectivity>
void simulation<StorageFactory, RetryPolicy, Server, Transport, Connectivity>::runner::op_cancel()
{
    auto pending = indices(state::pending);
    if (pending.empty()) return step_poll("poll (app)");
    auto& t = actions_[pending[erng_.below(pending.size())]];
    begin_step("cancel #" + std::to_string(t.no));
    call_ = call::mutate;
    current_call_ = ++calls_;
    storage_fault_in_call_ = false;
    cancelling_ = true;
    bool done = false;
    const bool ok = guarded("cancel()", [&] { done = vault_->cancel(t.id); });
    cancelling_ = false;
    call_ = call::none;
    if (ok && alive_ && !violation_) {
        note(done ? "-> cancelled" : "-> refused");
        if (done) synced_floor_ = write_log_.size();  // synced before it returns
        if (done && t.st != state::removed)
            fail("lifecycle", "cancel #" + std::to_string(t.no) + " returned true without a `cancelled` event");
        else if (!done && !storage_fault_in_call_ && t.st == state::pending)
            fail("send-or-queue", "cancel #" + std::to_string(t.no) + " refused a pending action not in flight");
    }
    end_step();
}

// ---- request calls --------------------------------------------------------------------------------

template <class StorageFactory, class RetryPolicy, class Server, class Transport, class Connectivity>
std::vector<std::size_t>
simulation<StorageFactory, RetryPolicy, Server, Transport, Connectivity>::runner::parents_of(const request_options& o,
                                                                                             bool dead_too) const
{
    std::vector<std::size_t> out;
    auto add = [&](std::string_view id) {
        const auto i = index_of(id);
        if (i < 0) return;
        const auto st = actions_[std::size_t(i)].st;
        if ((st == state::pending || (dead_too && st == state::dead)) &&
            std::find(out.begin(), out.end(), std::size_t(i)) == out.end())
            out.push_back(std::size_t(i));
    };
    for (const auto& id : o.after) add(id);
    for (const auto& ref : edit_refs_) add(actions_[ref.parent].id);
    return out;
}

template <class StorageFactory, class RetryPolicy, class Server, class Transport, class Connectivity>
bool simulation<StorageFactory, RetryPolicy, Server, Transport, Connectivity>::runner::edit_result(
    http_method method, const std::string& path, const std::string& body, const request_options& o,
    const std::vector<detail::placeholder>& refs, const send_result& r, bool made_none)
{
    if (!made_none) return false;
    if (r.error() == make_error_code(errc::dependency_failed)) {
        const bool dead_parent = std::any_of(o.after.begin(), o.after.end(), [&](const auto& id) {
            const auto i = index_of(id);
            return i >= 0 && actions_[std::size_t(i)].st == state::dead;
        });
        const bool gone_ref = std::any_of(refs.begin(), refs.end(),
                                          [&](const auto& ref) { return actions_[ref.parent].st != state::pending; });
        if (!dead_parent && !gone_ref)
            fail("dependency", "a request was refused with dependency_failed though no parent it names is dead");
        return true;
    }
    const auto i = index_of(r.action_id());
    if (o.coalesce_key.empty() || i < 0) return false;
    auto& x = actions_[std::size_t(i)];
    const auto n = "#" + std::to_string(x.no);
    if (r.error() == errc::storage_failed) {
        x.edit.uncertain = true;  // the merged form may have reached the disk, or not
        return true;              // a merge needs no room: a full queue does not refuse it
    }
    if (!r.is_queued()) return false;
    if (x.edit.coalesce_key != o.coalesce_key || x.lane != o.lane)
        return fail("lost-update", "a request with coalesce key " + o.coalesce_key + " was merged into " + n +
                                       ", of another key or lane"),
               true;
    for (const auto& y : actions_)
        if (&y != &x && y.st == state::pending && y.lane == x.lane && y.edit.coalesce_key == o.coalesce_key &&
            y.sequence > x.sequence)
            return fail("lost-update", "a request was merged into " + n + ", not into #" + std::to_string(y.no) +
                                           ", the newest pending action with its coalesce key"),
                   true;
    if (applied_count(x.key) > 0 || x.attempts > 0)
        return fail("lost-update",
                    "a request was merged into " + n + (x.rolled_back ? " (back from a power cut)" : "") + " after " +
                        (applied_count(x.key) > 0 ? "the server applied it (a replay answers with the "
                                                    "stored response: the merged part never takes effect)"
                                                  : "an attempt of it started")),
               true;
    if (x.st == state::removed) {  // a DELETE cancelled a never-sent POST
        if (method != http_method::delete_ || x.method != http_method::post || !x.removed_by)
            fail("coalescing", "a " + std::string(detail::method_name(method)) + " cancelled " + n);
        note("(" + n + " cancelled with the DELETE)");
        synced_floor_ = write_log_.size();  // synced before it returns
        return true;
    }
    if (x.st != state::pending) return fail("lost-update", "a request was merged into " + n + ", not pending"), true;
    const auto pending = vault_->pending_actions();
    auto it = std::find_if(pending.begin(), pending.end(), [&](const auto& a) { return a.id == x.id; });
    if (it == pending.end()) return fail("status", n + " took a merge but is not in pending_actions()"), true;
    x.method = it->method;
    x.path = it->path;
    x.body = it->body;
    x.edit.parts.push_back({method, path, body});
    for (const auto& ref : refs)
        if (std::none_of(x.edit.refs.begin(), x.edit.refs.end(), [&](const auto& h) { return h.text == ref.text; }))
            x.edit.refs.push_back(ref);
    ++stats_.coalesced;
    synced_floor_ = write_log_.size();  // synced before it returns
    note("(merged into " + n + ": " + std::to_string(x.edit.parts.size()) + " requests)");
    return true;
}

// ---- events -------------------------------------------------------------------------------------------

template <class StorageFactory, class RetryPolicy, class Server, class Transport, class Connectivity>
void simulation<StorageFactory, RetryPolicy, Server, Transport, Connectivity>::runner::on_cancelled(tracked& t,
                                                                                                    const sync_event& e)
{
    const auto n = "#" + std::to_string(t.no);
    if (t.awaiting || t.st != state::pending)
        return fail("lifecycle", n + " was cancelled while not pending or in flight");
    if (e.error != make_error_code(errc::cancelled))
        return fail("lifecycle", n + "'s `cancelled` carries another error");
    if (t.shadow) return fail("durability", n + "'s `cancelled` fired before its removal was written");
    t.st = state::removed;
    t.removed_by = "cancellation";
    ++stats_.cancelled;
    doom_dependents(t);
}

template <class StorageFactory, class RetryPolicy, class Server, class Transport, class Connectivity>
void simulation<StorageFactory, RetryPolicy, Server, Transport, Connectivity>::runner::doom_dependents(const tracked& p)
{
    const auto at = std::size_t(&p - actions_.data());
    for (auto& d : actions_)
        if (d.st == state::pending && std::find(d.edit.waits.begin(), d.edit.waits.end(), at) != d.edit.waits.end())
            d.edit.doomed = true;
}

template <class StorageFactory, class RetryPolicy, class Server, class Transport, class Connectivity>
bool simulation<StorageFactory, RetryPolicy, Server, Transport, Connectivity>::runner::dependency_dead(
    tracked& t, const sync_event&)
{
    const auto n = "#" + std::to_string(t.no);
    // Not doomed: a placeholder whose parent left without filling it (cleared, lost in a crash).
    const bool orphan = std::any_of(t.edit.refs.begin(), t.edit.refs.end(), [&](const auto& ref) {
        const auto st = actions_[ref.parent].st;
        return st == state::removed || st == state::dead;
    });
    if (!t.edit.doomed && !orphan) {
        fail("dependency", n + " was dead-lettered with dependency_failed though no action it waits for failed");
        return true;
    }
    if (t.sends > 0) {
        fail("dependency", n + " was sent before its parent failed");
        return true;
    }
    t.edit.dependency_dead = true;
    ++stats_.dependency_failed;
    return true;
}

template <class StorageFactory, class RetryPolicy, class Server, class Transport, class Connectivity>
bool simulation<StorageFactory, RetryPolicy, Server, Transport, Connectivity>::runner::requeue_refused(
    const tracked& t) const
{
    const auto dead = vault_->dead_letters();
    auto it = std::find_if(dead.begin(), dead.end(), [&](const auto& a) { return a.id == t.id; });
    if (it == dead.end()) return false;
    for (const auto& id : it->after)
        if (auto i = index_of(id); i >= 0 && actions_[std::size_t(i)].st == state::dead) return true;
    if (!detail::has_placeholder(it->path) && !detail::has_placeholder(it->body)) return false;
    return std::any_of(t.edit.refs.begin(), t.edit.refs.end(),
                       [&](const auto& ref) { return actions_[ref.parent].st != state::pending; });
}

// ---- on the wire -------------------------------------------------------------------------------------

template <class StorageFactory, class RetryPolicy, class Server, class Transport, class Connectivity>
std::string
simulation<StorageFactory, RetryPolicy, Server, Transport, Connectivity>::runner::filled(const tracked& x,
                                                                                         std::string text) const
{
    for (const auto& ref : x.edit.refs) {
        auto id = assigned_.find(actions_[ref.parent].key);
        if (id == assigned_.end()) continue;
        for (auto at = text.find(ref.text); at != std::string::npos; at = text.find(ref.text, at + id->second.size()))
            text.replace(at, ref.text.size(), id->second);
    }
    return text;
}

template <class StorageFactory, class RetryPolicy, class Server, class Transport, class Connectivity>
void simulation<StorageFactory, RetryPolicy, Server, Transport, Connectivity>::runner::edits_on_send(
    tracked& x, const http_request& r)
{
    const auto n = "#" + std::to_string(x.no);
    bool in_header = false;
    for (const auto& h : r.headers) in_header = in_header || detail::has_placeholder(h.value);
    if (detail::has_placeholder(r.url) || detail::has_placeholder(r.body) || in_header)
        return fail("placeholder", n + " reached the server with a placeholder in its " +
                                       (detail::has_placeholder(r.url) ? "path: " + r.url
                                        : in_header                    ? std::string("headers")
                                                                       : "body: " + r.body));
    for (auto p : x.edit.waits) {
        const auto& parent = actions_[p];
        // (A parent clear_queue() removed holds nothing back any more: SPEC 9.4.)
        if (parent.st == state::removed && !parent.edit.succeeded &&
            std::string_view(parent.removed_by ? parent.removed_by : "") != "cancellation")
            continue;
        if (parent.st == state::pending || !parent.edit.succeeded || applied_count(parent.key) == 0)
            return fail("dependency", n + " reached the server before #" + std::to_string(parent.no) +
                                          ", which it waits for, succeeded there");
    }
    for (const auto& ref : x.edit.refs) {
        const auto& parent = actions_[ref.parent];
        const auto id = assigned_.find(parent.key);
        if (id == assigned_.end())
            return fail("response-ref",
                        n + " reached the server, but #" + std::to_string(parent.no) + " never got an id from it");
        if (r.url != cfg_.base_url + filled(x, x.path) || r.body != filled(x, x.body))
            return fail("response-ref", n + " sent " + r.url + " " + r.body + ", not the id " + id->second +
                                            " the server assigned to #" + std::to_string(parent.no));
    }
    if (!x.edit.refs.empty()) ++stats_.refs_filled;
}

template <class StorageFactory, class RetryPolicy, class Server, class Transport, class Connectivity>
void simulation<StorageFactory, RetryPolicy, Server, Transport, Connectivity>::runner::edits_on_applied(
    tracked& x, const http_request&, const http_response& reply)
{
    std::string id;
    if (x.method == http_method::post) {
        if (auto a = assigned_id(reply.body)) {
            id = *a;
            assigned_[x.key] = id;
        }
    }
    if constexpr (requires(const Server& s) {
                      {
                          s.objects()
                          } -> std::convertible_to<const object_map&>;
                  }) {
        if (x.edit.uncertain) {
            world_ = server_.objects();  // which form the server got is not pinned down
            return;
        }
        for (const auto& part : x.edit.parts)
            apply_request(world_, part.method, cfg_.base_url + filled(x, part.path), filled(x, part.body), id);
        const auto& objects = server_.objects();
        if (objects == world_) return;
        std::string where;
        for (const auto& [path, v] : objects)
            if (auto it = world_.find(path); where.empty() && (it == world_.end() || it->second != v))
                where = path + " is " + boost::json::serialize(v) + ", the requests one by one give " +
                        (it == world_.end() ? std::string("nothing") : boost::json::serialize(it->second));
        for (const auto& [path, v] : world_)
            if (where.empty() && !objects.contains(path))
                where = path + " is missing; the requests one by one give " + boost::json::serialize(v);
        fail("coalescing", "after #" + std::to_string(x.no) + "'s effect (" + std::to_string(x.edit.parts.size()) +
                               " requests folded into it), " + where);
    }
}

// ---- the step-level check -------------------------------------------------------------------------

template <class StorageFactory, class RetryPolicy, class Server, class Transport, class Connectivity>
void simulation<StorageFactory, RetryPolicy, Server, Transport, Connectivity>::runner::edits_check_state()
{
    for (const auto& d : actions_)
        if (d.edit.doomed && d.st == state::pending)
            return fail("dependency", "#" + std::to_string(d.no) +
                                          " is still pending though an action it waits for failed or was cancelled");
}

}  // namespace syncvault::testing

#endif
