#ifndef SYNCVAULT_SEND_RESULT_HPP
#define SYNCVAULT_SEND_RESULT_HPP

/**
 * @file
 * `send_result`, what a request call returns, and `next_wake`, what `poll()` returns. Both are
 * also reachable through `<syncvault/basic_vault.hpp>` (SPEC section 8).
 */

#include <syncvault/action.hpp>

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

namespace syncvault {

/** When `poll()` wants to be called again: a time point of the vault's Clock, or nothing. */
using next_wake = std::optional<std::chrono::system_clock::time_point>;

/** What a request call returns: sent (with the response), queued, or an error. */
class send_result {
public:
    /** Sent: a response came back (success or permanent failure). */
    static send_result sent(http_response r, std::string action_id = {})
    {
        send_result s;
        s.response_ = std::move(r);
        s.action_id_ = std::move(action_id);
        return s;
    }
    /** Queued (or already queued under the same idempotency key). */
    static send_result queued(std::string action_id)
    {
        send_result s;
        s.queued_ = true;
        s.action_id_ = std::move(action_id);
        return s;
    }
    static send_result failed(std::error_code e, std::string action_id = {})
    {
        send_result s;
        s.error_ = e;
        s.action_id_ = std::move(action_id);
        return s;
    }

    bool is_queued() const noexcept { return queued_; }
    bool is_sent() const noexcept { return response_.has_value(); }
    /** The response, when sent; else null. */
    const http_response* response() const noexcept { return response_ ? &*response_ : nullptr; }
    /**
     * The action's id whenever an action was made (empty for GET/HEAD sent directly). On a
     * temporary (`v.post(...).action_id()`) it is a `std::string`, so it cannot dangle.
     */
    std::string_view action_id() const& noexcept { return action_id_; }
    std::string action_id() && noexcept { return std::move(action_id_); }
    /** Why it was neither sent nor queued. */
    std::error_code error() const noexcept { return error_; }

private:
    send_result() = default;
    bool queued_ = false;
    std::optional<http_response> response_;
    std::string action_id_;
    std::error_code error_;
};

} // namespace syncvault

#endif
