// Unit tests of the small Boost-only policies and helpers: jittered_backoff and the retry table,
// Retry-After parsing, request validation, JSON bodies, the fake clock and fake transport,
// manual_connectivity, the error category, subscriptions and UUIDs. No I/O, no sleeps.
#include <syncvault/body.hpp>
#include <syncvault/concepts/retry_policy.hpp>
#include <syncvault/connectivity/manual_connectivity.hpp>
#include <syncvault/detail/request_check.hpp>
#include <syncvault/detail/retry_after.hpp>
#include <syncvault/detail/uuid.hpp>
#include <syncvault/error.hpp>
#include <syncvault/events.hpp>
#include <syncvault/retry/jittered_backoff.hpp>
#include <syncvault/testing/fake_clock.hpp>
#include <syncvault/testing/fake_transport.hpp>

#include <boost/hana/define_struct.hpp>
#include <boost/json.hpp>
#include <boost/system/error_code.hpp>

#include <catch2/catch.hpp>

#include "support/test_latch.hpp"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <unordered_map>
#include <vector>

using namespace std::chrono_literals;
using std::chrono::milliseconds;
using wall_time = std::chrono::system_clock::time_point;
namespace sv = syncvault;

namespace {

// ---- helpers --------------------------------------------------------------------------------

/** min(cap, base * 2^n), computed without the code under test (and without overflow). */
milliseconds expected_ceiling(milliseconds base, milliseconds cap, int n)
{
    long double value = static_cast<long double>(base.count());
    for (int i = 0; i < n && value < static_cast<long double>(cap.count()); ++i) value *= 2;
    if (value >= static_cast<long double>(cap.count())) return cap;
    return milliseconds{static_cast<std::int64_t>(value)};
}

sv::jittered_backoff make_backoff(sv::jittered_backoff::jitter kind, std::uint64_t seed = 42, milliseconds base = 100ms,
                                  milliseconds cap = 60'000ms)
{
    sv::jittered_backoff::options o;
    o.base = base;
    o.cap = cap;
    o.kind = kind;
    o.seed = seed;
    return sv::jittered_backoff{o};
}

std::vector<milliseconds> schedule(sv::jittered_backoff b, int retries)
{
    std::vector<milliseconds> out;
    for (int n = 0; n < retries; ++n) out.push_back(b.delay(n));
    return out;
}

/** What `fn` throws, as `std::invalid_argument::what()`; empty when it throws nothing. */
template <class F>
std::string invalid_argument_message(F&& fn)
{
    try {
        fn();
    } catch (const std::invalid_argument& e) {
        return e.what();
    }
    return {};
}

wall_time utc(int y, unsigned m, unsigned d, int hh = 0, int mm = 0, int ss = 0)
{
    using namespace std::chrono;
    return wall_time{sys_days{year{y} / month{m} / day{d}}.time_since_epoch() + hours{hh} + minutes{mm} + seconds{ss}};
}

bool path_ok(std::string_view path, std::size_t max_bytes = 2048)
{
    return !sv::detail::check_path(path, max_bytes);
}

// ---- Hana-reflected bodies --------------------------------------------------------------------

struct address {
    BOOST_HANA_DEFINE_STRUCT(address, (std::string, city), (int, zip));
    friend bool operator==(const address&, const address&) = default;
};

struct person {
    BOOST_HANA_DEFINE_STRUCT(person, (std::string, name), (std::optional<int>, age), (std::vector<address>, homes),
                             (std::map<std::string, int>, scores), (std::optional<address>, work), (bool, active),
                             (double, rating));
    friend bool operator==(const person&, const person&) = default;
};

struct job_done {
    BOOST_HANA_DEFINE_STRUCT(job_done, (int, id), (std::string, status));
    friend bool operator==(const job_done&, const job_done&) = default;
};

struct inventory {
    BOOST_HANA_DEFINE_STRUCT(inventory, (std::unordered_map<std::string, std::vector<job_done>>, by_team));
    friend bool operator==(const inventory&, const inventory&) = default;
};

}  // namespace

// ================================================================================================
// jittered_backoff
// ================================================================================================

TEST_CASE("jittered_backoff defaults are base 1 s, cap 5 min, full jitter", "[policies][backoff]")
{
    sv::jittered_backoff b;
    CHECK(b.settings().base == 1s);
    CHECK(b.settings().cap == 5min);
    CHECK(b.settings().kind == sv::jittered_backoff::jitter::full);
    CHECK(b.max_delay() == 5min);
    STATIC_REQUIRE(sv::retry_policy<sv::jittered_backoff>);
}

TEST_CASE("full jitter stays within [0, min(cap, base * 2^n)] for every n", "[policies][backoff]")
{
    auto b = make_backoff(sv::jittered_backoff::jitter::full);
    for (int n = 0; n <= 40; ++n) {
        const auto ceiling = expected_ceiling(100ms, 60'000ms, n);
        for (int draw = 0; draw < 200; ++draw) {
            const auto d = b.delay(n);
            INFO("n = " << n << ", delay = " << d.count() << " ms, ceiling = " << ceiling.count());
            REQUIRE(d >= 0ms);
            REQUIRE(d <= ceiling);
        }
    }
}

TEST_CASE("full jitter spreads over its whole range", "[policies][backoff]")
{
    // A fixed seed makes this deterministic; it guards against a jitter stuck at 0 or at the top.
    auto b = make_backoff(sv::jittered_backoff::jitter::full, 7, 1'000ms, 1'000ms);
    std::int64_t sum = 0, low = 1'000, high = 0;
    for (int draw = 0; draw < 2'000; ++draw) {
        const auto d = b.delay(3).count();
        sum += d;
        low = std::min(low, d);
        high = std::max(high, d);
    }
    CHECK(sum / 2'000 > 400);
    CHECK(sum / 2'000 < 600);
    CHECK(low < 50);
    CHECK(high > 950);
}

TEST_CASE("equal jitter stays within [ceiling/2, ceiling]", "[policies][backoff]")
{
    auto b = make_backoff(sv::jittered_backoff::jitter::equal);
    for (int n = 0; n <= 40; ++n) {
        const auto ceiling = expected_ceiling(100ms, 60'000ms, n);
        for (int draw = 0; draw < 200; ++draw) {
            const auto d = b.delay(n);
            INFO("n = " << n << ", delay = " << d.count() << " ms, ceiling = " << ceiling.count());
            REQUIRE(d >= ceiling / 2);
            REQUIRE(d <= ceiling);
        }
    }
}

TEST_CASE("decorrelated jitter stays within [base, min(cap, 3 * previous)]", "[policies][backoff]")
{
    auto b = make_backoff(sv::jittered_backoff::jitter::decorrelated);
    for (int schedule_run = 0; schedule_run < 100; ++schedule_run) {
        auto previous = 100ms;  // the sequence restarts at retry 0
        for (int n = 0; n <= 30; ++n) {
            const auto d = b.delay(n);
            INFO("run " << schedule_run << ", n = " << n << ", delay = " << d.count()
                        << ", previous = " << previous.count());
            REQUIRE(d >= 100ms);
            REQUIRE(d <= 60'000ms);
            REQUIRE(d <= std::max(100ms, 3 * previous));
            previous = d;
        }
    }
}

TEST_CASE("no jitter is exactly min(cap, base * 2^n)", "[policies][backoff]")
{
    auto b = make_backoff(sv::jittered_backoff::jitter::none);
    CHECK(b.delay(0) == 100ms);
    CHECK(b.delay(1) == 200ms);
    CHECK(b.delay(2) == 400ms);
    CHECK(b.delay(9) == 51'200ms);
    CHECK(b.delay(10) == 60'000ms);  // 102.4 s, capped
    for (int n = 0; n <= 64; ++n) CHECK(b.delay(n) == expected_ceiling(100ms, 60'000ms, n));
}

TEST_CASE("a seed makes every jitter kind reproducible", "[policies][backoff]")
{
    using jitter = sv::jittered_backoff::jitter;
    for (auto kind : {jitter::full, jitter::equal, jitter::decorrelated, jitter::none}) {
        INFO("kind " << static_cast<int>(kind));
        CHECK(schedule(make_backoff(kind, 1234), 30) == schedule(make_backoff(kind, 1234), 30));
        // A copy carries the engine's state: it continues the same sequence.
        auto original = make_backoff(kind, 99);
        (void)original.delay(0);
        auto copy = original;
        CHECK(original.delay(1) == copy.delay(1));
    }
    CHECK(schedule(make_backoff(jitter::full, 1), 30) != schedule(make_backoff(jitter::full, 2), 30));
}

TEST_CASE("default-constructed backoffs are seeded differently", "[policies][backoff]")
{
    // 20 draws over [0, 300 s] each: equal schedules would mean a fixed default seed.
    sv::jittered_backoff a, b;
    CHECK(schedule(a, 20) != schedule(b, 20));
}

TEST_CASE("the cap bounds every delay and no retry count overflows", "[policies][backoff]")
{
    using jitter = sv::jittered_backoff::jitter;
    for (auto kind : {jitter::full, jitter::equal, jitter::decorrelated, jitter::none}) {
        INFO("kind " << static_cast<int>(kind));
        auto b = make_backoff(kind, 5, 1ms, 30'000ms);
        for (int n : {62, 63, 64, 100, 1'000, std::numeric_limits<int>::max()}) {
            const auto d = b.delay(n);
            CHECK(d >= 0ms);
            CHECK(d <= 30'000ms);
        }
        CHECK(b.max_delay() == 30'000ms);
    }
    // The largest cap there is: doubling must stop before it overflows.
    auto huge = make_backoff(jitter::none, 5, 1ms, milliseconds::max());
    CHECK(huge.delay(1'000) == milliseconds::max());
    CHECK(huge.delay(62) == milliseconds{std::int64_t{1} << 62});
    auto huge_full = make_backoff(jitter::full, 5, 1ms, milliseconds::max());
    CHECK(huge_full.delay(1'000) >= 0ms);
    auto huge_equal = make_backoff(jitter::equal, 5, 1ms, milliseconds::max());
    CHECK(huge_equal.delay(1'000) >= milliseconds::max() / 2);
}

TEST_CASE("base equal to cap gives a constant ceiling", "[policies][backoff]")
{
    auto b = make_backoff(sv::jittered_backoff::jitter::none, 1, 500ms, 500ms);
    for (int n = 0; n < 10; ++n) CHECK(b.delay(n) == 500ms);
}

TEST_CASE("invalid backoff options throw naming the field", "[policies][backoff]")
{
    using jitter = sv::jittered_backoff::jitter;
    CHECK_THAT(invalid_argument_message([] { make_backoff(jitter::full, 1, 0ms, 1'000ms); }), Catch::Contains("base"));
    CHECK_THAT(invalid_argument_message([] { make_backoff(jitter::full, 1, -5ms, 1'000ms); }), Catch::Contains("base"));
    CHECK_THAT(invalid_argument_message([] { make_backoff(jitter::full, 1, 1'000ms, 999ms); }), Catch::Contains("cap"));
    CHECK_THAT(invalid_argument_message([] { make_backoff(jitter::full, 1, 1'000ms, -1ms); }), Catch::Contains("cap"));
    CHECK(invalid_argument_message([] { make_backoff(jitter::full, 1, 1ms, 1ms); }).empty());
}

TEST_CASE("the retry table: 2xx success, network error/408/429/5xx retry, the rest permanent",
          "[policies][backoff][retry_table]")
{
    for (int status = 100; status <= 599; ++status) {
        INFO("status " << status);
        sv::outcome_kind expected = sv::outcome_kind::permanent;
        if (status >= 200 && status <= 299) expected = sv::outcome_kind::success;
        if (status == 408 || status == 429 || status >= 500) expected = sv::outcome_kind::retry;
        CHECK(sv::classify_status(status) == expected);
        CHECK(sv::classify_outcome(sv::http_response{status, {}, {}}) == expected);
    }
    CHECK(sv::classify_status(0) == sv::outcome_kind::permanent);
    CHECK(sv::classify_status(600) == sv::outcome_kind::permanent);
    for (auto e : {sv::errc::timeout, sv::errc::connection_failed, sv::errc::cancelled, sv::errc::response_too_large}) {
        sv::result<sv::http_response> failed{make_error_code(e)};
        CHECK(sv::classify_outcome(failed) == sv::outcome_kind::retry);
        CHECK(sv::jittered_backoff{}.classify(failed) == sv::outcome_kind::retry);
    }
    CHECK(sv::jittered_backoff{}.classify(sv::http_response{204, {}, {}}) == sv::outcome_kind::success);
    CHECK(sv::jittered_backoff{}.classify(sv::http_response{301, {}, {}}) == sv::outcome_kind::permanent);
}

// ================================================================================================
// Retry-After and HTTP dates
// ================================================================================================

TEST_CASE("parse_http_date reads the three formats of RFC 9110", "[policies][retry_after]")
{
    const auto expected = utc(1994, 11, 6, 8, 49, 37);
    CHECK(sv::detail::parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT") == expected);   // IMF-fixdate
    CHECK(sv::detail::parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT") == expected);  // RFC 850
    CHECK(sv::detail::parse_http_date("Sun Nov  6 08:49:37 1994") == expected);        // asctime
    CHECK(sv::detail::parse_http_date("Sun Nov 16 08:49:37 1994") == utc(1994, 11, 16, 8, 49, 37));
    CHECK(sv::detail::parse_http_date("Thu, 01 Jan 2026 00:00:00 GMT") == sv::testing::fake_clock::epoch());
    CHECK(sv::detail::parse_http_date("Thursday, 01-Jan-26 00:00:00 GMT") == sv::testing::fake_clock::epoch());
    CHECK(sv::detail::parse_http_date("Sat, 29 Feb 2020 23:59:59 GMT") == utc(2020, 2, 29, 23, 59, 59));
    CHECK(sv::detail::parse_http_date("Sun,  06 Nov 1994 08:49:37 GMT") == expected);  // extra space
}

TEST_CASE("parse_http_date rejects garbage", "[policies][retry_after]")
{
    for (std::string_view bad : {"",
                                 "soon",
                                 "GMT",
                                 "Sun,",
                                 "Sun, 06 Nov 1994 08:49:37",
                                 "Sun, 06 Nov 1994 08:49:37 UTC",
                                 "Sun, 06 Nov 1994 08:49:37 GMTx",
                                 "Sun, 06 Foo 1994 08:49:37 GMT",
                                 "Sun, 32 Nov 1994 08:49:37 GMT",
                                 "Sun, 00 Nov 1994 08:49:37 GMT",
                                 "Wed, 29 Feb 2023 08:49:37 GMT",
                                 "Sun, 06 Nov 1994 24:00:00 GMT",
                                 "Sun, 06 Nov 1994 08:60:00 GMT",
                                 "Sun, 06 Nov 94 08:49:37 GMT",
                                 "Sun, 06-Nov-1994 08:49:37 GMT",
                                 "Sun, 06 Nov 1994 8:49:37 GMT",
                                 "Sun Nov  6 08:49:37 1994 GMT",
                                 "Sun Nov  6 08:49:37",
                                 "06 Nov 1994 08:49:37 GMT",
                                 "1994-11-06T08:49:37Z"}) {
        INFO("'" << bad << "'");
        CHECK_FALSE(sv::detail::parse_http_date(bad).has_value());
    }
}

TEST_CASE("parse_retry_after reads delta-seconds and dates relative to now", "[policies][retry_after]")
{
    const auto now = sv::testing::fake_clock::epoch();  // Thu, 01 Jan 2026 00:00:00 GMT
    CHECK(sv::detail::parse_retry_after("120", now) == milliseconds{120'000});
    CHECK(sv::detail::parse_retry_after("0", now) == 0ms);
    CHECK(sv::detail::parse_retry_after("007", now) == 7'000ms);
    CHECK(sv::detail::parse_retry_after("Thu, 01 Jan 2026 00:00:30 GMT", now) == 30'000ms);
    CHECK(sv::detail::parse_retry_after("Thursday, 01-Jan-26 00:01:00 GMT", now) == 60'000ms);
    CHECK(sv::detail::parse_retry_after("Thu Jan  1 01:00:00 2026", now) == 3'600'000ms);
    // Sub-second remainders round up, so the wait is never shorter than asked.
    CHECK(sv::detail::parse_retry_after("Thu, 01 Jan 2026 00:00:01 GMT", now - 500ms) == 1'500ms);
}

TEST_CASE("parse_retry_after: a date in the past (or now) means no wait", "[policies][retry_after]")
{
    const auto now = sv::testing::fake_clock::epoch();
    CHECK(sv::detail::parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now) == 0ms);
    CHECK(sv::detail::parse_retry_after("Thu, 01 Jan 2026 00:00:00 GMT", now) == 0ms);
    CHECK(sv::detail::parse_retry_after("Wed, 31 Dec 2025 23:59:59 GMT", now) == 0ms);
}

TEST_CASE("parse_retry_after trims surrounding whitespace", "[policies][retry_after]")
{
    const auto now = sv::testing::fake_clock::epoch();
    CHECK(sv::detail::parse_retry_after("  120  ", now) == 120'000ms);
    CHECK(sv::detail::parse_retry_after("\t5\t", now) == 5'000ms);
    CHECK(sv::detail::parse_retry_after(" Thu, 01 Jan 2026 00:00:30 GMT \t", now) == 30'000ms);
    CHECK_FALSE(sv::detail::parse_retry_after("1 2", now).has_value());
}

TEST_CASE("parse_retry_after rejects garbage", "[policies][retry_after]")
{
    const auto now = sv::testing::fake_clock::epoch();
    for (std::string_view bad :
         {"", "   ", "\t", "soon", "-5", "+5", "1.5", "5s", "0x10", "1e3", "Thu, 01 Jan 2026 00:00:30", "tomorrow"}) {
        INFO("'" << bad << "'");
        CHECK_FALSE(sv::detail::parse_retry_after(bad, now).has_value());
    }
}

TEST_CASE("parse_retry_after saturates absurd delta-seconds instead of overflowing", "[policies][retry_after]")
{
    const auto now = sv::testing::fake_clock::epoch();
    const auto d = sv::detail::parse_retry_after("99999999999999999999999999999999", now);
    REQUIRE(d.has_value());
    CHECK(*d > std::chrono::duration_cast<milliseconds>(std::chrono::hours{24 * 365 * 50}));
    CHECK(*d < milliseconds::max() / 2);
}

// ================================================================================================
// Request validation: paths, headers, keys, URLs
// ================================================================================================

TEST_CASE("check_path accepts ordinary relative paths and queries", "[policies][request_check]")
{
    for (std::string_view good : {"",
                                  "/",
                                  "/jobs",
                                  "jobs",
                                  "/jobs/7",
                                  "jobs/7/",
                                  "/jobs?x=1&y=2",
                                  "?page=2",
                                  "/a/b.c/d",
                                  "/a/./b",
                                  "/a/.../b",
                                  "/files/..x",
                                  "/files/x..",
                                  "/%41bc",
                                  "/caf%C3%A9",
                                  "/search?q=../up",
                                  "/jobs/%20x",
                                  "/discount/50%25off",
                                  "/a:b",
                                  "/users/me@example.com",
                                  "/a;v=1"}) {
        INFO("'" << good << "'");
        CHECK(path_ok(good));
    }
}

TEST_CASE("check_path rejects other schemes and hosts", "[policies][request_check]")
{
    for (std::string_view bad : {"http://evil.example/x", "https://evil.example", "javascript:alert(1)", "mailto:a@b",
                                 "file:///etc/passwd", "//evil.example/x", "//evil.example", "///x"}) {
        INFO("'" << bad << "'");
        CHECK(sv::detail::check_path(bad, 2048) == sv::errc::invalid_request);
    }
}

TEST_CASE("check_path rejects a .. segment in any encoding", "[policies][request_check]")
{
    for (std::string_view bad : {"..",
                                 "../x",
                                 "/..",
                                 "/../etc/passwd",
                                 "/a/../b",
                                 "/a/..",
                                 "a/..",
                                 "/%2e%2e/x",
                                 "/%2E%2e/x",
                                 "/%2e%2E/x",
                                 "/%2E%2E",
                                 "/.%2e/x",
                                 "/%2e./x",
                                 "/%252e%252e/x",
                                 "/%25252e%25252e/x",
                                 "/..%2fx",
                                 "/..%2Fx",
                                 "/a%2f..%2fb",
                                 "/%5c..%5cx",
                                 "/x%2f%2e%2e",
                                 "/%2525252e%2525252e/x",
                                 "/50%25off/%252e%252e/x"}) {
        INFO("'" << bad << "'");
        CHECK(sv::detail::check_path(bad, 2048) == sv::errc::invalid_request);
    }
}

TEST_CASE("check_path rejects backslashes, control characters, spaces, fragments, bad escapes",
          "[policies][request_check]")
{
    using namespace std::string_view_literals;
    for (std::string_view bad :
         {"/a\\b"sv, "..\\x"sv, "/a\rb"sv, "/a\nb"sv, "/a\r\nHost: evil"sv, "/a\0b"sv, "/a\tb"sv, "/a b"sv, " /a"sv,
          "/a\x7f"sv, "/a#frag"sv, "#x"sv, "/a%0d%0aX: y"sv, "/a%0D%0A"sv, "/a%00"sv, "/a%zz"sv, "/a%"sv, "/a%2"sv}) {
        INFO("'" << bad << "'");
        CHECK(sv::detail::check_path(bad, 2048) == sv::errc::invalid_request);
    }
}

TEST_CASE("check_path refuses more than four layers of percent-encoding", "[policies][request_check]")
{
    CHECK(path_ok("/%25252541"));  // four layers of 'A'
    CHECK_FALSE(path_ok("/%2525252541"));
    CHECK_FALSE(path_ok("/%252525252e%252525252e/x"));
}

TEST_CASE("check_path enforces the length limit", "[policies][request_check]")
{
    const std::string exact = "/" + std::string(2047, 'a');
    CHECK(path_ok(exact, 2048));
    CHECK_FALSE(path_ok(exact + "a", 2048));
}

TEST_CASE("check_header accepts tokens and visible values", "[policies][request_check]")
{
    CHECK_FALSE(sv::detail::check_header({"X-Trace-Id", "abc-123"}));
    CHECK_FALSE(sv::detail::check_header({"!#$%&'*+-.^_`|~09azAZ", "v"}));
    CHECK_FALSE(sv::detail::check_header({"X-Empty", ""}));
    CHECK_FALSE(sv::detail::check_header({"X-Spaced", "a b\tc"}));
    CHECK_FALSE(sv::detail::check_header({"X-Utf8", "caf\xc3\xa9"}));  // obs-text is allowed
}

TEST_CASE("check_header rejects bad names and CR, LF, NUL in values", "[policies][request_check]")
{
    using namespace std::string_literals;
    const std::vector<sv::header> bad{
        {"", "v"},        {"X Trace", "v"},     {"X:Trace", "v"}, {"X-Trace\r", "v"}, {"X-Trace\n", "v"},
        {"(x)", "v"},     {"caf\xc3\xa9", "v"}, {"X-A", "a\rb"},  {"X-A", "a\nb"},    {"X-A", "a\r\nX-Injected: 1"},
        {"X-A", "a\0b"s}, {"X-A", "a\x7f"},     {"X-A", "a\x01"},
    };
    for (const auto& h : bad) {
        INFO("'" << h.name << "': '" << h.value << "'");
        CHECK(sv::detail::check_header(h) == sv::errc::invalid_request);
    }
}

TEST_CASE("check_key wants 1..max visible ASCII characters", "[policies][request_check]")
{
    CHECK_FALSE(sv::detail::check_key("order-42", 255));
    CHECK_FALSE(sv::detail::check_key("7f1c1a8e-7a4f-4f5e-9c55-1d3a0c7d2e11", 255));
    CHECK_FALSE(sv::detail::check_key(std::string(255, 'k'), 255));
    CHECK_FALSE(sv::detail::check_key("!~", 255));
    CHECK(sv::detail::check_key(std::string(256, 'k'), 255) == sv::errc::invalid_request);
    CHECK(sv::detail::check_key("", 255) == sv::errc::invalid_request);
    for (std::string_view bad : {"a b", "a\tb", "a\rb", "a\nb", "caf\xc3\xa9", "a\x7f"}) {
        INFO("'" << bad << "'");
        CHECK(sv::detail::check_key(bad, 255) == sv::errc::invalid_request);
    }
}

TEST_CASE("join_url appends the path to base_url's path", "[policies][request_check]")
{
    CHECK(sv::detail::join_url("http://h/api/v1", "/jobs") == "http://h/api/v1/jobs");
    CHECK(sv::detail::join_url("http://h/api/v1", "jobs") == "http://h/api/v1/jobs");
    CHECK(sv::detail::join_url("http://h/api/v1", "/jobs?x=1") == "http://h/api/v1/jobs?x=1");
    CHECK(sv::detail::join_url("http://h/api/v1", "?x=1") == "http://h/api/v1?x=1");
    CHECK(sv::detail::join_url("http://h/api/v1", "") == "http://h/api/v1");
    CHECK(sv::detail::join_url("http://h", "/") == "http://h/");
    CHECK(sv::detail::join_url(sv::detail::checked_base_url("http://h/api/v1/"), "/jobs") == "http://h/api/v1/jobs");
    CHECK(sv::detail::join_url(sv::detail::checked_base_url("https://h:8443//"), "jobs") == "https://h:8443/jobs");
}

TEST_CASE("checked_base_url accepts http and https URLs and drops trailing slashes", "[policies][request_check]")
{
    CHECK(sv::detail::checked_base_url("http://h") == "http://h");
    CHECK(sv::detail::checked_base_url("https://api.example.com/") == "https://api.example.com");
    CHECK(sv::detail::checked_base_url("https://h:8443/api/v1/") == "https://h:8443/api/v1");
    CHECK(sv::detail::checked_base_url("http://127.0.0.1:8080") == "http://127.0.0.1:8080");
    CHECK(sv::detail::checked_base_url("http://[::1]:80/x") == "http://[::1]:80/x");
}

TEST_CASE("checked_base_url throws naming vault_config.base_url", "[policies][request_check]")
{
    for (std::string_view bad : {"", "api.example.com", "/api", "ftp://h/x", "file:///tmp", "ws://h", "http://",
                                 "http:///x", "http://h/?x=1", "http://h/api#top", "http://h/a b"}) {
        INFO("'" << bad << "'");
        CHECK_THAT(invalid_argument_message([&] { (void)sv::detail::checked_base_url(bad); }),
                   Catch::Contains("vault_config.base_url"));
    }
}

// ================================================================================================
// JSON bodies: Boost.Hana reflection both ways
// ================================================================================================

TEST_CASE("to_json writes a Hana struct member by member, nested", "[policies][json]")
{
    person p{"Ada", 36, {{"London", 1}, {"Paris", 75}}, {{"chess", 3}, {"go", 5}}, address{"Zurich", 8000}, true, 4.5};
    const auto json = sv::to_json(p);
    REQUIRE(json.is_object());
    const auto& o = json.as_object();
    CHECK(o.size() == 7);
    CHECK(o.at("name") == "Ada");
    CHECK(o.at("age") == 36);
    CHECK(o.at("homes").as_array().size() == 2);
    CHECK(o.at("homes").as_array()[1].as_object().at("city") == "Paris");
    CHECK(o.at("scores").as_object().at("go") == 5);
    CHECK(o.at("work").as_object().at("zip") == 8000);
    CHECK(o.at("active") == true);
    CHECK(o.at("rating") == 4.5);

    p.age.reset();
    p.work.reset();
    const auto empty = sv::to_json(p);
    CHECK(empty.as_object().at("age").is_null());
    CHECK(empty.as_object().at("work").is_null());
}

TEST_CASE("from_json reads back what to_json wrote", "[policies][json]")
{
    const person p{"Ada", 36, {{"London", 1}}, {{"chess", 3}}, address{"Zurich", 8000}, false, -1.25};
    auto back = sv::from_json<person>(sv::to_json(p));
    REQUIRE(back.has_value());
    CHECK(*back == p);

    const person empty{"Bob", std::nullopt, {}, {}, std::nullopt, true, 0.0};
    auto back_empty = sv::from_json<person>(sv::to_json(empty));
    REQUIRE(back_empty.has_value());
    CHECK(*back_empty == empty);

    const std::vector<job_done> jobs{{1, "DONE"}, {2, "FAILED"}};
    auto back_jobs = sv::from_json<std::vector<job_done>>(sv::to_json(jobs));
    REQUIRE(back_jobs.has_value());
    CHECK(*back_jobs == jobs);

    const inventory inv{{{"red", {{1, "DONE"}}}, {"blue", {}}}};
    auto back_inv = sv::from_json<inventory>(sv::to_json(inv));
    REQUIRE(back_inv.has_value());
    CHECK(*back_inv == inv);
}

TEST_CASE("from_json: an absent optional stays empty, an absent required field is an error", "[policies][json]")
{
    const auto minimal = boost::json::parse(R"({"name":"Ada","homes":[],"scores":{},"active":true,"rating":1})");
    auto p = sv::from_json<person>(minimal);
    REQUIRE(p.has_value());
    CHECK_FALSE(p->age.has_value());
    CHECK_FALSE(p->work.has_value());

    auto missing = sv::from_json<job_done>(boost::json::parse(R"({"id":7})"));
    REQUIRE_FALSE(missing.has_value());
    CHECK(std::error_code(missing.error()) == sv::errc::invalid_request);

    auto missing_nested = sv::from_json<person>(
        boost::json::parse(R"({"name":"Ada","homes":[{"city":"X"}],"scores":{},"active":true,"rating":1})"));
    CHECK_FALSE(missing_nested.has_value());
}

TEST_CASE("from_json rejects values of the wrong shape", "[policies][json]")
{
    CHECK_FALSE(sv::from_json<job_done>(boost::json::parse(R"([1, "DONE"])")).has_value());
    CHECK_FALSE(sv::from_json<job_done>(boost::json::parse(R"({"id":"seven","status":"DONE"})")).has_value());
    CHECK_FALSE(sv::from_json<job_done>(boost::json::parse(R"({"id":7,"status":null})")).has_value());
    CHECK_FALSE(sv::from_json<std::vector<job_done>>(boost::json::parse(R"({"id":7})")).has_value());
    CHECK_FALSE(sv::from_json<std::map<std::string, int>>(boost::json::parse(R"({"a":"x"})")).has_value());
    CHECK_FALSE(sv::from_json<std::optional<int>>(boost::json::parse(R"("x")")).has_value());
    // Extra members are ignored: servers add fields.
    auto extra = sv::from_json<job_done>(boost::json::parse(R"({"id":7,"status":"DONE","at":1})"));
    REQUIRE(extra.has_value());
    CHECK(*extra == job_done{7, "DONE"});
}

TEST_CASE("body_as parses text and responses", "[policies][json]")
{
    auto job = sv::body_as<job_done>(R"({"id":7,"status":"DONE"})");
    REQUIRE(job.has_value());
    CHECK(*job == job_done{7, "DONE"});

    const sv::http_response response{200, {{"Content-Type", "application/json"}}, R"({"id":8,"status":"OK"})"};
    auto from_response = sv::body_as<job_done>(response);
    REQUIRE(from_response.has_value());
    CHECK(from_response->id == 8);

    CHECK_FALSE(sv::body_as<job_done>("").has_value());
    CHECK_FALSE(sv::body_as<job_done>("{\"id\":").has_value());
    CHECK_FALSE(sv::body_as<job_done>("not json").has_value());
    CHECK_FALSE(sv::body_as<job_done>(R"({"id":7})").has_value());

    auto plain = sv::body_as<boost::json::value>(R"({"a":[1,2]})");
    REQUIRE(plain.has_value());
    CHECK(plain->at("a").as_array().size() == 2);
}

TEST_CASE("to_json of plain values goes through Boost.JSON", "[policies][json]")
{
    CHECK(sv::to_json(42) == 42);
    CHECK(sv::to_json(std::string("x")) == "x");
    CHECK(sv::to_json(std::vector<int>{1, 2}) == boost::json::array{1, 2});
    CHECK(sv::to_json(std::optional<int>{}).is_null());
    CHECK(boost::json::serialize(sv::to_json(job_done{7, "DONE"})) == R"({"id":7,"status":"DONE"})");
}

// ================================================================================================
// testing::fake_clock
// ================================================================================================

TEST_CASE("fake_clock starts at 2026-01-01T00:00:00Z", "[policies][fake_clock]")
{
    sv::testing::fake_clock clock;
    CHECK(clock.now() == utc(2026, 1, 1));
    CHECK(std::chrono::duration_cast<std::chrono::seconds>(clock.now().time_since_epoch()).count() == 1'767'225'600);
    CHECK(sv::testing::fake_clock::epoch() == utc(2026, 1, 1));
    CHECK(sv::testing::fake_clock{utc(2030, 6, 1)}.now() == utc(2030, 6, 1));
    STATIC_REQUIRE(sv::clock<sv::testing::fake_clock>);
}

TEST_CASE("fake_clock moves only when told", "[policies][fake_clock]")
{
    sv::testing::fake_clock clock;
    const auto start = clock.now();
    CHECK(clock.now() == start);
    clock.advance(5s);
    CHECK(clock.now() == start + 5s);
    clock.advance(250ms);
    clock.advance(std::chrono::minutes{2});
    CHECK(clock.now() == start + 125'250ms);
    clock.advance(-25'250ms);  // wall clocks jump back too
    CHECK(clock.now() == start + 100s);
    clock.set(utc(1999, 12, 31, 23, 59, 59));
    CHECK(clock.now() == utc(1999, 12, 31, 23, 59, 59));
}

TEST_CASE("fake_clock copies share one time", "[policies][fake_clock]")
{
    sv::testing::fake_clock clock;
    auto copy = clock;
    sv::testing::fake_clock assigned{utc(2000, 1, 1)};
    assigned = clock;
    copy.advance(1h);
    CHECK(clock.now() == sv::testing::fake_clock::epoch() + 1h);
    CHECK(assigned.now() == clock.now());
    clock.set(utc(2027, 1, 1));
    CHECK(copy.now() == utc(2027, 1, 1));
    CHECK(assigned.now() == utc(2027, 1, 1));
    sv::testing::fake_clock other;  // a new clock has its own time
    CHECK(other.now() == sv::testing::fake_clock::epoch());
}

TEST_CASE("fake_clock advances from several threads add up", "[policies][fake_clock][thread]")
{
    sv::testing::fake_clock clock;
    syncvault_tests::latch start{2};
    auto work = [&, copy = clock]() mutable {
        start.arrive_and_wait();
        for (int i = 0; i < 1'000; ++i) copy.advance(1ms);
    };
    std::thread a(work), b(work);
    a.join();
    b.join();
    CHECK(clock.now() == sv::testing::fake_clock::epoch() + 2'000ms);
}

// ================================================================================================
// testing::fake_transport
// ================================================================================================

namespace {
sv::http_request request_to(std::string url, sv::http_method m = sv::http_method::post,
                            std::vector<sv::header> headers = {}, std::string body = {})
{
    return sv::http_request{m, std::move(url), std::move(headers), std::move(body)};
}
}  // namespace

TEST_CASE("fake_transport answers 200 with an empty body by default", "[policies][fake_transport]")
{
    sv::testing::fake_transport net;
    auto r = net.send(request_to("http://h/a"));
    REQUIRE(r.has_value());
    CHECK(r->status == 200);
    CHECK(r->body.empty());
    CHECK(r->headers.empty());
    STATIC_REQUIRE(sv::transport<sv::testing::fake_transport>);
}

TEST_CASE("fake_transport plays its script in order, then the default", "[policies][fake_transport]")
{
    sv::testing::fake_transport net;
    net.respond(201, {{"Location", "/jobs/7"}}, "created")
        .fail(sv::errc::timeout)
        .respond(503, {{"Retry-After", "10"}})
        .fail(make_error_code(sv::errc::connection_failed));
    CHECK(net.scripted() == 4);

    auto first = net.send(request_to("http://h/1"));
    REQUIRE(first.has_value());
    CHECK(first->status == 201);
    CHECK(first->body == "created");
    CHECK(sv::find_header(first->headers, "location") == "/jobs/7");

    auto second = net.send(request_to("http://h/2"));
    REQUIRE_FALSE(second.has_value());
    CHECK(std::error_code(second.error()) == sv::errc::timeout);

    auto third = net.send(request_to("http://h/3"));
    REQUIRE(third.has_value());
    CHECK(third->status == 503);
    CHECK(sv::find_header(third->headers, "Retry-After") == "10");

    auto fourth = net.send(request_to("http://h/4"));
    REQUIRE_FALSE(fourth.has_value());
    CHECK(std::error_code(fourth.error()) == sv::errc::connection_failed);
    CHECK(net.scripted() == 0);

    CHECK(net.send(request_to("http://h/5"))->status == 200);
}

TEST_CASE("fake_transport's default outcome can be changed", "[policies][fake_transport]")
{
    sv::testing::fake_transport net;
    net.respond_by_default(204, {{"X-Default", "1"}}, "");
    net.respond(500);
    CHECK(net.send(request_to("http://h/"))->status == 500);  // the script comes first
    CHECK(net.send(request_to("http://h/"))->status == 204);
    CHECK(net.send(request_to("http://h/"))->status == 204);
    net.fail_by_default(make_error_code(sv::errc::connection_failed));
    auto r = net.send(request_to("http://h/"));
    REQUIRE_FALSE(r.has_value());
    CHECK(std::error_code(r.error()) == sv::errc::connection_failed);
}

TEST_CASE("fake_transport logs every request, headers and body included", "[policies][fake_transport]")
{
    sv::testing::fake_transport net;
    net.fail(sv::errc::timeout);
    (void)net.send(request_to("http://h/jobs", sv::http_method::post,
                              {{"Idempotency-Key", "k1"}, {"Authorization", "Bearer t"}}, R"({"id":7})"));
    (void)net.send(request_to("http://h/jobs/7", sv::http_method::delete_, {{"Idempotency-Key", "k2"}}));
    (void)net.send(request_to("http://h/jobs", sv::http_method::get));

    const auto log = net.requests();
    REQUIRE(log.size() == 3);
    CHECK(net.request_count() == 3);
    CHECK(log[0].method == sv::http_method::post);
    CHECK(log[0].url == "http://h/jobs");
    CHECK(log[0].body == R"({"id":7})");
    CHECK(log[0].headers == std::vector<sv::header>{{"Idempotency-Key", "k1"}, {"Authorization", "Bearer t"}});
    CHECK(log[1].method == sv::http_method::delete_);
    CHECK(sv::find_header(log[1].headers, "idempotency-key") == "k2");
    CHECK(log[2].method == sv::http_method::get);
    CHECK(net.max_concurrent_sends() == 1);
}

TEST_CASE("fake_transport copies share one script and one log", "[policies][fake_transport]")
{
    sv::testing::fake_transport test_side;
    auto vault_side = test_side;
    test_side.respond(418);
    CHECK(vault_side.send(request_to("http://h/"))->status == 418);
    CHECK(test_side.request_count() == 1);
    CHECK(test_side.scripted() == 0);
}

TEST_CASE("fake_transport delays advance an attached clock instead of sleeping", "[policies][fake_transport]")
{
    sv::testing::fake_clock clock;
    sv::testing::fake_transport net;
    net.attach_clock(clock);
    net.respond(200, {}, {}, 250ms).fail(sv::errc::timeout, 30s).respond(201);

    (void)net.send(request_to("http://h/"));
    CHECK(clock.now() == sv::testing::fake_clock::epoch() + 250ms);
    auto timed_out = net.send(request_to("http://h/"));
    CHECK_FALSE(timed_out.has_value());
    CHECK(clock.now() == sv::testing::fake_clock::epoch() + 30'250ms);
    (void)net.send(request_to("http://h/"));
    CHECK(clock.now() == sv::testing::fake_clock::epoch() + 30'250ms);  // no delay scripted
}

TEST_CASE("fake_transport's on_send hook sees each request before its outcome", "[policies][fake_transport]")
{
    sv::testing::fake_transport net;
    std::vector<std::string> seen;
    std::size_t scripted_during_hook = 99;
    net.respond(202);
    net.on_send([&](const sv::http_request& r) {
        seen.push_back(r.url);
        scripted_during_hook = net.scripted();
    });
    CHECK(net.send(request_to("http://h/a"))->status == 202);
    CHECK(scripted_during_hook == 1);  // the outcome was not taken yet
    (void)net.send(request_to("http://h/b"));
    CHECK(seen == std::vector<std::string>{"http://h/a", "http://h/b"});
}

TEST_CASE("fake_transport counts concurrent sends", "[policies][fake_transport][thread]")
{
    sv::testing::fake_transport net;
    syncvault_tests::latch both_inside{2};
    net.on_send([&](const sv::http_request&) { both_inside.arrive_and_wait(); });
    std::thread a([copy = net]() mutable { (void)copy.send(request_to("http://h/a")); });
    std::thread b([copy = net]() mutable { (void)copy.send(request_to("http://h/b")); });
    a.join();
    b.join();
    CHECK(net.max_concurrent_sends() == 2);
    CHECK(net.request_count() == 2);
}

// ================================================================================================
// manual_connectivity
// ================================================================================================

TEST_CASE("manual_connectivity starts online and says what it was told", "[policies][connectivity]")
{
    sv::manual_connectivity c;
    CHECK(c.is_online());
    c.set_online(false);
    CHECK_FALSE(c.is_online());
    c.set_online(true);
    CHECK(c.is_online());
    CHECK_FALSE(sv::manual_connectivity{false}.is_online());
    STATIC_REQUIRE(sv::connectivity<sv::manual_connectivity>);
    STATIC_REQUIRE(sv::notifying_connectivity<sv::manual_connectivity>);
}

TEST_CASE("manual_connectivity calls its change handler once per change", "[policies][connectivity]")
{
    sv::manual_connectivity c;
    std::vector<bool> calls;
    std::vector<bool> state_seen_in_handler;
    c.set_change_handler([&](bool online) {
        calls.push_back(online);
        state_seen_in_handler.push_back(c.is_online());
    });
    c.set_online(true);  // no change
    CHECK(calls.empty());
    c.set_online(false);
    c.set_online(false);
    c.set_online(true);
    c.set_online(true);
    c.set_online(false);
    CHECK(calls == std::vector<bool>{false, true, false});
    CHECK(state_seen_in_handler == calls);  // the new state is visible inside the handler

    c.set_change_handler({});
    c.set_online(true);
    CHECK(calls.size() == 3);
}

TEST_CASE("manual_connectivity's handler may call back into it", "[policies][connectivity]")
{
    sv::manual_connectivity c;
    int calls = 0;
    c.set_change_handler([&](bool online) {
        ++calls;
        if (!online) c.set_online(true);  // re-entrant: must not deadlock
    });
    c.set_online(false);
    CHECK(c.is_online());
    CHECK(calls == 2);
}

TEST_CASE("a moved manual_connectivity keeps its state and handler", "[policies][connectivity]")
{
    sv::manual_connectivity c{false};
    int calls = 0;
    c.set_change_handler([&](bool) { ++calls; });
    sv::manual_connectivity moved = std::move(c);
    CHECK_FALSE(moved.is_online());
    moved.set_online(true);
    CHECK(calls == 1);
}

TEST_CASE("manual_connectivity: racing identical changes notify once", "[policies][connectivity][thread]")
{
    sv::manual_connectivity c;
    std::atomic<int> calls{0};
    c.set_change_handler([&](bool) { ++calls; });
    syncvault_tests::latch start{2};
    auto go_offline = [&] {
        start.arrive_and_wait();
        c.set_online(false);
    };
    std::thread a(go_offline), b(go_offline);
    a.join();
    b.join();
    CHECK(calls == 1);
    CHECK_FALSE(c.is_online());
}

// ================================================================================================
// errc, its category, and its conversions
// ================================================================================================

TEST_CASE("the syncvault error category names itself and every errc", "[policies][errc]")
{
    CHECK(std::string_view{sv::error_category().name()} == "syncvault");
    std::set<std::string> messages;
    for (int value = static_cast<int>(sv::errc::offline); value <= static_cast<int>(sv::errc::invalid_config);
         ++value) {
        const auto message = sv::error_category().message(value);
        INFO("errc " << value << ": " << message);
        CHECK_FALSE(message.empty());
        CHECK(message != "unknown syncvault error");
        messages.insert(message);
    }
    CHECK(messages.size() == static_cast<std::size_t>(sv::errc::invalid_config));  // all distinct
    CHECK(sv::error_category().message(0) == "unknown syncvault error");
    CHECK(sv::error_category().message(9'999) == "unknown syncvault error");
    CHECK(make_error_code(sv::errc::queue_full).message() == "queue full");
    CHECK(make_error_code(sv::errc::offline).message() == "offline");
}

TEST_CASE("errc is a std::error_code enum with the SPEC's values", "[policies][errc]")
{
    STATIC_REQUIRE(std::is_error_code_enum_v<sv::errc>);
    std::error_code ec = sv::errc::queue_full;  // implicit, through is_error_code_enum
    CHECK(ec == sv::errc::queue_full);
    CHECK(ec != sv::errc::offline);
    CHECK(&ec.category() == &sv::error_category());
    CHECK(static_cast<bool>(ec));
    CHECK(ec.value() == static_cast<int>(sv::errc::queue_full));
    // Persisted in dead letters: the values never change.
    CHECK(static_cast<int>(sv::errc::offline) == 1);
    CHECK(static_cast<int>(sv::errc::max_retries_exceeded) == 10);
    for (auto e : {sv::errc::offline, sv::errc::invalid_request, sv::errc::payload_too_large, sv::errc::queue_full,
                   sv::errc::storage_failed, sv::errc::storage_locked, sv::errc::timeout, sv::errc::connection_failed,
                   sv::errc::max_retries_exceeded})
        CHECK(make_error_code(e).category().name() == std::string_view{"syncvault"});
}

TEST_CASE("errc: precise bad-input codes still equal invalid_request (SPEC 9.6)", "[policies][errc]")
{
    for (auto e : {sv::errc::invalid_header, sv::errc::invalid_path, sv::errc::invalid_key,
                   sv::errc::invalid_coalesce_key, sv::errc::invalid_lane, sv::errc::invalid_body}) {
        const std::error_code ec = e;
        CHECK(ec == sv::errc::invalid_request);
        CHECK(sv::errc::invalid_request == ec);
        CHECK(ec == e);
        CHECK(ec.value() == static_cast<int>(e));  // exact codes are unchanged
        CHECK(ec != sv::errc::storage_failed);
        CHECK(ec.message().find("invalid request") == 0);
        const boost::system::error_code boost_ec = ec;  // through result<T>, too
        CHECK(boost_ec == sv::errc::invalid_request);
    }
    const std::error_code general = sv::errc::invalid_request;
    CHECK(general != sv::errc::invalid_path);  // the general code does not claim to be precise
    CHECK(std::error_code(sv::errc::timeout) != sv::errc::invalid_request);
    CHECK(std::error_code(sv::errc::evicted) == sv::errc::cancelled);
    CHECK(std::error_code(sv::errc::cancelled) != sv::errc::evicted);
    // Values are persisted in dead letters: the new ones come after every 0.1 value.
    CHECK(static_cast<int>(sv::errc::invalid_header) == static_cast<int>(sv::errc::tls_failed) + 1);
    CHECK(sv::detail::check_path("//evil/x", 2048) == sv::errc::invalid_path);
    CHECK(sv::detail::check_header({"X", "a\nb"}) == sv::errc::invalid_header);
    CHECK(sv::detail::check_key("", 255) == sv::errc::invalid_key);
    CHECK(sv::detail::check_lane("a\tb", 255) == sv::errc::invalid_lane);
    CHECK(sv::detail::check_coalesce_key("a\rb", 255) == sv::errc::invalid_coalesce_key);
    CHECK(sv::detail::check_coalesce_key("a\rb", 255) == sv::errc::invalid_request);
}

TEST_CASE("errc: a storage failure keeps its system cause (SPEC 9.6)", "[policies][errc]")
{
    const auto full = sv::detail::storage_failure(std::error_code(ENOSPC, std::system_category()));
    CHECK(full == sv::errc::storage_failed);
    CHECK(full == std::errc::no_space_on_device);
    CHECK(full != std::errc::io_error);
    CHECK(full != sv::errc::invalid_request);
    CHECK(full.category().name() == std::string_view{"syncvault.storage"});
    CHECK(full.message().find("No space left on device") != std::string::npos);
    const auto io = sv::detail::storage_failure(std::error_code(EIO, std::generic_category()));
    CHECK(io == std::errc::io_error);
    CHECK(io == sv::errc::storage_failed);
    // No cause, or one that is not an operating-system error: plain storage_failed.
    CHECK(sv::detail::storage_failure({}) == sv::errc::storage_failed);
    CHECK(sv::detail::storage_failure(sv::errc::invalid_request).value() == static_cast<int>(sv::errc::storage_failed));
    CHECK(sv::detail::storage_failure(full) == full);
}

TEST_CASE("errc converts into boost::system::error_code and result<T>", "[policies][errc]")
{
    boost::system::error_code boost_ec = make_error_code(sv::errc::timeout);
    CHECK(boost_ec.failed());
    CHECK(boost_ec.message() == "timed out");
    const std::error_code back = boost_ec;
    CHECK(back == sv::errc::timeout);
    CHECK(&back.category() == &sv::error_category());

    sv::result<int> value = 7;
    REQUIRE(value.has_value());
    CHECK(*value == 7);

    sv::result<int> failed{make_error_code(sv::errc::storage_failed)};
    REQUIRE_FALSE(failed.has_value());
    CHECK(std::error_code(failed.error()) == sv::errc::storage_failed);

    // As the transport concept's example writes it: return an errc from a result-returning function.
    auto send = []() -> sv::result<sv::http_response> { return sv::errc::connection_failed; };
    auto r = send();
    REQUIRE_FALSE(r.has_value());
    CHECK(std::error_code(r.error()) == sv::errc::connection_failed);
    CHECK(r.error().message() == "connection failed");
}

// ================================================================================================
// Small vocabulary helpers
// ================================================================================================

TEST_CASE("http methods print and parse", "[policies][action]")
{
    for (auto m : {sv::http_method::get, sv::http_method::head, sv::http_method::post, sv::http_method::put,
                   sv::http_method::patch, sv::http_method::delete_})
        CHECK(sv::method_from_string(sv::to_string(m)) == m);
    CHECK(sv::to_string(sv::http_method::delete_) == "DELETE");
    CHECK_FALSE(sv::method_from_string("delete").has_value());
    CHECK_FALSE(sv::method_from_string("TRACE").has_value());
}

TEST_CASE("header names compare case-insensitively", "[policies][action]")
{
    CHECK(sv::header_name_equals("Idempotency-Key", "idempotency-key"));
    CHECK_FALSE(sv::header_name_equals("Idempotency-Key", "Idempotency-Keys"));
    CHECK_FALSE(sv::header_name_equals("a", "b"));
    const std::vector<sv::header> headers{{"X-A", "1"}, {"x-a", "2"}, {"X-B", "3"}};
    CHECK(sv::find_header(headers, "x-A") == "1");  // the first wins
    CHECK_FALSE(sv::find_header(headers, "X-C").has_value());
}

TEST_CASE("subscription cancels exactly once, and moves", "[policies][subscription]")
{
    int cancelled = 0;
    {
        sv::subscription s{[&] { ++cancelled; }};
        CHECK(static_cast<bool>(s));
        sv::subscription moved = std::move(s);
        CHECK_FALSE(static_cast<bool>(s));  // NOLINT(bugprone-use-after-move): moved-from is empty
        CHECK(cancelled == 0);
        sv::subscription assigned;
        CHECK_FALSE(static_cast<bool>(assigned));
        assigned = std::move(moved);
        CHECK(cancelled == 0);
        assigned.reset();
        CHECK(cancelled == 1);
        assigned.reset();
        CHECK(cancelled == 1);
    }
    CHECK(cancelled == 1);

    int first = 0, second = 0;
    sv::subscription a{[&] { ++first; }};
    a = sv::subscription{[&] { ++second; }};  // assigning over a live one cancels it
    CHECK(first == 1);
    CHECK(second == 0);
}

TEST_CASE("make_uuid_v4 makes distinct version 4 UUIDs", "[policies][uuid]")
{
    std::set<std::string> seen;
    for (int i = 0; i < 1'000; ++i) {
        const auto id = sv::detail::make_uuid_v4();
        REQUIRE(id.size() == 36);
        CHECK(id[8] == '-');
        CHECK(id[13] == '-');
        CHECK(id[14] == '4');                                                    // version
        CHECK(std::string_view{"89ab"}.find(id[19]) != std::string_view::npos);  // RFC 4122 variant
        CHECK(id.find_first_not_of("0123456789abcdef-") == std::string::npos);
        seen.insert(id);
    }
    CHECK(seen.size() == 1'000);
}
