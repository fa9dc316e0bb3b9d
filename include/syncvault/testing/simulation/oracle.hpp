#ifndef SYNCVAULT_TESTING_SIMULATION_ORACLE_HPP
#define SYNCVAULT_TESTING_SIMULATION_ORACLE_HPP

/**
 * @file
 * The invariant oracle: every event, status change and the state after every step against
 * the model (SPEC 3, 7 and 9.1).
 */

#include <syncvault/testing/simulation/simulator.hpp>
#include <boost/json.hpp>

#include <algorithm>
#include <chrono>
#include <string>
#include <vector>

namespace syncvault::testing {

template <class StorageFactory, class RetryPolicy, class Server, class Transport, class Connectivity>
void simulation<StorageFactory, RetryPolicy, Server, Transport, Connectivity>::runner::on_status(sync_status s)
{
    if (!alive_ || violation_) return;
    if (!statuses_.empty() && statuses_.back() == s)
        return fail("status", std::string("on_status delivered ") + std::string(to_string(s)) + " twice in a row");
    statuses_.push_back(s);
}

template <class StorageFactory, class RetryPolicy, class Server, class Transport, class Connectivity>
void simulation<StorageFactory, RetryPolicy, Server, Transport, Connectivity>::runner::on_event(const sync_event& e)
{
    if (!alive_ || violation_) return;
    const auto i = index_of(e.action_id);
    if (e.status == sync_event_status::queued) return on_queued(e, i);
    if (i < 0) return fail("lifecycle", std::string(to_string(e.status)) + " event for an action never queued");
    auto& t = actions_[std::size_t(i)];
    const auto n = "#" + std::to_string(t.no);
    note(n + " " + std::string(to_string(e.status)) + ":" + std::to_string(e.attempt));
    if (e.idempotency_key != t.key) return fail("lifecycle", n + "'s event carries another key");
    if (!t.queued_seen)
        return fail("lifecycle", n + " has a " + std::string(to_string(e.status)) + " event before `queued`");
    if (t.removed_by)
        return fail("lifecycle",
                    n + " has a " + std::string(to_string(e.status)) + " event after " + t.removed_by + " removed it");

    switch (e.status) {
    case sync_event_status::started: return on_started(t, e);
    case sync_event_status::failed: return on_failed(t, e);
    case sync_event_status::success: return on_success(t, e);
    case sync_event_status::dead_letter: return on_dead(t, e);
    case sync_event_status::cancelled: return on_cancelled(t, e);
    default: return;
    }
}

template <class StorageFactory, class RetryPolicy, class Server, class Transport, class Connectivity>
void simulation<StorageFactory, RetryPolicy, Server, Transport, Connectivity>::runner::on_queued(const sync_event& e,
                                                                                                 int i)
{
    const auto pending = vault_->pending_actions();
    auto it = std::find_if(pending.begin(), pending.end(), [&](const auto& a) { return a.id == e.action_id; });
    if (it == pending.end()) {
        // Delivered late (it was published inside a callback): a later clear_queue() took it.
        if (i >= 0 && actions_[std::size_t(i)].st == state::removed && actions_[std::size_t(i)].removed_by) {
            note("#" + std::to_string(actions_[std::size_t(i)].no) + " queued (already cleared)");
            actions_[std::size_t(i)].queued_seen = true;
            return;
        }
        // Requeued from a callback, then cleared by a later callback before its `queued` was delivered.
        if (i >= 0 && actions_[std::size_t(i)].st == state::dead && status_uncertain_) {
            auto& t = actions_[std::size_t(i)];
            if (auto rq = std::find(requeued_.begin(), requeued_.end(), t.id); rq != requeued_.end()) {
                requeued_.erase(rq);
                note("#" + std::to_string(t.no) + " queued (requeued, already cleared)");
                t.st = state::removed;
                t.removed_by = "clear_queue()";
                return;
            }
        }
        return fail("lifecycle", "a `queued` event for an action not in the queue");
    }
    if (i < 0) i = int(add_action(*it));
    auto& t = actions_[std::size_t(i)];
    note("#" + std::to_string(t.no) + " queued" + (t.key.size() == 36 ? "" : " key=" + t.key));
    if (t.queued_seen) {
        const auto rq = std::find(requeued_.begin(), requeued_.end(), t.id);
        if (t.st != state::dead || rq == requeued_.end())
            return fail("lifecycle", "#" + std::to_string(t.no) + " has a second `queued` event");
        requeued_.erase(rq);
        // requeue: a new lifecycle
        t.attempts = 0;
        t.sends = 0;
        t.rolled_back = false;
        t.cut = 0;
        t.evicted = false;
        t.last_outcome.reset();
        t.unknown = t.unknown_at_send = t.applied_now = false;
        // SPEC 9.4: it waits again only for the parents still pending.
        t.edit.doomed = t.edit.dependency_dead = false;
        std::erase_if(t.edit.waits, [&](auto p) { return actions_[p].st != state::pending; });
    }
    for (const auto& o : actions_)
        if (&o != &t && o.queued_seen && o.sequence >= it->sequence && (o.st == state::pending || o.st == state::dead))
            return fail("fifo", "#" + std::to_string(t.no) + " was queued with sequence " +
                                    std::to_string(it->sequence) + ", not after #" + std::to_string(o.no) + "'s " +
                                    std::to_string(o.sequence));
    t.queued_seen = true;
    t.st = state::pending;
    t.sequence = it->sequence;
    t.created_at = it->created_at;
    t.next_attempt_at = it->next_attempt_at;
    if (it->attempts != 0)
        return fail("attempts", "#" + std::to_string(t.no) + " queued with attempts " + std::to_string(it->attempts));
    if (e.attempt != 0) return fail("lifecycle", "`queued` carries attempt " + std::to_string(e.attempt));
    if (cfg_.write_ahead || !immediate_expected_) expect_written_pending(t, "`queued` fired");
}

template <class StorageFactory, class RetryPolicy, class Server, class Transport, class Connectivity>
void simulation<StorageFactory, RetryPolicy, Server, Transport, Connectivity>::runner::on_started(tracked& t,
                                                                                                  const sync_event& e)
{
    const auto n = "#" + std::to_string(t.no);
    if (t.st != state::pending || t.awaiting)
        return fail("lifecycle",
                    n + " started while " + (t.awaiting ? "an attempt was already running" : "not pending"));
    if (e.attempt != t.attempts + 1)
        return fail("attempts", n + " started attempt " + std::to_string(e.attempt) + " after attempt " +
                                    std::to_string(t.attempts));
    if (e.attempt > attempt_limit(t))
        return fail("attempts", n + " started attempt " + std::to_string(e.attempt) + " (max_retries " +
                                    std::to_string(cfg_.max_retries) + cut_note(t) + ")");
    if (!online_) return fail("send-or-queue", n + " was attempted while offline");
    if (paused_) return fail("auth", n + " was attempted while the vault was paused (SPEC 9.3)");
    if (call_ == call::poll && e.time < t.next_attempt_at)
        return fail("timers", n + " was attempted by poll() at " + at(e.time) + ", before its next-attempt time " +
                                  at(t.next_attempt_at));
    if (cfg_.idempotency_key_lifetime.count() > 0 && e.time - t.created_at > cfg_.idempotency_key_lifetime)
        return fail("dead-letter", n + " was replayed after its idempotency key expired");
    for (const auto& o : actions_)
        if (o.st == state::pending && o.lane == t.lane && o.sequence < t.sequence)
            return fail("fifo", n + " started while #" + std::to_string(o.no) + ", queued before it in lane '" +
                                    t.lane + "', was pending");
    if (t.written || cfg_.write_ahead) {
        if (!t.shadow || t.shadow->state != action_state::pending || t.shadow->attempts != e.attempt)
            return fail("durability",
                        n + "'s attempt " + std::to_string(e.attempt) + " started before its count was stored");
    }
    t.attempts = e.attempt;
    t.awaiting = true;
}

/** Checks an outcome event against the transfer's real outcome; nullopt when it fits. */
template <class StorageFactory, class RetryPolicy, class Server, class Transport, class Connectivity>
std::optional<std::string>
simulation<StorageFactory, RetryPolicy, Server, Transport, Connectivity>::runner::outcome_mismatch(
    const tracked& t, const sync_event& e, outcome_kind want_kind)
{
    if (!t.awaiting || e.attempt != t.attempts) return "without a matching `started`";
    if (!t.last_outcome || t.last_outcome_attempt != t.attempts) return "without a transfer";
    const auto kind = expected_kind(t, *t.last_outcome);
    // A power cut may roll back the attempts that ended without an answer: either reading of a 409.
    const bool either = t.rolled_back && is_status(*t.last_outcome, 409);
    if (kind != want_kind && !either)
        return "but the transport returned " + detail::describe_outcome(*t.last_outcome) +
               ", which the retry table calls " + kind_name(kind);
    const auto& o = *t.last_outcome;
    if (o && (!e.response || e.response->status != o->status || e.response->body != o->body))
        return "carrying another response than the transport's " + detail::describe_outcome(o);
    return std::nullopt;
}

template <class StorageFactory, class RetryPolicy, class Server, class Transport, class Connectivity>
void simulation<StorageFactory, RetryPolicy, Server, Transport, Connectivity>::runner::on_failed(tracked& t,
                                                                                                 const sync_event& e)
{
    const auto n = "#" + std::to_string(t.no);
    if (t.awaiting && t.last_outcome && t.last_outcome_attempt == t.attempts && is_status(*t.last_outcome, 401)) {
        // SPEC 9.3: not an attempt that counts; refresh_auth once, or pause.
        if (e.attempt != t.attempts) return fail("outcome", n + "'s 401 `failed` event carries another attempt");
        if (!e.response || e.response->status != 401)
            return fail("outcome", n + "'s 401 `failed` event carries another response than the transport's");
        t.awaiting = false;
        t.attempts = e.attempt - 1;
        t.sends = std::max(0, t.sends - 1);
        last_failed_ = true;
        if (storage_fault_in_call_) t.stale_store = true;
        if (!storage_fault_in_call_ &&
            (!t.shadow || t.shadow->attempts != t.attempts || t.shadow->state != action_state::pending))
            return fail("durability", n + "'s 401 was reported before its attempt was taken back in storage");
        if (!cfg_.refresh_auth || refreshed_for_ == t.id) {
            paused_ = true;  // no hook, or a second 401 right after a refresh
            ++stats_.pauses;
            refreshed_for_.clear();
        } else {
            unauthorized_ = t.id;
        }
        return;
    }
    refreshed_for_.clear();
    if (auto why = outcome_mismatch(t, e, outcome_kind::retry))
        return fail("outcome", n + " failed:" + std::to_string(e.attempt) + " " + *why);
    if (e.attempt >= attempt_limit(t))
        return fail("dead-letter",
                    n + " failed attempt " + std::to_string(e.attempt) + " and will retry beyond max_retries");
    t.awaiting = false;
    last_failed_ = true;
    if (!t.shadow || t.shadow->attempts != e.attempt || t.shadow->state != action_state::pending)
        return fail("durability", n + "'s failed attempt was reported before it was stored");
    // The next attempt's time: Retry-After (capped) if given, never beyond the cap.
    const auto pending = vault_->pending_actions();
    auto it = std::find_if(pending.begin(), pending.end(), [&](const auto& a) { return a.id == t.id; });
    if (it == pending.end()) return fail("status", n + " failed but is not in pending_actions()");
    const auto cap = ms(vault_->retry_policy().max_delay());
    auto low = e.time;
    if (auto ra = retry_after_of(*t.last_outcome, e.time)) low = e.time + std::min(*ra, cap);
    if (it->next_attempt_at < low || it->next_attempt_at > e.time + cap)
        return fail("timers", n + "'s next attempt is at " + at(it->next_attempt_at) + ", outside [" + at(low) + ", " +
                                  at(e.time + cap) + "] (Retry-After and the cap)");
    t.next_attempt_at = it->next_attempt_at;
}

template <class StorageFactory, class RetryPolicy, class Server, class Transport, class Connectivity>
void simulation<StorageFactory, RetryPolicy, Server, Transport, Connectivity>::runner::on_success(tracked& t,
                                                                                                  const sync_event& e)
{
    const auto n = "#" + std::to_string(t.no);
    refreshed_for_.clear();
    if (auto why = outcome_mismatch(t, e, outcome_kind::success)) return fail("outcome", n + " success " + *why);
    if (applied_count(t.key) != 1)
        return fail("exactly-once", n + " reached success but its effect was applied " +
                                        std::to_string(applied_count(t.key)) + " times at the server");
    t.awaiting = false;
    t.st = state::success;
    t.edit.succeeded = true;
    last_failed_ = false;
    ++successes_in_call_;
    ++stats_.successes;
    if (t.shadow) return fail("durability", n + "'s success fired before its removal was written");
}

template <class StorageFactory, class RetryPolicy, class Server, class Transport, class Connectivity>
void simulation<StorageFactory, RetryPolicy, Server, Transport, Connectivity>::runner::on_dead(tracked& t,
                                                                                               const sync_event& e)
{
    const auto n = "#" + std::to_string(t.no);
    refreshed_for_.clear();
    if (t.awaiting) {
        if (e.attempt != t.attempts) return fail("lifecycle", n + " dead_letter for another attempt than started");
        // SPEC 9.3: no action is rejected whose effect the server applied (a 409 "in progress").
        if (t.last_outcome && is_status(*t.last_outcome, 409) && t.applied_now && t.attempts < cfg_.max_retries + 1 &&
            !t.rolled_back)
            return fail("409", n + " was dead-lettered on a 409 at attempt " + std::to_string(t.attempts) + " of " +
                                   std::to_string(cfg_.max_retries + 1) + ", though the server applied its effect");
        if (auto why = dead_letter_unjustified(t, t.attempts, t.created_at))
            return fail("dead-letter", n + " dead-lettered " + *why);
        const auto& o = *t.last_outcome;
        if (o && (!e.response || e.response->status != o->status))
            return fail("outcome", n + "'s dead_letter carries another response than the transport's");
        last_failed_ = true;
    } else if (e.error == make_error_code(errc::dependency_failed) && dependency_dead(t, e)) {
        if (violation_) return;
    } else if (!(e.error == make_error_code(errc::key_expired) && cfg_.idempotency_key_lifetime.count() > 0 &&
                 e.time - t.created_at > cfg_.idempotency_key_lifetime) &&
               !(e.error == make_error_code(errc::max_retries_exceeded) && t.attempts >= cfg_.max_retries + 1 &&
                 (t.cut > 0 ||
                  std::find(dead_write_failed_.begin(), dead_write_failed_.end(), t.id) != dead_write_failed_.end()))) {
        return fail("lifecycle", n + " dead-lettered without an attempt, an expired key or a spent budget");
    }
    t.awaiting = false;
    t.st = t.evicted ? state::removed : state::dead;
    ++stats_.dead_letters;
    const bool write_failed =
        std::find(dead_write_failed_.begin(), dead_write_failed_.end(), t.id) != dead_write_failed_.end();
    if (!t.evicted && !write_failed && (!t.shadow || t.shadow->state != action_state::dead))
        return fail("durability", n + "'s dead_letter fired before it was stored as dead");
    doom_dependents(t);  // SPEC 9.4: they follow it at once
}

/** Why a dead letter at `attempts` would be unjustified; nullopt when it is justified. */
template <class StorageFactory, class RetryPolicy, class Server, class Transport, class Connectivity>
std::optional<std::string>
simulation<StorageFactory, RetryPolicy, Server, Transport, Connectivity>::runner::dead_letter_unjustified(
    const tracked& t, int attempts, time_point created_at)
{
    if (cfg_.idempotency_key_lifetime.count() > 0 && clock_.now() - created_at > cfg_.idempotency_key_lifetime)
        return std::nullopt;
    // Attempts cut short by crashes count too: once they spend the budget, the action is dead
    // (max_retries_exceeded) whatever the lost outcome was, rather than sent once too often.
    if (attempts >= cfg_.max_retries + 1 && t.cut > 0) return std::nullopt;
    if (!t.last_outcome || t.last_outcome_attempt != attempts) return "without an attempt or an expired key";
    if (is_status(*t.last_outcome, 401)) return std::string("after a 401 (SPEC 9.3: a 401 pauses, never dead-letters)");
    const auto kind = expected_kind(t, *t.last_outcome);
    if (t.rolled_back && is_status(*t.last_outcome, 409)) return std::nullopt;
    if (kind == outcome_kind::permanent) return std::nullopt;
    if (kind == outcome_kind::retry && attempts >= cfg_.max_retries + 1) return std::nullopt;
    return "after " + detail::describe_outcome(*t.last_outcome) + " (the retry table says " + kind_name(kind) +
           ") at attempt " + std::to_string(attempts) + " of " + std::to_string(cfg_.max_retries + 1);
}

template <class StorageFactory, class RetryPolicy, class Server, class Transport, class Connectivity>
void simulation<StorageFactory, RetryPolicy, Server, Transport, Connectivity>::runner::check_state()
{
    if (!vault_ || !alive_ || violation_) return;
    if (!unauthorized_.empty()) return fail("auth", "a 401 neither called refresh_auth nor paused the vault");
    if (vault_->is_paused() != paused_)
        return fail("auth", std::string("is_paused() is ") + (paused_ ? "false" : "true") + "; the model says " +
                                (paused_ ? "paused (a 401 refresh could not cure)" : "not paused"));
    for (const auto& t : actions_)
        if (t.awaiting && !t.cleared_in_flight)
            return fail("lifecycle", "#" + std::to_string(t.no) + "'s attempt has no outcome event");
    std::vector<const tracked*> expected;
    for (const auto& t : actions_)
        if (t.st == state::pending) expected.push_back(&t);
    std::sort(expected.begin(), expected.end(), [](auto* a, auto* b) { return a->sequence < b->sequence; });
    const auto pending = vault_->pending_actions();
    if (pending.size() != expected.size() || vault_->pending_count() != expected.size())
        return fail("status", "pending_actions() holds " + std::to_string(pending.size()) + " actions; the model " +
                                  std::to_string(expected.size()));
    for (std::size_t k = 0; k < pending.size(); ++k) {
        const auto& a = pending[k];
        const auto& t = *expected[k];
        if (a.id != t.id)
            return fail("fifo", "pending_actions()[" + std::to_string(k) + "] is not #" + std::to_string(t.no));
        if (a.attempts != t.attempts)
            return fail("attempts", "#" + std::to_string(t.no) + " shows " + std::to_string(a.attempts) +
                                        " attempts; it started " + std::to_string(t.attempts));
        if (!t.shadow || t.shadow->state != action_state::pending ||
            (t.shadow->attempts != a.attempts && !(t.stale_store && t.shadow->attempts == a.attempts + 1)))
            return fail("durability", "pending #" + std::to_string(t.no) + " is not stored as it is");
    }
    const auto dead = vault_->dead_letters();
    std::vector<std::string> dead_ids, model_dead;
    for (const auto& a : dead) dead_ids.push_back(a.id);
    for (const auto& t : actions_)
        if (t.st == state::dead) model_dead.push_back(t.id);
    std::sort(dead_ids.begin(), dead_ids.end());
    std::sort(model_dead.begin(), model_dead.end());
    if (dead_ids != model_dead)
        return fail("status", "dead_letters() holds " + std::to_string(dead_ids.size()) + " actions; the model " +
                                  std::to_string(model_dead.size()));
    for (const auto& t : actions_)
        if (t.st == state::dead && (!t.shadow || t.shadow->state != action_state::dead) &&
            std::find(dead_write_failed_.begin(), dead_write_failed_.end(), t.id) == dead_write_failed_.end())
            return fail("durability", "dead letter #" + std::to_string(t.no) + " is not stored as dead");
    const auto want = last_failed_ || paused_ ? sync_status::error
                      : expected.empty()      ? sync_status::synced
                                              : sync_status::pending;
    const auto got = vault_->status();
    if (status_uncertain_ &&
        (got == sync_status::error || got == (expected.empty() ? sync_status::synced : sync_status::pending))) {
        // A clear_queue() from a callback: events published before it may have been delivered
        // after it, so whether the last attempt's failure still counts is the vault's to say.
        // (While paused the status is error whatever; the question stays open until resume().)
        if (paused_)
            paused_uncertain_ = true;
        else
            last_failed_ = got == sync_status::error;
    } else if (got == sync_status::error && want != got && storage_unrecovered_) {
        // A failing storage keeps the vault in error (it waits to retry its writes), a cleared queue too.
    } else if (got != want)
        return fail("status",
                    "status() is " + std::string(to_string(got)) + "; SPEC 3.11 says " + std::string(to_string(want)));
    if (statuses_.empty() || statuses_.back() != got) return fail("status", "the last on_status value is not status()");
    edits_check_state();
}

/** SPEC 9.3: the outcome kind of `o` for `t`: a 409 after an unknown outcome is a retry. */
template <class StorageFactory, class RetryPolicy, class Server, class Transport, class Connectivity>
outcome_kind simulation<StorageFactory, RetryPolicy, Server, Transport, Connectivity>::runner::expected_kind(
    const tracked& t, const result<http_response>& o) const
{
    if (is_status(o, 409) && t.unknown_at_send) return outcome_kind::retry;
    return outcome_of(o);
}

template <class StorageFactory, class RetryPolicy, class Server, class Transport, class Connectivity>
void simulation<StorageFactory, RetryPolicy, Server, Transport, Connectivity>::runner::expect_written_pending(
    const tracked& t, const std::string& when)
{
    if (!t.shadow || t.shadow->state != action_state::pending || t.shadow->sequence != t.sequence)
        fail("durability", "#" + std::to_string(t.no) + " was not stored as pending when " + when);
}

}  // namespace syncvault::testing

#endif
