#ifndef SYNCVAULT_DETAIL_JOURNAL_FORMAT_HPP
#define SYNCVAULT_DETAIL_JOURNAL_FORMAT_HPP

// The bytes of a file_journal.
//
//   file   := magic record*
//   magic  := "SVJRNL01" (8 bytes)
//   record := crc:u32 length:u32 body[length]       little-endian; crc = CRC32C(length, body)
//   body   := 1 entry          put: insert, or update in place
//           | 2 id-bytes        remove
//           | 3                 clear
//           | 4 entry+          batch: all its puts or none (one record, one checksum)
//           | 5 id_len:u16 id progress              an attempt's bookkeeping (issue 17)
//   entry  := id_len:u16 id json_len:u32 json        json = detail::serialize_action
//           | id_len:u16 id (json_len | 1<<31):u32 json body_len:u32 body      (a raw body)
//   progress := attempts:u32 next:i64 status:i32 error:i32 answered:u32     (24 bytes)
//
// A progress record overrides those five fields of the action's newest put, so recording an
// attempt writes 24 bytes instead of the whole action with its body; a put supersedes it.
// A raw-body entry (every entry written since issue 17) holds the body's bytes after the JSON,
// whose "body" is "": saving escapes nothing, and reading a body back before an attempt, or
// opening a journal, parses no body. Entries with the body in the JSON still read as before.
// The checksum covers the length, so a damaged length is caught like damaged content. An entry
// carries its id ahead of the JSON so that opening a journal builds its index without parsing
// JSON, and compaction copies entries verbatim into fresh records.

#include <syncvault/detail/crc32c.hpp>
#include <syncvault/detail/record_limits.hpp>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace syncvault::detail {

inline constexpr char journal_magic[8] = {'S', 'V', 'J', 'R', 'N', 'L', '0', '1'};
inline constexpr std::size_t journal_magic_size = sizeof journal_magic;
inline constexpr std::size_t journal_header_size = 8;        // crc + length
inline constexpr std::uint32_t journal_max_body = 1u << 30;  // larger lengths are damage
inline constexpr std::size_t journal_max_id = 0xFFFF;

enum class journal_op : unsigned char { put = 1, remove = 2, clear = 3, batch = 4, progress = 5 };
inline constexpr unsigned char journal_last_op = 5;

inline void journal_put_u16(char* p, std::uint16_t v) noexcept
{
    p[0] = static_cast<char>(v & 0xFF);
    p[1] = static_cast<char>(v >> 8);
}

inline void journal_put_u32(char* p, std::uint32_t v) noexcept
{
    for (int i = 0; i < 4; ++i) p[i] = static_cast<char>((v >> (8 * i)) & 0xFF);
}

inline std::uint16_t journal_get_u16(const char* p) noexcept
{
    return static_cast<std::uint16_t>(static_cast<unsigned char>(p[0]) |
                                      (static_cast<unsigned char>(p[1]) << 8));
}

inline std::uint32_t journal_get_u32(const char* p) noexcept
{
    std::uint32_t v = 0;
    for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
    return v;
}

/** Size of the entry holding `id` and `json`. */
inline std::size_t journal_entry_size(std::size_t id_size, std::size_t json_size) noexcept
{
    return 2 + id_size + 4 + json_size;
}

/** Marks a json_len whose entry has a raw body after the JSON. */
inline constexpr std::uint32_t journal_raw_body_flag = 0x80000000u;

/** Size of the entry holding `id`, `json` and a raw body of `body_size` bytes. */
inline std::size_t journal_raw_entry_size(std::size_t id_size, std::size_t json_size, std::size_t body_size) noexcept
{
    return journal_entry_size(id_size, json_size) + 4 + body_size;
}

/** Appends an entry to `out`. The caller checked `id.size() <= journal_max_id`. */
inline void journal_append_entry(std::string& out, std::string_view id, std::string_view json)
{
    const std::size_t at = out.size();
    out.resize(at + journal_entry_size(id.size(), json.size()));
    char* p = out.data() + at;
    journal_put_u16(p, static_cast<std::uint16_t>(id.size()));
    std::memcpy(p + 2, id.data(), id.size());
    journal_put_u32(p + 2 + id.size(), static_cast<std::uint32_t>(json.size()));
    std::memcpy(p + 6 + id.size(), json.data(), json.size());
}

/**
 * Appends an entry with a raw body (`json` holds `"body":""`). The caller checked the id's size
 * and that the record stays under journal_max_body.
 */
inline void journal_append_raw_entry(std::string& out, std::string_view id, std::string_view json, std::string_view body)
{
    const std::size_t at = out.size();
    out.reserve(at + journal_raw_entry_size(id.size(), json.size(), body.size()));
    journal_append_entry(out, id, json);
    journal_put_u32(out.data() + at + 2 + id.size(), static_cast<std::uint32_t>(json.size()) | journal_raw_body_flag);
    char len[4];
    journal_put_u32(len, static_cast<std::uint32_t>(body.size()));
    out.append(len, sizeof len);
    out.append(body);
}

