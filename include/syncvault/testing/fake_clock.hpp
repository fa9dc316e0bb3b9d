#ifndef SYNCVAULT_TESTING_FAKE_CLOCK_HPP
#define SYNCVAULT_TESTING_FAKE_CLOCK_HPP

/**
 * @file
 * `testing::fake_clock`: time that moves only when the test says so. Starts at
 * 2026-01-01T00:00:00Z, so persisted times and HTTP dates mean what they would with a real clock.
 * Copies share one time (it is a handle): keep one in the test and give one to the vault.
 */

#include <syncvault/concepts/clock.hpp>

#include <atomic>
#include <chrono>
#include <memory>

namespace syncvault::testing {

class fake_clock {
public:
    using time_point = std::chrono::system_clock::time_point;
    using duration = std::chrono::system_clock::duration;

    /** 2026-01-01T00:00:00Z. */
    static constexpr time_point epoch()
    {
        return time_point{std::chrono::sys_days{std::chrono::year{2026} / 1 / 1}.time_since_epoch()};
    }

    fake_clock() : now_(std::make_shared<std::atomic<time_point>>(epoch())) {}
    explicit fake_clock(time_point start) : now_(std::make_shared<std::atomic<time_point>>(start)) {}

    time_point now() const noexcept { return now_->load(); }

    /** Moves time forward (or back, with a negative `d`: wall clocks jump). */
    template <class Rep, class Period>
    void advance(std::chrono::duration<Rep, Period> d) noexcept
    {
        auto step = std::chrono::duration_cast<duration>(d);
        auto t = now_->load();
        while (!now_->compare_exchange_weak(t, t + step)) {}
    }

    void set(time_point t) noexcept { now_->store(t); }

private:
    std::shared_ptr<std::atomic<time_point>> now_;
};

static_assert(syncvault::clock<fake_clock>);

} // namespace syncvault::testing

#endif
