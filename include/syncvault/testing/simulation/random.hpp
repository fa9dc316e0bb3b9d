#ifndef SYNCVAULT_TESTING_SIMULATION_RANDOM_HPP
#define SYNCVAULT_TESTING_SIMULATION_RANDOM_HPP

/**
 * @file
 * The simulator's randomness and small pure helpers: `sim_random` (one seed, the same
 * schedule on every standard library), HTTP dates for `Retry-After`, the trace digest.
 */

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <span>
#include <string>
#include <string_view>

namespace syncvault::testing {

/**
 * The simulator's random numbers: xoshiro256** seeded through splitmix64. Its own generator and
 * its own range reduction (std's distributions differ between standard libraries), so a seed
 * means the same schedule everywhere.
 */
class sim_random {
public:
    explicit sim_random(std::uint64_t seed) noexcept
    {
        for (auto& s : s_) {
            seed += 0x9e3779b97f4a7c15ULL;
            std::uint64_t z = seed;
            z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
            z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
            s = z ^ (z >> 31);
        }
    }

    std::uint64_t next() noexcept
    {
        const std::uint64_t result = rotl(s_[1] * 5, 7) * 9;
        const std::uint64_t t = s_[1] << 17;
        s_[2] ^= s_[0];
        s_[3] ^= s_[1];
        s_[1] ^= s_[2];
        s_[0] ^= s_[3];
        s_[2] ^= t;
        s_[3] = rotl(s_[3], 45);
        return result;
    }

    /** Uniform in [0, n); 0 when n is 0. */
    std::uint64_t below(std::uint64_t n) noexcept { return n == 0 ? 0 : next() % n; }
    /** Uniform in [lo, hi]. */
    std::int64_t between(std::int64_t lo, std::int64_t hi) noexcept
    {
        return lo + static_cast<std::int64_t>(below(static_cast<std::uint64_t>(hi - lo) + 1));
    }
    /** True with probability `p`. */
    bool chance(double p) noexcept { return static_cast<double>(next() >> 11) * 0x1.0p-53 < p; }

    /** Index chosen with the given weights (none positive: 0). */
    std::size_t weighted(std::span<const unsigned> weights) noexcept
    {
        std::uint64_t total = 0;
        for (auto w : weights) total += w;
        auto x = below(total);
        for (std::size_t i = 0; i < weights.size(); ++i) {
            if (x < weights[i]) return i;
            x -= weights[i];
        }
        return 0;
    }

private:
    static std::uint64_t rotl(std::uint64_t x, int k) noexcept { return (x << k) | (x >> (64 - k)); }
    std::uint64_t s_[4]{};
};

/** `t` as an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), as servers write `Retry-After`. */
inline std::string format_http_date(std::chrono::system_clock::time_point t)
{
    using namespace std::chrono;
    static constexpr const char* days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static constexpr const char* months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                             "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    const auto secs = floor<seconds>(t);
    const auto day = floor<std::chrono::days>(secs);
    const year_month_day ymd{day};
    const hh_mm_ss hms{secs - day};
    char buf[64];
    std::snprintf(buf, sizeof buf, "%s, %02u %s %04d %02d:%02d:%02d GMT", days[weekday{day}.c_encoding()],
                  unsigned(ymd.day()), months[unsigned(ymd.month()) - 1], int(ymd.year()), int(hms.hours().count()),
                  int(hms.minutes().count()), int(hms.seconds().count()));
    return buf;
}

namespace detail {

/** FNV-1a over one trace line (the run digest). */
inline std::uint64_t fnv1a(std::uint64_t h, std::string_view s) noexcept
{
    for (unsigned char c : s) {
        h ^= c;
        h *= 0x100000001b3ULL;
    }
    return h ^ 0xff;  // line separator
}

}  // namespace detail

}  // namespace syncvault::testing

#endif
