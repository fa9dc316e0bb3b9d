#ifndef SYNCVAULT_DETAIL_RETRY_AFTER_HPP
#define SYNCVAULT_DETAIL_RETRY_AFTER_HPP

// Retry-After (RFC 9110 section 10.2.3): delta-seconds or an HTTP-date. The date parser is
// hand-written because the core must not need libcurl (curl_getdate) and std::chrono::parse is
// missing from GCC 12; it accepts the three formats RFC 9110 section 5.6.7 asks recipients to
// accept, in English, independent of the C locale:
//   IMF-fixdate  Sun, 06 Nov 1994 08:49:37 GMT
//   RFC 850      Sunday, 06-Nov-94 08:49:37 GMT
//   asctime      Sun Nov  6 08:49:37 1994

#include <chrono>
#include <cstdint>
#include <optional>
#include <string_view>

namespace syncvault::detail {

inline std::optional<std::chrono::system_clock::time_point> parse_http_date(std::string_view s)
{
    using namespace std::chrono;
    std::size_t pos = 0;
    auto skip_spaces = [&] { while (pos < s.size() && s[pos] == ' ') ++pos; };
    auto take_alpha = [&] {
        auto start = pos;
        while (pos < s.size() && ((s[pos] >= 'A' && s[pos] <= 'Z') || (s[pos] >= 'a' && s[pos] <= 'z'))) ++pos;
        return s.substr(start, pos - start);
    };
    auto take_number = [&](std::size_t min_digits, std::size_t max_digits) -> std::optional<int> {
        auto start = pos;
        int value = 0;
        while (pos < s.size() && pos - start < max_digits && s[pos] >= '0' && s[pos] <= '9')
            value = value * 10 + (s[pos++] - '0');
        if (pos - start < min_digits) return std::nullopt;
        return value;
    };
    auto expect = [&](char c) {
        if (pos < s.size() && s[pos] == c) { ++pos; return true; }
        return false;
    };
    auto month_of = [](std::string_view m) -> int {
        constexpr std::string_view names[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                              "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
        for (int i = 0; i < 12; ++i)
            if (m == names[i]) return i + 1;
        return 0;
    };
    auto take_time = [&](int& h, int& m, int& sec) {
        auto hh = take_number(2, 2);
        if (!hh || !expect(':')) return false;
        auto mm = take_number(2, 2);
        if (!mm || !expect(':')) return false;
        auto ss = take_number(2, 2);
        if (!ss) return false;
        h = *hh, m = *mm, sec = *ss;
        return h < 24 && m < 60 && sec <= 60;
    };

    if (take_alpha().empty()) return std::nullopt;  // day name, not checked against the date
    int day = 0, month = 0, year = 0, h = 0, m = 0, sec = 0;
    if (expect(',')) {
        skip_spaces();
        auto d = take_number(1, 2);
        if (!d) return std::nullopt;
        day = *d;
        if (expect(' ')) {  // IMF-fixdate
            month = month_of(take_alpha());
            if (!expect(' ')) return std::nullopt;
            auto y = take_number(4, 4);
            if (!y) return std::nullopt;
            year = *y;
        } else if (expect('-')) {  // RFC 850: two-digit year, read as within 50 years (RFC 9110)
            month = month_of(take_alpha());
            if (!expect('-')) return std::nullopt;
            auto y = take_number(2, 2);
            if (!y) return std::nullopt;
            year = *y < 70 ? 2000 + *y : 1900 + *y;
        } else {
            return std::nullopt;
        }
        if (!expect(' ') || !take_time(h, m, sec)) return std::nullopt;
        skip_spaces();
        if (s.substr(pos) != "GMT") return std::nullopt;
    } else {  // asctime
        skip_spaces();
        month = month_of(take_alpha());
        skip_spaces();
        auto d = take_number(1, 2);
        if (!d || !expect(' ')) return std::nullopt;
        day = *d;
        if (!take_time(h, m, sec) || !expect(' ')) return std::nullopt;
        auto y = take_number(4, 4);
        if (!y || pos != s.size()) return std::nullopt;
        year = *y;
    }
    if (month == 0 || year < 1900) return std::nullopt;
    // system_clock counts nanoseconds in 64 bits (until 2262): a date that far out just means
    // "much later than any cap".
    if (year > 2200) return system_clock::time_point::max();
    const year_month_day date{std::chrono::year{year}, std::chrono::month{unsigned(month)},
                              std::chrono::day{unsigned(day)}};
    if (!date.ok()) return std::nullopt;
    return system_clock::time_point{sys_days{date}.time_since_epoch() + hours{h} + minutes{m} + seconds{sec}};
}

/**
 * The delay a Retry-After value asks for, measured from `now`; nothing when it does not parse.
 * A date in the past means "now" (zero).
 */
inline std::optional<std::chrono::milliseconds> parse_retry_after(std::string_view value,
                                                                   std::chrono::system_clock::time_point now)
{
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
    while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
    if (value.empty()) return std::nullopt;
    if (value.find_first_not_of("0123456789") == std::string_view::npos) {
        std::int64_t seconds = 0;
        for (char c : value) {
            seconds = seconds * 10 + (c - '0');
            if (seconds > 100LL * 365 * 24 * 3600) break;  // absurd: saturate, the cap applies
        }
        return std::chrono::seconds{seconds};
    }
    auto at = parse_http_date(value);
    if (!at) return std::nullopt;
    if (*at <= now) return std::chrono::milliseconds{0};
    return std::chrono::ceil<std::chrono::milliseconds>(*at - now);
}

} // namespace syncvault::detail

#endif
