#ifndef SYNCVAULT_IMPL_URL_ENCODE_IPP
#define SYNCVAULT_IMPL_URL_ENCODE_IPP

// The body of detail/url_encode.hpp: inline there, or compiled once by <syncvault/src.hpp>.

#include <syncvault/detail/url_encode.hpp>

#include <boost/url/encode.hpp>
#include <boost/url/rfc/unreserved_chars.hpp>

#include <string>
#include <string_view>

namespace syncvault::detail {

SYNCVAULT_DECL std::string percent_encode_unreserved(std::string_view text)
{
    return boost::urls::encode(text, boost::urls::unreserved_chars);
}

}  // namespace syncvault::detail

#endif
