#ifndef SYNCVAULT_TESTING_SIMULATION_FAULTS_HPP
#define SYNCVAULT_TESTING_SIMULATION_FAULTS_HPP

/**
 * @file
 * Faults inside the application and its policies (SPEC 9.1), injected from the run's seed:
 * listeners, `on_dead_letter`, `before_send` and `dispatch` that throw; listeners that call back
 * into the vault (post, clear_queue, requeue, drop_dead_letter), also while the action they
 * report is in flight; a storage whose `save` throws or fails for a while; a transport whose
 * `send` throws. The oracle's expectations under these faults are SPEC 9.1's:
 *
 * - no exception escapes a public vault call because of a callback or a policy (`exceptions`);
 * - a throwing `before_send` or `send` is a network-class failure of that attempt (`outcome`);
 * - a failed or throwing enqueue write returns `errc::storage_failed` and leaves the queue and
 *   the key unchanged; re-posting the key makes a new action (`send-or-queue`);
 * - a failed write of an attempt count: no attempt, status `error`, a backoff, never a spin, and
 *   a bounded number of diagnostics per failure episode (`status`, `liveness`);
 * - calls made from callbacks behave as if made one after another (every other invariant).
 *
 * One assumption about calls from callbacks: a post made from a `started` callback, or from the
 * `queued` callback of a request being sent at once, is queued (the head is taken), so its events
 * arrive after the callback returns. Posts are made from no other callback.
 */

#include <syncvault/testing/simulation/simulator.hpp>

#include <boost/json.hpp>

#include <algorithm>
#include <exception>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

