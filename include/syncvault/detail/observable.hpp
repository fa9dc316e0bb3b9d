#ifndef SYNCVAULT_DETAIL_OBSERVABLE_HPP
#define SYNCVAULT_DETAIL_OBSERVABLE_HPP

// What the UI bindings need of a vault: its observation members. Any `basic_vault` has them;
// naming only these keeps the bindings usable with a user's wrapper around a vault.

#include <syncvault/events.hpp>

#include <concepts>
#include <functional>
#include <string_view>

namespace syncvault::detail {

template <class V>
concept observable_vault = requires(V& v, std::string_view id, std::function<void(sync_status)> on_status,
                                    std::function<void(const sync_event&)> on_event) {
    { v.status() } -> std::same_as<sync_status>;
    { v.on_status(on_status) } -> std::same_as<subscription>;
    { v.on_event(on_event) } -> std::same_as<subscription>;
    { v.events_for(id, on_event) } -> std::same_as<subscription>;
    { v.events_for_key(id, on_event) } -> std::same_as<subscription>;
};

} // namespace syncvault::detail

#endif
