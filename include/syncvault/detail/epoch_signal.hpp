#ifndef SYNCVAULT_DETAIL_EPOCH_SIGNAL_HPP
#define SYNCVAULT_DETAIL_EPOCH_SIGNAL_HPP

// A counter that threads wait on until it moves past the value they saw: file_journal's group
// commit wakes the inserters a finished sync covered with it, without its main mutex.
//
// std::atomic::wait where the standard library builds it on the OS's address wait (a futex on
// Linux and Android, __ulock on Apple, WaitOnAddress with MSVC). libstdc++ on Windows (MinGW)
// has none and emulates it; under Wine that emulation was seen to hang a waiter whose value had
// moved (CI, issue 17), so there the counter is guarded by a mutex and a condition variable.

#include <atomic>
#include <cstdint>

// (Defining SYNCVAULT_EPOCH_SIGNAL_CONDVAR elsewhere selects it too, to test it.)
#if defined(_WIN32) && defined(__GLIBCXX__) && !defined(SYNCVAULT_EPOCH_SIGNAL_CONDVAR)
#define SYNCVAULT_EPOCH_SIGNAL_CONDVAR 1
#endif
#ifdef SYNCVAULT_EPOCH_SIGNAL_CONDVAR
#include <condition_variable>
#include <mutex>
#endif

namespace syncvault::detail {

class epoch_signal {
public:
    std::uint32_t load() const noexcept { return value_.load(); }

    /** Returns once the counter is no longer `seen` (at once if it already moved). */
    void wait(std::uint32_t seen)
    {
#ifdef SYNCVAULT_EPOCH_SIGNAL_CONDVAR
        std::unique_lock lock(mutex_);
        changed_.wait(lock, [&] { return value_.load() != seen; });
#else
        value_.wait(seen);
#endif
    }

    /** Moves the counter on and wakes every waiter. */
    void advance()
    {
#ifdef SYNCVAULT_EPOCH_SIGNAL_CONDVAR
        {
            std::lock_guard lock(mutex_);  // a waiter between its check and its sleep still hears it
            value_.fetch_add(1);
        }
        changed_.notify_all();
#else
        value_.fetch_add(1);
        value_.notify_all();
#endif
    }

private:
    std::atomic<std::uint32_t> value_{0};
#ifdef SYNCVAULT_EPOCH_SIGNAL_CONDVAR
    std::mutex mutex_;
    std::condition_variable changed_;
#endif
};

} // namespace syncvault::detail

#endif
