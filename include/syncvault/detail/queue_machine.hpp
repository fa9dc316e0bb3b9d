#ifndef SYNCVAULT_DETAIL_QUEUE_MACHINE_HPP
#define SYNCVAULT_DETAIL_QUEUE_MACHINE_HPP

// The queue as a state machine: pending actions in lanes, dead letters, the idempotency-key
// index, and which heads are being attempted. No I/O, no locks, no callbacks: each transition
// changes memory only and says what the orchestrator (basic_vault) must do about it: events to
// publish into an `outbox`, a storage write to perform. basic_vault calls it under its mutex.
//
// An action's life here: `admit` makes an uncommitted entry (its key reserved, its place in
// line held) while the orchestrator writes it; `commit` or `abort` settles that. A drain
// `claim`s a lane's head (at most one claim per lane, at most `max_in_flight` in all), then
// `begin_attempt`, `attempt_started`, `settle`, and always `release` (basic_vault's RAII
// head_claim calls it even when an exception unwinds). `clear` and `requeue` never erase an
// entry a claim owns: they mark it, and `release` finishes the job.
//
// SPEC 9.4's edits live here too. An action whose `after` names a pending action is not claimed
// (a blocked head holds its lane, as any head does). Every `after` edge points to an action
// admitted earlier with a smaller sequence (an id exists only once its action is admitted, a
// request naming a dead letter is refused, and requeue refuses one whose parent is still dead),
// and lanes only wait for smaller sequences too, so the smallest pending sequence is never
// blocked: no cycle, no stuck queue. A parent that fails or is cancelled takes its pending
// dependents to the dead-letter list at once, transitively; one that succeeds fills their
// `response_ref` placeholders, and the rewritten dependents are saved before the parent's
// removal, so a crash in between replays the parent rather than losing its response.

#include <syncvault/action.hpp>
#include <syncvault/events.hpp>
#include <syncvault/detail/coalesce.hpp>
#include <syncvault/detail/request_builder.hpp>
#include <syncvault/detail/response_refs.hpp>
#include <syncvault/detail/retry_decision.hpp>

#include <boost/assert.hpp>
#include <boost/unordered/unordered_flat_map.hpp>
#include <boost/unordered/unordered_flat_set.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace syncvault::detail {

using time_point = std::chrono::system_clock::time_point;

/** One pending action and what the vault knows of it beyond storage. */
struct queue_entry {
    sync_action action;
    std::vector<header> sensitive;  // this process's only (never stored)
    bool committed = false;         // its `queued` event went out: readers see it
    bool durable = false;           // storage holds it
    bool claimed = false;           // a head claim owns it
    bool in_flight = false;         // its transfer is running
    bool removed = false;           // cleared while claimed: `release` erases it
    bool editing = false;           // a coalescing write is under way: not evicted meanwhile
    bool has_refs = false;          // holds `response_ref` placeholders still to fill
    // SPEC 9.8: with a storage that reads bodies back, an entry storage holds drops its body
    // (`body_out`; `action.body` is empty) and the vault loads it again when it needs it.
    bool body_out = false;
    bool body_dirty = false;        // its body was edited and not yet saved: keep it
    std::size_t body_bytes = 0;     // the body's size, in memory or not (max_pending_bytes)
};

/**
 * A wait measured from when it began, so a wall clock that jumps back does not stretch it: if
 * `now` is before its start, it starts again at `now`.
 */
struct jump_safe_wait {
    time_point from{};
    std::chrono::milliseconds length{0};
    time_point until(time_point now)
    {
        if (now < from) from = now;
        return from + length;
    }
};

/** Events a transition produced, in order; basic_vault stamps and publishes them. */
struct outbox {
    std::vector<sync_event> events;
    void add(const sync_action& a, sync_event_status s, int attempt, std::optional<http_response> response = {},
             std::error_code error = {})
    {
        sync_event e;
        e.action_id = a.id;
        e.idempotency_key = a.idempotency_key;
        e.status = s;
        e.attempt = attempt;
        e.response = std::move(response);
        e.error = error;
        events.push_back(std::move(e));
    }
};

/** A storage write a transition asks for (performed by basic_vault, outside its mutex). */
struct storage_write {
    enum class kind { none, save_entry, save_dead, remove } what = kind::none;
    std::uint64_t sequence = 0;      // save_entry: the pending entry to save
    const sync_action* entry = nullptr;  // save_entry: that entry's action (a claim keeps it alive)
    bool insert = false;             // save_entry of an action storage never held (write_ahead off)
    sync_action dead;                // save_dead: the dead letter
    std::string id;                  // remove
    std::vector<std::string> evicted;  // dead letters over the bound: remove them too
    /// Saved before the main write: dependents rewritten with a parent's response (each only if
    /// still pending: `queue_machine::current`), dependents dead-lettered with it.
    std::vector<sync_action> first;
};

/** Writes that follow a transition besides its main one (cascaded dead letters, evictions). */
struct side_writes {
    std::vector<std::string> removed;  // ids to remove from storage
    std::vector<sync_action> saved;    // dead letters to save
};

class queue_machine {
public:
    struct settings {
        std::size_t max_pending = 10'000;
        std::size_t max_dead_letters = 1'000;
        std::size_t max_in_flight = 1;
        std::size_t max_pending_bytes = std::size_t(64) << 20;
        bool drop_oldest = false;  // overflow_policy::drop_oldest
        std::size_t max_body_bytes = std::size_t(1) << 20;  // a coalesced body's limit
        std::size_t max_path_bytes = 2048;                  // a substituted path's limit
        bool bodies_in_storage = false;  // the storage reads bodies back: drop them from memory
    };

