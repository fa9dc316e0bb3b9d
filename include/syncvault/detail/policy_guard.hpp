#ifndef SYNCVAULT_DETAIL_POLICY_GUARD_HPP
#define SYNCVAULT_DETAIL_POLICY_GUARD_HPP

// The exception boundary between the vault and its policies (SPEC 9.1). A policy is a user's
// type and may throw anywhere; each call here turns an exception into the failure it stands
// for, so the vault's state machine only ever sees values:
//   storage  save/remove/flush/load_body throw -> errc::storage_failed
//   transport send throws            -> errc::connection_failed (a network-class failure)
//   connectivity is_online throws    -> offline; tick throws -> no probe scheduled; report: ignored
//   clock now throws                 -> the last good reading
// The retry policy's guards are in retry_decision.hpp. Locking is the caller's business.

#include <syncvault/action.hpp>
#include <syncvault/concepts/clock.hpp>
#include <syncvault/concepts/connectivity.hpp>
#include <syncvault/concepts/storage.hpp>
#include <syncvault/concepts/transport.hpp>

#include <atomic>
#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>

namespace syncvault::detail {

template <class Storage>
std::error_code save_guarded(Storage& s, const sync_action& a) noexcept
{
    try {
        return s.save(a);
    } catch (...) {
        return make_error_code(errc::storage_failed);
    }
}

/** Records an attempt's fields: with the model's `save_progress` hook if it has one. */
template <class Storage>
std::error_code save_progress_guarded(Storage& s, const sync_action& a) noexcept
{
    try {
        if constexpr (progress_storage<Storage>) return s.save_progress(a);
        else return s.save(a);
    } catch (...) {
        return make_error_code(errc::storage_failed);
    }
}

template <class Storage>
std::error_code remove_guarded(Storage& s, std::string_view id) noexcept
{
    try {
        return s.remove(id);
    } catch (...) {
        return make_error_code(errc::storage_failed);
    }
}

/** Reads a stored body back (the model has the `load_body` hook). */
template <class Storage>
result<std::string> load_body_guarded(Storage& s, std::string_view id) noexcept
{
    try {
        return s.load_body(id);
    } catch (...) {
        return make_error_code(errc::storage_failed);
    }
}

/** Syncs lazy writes where the model can; nothing to do otherwise. */
template <class Storage>
std::error_code flush_guarded(Storage& s) noexcept
{
    if constexpr (flushable_storage<Storage>) {
        try {
            return s.flush();
        } catch (...) {
            return make_error_code(errc::storage_failed);
        }
    } else {
        (void)s;
        return {};
    }
}

template <class Transport>
result<http_response> send_guarded(Transport& t, const http_request& r) noexcept
{
    try {
        return t.send(r);
    } catch (...) {
        return make_error_code(errc::connection_failed);
    }
}

template <class Connectivity>
bool online_guarded(Connectivity& c) noexcept
{
    try {
        return static_cast<bool>(c.is_online());
    } catch (...) {
        return false;
    }
}

/** The connectivity's probe (optional hook), if it has one; when it next wants a tick. */
template <class Connectivity>
std::optional<std::chrono::system_clock::time_point> tick_guarded(Connectivity& c,
                                                                  std::chrono::system_clock::time_point now) noexcept
{
    if constexpr (probing_connectivity<Connectivity>) {
        try {
            return c.tick(now);
        } catch (...) {
            return std::nullopt;
        }
    } else {
        (void)c;
        (void)now;
        return std::nullopt;
    }
}

/** Tells the connectivity (optional hook) what a transfer learned. */
template <class Connectivity>
void report_guarded(Connectivity& c, bool reachable) noexcept
{
    if constexpr (reported_connectivity<Connectivity>) {
        try {
            c.report(reachable);
        } catch (...) {
        }
    } else {
        (void)c;
        (void)reachable;
    }
}

/** A clock reading; a clock that throws reads as its last good value. */
template <class Clock>
class guarded_clock {
public:
    using time_point = std::chrono::system_clock::time_point;
    std::chrono::system_clock::time_point now(Clock& c) noexcept
    {
        try {
            const auto t = c.now();
            last_.store(t.time_since_epoch().count(), std::memory_order_relaxed);
            return t;
        } catch (...) {
            return time_point(time_point::duration(last_.load(std::memory_order_relaxed)));
        }
    }

private:
    std::atomic<time_point::rep> last_{0};
};

} // namespace syncvault::detail

#endif
