#ifndef SYNCVAULT_CONCEPTS_CONNECTIVITY_HPP
#define SYNCVAULT_CONCEPTS_CONNECTIVITY_HPP

/**
 * @file
 * `syncvault::connectivity`: is the network there?
 *
 * ## Minimal complete definition
 * | expression      | type                  | meaning |
 * |---|---|---|
 * | `c.is_online()` | convertible to `bool` | whether sending is worth trying now |
 *
 * ## Laws
 * - `is_online()` may be called from any thread and must not block for long.
 * - Offline makes the vault queue mutating requests and fail GET/HEAD with `errc::offline`.
 *
 * ## Optional hooks (detected, not demanded)
 * - `c.set_change_handler(std::function<void(bool online)>)`: the vault installs a handler at
 *   construction (and an empty one in its destructor); call it on every change, from any thread,
 *   without holding your own locks. A change to online wakes `background_sync` at once.
 * - `c.tick(now)` returning `std::optional<std::chrono::system_clock::time_point>`: called from
 *   `poll()`; probe if a probe is due, and say when the next one is (nothing: no schedule).
 * - `c.report(bool reachable)`: the vault reports each transport outcome: `true` when a server
 *   answered, `false` on a network-class failure.
 *
 * ## Models
 * `polling_connectivity` (`<syncvault/connectivity/polling_connectivity.hpp>`),
 * `manual_connectivity` (`<syncvault/connectivity/manual_connectivity.hpp>`, `set_online(bool)`).
 *
 * @code
 * struct os_connectivity { bool is_online() const { return my_os_reports_a_route(); } };
 * static_assert(syncvault::connectivity<os_connectivity>);
 * @endcode
 */

#include <chrono>
#include <concepts>
#include <functional>
#include <optional>

namespace syncvault {

/** `c.is_online()` converts to `bool`. */
template <class C>
concept connectivity_tells_online = requires(C& c) {
    { c.is_online() } -> std::convertible_to<bool>;
};

template <class C>
concept connectivity = std::movable<C> && connectivity_tells_online<C>;

/** Optional hook: notifies changes. */
template <class C>
concept notifying_connectivity = requires(C& c, std::function<void(bool)> fn) {
    c.set_change_handler(std::move(fn));
};

/** Optional hook: probes from `poll()`. */
template <class C>
concept probing_connectivity = requires(C& c, std::chrono::system_clock::time_point now) {
    { c.tick(now) } -> std::same_as<std::optional<std::chrono::system_clock::time_point>>;
};

/** Optional hook: learns from transport outcomes. */
template <class C>
concept reported_connectivity = requires(C& c, bool reachable) { c.report(reachable); };

} // namespace syncvault

#endif
