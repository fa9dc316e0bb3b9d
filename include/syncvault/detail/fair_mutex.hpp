#ifndef SYNCVAULT_DETAIL_FAIR_MUTEX_HPP
#define SYNCVAULT_DETAIL_FAIR_MUTEX_HPP

// A ticket lock: threads get the lock in the order they asked for it. The vault serializes a
// transport that is not thread-safe with it, so a GET waits for at most the transfer in
// progress, never behind a whole drain that keeps re-taking a plain mutex.

#include <condition_variable>
#include <cstdint>
#include <mutex>

namespace syncvault::detail {

class fair_mutex {
public:
    void lock()
    {
        std::unique_lock l(mutex_);
        const auto ticket = next_++;
        turn_.wait(l, [&] { return serving_ == ticket; });
    }
    void unlock()
    {
        {
            std::lock_guard l(mutex_);
            ++serving_;
        }
        turn_.notify_all();
    }

private:
    std::mutex mutex_;
    std::condition_variable turn_;
    std::uint64_t next_ = 0, serving_ = 0;
};

} // namespace syncvault::detail

#endif
