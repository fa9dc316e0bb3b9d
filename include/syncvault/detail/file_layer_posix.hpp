#ifndef SYNCVAULT_DETAIL_FILE_LAYER_POSIX_HPP
#define SYNCVAULT_DETAIL_FILE_LAYER_POSIX_HPP

// syncvault-platform: posix
// The file layer (detail/file_layer.hpp) on POSIX: Linux (glibc), Android (bionic), macOS, iOS.
// Include detail/file_layer.hpp, not this header.
//
// Android (bionic), reviewed, not built here (no NDK on the CI machine): flock, fdatasync,
// pread/pwrite, O_CLOEXEC and O_DIRECTORY exist from API level 16 on. flock is used rather than
// OFD locks (F_OFD_SETLK) because kernels older than 3.15 still ship on Android devices and
// answer EINVAL to OFD locks; flock has the per-open-file semantics we need everywhere. With a
// 32-bit off_t (32-bit Android before API 21 without _FILE_OFFSET_BITS=64) an offset past 2 GiB
// is refused with EFBIG instead of wrapping.
//
// Limits: flock on Linux NFS is emulated with per-process fcntl locks, so two openers in one
// process would not exclude each other there; keep journals on a local file system.

#include <syncvault/detail/file_handle.hpp>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <system_error>
#include <type_traits>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

namespace syncvault::detail {

struct posix_file_traits {
    using native = int;
    static constexpr native invalid() noexcept { return -1; }
    static void close(native fd) noexcept { ::close(fd); }
};

/** A file descriptor, and an owned one (see detail/file_layer.hpp). */
using native_file = int;
using file_handle = basic_file_handle<posix_file_traits>;

/** The file layer in use, for logs and tests. */
inline constexpr const char* file_layer_name = "posix";

inline std::error_code file_errno() noexcept
{
    return {errno, std::system_category()};
}

// An offset as off_t, or false if it does not fit (a 32-bit off_t).
inline bool file_offset(std::uint64_t offset, off_t& out) noexcept
{
    if (offset > static_cast<std::uint64_t>(std::numeric_limits<off_t>::max())) return false;
    out = static_cast<off_t>(offset);
    return true;
}

/** Opens `path` read-write; a file it creates is 0600 (less only if the umask says so). */
inline std::error_code file_open(const std::filesystem::path& path, file_open_mode how, file_handle& out) noexcept
{
    int flags = O_RDWR | O_CLOEXEC;
    switch (how) {
    case file_open_mode::create_new: flags |= O_CREAT | O_EXCL; break;
    case file_open_mode::open_existing: break;
    case file_open_mode::open_or_create: flags |= O_CREAT; break;
    case file_open_mode::create_or_truncate: flags |= O_CREAT | O_TRUNC; break;
    }
    int fd;
    do fd = ::open(path.c_str(), flags, 0600);
    while (fd < 0 && errno == EINTR);
    if (fd < 0) return file_errno();
    out = file_handle{fd};
    return {};
}

/** Takes an exclusive lock without waiting; `held` is set if another open file has it. */
inline std::error_code file_try_lock(native_file f, bool& held) noexcept
{
    held = false;
    while (::flock(f, LOCK_EX | LOCK_NB) != 0) {
        if (errno == EINTR) continue;
        if (errno == EWOULDBLOCK) {
            held = true;
            return {};
        }
        return file_errno();
    }
    return {};
}

/** Writes all of `data` at `offset`; an error leaves an unknown prefix written. */
inline std::error_code file_pwrite(native_file f, const char* data, std::size_t size, std::uint64_t offset) noexcept
{
    while (size > 0) {
        off_t at, last;
        if (!file_offset(offset, at) || !file_offset(offset + size, last))
            return std::make_error_code(std::errc::file_too_large);
        ssize_t n = ::pwrite(f, data, size, at);
        if (n < 0) {
            if (errno == EINTR) continue;
            return file_errno();
        }
        if (n == 0) return std::make_error_code(std::errc::no_space_on_device);
        data += n;
        size -= static_cast<std::size_t>(n);
        offset += static_cast<std::uint64_t>(n);
    }
    return {};
}

/** Reads up to `size` bytes at `offset`, stopping early only at end of file. */
inline std::error_code file_pread(native_file f, char* data, std::size_t size, std::uint64_t offset,
                                  std::size_t& got) noexcept
{
    got = 0;
    while (got < size) {
        off_t at;
        if (!file_offset(offset + got, at)) break;  // past what off_t reaches: nothing there
        ssize_t n = ::pread(f, data + got, size - got, at);
        if (n < 0) {
            if (errno == EINTR) continue;
            return file_errno();
        }
        if (n == 0) break;
        got += static_cast<std::size_t>(n);
    }
    return {};
}

inline std::error_code file_size(native_file f, std::uint64_t& size) noexcept
{
    struct stat st {};
    if (::fstat(f, &st) != 0) return file_errno();
    size = static_cast<std::uint64_t>(st.st_size);
    return {};
}

inline std::error_code file_truncate(native_file f, std::uint64_t size) noexcept
{
    off_t at;
    if (!file_offset(size, at)) return std::make_error_code(std::errc::file_too_large);
    while (::ftruncate(f, at) != 0)
        if (errno != EINTR) return file_errno();
    return {};
}

// fsync, or on Apple F_FULLFSYNC (fsync there stops at the drive's volatile cache), falling
// back to fsync where the file system does not support it. `data_only`: fdatasync is enough.
inline std::error_code file_sync_fd(int fd, [[maybe_unused]] bool data_only) noexcept
{
#if defined(__APPLE__)
    while (::fcntl(fd, F_FULLFSYNC) == -1) {
        if (errno == EINTR) continue;
        if (errno != ENOTSUP && errno != EOPNOTSUPP && errno != EINVAL && errno != ENOTTY) return file_errno();
        while (::fsync(fd) != 0)
            if (errno != EINTR) return file_errno();
        break;
    }
    return {};
#else
    while ((data_only ? ::fdatasync(fd) : ::fsync(fd)) != 0)
        if (errno != EINTR) return file_errno();
    return {};
#endif
}

/** The file's data (and its size) reach the disk: fdatasync; F_FULLFSYNC on Apple. */
inline std::error_code file_sync(native_file f) noexcept
{
    return file_sync_fd(f, true);
}

/**
 * Atomically replaces `to` with `from` (rename(2)). Handles open on either keep working; those on
 * the old `to` keep reading the old file.
 */
inline std::error_code file_replace(const std::filesystem::path& from, const std::filesystem::path& to) noexcept
{
    if (::rename(from.c_str(), to.c_str()) != 0) return file_errno();
    return {};
}

/** Nothing to finish: rename(2) replaces in one atomic step (see the Win32 layer). */
inline std::error_code file_finish_replace(const std::filesystem::path&) noexcept
{
    return {};
}

/** Removes `path`; a missing file is not an error. */
inline std::error_code file_remove(const std::filesystem::path& path) noexcept
{
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) return file_errno();
    return {};
}

/** Makes a directory's entries (a created or renamed file) durable. */
inline std::error_code directory_sync(const std::filesystem::path& dir) noexcept
{
    int fd;
    do fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    while (fd < 0 && errno == EINTR);
    if (fd < 0) return file_errno();
    file_handle owner{fd};
    return file_sync_fd(fd, false);
}

}  // namespace syncvault::detail

#endif
