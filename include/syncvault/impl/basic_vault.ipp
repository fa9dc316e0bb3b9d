#ifndef SYNCVAULT_IMPL_BASIC_VAULT_IPP
#define SYNCVAULT_IMPL_BASIC_VAULT_IPP

// The bodies of basic_vault's engine: enqueue, attempt, drain and the durable edits. Included
// at the end of <syncvault/basic_vault.hpp>; not a header of its own.
//
// Every path here follows one pattern: change state in `machine_` under `mutex_` (it says what
// to write and what to tell), do the storage write with `storage_mutex_` held and `mutex_`
// released, then publish the events under `mutex_` and deliver them with no lock held. Claims
// and admissions are RAII objects, so an exception from anywhere (an allocation, a user's
// policy) releases what was taken.

namespace syncvault {

template <class Transport, class Storage, class Connectivity, class RetryPolicy, class Clock>
auto basic_vault<Transport, Storage, Connectivity, RetryPolicy, Clock>::poll() -> next_wake
{
    note_driven();
    next_wake probe = tick();
    note_connectivity(online());
    drain(true);
    // A network failure during the drain may have just turned connectivity offline: ask
    // again, or nothing would wake us for the probe that brings it back.
    if (!online()) probe = tick();
    const auto t = now();
    const bool is_online = online();
    std::lock_guard lock(mutex_);
    next_wake due;
    if (is_online) due = machine_.next_due(t, cap());
    // A connectivity that can neither notify nor probe: look again after a while, or a
    // queue waiting for the network would wait forever.
    if constexpr (!notifying_connectivity<Connectivity> && !probing_connectivity<Connectivity>)
        if (!is_online && machine_.has_committed_work()) due = t + config_.probe_interval;
    if (!due) return probe;
    if (!probe) return due;
    return std::min(*due, *probe);
}

template <class Transport, class Storage, class Connectivity, class RetryPolicy, class Clock>
auto basic_vault<Transport, Storage, Connectivity, RetryPolicy, Clock>::clear_queue() -> std::error_code
{
    std::error_code failed;
    std::vector<std::string> cleared_ids;  // no event: async_* operations waiting on them are cancelled
    {
        std::lock_guard slock(storage_mutex_);
        std::vector<detail::queue_machine::listed> listed;
        {
            std::lock_guard lock(mutex_);
            listed = machine_.committed();
        }
        for (const auto& item : listed) {
            if (item.durable)
                if (auto e = remove_guarded(item.id)) {
                    failed = e;
                    break;
                }
            std::lock_guard lock(mutex_);
            machine_.clear_one(item.sequence);
            cleared_ids.push_back(item.id);
        }
        if (auto e = flush_guarded(); e && !failed) failed = e;
        std::lock_guard lock(mutex_);
        if (!failed) machine_.cleared();
        update_status();
    }
    events_->deliver();
    async_.registry->abandon(cleared_ids);
    return failed;
}

template <class Transport, class Storage, class Connectivity, class RetryPolicy, class Clock>
auto basic_vault<Transport, Storage, Connectivity, RetryPolicy, Clock>::requeue(std::string_view action_id) -> bool
{
    {
        std::lock_guard slock(storage_mutex_);
        std::unique_lock lock(mutex_);
        auto candidate = machine_.requeue_candidate(action_id);
        if (!candidate) return false;
        const sync_action dead = candidate->action;
        const auto seq = machine_.admit_requeue(std::move(*candidate), now());
        const auto& admitted = machine_.action(seq);  // uncommitted: ours alone, read outside the lock
        lock.unlock();
        auto failed = save_guarded(admitted);
        if (!failed) {
            failed = flush_guarded();
            if (failed) (void)save_guarded(dead);  // not synced: put the dead letter back
        }
        lock.lock();
        if (failed) {
            machine_.abort(seq);
            return false;
        }
        machine_.drop_dead(action_id);
        detail::outbox out;
        machine_.commit(seq, true, out);
        publish(out);
    }
    events_->deliver();
    wake_->notify();
    return true;
}

template <class Transport, class Storage, class Connectivity, class RetryPolicy, class Clock>
auto basic_vault<Transport, Storage, Connectivity, RetryPolicy, Clock>::drop_dead_letter(std::string_view action_id) -> bool
{
    std::lock_guard slock(storage_mutex_);
    {
        std::lock_guard lock(mutex_);
        if (!machine_.has_dead(action_id)) return false;
    }
    if (remove_guarded(action_id) || flush_guarded()) return false;
    std::lock_guard lock(mutex_);
    return machine_.drop_dead(action_id);
}

template <class Transport, class Storage, class Connectivity, class RetryPolicy, class Clock>
auto basic_vault<Transport, Storage, Connectivity, RetryPolicy, Clock>::load() -> void
{
    auto loaded = storage_.load_all();
    if (!loaded) throw std::system_error(loaded.error(), "syncvault: cannot load the queue from storage");
    (void)perform_side_writes(machine_.load(std::move(*loaded), now(), cap()));
    if constexpr (diagnosing_storage<Storage>) {
        for (auto& d : storage_.take_diagnostics()) {
            diagnostics_.push_back(d);
            if (config_.on_diagnostic) events_->publish([fn = config_.on_diagnostic, d] { fn(d); });
        }
        events_->deliver();
    }
    published_status_ = machine_.status();
}

template <class Transport, class Storage, class Connectivity, class RetryPolicy, class Clock>
auto basic_vault<Transport, Storage, Connectivity, RetryPolicy, Clock>::read(http_method method, std::string_view path, const request_options& opts) -> send_result
{
    if (!online() && opts.queue_if_offline) return mutate(method, path, nullptr, opts);
    auto request = detail::make_read(method, path, opts, base_url_, config_);
    if (!request) return send_result::failed(request.error());
    if (!online()) return send_result::failed(errc::offline);
    auto outcome = transfer(*request);
    if (!outcome) return send_result::failed(outcome.error());
    return send_result::sent(std::move(*outcome));
}

template <class Transport, class Storage, class Connectivity, class RetryPolicy, class Clock>
auto basic_vault<Transport, Storage, Connectivity, RetryPolicy, Clock>::enqueue(detail::new_action n, bool allow_send) -> send_result
{
    if (auto merged = coalesce(n)) return std::move(*merged);
    const std::string id = n.action.id;
    const bool waits_for_others = !n.action.after.empty();
    const bool may_send_now = allow_send && config_.send_on_caller && online();
    detail::queue_machine::admission admitted;
    const sync_action* action = nullptr;
    {
        std::unique_lock lock(mutex_);
        // The same key being written by another caller: wait for its outcome, so a failed
        // write is never reported to us as queued.
        while ((admitted = machine_.admit(n, now(), may_send_now)).status ==
               detail::queue_machine::admit_status::key_being_written)
            written_.wait(lock);
        if (admitted.status == detail::queue_machine::admit_status::duplicate)
            return send_result::queued(std::move(admitted.existing_id));
        if (admitted.status == detail::queue_machine::admit_status::full)
            return send_result::failed(errc::queue_full);
        if (admitted.status == detail::queue_machine::admit_status::dependency_failed)
            return send_result::failed(errc::dependency_failed);
        action = &machine_.action(admitted.sequence);  // uncommitted: ours alone until commit
    }
    const auto seq = admitted.sequence;
    std::optional<head_claim> claim;
    if (admitted.send_now) claim.emplace(*this, seq);  // claimed by admit: released on every path
    admission_guard guard(*this, seq);

    const bool persist = config_.write_ahead || !admitted.send_now;
    std::error_code failed;
    if (persist) {
        // A thread-safe storage takes concurrent inserts (they share one sync); inserts of
        // new ids cannot conflict with the vault's other writes. An action that waits for
        // others takes the lock anyway: a parent's success fills its placeholders under it,
        // and must not do so while this thread reads the action to save it.
        std::unique_lock slock(storage_mutex_, std::defer_lock);
        if (!thread_safe_storage<Storage> || waits_for_others) slock.lock();
        failed = detail::save_guarded(storage_, *action);
    }
    if (failed) return send_result::failed(detail::storage_failure(failed));
    detail::side_writes evicted;
    {
        std::lock_guard lock(mutex_);
        detail::outbox out;
        evicted = machine_.commit(seq, persist, out);
        guard.disarm();
        publish(out);
        if (!admitted.send_now) check_driven(now());
    }
    if (!evicted.removed.empty() || !evicted.saved.empty()) {  // drop_oldest: cancelled, so synced like a cancel
        std::lock_guard slock(storage_mutex_);
        if (!perform_side_writes(evicted) || flush_guarded()) {
            std::lock_guard lock(mutex_);
            add_diagnostic({make_error_code(errc::storage_failed), "could not remove actions evicted to make room"});
        }
    }
    written_.notify_all();
    events_->deliver();
    wake_->notify();
    if (!claim) return send_result::queued(id);

    auto report = attempt_with_credentials(seq);
    claim.reset();
    // Not attempted (storage could not record it, or a callback cleared it) or worth a
    // retry: it waits in the queue (or is gone, as the caller's own callback decided).
    if (!report.attempted || report.decision == detail::verdict::retry ||
        report.decision == detail::verdict::unauthorized)
        return send_result::queued(id);
    if (report.response) return send_result::sent(std::move(*report.response), id);
    return send_result::failed(report.error, id);
}

template <class Transport, class Storage, class Connectivity, class RetryPolicy, class Clock>
auto basic_vault<Transport, Storage, Connectivity, RetryPolicy, Clock>::attempt(std::uint64_t seq) -> attempt_report
{
    detail::outbox out;
    http_request request;
    std::optional<attempt_report> not_sent;  // settled without a transfer
    {
        std::lock_guard slock(storage_mutex_);
        std::unique_lock lock(mutex_);
        const auto t = now();
        // A body kept in storage is read back first: sending it, saving the attempt count and
        // a dead letter all need it. Storage that cannot read it is storage that failed.
        const bool have_body = fetch_body(seq, t, lock);
        const auto start = have_body ? machine_.begin_attempt(seq, t, config_.idempotency_key_lifetime, config_.max_retries)
                                     : detail::queue_machine::start::go;
        if (start == detail::queue_machine::start::gone) return {};
        if (!have_body) {
            not_sent = attempt_report{false, true, detail::verdict::retry, std::nullopt, {}};
        } else if (start != detail::queue_machine::start::go) {
            using detail::queue_machine;
            const auto why = make_error_code(start == queue_machine::start::expired     ? errc::key_expired
                                             : start == queue_machine::start::unresolved ? errc::dependency_failed
                                                                                         : errc::max_retries_exceeded);
            auto write = machine_.dead_letter(seq, std::nullopt, why, out);
            lock.unlock();
            perform(write);
            lock.lock();
            publish(out);
            not_sent = attempt_report{true, false, detail::verdict::dead, std::nullopt, why};
        } else if (!record_attempt(seq, t, lock)) {
            not_sent = attempt_report{false, true, detail::verdict::retry, std::nullopt, {}};
        } else {
            const auto& entry = machine_.entry(seq);
            machine_.attempt_started(seq, out);
            request = detail::request_for(entry.action, entry.sensitive, base_url_, config_);
            publish(out);
        }
    }
    events_->deliver();  // with no lock held: callbacks may call the vault
    if (not_sent) return *not_sent;

    auto outcome = transfer(request);

    attempt_report report{true, false, detail::verdict::retry, std::nullopt, {}};
    detail::attempt_decision decision;
    outcome_kind kind;
    {
        std::lock_guard lock(mutex_);
        kind = detail::classify_guarded(retry_, outcome);
        decision = detail::decide(machine_.action(seq), kind, outcome, retry_, now(), config_.max_retries);
    }
    // The application's say on a refusal, with no lock held (the hook may call the vault).
    if (decision.what == detail::verdict::dead && kind == outcome_kind::permanent && outcome && config_.on_rejected)
        decision = ask_on_rejected(seq, *outcome);
    {
        std::lock_guard slock(storage_mutex_);
        std::unique_lock lock(mutex_);
        // Cleared or cancelled while in flight: its outcome is forgotten, as if it had never
        // been sent to an end (no event, not a success, the caller hears "queued").
        const bool forgotten = machine_.entry(seq).removed;
        auto write = machine_.settle(seq, decision, outcome, out);
        if (forgotten) decision.what = detail::verdict::retry;
        lock.unlock();
        if (!perform(write)) {
            // write_ahead off: the action had to reach storage to wait, and could not.
            lock.lock();
            out.events.clear();
            decision = {detail::verdict::dead, {}, make_error_code(errc::storage_failed)};
            std::optional<http_response> response;
            if (outcome) response = *outcome;
            write = machine_.dead_letter(seq, std::move(response), decision.error, out);
            lock.unlock();
            perform(write);
        }
        if (decision.what == detail::verdict::dropped) (void)flush_guarded();  // cancel-like: synced
        lock.lock();
        publish(out);
        report.decision = decision.what;
        report.error = decision.error;
    }
    events_->deliver();
    if (outcome) report.response = std::move(*outcome);
    return report;
}

template <class Transport, class Storage, class Connectivity, class RetryPolicy, class Clock>
auto basic_vault<Transport, Storage, Connectivity, RetryPolicy, Clock>::record_attempt(std::uint64_t seq, time_point t,
                                                                                      std::unique_lock<std::mutex>& lock)
    -> bool
{
    const auto& entry = machine_.entry(seq);
    if (!entry.durable) return true;  // write_ahead off: stored only if it must wait
    const bool progress_only = machine_.stored_but_attempt_fields(seq);
    // The attempt count is durable before the attempt (SPEC 3.8). The claim keeps everyone
    // else off the entry while it is read outside the lock; storage_mutex_ is held throughout.
    lock.unlock();
    auto failed = progress_only ? detail::save_progress_guarded(storage_, entry.action)
                                : detail::save_guarded(storage_, entry.action);
    // SPEC 7 lets a power cut forget an attempt count, but an action a later request may be
    // coalesced into must not come back looking never attempted after it was sent: its first
    // attempt is synced before the transfer (one sync per coalescable action, none otherwise).
    if (!failed && entry.action.attempts == 1 && !entry.action.coalesce_key.empty()) failed = flush_guarded();
    lock.lock();
    if (!failed) {
        machine_.storage_recovered();
        machine_.body_saved(seq);
        return true;
    }
    if (machine_.attempt_not_recorded(seq, t, storage_backoff()))
        add_diagnostic({failed, "could not record an attempt of action " + entry.action.id +
                                    "; storage is retried with backoff"});
    update_status();
    return false;
}

template <class Transport, class Storage, class Connectivity, class RetryPolicy, class Clock>
auto basic_vault<Transport, Storage, Connectivity, RetryPolicy, Clock>::fetch_body(std::uint64_t seq, time_point t,
                                                                                  std::unique_lock<std::mutex>& lock)
    -> bool
{
    if constexpr (body_reading_storage<Storage>) {
        if (!machine_.body_missing(seq)) return true;
        // The claim keeps everyone else off the entry; storage_mutex_ is held throughout.
        const std::string id = machine_.action(seq).id;
        lock.unlock();
        auto body = detail::load_body_guarded(storage_, id);
        lock.lock();
        if (body) {
            machine_.restore_body(seq, std::move(*body));
            return true;
        }
        // As for an attempt count storage could not record: not attempted, storage left alone
        // for a while, reported once per episode.
        if (machine_.storage_unavailable(t, storage_backoff()))
            add_diagnostic({body.error(), "could not read the body of action " + id + " back from storage; storage is retried with backoff"});
        update_status();
        return false;
    } else {
        (void)seq;
        (void)t;
        (void)lock;
        return true;
    }
}

template <class Transport, class Storage, class Connectivity, class RetryPolicy, class Clock>
auto basic_vault<Transport, Storage, Connectivity, RetryPolicy, Clock>::load_bodies(std::vector<sync_action>& out,
                                                                                   const std::vector<std::size_t>& missing)
    -> void
{
    if constexpr (body_reading_storage<Storage>) {
        std::vector<bool> lost(out.size());
        for (auto i : missing) {
            auto body = detail::load_body_guarded(storage_, out[i].id);
            if (body) {
                out[i].body = std::move(*body);
                continue;
            }
            lost[i] = true;
            std::lock_guard lock(mutex_);
            add_diagnostic({body.error(), "pending_actions(): could not read the body of action " + out[i].id +
                                              " back from storage; the action is left out of the list"});
        }
        std::size_t j = 0;
        for (std::size_t i = 0; i < out.size(); ++i)
            if (!lost[i]) {
                if (i != j) out[j] = std::move(out[i]);
                ++j;
            }
        out.resize(j);
    } else {
        (void)out;
        (void)missing;
    }
}

template <class Transport, class Storage, class Connectivity, class RetryPolicy, class Clock>
auto basic_vault<Transport, Storage, Connectivity, RetryPolicy, Clock>::attempt_with_credentials(std::uint64_t seq)
    -> attempt_report
{
    bool refreshed = false;
    for (;;) {
        auto report = attempt(seq);
        if (!report.attempted || report.decision != detail::verdict::unauthorized) return report;
        bool renewed = false;
        // Once per 401, with no lock held; a second 401 right after a refresh pauses instead of
        // looping.
        if (!refreshed && config_.refresh_auth && report.response) {
            try {
                renewed = config_.refresh_auth(*report.response);
            } catch (...) {
            }
        }
        if (!renewed) {
            set_paused(true);
            return report;
        }
        refreshed = true;
    }
}

template <class Transport, class Storage, class Connectivity, class RetryPolicy, class Clock>
auto basic_vault<Transport, Storage, Connectivity, RetryPolicy, Clock>::set_paused(bool paused) -> void
{
    {
        std::lock_guard lock(mutex_);
        machine_.set_paused(paused);
        update_status();
    }
    events_->deliver();
    if (!paused) wake_->notify();
}

template <class Transport, class Storage, class Connectivity, class RetryPolicy, class Clock>
auto basic_vault<Transport, Storage, Connectivity, RetryPolicy, Clock>::cancel(std::string_view action_id) -> bool
{
    {
        // Holding the storage lock keeps every transfer from starting: a drain that claims the
        // action meanwhile finds it cancelled before it records an attempt.
        std::lock_guard slock(storage_mutex_);
        std::optional<sync_action> copy;
        std::uint64_t seq = 0;
        bool body_missing = false;
        {
            std::lock_guard lock(mutex_);
            auto found = machine_.cancellable(action_id);
            if (!found) return false;
            seq = *found;
            if (machine_.is_durable(seq)) {
                copy = machine_.action(seq);
                body_missing = machine_.body_missing(seq);
            }
        }
        if (body_missing) {
            // The copy puts the action back if the removal cannot be synced: whole, never
            // without its body (held: storage_mutex_ keeps the stored body as it is).
            auto body = load_body_guarded(copy->id);
            if (!body) return false;
            copy->body = std::move(*body);
        }
        auto originals = doom_dependents(seq);
        if (!originals) return false;
        if (copy) {
            if (remove_guarded(action_id)) {
                undo_doom(*originals);
                return false;
            }
        }
        if ((copy || !originals->empty()) && flush_guarded()) {
            if (copy) (void)save_guarded(*copy);  // not synced: put it back, report the failure
            undo_doom(*originals);
            return false;
        }
        std::unique_lock lock(mutex_);
        detail::outbox out;
        detail::side_writes dependents;
        if (!machine_.cancel(seq, make_error_code(errc::cancelled), out, dependents.saved)) return false;
        lock.unlock();
        // Mostly what doom_dependents saved already; this also covers a dependent admitted since.
        (void)perform_side_writes(dependents);
        lock.lock();
        publish(out);
    }
    events_->deliver();
    return true;
}

template <class Transport, class Storage, class Connectivity, class RetryPolicy, class Clock>
auto basic_vault<Transport, Storage, Connectivity, RetryPolicy, Clock>::ask_on_rejected(std::uint64_t seq,
                                                                                       const http_response& response)
    -> detail::attempt_decision
{
    const detail::attempt_decision dead{detail::verdict::dead, {}, {}};
    sync_action edited;
    {
        std::lock_guard lock(mutex_);
        edited = machine_.action(seq);  // claimed: nobody else changes it
    }
    rejection choice = rejection::dead_letter;
    try {
        choice = config_.on_rejected(edited, response);
    } catch (...) {
        return dead;  // a hook that throws chose the default
    }
    if (choice == rejection::drop) return {detail::verdict::dropped, {}, {}};
    if (choice != rejection::retry) return dead;
    // The hook's edits are input like any other: checked, or the action is dead-lettered.
    if (auto e = detail::check_path(edited.path, config_.max_path_bytes)) return {detail::verdict::dead, {}, e};
    if (edited.body.size() > config_.max_body_bytes)
        return {detail::verdict::dead, {}, make_error_code(errc::payload_too_large)};
    for (const auto& h : edited.headers)
        if (auto e = detail::check_header(h)) return {detail::verdict::dead, {}, e};
    std::lock_guard lock(mutex_);
    machine_.apply_edits(seq, edited);
    return detail::retry_or_give_up(machine_.action(seq), retry_, now(), config_.max_retries, &response);
}

template <class Transport, class Storage, class Connectivity, class RetryPolicy, class Clock>
auto basic_vault<Transport, Storage, Connectivity, RetryPolicy, Clock>::perform(const detail::storage_write& w) -> bool
{
    using kind = detail::storage_write::kind;
    std::error_code failed;
    std::string what;
    for (const auto& a : w.first) {
        if (a.state == action_state::pending) {
            std::lock_guard lock(mutex_);
            if (!machine_.current(a)) continue;  // evicted meanwhile: its removal follows ours
        }
        // A dead letter is saved even if the bounded list dropped it at once: its removal
        // (in `evicted`) follows, so storage never sees a pending action vanish unsent.
        if (auto e = save_guarded(a)) {
            std::lock_guard lock(mutex_);
            add_diagnostic({e, "could not record action " + a.id + " after its parent's outcome"});
        }
    }
    switch (w.what) {
    case kind::none: break;
    case kind::save_entry: {
        const auto& a = *w.entry;  // claimed: ours alone (looked up when the write was decided)
        bool progress_only = false;
        if (!w.insert) {
            std::lock_guard lock(mutex_);
            progress_only = machine_.stored_but_attempt_fields(w.sequence);
        }
        failed = progress_only ? detail::save_progress_guarded(storage_, a) : detail::save_guarded(storage_, a);
        if (failed && w.insert) return false;
        if (!failed) {
            std::lock_guard lock(mutex_);
            if (w.insert) machine_.mark_durable(w.sequence);
            machine_.body_saved(w.sequence);
        }
        what = "could not record the next attempt time of action " + a.id;  // only makes it sooner
        break;
    }
    case kind::save_dead:
        failed = detail::save_guarded(storage_, w.dead);
        what = "could not record dead letter " + w.dead.id;
        break;
    case kind::remove:
        failed = detail::remove_guarded(storage_, w.id);  // lazily: a replay is harmless
        what = "could not remove delivered action " + w.id;
        break;
    }
    for (const auto& id : w.evicted) (void)detail::remove_guarded(storage_, id);
    std::lock_guard lock(mutex_);
    if (failed) add_diagnostic({failed, what});
    return true;
}

template <class Transport, class Storage, class Connectivity, class RetryPolicy, class Clock>
auto basic_vault<Transport, Storage, Connectivity, RetryPolicy, Clock>::perform_side_writes(const detail::side_writes& w) -> bool
{
    bool ok = true;
    for (const auto& a : w.saved) ok = !save_guarded(a) && ok;
    for (const auto& id : w.removed) ok = !remove_guarded(id) && ok;
    if (!ok) {
        std::lock_guard lock(mutex_);
        add_diagnostic({make_error_code(errc::storage_failed), "could not record the actions a cancellation or failure took along"});
    }
    return ok;
}

template <class Transport, class Storage, class Connectivity, class RetryPolicy, class Clock>
auto basic_vault<Transport, Storage, Connectivity, RetryPolicy, Clock>::doom_dependents(std::uint64_t seq)
    -> std::optional<std::vector<sync_action>>
{
    std::vector<std::pair<sync_action, sync_action>> doomed;  // as stored, as it will be
    {
        std::lock_guard lock(mutex_);
        doomed = machine_.dependents_if_cancelled(seq);
    }
    std::vector<sync_action> originals;
    for (auto& d : doomed) {
        if (save_guarded(d.second)) {
            undo_doom(originals);
            return std::nullopt;
        }
        originals.push_back(std::move(d.first));
    }
    return originals;
}

template <class Transport, class Storage, class Connectivity, class RetryPolicy, class Clock>
auto basic_vault<Transport, Storage, Connectivity, RetryPolicy, Clock>::undo_doom(const std::vector<sync_action>& originals)
    -> void
{
    for (const auto& a : originals) (void)save_guarded(a);
}

template <class Transport, class Storage, class Connectivity, class RetryPolicy, class Clock>
auto basic_vault<Transport, Storage, Connectivity, RetryPolicy, Clock>::coalesce(detail::new_action& n) -> std::optional<send_result>
{
    if (n.action.coalesce_key.empty()) return std::nullopt;
    detail::outbox out;
    std::string target;
    {
        // The storage lock keeps the earlier action from being sent while it is rewritten.
        std::lock_guard slock(storage_mutex_);
        std::optional<detail::queue_machine::coalesce_plan> plan;
        {
            std::lock_guard lock(mutex_);
            plan = machine_.plan_coalesce(n);
        }
        if (!plan) return std::nullopt;
        target = plan->before.id;
        const sync_action* merged = nullptr;
        struct editing_scope {  // ends the edit on every path, exceptions included
            basic_vault& v;
            std::uint64_t seq;
            const sync_action*& merged;
            const std::vector<header>& sensitive;
            ~editing_scope()
            {
                std::lock_guard lock(v.mutex_);
                v.machine_.finish_coalesce(seq, merged, sensitive);
            }
        } scope{*this, plan->sequence, merged, n.sensitive};

        const bool cancel_both = plan->what == detail::coalesce_outcome::kind::cancel_both;
        std::optional<std::vector<sync_action>> originals{std::in_place};
        if (cancel_both) originals = doom_dependents(plan->sequence);
        if (!originals) return send_result::failed(make_error_code(errc::storage_failed), target);
        std::error_code failed = cancel_both ? remove_guarded(target) : save_guarded(plan->merged);
        if (!failed) failed = flush_guarded();
        if (failed) {
            (void)save_guarded(plan->before);  // not synced: put the earlier action back as it was
            undo_doom(*originals);
            return send_result::failed(detail::storage_failure(failed), target);
        }
        if (!cancel_both) {
            merged = &plan->merged;
        } else {
            detail::side_writes dependents;
            {
                std::lock_guard lock(mutex_);
                (void)machine_.cancel(plan->sequence, make_error_code(errc::cancelled), out, dependents.saved);
            }
            (void)perform_side_writes(dependents);
        }
    }
    {
        std::lock_guard lock(mutex_);
        publish(out);
    }
    events_->deliver();
    return send_result::queued(target);
}

template <class Transport, class Storage, class Connectivity, class RetryPolicy, class Clock>
auto basic_vault<Transport, Storage, Connectivity, RetryPolicy, Clock>::drain(bool respect_timers) -> std::size_t
{
    {
        std::lock_guard lock(mutex_);
        if (drainers_ >= config_.max_in_flight) return 0;
        ++drainers_;
    }
    struct drainer_slot {
        basic_vault& v;
        ~drainer_slot()
        {
            std::lock_guard lock(v.mutex_);
            --v.drainers_;
        }
    } slot{*this};

    std::size_t successes = 0;
    std::set<std::string> stopped;  // lanes whose head just failed: they wait for the next drain
    while (online()) {
        std::optional<std::uint64_t> seq;
        std::string lane;
        {
            std::lock_guard lock(mutex_);
            seq = machine_.claim(now(), respect_timers, cap(), stopped);
            if (seq) lane = machine_.action(*seq).lane;
        }
        if (!seq) break;
        head_claim claim(*this, *seq);
        const auto report = attempt_with_credentials(*seq);
        if (report.decision == detail::verdict::success && report.attempted) ++successes;
        if (report.stalled) break;
        if (!report.attempted) continue;  // it left the queue meanwhile
        if (report.decision == detail::verdict::retry || report.decision == detail::verdict::unauthorized)
            stopped.insert(lane);
    }
    return successes;
}

template <class Transport, class Storage, class Connectivity, class RetryPolicy, class Clock>
auto basic_vault<Transport, Storage, Connectivity, RetryPolicy, Clock>::transfer(http_request request) -> result<http_response>
{
    if (config_.before_send) {
        try {
            config_.before_send(request);
        } catch (...) {
            return make_error_code(errc::connection_failed);  // as if the network had failed
        }
    }
    result<http_response> outcome = [&] {
        if constexpr (concurrent_transport<Transport>) {
            return detail::send_guarded(transport_, request);
        } else {
            std::lock_guard transport_lock(transport_mutex_);
            return detail::send_guarded(transport_, request);
        }
    }();
    // A cancelled transfer (shutdown) says nothing about the network.
    if (outcome || outcome.error() != errc::cancelled) detail::report_guarded(connectivity_, outcome.has_value());
    return outcome;
}

template <class Transport, class Storage, class Connectivity, class RetryPolicy, class Clock>
auto basic_vault<Transport, Storage, Connectivity, RetryPolicy, Clock>::note_connectivity(bool is_online) -> void
{
    std::lock_guard lock(mutex_);
    if (is_online && !was_online_ && config_.reconnect_jitter.count() > 0) {
        std::uniform_int_distribution<std::chrono::milliseconds::rep> pick(0, config_.reconnect_jitter.count());
        machine_.defer_drains(now(), std::chrono::milliseconds(pick(jitter_random_)));
    }
    was_online_ = is_online;
}

template <class Transport, class Storage, class Connectivity, class RetryPolicy, class Clock>
auto basic_vault<Transport, Storage, Connectivity, RetryPolicy, Clock>::publish(detail::outbox& out) -> void
{
    for (auto& e : out.events) {
        e.time = now();
        events_->publish(e);
        if (e.status == sync_event_status::dead_letter && config_.on_dead_letter)
            events_->publish([fn = config_.on_dead_letter, e] { fn(e); });
    }
    out.events.clear();
    update_status();
}

template <class Transport, class Storage, class Connectivity, class RetryPolicy, class Clock>
auto basic_vault<Transport, Storage, Connectivity, RetryPolicy, Clock>::add_diagnostic(diagnostic d) -> void
{
    constexpr std::size_t kept = 256;
    diagnostics_.push_back(d);
    if (diagnostics_.size() > kept) diagnostics_.pop_front();
    if (config_.on_diagnostic) events_->publish([fn = config_.on_diagnostic, d = std::move(d)] { fn(d); });
}

template <class Transport, class Storage, class Connectivity, class RetryPolicy, class Clock>
auto basic_vault<Transport, Storage, Connectivity, RetryPolicy, Clock>::storage_backoff() -> std::chrono::milliseconds
{
    const auto n = std::min(machine_.storage_failures(), 16);
    return std::min(std::chrono::milliseconds(100) * (1 << n), std::max(cap(), std::chrono::milliseconds(1000)));
}

} // namespace syncvault

#endif
