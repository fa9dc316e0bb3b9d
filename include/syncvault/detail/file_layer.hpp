#ifndef SYNCVAULT_DETAIL_FILE_LAYER_HPP
#define SYNCVAULT_DETAIL_FILE_LAYER_HPP

// The file layer under file_journal: the few operations a crash-safe journal needs, with one
// implementation per platform family. The choice is made here and nowhere else.
//
//   file_handle                      an owned file (move-only; closed on destruction)
//   file_open(path, how, out)        read-write, close-on-exec / not inherited; a file it creates
//                                    is owner-only (POSIX 0600; Windows: a protected DACL that
//                                    grants the creating user alone full access)
//   file_try_lock(h, held)           exclusive, non-blocking lock on the whole file, released when
//                                    the handle closes or the process dies; `held` is true when
//                                    another handle, in this process or another, has it
//   file_pwrite / file_pread         whole-buffer positioned I/O (retries short counts and EINTR)
//   file_size, file_truncate
//   file_sync(h)                     the file's data and size reach the disk
//   file_replace(from, to)           atomically makes `from` be `to`, replacing it, while open
//                                    handles to either stay usable
//   file_finish_replace(to)          before opening `to`: completes or undoes a file_replace that a
//                                    crash cut short (only the Win32 fallback has two steps)
//   file_remove(path)                a missing file is not an error
//   directory_sync(dir)              the directory's entries (a created or renamed file) reach
//                                    the disk, where the platform has such a thing
//
// What each platform does:
//   POSIX (Linux glibc, Android bionic, macOS, iOS): detail/file_layer_posix.hpp.
//     Lock: flock(LOCK_EX | LOCK_NB) on its own lock file (per open file description, so a second
//     opener in the same process is refused too; available on bionic and Apple alike).
//     Sync: fdatasync; on Apple fcntl(F_FULLFSYNC), as fsync there leaves the data in the drive's
//     cache, falling back to fsync when the file system refuses F_FULLFSYNC (some network and
//     FUSE file systems answer ENOTSUP or EINVAL). Replace: rename(2). Directory sync: fsync of
//     the directory (F_FULLFSYNC on Apple, with the same fallback).
//   Windows (MSVC, MinGW-w64): detail/file_layer_win32.hpp.
//     Lock: LockFileEx(LOCKFILE_EXCLUSIVE_LOCK | LOCKFILE_FAIL_IMMEDIATELY). Sync:
//     FlushFileBuffers. Replace: SetFileInformationByHandle(FileRenameInfoEx) with POSIX
//     semantics (Windows 10 1607+, NTFS), one atomic step that replaces a file other handles
//     still have open; where refused (older Windows, FAT, Wine), MoveFileExW with
//     MOVEFILE_WRITE_THROUGH in two steps (old file aside, new file in), which
//     file_finish_replace completes or undoes after a crash. Directory sync: none (Windows has
//     no directory fsync; NTFS logs the name with the file's metadata, which FlushFileBuffers
//     and MOVEFILE_WRITE_THROUGH commit).

#if defined(_WIN32)
#include <syncvault/detail/file_layer_win32.hpp>
#else
#include <syncvault/detail/file_layer_posix.hpp>
#endif

#endif
