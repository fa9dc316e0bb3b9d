#ifndef SYNCVAULT_DETAIL_RETRY_DECISION_HPP
#define SYNCVAULT_DETAIL_RETRY_DECISION_HPP

// What becomes of an action after one attempt: a pure function of (action, outcome, policy,
// now). The policy is a user's type and may throw; each of its calls has a fallback that never
// loses the action (an outcome it cannot classify is retried; a delay it cannot compute is the
// cap), so no exception leaves this function but an allocation failure.

#include <syncvault/action.hpp>
#include <syncvault/concepts/retry_policy.hpp>
#include <syncvault/detail/retry_after.hpp>

#include <algorithm>
#include <chrono>
#include <optional>
#include <system_error>

namespace syncvault::detail {

/** A policy's cap, or 30 s when it throws or says something negative. */
template <class RetryPolicy>
std::chrono::milliseconds policy_cap(RetryPolicy& policy) noexcept
{
    constexpr std::chrono::milliseconds fallback{30'000};
    try {
        const auto cap = std::chrono::milliseconds(policy.max_delay());
        return cap.count() >= 0 ? cap : fallback;
    } catch (...) {
        return fallback;
    }
}

/** The policy's verdict on an outcome; a policy that throws gets the outcome retried. */
template <class RetryPolicy>
outcome_kind classify_guarded(RetryPolicy& policy, const result<http_response>& outcome) noexcept
{
    try {
        return policy.classify(outcome);
    } catch (...) {
        return outcome_kind::retry;
    }
}

/** Retry-After on 429/503 wins over the policy's backoff; both capped by the policy's cap. */
template <class RetryPolicy>
std::chrono::milliseconds retry_delay(RetryPolicy& policy, int retry, const http_response* response,
                                      std::chrono::system_clock::time_point now) noexcept
{
    const auto cap = policy_cap(policy);
    if (response && (response->status == 429 || response->status == 503))
        if (auto value = find_header(response->headers, "Retry-After"))
            if (auto asked = parse_retry_after(*value, now)) return std::min(*asked, cap);
    try {
        return std::clamp(policy.delay(retry), std::chrono::milliseconds{0}, cap);
    } catch (...) {
        return cap;
    }
}

enum class verdict {
    success,
    retry,
    dead,
    unauthorized,  ///< 401: not an attempt that counts; refresh credentials or pause (SPEC 9.3)
    dropped,       ///< `on_rejected` chose `rejection::drop`
};

struct attempt_decision {
    verdict what = verdict::retry;
    std::chrono::system_clock::time_point next_attempt_at{};  ///< when `what == retry`
    std::error_code error;  ///< why it is dead, or the transport's error on a retry
};

/**
 * Before this attempt's answer is counted: did an earlier attempt end without one (a timeout, a
 * dropped connection, a crash)? Then its request may still be in progress at a server that
 * honours idempotency keys, and a 409 means "still processing", not "conflict".
 */
inline bool some_outcome_unknown(const sync_action& a) noexcept { return a.answered < a.attempts - 1; }

/** Another attempt after the policy's wait, unless the retries are spent. */
template <class RetryPolicy>
attempt_decision retry_or_give_up(const sync_action& a, RetryPolicy& policy, std::chrono::system_clock::time_point now,
                                  int max_retries, const http_response* response = nullptr,
                                  std::error_code error = {}) noexcept
{
    if (a.attempts > max_retries) return {verdict::dead, {}, make_error_code(errc::max_retries_exceeded)};
    return {verdict::retry, now + retry_delay(policy, a.attempts - 1, response, now), error};
}

/**
 * The decision after attempt number `a.attempts` of `a` (already counted) ended with `outcome`
 * (`kind` is the policy's classification of it). `max_retries` retries follow the first attempt.
 */
template <class RetryPolicy>
attempt_decision decide(const sync_action& a, outcome_kind kind, const result<http_response>& outcome,
                        RetryPolicy& policy, std::chrono::system_clock::time_point now, int max_retries) noexcept
{
    const http_response* response = outcome ? &*outcome : nullptr;
    const std::error_code error = outcome ? std::error_code{} : std::error_code(outcome.error());
    // The vault's own rules come before the policy's table (SPEC 9.3).
    if (response && response->status == 401) return {verdict::unauthorized, {}, {}};
    if (response && response->status == 409 && some_outcome_unknown(a)) kind = outcome_kind::retry;
    if (kind == outcome_kind::success) return {verdict::success, {}, {}};
    if (kind == outcome_kind::permanent) return {verdict::dead, {}, error};
    return retry_or_give_up(a, policy, now, max_retries, response, error);
}

/** An `errc` value to persist as `last_error` (any other category is a connection failure). */
inline int persisted_error(std::error_code e) noexcept
{
    if (!e) return 0;
    return e.category() == error_category() ? e.value() : int(errc::connection_failed);
}

} // namespace syncvault::detail

#endif
