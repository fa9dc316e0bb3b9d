#ifndef SYNCVAULT_TESTS_SUPPORT_TEST_LATCH_HPP
#define SYNCVAULT_TESTS_SUPPORT_TEST_LATCH_HPP

// std::latch's interface on a mutex and a condition variable. libstdc++ 12 builds std::latch on
// std::atomic::wait, which it emulates on Windows (no futex); under MinGW + Wine that emulation
// hung a waiter now and then (about one run in ten), so the tests that also run there use this.

#include <condition_variable>
#include <cstddef>
#include <mutex>

namespace syncvault_tests {

class latch {
public:
    explicit latch(std::ptrdiff_t expected) : left_(expected) {}
    latch(const latch&) = delete;
    latch& operator=(const latch&) = delete;

    void count_down(std::ptrdiff_t n = 1)
    {
        std::lock_guard lock(mutex_);
        left_ -= n;
        if (left_ <= 0) reached_.notify_all();
    }

    void wait()
    {
        std::unique_lock lock(mutex_);
        reached_.wait(lock, [&] { return left_ <= 0; });
    }

    void arrive_and_wait()
    {
        std::unique_lock lock(mutex_);
        if (--left_ <= 0) {
            reached_.notify_all();
            return;
        }
        reached_.wait(lock, [&] { return left_ <= 0; });
    }

private:
    std::mutex mutex_;
    std::condition_variable reached_;
    std::ptrdiff_t left_;
};

} // namespace syncvault_tests

#endif
