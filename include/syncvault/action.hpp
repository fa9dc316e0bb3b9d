#ifndef SYNCVAULT_ACTION_HPP
#define SYNCVAULT_ACTION_HPP

/**
 * @file
 * The vocabulary types every policy sees: HTTP requests and responses, and `sync_action`, one
 * queued request as the storage keeps it. Only standard types appear here (plus the `result`
 * alias), so a user writes a policy without learning Boost.
 */

#include <syncvault/error.hpp>

#include <boost/system/result.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace syncvault {

/** A value or an error; errors convert to and from `std::error_code`. */
template <class T>
using result = boost::system::result<T>;

/** One HTTP header field. Names compare case-insensitively (see `header_name_equals`). */
struct header {
    std::string name, value;
    friend bool operator==(const header&, const header&) = default;
};

enum class http_method { get, head, post, put, patch, delete_ };

/** The method's name on the wire ("GET", "DELETE"...). */
constexpr std::string_view to_string(http_method m) noexcept
{
    switch (m) {
    case http_method::get: return "GET";
    case http_method::head: return "HEAD";
    case http_method::post: return "POST";
    case http_method::put: return "PUT";
    case http_method::patch: return "PATCH";
    case http_method::delete_: return "DELETE";
    }
    return "GET";
}

/** Parses a method name as `to_string` writes it; nothing for anything else. */
constexpr std::optional<http_method> method_from_string(std::string_view s) noexcept
{
    for (auto m : {http_method::get, http_method::head, http_method::post, http_method::put,
                   http_method::patch, http_method::delete_})
        if (to_string(m) == s) return m;
    return std::nullopt;
}

/** What a transport sends: `url` is absolute, `headers` final (idempotency key included). */
struct http_request {
    http_method method = http_method::get;
    std::string url;
    std::vector<header> headers;
    std::string body;
};

/** What a transport received. Any status counts as a response; only no answer is an error. */
struct http_response {
    int status = 0;
    std::vector<header> headers;
    std::string body;
};

/** A request body that is not JSON: bytes are kept intact, `content_type` is sent as is. */
struct raw_body {
    std::string bytes;
    std::string content_type = "application/octet-stream";
};

/** ASCII case-insensitive comparison, as HTTP field names compare. */
constexpr bool header_name_equals(std::string_view a, std::string_view b) noexcept
{
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
        auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? char(c - 'A' + 'a') : c; };
        if (lower(a[i]) != lower(b[i])) return false;
    }
    return true;
}

/** The value of the first header named `name`, if any. */
inline std::optional<std::string_view> find_header(const std::vector<header>& headers,
                                                   std::string_view name) noexcept
{
    for (const auto& h : headers)
        if (header_name_equals(h.name, name)) return std::string_view{h.value};
    return std::nullopt;
}

/** Where an action stands; storages keep both kinds (see concepts/storage.hpp). */
enum class action_state { pending, dead };

/**
 * One mutating request, as queued and as stored. The vault fills every field; a storage keeps
 * them all and gives them back unchanged.
 */
struct sync_action {
    std::string id;               ///< UUIDv4, unique per action
    http_method method = http_method::post;
    std::string path;             ///< relative to `vault_config::base_url`, validated
    std::string body;             ///< serialized JSON, raw bytes, or empty
    std::vector<header> headers;  ///< sensitive ones never stored (SPEC 3.16); Content-Type kept
    std::string idempotency_key;
    int attempts = 0;             ///< attempts started so far (persisted before each one)
    std::uint64_t sequence = 0;   ///< FIFO position: increasing, reassigned by `requeue`
    action_state state = action_state::pending;
    std::chrono::system_clock::time_point created_at{};       ///< when first queued
    std::chrono::system_clock::time_point next_attempt_at{};  ///< not before this
    int last_status = 0;          ///< HTTP status of the last attempt, 0 if none or no response
    int last_error = 0;           ///< `errc` value of the last failure, 0 if none
    // Release 0.2 (SPEC 9). Storages keep these like every other field.
    std::string lane;             ///< ordering lane (SPEC 9.2); empty: the default lane
    std::string coalesce_key;     ///< later requests with this key may merge into it (SPEC 9.4)
    std::vector<std::string> after;  ///< ids of actions that must succeed first (SPEC 9.4)
    /// Attempts that got an HTTP answer. Fewer than `attempts` (once the current one settles)
    /// means some attempt's outcome is unknown: a timeout, a dropped connection or a crash
    /// (SPEC 9.3's rule for 409).
    int answered = 0;

    friend bool operator==(const sync_action&, const sync_action&) = default;
};

/** A problem a policy found and recovered from, such as corrupt journal records set aside. */
struct diagnostic {
    std::error_code error;
    std::string message;
};

} // namespace syncvault

#endif