    explicit queue_machine(settings s) : settings_(s) {}
    // The id and key indexes view the entries' strings: a copy would view the original's.
    queue_machine(const queue_machine&) = delete;
    queue_machine& operator=(const queue_machine&) = delete;

    // ---- loading ------------------------------------------------------------------------------

    /**
     * Takes what storage holds. Returns the dead letters over the bound (to remove) and, after a
     * crash between a parent's dead-lettering and its dependents', those dependents (to save).
     */
    side_writes load(std::vector<sync_action> actions, time_point now, std::chrono::milliseconds cap)
    {
        // Storages keep insertion order, which is sequence order unless a requeue moved an
        // action in place: sorting whole actions is then skipped (a tenth of a reopen).
        const auto by_sequence = [](const auto& a, const auto& b) { return a.sequence < b.sequence; };
        if (!std::is_sorted(actions.begin(), actions.end(), by_sequence))
            std::stable_sort(actions.begin(), actions.end(), by_sequence);
        by_key_.reserve(by_key_.size() + actions.size());
        by_id_.reserve(by_id_.size() + actions.size());
        for (auto& a : actions) {
            next_sequence_ = std::max(next_sequence_, a.sequence + 1);
            if (a.state == action_state::dead) {
                dead_.push_back({std::move(a), {}});
                continue;
            }
            queue_entry e;
            e.action = std::move(a);
            clamp_wait(e.action, now, cap);
            e.committed = e.durable = true;
            ++visible_;
            insert(std::move(e));
        }
        side_writes w;
        outbox ignored;  // loading reports nothing: these outcomes were decided before the crash
        std::vector<std::string> dead_ids;  // to_dead appends to dead_: walk a copy
        for (const auto& d : dead_) dead_ids.push_back(d.action.id);
        for (const auto& id : dead_ids) fail_dependents(id, ignored, w.saved);
        std::vector<std::uint64_t> orphans;  // placeholders whose parent's response is gone
        for (const auto& [seq, e] : pending_)
            if (e.has_refs && !blocked(e)) orphans.push_back(seq);
        for (auto seq : orphans)
            if (pending_.contains(seq)) w.saved.push_back(to_dead(seq, {}, make_error_code(errc::dependency_failed), ignored, w.saved));
        w.removed = trim_dead();
        for (auto& [seq, e] : pending_) drop_body(e);  // `w.saved` holds copies: they keep theirs
        return w;
    }

    // ---- admission ----------------------------------------------------------------------------

    enum class admit_status { admitted, duplicate, key_being_written, full, dependency_failed };
    struct admission {
        admit_status status = admit_status::admitted;
        std::string existing_id;    // duplicate: the action that holds the key
        std::uint64_t sequence = 0; // admitted: the new entry
        bool send_now = false;      // admitted and claimed: attempt it at once
    };

    /**
     * Holds a place in line for `n` (uncommitted until `commit`). `may_send_now`: online and
     * sending on the caller is allowed; it is sent now only if its lane has nothing waiting and
     * a transfer slot is free, and then it is claimed at once.
     */
    admission admit(new_action& n, time_point now, bool may_send_now)
    {
        if (auto it = by_key_.find(n.action.idempotency_key); it != by_key_.end()) {
            const auto& e = pending_.at(it->second);
            if (!e.committed) return {admit_status::key_being_written, {}, 0, false};
            return {admit_status::duplicate, e.action.id, 0, false};
        }
        if (!dependencies_admissible(n.action, n.sensitive)) return {admit_status::dependency_failed, {}, 0, false};
        const std::size_t bytes = n.action.body.size();
        auto fits = [&] {
            return pending_.size() < settings_.max_pending && pending_bytes_ + bytes <= settings_.max_pending_bytes;
        };
        // drop_oldest makes room only once the new action is written (`commit`), so a failed
        // write cancels nothing.
        if (!fits() && (!settings_.drop_oldest || bytes > settings_.max_pending_bytes || !can_make_room(bytes)))
            return {admit_status::full, {}, 0, false};
        queue_entry e;
        e.action = std::move(n.action);
        e.sensitive = std::move(n.sensitive);
        e.action.sequence = next_sequence_++;
        e.action.state = action_state::pending;
        e.action.created_at = e.action.next_attempt_at = now;
        const auto seq = e.action.sequence;
        const bool lane_empty = !lanes_.contains(e.action.lane);
        const bool send_now = may_send_now && !paused_ && lane_empty && free_slot() && !blocked(e);
        insert(std::move(e));
        if (send_now) take_claim(seq);
        return {admit_status::admitted, {}, seq, send_now};
    }

    /**
     * The write of an admitted entry succeeded (`durable`) or was skipped (write_ahead off).
     * Over a limit with drop_oldest: cancels the oldest others until it fits, and says what to
     * write (those storage holds to remove, their dependents' dead letters to save).
     */
    side_writes commit(std::uint64_t seq, bool durable, outbox& out)
    {
        auto& e = pending_.at(seq);
        e.committed = true;
        e.durable = durable;
        ++visible_;
        out.add(e.action, sync_event_status::queued, 0);
        drop_body(e);
        if (!settings_.drop_oldest) return {};
        return make_room(out, seq);
    }

    // ---- coalescing (SPEC 9.4) -----------------------------------------------------------------

