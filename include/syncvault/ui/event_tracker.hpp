#ifndef SYNCVAULT_UI_EVENT_TRACKER_HPP
#define SYNCVAULT_UI_EVENT_TRACKER_HPP

/**
 * @file
 * `event_tracker`: the last lifecycle event of one action, with a render function called on
 * each new one (the seed's SyncEventBuilder): a per-item "queued / syncing / synced / failed" mark.
 */

#include <syncvault/detail/observable.hpp>
#include <syncvault/events.hpp>

#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string_view>
#include <utility>

namespace syncvault {

/**
 * Holds the last `sync_event` of one action (empty until one arrives) and calls
 * `render(event)` on each new one, until destroyed or `reset()`.
 *
 * Follow an action by id (`send_result::action_id()`), or by idempotency key with `for_key`. By
 * key is race-free: a tracker made before the request sees every event, whereas one made from
 * the returned id misses those already fired (all of them when the request was sent at once, so
 * check `send_result::is_sent()` too).
 *
 * `last()` may be read from any thread. `render` runs where the vault runs every callback (the
 * thread doing the work, or `vault_config::dispatch`). Once the destructor or `reset()` returns,
 * `render` is not running and is never called again; both are safe from inside `render` and
 * after the vault is gone. Movable; a default-constructed or moved-from tracker is empty.
 *
 * @code
 * auto mark = syncvault::event_tracker::for_key(v, "todo-7", [](const syncvault::sync_event& e) {
 *     redraw_item(7, e.status);     // queued, started, failed, success, dead_letter
 * });
 * v.post("/todos", item, {.idempotency_key = "todo-7"});
 * @endcode
 */
class event_tracker {
public:
    using render_fn = std::function<void(const sync_event&)>;

    event_tracker() = default;

    /** Tracks the action `action_id` of `v` (any `basic_vault`). */
    template <detail::observable_vault Vault>
    event_tracker(Vault& v, std::string_view action_id, render_fn render = {})
        : state_(std::make_shared<state>(std::move(render)))
    {
        sub_ = v.events_for(action_id, receiver());
    }

    /** Tracks the actions of `v` carrying `idempotency_key` (one at a time: the key is unique
     *  among pending actions). */
    template <detail::observable_vault Vault>
    static event_tracker for_key(Vault& v, std::string_view idempotency_key, render_fn render = {})
    {
        event_tracker t;
        t.state_ = std::make_shared<state>(std::move(render));
        t.sub_ = v.events_for_key(idempotency_key, t.receiver());
        return t;
    }

    event_tracker(event_tracker&&) noexcept = default;
    event_tracker& operator=(event_tracker&& other) noexcept
    {
        sub_ = std::move(other.sub_);  // ends our old subscription first
        state_ = std::move(other.state_);
        return *this;
    }
    ~event_tracker() = default;

    /** The last event delivered; empty until the first. */
    std::optional<sync_event> last() const
    {
        if (!state_) return std::nullopt;
        std::lock_guard lock(state_->mutex);
        return state_->last;
    }

    /** The status of the last event; empty until the first. */
    std::optional<sync_event_status> last_status() const
    {
        if (!state_) return std::nullopt;
        std::lock_guard lock(state_->mutex);
        if (!state_->last) return std::nullopt;
        return state_->last->status;
    }

    /** Stops tracking now; `last()` keeps its value. */
    void reset() noexcept { sub_.reset(); }

    /** Whether it is tracking. */
    explicit operator bool() const noexcept { return static_cast<bool>(sub_); }

private:
    struct state {
        explicit state(render_fn r) : render(std::move(r)) {}
        mutable std::mutex mutex;  // guards `last`; never held while `render` runs
        std::optional<sync_event> last;
        render_fn render;
    };

    // Owns the state, so a call under way when this tracker is moved or destroyed (from inside
    // render) still finds it.
    std::function<void(const sync_event&)> receiver() const
    {
        return [st = state_](const sync_event& e) {
            {
                std::lock_guard lock(st->mutex);
                st->last = e;
            }
            if (st->render) st->render(e);
        };
    }

    std::shared_ptr<state> state_;
    subscription sub_;  // declared last: destroyed first, so no call starts on a dying state
};

} // namespace syncvault

#endif