namespace syncvault::testing {

template <class StorageFactory, class RetryPolicy, class Server, class Transport, class Connectivity>
template <class F>
bool simulation<StorageFactory, RetryPolicy, Server, Transport, Connectivity>::runner::guarded(std::string_view what,
                                                                                               F&& f)
{
    try {
        f();
        return true;
    } catch (const std::exception& e) {
        ++stats_.escapes;
        if (!alive_) return false;
        std::string after;
        try {
            after = " (afterwards status() is " + std::string(to_string(vault_->status())) + ", " +
                    std::to_string(vault_->pending_count()) + " pending)";
        } catch (...) {
        }
        if (opt_.tolerate_escapes)
            note("** exception escaped " + std::string(what) + ": " + e.what() + after);
        else
            fail("exceptions", std::string(what) + " let an exception escape: " + e.what() + after);
        return false;
    }
}

template <class StorageFactory, class RetryPolicy, class Server, class Transport, class Connectivity>
void simulation<StorageFactory, RetryPolicy, Server, Transport, Connectivity>::runner::install_user_callbacks()
{
    if (!opt_.throwing_callbacks && !opt_.reentrant_callbacks) return;
    user_event_sub_ = vault_->on_event([this](const sync_event& e) { user_event(e); });
    user_status_sub_ = vault_->on_status([this](sync_status s) { user_status(s); });
}

template <class StorageFactory, class RetryPolicy, class Server, class Transport, class Connectivity>
void simulation<StorageFactory, RetryPolicy, Server, Transport, Connectivity>::runner::user_event(const sync_event& e)
{
    if (!alive_ || violation_ || !injecting_) return;
    if (opt_.reentrant_callbacks && frng_.chance(reentry_rate_)) reenter(&e);
    if (!alive_ || violation_) return;
    if (opt_.throwing_callbacks && frng_.chance(callback_throw_rate_)) {
        ++stats_.callback_throws;
        note("(event listener throws on " + std::string(to_string(e.status)) + ")");
        throw sim_fault("simulated event listener threw");
    }
}

template <class StorageFactory, class RetryPolicy, class Server, class Transport, class Connectivity>
void simulation<StorageFactory, RetryPolicy, Server, Transport, Connectivity>::runner::user_status(sync_status s)
{
    if (!alive_ || violation_ || !injecting_) return;
    if (opt_.reentrant_callbacks && frng_.chance(reentry_rate_ / 2)) reenter(nullptr);
    if (!alive_ || violation_) return;
    if (opt_.throwing_callbacks && frng_.chance(callback_throw_rate_)) {
        ++stats_.callback_throws;
        note("(status listener throws on " + std::string(to_string(s)) + ")");
        throw sim_fault("simulated status listener threw");
    }
}

template <class StorageFactory, class RetryPolicy, class Server, class Transport, class Connectivity>
void simulation<StorageFactory, RetryPolicy, Server, Transport, Connectivity>::runner::reenter(const sync_event* e)
{
    // Posts only where the head is surely taken (see the file comment), and only with
    // write_ahead (the model learns of a nested action from its write).
    const bool in_flight_now = e && e->status == sync_event_status::started;
    const bool immediate_queued =
        e && e->status == sync_event_status::queued && call_ == call::mutate && immediate_expected_;
    const bool may_post = (in_flight_now || immediate_queued) && cfg_.write_ahead && callback_depth_ == 0;
    enum { post, clear, clear_then_post, requeue, drop };
    const unsigned weights[] = {may_post ? 3u : 0u, 2, may_post ? 3u : 0u, 2, 1};
    const auto what = frng_.weighted(weights);
    ++stats_.reentrant_calls;
    reentered_ = true;
    ++callback_depth_;
    const auto saved_call = call_;
    const bool saved_immediate = immediate_expected_;
    const auto saved_headers = request_headers_;
    const auto saved_current = current_call_;
    const auto saved_fault = std::exchange(storage_fault_in_call_, false);
    const auto saved_blocked = std::exchange(attempt_blocked_, false);
    const auto where = e ? "the " + std::string(to_string(e->status)) + " callback" : std::string("a status callback");
    auto nested_post = [&] {
        const auto path = "/items/" + std::to_string(frng_.below(20));
        request_options o;
        o.idempotency_key = frng_.chance(0.5) ? std::string() : "r" + std::to_string(++key_counter_);
        // In the lane whose head is taken, so it surely waits.
        if (auto* x = in_flight())
            o.lane = x->lane;
        else
            o.lane = request_lane_;
        const auto saved_lane = request_lane_;
        boost::json::value body = boost::json::object{{"n", ++body_counter_}, {"path", path}};
        note(">> from " + where + ": POST " + path + key_note(o));
        request(http_method::post, path, body, o, online_, true);
        request_lane_ = saved_lane;
    };
    auto nested_clear = [&] {
        note(">> from " + where + ": clear_queue()");
        current_call_ = ++calls_;
        call_ = call::clear;
        std::error_code ec;
        const bool ok = guarded("clear_queue() (from a callback)", [&] {
            if constexpr (std::is_void_v<decltype(vault_->clear_queue())>)
                vault_->clear_queue();
            else
                ec = vault_->clear_queue();
        });
        if (ok && alive_ && !violation_) {
            if (ec && !storage_fault_in_call_)
                fail("status", "clear_queue() reported " + ec.message() + " though no storage write failed");
            else if (!ec)
                model_cleared(true);
        }
    };
    switch (what) {
    case post: nested_post(); break;
    case clear: nested_clear(); break;
    case clear_then_post:
        nested_clear();
        if (alive_ && !violation_) nested_post();
        break;
    case requeue: {
        auto dead = indices(state::dead);
        if (dead.empty()) break;
        auto& t = actions_[dead[frng_.below(dead.size())]];
        note(">> from " + where + ": requeue #" + std::to_string(t.no));
        current_call_ = ++calls_;
        call_ = call::requeue;
        bool done = false;
        requeued_.push_back(t.id);
        if (guarded("requeue() (from a callback)", [&] { done = vault_->requeue(t.id); }) && !done)
            requeued_.pop_back();
        if (done) synced_floor_ = write_log_.size();  // SPEC 9.1: synced before it returns
        break;
    }
    case drop: {
        auto dead = indices(state::dead);
        if (dead.empty()) break;
        auto& t = actions_[dead[frng_.below(dead.size())]];
        note(">> from " + where + ": drop_dead_letter #" + std::to_string(t.no));
        current_call_ = ++calls_;
        call_ = call::drop;
        bool done = false;
        if (guarded("drop_dead_letter() (from a callback)", [&] { done = vault_->drop_dead_letter(t.id); }) && alive_ &&
            !violation_) {
            const bool requeued = std::find(requeued_.begin(), requeued_.end(), t.id) != requeued_.end();
            if (!done && requeued) {
                note("-> refused (requeued meanwhile; its `queued` event is still to come)");
            } else if (!done) {
                fail("status", "drop_dead_letter refused dead letter #" + std::to_string(t.no) + " (from a callback)");
            } else {
                t.st = state::removed;
                t.removed_by = "drop_dead_letter()";
                synced_floor_ = write_log_.size();
                if (t.shadow) fail("durability", "dropped dead letter #" + std::to_string(t.no) + " is still stored");
            }
        }
        break;
    }
    default: break;
    }
    call_ = saved_call;
    immediate_expected_ = saved_immediate;
    request_headers_ = saved_headers;
    current_call_ = saved_current;
    storage_fault_in_call_ = saved_fault || storage_fault_in_call_;
    attempt_blocked_ = saved_blocked || attempt_blocked_;
    --callback_depth_;
}

template <class StorageFactory, class RetryPolicy, class Server, class Transport, class Connectivity>
void simulation<StorageFactory, RetryPolicy, Server, Transport, Connectivity>::runner::model_cleared(bool nested)
{
    for (auto& t : actions_) {
        if (t.st != state::pending) continue;
        // SPEC 9.4: a dependent its parent took to the dead letters, its event still to come.
        if (t.shadow && t.shadow->state == action_state::dead && t.shadow->last_error == int(errc::dependency_failed))
            continue;
        // Requeued by a callback during the clear (its status callback), after the queue emptied: it stays.
        if (!nested && clear_scope_ &&
            std::find(clear_scope_->begin(), clear_scope_->end(), t.id) == clear_scope_->end())
            continue;
        t.st = state::removed;
        t.removed_by = "clear_queue()";
        if (t.awaiting) t.cleared_in_flight = true;
        if (t.shadow) fail("durability", "cleared action #" + std::to_string(t.no) + " is still stored");
    }
    last_failed_ = false;
    if (nested) status_uncertain_ = true;
    synced_floor_ = write_log_.size();  // SPEC 9.1: clear_queue is synced before it returns
}

template <class StorageFactory, class RetryPolicy, class Server, class Transport, class Connectivity>
void simulation<StorageFactory, RetryPolicy, Server, Transport, Connectivity>::runner::before_send_hook(http_request& r)
{
    if (!alive_ || violation_ || !injecting_ || !opt_.throwing_callbacks || !frng_.chance(callback_throw_rate_)) return;
    ++stats_.callback_throws;
    // A network-class failure of this attempt (SPEC 9.1): what the outcome checks expect.
    if (direct_) {
        direct_outcome_ = result<http_response>(make_error_code(errc::connection_failed));
    } else if (auto* x = in_flight()) {
        x->last_outcome = result<http_response>(make_error_code(errc::connection_failed));
        x->last_outcome_attempt = x->attempts;
        x->unknown_at_send = x->unknown;
        x->unknown = true;
        if (x->cleared_in_flight) x->awaiting = false;
    }
    note("(before_send throws for " + r.url + ")");
    throw sim_fault("simulated before_send threw");
}

template <class StorageFactory, class RetryPolicy, class Server, class Transport, class Connectivity>
std::error_code
simulation<StorageFactory, RetryPolicy, Server, Transport, Connectivity>::runner::storage_fault(storage_op op,
                                                                                                const sync_action* a)
{
    // Saves only: what a vault must do when a removal fails is not pinned down by SPEC 9.1.
    // With write_ahead off an action reaches storage only after a failed attempt; left out too.
    if (!alive_ || violation_ || call_ == call::construct || !opt_.storage_faults || !cfg_.write_ahead ||
        op != storage_op::save || !a)
        return {};
    const bool down = storage_down_until_ && clock_.now() < *storage_down_until_;
    const bool throws = !down && frng_.chance(storage_throw_rate_);
    if (!down && !throws) return {};
    storage_fault_in_call_ = true;
    storage_unrecovered_ = true;
    if (const auto i = index_of(a->id); i >= 0) {
        const auto& t = actions_[std::size_t(i)];
        if (t.st == state::pending && a->state == action_state::pending && a->attempts == t.attempts + 1) {
            attempt_blocked_ = true;  // an attempt count that cannot be recorded: no attempt, status error
            last_failed_ = true;
        } else if (t.st == state::pending) {
            // Any other write of a pending action (its failed attempt, its move to the dead
            // letters): SPEC 9.1 leaves the vault's status and its next step to it (it may keep
            // the action and back off), so the checks accept either.
            status_uncertain_ = true;
            if (a->state == action_state::dead) dead_write_failed_.push_back(a->id);
        }
    }
    const auto what = "#" + std::to_string(index_of(a->id) < 0 ? int(actions_.size()) + 1
                                                               : actions_[std::size_t(index_of(a->id))].no);
    if (down) {
        ++stats_.storage_failures;
        note("storage: save of " + what + " fails (disk full)");
        return std::make_error_code(std::errc::no_space_on_device);
    }
    ++stats_.storage_throws;
    note("storage: save of " + what + " throws");
    throw sim_fault("simulated storage: save threw");
}

template <class StorageFactory, class RetryPolicy, class Server, class Transport, class Connectivity>
bool simulation<StorageFactory, RetryPolicy, Server, Transport, Connectivity>::runner::transport_throws(
    const http_request& r)
{
    if (!alive_ || violation_ || !opt_.throwing_transport || !frng_.chance(transport_throw_rate_)) return false;
    ++stats_.transport_throws;
    note("transport: send throws for " + r.url);
    return true;
}

template <class StorageFactory, class RetryPolicy, class Server, class Transport, class Connectivity>
void simulation<StorageFactory, RetryPolicy, Server, Transport, Connectivity>::runner::op_storage_trouble()
{
    const auto d = ms{frng_.chance(0.7) ? frng_.between(1, 60) * 1'000 : frng_.between(1, 30) * 60'000};
    storage_down_until_ = clock_.now() + d;
    ++storage_episodes_;
    begin_step("storage: every save fails for " + std::to_string(d.count() / 1000) + "s (disk full)");
    end_step();
}

template <class StorageFactory, class RetryPolicy, class Server, class Transport, class Connectivity>
std::size_t simulation<StorageFactory, RetryPolicy, Server, Transport, Connectivity>::runner::diagnostics_count()
{
    if constexpr (requires { vault_->diagnostics(); })
        return vault_->diagnostics().size();
    else
        return 0;
}

}  // namespace syncvault::testing

#endif