    struct coalesce_plan {
        coalesce_outcome::kind what = coalesce_outcome::kind::queue_behind;
        std::uint64_t sequence = 0;  // the earlier action
        sync_action before;          // as it is (put back if the write fails)
        sync_action merged;          // kind::merge: as it becomes
    };

    /**
     * Whether `n` merges into the newest pending action of its lane with its coalesce key, and
     * how. That action is marked `editing` until `finish_coalesce`: the caller, holding the
     * storage lock (so nothing sends it meanwhile), writes the change first.
     */
    std::optional<coalesce_plan> plan_coalesce(const new_action& n)
    {
        const auto& a = n.action;
        if (a.coalesce_key.empty() || by_key_.contains(a.idempotency_key)) return std::nullopt;
        if (a.method != http_method::put && a.method != http_method::patch && a.method != http_method::delete_)
            return std::nullopt;
        auto group = coalesce_.find(coalesce_group(a));
        if (group == coalesce_.end()) return std::nullopt;
        auto& x = pending_.at(*group->second.rbegin());  // the newest: never look past it
        // Ever attempted, its effect may have reached the server: never touched.
        if (!x.committed || x.removed || x.claimed || x.in_flight || x.editing || ever_attempted(x.action))
            return std::nullopt;
        auto outcome = coalesce(x.action, a, settings_.max_body_bytes);
        if (outcome.what == coalesce_outcome::kind::queue_behind) return std::nullopt;
        x.editing = true;
        return coalesce_plan{outcome.what, x.action.sequence, x.action, std::move(outcome.merged)};
    }

    /** The coalescing write is over: `merged` (if it was written) replaces the earlier action. */
    void finish_coalesce(std::uint64_t seq, const sync_action* merged, const std::vector<header>& sensitive) noexcept
    {
        auto it = pending_.find(seq);
        if (it == pending_.end()) return;
        auto& e = it->second;
        e.editing = false;
        if (!merged || e.removed) return;
        pending_bytes_ = pending_bytes_ - e.body_bytes + merged->body.size();
        e.body_bytes = merged->body.size();
        e.action.method = merged->method;
        e.action.path = merged->path;
        e.action.headers = merged->headers;
        e.action.body = merged->body;
        if (!sensitive.empty()) e.sensitive = sensitive;  // the newer credentials
        e.has_refs = !e.action.after.empty() && !referenced_ids(e.action, e.sensitive).empty();
    }

    /** The write of an admitted entry failed: as if it had never been admitted. */
    void abort(std::uint64_t seq)
    {
        if (claims_.contains(seq)) release(seq);
        erase(seq);
    }

    // ---- attempts -----------------------------------------------------------------------------

    /**
     * Claims the oldest lane head that may be attempted now (`respect_timers`: only one whose
     * next attempt is due). A head whose wait exceeds `cap` (the wall clock jumped back) is
     * brought forward to `now + cap`.
     */
    std::optional<std::uint64_t> claim(time_point now, bool respect_timers, std::chrono::milliseconds cap,
                                       const std::set<std::string>& skip_lanes = {})
    {
        if (!free_slot() || paused_) return std::nullopt;
        if (respect_timers && storage_wait_ && storage_wait_->until(now) > now) return std::nullopt;
        if (respect_timers && reconnect_wait_ && reconnect_wait_->until(now) > now) return std::nullopt;
        std::optional<std::uint64_t> best;
        for (auto& [lane, seqs] : lanes_) {
            if (claimed_lanes_.contains(lane) || skip_lanes.contains(lane)) continue;
            auto& head = pending_.at(seqs.front());
            if (!head.committed || blocked(head)) continue;  // still being written, or waiting for a parent
            clamp_wait(head.action, now, cap);
            if (respect_timers && head.action.next_attempt_at > now) continue;
            if (!best || head.action.sequence < *best) best = head.action.sequence;
        }
        if (best) take_claim(*best);
        return best;
    }

    enum class start { go, gone, expired, exhausted, unresolved };

    /** Counts the attempt about to be made (persisted by the caller before the transfer). */
    start begin_attempt(std::uint64_t seq, time_point now, std::chrono::milliseconds key_lifetime, int max_retries)
    {
        auto& a = pending_.at(seq);
        if (a.removed) return start::gone;
        // Replaying after the server may have forgotten the key risks a duplicate effect.
        if (key_lifetime.count() > 0 && now - a.action.created_at > key_lifetime) return start::expired;
        // A budget spent on attempts cut short by crashes (counted, no outcome): an action that
        // kills the process each time it is sent must not be retried forever.
        if (a.action.attempts > max_retries) return start::exhausted;
        // A placeholder whose parent left without filling it (cleared, or storage lost it)
        // must never reach the server, nor an action whose parent failed while it was admitted.
        if (a.has_refs || waits_for_dead(a.action)) return start::unresolved;
        ++a.action.attempts;
        return start::go;
    }

    /**
     * The attempt could not be recorded (storage failed): it is not made, and storage is left
     * alone until `retry_at`. True when this starts a failure episode (report it once).
     */
    bool attempt_not_recorded(std::uint64_t seq, time_point now, std::chrono::milliseconds backoff)
    {
        --pending_.at(seq).action.attempts;
        return storage_unavailable(now, backoff);
    }

