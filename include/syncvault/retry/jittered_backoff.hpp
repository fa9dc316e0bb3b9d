#ifndef SYNCVAULT_RETRY_JITTERED_BACKOFF_HPP
#define SYNCVAULT_RETRY_JITTERED_BACKOFF_HPP

/**
 * @file
 * `jittered_backoff`: exponential backoff with jitter, the retry policy `vault` uses.
 *
 * With `ceiling(n) = min(cap, base * 2^n)` for retry `n` (0 for the first retry):
 * | jitter         | delay |
 * |---|---|
 * | `full` (default) | `uniform(0, ceiling(n))` |
 * | `equal`        | `ceiling(n)/2 + uniform(0, ceiling(n)/2)` |
 * | `decorrelated` | `min(cap, uniform(base, 3 * previous))`, `previous` starting at `base` |
 * | `none`         | `ceiling(n)` |
 *
 * The random engine is seeded from `options::seed`, so a schedule is reproducible in tests (the
 * same standard library gives the same numbers). Classification is SPEC's retry table
 * (`classify_outcome`).
 */

#include <syncvault/concepts/retry_policy.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <random>
#include <stdexcept>

namespace syncvault {

class jittered_backoff {
public:
    enum class jitter { full, equal, decorrelated, none };

    struct options {
        std::chrono::milliseconds base{1'000};
        std::chrono::milliseconds cap{5 * 60 * 1'000};
        jitter kind = jitter::full;
        std::uint64_t seed = std::random_device{}();
    };

    jittered_backoff() : jittered_backoff(options{}) {}

    /** Throws `std::invalid_argument` naming the field when `base` or `cap` is unusable. */
    explicit jittered_backoff(options o) : options_(o), random_(o.seed), previous_(o.base)
    {
        if (o.base.count() <= 0) throw std::invalid_argument("jittered_backoff: base must be > 0");
        if (o.cap < o.base) throw std::invalid_argument("jittered_backoff: cap must be >= base");
    }

    outcome_kind classify(const result<http_response>& outcome) const noexcept
    {
        return classify_outcome(outcome);
    }

    std::chrono::milliseconds delay(int retry)
    {
        using ms = std::chrono::milliseconds;
        const auto ceiling = ceiling_for(retry);
        switch (options_.kind) {
        case jitter::full: return ms{uniform(0, ceiling.count())};
        case jitter::equal: return ms{ceiling.count() / 2 + uniform(0, ceiling.count() - ceiling.count() / 2)};
        case jitter::decorrelated: {
            if (retry <= 0) previous_ = options_.base;
            const auto high = std::max(options_.base.count(), std::min(options_.cap.count() / 3, previous_.count()) * 3);
            previous_ = std::min(options_.cap, ms{uniform(options_.base.count(), high)});
            return previous_;
        }
        case jitter::none: return ceiling;
        }
        return ceiling;
    }

    std::chrono::milliseconds max_delay() const noexcept { return options_.cap; }
    const options& settings() const noexcept { return options_; }

private:
    std::chrono::milliseconds ceiling_for(int retry) const noexcept
    {
        // base * 2^n without overflow: stop doubling once past the cap.
        auto value = options_.base;
        for (int i = 0; i < retry && value < options_.cap; ++i)
            value = value > options_.cap / 2 ? options_.cap : value * 2;
        return std::min(value, options_.cap);
    }

    std::int64_t uniform(std::int64_t low, std::int64_t high)
    {
        return std::uniform_int_distribution<std::int64_t>{low, high}(random_);
    }

    options options_;
    std::mt19937_64 random_;
    std::chrono::milliseconds previous_;
};

static_assert(syncvault::retry_policy<jittered_backoff>);

} // namespace syncvault

#endif
