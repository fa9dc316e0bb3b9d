#ifndef SYNCVAULT_DETAIL_ASYNC_REGISTRY_HPP
#define SYNCVAULT_DETAIL_ASYNC_REGISTRY_HPP

// The vault's side of the async_* family (SPEC 9.5): completions waiting for an action's
// terminal event, and the GET/HEAD transfers running on handlers' executors. One registry per
// vault, shared with the jobs it posts, closed when the vault is destroyed: every waiting
// completion then gets errc::cancelled, and the vault waits for the transfers in progress.

#include <syncvault/action.hpp>
#include <syncvault/error.hpp>
#include <syncvault/events.hpp>

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace syncvault::detail {

/**
 * One async operation's handler, type-erased and move-only, called at most once. It keeps its
 * executor busy (a work guard) until then, so `io_context::run()` does not return while an
 * action it waits for is still pending.
 */
class async_completion {
public:
    async_completion() = default;

    template <class Handler>
    explicit async_completion(Handler handler) : impl_(std::make_unique<model<Handler>>(std::move(handler)))
    {
    }

    explicit operator bool() const noexcept { return static_cast<bool>(impl_); }

    /**
     * Runs the handler on its associated executor: `post`ed when `immediate` (an initiating
     * function never calls its handler itself), else `dispatch`ed.
     */
    void complete(std::error_code ec, http_response response = {}, bool immediate = false)
    {
        if (auto impl = std::move(impl_)) impl->complete(ec, std::move(response), immediate);
    }

private:
    struct base {
        virtual ~base() = default;
        virtual void complete(std::error_code ec, http_response response, bool immediate) = 0;
    };

    template <class Handler>
    struct model final : base {
        using executor_type = boost::asio::associated_executor_t<Handler>;

        explicit model(Handler h)
            : work(boost::asio::make_work_guard(boost::asio::get_associated_executor(h))), handler(std::move(h))
        {
        }

        void complete(std::error_code ec, http_response response, bool immediate) override
        {
            auto ex = work.get_executor();
            auto call = [h = std::move(handler), ec, r = std::move(response)]() mutable { std::move(h)(ec, std::move(r)); };
            if (immediate)
                boost::asio::post(ex, std::move(call));
            else
                boost::asio::dispatch(ex, std::move(call));
            work.reset();
        }

        boost::asio::executor_work_guard<executor_type> work;
        Handler handler;
    };

    std::unique_ptr<base> impl_;
};

/** What an async operation completes with, once its action's fate is known. */
struct async_outcome {
    std::error_code error;
    http_response response;
};

/**
 * The completion a terminal event means; nothing for `queued`, `started`, `failed`.
 * - success: no error, the 2xx response;
 * - dead_letter: its error (`max_retries_exceeded`, `key_expired`, `dependency_failed`...) and
 *   the last response if any; a permanent refusal carries no error of its own, so it is
 *   `errc::rejected` (the response says why), or `max_retries_exceeded` without a response;
 * - cancelled: its error if it has one (`errc::evicted`, which compares equal to
 *   `errc::cancelled`), else `errc::cancelled`.
 */
inline std::optional<async_outcome> outcome_of(const sync_event& e)
{
    std::error_code ec = e.error;
    switch (e.status) {
    case sync_event_status::success: return async_outcome{{}, e.response.value_or(http_response{})};
    case sync_event_status::dead_letter:
        if (!ec) ec = make_error_code(e.response ? errc::rejected : errc::max_retries_exceeded);
        return async_outcome{ec, e.response.value_or(http_response{})};
    case sync_event_status::cancelled:
        if (!ec) ec = make_error_code(errc::cancelled);
        return async_outcome{ec, {}};
    default: return std::nullopt;
    }
}

class async_registry {
public:
    using ticket = std::uint64_t;

    async_registry() = default;
    async_registry(const async_registry&) = delete;
    async_registry& operator=(const async_registry&) = delete;
    ~async_registry() { close({}); }

    /** Subscribes to the vault's events once (`subscribe` returns the subscription). */
    void ensure_subscribed(const std::function<subscription(std::function<void(const sync_event&)>)>& subscribe)
    {
        // Lock-free once subscribed: a completion run inline from an event delivery (which
        // holds that listener's lock) may start the next operation.
        if (subscribed_.load(std::memory_order_acquire)) return;
        std::lock_guard lock(subscribe_mutex_);
        if (subscribed_.load(std::memory_order_relaxed)) return;
        sub_ = subscribe([this](const sync_event& e) { notify(e); });
        subscribed_.store(true, std::memory_order_release);
    }

    /**
     * `c` waits for action `id`'s terminal event. Completed at once when the vault is closing
     * or the outcome is already known (posted if `immediate`: inside an initiating function).
     */
    ticket wait(const std::string& id, async_completion c, bool immediate = false)
    {
        std::unique_lock lock(mutex_);
        const auto t = ++last_ticket_;
        if (closed_) {
            lock.unlock();
            c.complete(make_error_code(errc::cancelled), {}, immediate);
            return t;
        }
        if (auto known = recent(id)) {
            lock.unlock();
            c.complete(known->error, std::move(known->response), immediate);
            return t;
        }
        waiting_.emplace(id, entry{t, std::move(c)});
        return t;
    }

    /** Takes back a completion whose action was never made (the enqueue failed). */
    async_completion withdraw(const std::string& id, ticket t)
    {
        std::lock_guard lock(mutex_);
        auto [first, last] = waiting_.equal_range(id);
        for (auto it = first; it != last; ++it)
            if (it->second.number == t) {
                auto c = std::move(it->second.completion);
                waiting_.erase(it);
                return c;
            }
        return {};
    }

    /** The request joined another action (same idempotency key): wait for that one instead. */
    void retarget(const std::string& id, ticket t, const std::string& other, bool immediate = false)
    {
        if (auto c = withdraw(id, t)) {
            std::unique_lock lock(mutex_);
            if (!closed_ && !recent(other)) {
                waiting_.emplace(other, entry{t, std::move(c)});
                return;
            }
            auto known = closed_ ? std::nullopt : recent(other);
            lock.unlock();
            if (known)
                c.complete(known->error, std::move(known->response), immediate);
            else
                c.complete(make_error_code(errc::cancelled), {}, immediate);
        }
    }

    /** Actions that left without an event (`clear_queue`): their operations are cancelled. */
    void abandon(const std::vector<std::string>& ids)
    {
        std::vector<async_completion> done;
        {
            std::lock_guard lock(mutex_);
            for (const auto& id : ids) {
                auto [first, last] = waiting_.equal_range(id);
                for (auto it = first; it != last; ++it) done.push_back(std::move(it->second.completion));
                waiting_.erase(first, last);
            }
        }
        for (auto& c : done) c.complete(make_error_code(errc::cancelled));
    }

    /** A GET/HEAD is about to use the vault; false once the vault is closing (do not touch it). */
    bool begin_read()
    {
        std::lock_guard lock(mutex_);
        if (closed_) return false;
        ++reads_;
        return true;
    }

    void end_read()
    {
        {
            std::lock_guard lock(mutex_);
            --reads_;
        }
        idle_.notify_all();
    }

    /**
     * The vault is going away: no more events, every waiting completion gets `errc::cancelled`,
     * transfers in progress are interrupted (`interrupt`) and waited for.
     */
    void close(const std::function<void()>& interrupt)
    {
        {
            subscription sub;
            {
                std::lock_guard lock(subscribe_mutex_);
                sub = std::move(sub_);
            }
            sub.reset();  // outside our locks; once this returns, notify() is not running and will not run
        }
        std::multimap<std::string, entry> waiting;
        {
            std::lock_guard lock(mutex_);
            if (closed_ && waiting_.empty() && reads_ == 0) return;
            closed_ = true;
            waiting.swap(waiting_);
        }
        for (auto& [id, e] : waiting) e.completion.complete(make_error_code(errc::cancelled));
        std::unique_lock lock(mutex_);
        if (reads_ != 0 && interrupt) {
            lock.unlock();
            try {
                interrupt();
            } catch (...) {
            }
            lock.lock();
        }
        idle_.wait(lock, [&] { return reads_ == 0; });
    }

private:
    struct entry {
        ticket number;
        async_completion completion;
    };

    void notify(const sync_event& e)
    {
        auto outcome = outcome_of(e);
        if (!outcome) return;
        std::vector<async_completion> done;
        {
            std::lock_guard lock(mutex_);
            recent_.emplace_back(e.action_id, *outcome);
            if (recent_.size() > kept_outcomes) recent_.pop_front();
            auto [first, last] = waiting_.equal_range(e.action_id);
            for (auto it = first; it != last; ++it) done.push_back(std::move(it->second.completion));
            waiting_.erase(first, last);
        }
        for (auto& c : done) c.complete(outcome->error, outcome->response);
    }

    /** The outcome of `id` if it ended lately (mutex_ held). */
    std::optional<async_outcome> recent(const std::string& id) const
    {
        for (auto it = recent_.rbegin(); it != recent_.rend(); ++it)
            if (it->first == id) return it->second;
        return std::nullopt;
    }

    // Outcomes kept for operations that learn their action's id only after it was admitted
    // (a duplicate key, a GET queued while offline): that action may have ended meanwhile.
    static constexpr std::size_t kept_outcomes = 64;

    std::mutex subscribe_mutex_;
    subscription sub_;
    std::atomic<bool> subscribed_{false};

    std::mutex mutex_;
    std::condition_variable idle_;
    std::multimap<std::string, entry> waiting_;
    std::deque<std::pair<std::string, async_outcome>> recent_;
    ticket last_ticket_ = 0;
    std::size_t reads_ = 0;
    bool closed_ = false;
};

/** The vault's member: closes the registry when the vault is destroyed (it is declared last). */
class async_owner {
public:
    explicit async_owner(std::function<void()> interrupt) : interrupt_(std::move(interrupt)) {}
    async_owner(const async_owner&) = delete;
    async_owner& operator=(const async_owner&) = delete;
    ~async_owner() { registry->close(interrupt_); }

    const std::shared_ptr<async_registry> registry = std::make_shared<async_registry>();

private:
    std::function<void()> interrupt_;
};

} // namespace syncvault::detail

#endif
