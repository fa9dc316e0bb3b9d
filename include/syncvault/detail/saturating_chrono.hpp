#ifndef SYNCVAULT_DETAIL_SATURATING_CHRONO_HPP
#define SYNCVAULT_DETAIL_SATURATING_CHRONO_HPP

/**
 * @file
 * Duration conversions and time-point arithmetic that clamp instead of overflowing.
 *
 * A user may configure "no limit" as `std::chrono::milliseconds::max()`. Plain `<chrono>` then
 * overflows (signed overflow: undefined behaviour, in practice a time point in the past) as
 * soon as the value meets a finer clock (`steady_clock` counts nanoseconds) or is added to
 * `now()`: every timeout fires at once. These helpers saturate at the target type's range.
 */

#include <chrono>
#include <cstdint>
#include <limits>
#include <ratio>
#include <type_traits>

namespace syncvault::detail {

/** `d` as `To`, truncated toward zero like `duration_cast`, clamped to `To`'s range. Integral,
 *  signed representations; one of the two periods must divide the other (every standard one). */
template <class To, class Rep, class Period>
constexpr To saturating_duration_cast(std::chrono::duration<Rep, Period> d) noexcept
{
    using to_rep = typename To::rep;
    static_assert(std::is_integral_v<Rep> && std::is_signed_v<Rep> && std::is_integral_v<to_rep> &&
                      std::is_signed_v<to_rep>,
                  "saturating_duration_cast: signed integral representations only");
    using ratio = std::ratio_divide<Period, typename To::period>;  // one unit of `d` in `To` units
    static_assert(ratio::num == 1 || ratio::den == 1, "saturating_duration_cast: incommensurable periods");
    constexpr std::intmax_t hi = std::numeric_limits<to_rep>::max();
    constexpr std::intmax_t lo = std::numeric_limits<to_rep>::min();
    const std::intmax_t count = d.count();
    std::intmax_t out = 0;
    if constexpr (ratio::den == 1) {  // to a finer or equal unit: multiply, unless it overflows
        constexpr std::intmax_t factor = ratio::num;
        if (count > hi / factor) return To::max();
        if (count < lo / factor) return To::min();
        out = count * factor;
    } else {  // to a coarser unit: divide (never overflows), then fit the representation
        out = count / static_cast<std::intmax_t>(ratio::den);
        if (out > hi) return To::max();
        if (out < lo) return To::min();
    }
    return To{static_cast<to_rep>(out)};
}

/** `t + d`, clamped to the time point's range (`time_point::max()` means "never"). A `d`
 *  beyond the range of the time point's duration counts as that duration's max (or min). */
template <class Clock, class Duration, class Rep, class Period>
constexpr std::chrono::time_point<Clock, Duration> saturating_add(std::chrono::time_point<Clock, Duration> t,
                                                                  std::chrono::duration<Rep, Period> d) noexcept
{
    using time_point = std::chrono::time_point<Clock, Duration>;
    const auto dd = saturating_duration_cast<Duration>(d);
    const auto since = t.time_since_epoch();
    if (dd.count() > 0 && since > Duration::max() - dd) return time_point::max();
    if (dd.count() < 0 && since < Duration::min() - dd) return time_point::min();
    return t + dd;
}

/** `d` doubled, or `cap` when that would pass it (no overflow on the way). */
template <class Rep, class Period>
constexpr std::chrono::duration<Rep, Period> doubled_up_to(std::chrono::duration<Rep, Period> d,
                                                           std::chrono::duration<Rep, Period> cap) noexcept
{
    return d > cap / 2 ? cap : d * 2;
}

}  // namespace syncvault::detail

#endif