    /**
     * Storage failed a call an attempt needed (a body could not be read back): storage is left
     * alone until `retry_at`. True when this starts a failure episode (report it once).
     */
    bool storage_unavailable(time_point now, std::chrono::milliseconds backoff)
    {
        const bool first = !storage_wait_;
        storage_wait_ = jump_safe_wait{now, backoff};
        ++storage_failures_;
        return first;
    }

    /** Storage accepted a write: a failure episode, if any, is over. */
    void storage_recovered() noexcept
    {
        storage_wait_.reset();
        storage_failures_ = 0;
    }

    /** Timed drains wait `length` from `now` (reconnect jitter, SPEC 9.2). */
    void defer_drains(time_point now, std::chrono::milliseconds length) noexcept { reconnect_wait_ = jump_safe_wait{now, length}; }

    /** Consecutive storage failures in this episode (the caller's backoff exponent). */
    int storage_failures() const noexcept { return storage_failures_; }

    void attempt_started(std::uint64_t seq, outbox& out)
    {
        auto& e = pending_.at(seq);
        e.in_flight = true;
        ++in_flight_;
        out.add(e.action, sync_event_status::started, e.action.attempts);
    }

    /** Applies the decision after an attempt; says what to write. */
    storage_write settle(std::uint64_t seq, const attempt_decision& d, const result<http_response>& outcome, outbox& out)
    {
        auto& e = pending_.at(seq);
        end_transfer(e);
        if (e.removed) return {};  // cleared meanwhile: gone, and so are its events
        std::optional<http_response> response;
        if (outcome) response = *outcome;
        auto& a = e.action;
        a.last_status = response ? response->status : 0;
        a.last_error = persisted_error(d.error);
        if (d.what == verdict::unauthorized) {
            // Not an attempt that counts (SPEC 9.3): it stays at the head, due at once.
            last_attempt_failed_ = true;
            out.add(a, sync_event_status::failed, a.attempts, std::move(response), d.error);
            --a.attempts;
            return {storage_write::kind::save_entry, seq, &e.action, !e.durable, {}, {}, {}, {}};
        }
        if (response) ++a.answered;
        if (d.what == verdict::dropped) {
            out.add(a, sync_event_status::cancelled, a.attempts, std::move(response), make_error_code(errc::cancelled));
            storage_write w;
            if (e.durable) w = {storage_write::kind::remove, 0, nullptr, false, {}, a.id, {}, {}};
            hide(e);
            fail_dependents(a.id, out, w.first);
            return w;
        }

        if (d.what == verdict::success) {
            last_attempt_failed_ = false;
            storage_write w;
            if (e.durable) w = {storage_write::kind::remove, 0, nullptr, false, {}, a.id, {}, {}};
            hide(e);  // `release` erases it
            // Its dependents' placeholders are filled now, under the same lock, and saved before
            // its removal: nothing can claim a dependent in between.
            outbox dependents;
            fill_dependents(a.id, response ? std::string_view(response->body) : std::string_view(), dependents, w.first);
            out.add(a, sync_event_status::success, a.attempts, std::move(response));
            for (auto& ev : dependents.events) out.events.push_back(std::move(ev));
            return w;
        }
        last_attempt_failed_ = true;
        if (d.what == verdict::dead) return dead_letter(seq, std::move(response), d.error, out);
        a.next_attempt_at = d.next_attempt_at;
        out.add(a, sync_event_status::failed, a.attempts, std::move(response), d.error);
        return {storage_write::kind::save_entry, seq, &e.action, !e.durable, {}, {}, {}, {}};
    }

    /** The entry (and its dependents) leave the queue for the dead-letter list; says what to write. */
    storage_write dead_letter(std::uint64_t seq, std::optional<http_response> response, std::error_code error, outbox& out)
    {
        storage_write w{storage_write::kind::save_dead, 0, nullptr, false, {}, {}, {}, {}};
        w.dead = to_dead(seq, std::move(response), error, out, w.first);
        w.evicted = trim_dead();
        return w;
    }

    /** Whether the pending action `a` (a copy taken for a deferred write) is still pending. */
    bool current(const sync_action& a) const
    {
        auto it = by_id_.find(a.id);
        return it != by_id_.end() && !pending_.at(it->second).removed;
    }

    /** The written entry became durable (write_ahead off: stored at its first retry). */
    void mark_durable(std::uint64_t seq) { pending_.at(seq).durable = true; }

    /** Ends a claim; erases the entry if it left the queue meanwhile. Never throws. */
    void release(std::uint64_t seq) noexcept
    {
        auto c = claims_.find(seq);
        if (c == claims_.end()) return;
        claimed_lanes_.erase(c->second);
        claims_.erase(c);
        auto it = pending_.find(seq);
        if (it == pending_.end()) return;
        end_transfer(it->second);
        it->second.claimed = false;
        if (it->second.removed) erase(seq);
        else drop_body(it->second);
    }

    // ---- bodies in storage (SPEC 9.8) ---------------------------------------------------------

    /** Whether `seq`'s body must be read back from storage before it is used. */
    bool body_missing(std::uint64_t seq) const
    {
        auto it = pending_.find(seq);
        return it != pending_.end() && !it->second.removed && it->second.body_out;
    }

    /** The body read back for a claimed entry (or one the caller holds the storage lock for). */
    void restore_body(std::uint64_t seq, std::string body)
    {
        auto it = pending_.find(seq);
        if (it == pending_.end() || !it->second.body_out) return;
        it->second.action.body = std::move(body);
        it->second.body_out = false;
    }