/** Starts a record in `out`: header space and the op byte. Finish it with `journal_seal`. */
inline std::size_t journal_begin(std::string& out, journal_op op)
{
    const std::size_t at = out.size();
    out.resize(at + journal_header_size + 1);
    out[at + journal_header_size] = static_cast<char>(op);
    return at;
}

/** Fills in the length and checksum of the record begun at `at`, which runs to `out`'s end. */
inline void journal_seal(std::string& out, std::size_t at) noexcept
{
    char* p = out.data() + at;
    const auto body = static_cast<std::uint32_t>(out.size() - at - journal_header_size);
    journal_put_u32(p + 4, body);
    journal_put_u32(p, crc32c(p + 4, 4 + std::size_t{body}));
}

/** What a progress record holds: the fields an attempt changes. */
struct journal_progress {
    std::int32_t attempts = 0;
    std::int64_t next_ms = 0;  // milliseconds since the Unix epoch
    std::int32_t status = 0, error = 0, answered = 0;
};
inline constexpr std::size_t journal_progress_size = 24;

/** Appends a progress record's content (after the op byte) to `out`. */
inline void journal_append_progress(std::string& out, std::string_view id, const journal_progress& p)
{
    const std::size_t at = out.size();
    out.resize(at + 2 + id.size() + journal_progress_size);
    char* q = out.data() + at;
    journal_put_u16(q, static_cast<std::uint16_t>(id.size()));
    std::memcpy(q + 2, id.data(), id.size());
    q += 2 + id.size();
    const auto next = static_cast<std::uint64_t>(p.next_ms);
    journal_put_u32(q, static_cast<std::uint32_t>(p.attempts));
    journal_put_u32(q + 4, static_cast<std::uint32_t>(next & 0xFFFFFFFFu));
    journal_put_u32(q + 8, static_cast<std::uint32_t>(next >> 32));
    journal_put_u32(q + 12, static_cast<std::uint32_t>(p.status));
    journal_put_u32(q + 16, static_cast<std::uint32_t>(p.error));
    journal_put_u32(q + 20, static_cast<std::uint32_t>(p.answered));
}

/**
 * Parses a progress record's content [p, p + n); false unless it is exactly one id and the
 * fields, with values a sync_action can hold (the checks decode_action makes).
 */
inline bool journal_parse_progress(const char* p, std::size_t n, std::string_view& id, journal_progress& out) noexcept
{
    if (n < 2) return false;
    const std::size_t id_size = journal_get_u16(p);
    if (n != 2 + id_size + journal_progress_size) return false;
    id = {p + 2, id_size};
    p += 2 + id_size;
    journal_progress v;
    v.attempts = static_cast<std::int32_t>(journal_get_u32(p));
    v.next_ms = static_cast<std::int64_t>(std::uint64_t{journal_get_u32(p + 4)} | std::uint64_t{journal_get_u32(p + 8)} << 32);
    v.status = static_cast<std::int32_t>(journal_get_u32(p + 12));
    v.error = static_cast<std::int32_t>(journal_get_u32(p + 16));
    v.answered = static_cast<std::int32_t>(journal_get_u32(p + 20));
    if (!record_limits::count_ok(v.attempts) || !record_limits::count_ok(v.answered) ||
        !record_limits::time_ok(v.next_ms))
        return false;
    out = v;
    return true;
}

/** A parsed entry: views into the buffer it was read from. */
struct journal_entry {
    std::string_view id, json;
    bool raw_body = false;  // the body is `body`, and the JSON's is ""
    std::string_view body;
    std::size_t size = 0;   // bytes the entry occupies
};

/** Parses the entry at the start of [p, p + n); false if it does not fit. */
inline bool journal_parse_entry(const char* p, std::size_t n, journal_entry& e) noexcept
{
    if (n < 2) return false;
    const std::size_t id_size = journal_get_u16(p);
    if (n < 6 + id_size) return false;
    const std::uint32_t json_field = journal_get_u32(p + 2 + id_size);
    const std::size_t json_size = json_field & ~journal_raw_body_flag;
    std::size_t left = n - 6 - id_size;
    if (left < json_size) return false;
    e.id = {p + 2, id_size};
    e.json = {p + 6 + id_size, json_size};
    e.size = 6 + id_size + json_size;
    e.raw_body = (json_field & journal_raw_body_flag) != 0;
    e.body = {};
    if (!e.raw_body) return true;
    left -= json_size;
    if (left < 4) return false;
    const std::size_t body_size = journal_get_u32(p + e.size);
    if (left - 4 < body_size) return false;
    e.body = {p + e.size + 4, body_size};
    e.size += 4 + body_size;
    return true;
}

} // namespace syncvault::detail

#endif
