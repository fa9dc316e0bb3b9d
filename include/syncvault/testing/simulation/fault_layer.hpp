#ifndef SYNCVAULT_TESTING_SIMULATION_FAULT_LAYER_HPP
#define SYNCVAULT_TESTING_SIMULATION_FAULT_LAYER_HPP

/**
 * @file
 * What the seams do in a run: the network's fault layer in front of the server model, the
 * transfer probe's checks, and the log of every storage write the durability checks read.
 */

#include <syncvault/testing/simulation/simulator.hpp>
#include <boost/json.hpp>

#include <algorithm>
#include <chrono>
#include <string>
#include <vector>

namespace syncvault::testing {

template <class StorageFactory, class RetryPolicy, class Server, class Transport, class Connectivity>
result<http_response>
simulation<StorageFactory, RetryPolicy, Server, Transport, Connectivity>::runner::network_send(const http_request& r)
{
    if (!alive_) return make_error_code(errc::connection_failed);  // nothing leaves a dead process
    crash_point("before the request reached the network");
    if (!alive_) return make_error_code(errc::connection_failed);
    ++stats_.requests;

    tracked* x = nullptr;
    if (!direct_) {
        x = in_flight();
        if (!x) {
            fail("fifo", "the network saw a request (" + r.url + ") while no attempt was in flight");
            return make_error_code(errc::connection_failed);
        }
        edits_on_send(*x, r);
        if (violation_) return make_error_code(errc::connection_failed);
        const auto key = find_header(r.headers, cfg_.idempotency_header);
        if (!key || *key != x->key || r.method != x->method || r.body != filled(*x, x->body) ||
            r.url != cfg_.base_url + filled(*x, x->path)) {
            const auto what = std::string(detail::method_name(r.method)) + " " + r.url;
            std::string whose = (key ? "a request with an unknown key (" : "a request without a key (") + what + ")";
            for (const auto& o : actions_)
                if (key && o.key == *key && r.url == cfg_.base_url + o.path)
                    whose = "#" + std::to_string(o.no) + "'s request";
            fail("fifo", "the network saw " + whose + " while #" + std::to_string(x->no) +
                             "'s attempt was in flight (reordered, replayed or altered)");
            return make_error_code(errc::connection_failed);
        }
    }

    if (x) {
        for (const auto& h : x->headers) {
            const bool sensitive = std::any_of(cfg_.sensitive_headers.begin(), cfg_.sensitive_headers.end(),
                                               [&](const auto& s) { return header_name_equals(s, h.name); });
            const bool present = std::any_of(r.headers.begin(), r.headers.end(), [&](const auto& g) { return g == h; });
            if (present != (!sensitive || x->process == processes_)) {
                fail("headers",
                     "#" + std::to_string(x->no) + "'s attempt " + (present ? "carries " : "lacks ") + h.name +
                         (sensitive ? (present ? " in a later process" : " in the process it was given to") : ""));
                return make_error_code(errc::connection_failed);
            }
        }
    }
    const std::string who = x ? "#" + std::to_string(x->no) : std::string("read");
    clock_.advance(ms{rng_.between(0, 300)});  // latency
    enum {
        none,
        refused,
        timeout,
        lost,
        proxy_5xx,
        applied_5xx,
        too_many_seconds,
        too_many_date,
        unavailable,
        request_timeout
    };
    int fault = none;
    if (opt_.faults && fault_rate_ > 0 && rng_.chance(fault_rate_)) {
        const unsigned weights[] = {0, 15, 10, 15, 15, 5, 10, 8, 7, 5};
        fault = int(rng_.weighted(weights));
        ++stats_.faults;
    }
    auto retry_after = [&](bool date) {
        const auto s = rng_.between(0, 90);
        return date ? format_http_date(clock_.now() + std::chrono::seconds{s}) : std::to_string(s);
    };
    result<http_response> out = make_error_code(errc::connection_failed);
    switch (fault) {
    case refused: note("net " + who + ": connection refused"); return make_error_code(errc::connection_failed);
    case timeout:
        clock_.advance(cfg_.receive_timeout);
        note("net " + who + ": timed out before the server");
        return make_error_code(errc::timeout);
    case proxy_5xx: {
        constexpr int codes[] = {500, 502, 503, 504};
        http_response resp{codes[rng_.below(4)], {}, "proxy"};
        if (resp.status == 503 && rng_.chance(0.5))
            resp.headers.push_back({"Retry-After", retry_after(rng_.chance(0.5))});
        note("net " + who + ": proxy answers " + detail::describe_outcome(resp));
        return resp;
    }
    case too_many_seconds:
    case too_many_date: {
        http_response resp{429, {{"Retry-After", retry_after(fault == too_many_date)}}, "slow down"};
        note("net " + who + ": " + detail::describe_outcome(resp));
        return resp;
    }
    case unavailable: {
        http_response resp{503, {}, "maintenance"};
        if (rng_.chance(0.7)) resp.headers.push_back({"Retry-After", retry_after(rng_.chance(0.5))});
        note("net " + who + ": " + detail::describe_outcome(resp));
        return resp;
    }
    case request_timeout: note("net " + who + ": 408"); return http_response{408, {}, "request timeout"};
    default: break;
    }

    auto reply = server_.handle(r, clock_.now());
    note("server " + who + ": " + std::to_string(reply.response.status) + (reply.applied ? " (applied)" : ""));
    if (reply.applied && x) {
        ++stats_.effects;
        on_applied(*x);
        if (!violation_) edits_on_applied(*x, r, reply.response);
        if (violation_) return make_error_code(errc::connection_failed);
    } else if (reply.applied) {
        if (auto key = find_header(r.headers, cfg_.idempotency_header)) ++applied_[std::string(*key)];
    }
    if (reply.response.status == 401) ++stats_.unauthorized;
    if (reply.response.status == 409) ++stats_.conflicts;
    // The client will never see this answer: the key stays "in progress" for a while (SPEC 9.3).
    auto hold = [&] {
        if constexpr (requires(Server & s) { s.hold_in_progress(std::string(), clock_.now()); })
            if (reply.applied && processing_.count() > 0)
                if (auto key = find_header(r.headers, cfg_.idempotency_header))
                    server_.hold_in_progress(std::string(*key), clock_.now() + processing_);
    };
    crash_point("after the server answered");
    if (!alive_) {
        hold();
        return make_error_code(errc::connection_failed);
    }
    if (fault == lost) {
        hold();
        note("net " + who + ": response lost");
        if (rng_.chance(0.5)) clock_.advance(cfg_.receive_timeout);
        return make_error_code(rng_.chance(0.5) ? errc::timeout : errc::connection_failed);
    }
    if (fault == applied_5xx) {
        note("net " + who + ": gateway answers 504 after the server applied it");
        return http_response{504, {}, "gateway timeout"};
    }
    return std::move(reply.response);
}

template <class StorageFactory, class RetryPolicy, class Server, class Transport, class Connectivity>
void simulation<StorageFactory, RetryPolicy, Server, Transport, Connectivity>::runner::on_applied(tracked& x)
{
    if (++applied_[x.key] > 1)
        return fail("exactly-once",
                    "the effect of key " + show_key(x) + " was applied twice (#" + std::to_string(x.no) + ")");
    x.applied_now = true;
    if (++x.applied > 1) return fail("exactly-once", "#" + std::to_string(x.no) + "'s effect was applied twice");
    for (const auto& y : actions_)
        if (y.st == state::pending && y.lane == x.lane && y.sequence < x.sequence && applied_count(y.key) == 0)
            return fail("fifo", "#" + std::to_string(x.no) + "'s effect was applied before that of #" +
                                    std::to_string(y.no) + ", queued earlier and still pending");
}

template <class StorageFactory, class RetryPolicy, class Server, class Transport, class Connectivity>
void simulation<StorageFactory, RetryPolicy, Server, Transport, Connectivity>::runner::transfer_begin(
    const http_request& r)
{
    if (!alive_ || violation_) return;
    if (auto key = find_header(r.headers, cfg_.idempotency_header)) ++wire_keys_[std::string(*key)];
    if (direct_) return;
    auto* x = in_flight();
    if (!x) return fail("lifecycle", "the transport was called without a `started` event");
    ++x->sends;
    storage_unrecovered_ = false;  // it recorded this attempt: its storage wait is over
    x->unknown_at_send = x->unknown;
    if (paused_) return fail("auth", "#" + std::to_string(x->no) + " was sent while the vault was paused");
    if (x->sends > attempt_limit(*x) && !x->rolled_back)
        return fail("attempts", "#" + std::to_string(x->no) + " was sent " + std::to_string(x->sends) +
                                    " times in one lifecycle (max_retries " + std::to_string(cfg_.max_retries) + ")");
    if (vault_->status() != sync_status::syncing)
        return fail("status",
                    std::string("status() is ") + std::string(to_string(vault_->status())) + " while a transfer runs");
    if (vault_->pending_count() != count(state::pending))
        return fail("status", "pending_count() is " + std::to_string(vault_->pending_count()) +
                                  " during a transfer; the model has " + std::to_string(count(state::pending)));
}

template <class StorageFactory, class RetryPolicy, class Server, class Transport, class Connectivity>
void simulation<StorageFactory, RetryPolicy, Server, Transport, Connectivity>::runner::transfer_end(
    const http_request&, const result<http_response>& outcome)
{
    if (!alive_ || violation_) return;
    if (direct_) {
        direct_outcome_ = outcome;
        return;
    }
    if (auto* x = in_flight()) {
        x->last_outcome = outcome;
        x->last_outcome_attempt = x->attempts;
        if (!outcome) x->unknown = true;
        if (x->cleared_in_flight) x->awaiting = false;  // cleared meanwhile: its transfer ends without an event
    }
}

template <class StorageFactory, class RetryPolicy, class Server, class Transport, class Connectivity>
void simulation<StorageFactory, RetryPolicy, Server, Transport, Connectivity>::runner::storage_before(
    storage_op, const sync_action*, std::string_view)
{
    crash_point("before a storage write");
}

template <class StorageFactory, class RetryPolicy, class Server, class Transport, class Connectivity>
void simulation<StorageFactory, RetryPolicy, Server, Transport, Connectivity>::runner::storage_after(
    storage_op op, const sync_action* a, std::string_view id, std::error_code ec)
{
    if (!alive_ || violation_ || ec) return;
    if (op == storage_op::save)
        record_save(*a);
    else if (op == storage_op::remove)
        record_remove(id);
    else
        for (auto& t : actions_)
            if (t.shadow) record_remove(t.id);
    crash_point("after a storage write");
}

template <class StorageFactory, class RetryPolicy, class Server, class Transport, class Connectivity>
void simulation<StorageFactory, RetryPolicy, Server, Transport, Connectivity>::runner::record_save(const sync_action& a)
{
    auto i = index_of(a.id);
    if (i < 0) i = int(add_action(a));
    auto& t = actions_[std::size_t(i)];
    t.stale_store = false;
    for (const auto& h : a.headers)
        for (const auto& s : cfg_.sensitive_headers)
            if (header_name_equals(h.name, s))
                return fail("durability", "#" + std::to_string(t.no) + " was stored with its " + h.name + " header");
    if (a.attempts > attempt_limit(t))
        return fail("attempts", "#" + std::to_string(t.no) + " stored with " + std::to_string(a.attempts) +
                                    " attempts (max_retries " + std::to_string(cfg_.max_retries) + cut_note(t) + ")");
    // (A dependent dead-lettered with its parent is saved before the parent's event: queue_edits.hpp
    // checks it at its event.)
    const bool dependency = a.last_error == int(errc::dependency_failed);
    if (a.state == action_state::dead && (!t.shadow || t.shadow->state != action_state::dead) && !dependency) {
        if (auto why = dead_letter_unjustified(t, a.attempts, a.created_at))
            return fail("dead-letter", "#" + std::to_string(t.no) + " stored as a dead letter " + *why);
    }
    if (call_ == call::construct && a.state == action_state::dead) {
        // SPEC 9.4: a dependent whose parent was found dead (or whose placeholder lost its
        // parent) while loading; check_reload accounts for it.
        dead_on_load_.push_back(std::size_t(i));
        t.shadow = a;
        return;
    }
    // A requeue starts a new lifecycle: a dead-letter move that failed in an earlier one no
    // longer describes what storage holds (file_journal seed 10768: a requeued action that a
    // clear then removed was taken for a dead letter the bounded list dropped).
    if (a.state == action_state::pending && t.shadow && t.shadow->sequence != a.sequence)
        std::erase(dead_write_failed_, a.id);
    const bool insert = !t.shadow;
    log_write(std::size_t(i), snap_of(a));
    t.shadow = a;
    if (insert) synced_floor_ = write_log_.size();  // an insert syncs everything before it
}

template <class StorageFactory, class RetryPolicy, class Server, class Transport, class Connectivity>
void simulation<StorageFactory, RetryPolicy, Server, Transport, Connectivity>::runner::record_remove(
    std::string_view id)
{
    const auto i = index_of(id);
    if (i < 0) return;
    auto& t = actions_[std::size_t(i)];
    if (call_ == call::construct) {  // the bounded dead-letter list, applied on load
        evicted_on_load_.push_back(std::size_t(i));
        return;
    }
    if (!t.shadow) return;
    // (A dead letter whose move could not be written is still stored as pending.)
    const bool dead = t.shadow->state == action_state::dead ||
                      // its move to the dead letters was tried and failed (its event, for a dependent
                      // dead-lettered with its parent, comes after the writes)
                      std::find(dead_write_failed_.begin(), dead_write_failed_.end(), t.id) != dead_write_failed_.end();
    const bool succeeded = t.last_outcome && t.last_outcome_attempt == t.shadow->attempts &&
                           outcome_of(*t.last_outcome) == outcome_kind::success;
    if (!(call_ == call::clear || cancelling_ || dead || succeeded))
        return fail("no-loss", "#" + std::to_string(t.no) + " was removed from storage without a success");
    if (dead && call_ != call::drop) {  // the bounded dead-letter list dropped its oldest
        note("#" + std::to_string(t.no) + " dropped from the bounded dead-letter list");
        if (t.st == state::dead)
            t.st = state::removed;
        else
            t.evicted = true;  // before its dead_letter event was delivered
    }
    log_write(std::size_t(i), {});
    t.shadow.reset();
}

template <class StorageFactory, class RetryPolicy, class Server, class Transport, class Connectivity>
void simulation<StorageFactory, RetryPolicy, Server, Transport, Connectivity>::runner::log_write(std::size_t i,
                                                                                                 snapshot s)
{
    actions_[i].writes.push_back(write_log_.size());
    actions_[i].written = true;
    write_log_.push_back({i, s});
}

template <class StorageFactory, class RetryPolicy, class Server, class Transport, class Connectivity>
std::size_t
simulation<StorageFactory, RetryPolicy, Server, Transport, Connectivity>::runner::add_action(const sync_action& a)
{
    tracked t;
    t.no = int(actions_.size()) + 1;
    t.id = a.id;
    t.key = a.idempotency_key;
    t.method = a.method;
    t.path = a.path;
    t.body = a.body;
    t.sequence = a.sequence;
    t.created_at = a.created_at;
    t.next_attempt_at = a.next_attempt_at;
    t.attempts = a.attempts;
    t.lane = a.lane;
    t.edit.coalesce_key = a.coalesce_key;
    t.edit.parts = {{a.method, a.path, a.body}};
    if (call_ == call::mutate) {  // the request being made now: remember what it was given
        t.headers = request_headers_;
        t.process = processes_;
    }
    t.origin = current_call_;
    actions_.push_back(std::move(t));
    by_id_.emplace(a.id, actions_.size() - 1);
    return actions_.size() - 1;
}

}  // namespace syncvault::testing

#endif