    /**
     * Storage holds the entry as it is now but for the fields an attempt changes (attempts,
     * next attempt time, last status and error, answered): saving it needs only those.
     */
    bool stored_but_attempt_fields(std::uint64_t seq) const
    {
        auto it = pending_.find(seq);
        return it != pending_.end() && it->second.durable && !it->second.body_dirty;
    }

    /** Storage holds the entry as it is now: an edited body may leave memory again. */
    void body_saved(std::uint64_t seq) noexcept
    {
        if (auto it = pending_.find(seq); it != pending_.end()) it->second.body_dirty = false;
    }

    // ---- edits --------------------------------------------------------------------------------

    /** While paused nothing is claimed or sent at once (SPEC 9.3). */
    void set_paused(bool paused) noexcept { paused_ = paused; }
    bool paused() const noexcept { return paused_; }

    /** The pending action `id` if it may be cancelled now: committed, not being attempted. */
    std::optional<std::uint64_t> cancellable(std::string_view id) const
    {
        auto it = by_id_.find(id);
        if (it == by_id_.end()) return std::nullopt;
        const auto& e = pending_.at(it->second);
        if (!e.committed || e.removed || e.claimed) return std::nullopt;
        return it->second;
    }

    /**
     * The pending dependents cancelling `seq` would dead-letter, transitively: each as it is and
     * as it would be saved (what `cancel` appends to `dead`); changes nothing. The caller saves
     * them before the cancelled action leaves storage: after a crash or a power cut, a dependent
     * must never be pending while its cancelled parent is gone, since a parent storage no longer
     * holds is one that succeeded, and the dependent would be sent.
     */
    std::vector<std::pair<sync_action, sync_action>> dependents_if_cancelled(std::uint64_t seq) const
    {
        std::vector<std::pair<sync_action, sync_action>> doomed;
        auto root = pending_.find(seq);
        if (root == pending_.end()) return doomed;
        std::vector<std::string> parents{root->second.action.id};
        boost::unordered_flat_set<std::uint64_t> seen;
        while (!parents.empty()) {
            const auto it = dependents_.find(parents.back());
            parents.pop_back();
            if (it == dependents_.end()) continue;
            for (auto dependent : it->second) {
                auto e = pending_.find(dependent);
                // As `fail_dependents` chooses.
                if (e == pending_.end() || !e->second.committed || e->second.removed || e->second.in_flight ||
                    !seen.insert(dependent).second)
                    continue;
                parents.push_back(e->second.action.id);
                // It waits for others, so its body is in memory: both copies are whole.
                auto& dead = doomed.emplace_back(e->second.action, e->second.action).second;
                dead.state = action_state::dead;
                dead.last_error = static_cast<int>(errc::dependency_failed);
            }
        }
        return doomed;
    }

    /**
     * Cancels `seq` (its record is gone from storage already); its dependents become dead
     * letters, appended to `dead` (to save). A drain that claimed it meanwhile has not sent it
     * (the caller held the storage lock): the claim drops it. False if it is in flight or gone.
     */
    bool cancel(std::uint64_t seq, std::error_code why, outbox& out, std::vector<sync_action>& dead)
    {
        auto it = pending_.find(seq);
        if (it == pending_.end() || it->second.removed || it->second.in_flight) return false;
        const std::string id = it->second.action.id;
        out.add(it->second.action, sync_event_status::cancelled, it->second.action.attempts, std::nullopt, why);
        if (it->second.claimed) hide(it->second);
        else erase(seq);
        fail_dependents(id, out, dead);
        return true;
    }

    /** `on_rejected` edited the claimed entry's request before a retry. */
    void apply_edits(std::uint64_t seq, const sync_action& edited)
    {
        auto& e = pending_.at(seq);
        auto& a = e.action;
        pending_bytes_ = pending_bytes_ - e.body_bytes + edited.body.size();
        e.body_bytes = edited.body.size();
        e.body_dirty = true;  // until the retry's save
        a.path = edited.path;
        a.body = edited.body;
        a.headers = edited.headers;
    }

    struct listed {
        std::uint64_t sequence;
        std::string id;
        bool durable;
    };
    /** Committed pending actions in FIFO order (what `clear_queue` removes). */
    std::vector<listed> committed() const
    {
        std::vector<listed> out;
        for (const auto& [seq, e] : pending_)
            if (e.committed && !e.removed) out.push_back({seq, e.action.id, e.durable});
        return out;
    }

    bool is_durable(std::uint64_t seq) const { return pending_.at(seq).durable; }

    /** Removes one pending action without an event (its storage record is gone already). */
    void clear_one(std::uint64_t seq)
    {
        auto it = pending_.find(seq);
        if (it == pending_.end()) return;
        if (it->second.claimed) hide(it->second);
        else erase(seq);
    }

    /** `clear_queue` finished: the failure it may have shown is forgotten. */
    void cleared() noexcept { last_attempt_failed_ = false; }

    /** A dead letter's copy for requeue, or nothing (unknown, or its key is pending again). */
    std::optional<new_action> requeue_candidate(std::string_view id) const
    {
        auto it = find_dead(id);
        if (it == dead_.end() || by_key_.contains(it->action.idempotency_key)) return std::nullopt;
        // Waiting again for a parent that is still dead could never end.
        if (!dependencies_admissible(it->action, it->sensitive)) return std::nullopt;
        return new_action{it->action, it->sensitive};
    }

