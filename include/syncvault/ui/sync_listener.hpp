#ifndef SYNCVAULT_UI_SYNC_LISTENER_HPP
#define SYNCVAULT_UI_SYNC_LISTENER_HPP

/**
 * @file
 * `sync_listener`: reacts when background sync finishes an action, successfully or for good
 * (the seed's SyncVaultListener), for as long as the listener lives.
 */

#include <syncvault/detail/observable.hpp>
#include <syncvault/events.hpp>

#include <functional>
#include <string>
#include <utility>

namespace syncvault {

/** What a `sync_listener` calls, and which actions it follows. */
struct sync_listener_options {
    /** An action reached the server and got a 2xx. */
    std::function<void(const sync_event&)> on_success{};
    /** An action failed for good (permanent status or retries used up); it is a dead letter. */
    std::function<void(const sync_event&)> on_dead_letter{};
    /** Follow only this action; empty: every action. */
    std::string action_id{};
    /** Follow only actions with this idempotency key; empty: any key. */
    std::string idempotency_key{};
};

/**
 * Calls `on_success` / `on_dead_letter` for the final events of the actions it follows, until
 * destroyed or `reset()`. Callbacks run where the vault runs every callback (the thread doing
 * the work, or `vault_config::dispatch`).
 *
 * Once the destructor or `reset()` returns, no callback runs or starts; both are safe from
 * inside the listener's own callback and after the vault is gone. Movable; a default-constructed
 * or moved-from listener follows nothing.
 *
 * Filtering by idempotency key is the race-free way to follow one request: the key is known
 * before the request is made, while the action id is only returned after events may already
 * have fired (an immediate send finishes inside `post`).
 *
 * @code
 * syncvault::sync_listener done{v, {
 *     .on_success = [](const syncvault::sync_event& e) { toast("Synced " + e.idempotency_key); },
 *     .on_dead_letter = [](const syncvault::sync_event& e) { toast("Gave up: " + e.error.message()); },
 *     .idempotency_key = "job-7-complete",
 * }};
 * @endcode
 */
class sync_listener {
public:
    sync_listener() = default;

    /** Starts listening to `v` (any `basic_vault`); `v` may die first (then nothing more comes). */
    template <detail::observable_vault Vault>
    sync_listener(Vault& v, sync_listener_options options)
    {
        const std::string id = options.action_id, key = options.idempotency_key;
        auto fn = [o = std::move(options)](const sync_event& e) {
            // events_for / events_for_key filter one field; this checks both.
            if (!o.action_id.empty() && e.action_id != o.action_id) return;
            if (!o.idempotency_key.empty() && e.idempotency_key != o.idempotency_key) return;
            if (e.is_success() && o.on_success) o.on_success(e);
            else if (e.is_permanent_failure() && o.on_dead_letter) o.on_dead_letter(e);
        };
        // The narrowest subscription the vault offers, so other actions' events cost nothing.
        if (!id.empty()) sub_ = v.events_for(id, std::move(fn));
        else if (!key.empty()) sub_ = v.events_for_key(key, std::move(fn));
        else sub_ = v.on_event(std::move(fn));
    }

    /** Stops listening now. */
    void reset() noexcept { sub_.reset(); }

    /** Whether it is listening. */
    explicit operator bool() const noexcept { return static_cast<bool>(sub_); }

private:
    subscription sub_;
};

} // namespace syncvault

#endif
