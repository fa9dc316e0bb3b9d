#ifndef SYNCVAULT_DETAIL_CRC32C_HPP
#define SYNCVAULT_DETAIL_CRC32C_HPP

// CRC32C (Castagnoli), the checksum of file_journal's records. Boost.CRC defines it and is the
// portable path; on x86-64 with SSE4.2 the crc32 instruction computes the same value about ten
// times faster, which matters when a journal of a million records is checked on open.

#include <boost/crc.hpp>

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace syncvault::detail {

using crc32c_type = boost::crc_optimal<32, 0x1EDC6F41, 0xFFFFFFFF, 0xFFFFFFFF, true, true>;

/** CRC32C of `size` bytes, Boost.CRC only (the reference the fast path is tested against). */
inline std::uint32_t crc32c_portable(const void* data, std::size_t size) noexcept
{
    crc32c_type crc;
    crc.process_bytes(data, size);
    return crc.checksum();
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define SYNCVAULT_CRC32C_HW 1
__attribute__((target("sse4.2"))) inline std::uint32_t crc32c_sse42(const void* data,
                                                                    std::size_t size) noexcept
{
    const auto* p = static_cast<const unsigned char*>(data);
    std::uint64_t crc = 0xFFFFFFFFu;
    for (; size >= 8; p += 8, size -= 8) {
        std::uint64_t word;
        std::memcpy(&word, p, 8);
        crc = __builtin_ia32_crc32di(crc, word);
    }
    auto c = static_cast<std::uint32_t>(crc);
    for (; size > 0; ++p, --size) c = __builtin_ia32_crc32qi(c, *p);
    return c ^ 0xFFFFFFFFu;
}
#endif

/** CRC32C of `size` bytes. */
inline std::uint32_t crc32c(const void* data, std::size_t size) noexcept
{
#ifdef SYNCVAULT_CRC32C_HW
    static const bool hw = __builtin_cpu_supports("sse4.2");
    if (hw) return crc32c_sse42(data, size);
#endif
    return crc32c_portable(data, size);
}

} // namespace syncvault::detail

#endif
