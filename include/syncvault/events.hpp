#ifndef SYNCVAULT_EVENTS_HPP
#define SYNCVAULT_EVENTS_HPP

/**
 * @file
 * What the vault tells the application: per-action events, the overall status, and the RAII
 * `subscription` that keeps a callback registered.
 */

#include <syncvault/action.hpp>

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

namespace syncvault {

/**
 * One step of an action's lifecycle: queued, then (started, failed)*, then started and success
 * or dead_letter, or cancelled at any point it is not in flight (SPEC 9.4).
 */
enum class sync_event_status { queued, started, success, failed, dead_letter, cancelled };

constexpr std::string_view to_string(sync_event_status s) noexcept
{
    switch (s) {
    case sync_event_status::queued: return "queued";
    case sync_event_status::started: return "started";
    case sync_event_status::success: return "success";
    case sync_event_status::failed: return "failed";
    case sync_event_status::dead_letter: return "dead_letter";
    case sync_event_status::cancelled: return "cancelled";
    }
    return "?";
}

/** The vault as a whole, first match wins: syncing, error, pending, synced (SPEC 3.11). */
enum class sync_status { synced, syncing, pending, error };

constexpr std::string_view to_string(sync_status s) noexcept
{
    switch (s) {
    case sync_status::synced: return "synced";
    case sync_status::syncing: return "syncing";
    case sync_status::pending: return "pending";
    case sync_status::error: return "error";
    }
    return "?";
}

/** One lifecycle event of one action. */
struct sync_event {
    std::string action_id, idempotency_key;
    sync_event_status status = sync_event_status::queued;
    int attempt = 0;                        ///< 1 for the first attempt; 0 for `queued`
    std::optional<http_response> response;  ///< on success, failed or dead_letter, when one came
    std::error_code error;                  ///< on failed or dead_letter when there is one
    std::chrono::system_clock::time_point time{};  ///< the vault Clock's now()

    bool is_success() const noexcept { return status == sync_event_status::success; }
    bool is_permanent_failure() const noexcept { return status == sync_event_status::dead_letter; }
};

/**
 * Keeps a callback registered until destroyed (or `reset()`). Movable, default-constructible
 * (empty). Safe to destroy after the vault, and from inside its own callback; once destruction
 * returns, the callback is never called again.
 */
class subscription {
public:
    subscription() = default;
    explicit subscription(std::function<void()> cancel) : cancel_(std::move(cancel)) {}
    subscription(subscription&& other) noexcept : cancel_(std::exchange(other.cancel_, nullptr)) {}
    subscription& operator=(subscription&& other) noexcept
    {
        if (this != &other) {
            reset();
            cancel_ = std::exchange(other.cancel_, nullptr);
        }
        return *this;
    }
    subscription(const subscription&) = delete;
    subscription& operator=(const subscription&) = delete;
    ~subscription() { reset(); }

    /** Unsubscribes now; the subscription becomes empty. */
    void reset() noexcept
    {
        if (auto cancel = std::exchange(cancel_, nullptr)) cancel();
    }
    explicit operator bool() const noexcept { return static_cast<bool>(cancel_); }

private:
    std::function<void()> cancel_;
};

} // namespace syncvault

#endif
