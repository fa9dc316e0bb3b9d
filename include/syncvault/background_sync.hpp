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

namespace syncvault {

/** What `background_sync` needs of a vault: `poll()`, `on_wake(fn)` and `clock()`. */
template <class V>
concept background_syncable = requires(V& v, std::function<void()> fn) {
    { v.poll() } -> std::same_as<std::optional<std::chrono::system_clock::time_point>>;
    { v.on_wake(std::move(fn)) } -> std::same_as<subscription>;
    { v.clock().now() } -> std::same_as<std::chrono::system_clock::time_point>;
};

/**
 * RAII owner of one worker thread that keeps a vault in sync: it calls `v.poll()`, sleeps until
 * the time `poll()` names (or, when it names none, until woken), and is woken early by
 * `v.on_wake` (an action queued or requeued, connectivity back, another thread's transfer
 * ended). While offline, `poll()` names the next connectivity probe, so the worker wakes for
 * each probe, and a change back to online drains the queue at once.
 *
 * The destructor stops the worker and returns promptly even while a request hangs: it calls
 * `v.interrupt()` (the transport's optional `cancel()`) and the connectivity's optional
 * `cancel()` (a probe in progress), repeating both every few milliseconds until the worker has
 * left `poll()`, then joins. An interrupted attempt counts as a retryable failure.
 *
 * - Create it after the vault and destroy it before (it holds a reference).
 * - The wait is converted from the vault Clock's time to a real wait (`at - v.clock().now()`)
 *   and capped at `max_sleep` (default one minute), so a wall clock that jumps back cannot
 *   stall the queue for long.
 * - An exception escaping `poll()` (a throwing callback) is swallowed; the worker tries again
 *   one second later rather than ending the process.
 *
 * @tparam Vault a `basic_vault` (anything with `poll()`, `on_wake(fn)`, `clock()`; `interrupt()`
 *         and `connectivity().cancel()` are used when present)
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
    /** Starts the worker at once; it polls `v` immediately. */
    explicit background_sync(Vault& v, std::chrono::milliseconds max_sleep = std::chrono::minutes(1))
        : vault_(v), max_sleep_(max_sleep), s_(std::make_shared<shared>())
    {
        // The callback holds the shared part only: a wake still running on another thread
        // while this object dies touches nothing that is gone.
        // As the vault's driver where it offers that: it then refuses to die before this object.
        if constexpr (requires { vault_.attach_driver([] {}); })
            wake_subscription_ = vault_.attach_driver([s = s_] { s->wake(); });
        else
            wake_subscription_ = vault_.on_wake([s = s_] { s->wake(); });
        worker_ = std::jthread([this](std::stop_token stop) { run(stop); });
    }

    background_sync(const background_sync&) = delete;
    background_sync& operator=(const background_sync&) = delete;

    /** Stops the worker, aborting a transfer or probe in progress, and joins it. */
    ~background_sync()
    {
        worker_.request_stop();  // wakes the condition-variable wait
        std::unique_lock lock(s_->mutex);
        while (!s_->exited) {
            // A cancel that lands just before a transfer starts is forgotten by it: repeat
            // until the worker is out, so a transfer that starts late is aborted too.
            lock.unlock();
            interrupt();
            lock.lock();
            s_->exited_cv.wait_for(lock, std::chrono::milliseconds(10), [&] { return s_->exited; });
        }
        lock.unlock();
        wake_subscription_.reset();
        // ~jthread joins
    }

    /** Makes the worker poll now (as a new action would). */
    void wake() { s_->wake(); }

    /** Number of `poll()` calls so far (for tests and diagnostics). */
    std::size_t polls() const
    {
        std::lock_guard lock(s_->mutex);
        return s_->polls;
    }

private:
    struct shared {
        std::mutex mutex;
        std::condition_variable_any cv;     // the worker sleeps here
        std::condition_variable exited_cv;  // the destructor waits here
        bool woken = false;
        bool exited = false;
        std::size_t polls = 0;
        std::atomic<std::thread::id> worker{};

        void wake()
        {
            // The worker's own poll() reports its transfers' ends too; what happens on the
            // worker inside poll() is already reflected in what poll() returns, so ignore it
            // there (or it would poll forever).
            if (std::this_thread::get_id() == worker.load()) return;
            {
                std::lock_guard lock(mutex);
                woken = true;
            }
            cv.notify_one();
        }
    };

    void interrupt()
    {
        if constexpr (requires { vault_.interrupt(); }) vault_.interrupt();
        if constexpr (requires { vault_.connectivity().cancel(); }) vault_.connectivity().cancel();
    }

    void run(std::stop_token stop)
    {
        auto& s = *s_;
        s.worker = std::this_thread::get_id();
        std::unique_lock lock(s.mutex);
        while (!stop.stop_requested()) {
            s.woken = false;
            ++s.polls;
            lock.unlock();
            std::optional<std::chrono::steady_clock::duration> sleep;
            try {
                if (const auto at = vault_.poll())
                    sleep = std::clamp<std::chrono::steady_clock::duration>(*at - vault_.clock().now(),
                                                                            {}, max_sleep_);
            } catch (...) {
                sleep = std::chrono::seconds(1);
            }
            lock.lock();
            if (sleep)
                s.cv.wait_for(lock, stop, *sleep, [&] { return s.woken; });
            else
                s.cv.wait(lock, stop, [&] { return s.woken; });
        }
        s.exited = true;
        s.exited_cv.notify_all();
    }

    Vault& vault_;
    std::chrono::milliseconds max_sleep_;
    std::shared_ptr<shared> s_;
    subscription wake_subscription_;
    std::jthread worker_;  // last: starts once everything above exists
};

} // namespace syncvault

#endif
