#ifndef SYNCVAULT_ERROR_HPP
#define SYNCVAULT_ERROR_HPP

/**
 * @file
 * `syncvault::errc`, the library's error enum, registered with `std::error_code` (and, through
 * Boost.System's std interop, usable wherever a `boost::system::error_code` is expected, such as
 * inside `syncvault::result<T>`).
 */

#include <boost/system/error_code.hpp>

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
    // Bad input, each naming its culprit; every one also compares equal to `invalid_request`
    // (SPEC 9.6): `ec == errc::invalid_request` holds, `ec == errc::invalid_header` tells which.
    invalid_header,        ///< a header name or value (CR, LF, NUL, not a token), or too many/too long
    invalid_path,          ///< a scheme, `//`, a `..` segment in any encoding, control characters...
    invalid_key,           ///< the idempotency key: empty, too long, not visible ASCII
    invalid_coalesce_key,  ///< `request_options::coalesce_key`
    invalid_lane,          ///< `request_options::lane`: too long or control characters
    invalid_body,          ///< not valid UTF-8 JSON, or a `raw_body` with a bad content type
    rejected,              ///< the server refused the request for good (a 4xx, 1xx or 3xx: see the response)
};

} // namespace syncvault

template <>
struct std::is_error_code_enum<syncvault::errc> : std::true_type {};

namespace syncvault {

/** True for the codes that narrow `errc::invalid_request` (which is one of them itself). */
constexpr bool is_invalid_request(errc e) noexcept
{
    return e == errc::invalid_request || (e >= errc::invalid_header && e <= errc::invalid_body);
}

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
        case errc::invalid_header: return "invalid request: bad header";
        case errc::invalid_path: return "invalid request: bad path";
        case errc::invalid_key: return "invalid request: bad idempotency key";
        case errc::invalid_coalesce_key: return "invalid request: bad coalesce key";
        case errc::invalid_lane: return "invalid request: bad lane";
        case errc::invalid_body: return "invalid request: bad body";
        case errc::rejected: return "rejected by the server";
        }
        return "unknown syncvault error";
    }

    // `code == error_condition(errc::X)`: the exact code, or one that narrows it (SPEC 9.6).
    bool equivalent(const std::error_code& code, int condition) const noexcept override;
};

/**
 * `syncvault.storage`: a storage failure that keeps its operating-system cause. The value is
 * the cause's errno, so `ec == std::errc::no_space_on_device` holds for a full disk, while
 * `ec == errc::storage_failed` holds too. Made by `detail::storage_failure`.
 */
class storage_category_impl final : public std::error_category {
public:
    const char* name() const noexcept override { return "syncvault.storage"; }
    std::string message(int value) const override
    {
        return "storage failed: " + std::generic_category().message(value);
    }
    std::error_condition default_error_condition(int value) const noexcept override
    {
        return std::generic_category().default_error_condition(value);
    }
    bool equivalent(int value, const std::error_condition& condition) const noexcept override
    {
        return std::error_condition(value, std::generic_category()) == condition ||
               std::system_category().equivalent(value, condition);
    }
};
} // namespace detail

/** The category of `syncvault::errc`; its name is "syncvault". */
inline const std::error_category& error_category() noexcept
{
    static const detail::errc_category category;
    return category;
}

/** The category of storage failures that keep their system cause (see `detail::storage_failure`). */
inline const std::error_category& storage_category() noexcept
{
    static const detail::storage_category_impl category;
    return category;
}

inline std::error_code make_error_code(errc e) noexcept
{
    return {static_cast<int>(e), error_category()};
}

/** `errc::x` as an `std::error_condition`, for comparisons by meaning (`narrowed == invalid_request`). */
inline std::error_condition make_error_condition(errc e) noexcept
{
    return {static_cast<int>(e), error_category()};
}

/**
 * `ec == errc::x` compares by meaning: true for the code itself, and for the codes that narrow
 * it (`errc::invalid_path == errc::invalid_request`, a `syncvault.storage` code ==
 * `errc::storage_failed`, `errc::evicted == errc::cancelled`). `ec.value()` and
 * `make_error_code(errc::x)` are unchanged, so switches and exact checks still work.
 */
inline bool operator==(const std::error_code& ec, errc e) noexcept
{
    return ec == make_error_condition(e);
}

/** The same for a `boost::system::error_code` (what `result<T>::error()` holds). */
inline bool operator==(const boost::system::error_code& ec, errc e) noexcept
{
    return static_cast<std::error_code>(ec) == e;
}

namespace detail {
inline bool errc_category::equivalent(const std::error_code& code, int condition) const noexcept
{
    const auto wanted = static_cast<errc>(condition);
    if (code.category() == *this) {
        const auto got = static_cast<errc>(code.value());
        if (got == wanted) return true;
        if (wanted == errc::invalid_request) return is_invalid_request(got);
        if (wanted == errc::cancelled) return got == errc::evicted;
        return false;
    }
    return wanted == errc::storage_failed && code.category() == storage_category();
}

/**
 * The error a storage failure is reported as: `cause` kept (as a `syncvault.storage` code) when
 * it is an operating-system error, so both `== std::errc::...` and `== errc::storage_failed`
 * hold; a cause that already means `storage_failed` as it is; anything else (or none) is
 * `errc::storage_failed`.
 */
inline std::error_code storage_failure(std::error_code cause) noexcept
{
    if (cause && (cause.category() == std::generic_category() || cause.category() == std::system_category()))
        return {cause.value(), storage_category()};
    if (cause.category() == storage_category() && cause) return cause;
    return make_error_code(errc::storage_failed);
}
} // namespace detail

} // namespace syncvault

#endif
