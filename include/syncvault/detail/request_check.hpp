#ifndef SYNCVAULT_DETAIL_REQUEST_CHECK_HPP
#define SYNCVAULT_DETAIL_REQUEST_CHECK_HPP

// Validation of everything a caller hands the vault, and joining paths onto base_url. Every
// check returns the errc naming its culprit (invalid_header, invalid_path, invalid_key,
// invalid_lane, invalid_coalesce_key: each compares equal to errc::invalid_request) and changes
// nothing. The two that parse URLs with Boost.URL live in impl/request_check.ipp (compiled once
// with SYNCVAULT_SEPARATE_COMPILATION, see detail/compile_mode.hpp).

#include <syncvault/action.hpp>
#include <syncvault/error.hpp>
#include <syncvault/detail/compile_mode.hpp>

#include <cstddef>
#include <string>
#include <string_view>
#include <system_error>

namespace syncvault::detail {

/** base_url without a trailing slash; throws std::invalid_argument naming the field. */
SYNCVAULT_DECL std::string checked_base_url(std::string_view base);

/** RFC 9110 token characters, the only ones allowed in a field name. */
constexpr bool is_tchar(char c) noexcept
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
    return std::string_view{"!#$%&'*+-.^_`|~"}.find(c) != std::string_view::npos;
}

inline std::error_code check_header(const header& h) noexcept
{
    if (h.name.empty()) return errc::invalid_header;
    for (char c : h.name)
        if (!is_tchar(c)) return errc::invalid_header;
    for (char c : h.value) {
        auto u = static_cast<unsigned char>(c);
        if ((u < 0x20 && c != '\t') || u == 0x7f) return errc::invalid_header;  // CR, LF, NUL...
    }
    return {};
}

/** An idempotency key: 1..max_bytes visible ASCII characters. */
inline std::error_code check_key(std::string_view key, std::size_t max_bytes) noexcept
{
    if (key.empty() || key.size() > max_bytes) return errc::invalid_key;
    for (char c : key)
        if (c < 0x21 || c > 0x7e) return errc::invalid_key;
    return {};
}

/** A lane name: empty (the default lane) or up to max_bytes bytes without control characters. */
inline std::error_code check_lane(std::string_view lane, std::size_t max_bytes) noexcept
{
    if (lane.size() > max_bytes) return errc::invalid_lane;
    for (char c : lane) {
        auto u = static_cast<unsigned char>(c);
        if (u < 0x20 || u == 0x7f) return errc::invalid_lane;
    }
    return {};
}

/** A coalesce key (SPEC 9.4): empty (none) or, like a lane, bounded and free of control characters. */
inline std::error_code check_coalesce_key(std::string_view key, std::size_t max_bytes) noexcept
{
    if (check_lane(key, max_bytes)) return errc::invalid_coalesce_key;
    return {};
}

/**
 * A path relative to base_url. Rejected: a scheme, a leading `//` (another host), a `..` segment
 * in any encoding (`%2e%2e`, `%252e%252e`, `..%2f`), backslashes, control characters, spaces, a
 * fragment, invalid percent-encoding.
 */
SYNCVAULT_DECL std::error_code check_path(std::string_view path, std::size_t max_bytes);

/** `base` (no trailing slash) + "/" + `path` (checked). */
inline std::string join_url(std::string_view base, std::string_view path)
{
    std::string url(base);
    if (path.empty()) return url;
    if (path.front() != '/' && path.front() != '?') url += '/';
    url += path;
    return url;
}

} // namespace syncvault::detail

#ifndef SYNCVAULT_SEPARATE_COMPILATION
#include <syncvault/impl/request_check.ipp>
#endif

#endif
