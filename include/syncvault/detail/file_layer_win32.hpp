#ifndef SYNCVAULT_DETAIL_FILE_LAYER_WIN32_HPP
#define SYNCVAULT_DETAIL_FILE_LAYER_WIN32_HPP

// syncvault-platform: win32
// The file layer (detail/file_layer.hpp) on Windows (MSVC, MinGW-w64). Include
// detail/file_layer.hpp, not this header. Like Boost.Asio, it defines WIN32_LEAN_AND_MEAN and
// NOMINMAX before <windows.h> unless told otherwise.
//
// Every file is opened with FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, so a file
// can be replaced or removed while other handles (a reader on another thread) still have it,
// as on POSIX; exclusion between journals is the lock's job, not the share mode's.
//
// Owner-only files: a file this layer creates gets a protected DACL with one entry, full access
// for the user the process runs as (SDDL "D:P(A;;FA;;;<user SID>)"): no inherited entries, no
// access for other users or groups. (Administrators can still take ownership, as root can read
// a 0600 file on POSIX.) The directory itself keeps the ACL it inherits.

#include <syncvault/detail/file_handle.hpp>

#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#ifndef NOMINMAX
#define NOMINMAX
#endif
#include <windows.h>

#include <sddl.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <system_error>
#include <vector>

namespace syncvault::detail {

struct win32_file_traits {
    using native = HANDLE;
    static native invalid() noexcept { return INVALID_HANDLE_VALUE; }
    static void close(native h) noexcept { ::CloseHandle(h); }
};

/** A Win32 file handle, and an owned one (see detail/file_layer.hpp). */
using native_file = HANDLE;
using file_handle = basic_file_handle<win32_file_traits>;

/** The file layer in use, for logs and tests. */
inline constexpr const char* file_layer_name = "win32";

inline std::error_code file_last_error() noexcept
{
    return {static_cast<int>(::GetLastError()), std::system_category()};
}

/**
 * The security attributes of an owner-only file: a protected DACL granting the process's user
 * full access and nobody else anything. Built once; an error if the user cannot be found.
 */
inline std::error_code owner_only_attributes(SECURITY_ATTRIBUTES& sa) noexcept
{
    struct local_free {
        void operator()(void* p) const noexcept { ::LocalFree(p); }
    };
    static std::unique_ptr<void, local_free> descriptor;
    static DWORD failure = 0;
    static std::once_flag once;
    std::call_once(once, [] {
        HANDLE token = nullptr;
        if (!::OpenProcessToken(::GetCurrentProcess(), TOKEN_QUERY, &token)) {
            failure = ::GetLastError();
            return;
        }
        DWORD size = 0;
        ::GetTokenInformation(token, TokenUser, nullptr, 0, &size);
        std::vector<unsigned char> buf(size ? size : 1);
        const bool got = ::GetTokenInformation(token, TokenUser, buf.data(), size, &size);
        if (!got) failure = ::GetLastError();
        ::CloseHandle(token);
        if (!got) return;
        LPWSTR sid = nullptr;
        if (!::ConvertSidToStringSidW(reinterpret_cast<TOKEN_USER*>(buf.data())->User.Sid, &sid)) {
            failure = ::GetLastError();
            return;
        }
        const std::wstring sddl = L"D:P(A;;FA;;;" + std::wstring(sid) + L")";
        ::LocalFree(sid);
        PSECURITY_DESCRIPTOR sd = nullptr;
        if (!::ConvertStringSecurityDescriptorToSecurityDescriptorW(sddl.c_str(), SDDL_REVISION_1, &sd, nullptr)) {
            failure = ::GetLastError();
            return;
        }
        descriptor.reset(sd);
    });
    if (!descriptor)
        return {static_cast<int>(failure ? failure : ERROR_INVALID_SECURITY_DESCR), std::system_category()};
    sa.nLength = sizeof sa;
    sa.lpSecurityDescriptor = descriptor.get();
    sa.bInheritHandle = FALSE;  // like O_CLOEXEC: child processes do not get the handle
    return {};
}

/**
 * Opens `path` read-write; a file it creates is owner-only. Other openers may read, write,
 * rename and delete it (the share mode), and need not share delete themselves (no DELETE
 * access here), so `std::ifstream` can read a journal while a vault has it open.
 */
inline std::error_code file_open(const std::filesystem::path& path, file_open_mode how, file_handle& out) noexcept
{
    SECURITY_ATTRIBUTES sa{};
    if (auto ec = owner_only_attributes(sa)) return ec;
    DWORD disposition = OPEN_EXISTING;
    switch (how) {
    case file_open_mode::create_new: disposition = CREATE_NEW; break;
    case file_open_mode::open_existing: disposition = OPEN_EXISTING; break;
    case file_open_mode::open_or_create: disposition = OPEN_ALWAYS; break;
    case file_open_mode::create_or_truncate: disposition = CREATE_ALWAYS; break;
    }
    HANDLE h = ::CreateFileW(path.c_str(), GENERIC_READ | GENERIC_WRITE,
                             FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, &sa, disposition,
                             FILE_ATTRIBUTE_NORMAL, nullptr);
    if (h == INVALID_HANDLE_VALUE) {
        const DWORD e = ::GetLastError();
        if (e == ERROR_FILE_EXISTS || e == ERROR_ALREADY_EXISTS) return std::make_error_code(std::errc::file_exists);
        if (e == ERROR_FILE_NOT_FOUND || e == ERROR_PATH_NOT_FOUND)
            return std::make_error_code(std::errc::no_such_file_or_directory);
        return {static_cast<int>(e), std::system_category()};
    }
    out = file_handle{h};
    return {};
}

/** Takes an exclusive lock without waiting (LockFileEx); `held` is set if another handle has it. */
inline std::error_code file_try_lock(native_file f, bool& held) noexcept
{
    held = false;
    OVERLAPPED at{};
    if (::LockFileEx(f, LOCKFILE_EXCLUSIVE_LOCK | LOCKFILE_FAIL_IMMEDIATELY, 0, MAXDWORD, MAXDWORD, &at)) return {};
    const DWORD e = ::GetLastError();
    if (e == ERROR_LOCK_VIOLATION || e == ERROR_SHARING_VIOLATION || e == ERROR_IO_PENDING) {
        held = true;
        return {};
    }
    return {static_cast<int>(e), std::system_category()};
}

inline OVERLAPPED file_position(std::uint64_t offset) noexcept
{
    OVERLAPPED o{};
    o.Offset = static_cast<DWORD>(offset & 0xffffffffu);
    o.OffsetHigh = static_cast<DWORD>(offset >> 32);
    return o;
}

/** Writes all of `data` at `offset`; an error leaves an unknown prefix written. */
inline std::error_code file_pwrite(native_file f, const char* data, std::size_t size, std::uint64_t offset) noexcept
{
    while (size > 0) {
        const DWORD want = static_cast<DWORD>(size < (std::size_t{1} << 30) ? size : (std::size_t{1} << 30));
        OVERLAPPED at = file_position(offset);
        DWORD n = 0;
        if (!::WriteFile(f, data, want, &n, &at)) {
            const DWORD e = ::GetLastError();
            if (e == ERROR_DISK_FULL || e == ERROR_HANDLE_DISK_FULL)
                return std::make_error_code(std::errc::no_space_on_device);
            return {static_cast<int>(e), std::system_category()};
        }
        if (n == 0) return std::make_error_code(std::errc::no_space_on_device);
        data += n;
        size -= n;
        offset += n;
    }
    return {};
}

/** Reads up to `size` bytes at `offset`, stopping early only at end of file. */
inline std::error_code file_pread(native_file f, char* data, std::size_t size, std::uint64_t offset,
                                  std::size_t& got) noexcept
{
    got = 0;
    while (got < size) {
        const std::size_t left = size - got;
        const DWORD want = static_cast<DWORD>(left < (std::size_t{1} << 30) ? left : (std::size_t{1} << 30));
        OVERLAPPED at = file_position(offset + got);
        DWORD n = 0;
        if (!::ReadFile(f, data + got, want, &n, &at)) {
            const DWORD e = ::GetLastError();
            if (e == ERROR_HANDLE_EOF) break;
            return {static_cast<int>(e), std::system_category()};
        }
        if (n == 0) break;
        got += n;
    }
    return {};
}

inline std::error_code file_size(native_file f, std::uint64_t& size) noexcept
{
    LARGE_INTEGER n{};
    if (!::GetFileSizeEx(f, &n)) return file_last_error();
    size = static_cast<std::uint64_t>(n.QuadPart);
    return {};
}

inline std::error_code file_truncate(native_file f, std::uint64_t size) noexcept
{
    FILE_END_OF_FILE_INFO eof{};
    eof.EndOfFile.QuadPart = static_cast<LONGLONG>(size);
    if (!::SetFileInformationByHandle(f, FileEndOfFileInfo, &eof, sizeof eof)) return file_last_error();
    return {};
}

/** The file's data and metadata reach the disk (FlushFileBuffers). */
inline std::error_code file_sync(native_file f) noexcept
{
    if (!::FlushFileBuffers(f)) return file_last_error();
    return {};
}

/**
 * Where file_replace's fallback keeps the old `to` for a moment: `to` + ".replaced" (or
 * ".replaced-<i>" while an older one waits for its last reader to close it).
 */
inline std::filesystem::path file_replaced_name(const std::filesystem::path& to, int i)
{
    auto p = to;
    p += ".replaced";
    if (i > 0) p += "-" + std::to_string(i);
    return p;
}

inline constexpr int file_replaced_names = 16;

/**
 * Replaces `to` with `from` (which may be open: its handles keep working), so that a crash at
 * any moment leaves `to` either the old file or the new one (after file_finish_replace).
 *
 * First a rename by handle with POSIX semantics (FileRenameInfoEx: Windows 10 1607 and later,
 * NTFS), through a handle opened for it with DELETE access: one atomic step, which succeeds
 * while other handles have the old `to` open. Where that is refused (older Windows, FAT,
 * Wine 8), a plain replacing rename would fail while the old `to` is open
 * (ERROR_ACCESS_DENIED), and file_journal keeps it open; so the fallback renames the old file
 * away (to `to.replaced`, see file_replaced_name: allowed, as every handle this layer opens
 * shares delete), renames `from` to `to`, then deletes the old file (gone once its last handle
 * closes), each rename with MOVEFILE_WRITE_THROUGH. A crash between the two renames leaves no
 * `to`: file_finish_replace puts the old file back.
 */
inline std::error_code file_replace(const std::filesystem::path& from, const std::filesystem::path& to) noexcept
{
    // FILE_RENAME_INFO with its Windows 10 `Flags` member, spelled out so the layout does not
    // depend on _WIN32_WINNT.
    struct rename_info_ex {
        DWORD flags;
        HANDLE root;
        DWORD name_bytes;
        WCHAR name[1];
    };
    constexpr auto file_rename_info_ex = static_cast<FILE_INFO_BY_HANDLE_CLASS>(22);  // FileRenameInfoEx
    constexpr DWORD replace_if_exists = 0x1, posix_semantics = 0x2;

    try {
        const std::filesystem::path target = std::filesystem::absolute(to);
        const std::wstring& name = target.native();
        const std::size_t bytes = name.size() * sizeof(WCHAR);
        std::vector<unsigned char> buf(sizeof(rename_info_ex) + bytes);
        auto* info = reinterpret_cast<rename_info_ex*>(buf.data());
        info->flags = replace_if_exists | posix_semantics;
        info->root = nullptr;
        info->name_bytes = static_cast<DWORD>(bytes);
        std::memcpy(info->name, name.data(), bytes);
        HANDLE h =
            ::CreateFileW(from.c_str(), DELETE | SYNCHRONIZE, FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE,
                          nullptr, OPEN_EXISTING, FILE_ATTRIBUTE_NORMAL, nullptr);
        if (h != INVALID_HANDLE_VALUE) {
            const BOOL renamed =
                ::SetFileInformationByHandle(h, file_rename_info_ex, info, static_cast<DWORD>(buf.size()));
            ::CloseHandle(h);
            if (renamed) return {};
        }
    } catch (...) {  // std::filesystem::absolute or the buffer: try the fallback
    }

    // A free name for the old file: a previous replace's old file is normally gone, and stays
    // (delete pending) only while a handle has it.
    for (int i = 0; i < file_replaced_names; ++i) {
        const std::filesystem::path old = file_replaced_name(to, i);
        if (!::DeleteFileW(old.c_str()) && ::GetLastError() != ERROR_FILE_NOT_FOUND) continue;
        if (!::MoveFileExW(to.c_str(), old.c_str(), MOVEFILE_WRITE_THROUGH)) {
            const DWORD e = ::GetLastError();
            if (e == ERROR_ALREADY_EXISTS || e == ERROR_FILE_EXISTS || e == ERROR_ACCESS_DENIED) continue;
            if (e != ERROR_FILE_NOT_FOUND) return {static_cast<int>(e), std::system_category()};
        }
        if (!::MoveFileExW(from.c_str(), to.c_str(), MOVEFILE_WRITE_THROUGH)) {
            const auto ec = file_last_error();
            ::MoveFileExW(old.c_str(), to.c_str(), MOVEFILE_WRITE_THROUGH);  // put the old file back
            return ec;
        }
        ::DeleteFileW(old.c_str());  // pending until readers of the old file close it
        return {};
    }
    return std::make_error_code(std::errc::device_or_resource_busy);  // every name still held
}

/**
 * Finishes a file_replace cut short by a crash, before `to` is opened: with no `to` but a
 * `to.replaced`, the old file goes back (the new one was never in place); with both, the old one
 * is deleted.
 */
inline std::error_code file_finish_replace(const std::filesystem::path& to) noexcept
{
    // After a crash no handle is left, so no old file is pending deletion: at most one remains.
    bool have_to = true;
    if (::GetFileAttributesW(to.c_str()) == INVALID_FILE_ATTRIBUTES) {
        const DWORD e = ::GetLastError();
        if (e != ERROR_FILE_NOT_FOUND) return {static_cast<int>(e), std::system_category()};
        have_to = false;
    }
    for (int i = 0; i < file_replaced_names; ++i) {
        const std::filesystem::path old = file_replaced_name(to, i);
        if (!have_to) {
            if (::MoveFileExW(old.c_str(), to.c_str(), MOVEFILE_WRITE_THROUGH))
                have_to = true;
            else if (::GetLastError() != ERROR_FILE_NOT_FOUND)
                return file_last_error();
        } else if (!::DeleteFileW(old.c_str()) && ::GetLastError() != ERROR_FILE_NOT_FOUND) {
            return file_last_error();
        }
    }
    return {};
}

/** Removes `path`; a missing file is not an error. */
inline std::error_code file_remove(const std::filesystem::path& path) noexcept
{
    if (!::DeleteFileW(path.c_str())) {
        const DWORD e = ::GetLastError();
        if (e != ERROR_FILE_NOT_FOUND && e != ERROR_PATH_NOT_FOUND)
            return {static_cast<int>(e), std::system_category()};
    }
    return {};
}

/**
 * Nothing to do: Windows has no directory fsync. NTFS logs a file's name with its metadata,
 * committed by FlushFileBuffers on the file and by MOVEFILE_WRITE_THROUGH on a rename.
 */
inline std::error_code directory_sync(const std::filesystem::path&) noexcept
{
    return {};
}

}  // namespace syncvault::detail

#endif
