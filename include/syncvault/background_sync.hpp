#ifndef SYNCVAULT_BACKGROUND_SYNC_HPP
#define SYNCVAULT_BACKGROUND_SYNC_HPP

/**
 * @file
 * `background_sync`: one worker thread that drives a vault's `poll()` (SPEC 3.13).
 */

#include <syncvault/events.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <concepts>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stop_token>
#include <thread>
#include <vector>

namespace syncvault {

/** What `background_sync` needs of a vault: `poll()`, `on_wake(fn)` and `clock()`. */
template <class V>
concept background_syncable = requires(V& v, std::function<void()> fn) {
    { v.poll() } -> std::same_as<std::optional<std::chrono::system_clock::time_point>>;
    { v.on_wake(std::move(fn)) } -> std::same_as<subscription>;
    { v.clock().now() } -> std::same_as<std::chrono::system_clock::time_point>;
};

/**
 * RAII owner of the worker threads that keep a vault in sync: each calls `v.poll()`, sleeps
 * until the time `poll()` names (or, when it names none, until woken), and is woken early by
 * `v.on_wake` (an action queued or requeued, connectivity back, another worker's transfer
 * ended). While offline, `poll()` names the next connectivity probe, so a worker wakes for each
 * probe, and a change back to online drains the queue at once. It runs
 * `vault_config::max_in_flight` workers (SPEC 9.2), each taking a different lane's head.
 *
 * The destructor stops the workers and returns promptly even while a request hangs: it calls
 * `v.interrupt()` (the transport's optional `cancel()`) and the connectivity's optional
 * `cancel()` (a probe in progress), repeating both every few milliseconds until every worker
 * has left `poll()`, then joins. An interrupted attempt counts as a retryable failure.
 *
 * - Create it after the vault and destroy it before (it holds a reference; a `basic_vault`
 *   destroyed first aborts with a message instead of a use-after-free).
 * - The wait is converted from the vault Clock's time to a real wait (`at - v.clock().now()`)
 *   and capped at `max_sleep` (default one minute), so a wall clock that jumps back cannot
 *   stall the queue for long.
 * - An exception escaping `poll()` is swallowed; the worker tries again one second later
 *   rather than ending the process.
 *
 * @tparam Vault a `basic_vault` (anything with `poll()`, `on_wake(fn)`, `clock()`;
 *         `attach_driver(fn)`, `config().max_in_flight`, `interrupt()` and
 *         `connectivity().cancel()` are used when present)
 *
 * @code
 * syncvault::vault v{cfg};
 * syncvault::background_sync sync{v};   // from now on, queued actions are sent in the background
 * v.post("/jobs", job_done{7, "DONE"});
 * @endcode
 */
template <class Vault>
class background_sync {
    static_assert(background_syncable<Vault>,
                  "background_sync: Vault must have poll(), on_wake(fn) and clock(); use a basic_vault");

public:
    /** Starts the workers at once; each polls `v` immediately. */
    explicit background_sync(Vault& v, std::chrono::milliseconds max_sleep = std::chrono::minutes(1))
        : vault_(v), max_sleep_(max_sleep), s_(std::make_shared<shared>())
    {
        std::size_t workers = 1;
        if constexpr (requires { v.config().max_in_flight; })
            workers = std::max<std::size_t>(1, v.config().max_in_flight);
        s_->woken.assign(workers, false);
        s_->ids.resize(workers);
        // The callback holds the shared part only: a wake still running on another thread
        // while this object dies touches nothing that is gone. As the vault's driver where it
        // offers that: the vault then refuses to die before this object.
        if constexpr (requires { vault_.attach_driver([] {}); })
            wake_subscription_ = vault_.attach_driver([s = s_] { s->wake(); });
        else
            wake_subscription_ = vault_.on_wake([s = s_] { s->wake(); });
        for (std::size_t i = 0; i < workers; ++i)
            workers_.emplace_back([this, i](std::stop_token stop) { run(stop, i); });
    }

    background_sync(const background_sync&) = delete;
    background_sync& operator=(const background_sync&) = delete;

    /** Stops the workers, aborting transfers or probes in progress, and joins them. */
    ~background_sync()
    {
        for (auto& w : workers_) w.request_stop();  // wakes the condition-variable waits
        std::unique_lock lock(s_->mutex);
        while (s_->exited < workers_.size()) {
            // A cancel that lands just before a transfer starts is forgotten by it: repeat
            // until every worker is out, so a transfer that starts late is aborted too.
            lock.unlock();
            interrupt();
            lock.lock();
            s_->exited_cv.wait_for(lock, std::chrono::milliseconds(10), [&] { return s_->exited == workers_.size(); });
        }
        lock.unlock();
        wake_subscription_.reset();
        // ~jthread joins
    }

    /** Makes the workers poll now (as a new action would). */
    void wake() { s_->wake(); }

    /** Number of `poll()` calls so far, all workers together (for tests and diagnostics). */
    std::size_t polls() const
    {
        std::lock_guard lock(s_->mutex);
        return s_->polls;
    }

    /** Number of worker threads. */
    std::size_t workers() const noexcept { return workers_.size(); }

private:
    struct shared {
        mutable std::mutex mutex;
        std::condition_variable_any cv;     // the workers sleep here
        std::condition_variable exited_cv;  // the destructor waits here
        std::vector<bool> woken;            // per worker
        std::vector<std::thread::id> ids;   // per worker, once it runs
        std::size_t exited = 0;
        std::size_t polls = 0;

        void wake()
        {
            // What happens on a worker inside its own poll() (its transfer ending) is already
            // reflected in what that poll() returns: wake the others only, or it would poll
            // forever.
            const auto self = std::this_thread::get_id();
            {
                std::lock_guard lock(mutex);
                for (std::size_t i = 0; i < woken.size(); ++i)
                    if (ids[i] != self) woken[i] = true;
            }
            cv.notify_all();
        }
    };

    void interrupt()
    {
        if constexpr (requires { vault_.interrupt(); }) vault_.interrupt();
        if constexpr (requires { vault_.connectivity().cancel(); }) vault_.connectivity().cancel();
    }

    void run(std::stop_token stop, std::size_t me)
    {
        auto& s = *s_;
        std::unique_lock lock(s.mutex);
        s.ids[me] = std::this_thread::get_id();
        while (!stop.stop_requested()) {
            s.woken[me] = false;
            ++s.polls;
            lock.unlock();
            std::optional<std::chrono::steady_clock::duration> sleep;
            try {
                if (const auto at = vault_.poll())
                    sleep = std::clamp<std::chrono::steady_clock::duration>(*at - vault_.clock().now(), {}, max_sleep_);
            } catch (...) {
                sleep = std::chrono::seconds(1);
            }
            lock.lock();
            if (sleep)
                s.cv.wait_for(lock, stop, *sleep, [&] { return bool(s.woken[me]); });
            else
                s.cv.wait(lock, stop, [&] { return bool(s.woken[me]); });
        }
        ++s.exited;
        s.exited_cv.notify_all();
    }

    Vault& vault_;
    std::chrono::milliseconds max_sleep_;
    std::shared_ptr<shared> s_;
    subscription wake_subscription_;
    std::vector<std::jthread> workers_;  // last: they start once everything above exists
};

} // namespace syncvault

#endif
