#ifndef SYNCVAULT_DETAIL_REQUEST_BUILDER_HPP
#define SYNCVAULT_DETAIL_REQUEST_BUILDER_HPP

// Turning what a caller hands the vault into a checked `sync_action` (or a one-off GET/HEAD),
// and an action into the request a transport sends. Pure functions of their arguments and the
// config: no vault state, no I/O, so a bad input is refused before anything changes.

#include <syncvault/action.hpp>
#include <syncvault/body.hpp>
#include <syncvault/config.hpp>
#include <syncvault/error.hpp>
#include <syncvault/detail/request_check.hpp>
#include <syncvault/detail/response_refs.hpp>
#include <syncvault/detail/uuid.hpp>

#include <boost/json.hpp>

#include <algorithm>
#include <chrono>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace syncvault::detail {

/** `cfg` if every field is usable; else throws `std::invalid_argument` naming the field. */
inline vault_config checked_config(vault_config cfg)
{
    auto fail = [](const char* field, const char* why) {
        throw std::invalid_argument(std::string("vault_config.") + field + ": " + why);
    };
    if (cfg.max_retries < 0) fail("max_retries", "must be >= 0");
    if (cfg.connect_timeout.count() <= 0) fail("connect_timeout", "must be > 0");
    if (cfg.receive_timeout.count() <= 0) fail("receive_timeout", "must be > 0");
    if (cfg.max_pending == 0) fail("max_pending", "must be > 0");
    if (cfg.max_body_bytes == 0) fail("max_body_bytes", "must be > 0");
    if (cfg.max_in_flight == 0) fail("max_in_flight", "must be > 0");
    if (cfg.reconnect_jitter.count() < 0) fail("reconnect_jitter", "must be >= 0");
    if (cfg.idempotency_header.empty() || check_header({cfg.idempotency_header, ""}))
        fail("idempotency_header", "must be a valid header name");
    for (const auto& name : cfg.sensitive_headers)
        if (check_header({name, ""})) fail("sensitive_headers", "holds an invalid header name");
    if (cfg.idempotency_key_lifetime.count() < 0) fail("idempotency_key_lifetime", "must be >= 0");
    if (cfg.max_key_bytes == 0) fail("max_key_bytes", "must be > 0");
    return cfg;
}

struct prepared_body {
    std::string bytes, content_type;
};

/** A body serialized and checked: size limit, Content-Type, valid UTF-8 JSON. */
template <class Body>
result<prepared_body> prepare_body(const Body& body, const vault_config& cfg)
{
    using B = std::remove_cvref_t<Body>;
    // A body type that cannot work stops here with one readable static_assert (SPEC 9.6).
    if constexpr (!check_body<Body>()) {
        return make_error_code(errc::invalid_body);
    } else if constexpr (std::is_same_v<B, std::nullptr_t>) {
        return prepared_body{};
    } else if constexpr (std::is_same_v<B, raw_body>) {
        if (body.bytes.size() > cfg.max_body_bytes) return make_error_code(errc::payload_too_large);
        if (check_header({"Content-Type", body.content_type})) return make_error_code(errc::invalid_body);
        return prepared_body{body.bytes, body.content_type};
    } else {
        std::string text;
        if constexpr (std::is_same_v<B, boost::json::value> || std::is_same_v<B, boost::json::object> ||
                      std::is_same_v<B, boost::json::array>)
            text = boost::json::serialize(body);
        else
            text = boost::json::serialize(syncvault::to_json(body));
        if (text.size() > cfg.max_body_bytes) return make_error_code(errc::payload_too_large);
        // Boost.JSON writes strings' bytes as given; reading our own output back is the simplest
        // complete check that the body is valid UTF-8 JSON a server can parse.
        boost::system::error_code ec;
        (void)boost::json::parse(text, ec);
        if (ec) return make_error_code(errc::invalid_body);
        return prepared_body{std::move(text), "application/json"};
    }
}

/** The caller's headers, checked, split into those stored and the sensitive ones (never stored). */
struct split_request_headers {
    std::vector<header> stored, sensitive;
    std::string key_from_header;  ///< an idempotency-key header the caller set: the vault sends it
};

