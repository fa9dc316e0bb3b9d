#ifndef SYNCVAULT_TESTING_SIMULATION_POWER_MODEL_HPP
#define SYNCVAULT_TESTING_SIMULATION_POWER_MODEL_HPP

/**
 * @file
 * Crashes and power cuts: where a run kills the process, how the store is put back, and the
 * check that what a new process reloads is explained by the writes before the crash (SPEC 7).
 */

#include <syncvault/testing/simulation/simulator.hpp>
#include <boost/json.hpp>

#include <algorithm>
#include <chrono>
#include <string>
#include <vector>

namespace syncvault::testing {

/** A seam: crash here if armed (or unconditionally between operations). */
template <class StorageFactory, class RetryPolicy, class Server, class Transport, class Connectivity>
void simulation<StorageFactory, RetryPolicy, Server, Transport, Connectivity>::runner::crash_point(const char* where,
                                                                                                   bool now)
{
    if (!alive_ || violation_ || !vault_ || call_ == call::construct) return;
    if (!now && (crash_countdown_ <= 0 || --crash_countdown_ > 0)) return;
    crash_image_ = factory_.capture(vault_->storage().inner());
    crash_writes_ = write_log_.size();
    crash_floor_ = StorageFactory::durable_inserts ? synced_floor_ : 0;
    alive_ = false;
    ++stats_.crashes;
    note(std::string("** crash ") + where);
}

/** After the call the crash interrupted: the process is gone; a new one starts. */
template <class StorageFactory, class RetryPolicy, class Server, class Transport, class Connectivity>
void simulation<StorageFactory, RetryPolicy, Server, Transport, Connectivity>::runner::restart()
{
    user_event_sub_.reset();
    user_status_sub_.reset();
    event_sub_.reset();
    status_sub_.reset();
    wake_sub_.reset();
    vault_.reset();
    requeued_.clear();
    paused_ = paused_uncertain_ = false;  // SPEC 9.3: a pause is not persisted
    refreshed_for_.clear();
    unauthorized_.clear();
    const bool power = power_cuts_ && rng_.chance(0.5);
    const bool dropped = factory_.restore(*crash_image_, power, rng_);
    crash_image_.reset();
    power_loss_ = power;
    if (power) ++stats_.power_cuts;
    begin_step(std::string("restart") + (power ? " after a power cut" : "") +
               (dropped ? " (unsynced bytes lost)" : ""));
    build_vault(true);
    end_step();
}

/** The store a new process reloaded must be explained by the writes before the crash. */
template <class StorageFactory, class RetryPolicy, class Server, class Transport, class Connectivity>
void simulation<StorageFactory, RetryPolicy, Server, Transport, Connectivity>::runner::check_reload()
{
    if (violation_) return;
    const auto pending = vault_->pending_actions();
    const auto dead = vault_->dead_letters();
    std::vector<snapshot> reloaded(actions_.size());
    std::vector<const sync_action*> loaded(actions_.size(), nullptr);
    for (const auto* list : {&pending, &dead})
        for (const auto& a : *list) {
            const auto i = index_of(a.id);
            if (i < 0) return fail("no-loss", "after the restart the vault holds an action no process ever wrote");
            reloaded[std::size_t(i)] = snap_of(a);
            loaded[std::size_t(i)] = &a;
        }
    for (std::size_t i = 0; i < actions_.size(); ++i) {
        const auto* a = loaded[i];
        const auto& t = actions_[i];
        // (Its method, path and body are checked with the writes below: coalescing and filled
        // placeholders rewrite them, SPEC 9.4.)
        if (a && a->idempotency_key != t.key)
            return fail("no-loss", "#" + std::to_string(t.no) + " came back from storage altered");
    }
    // SPEC 9.1: clear_queue() and drop_dead_letter() are synced before they return.
    for (std::size_t i = 0; i < actions_.size(); ++i)
        if (loaded[i] && actions_[i].removed_by)
            return fail("durability", "#" + std::to_string(actions_[i].no) + ", removed by a " +
                                          actions_[i].removed_by + " that returned, came back after a " +
                                          (power_loss_ ? "power cut" : "crash") +
                                          ": the edit was not synced before it returned");

    // Find a cut c of the write log, crash_floor_ <= c <= crash_writes_, that explains the store
    // (exactly the crash point when no power was lost).
    const std::size_t lo = power_loss_ ? std::min(crash_floor_, crash_writes_) : crash_writes_;
    std::vector<snapshot> at(actions_.size());
    // Dead letters the new process dropped while loading (the bounded list) must have been dead.
    std::vector<bool> evicted(actions_.size(), false);
    for (auto i : evicted_on_load_) evicted[i] = true;
    // SPEC 9.4: dependents the new process dead-lettered while loading were stored as they were.
    std::vector<bool> dead_loading(actions_.size(), false);
    for (auto i : dead_on_load_) dead_loading[i] = true;
    auto matches = [&](std::size_t i) {
        if (evicted[i]) return at[i].present && at[i].st == action_state::dead;
        if (dead_loading[i]) {
            auto was = reloaded[i];
            was.st = at[i].st;
            return at[i].present && at[i] == was;
        }
        return at[i] == reloaded[i];
    };
    std::size_t mismatched = 0;
    for (std::size_t i = 0; i < actions_.size(); ++i) mismatched += !matches(i);
    std::optional<std::size_t> cut;
    for (std::size_t c = 0; c <= crash_writes_; ++c) {
        if (c >= lo && mismatched == 0) {
            cut = c;
            break;
        }
        if (c == crash_writes_) break;
        const auto& w = write_log_[c];
        mismatched -= !matches(w.action);
        at[w.action] = w.snap;
        mismatched += !matches(w.action);
    }
    if (!cut) {
        // Describe the first difference from the state at the crash point.
        std::vector<snapshot> last(actions_.size());
        for (std::size_t c = 0; c < crash_writes_; ++c) last[write_log_[c].action] = write_log_[c].snap;
        std::string what;
        for (std::size_t i = 0; i < actions_.size() && what.empty(); ++i)
            if (!(last[i] == reloaded[i]) && !evicted[i])
                what = "#" + std::to_string(actions_[i].no) + " was " + describe(last[i]) +
                       " when the process died, and came back " + describe(reloaded[i]);
        const bool acked_lost = [&] {
            for (std::size_t i = 0; i < actions_.size(); ++i)
                if (last[i].present && !reloaded[i].present && actions_[i].acknowledged && !evicted[i]) return true;
            return false;
        }();
        return fail("no-loss", std::string(power_loss_ ? "after a power cut no prefix of the writes since the last sync"
                                                       : "after a crash the store is not what was written before it") +
                                   (acked_lost ? " (an acknowledged action is lost)" : "") + ": " + what);
    }
    if (*cut < crash_writes_)
        note("power cut kept " + std::to_string(*cut - lo) + " of " + std::to_string(crash_writes_ - lo) +
             " unsynced writes");
    // The writes after the cut never happened, as far as the new process is concerned.
    rewind_writes(*cut);
    for (auto i : std::exchange(dead_on_load_, {})) {
        note("#" + std::to_string(actions_[i].no) + " dead-lettered on load (its parent failed)");
        log_write(i, reloaded[i]);
        if (loaded[i]) actions_[i].shadow = *loaded[i];
    }
    for (auto i : std::exchange(evicted_on_load_, {})) {
        note("#" + std::to_string(actions_[i].no) + " dropped from the bounded dead-letter list on load");
        log_write(i, {});
        actions_[i].shadow.reset();
        actions_[i].st = state::removed;
        actions_[i].awaiting = false;
    }

    // The model follows the reloaded store.
    for (std::size_t i = 0; i < actions_.size(); ++i) {
        auto& t = actions_[i];
        const auto& r = reloaded[i];
        const bool was_awaiting = std::exchange(t.awaiting, false);
        if (r.present) {
            const auto& a = *loaded[i];
            // Its last attempt's outcome is lost (cut by the crash, or forgotten by a power
            // cut, perhaps back into an earlier lifecycle): one more attempt is tolerated
            // unless `count_cut_attempts`.
            if (r.st == action_state::pending && a.attempts > 0 &&
                (was_awaiting || t.st != state::pending || a.attempts != t.attempts)) {
                t.cut = std::max(t.cut + 1, a.attempts - cfg_.max_retries);
                t.unknown = true;
            }
            const auto st = r.st == action_state::dead ? state::dead : state::pending;
            if (st != t.st || a.attempts < t.attempts || a.sequence != t.sequence) {
                if (power_loss_) t.rolled_back = true;
                if (st == state::pending && t.st != state::pending) t.queued_seen = true;  // resurrected
            }
            if (st == state::pending && a.attempts < t.attempts) t.sends = std::min(t.sends, a.attempts);
            // What the reloaded record says of unknown outcomes (a requeue written just before the
            // crash starts a new lifecycle whose `queued` event never came).
            if (st == state::pending) t.unknown = a.answered < a.attempts;
            if (st == state::pending && a.attempts == 0) t.applied_now = false;
            // SPEC 9.4: a coalescing request the crash cut short may have been written, or not.
            if (a.method != t.method || a.path != filled(t, t.path) || a.body != filled(t, t.body))
                if (a.path != t.path || a.body != t.body) t.edit.uncertain = true;
            t.st = st;
            t.method = a.method;  // SPEC 9.4: as coalescing or a filled placeholder left it
            t.path = a.path;
            t.body = a.body;
            if (st == state::dead && a.last_error == int(errc::dependency_failed)) t.edit.dependency_dead = true;
            // A dependent filled with its parent's response (saved before the crash) no longer waits
            // for it: the parent succeeded at the server, whatever becomes of its record.
            if (st == state::pending)
                std::erase_if(t.edit.waits, [&](auto p) {
                    return std::find(a.after.begin(), a.after.end(), actions_[p].id) == a.after.end();
                });
            // A request whose call the crash cut short never told us what it waits for: storage does.
            if (!t.acknowledged && t.edit.waits.empty())
                for (const auto& parent : a.after)
                    if (auto p = by_id_.find(parent); p != by_id_.end() && actions_[p->second].st == state::pending) {
                        t.edit.waits.push_back(p->second);
                        const auto text = response_ref(parent, "/id");  // the workload's only pointer
                        if (a.path.find(text) != std::string::npos || a.body.find(text) != std::string::npos)
                            t.edit.refs.push_back({p->second, text});
                    }
            if (st == state::pending && t.edit.doomed) {
                // SPEC 9.4 after a crash: its parents came back pending (a power cut), or (SPEC 9.1)
                // its move to the dead letters could not be written, so it comes back pending and,
                // its parent gone from storage, nothing holds it back any more.
                const bool write_failed =
                    std::find(dead_write_failed_.begin(), dead_write_failed_.end(), t.id) != dead_write_failed_.end();
                const bool parents_back = std::all_of(t.edit.waits.begin(), t.edit.waits.end(), [&](auto p) {
                    return reloaded[p].present && reloaded[p].st == action_state::pending;
                });
                if (write_failed || parents_back) {
                    t.edit.doomed = false;
                    if (write_failed) {
                        note("#" + std::to_string(t.no) +
                             " comes back pending: its dead-letter write failed, its parent is gone");
                        std::erase_if(t.edit.waits, [&](auto p) { return !reloaded[p].present; });
                    }
                }
            }
            t.attempts = a.attempts;
            t.sequence = a.sequence;
            t.next_attempt_at = a.next_attempt_at;
            t.created_at = a.created_at;
            t.queued_seen = true;
            t.acknowledged = true;
            if (st == state::pending && a.next_attempt_at > clock_.now() + ms(vault_->retry_policy().max_delay()))
                return fail("timers", "#" + std::to_string(t.no) + " reloaded with a next attempt beyond the cap");
        } else if (t.st == state::pending || t.st == state::dead) {
            // Gone: its removal was written (a success, a clear or a drop whose end the crash
            // cut; record_remove vetted it), or it was never durable (write_ahead off, or a
            // power cut under durability::none).
            const bool removal_written = !t.writes.empty() && !write_log_[t.writes.back()].snap.present;
            if (removal_written && t.last_outcome && t.last_outcome_attempt == t.attempts &&
                outcome_of(*t.last_outcome) == outcome_kind::success) {
                t.st = state::success;
                // Its success was decided and written; only its event was cut: its dependents
                // may go (queue edits seed 10947).
                t.edit.succeeded = true;
            } else if (removal_written)
                t.st = state::removed;
            else if (t.acknowledged && t.written && StorageFactory::durable_inserts)
                return fail("no-loss", "acknowledged #" + std::to_string(t.no) + " did not survive the restart");
            else
                t.st = state::removed;
        }
    }
    if constexpr (syncvault::diagnosing_storage<storage_type>) {
        for (const auto& d : vault_->diagnostics())
            return fail("no-loss", "a crash that only cut the journal's tail was reported as damage: " + d.message);
    }
}

/** Forgets writes past `cut`: the shadows become what the store holds. */
template <class StorageFactory, class RetryPolicy, class Server, class Transport, class Connectivity>
void simulation<StorageFactory, RetryPolicy, Server, Transport, Connectivity>::runner::rewind_writes(std::size_t cut)
{
    write_log_.resize(cut);
    synced_floor_ = cut;  // what the new process reloaded is on disk
    for (auto& t : actions_) {
        while (!t.writes.empty() && t.writes.back() >= cut) t.writes.pop_back();
        t.written = !t.writes.empty();
        if (!t.written)
            t.shadow.reset();
        else if (!write_log_[t.writes.back()].snap.present)
            t.shadow.reset();
        else if (t.shadow) {
            const auto& s = write_log_[t.writes.back()].snap;
            t.shadow->state = s.st;
            t.shadow->attempts = s.attempts;
            t.shadow->sequence = s.sequence;
        } else {
            const auto& s = write_log_[t.writes.back()].snap;
            sync_action a;
            a.id = t.id;
            a.state = s.st;
            a.attempts = s.attempts;
            a.sequence = s.sequence;
            t.shadow = a;
        }
    }
}

template <class StorageFactory, class RetryPolicy, class Server, class Transport, class Connectivity>
std::string
simulation<StorageFactory, RetryPolicy, Server, Transport, Connectivity>::runner::describe(const snapshot& s)
{
    if (!s.present) return "missing";
    return std::string(s.st == action_state::dead ? "dead" : "pending") + " (attempts " + std::to_string(s.attempts) +
           ", sequence " + std::to_string(s.sequence) + ")";
}

}  // namespace syncvault::testing

#endif
