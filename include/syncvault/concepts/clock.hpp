#ifndef SYNCVAULT_CONCEPTS_CLOCK_HPP
#define SYNCVAULT_CONCEPTS_CLOCK_HPP

/**
 * @file
 * `syncvault::clock`: where the vault reads the time.
 *
 * ## Minimal complete definition
 * | expression  | type                                    | meaning |
 * |---|---|---|
 * | `c.now()`   | `std::chrono::system_clock::time_point` | the current wall-clock time |
 *
 * ## Laws
 * - It is a wall clock: persisted next-attempt times and HTTP dates (`Retry-After`) are compared
 *   with it. It may jump; the vault clamps a next-attempt time further away than the retry
 *   policy's maximum delay.
 * - `now()` may be called from any thread.
 *
 * ## Models
 * `std::chrono::system_clock`, `testing::fake_clock` (`<syncvault/testing/fake_clock.hpp>`).
 *
 * @code
 * struct utc_clock { std::chrono::system_clock::time_point now() const { return my_ntp_time(); } };
 * static_assert(syncvault::clock<utc_clock>);
 * @endcode
 */

#include <chrono>
#include <concepts>

namespace syncvault {

/** `c.now()` returns exactly `std::chrono::system_clock::time_point`. */
template <class C>
concept clock_tells_wall_time = requires(C& c) {
    { c.now() } -> std::same_as<std::chrono::system_clock::time_point>;
};

template <class C>
concept clock = std::movable<C> && clock_tells_wall_time<C>;

} // namespace syncvault

#endif