inline result<split_request_headers> split_headers(const request_options& opts, const vault_config& cfg)
{
    if (opts.headers.size() > cfg.max_headers) return make_error_code(errc::invalid_header);
    split_request_headers out;
    std::size_t bytes = 0;
    for (const auto& h : opts.headers) {
        if (auto e = check_header(h)) return e;
        bytes += h.name.size() + h.value.size();
        if (header_name_equals(h.name, cfg.idempotency_header)) {
            out.key_from_header = h.value;
            continue;
        }
        const bool is_sensitive =
            std::any_of(cfg.sensitive_headers.begin(), cfg.sensitive_headers.end(),
                        [&](const std::string& s) { return header_name_equals(s, h.name); });
        (is_sensitive ? out.sensitive : out.stored).push_back(h);
    }
    if (bytes > cfg.max_header_bytes) return make_error_code(errc::invalid_header);
    return out;
}

/** A new action, checked, with its sensitive headers apart (they serve this process only). */
struct new_action {
    sync_action action;
    std::vector<header> sensitive;
};

template <class Body>
result<new_action> make_action(http_method method, std::string_view path, const Body& body,
                               const request_options& opts, const vault_config& cfg)
{
    if (auto e = check_path(path, cfg.max_path_bytes)) return e;
    auto headers = split_headers(opts, cfg);
    if (!headers) return headers.error();
    auto prepared = prepare_body(body, cfg);
    if (!prepared) return prepared.error();
    new_action n;
    sync_action& a = n.action;
    a.idempotency_key = !opts.idempotency_key.empty()          ? opts.idempotency_key
                        : !headers->key_from_header.empty() ? headers->key_from_header
                                                            : make_uuid_v4();
    if (auto e = check_key(a.idempotency_key, cfg.max_key_bytes)) return e;
    if (auto e = check_lane(opts.lane, cfg.max_key_bytes)) return e;
    a.lane = opts.lane;
    a.headers = std::move(headers->stored);
    if (!prepared->content_type.empty() && !find_header(a.headers, "Content-Type"))
        a.headers.push_back({"Content-Type", prepared->content_type});
    a.id = make_uuid_v4();
    a.method = method;
    a.path = std::string(path);
    a.body = std::move(prepared->bytes);
    n.sensitive = std::move(headers->sensitive);
    if (auto e = check_coalesce_key(opts.coalesce_key, cfg.max_key_bytes)) return e;
    a.coalesce_key = opts.coalesce_key;
    // `after` and the actions its placeholders name (a reference implies `after`), once each.
    auto wait_for = [&](std::string_view id) {
        if (std::find(a.after.begin(), a.after.end(), id) == a.after.end()) a.after.emplace_back(id);
    };
    for (const auto& id : opts.after) {
        if (check_key(id, cfg.max_key_bytes)) return make_error_code(errc::invalid_request);
        wait_for(id);
    }
    for (const auto& id : referenced_ids(a, n.sensitive)) wait_for(id);
    return n;
}

/** The request of one attempt of `a`: stored headers, this process's sensitive ones, the key. */
inline http_request request_for(const sync_action& a, const std::vector<header>& sensitive,
                                std::string_view base_url, const vault_config& cfg)
{
    http_request r{a.method, join_url(base_url, a.path), a.headers, a.body};
    r.headers.insert(r.headers.end(), sensitive.begin(), sensitive.end());
    r.headers.push_back({cfg.idempotency_header, a.idempotency_key});
    return r;
}

/** A GET/HEAD sent directly (not an action): checked like an action's, never stored. */
inline result<http_request> make_read(http_method method, std::string_view path, const request_options& opts,
                                      std::string_view base_url, const vault_config& cfg)
{
    if (auto e = check_path(path, cfg.max_path_bytes)) return e;
    auto headers = split_headers(opts, cfg);
    if (!headers) return headers.error();
    http_request r{method, join_url(base_url, path), std::move(headers->stored), {}};
    r.headers.insert(r.headers.end(), headers->sensitive.begin(), headers->sensitive.end());
    if (!headers->key_from_header.empty()) r.headers.push_back({cfg.idempotency_header, headers->key_from_header});
    return r;
}

} // namespace syncvault::detail

#endif
