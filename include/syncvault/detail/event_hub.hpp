#ifndef SYNCVAULT_DETAIL_EVENT_HUB_HPP
#define SYNCVAULT_DETAIL_EVENT_HUB_HPP

// Delivers events and status changes to subscribers: in publication order, one at a time,
// never under the vault's lock. The vault publishes while holding its lock (so the order is the
// order things happened) and calls deliver() after releasing it. Whichever thread finds no
// delivery under way becomes the deliverer and drains the outbox; others (and re-entrant calls
// from inside a callback) only enqueue, so a callback may call the vault freely.

#include <syncvault/events.hpp>

#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace syncvault::detail {

class event_hub : public std::enable_shared_from_this<event_hub> {
public:
    using dispatcher = std::function<void(std::function<void()>)>;

    explicit event_hub(dispatcher dispatch) : dispatch_(std::move(dispatch)) {}

    /** Events whose action id (or key) equals `filter`, or all when `filter` is empty. */
    subscription add_event_listener(std::function<void(const sync_event&)> fn,
                                    std::optional<std::string> action_id = {},
                                    std::optional<std::string> key = {})
    {
        auto l = std::make_shared<listener>();
        l->on_event = std::move(fn);
        l->action_id = std::move(action_id);
        l->key = std::move(key);
        return add(std::move(l), std::nullopt);
    }

    /** Status changes; `current` is delivered to this listener first (at the next deliver()). */
    subscription add_status_listener(std::function<void(sync_status)> fn, sync_status current)
    {
        auto l = std::make_shared<listener>();
        l->on_status = std::move(fn);
        return add(std::move(l), current);
    }

    void publish(const sync_event& e)
    {
        std::lock_guard lock(mutex_);
        std::vector<std::shared_ptr<listener>> targets;
        for (auto& l : listeners_)
            if (l->on_event && (!l->action_id || *l->action_id == e.action_id) &&
                (!l->key || *l->key == e.idempotency_key))
                targets.push_back(l);
        if (targets.empty()) return;
        outbox_.push_back([targets = std::move(targets), e] {
            for (auto& l : targets) l->call([&] { l->on_event(e); });
        });
    }

    void publish(sync_status s)
    {
        std::lock_guard lock(mutex_);
        std::vector<std::shared_ptr<listener>> targets;
        for (auto& l : listeners_)
            if (l->on_status) targets.push_back(l);
        if (targets.empty()) return;
        outbox_.push_back([targets = std::move(targets), s] {
            for (auto& l : targets) l->call([&] { l->on_status(s); });
        });
    }

    /** Any other callback (on_dead_letter...), kept in order with the events. */
    void publish(std::function<void()> fn)
    {
        std::lock_guard lock(mutex_);
        outbox_.push_back(std::move(fn));
    }

    /** Runs (or dispatches) everything published, unless another call is already doing so. */
    void deliver()
    {
        std::unique_lock lock(mutex_);
        if (delivering_) return;
        delivering_ = true;
        while (!outbox_.empty()) {
            auto next = std::move(outbox_.front());
            outbox_.pop_front();
            lock.unlock();
            // The exception boundary (SPEC 9.1): a callback that throws costs only its own
            // delivery; a dispatcher that throws drops only the callback it was handed.
            auto guarded = [next = std::move(next)]() noexcept {
                try {
                    next();
                } catch (...) {
                }
            };
            try {
                if (dispatch_)
                    dispatch_(std::move(guarded));
                else
                    guarded();
            } catch (...) {
            }
            lock.lock();
        }
        delivering_ = false;
    }

private:
    struct listener {
        std::function<void(const sync_event&)> on_event;
        std::function<void(sync_status)> on_status;
        std::optional<std::string> action_id, key;
        // Recursive: a callback may destroy its own subscription. Held during each call, so
        // once cancel() returns on another thread no call is running or will start.
        std::recursive_mutex mutex;
        bool alive = true;

        /** Calls `f` unless unsubscribed; what it throws stays here, so other listeners still hear. */
        template <class F>
        void call(F&& f) noexcept
        {
            std::lock_guard lock(mutex);
            if (!alive) return;
            try {
                f();
            } catch (...) {
            }
        }
    };

    subscription add(std::shared_ptr<listener> l, std::optional<sync_status> current)
    {
        {
            std::lock_guard lock(mutex_);
            listeners_.push_back(l);
            if (current)
                outbox_.push_back([l, s = *current] { l->call([&] { l->on_status(s); }); });
        }
        return subscription([weak = weak_from_this(), l] {
            {
                std::lock_guard lock(l->mutex);
                l->alive = false;
            }
            if (auto hub = weak.lock()) {
                std::lock_guard lock(hub->mutex_);
                std::erase(hub->listeners_, l);
            }
        });
    }

    dispatcher dispatch_;
    std::mutex mutex_;
    std::vector<std::shared_ptr<listener>> listeners_;
    std::deque<std::function<void()>> outbox_;
    bool delivering_ = false;
};

/** Wake-up listeners (background_sync): called directly, outside every vault lock. */
class wake_hub : public std::enable_shared_from_this<wake_hub> {
public:
    subscription add(std::function<void()> fn)
    {
        std::lock_guard lock(mutex_);
        auto id = ++last_id_;
        listeners_.emplace_back(id, std::make_shared<std::function<void()>>(std::move(fn)));
        return subscription([weak = weak_from_this(), id] {
            if (auto hub = weak.lock()) {
                std::lock_guard lock(hub->mutex_);
                std::erase_if(hub->listeners_, [&](auto& p) { return p.first == id; });
            }
        });
    }

    void notify()
    {
        std::vector<std::shared_ptr<std::function<void()>>> targets;
        {
            std::lock_guard lock(mutex_);
            for (auto& [id, fn] : listeners_) targets.push_back(fn);
        }
        for (auto& fn : targets) {
            try {
                (*fn)();
            } catch (...) {  // a wake listener that throws must not stop the others or the vault
            }
        }
    }

private:
    std::mutex mutex_;
    std::vector<std::pair<int, std::shared_ptr<std::function<void()>>>> listeners_;
    int last_id_ = 0;
};

} // namespace syncvault::detail

#endif
