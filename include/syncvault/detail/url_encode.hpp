#ifndef SYNCVAULT_DETAIL_URL_ENCODE_HPP
#define SYNCVAULT_DETAIL_URL_ENCODE_HPP

// Percent-encoding for text placed in a path (response_ref placeholders). Boost.URL is seen only
// by impl/url_encode.ipp (compiled once with SYNCVAULT_SEPARATE_COMPILATION, see
// detail/compile_mode.hpp).

#include <syncvault/detail/compile_mode.hpp>

#include <string>
#include <string_view>

namespace syncvault::detail {

/** `text` with every character but RFC 3986's unreserved ones percent-encoded. */
SYNCVAULT_DECL std::string percent_encode_unreserved(std::string_view text);

}  // namespace syncvault::detail

#ifndef SYNCVAULT_SEPARATE_COMPILATION
#include <syncvault/impl/url_encode.ipp>
#endif

#endif
