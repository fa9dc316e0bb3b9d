#ifndef SYNCVAULT_DETAIL_JOURNAL_IO_HPP
#define SYNCVAULT_DETAIL_JOURNAL_IO_HPP

// File plumbing for file_journal on top of the file layer (detail/file_layer.hpp, POSIX or
// Win32): the journal's names for its operations, and a windowed reader for scanning a journal
// without mapping it (mapped pages would count towards resident memory).

#include <syncvault/detail/file_layer.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <system_error>

namespace syncvault::detail {

/** An owned journal file; closed on destruction. */
using journal_fd = file_handle;

/** Writes all of `data` at `offset`; an error leaves an unknown prefix written. */
inline std::error_code journal_pwrite(native_file f, const char* data, std::size_t size,
                                      std::uint64_t offset) noexcept
{
    return file_pwrite(f, data, size, offset);
}

/** Reads up to `size` bytes at `offset`, stopping early only at end of file. */
inline std::error_code journal_pread(native_file f, char* data, std::size_t size, std::uint64_t offset,
                                     std::size_t& got) noexcept
{
    return file_pread(f, data, size, offset, got);
}

/** The file's data reach the disk (see detail/file_layer.hpp for each platform). */
inline std::error_code journal_datasync(native_file f) noexcept { return file_sync(f); }

/** Makes a directory's entries (a created or renamed file) durable, where the platform can. */
inline std::error_code journal_sync_dir(const std::filesystem::path& dir) noexcept { return directory_sync(dir); }

inline std::error_code journal_file_size(native_file f, std::uint64_t& size) noexcept
{
    return file_size(f, size);
}

/**
 * Reads a file through a window of at least `chunk` bytes. Cheap for forward scans (each refill
 * starts where the request starts); random requests cost one pread each.
 */
class journal_reader {
public:
    journal_reader(native_file file, std::uint64_t file_size, std::size_t chunk = 1u << 20)
        : file_(file), size_(file_size), chunk_(chunk)
    {
    }

    // Points `out` at bytes [offset, offset + n); `avail` says how many exist (fewer only where
    // the file ends). The pointer stays valid until the next call.
    std::error_code fetch(std::uint64_t offset, std::size_t n, const char*& out, std::size_t& avail)
    {
        if (offset < win_off_ || offset + n > win_off_ + win_len_) {
            // Read ahead a whole chunk when the request follows on from the window (a scan);
            // a far jump reads little, so scattered requests stay cheap.
            const bool following = win_len_ == 0 ||
                              (offset >= win_off_ && offset <= win_off_ + win_len_ + chunk_);
            const std::size_t ahead = following ? chunk_ : std::min<std::size_t>(chunk_, 16u << 10);
            const std::uint64_t left = offset < size_ ? size_ - offset : 0;
            const std::size_t want =
                static_cast<std::size_t>(std::min<std::uint64_t>(std::max(n, ahead), left));
            if (buf_.size() < want) buf_.resize(want);
            std::size_t got = 0;
            if (auto ec = journal_pread(file_, buf_.data(), want, offset, got)) return ec;
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
    native_file file_;
    std::uint64_t size_;
    std::size_t chunk_;
    std::string buf_;
    std::uint64_t win_off_ = 0;
    std::size_t win_len_ = 0;
};

} // namespace syncvault::detail

#endif
