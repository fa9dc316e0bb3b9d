#ifndef SYNCVAULT_CONCEPTS_RETRY_POLICY_HPP
#define SYNCVAULT_CONCEPTS_RETRY_POLICY_HPP

/**
 * @file
 * `syncvault::retry_policy`: what to retry, and when.
 *
 * ## Minimal complete definition
 * | expression           | type                        | meaning |
 * |---|---|---|
 * | `r.classify(o)`      | `outcome_kind`              | `o` (`const result<http_response>&`) is a success, worth a retry, or permanent |
 * | `r.delay(n)`         | `std::chrono::milliseconds` | wait before retry number `n` (`int`, 0 for the first retry) |
 * | `r.max_delay()`      | convertible to `std::chrono::milliseconds` | the cap: no wait is longer, `Retry-After` included |
 *
 * ## Laws
 * - `0 <= delay(n) <= max_delay()` for every `n`.
 * - The vault, not the policy, counts attempts and stops after `vault_config::max_retries`.
 * - The vault honours `Retry-After` (seconds or HTTP date) on 429 and 503 itself, capped by
 *   `max_delay()`, in place of `delay(n)`.
 * - The vault applies SPEC 9.3's rules before `classify` is consulted, so a policy written for
 *   0.1 needs no new outcome kinds: a 401 is neither a retry nor a dead letter (the vault
 *   refreshes credentials or pauses), and a 409 that follows an attempt whose outcome is unknown
 *   (no answer: timeout, dropped connection, crash) is retried as `outcome_kind::retry`.
 *   Whatever `classify` says of other permanent responses, `vault_config::on_rejected` decides
 *   what becomes of the action.
 * - A policy may throw: an outcome it cannot classify is retried, a delay it cannot compute is
 *   the cap, a cap it cannot tell is 30 s (SPEC 9.1).
 * - Calls come one at a time (under the vault's lock): a model need not be thread-safe.
 *
 * `classify_outcome` below is SPEC's retry table; a model may forward to it.
 *
 * ## Models
 * `jittered_backoff` (`<syncvault/retry/jittered_backoff.hpp>`).
 *
 * @code
 * struct fixed_delay {
 *     syncvault::outcome_kind classify(const syncvault::result<syncvault::http_response>& o) const
 *     { return syncvault::classify_outcome(o); }
 *     std::chrono::milliseconds delay(int) { return std::chrono::seconds{5}; }
 *     std::chrono::milliseconds max_delay() const { return std::chrono::seconds{5}; }
 * };
 * static_assert(syncvault::retry_policy<fixed_delay>);
 * @endcode
 */

#include <syncvault/action.hpp>

#include <chrono>
#include <concepts>

namespace syncvault {

enum class outcome_kind { success, retry, permanent };

/**
 * SPEC's retry table: no response (any transport error), 408, 429 and 5xx are worth a retry;
 * 2xx is success; every other status (1xx, 3xx, other 4xx) is permanent.
 */
constexpr outcome_kind classify_status(int status) noexcept
{
    if (status >= 200 && status <= 299) return outcome_kind::success;
    if (status == 408 || status == 429 || (status >= 500 && status <= 599)) return outcome_kind::retry;
    return outcome_kind::permanent;
}

inline outcome_kind classify_outcome(const result<http_response>& outcome) noexcept
{
    return outcome ? classify_status(outcome->status) : outcome_kind::retry;
}

template <class R>
concept retry_policy_classifies = requires(R& r, const result<http_response>& o) {
    { r.classify(o) } -> std::same_as<outcome_kind>;
};

template <class R>
concept retry_policy_delays = requires(R& r, int retry) {
    { r.delay(retry) } -> std::same_as<std::chrono::milliseconds>;
    { r.max_delay() } -> std::convertible_to<std::chrono::milliseconds>;
};

template <class R>
concept retry_policy = std::movable<R> && retry_policy_classifies<R> && retry_policy_delays<R>;

} // namespace syncvault

#endif
