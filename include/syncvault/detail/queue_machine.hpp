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

#include <syncvault/action.hpp>
#include <syncvault/events.hpp>
#include <syncvault/detail/request_builder.hpp>
#include <syncvault/detail/retry_decision.hpp>

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
};

class queue_machine {
public:
    struct settings {
        std::size_t max_pending = 10'000;
        std::size_t max_dead_letters = 1'000;
        std::size_t max_in_flight = 1;
        std::size_t max_pending_bytes = std::size_t(64) << 20;
        bool drop_oldest = false;  // overflow_policy::drop_oldest
    };

    explicit queue_machine(settings s) : settings_(s) {}

    // ---- loading ------------------------------------------------------------------------------

    /** Takes what storage holds; returns the ids of dead letters over the bound (to remove). */
    std::vector<std::string> load(std::vector<sync_action> actions, time_point now, std::chrono::milliseconds cap)
    {
        std::stable_sort(actions.begin(), actions.end(),
                         [](const auto& a, const auto& b) { return a.sequence < b.sequence; });
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
        return trim_dead();
    }

    // ---- admission ----------------------------------------------------------------------------

    enum class admit_status { admitted, duplicate, key_being_written, full };
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
        const bool send_now = may_send_now && !paused_ && lane_empty && free_slot();
        insert(std::move(e));
        if (send_now) take_claim(seq);
        return {admit_status::admitted, {}, seq, send_now};
    }

    /**
     * The write of an admitted entry succeeded (`durable`) or was skipped (write_ahead off).
     * Over a limit with drop_oldest: cancels the oldest others until it fits, and returns the
     * ids of those storage holds (to remove).
     */
    std::vector<std::string> commit(std::uint64_t seq, bool durable, outbox& out)
    {
        auto& e = pending_.at(seq);
        e.committed = true;
        e.durable = durable;
        ++visible_;
        out.add(e.action, sync_event_status::queued, 0);
        if (!settings_.drop_oldest) return {};
        return make_room(out, seq);
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
            if (!head.committed) continue;  // an earlier enqueue is still being written
            clamp_wait(head.action, now, cap);
            if (respect_timers && head.action.next_attempt_at > now) continue;
            if (!best || head.action.sequence < *best) best = head.action.sequence;
        }
        if (best) take_claim(*best);
        return best;
    }

    enum class start { go, gone, expired, exhausted };

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
            return {storage_write::kind::save_entry, seq, &e.action, !e.durable, {}, {}, {}};
        }
        if (response) ++a.answered;
        if (d.what == verdict::dropped) {
            out.add(a, sync_event_status::cancelled, a.attempts, std::move(response), make_error_code(errc::cancelled));
            storage_write w;
            if (e.durable) w = {storage_write::kind::remove, 0, nullptr, false, {}, a.id, {}};
            hide(e);
            return w;
        }

        if (d.what == verdict::success) {
            last_attempt_failed_ = false;
            out.add(a, sync_event_status::success, a.attempts, std::move(response));
            storage_write w;
            if (e.durable) w = {storage_write::kind::remove, 0, nullptr, false, {}, a.id, {}};
            hide(e);  // `release` erases it
            return w;
        }
        last_attempt_failed_ = true;
        if (d.what == verdict::dead) return dead_letter(seq, std::move(response), d.error, out);
        a.next_attempt_at = d.next_attempt_at;
        out.add(a, sync_event_status::failed, a.attempts, std::move(response), d.error);
        return {storage_write::kind::save_entry, seq, &e.action, !e.durable, {}, {}, {}};
    }

    /** The entry leaves the queue for the dead-letter list; says what to write. */
    storage_write dead_letter(std::uint64_t seq, std::optional<http_response> response, std::error_code error, outbox& out)
    {
        auto& e = pending_.at(seq);
        end_transfer(e);
        e.action.state = action_state::dead;
        if (error && error.category() == error_category()) e.action.last_error = error.value();
        out.add(e.action, sync_event_status::dead_letter, e.action.attempts, std::move(response), error);
        storage_write w{storage_write::kind::save_dead, 0, nullptr, false, e.action, {}, {}};
        dead_.push_back({e.action, std::move(e.sensitive)});
        hide(e);  // `release` erases it (a claim owns it)
        w.evicted = trim_dead();
        return w;
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
    }

    // ---- edits --------------------------------------------------------------------------------

    /** While paused nothing is claimed or sent at once (SPEC 9.3). */
    void set_paused(bool paused) noexcept { paused_ = paused; }
    bool paused() const noexcept { return paused_; }

    /** The pending action `id` if it may be cancelled now: committed, not being attempted. */
    std::optional<std::uint64_t> cancellable(std::string_view id) const
    {
        auto it = by_id_.find(std::string(id));
        if (it == by_id_.end()) return std::nullopt;
        const auto& e = pending_.at(it->second);
        if (!e.committed || e.removed || e.claimed) return std::nullopt;
        return it->second;
    }

    /**
     * Cancels `seq` (its record is gone from storage already). A drain that claimed it meanwhile
     * has not sent it (the caller held the storage lock): the claim drops it. False if it is in
     * flight or gone.
     */
    bool cancel(std::uint64_t seq, std::error_code why, outbox& out)
    {
        auto it = pending_.find(seq);
        if (it == pending_.end() || it->second.removed || it->second.in_flight) return false;
        out.add(it->second.action, sync_event_status::cancelled, it->second.action.attempts, std::nullopt, why);
        if (it->second.claimed) hide(it->second);
        else erase(seq);
        return true;
    }

    /** `on_rejected` edited the claimed entry's request before a retry. */
    void apply_edits(std::uint64_t seq, const sync_action& edited)
    {
        auto& a = pending_.at(seq).action;
        pending_bytes_ = pending_bytes_ - a.body.size() + edited.body.size();
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
        return new_action{it->action, it->sensitive};
    }

    /** Admits a requeued dead letter (a new lifecycle: attempts reset, a new place at the tail). */
    std::uint64_t admit_requeue(new_action n, time_point now)
    {
        auto& a = n.action;
        a.state = action_state::pending;
        a.attempts = a.answered = a.last_status = a.last_error = 0;
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

    std::vector<sync_action> pending_actions() const
    {
        std::vector<sync_action> out;
        for (const auto& [seq, e] : pending_)
            if (e.committed && !e.removed) out.push_back(e.action);
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
            if (!head.committed) continue;
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

    /** Whether cancelling unclaimed committed entries, oldest first, can make room for `bytes`. */
    bool can_make_room(std::size_t bytes) const
    {
        std::size_t count = pending_.size(), total = pending_bytes_;
        for (const auto& [seq, e] : pending_) {
            if (count < settings_.max_pending && total + bytes <= settings_.max_pending_bytes) return true;
            if (!e.committed || e.claimed || e.removed) continue;
            --count;
            total -= e.action.body.size();
        }
        return count < settings_.max_pending && total + bytes <= settings_.max_pending_bytes;
    }

    /** Cancels the oldest unclaimed entries but `keep` until within the limits; returns the stored ones' ids. */
    std::vector<std::string> make_room(outbox& out, std::uint64_t keep)
    {
        std::vector<std::string> stored;
        for (auto it = pending_.begin(); it != pending_.end();) {
            if (pending_.size() <= settings_.max_pending && pending_bytes_ <= settings_.max_pending_bytes) break;
            auto& e = (it++)->second;
            if (!e.committed || e.claimed || e.removed || e.action.sequence == keep) continue;
            out.add(e.action, sync_event_status::cancelled, e.action.attempts, std::nullopt, make_error_code(errc::evicted));
            if (e.durable) stored.push_back(e.action.id);
            erase(e.action.sequence);
        }
        return stored;
    }

    static void clamp_wait(sync_action& a, time_point now, std::chrono::milliseconds cap)
    {
        if (a.next_attempt_at > now + cap) a.next_attempt_at = now + cap;
    }

    void insert(queue_entry e)
    {
        const auto seq = e.action.sequence;
        by_key_.emplace(e.action.idempotency_key, seq);
        by_id_.emplace(e.action.id, seq);
        lanes_[e.action.lane].push_back(seq);  // sequences only grow: each lane stays sorted
        pending_bytes_ += e.action.body.size();
        pending_.emplace(seq, std::move(e));
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
        if (auto k = by_key_.find(a.idempotency_key); k != by_key_.end() && k->second == seq) by_key_.erase(k);
        if (auto i = by_id_.find(a.id); i != by_id_.end() && i->second == seq) by_id_.erase(i);
        pending_bytes_ -= a.body.size();
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
    boost::unordered_flat_map<std::string, std::uint64_t> by_key_;  // idempotency key -> sequence
    boost::unordered_flat_map<std::string, std::uint64_t> by_id_;   // action id -> sequence
    boost::unordered_flat_map<std::uint64_t, std::string> claims_;  // claimed sequence -> its lane
    boost::unordered_flat_set<std::string> claimed_lanes_;
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
