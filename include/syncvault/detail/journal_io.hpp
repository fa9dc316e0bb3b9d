#ifndef SYNCVAULT_DETAIL_JOURNAL_IO_HPP
#define SYNCVAULT_DETAIL_JOURNAL_IO_HPP

// POSIX file plumbing for file_journal: an owning descriptor, whole-buffer pread/pwrite that
// retry on EINTR and short counts, fdatasync, directory fsync, and a windowed reader for
// scanning a journal without mapping it (mapped pages would count towards resident memory).

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <system_error>
#include <utility>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace syncvault::detail {

inline std::error_code journal_errno() noexcept { return {errno, std::system_category()}; }

/** An owned file descriptor; closed on destruction. */
class journal_fd {
public:
    journal_fd() = default;
    explicit journal_fd(int fd) noexcept : fd_(fd) {}
    journal_fd(journal_fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
    journal_fd& operator=(journal_fd&& o) noexcept
    {
        if (this != &o) {
            reset();
            fd_ = std::exchange(o.fd_, -1);
        }
        return *this;
    }
    journal_fd(const journal_fd&) = delete;
    journal_fd& operator=(const journal_fd&) = delete;
    ~journal_fd() { reset(); }

    int get() const noexcept { return fd_; }
    explicit operator bool() const noexcept { return fd_ >= 0; }
    void reset() noexcept
    {
        if (fd_ >= 0) ::close(fd_);
        fd_ = -1;
    }

private:
    int fd_ = -1;
};

/** Writes all of `data` at `offset`; an error leaves an unknown prefix written. */
inline std::error_code journal_pwrite(int fd, const char* data, std::size_t size,
                                      std::uint64_t offset) noexcept
{
    while (size > 0) {
        ssize_t n = ::pwrite(fd, data, size, static_cast<off_t>(offset));
        if (n < 0) {
            if (errno == EINTR) continue;
            return journal_errno();
        }
        if (n == 0) return std::make_error_code(std::errc::no_space_on_device);
        data += n;
        size -= static_cast<std::size_t>(n);
        offset += static_cast<std::uint64_t>(n);
    }
    return {};
}

/** Reads up to `size` bytes at `offset`, stopping early only at end of file. */
inline std::error_code journal_pread(int fd, char* data, std::size_t size, std::uint64_t offset,
                                     std::size_t& got) noexcept
{
    got = 0;
    while (got < size) {
        ssize_t n = ::pread(fd, data + got, size - got, static_cast<off_t>(offset + got));
        if (n < 0) {
            if (errno == EINTR) continue;
            return journal_errno();
        }
        if (n == 0) break;
        got += static_cast<std::size_t>(n);
    }
    return {};
}

inline std::error_code journal_datasync(int fd) noexcept
{
    while (::fdatasync(fd) != 0)
        if (errno != EINTR) return journal_errno();
    return {};
}

/** Makes a directory's entries (a created or renamed file) durable. */
inline std::error_code journal_sync_dir(const std::filesystem::path& dir) noexcept
{
    int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return journal_errno();
    journal_fd owner{fd};
    while (::fsync(fd) != 0)
        if (errno != EINTR) return journal_errno();
    return {};
}

inline std::error_code journal_file_size(int fd, std::uint64_t& size) noexcept
{
    struct stat st {};
    if (::fstat(fd, &st) != 0) return journal_errno();
    size = static_cast<std::uint64_t>(st.st_size);
    return {};
}

/**
 * Reads a file through a window of at least `chunk` bytes. Cheap for forward scans (each refill
 * starts where the request starts); random requests cost one pread each.
 */
class journal_reader {
public:
    journal_reader(int fd, std::uint64_t file_size, std::size_t chunk = 1u << 20)
        : fd_(fd), size_(file_size), chunk_(chunk)
    {
    }

    // Points `out` at bytes [offset, offset + n); `avail` says how many exist (fewer only where
    // the file ends). The pointer stays valid until the next call.
    std::error_code fetch(std::uint64_t offset, std::size_t n, const char*& out, std::size_t& avail)
    {
        if (offset < win_off_ || offset + n > win_off_ + win_len_) {
            // Read ahead a whole chunk when the request follows on from the window (a scan);
            // a far jump reads little, so scattered requests stay cheap.
            const bool near = win_len_ == 0 ||
                              (offset >= win_off_ && offset <= win_off_ + win_len_ + chunk_);
            const std::size_t ahead = near ? chunk_ : std::min<std::size_t>(chunk_, 16u << 10);
            const std::uint64_t left = offset < size_ ? size_ - offset : 0;
            const std::size_t want =
                static_cast<std::size_t>(std::min<std::uint64_t>(std::max(n, ahead), left));
            if (buf_.size() < want) buf_.resize(want);
            std::size_t got = 0;
            if (auto ec = journal_pread(fd_, buf_.data(), want, offset, got)) return ec;
            win_off_ = offset;
            win_len_ = got;
        }
        const std::uint64_t rel = offset - win_off_;
        out = buf_.data() + rel;
        avail = static_cast<std::size_t>(std::min<std::uint64_t>(n, win_len_ - rel));
        return {};
    }

    std::uint64_t size() const noexcept { return size_; }

private:
    int fd_;
    std::uint64_t size_;
    std::size_t chunk_;
    std::string buf_;
    std::uint64_t win_off_ = 0;
    std::size_t win_len_ = 0;
};

} // namespace syncvault::detail

#endif
