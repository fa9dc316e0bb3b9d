// Fuzzes path validation: whatever check_path accepts must, once joined onto base_url, stay on
// base_url's host and under its path, with no ".." segment after percent-decoding.

#include <syncvault/detail/request_check.hpp>

#include <boost/url/parse.hpp>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    const std::string_view path(reinterpret_cast<const char*>(data), size);
    if (syncvault::detail::check_path(path, 4096)) return 0;  // rejected: fine

    const std::string base = "https://api.example.com/v1";
    const auto url = syncvault::detail::join_url(base, path);
    auto parsed = boost::urls::parse_uri_reference(url);
    if (!parsed) std::abort();  // accepted paths must make a valid URL
    if (parsed->host() != "api.example.com" || parsed->scheme() != "https") std::abort();
    if (!parsed->encoded_path().starts_with("/v1")) std::abort();
    for (auto segment : parsed->segments())
        if (segment == "..") std::abort();
    return 0;
}
