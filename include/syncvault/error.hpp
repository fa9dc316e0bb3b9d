#ifndef SYNCVAULT_ERROR_HPP
#define SYNCVAULT_ERROR_HPP

/**
 * @file
 * `syncvault::errc`, the library's error enum, registered with `std::error_code` (and, through
 * Boost.System's std interop, usable wherever a `boost::system::error_code` is expected, such as
 * inside `syncvault::result<T>`).
 */

#include <string>
#include <system_error>

namespace syncvault {

/** Every error the library reports. Values are stable: they are persisted in dead letters. */
enum class errc {
    offline = 1,           ///< no network, and the request is not one that queues (GET/HEAD)
    invalid_request,       ///< bad path, header, key or body; nothing was queued
    payload_too_large,     ///< body over `vault_config::max_body_bytes`
    queue_full,            ///< `vault_config::max_pending` actions already wait
    storage_failed,        ///< the storage could not write or read (disk full, I/O error)
    storage_locked,        ///< another vault or process holds the store
    storage_corrupt,       ///< the store held damaged records (set aside, reported)
    timeout,               ///< connect or receive timeout
    connection_failed,     ///< refused, reset, DNS failure, TLS handshake failure...
    max_retries_exceeded,  ///< the action used `max_retries` retries and is dead-lettered
    response_too_large,    ///< a server sent more than the transport accepts
    key_expired,           ///< older than `vault_config::idempotency_key_lifetime`
    cancelled,             ///< the transfer was aborted (shutdown)
    invalid_config,        ///< a `vault_config` field is unusable
    dependency_failed,     ///< an action it waited for (`after`, `response_ref`) failed or was cancelled
    evicted,               ///< removed to make room (`overflow_policy::drop_oldest`)
    tls_failed,            ///< TLS handshake or peer verification failed (retryable)
};

namespace detail {
class errc_category final : public std::error_category {
public:
    const char* name() const noexcept override { return "syncvault"; }
    std::string message(int value) const override
    {
        switch (static_cast<errc>(value)) {
        case errc::offline: return "offline";
        case errc::invalid_request: return "invalid request";
        case errc::payload_too_large: return "payload too large";
        case errc::queue_full: return "queue full";
        case errc::storage_failed: return "storage failed";
        case errc::storage_locked: return "storage locked by another vault or process";
        case errc::storage_corrupt: return "storage held corrupt records";
        case errc::timeout: return "timed out";
        case errc::connection_failed: return "connection failed";
        case errc::max_retries_exceeded: return "maximum retries exceeded";
        case errc::response_too_large: return "response too large";
        case errc::key_expired: return "idempotency key lifetime exceeded";
        case errc::cancelled: return "cancelled";
        case errc::invalid_config: return "invalid configuration";
        case errc::dependency_failed: return "an action it depends on failed";
        case errc::evicted: return "evicted to make room in the queue";
        case errc::tls_failed: return "TLS handshake or certificate verification failed";
        }
        return "unknown syncvault error";
    }
};
} // namespace detail

/** The category of `syncvault::errc`; its name is "syncvault". */
inline const std::error_category& error_category() noexcept
{
    static const detail::errc_category category;
    return category;
}

inline std::error_code make_error_code(errc e) noexcept
{
    return {static_cast<int>(e), error_category()};
}

} // namespace syncvault

template <>
struct std::is_error_code_enum<syncvault::errc> : std::true_type {};

#endif