    /** Admits a requeued dead letter (a new lifecycle: attempts reset, a new place at the tail). */
    std::uint64_t admit_requeue(new_action n, time_point now)
    {
        auto& a = n.action;
        a.state = action_state::pending;
        // last_status and last_error stay: they tell coalescing that an earlier lifecycle was
        // attempted (its effect may be on the server), which `attempts` no longer says.
        a.attempts = a.answered = 0;
        a.sequence = next_sequence_++;
        a.next_attempt_at = now;
        queue_entry e{std::move(a), std::move(n.sensitive), false, false, false, false, false};
        const auto seq = e.action.sequence;
        insert(std::move(e));
        return seq;
    }

    const sync_action& action(std::uint64_t seq) const { return pending_.at(seq).action; }
    const queue_entry& entry(std::uint64_t seq) const { return pending_.at(seq); }

    bool drop_dead(std::string_view id)
    {
        auto it = find_dead(id);
        if (it == dead_.end()) return false;
        dead_.erase(it);
        return true;
    }
    bool has_dead(std::string_view id) const { return find_dead(id) != dead_.end(); }

    // ---- reading ------------------------------------------------------------------------------

    std::size_t pending_count() const noexcept { return visible_; }

    /** Committed pending actions, FIFO; `missing` gets the positions whose body is in storage. */
    std::vector<sync_action> pending_actions(std::vector<std::size_t>* missing = nullptr) const
    {
        std::vector<sync_action> out;
        for (const auto& [seq, e] : pending_)
            if (e.committed && !e.removed) {
                if (e.body_out && missing) missing->push_back(out.size());
                out.push_back(e.action);
            }
        return out;
    }

    std::vector<sync_action> dead_letters() const
    {
        std::vector<sync_action> out;
        for (const auto& d : dead_) out.push_back(d.action);
        return out;
    }

    sync_status status() const
    {
        if (in_flight_ > 0) return sync_status::syncing;
        if (last_attempt_failed_ || storage_wait_ || paused_) return sync_status::error;
        if (visible_ > 0) return sync_status::pending;
        return sync_status::synced;
    }

    /**
     * When a drain next has work (a head due, or storage worth trying again); nothing when only
     * an outside event can create work (a new action, a transfer ending, a change of network).
     */
    std::optional<time_point> next_due(time_point now, std::chrono::milliseconds cap)
    {
        if (!free_slot() || paused_) return std::nullopt;  // a transfer's end, or resume(), wakes the driver
        std::optional<time_point> due;
        for (auto& [lane, seqs] : lanes_) {
            if (claimed_lanes_.contains(lane)) continue;
            auto& head = pending_.at(seqs.front());
            if (!head.committed || blocked(head)) continue;  // a parent's end wakes the driver
            clamp_wait(head.action, now, cap);
            if (!due || head.action.next_attempt_at < *due) due = head.action.next_attempt_at;
        }
        if (due && storage_wait_) due = std::max(*due, storage_wait_->until(now));
        if (due && reconnect_wait_) due = std::max(*due, reconnect_wait_->until(now));
        return due;
    }

    bool has_committed_work() const noexcept { return visible_ > 0; }

private:
    struct dead_entry {
        sync_action action;
        std::vector<header> sensitive;
    };

    bool free_slot() const noexcept { return claims_.size() < settings_.max_in_flight; }

    /** In this lifecycle or one before a requeue (whose outcome stays in last_status/last_error). */
    static bool ever_attempted(const sync_action& a) noexcept
    {
        return a.attempts > 0 || a.last_status != 0 || a.last_error != 0;
    }

    /** Whether cancelling unclaimed committed entries, oldest first, can make room for `bytes`. */
    bool can_make_room(std::size_t bytes) const
    {
        std::size_t count = pending_.size(), total = pending_bytes_;
        for (const auto& [seq, e] : pending_) {
            if (count < settings_.max_pending && total + bytes <= settings_.max_pending_bytes) return true;
            if (!e.committed || e.claimed || e.removed) continue;
            --count;
            total -= e.body_bytes;
        }
        return count < settings_.max_pending && total + bytes <= settings_.max_pending_bytes;
    }

    /** Cancels the oldest unclaimed entries but `keep` until within the limits; says what to write. */
    side_writes make_room(outbox& out, std::uint64_t keep)
    {
        side_writes w;
        for (auto it = pending_.begin(); it != pending_.end();) {
            if (pending_.size() <= settings_.max_pending && pending_bytes_ <= settings_.max_pending_bytes) break;
            auto& e = (it++)->second;
            if (!e.committed || e.claimed || e.removed || e.editing || e.action.sequence == keep) continue;
            out.add(e.action, sync_event_status::cancelled, e.action.attempts, std::nullopt, make_error_code(errc::evicted));
            if (e.durable) w.removed.push_back(e.action.id);
            const std::string id = e.action.id;
            const auto next = it == pending_.end() ? next_sequence_ : it->first;
            erase(e.action.sequence);
            fail_dependents(id, out, w.saved);
            it = pending_.lower_bound(next);  // the cascade may have erased `next` too
        }
        return w;
    }

    // ---- dependencies (SPEC 9.4) ----------------------------------------------------------------

    bool waits_for_dead(const sync_action& a) const
    {
        for (const auto& id : a.after)
            if (find_dead(id) != dead_.end()) return true;
        return false;
    }

    /** Whether `e` waits for an action that is still pending. */
    bool blocked(const queue_entry& e) const
    {
        for (const auto& id : e.action.after)
            if (auto it = by_id_.find(id); it != by_id_.end() && !pending_.at(it->second).removed) return true;
        return false;
    }

