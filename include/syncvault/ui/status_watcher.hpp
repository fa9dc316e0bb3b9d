#ifndef SYNCVAULT_UI_STATUS_WATCHER_HPP
#define SYNCVAULT_UI_STATUS_WATCHER_HPP

/**
 * @file
 * `status_watcher`: the vault's overall status, kept current, with a render function called on
 * each change (the seed's SyncStatusBuilder).
 */

#include <syncvault/detail/observable.hpp>
#include <syncvault/events.hpp>

#include <atomic>
#include <functional>
#include <memory>
#include <utility>

namespace syncvault {

/**
 * Holds the latest `sync_status` of a vault and calls `render(status)` with the current value at
 * once, then on each change, until destroyed or `reset()`.
 *
 * `status()` may be read from any thread. `render` runs where the vault runs every callback (the
 * thread doing the work, or `vault_config::dispatch`: a GUI passes one that posts to its UI
 * thread, and then the first call comes from there too); it may call the vault, e.g.
 * `pending_count()` for a badge.
 *
 * Once the destructor or `reset()` returns, `render` is not running and is never called again;
 * both are safe from inside `render` and after the vault is gone. Movable; a default-constructed
 * or moved-from watcher says `synced` and renders nothing.
 *
 * @code
 * syncvault::status_watcher badge{v, [&](syncvault::sync_status s) {
 *     std::printf("%s, %zu waiting\n", syncvault::to_string(s).data(), v.pending_count());
 * }};
 * @endcode
 */
class status_watcher {
public:
    status_watcher() = default;

    /** Starts watching `v` (any `basic_vault`); `render` may be empty (poll `status()`). */
    template <detail::observable_vault Vault>
    explicit status_watcher(Vault& v, std::function<void(sync_status)> render = {})
        : state_(std::make_shared<state>(v.status(), std::move(render)))
    {
        // The lambda owns the state, so a call already under way when this watcher is moved or
        // destroyed (from inside render) still finds it.
        sub_ = v.on_status([st = state_](sync_status s) {
            st->latest.store(s);
            if (st->render) st->render(s);
        });
    }

    status_watcher(status_watcher&&) noexcept = default;
    status_watcher& operator=(status_watcher&& other) noexcept
    {
        sub_ = std::move(other.sub_);  // ends our old subscription first
        state_ = std::move(other.state_);
        return *this;
    }
    ~status_watcher() = default;

    /** The latest status delivered (before the first delivery: the status at construction). */
    sync_status status() const noexcept { return state_ ? state_->latest.load() : sync_status::synced; }

    /** Stops watching now; `status()` keeps its last value. */
    void reset() noexcept { sub_.reset(); }

    /** Whether it is watching. */
    explicit operator bool() const noexcept { return static_cast<bool>(sub_); }

private:
    struct state {
        state(sync_status s, std::function<void(sync_status)> r) : latest(s), render(std::move(r)) {}
        std::atomic<sync_status> latest;
        std::function<void(sync_status)> render;
    };

    std::shared_ptr<state> state_;
    subscription sub_;  // declared last: destroyed first, so no call starts on a dying state
};

} // namespace syncvault

#endif
