#ifndef SYNCVAULT_DETAIL_RECORD_LIMITS_HPP
#define SYNCVAULT_DETAIL_RECORD_LIMITS_HPP

// The values a stored record's numbers may hold. Every decoder (the tree form, the streaming
// reader, file_journal's progress record) asks these, so they accept and refuse alike: a number
// out of range is damage, not a value to convert.

#include <cstdint>

namespace syncvault::detail::record_limits {

/** Milliseconds since the epoch, about year 2255: system_clock counts ns in 64 bits (to 2262). */
inline constexpr std::int64_t max_ms = 9'000'000'000'000;

/** A count (attempts, answered): an int that is not negative. */
constexpr bool count_ok(std::int64_t v) noexcept { return v >= 0 && v <= INT32_MAX; }

/** A status or error is whatever a transport reported (a user's may say -1): any int. */
constexpr bool code_ok(std::int64_t v) noexcept { return v >= INT32_MIN && v <= INT32_MAX; }

/** A time point, in ms since the epoch. */
constexpr bool time_ok(std::int64_t v) noexcept { return v >= -max_ms && v <= max_ms; }

/** The numbers every record holds, as read (the sequence as a signed 64-bit value). */
constexpr bool numbers_ok(std::int64_t attempts, std::int64_t seq, std::int64_t created, std::int64_t next,
                          std::int64_t status, std::int64_t error) noexcept
{
    return count_ok(attempts) && seq >= 0 && time_ok(created) && time_ok(next) && code_ok(status) && code_ok(error);
}

} // namespace syncvault::detail::record_limits

#endif