    /**
     * Whether `a` may join the queue: none of the actions it waits for is a dead letter (it could
     * only fail), and each whose response it references is pending (a response that is gone
     * cannot fill the placeholder).
     */
    bool dependencies_admissible(const sync_action& a, const std::vector<header>& sensitive) const
    {
        if (a.after.empty()) return true;
        if (waits_for_dead(a)) return false;
        for (const auto& id : referenced_ids(a, sensitive)) {
            auto it = by_id_.find(id);
            if (it == by_id_.end() || pending_.at(it->second).removed) return false;
        }
        return true;
    }

    /**
     * Moves `seq` to the dead-letter list and, transitively, every pending action waiting for it
     * (`errc::dependency_failed`); appends the dependents' dead letters to `dead`, returns its own.
     */
    sync_action to_dead(std::uint64_t seq, std::optional<http_response> response, std::error_code error, outbox& out,
                        std::vector<sync_action>& dead)
    {
        auto& e = pending_.at(seq);
        // Only a claimed entry (the vault read its body back before `begin_attempt`) or one that
        // never drops its body (it waits for others) reaches here: a dead letter is saved whole.
        BOOST_ASSERT(!e.body_out);
        end_transfer(e);
        e.action.state = action_state::dead;
        if (error && error.category() == error_category()) e.action.last_error = error.value();
        out.add(e.action, sync_event_status::dead_letter, e.action.attempts, std::move(response), error);
        sync_action copy = e.action;
        dead_.push_back({e.action, std::move(e.sensitive)});
        if (e.claimed) hide(e);  // `release` erases it
        else erase(seq);
        fail_dependents(copy.id, out, dead);
        return copy;
    }

    /** Dead-letters the pending actions that wait for `parent` (which failed or was cancelled). */
    void fail_dependents(const std::string& parent, outbox& out, std::vector<sync_action>& dead)
    {
        auto it = dependents_.find(parent);
        if (it == dependents_.end()) return;
        const auto waiting = it->second;  // to_dead edits the index
        for (auto seq : waiting) {
            auto e = pending_.find(seq);
            // One still being admitted belongs to its enqueue until committed; `begin_attempt`
            // dead-letters it when it reaches the head.
            if (e == pending_.end() || !e->second.committed || e->second.removed || e->second.in_flight) continue;
            dead.push_back(to_dead(seq, std::nullopt, make_error_code(errc::dependency_failed), out, dead));
        }
    }

    /**
     * `parent` succeeded with `body`: each dependent's placeholders naming it are filled (a copy
     * appended to `saved`), or, if a pointer does not resolve, the dependent is dead-lettered.
     */
    void fill_dependents(const std::string& parent, std::string_view body, outbox& out, std::vector<sync_action>& saved)
    {
        auto it = dependents_.find(parent);
        if (it == dependents_.end()) return;
        const auto waiting = it->second;
        for (auto seq : waiting) {
            auto found = pending_.find(seq);
            if (found == pending_.end() || found->second.removed || !found->second.has_refs) continue;
            auto& e = found->second;
            const auto old_bytes = e.body_bytes;
            if (substitute_refs(e.action, e.sensitive, parent, body, settings_.max_path_bytes)) {
                // Unfilled, it can never be sent: dead now, or at its first attempt if its enqueue
                // still owns it.
                if (e.committed) saved.push_back(to_dead(seq, std::nullopt, make_error_code(errc::dependency_failed), out, saved));
                continue;
            }
            e.body_bytes = e.action.body.size();
            e.body_dirty = true;  // storage holds placeholders until the entry itself is saved
            pending_bytes_ = pending_bytes_ - old_bytes + e.body_bytes;
            e.has_refs = !referenced_ids(e.action, e.sensitive).empty();
            unindex_dependent(parent, seq);  // `after` no longer names it
            // One still being admitted is saved, filled, by its own enqueue (which waits for the
            // storage lock this settle holds); saving it here could outlive a failed admission.
            if (e.committed && e.durable) saved.push_back(e.action);
        }
    }

    void unindex_dependent(const std::string& parent, std::uint64_t seq)
    {
        auto it = dependents_.find(parent);
        if (it == dependents_.end()) return;
        std::erase(it->second, seq);
        if (it->second.empty()) dependents_.erase(it);
    }

    static std::string coalesce_group(const sync_action& a)
    {
        std::string group = a.lane;
        group += '\0';  // lanes hold no control characters
        group += a.coalesce_key;
        return group;
    }

    static void clamp_wait(sync_action& a, time_point now, std::chrono::milliseconds cap)
    {
        if (a.next_attempt_at > now + cap) a.next_attempt_at = now + cap;
    }

    void insert(queue_entry entry)
    {
        const auto seq = entry.action.sequence;
        entry.body_bytes = entry.action.body.size();
        // Sequences arrive in increasing order (admission; loading, sorted): the hint makes
        // each insert constant time instead of a walk down the tree (a reopen of a million).
        const std::size_t before = pending_.size();
        const auto at = pending_.emplace_hint(pending_.end(), seq, std::move(entry));
        if (pending_.size() == before) return;  // sequences are unique: never
        // The id and key indexes view the entry's own strings (no copy per action): a map node
        // never moves, an entry's id and key never change, and `erase` unindexes it first.
        auto& e = at->second;
        if (!e.action.after.empty()) {
            e.has_refs = !referenced_ids(e.action, e.sensitive).empty();
            for (const auto& parent : e.action.after) dependents_[parent].push_back(seq);
        }
        if (!e.action.coalesce_key.empty()) coalesce_[coalesce_group(e.action)].insert(seq);
        by_key_.emplace(std::string_view(e.action.idempotency_key), seq);
        by_id_.emplace(std::string_view(e.action.id), seq);
        lanes_[e.action.lane].push_back(seq);  // sequences only grow: each lane stays sorted
        pending_bytes_ += e.body_bytes;
    }

