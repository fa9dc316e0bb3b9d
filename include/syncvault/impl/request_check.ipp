#ifndef SYNCVAULT_IMPL_REQUEST_CHECK_IPP
#define SYNCVAULT_IMPL_REQUEST_CHECK_IPP

// The Boost.URL half of detail/request_check.hpp: inline there, or compiled once by
// <syncvault/src.hpp>.

#include <syncvault/detail/request_check.hpp>

#include <boost/url/parse.hpp>
#include <boost/url/pct_string_view.hpp>
#include <boost/url/url.hpp>

#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>

namespace syncvault::detail {

/** base_url without a trailing slash; throws std::invalid_argument naming the field. */
SYNCVAULT_DECL std::string checked_base_url(std::string_view base)
{
    auto fail = [&](std::string_view why) {
        throw std::invalid_argument("vault_config.base_url: " + std::string(why) + " (got \"" + std::string(base) +
                                    "\")");
    };
    if (base.empty()) fail("is required");
    auto parsed = boost::urls::parse_absolute_uri(base);
    if (!parsed) fail("is not an absolute URL");
    if (parsed->scheme_id() != boost::urls::scheme::http && parsed->scheme_id() != boost::urls::scheme::https)
        fail("must be http or https");
    if (parsed->encoded_host().empty()) fail("has no host");
    if (parsed->has_query()) fail("must not have a query");
    std::string out(base);
    while (!out.empty() && out.back() == '/') out.pop_back();
    return out;
}

/**
 * A path relative to base_url. Rejected: a scheme, a leading `//` (another host), a `..` segment
 * in any encoding (`%2e%2e`, `%252e%252e`, `..%2f`), backslashes, control characters, spaces, a
 * fragment, invalid percent-encoding.
 */
SYNCVAULT_DECL std::error_code check_path(std::string_view path, std::size_t max_bytes)
{
    if (path.size() > max_bytes) return errc::invalid_path;
    for (char c : path) {
        auto u = static_cast<unsigned char>(c);
        if (u <= 0x20 || u == 0x7f || c == '\\') return errc::invalid_path;
    }
    if (path.starts_with("//")) return errc::invalid_path;
    if (boost::urls::parse_uri(path)) return errc::invalid_path;  // has a scheme
    auto ref = boost::urls::parse_relative_ref(path);
    if (!ref || ref->has_authority() || ref->has_fragment()) return errc::invalid_path;

    // Decode until stable, so double-encoded dots are seen too; then look at every segment.
    // After the first round a '%' may be literal (`/50%25off`): decode the escapes there are and
    // keep the rest. Deeper than four layers of encoding is refused rather than guessed at.
    auto decode_once = [](std::string_view in) {
        auto hex = [](char c) {
            return c >= '0' && c <= '9'   ? c - '0'
                   : c >= 'a' && c <= 'f' ? c - 'a' + 10
                   : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                          : -1;
        };
        std::string out;
        out.reserve(in.size());
        for (std::size_t i = 0; i < in.size(); ++i) {
            if (in[i] == '%' && i + 2 < in.size() && hex(in[i + 1]) >= 0 && hex(in[i + 2]) >= 0) {
                out += static_cast<char>(hex(in[i + 1]) * 16 + hex(in[i + 2]));
                i += 2;
            } else {
                out += in[i];
            }
        }
        return out;
    };
    std::string decoded(ref->encoded_path());
    for (int round = 0;; ++round) {
        auto next = decode_once(decoded);
        if (next == decoded) break;
        if (round == 4) return errc::invalid_path;
        decoded = std::move(next);
    }
    for (auto& c : decoded)
        if (c == '\\') c = '/';
    for (std::size_t start = 0; start <= decoded.size();) {
        auto end = decoded.find('/', start);
        if (end == std::string::npos) end = decoded.size();
        std::string_view segment(decoded.data() + start, end - start);
        if (segment == "..") return errc::invalid_path;
        for (char c : segment)
            if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) return errc::invalid_path;
        start = end + 1;
    }
    return {};
}

}  // namespace syncvault::detail

#endif
