#ifndef SYNCVAULT_CONNECTIVITY_MANUAL_CONNECTIVITY_HPP
#define SYNCVAULT_CONNECTIVITY_MANUAL_CONNECTIVITY_HPP

/**
 * @file
 * `manual_connectivity`: online or offline because someone said so. Tests flip it; applications
 * that already watch the network (an OS callback, a platform API) forward to `set_online`.
 */

#include <syncvault/concepts/connectivity.hpp>

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <utility>

namespace syncvault {

/** Starts online. `set_online` may be called from any thread; a change notifies the vault. */
class manual_connectivity {
public:
    manual_connectivity() : state_(std::make_unique<state>()) {}
    explicit manual_connectivity(bool online) : manual_connectivity() { state_->online = online; }

    bool is_online() const noexcept { return state_->online.load(); }

    void set_online(bool online)
    {
        if (state_->online.exchange(online) == online) return;
        std::function<void(bool)> handler;
        {
            std::lock_guard lock(state_->mutex);
            handler = state_->handler;
        }
        if (handler) handler(online);  // outside our lock: it may call back into the vault
    }

    /** Optional hook (concepts/connectivity.hpp): the vault listens for changes. */
    void set_change_handler(std::function<void(bool)> handler)
    {
        std::lock_guard lock(state_->mutex);
        state_->handler = std::move(handler);
    }

private:
    struct state {
        std::atomic<bool> online{true};
        std::mutex mutex;
        std::function<void(bool)> handler;
    };
    std::unique_ptr<state> state_;  // stable address: movable while the atomic is not
};

static_assert(syncvault::connectivity<manual_connectivity>);
static_assert(syncvault::notifying_connectivity<manual_connectivity>);

} // namespace syncvault

#endif
