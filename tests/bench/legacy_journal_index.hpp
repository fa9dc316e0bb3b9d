#ifndef SYNCVAULT_BENCH_LEGACY_JOURNAL_INDEX_HPP
#define SYNCVAULT_BENCH_LEGACY_JOURNAL_INDEX_HPP

// The hand-written index file_journal used before boost::unordered_flat_map (issue 12), kept
// verbatim for storage_bench's side-by-side comparison only.
//
// file_journal's in-memory index: for each stored action, its id and where its entry lies in the
// file, in insertion order, plus an open-addressing table from id to position. The table holds
// 8-byte buckets (position and a 32-bit hash), so a probe rarely touches a string and growing
// never rehashes one: opening a journal of a million actions spends its time reading, not
// chasing hash-node pointers as std::unordered_map would. Removed actions leave tombstones in
// the order (removal is mostly at the front, FIFO); `sweep` drops them.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace syncvault_bench {

class legacy_journal_index {
public:
    /** One action; `len == 0` marks a tombstone (an entry is never empty). */
    struct slot {
        std::string id;
        std::uint64_t off;   // the entry's offset in the journal
        std::uint32_t len;   // the entry's size
        std::uint32_t hash;
    };
    static constexpr std::size_t npos = static_cast<std::size_t>(-1);

    std::size_t size() const noexcept { return live_; }
    std::vector<slot>& slots() noexcept { return slots_; }
    const std::vector<slot>& slots() const noexcept { return slots_; }

    /** Position of `id` in `slots()`, or npos. */
    std::size_t find(std::string_view id) const noexcept
    {
        const std::size_t b = bucket_of(id, hash(id));
        return b == npos ? npos : table_[b].pos;
    }

    /**
     * Inserts `id` at the end, or moves its entry in place. Returns the size of the entry it
     * replaced, 0 if it is new.
     */
    std::uint32_t put(std::string_view id, std::uint64_t off, std::uint32_t len)
    {
        const std::uint32_t h = hash(id);
        if (const std::size_t b = bucket_of(id, h); b != npos) {
            auto& s = slots_[table_[b].pos];
            const std::uint32_t old = s.len;
            s.off = off;
            s.len = len;
            return old;
        }
        if ((live_ + 1) * 4 > table_.size() * 3) rebuild(std::max<std::size_t>(64, table_.size() * 2));
        place(static_cast<std::uint32_t>(slots_.size()), h);
        slots_.push_back({std::string(id), off, len, h});
        ++live_;
        return 0;
    }

    /** Forgets `id`; returns its entry's size, 0 if it was not there. */
    std::uint32_t erase(std::string_view id)
    {
        std::size_t i = bucket_of(id, hash(id));
        if (i == npos) return 0;
        auto& s = slots_[table_[i].pos];
        const std::uint32_t old = s.len;
        s.len = 0;
        std::string().swap(s.id);
        --live_;
        // Backward-shift deletion keeps linear probing free of table tombstones.
        const std::size_t mask = table_.size() - 1;
        for (std::size_t j = (i + 1) & mask; table_[j].pos != empty; j = (j + 1) & mask) {
            const std::size_t home = table_[j].hash & mask;
            const bool stays = i <= j ? (i < home && home <= j) : (i < home || home <= j);
            if (!stays) {
                table_[i] = table_[j];
                i = j;
            }
        }
        table_[i] = {empty, 0};
        return old;
    }

    void clear() noexcept
    {
        slots_.clear();
        table_.assign(table_.size(), {empty, 0});
        live_ = 0;
    }

    /** file_journal asks before an insert; this comparison index promises nothing more. */
    void make_room(std::size_t) noexcept {}

    /** Tombstones in the order outnumber live entries (worth a `sweep`). */
    bool sparse() const noexcept { return slots_.size() >= 1024 && slots_.size() >= 2 * live_; }

    /** Drops tombstones from the order; positions change. */
    void sweep()
    {
        std::size_t j = 0;
        for (std::size_t p = 0; p < slots_.size(); ++p)
            if (slots_[p].len) {
                if (p != j) slots_[j] = std::move(slots_[p]);  // never self-move a string
                ++j;
            }
        slots_.resize(j);
        if (slots_.capacity() > 4 * j + 1024) slots_.shrink_to_fit();
        rebuild(table_.size());
    }

private:
    struct bucket {
        std::uint32_t pos;   // position in slots_, or `empty`
        std::uint32_t hash;
    };
    static constexpr std::uint32_t empty = 0xFFFFFFFFu;

    static std::uint32_t hash(std::string_view id) noexcept
    {
        const std::uint64_t h = std::hash<std::string_view>{}(id);
        return static_cast<std::uint32_t>(h ^ (h >> 32));
    }

    std::size_t bucket_of(std::string_view id, std::uint32_t h) const noexcept
    {
        if (table_.empty()) return npos;
        const std::size_t mask = table_.size() - 1;
        for (std::size_t i = h & mask;; i = (i + 1) & mask) {
            const auto& b = table_[i];
            if (b.pos == empty) return npos;
            if (b.hash == h && slots_[b.pos].id == id) return i;
        }
    }

    void place(std::uint32_t pos, std::uint32_t h) noexcept
    {
        const std::size_t mask = table_.size() - 1;
        std::size_t i = h & mask;
        while (table_[i].pos != empty) i = (i + 1) & mask;
        table_[i] = {pos, h};
    }

    void rebuild(std::size_t buckets)
    {
        while (buckets > 64 && live_ * 4 < buckets) buckets /= 2;  // shrink after mass removal
        table_.assign(buckets, {empty, 0});
        for (std::size_t p = 0; p < slots_.size(); ++p)
            if (slots_[p].len) place(static_cast<std::uint32_t>(p), slots_[p].hash);
    }

    std::vector<slot> slots_;
    std::vector<bucket> table_;  // a power of two, at most 3/4 full
    std::size_t live_ = 0;       // live slots, and occupied buckets
};

} // namespace syncvault_bench

#endif