    /** The entry leaves readers' view now; a claim still owns it until `release`. */
    void hide(queue_entry& e) noexcept
    {
        if (e.committed && !e.removed) --visible_;
        e.removed = true;
    }

    void erase(std::uint64_t seq)
    {
        auto it = pending_.find(seq);
        if (it == pending_.end()) return;
        hide(it->second);
        const auto& a = it->second.action;
        if (auto k = by_key_.find(a.idempotency_key); k != by_key_.end() && k->second == seq) {
            BOOST_ASSERT(k->first.data() == a.idempotency_key.data());  // the entry's key was never reassigned
            by_key_.erase(k);
        }
        if (auto i = by_id_.find(a.id); i != by_id_.end() && i->second == seq) {
            BOOST_ASSERT(i->first.data() == a.id.data());
            by_id_.erase(i);
        }
        for (const auto& parent : a.after) unindex_dependent(parent, seq);
        if (!a.coalesce_key.empty())
            if (auto g = coalesce_.find(coalesce_group(a)); g != coalesce_.end()) {
                g->second.erase(seq);
                if (g->second.empty()) coalesce_.erase(g);
            }
        pending_bytes_ -= it->second.body_bytes;
        if (auto l = lanes_.find(a.lane); l != lanes_.end()) {
            auto& seqs = l->second;
            if (!seqs.empty() && seqs.front() == seq)
                seqs.pop_front();  // the usual case: the head leaves
            else if (auto at = std::find(seqs.begin(), seqs.end(), seq); at != seqs.end())
                seqs.erase(at);
            if (seqs.empty()) lanes_.erase(l);
        }
        pending_.erase(it);
    }

    /**
     * Drops `e`'s body from memory when storage holds it as it is and nothing edits it in
     * memory: not an action a later PATCH may merge into (coalesce key), nor one waiting for
     * others (its placeholders are filled here, and a failed parent dead-letters it here, and a
     * dead letter is saved whole), nor one being written, attempted or edited.
     */
    void drop_body(queue_entry& e) noexcept
    {
        if (!settings_.bodies_in_storage || e.body_out || e.body_dirty || !e.committed || !e.durable || e.claimed ||
            e.removed || e.editing || e.action.body.empty() || !e.action.coalesce_key.empty() ||
            !e.action.after.empty())
            return;
        std::string().swap(e.action.body);  // the capacity too
        e.body_out = true;
    }

    void take_claim(std::uint64_t seq)
    {
        auto& e = pending_.at(seq);
        e.claimed = true;
        claimed_lanes_.insert(e.action.lane);
        claims_.emplace(seq, e.action.lane);
    }

    void end_transfer(queue_entry& e) noexcept
    {
        if (!e.in_flight) return;
        e.in_flight = false;
        --in_flight_;
    }

    std::deque<dead_entry>::const_iterator find_dead(std::string_view id) const
    {
        return std::find_if(dead_.begin(), dead_.end(), [&](const auto& d) { return d.action.id == id; });
    }
    std::deque<dead_entry>::iterator find_dead(std::string_view id)
    {
        return std::find_if(dead_.begin(), dead_.end(), [&](const auto& d) { return d.action.id == id; });
    }

    /** The dead-letter list is bounded: the oldest go first. */
    std::vector<std::string> trim_dead()
    {
        std::vector<std::string> evicted;
        while (dead_.size() > settings_.max_dead_letters) {
            evicted.push_back(dead_.front().action.id);
            dead_.pop_front();
        }
        return evicted;
    }

    settings settings_;
    std::map<std::uint64_t, queue_entry> pending_;                 // by sequence: FIFO across lanes
    std::map<std::string, std::deque<std::uint64_t>> lanes_;       // lane -> its sequences, FIFO
    // Keys view the entries' strings (see `insert`).
    boost::unordered_flat_map<std::string_view, std::uint64_t> by_key_;  // idempotency key -> sequence
    boost::unordered_flat_map<std::string_view, std::uint64_t> by_id_;   // action id -> sequence
    boost::unordered_flat_map<std::uint64_t, std::string> claims_;  // claimed sequence -> its lane
    boost::unordered_flat_set<std::string> claimed_lanes_;
    boost::unordered_flat_map<std::string, std::vector<std::uint64_t>> dependents_;  // id -> who waits for it
    boost::unordered_flat_map<std::string, std::set<std::uint64_t>> coalesce_;        // lane + key -> actions
    std::deque<dead_entry> dead_;                                  // oldest first
    std::uint64_t next_sequence_ = 1;
    std::size_t in_flight_ = 0;
    std::size_t visible_ = 0;                                      // committed and not removed
    std::size_t pending_bytes_ = 0;                                // bodies of every entry
    bool paused_ = false;
    bool last_attempt_failed_ = false;
    std::optional<jump_safe_wait> storage_wait_;                   // a storage failure episode
    int storage_failures_ = 0;
    std::optional<jump_safe_wait> reconnect_wait_;                 // reconnect jitter
};

} // namespace syncvault::detail

#endif
