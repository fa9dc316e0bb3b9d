#ifndef SYNCVAULT_BENCH_STRING_KEYED_INDEX_HPP
#define SYNCVAULT_BENCH_STRING_KEYED_INDEX_HPP

// The first boost::unordered_flat_map version of file_journal's index (issue 12): the map owns
// each id as a std::string key. Slower than the hand-written table it was to replace (growth
// rehashes every id string); kept for storage_bench's comparison only.
//
// file_journal's in-memory index: for each stored action, where its entry lies in the file, in
// insertion order (`slots`), and a map from id to position in that order. The map is
// boost::unordered_flat_map (open addressing, SIMD-probed groups, no node per element); it holds
// each id once, the slots hold none. Removed actions leave tombstones in the order (removal is
// mostly at the front, FIFO); `sweep` drops them and renumbers the map.

#include <boost/unordered/unordered_flat_map.hpp>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace syncvault_bench {

class string_keyed_index {
public:
    /** One action; `len == 0` marks a tombstone (an entry is never empty). */
    struct slot {
        std::uint64_t off;  // the entry's offset in the journal
        std::uint32_t len;  // the entry's size
    };
    static constexpr std::size_t npos = static_cast<std::size_t>(-1);

    std::size_t size() const noexcept { return map_.size(); }
    std::vector<slot>& slots() noexcept { return slots_; }
    const std::vector<slot>& slots() const noexcept { return slots_; }

    /** Position of `id` in `slots()`, or npos. */
    std::size_t find(std::string_view id) const noexcept
    {
        const auto it = map_.find(id);
        return it == map_.end() ? npos : it->second;
    }

    /**
     * Inserts `id` at the end, or moves its entry in place. Returns the size of the entry it
     * replaced, 0 if it is new.
     */
    std::uint32_t put(std::string_view id, std::uint64_t off, std::uint32_t len)
    {
        if (const auto it = map_.find(id); it != map_.end()) {
            auto& s = slots_[it->second];
            const std::uint32_t old = s.len;
            s.off = off;
            s.len = len;
            return old;
        }
        slots_.push_back({off, len});
        try {
            map_.emplace(std::string(id), static_cast<std::uint32_t>(slots_.size() - 1));
        } catch (...) {
            slots_.pop_back();
            throw;
        }
        return 0;
    }

    /** Forgets `id`; returns its entry's size, 0 if it was not there. */
    std::uint32_t erase(std::string_view id)
    {
        const auto it = map_.find(id);
        if (it == map_.end()) return 0;
        auto& s = slots_[it->second];
        const std::uint32_t old = s.len;
        s.len = 0;
        map_.erase(it);
        return old;
    }

    void clear() noexcept
    {
        slots_.clear();
        map_.clear();
    }

    /** file_journal asks before an insert; this comparison index promises nothing more. */
    void make_room(std::size_t) noexcept {}

    /** Tombstones in the order outnumber live entries (worth a `sweep`). */
    bool sparse() const noexcept { return slots_.size() >= 1024 && slots_.size() >= 2 * map_.size(); }

    /** Drops tombstones from the order; positions change. */
    void sweep()
    {
        std::vector<std::uint32_t> moved_to(slots_.size());
        std::uint32_t j = 0;
        for (std::size_t p = 0; p < slots_.size(); ++p)
            if (slots_[p].len) {
                moved_to[p] = j;
                slots_[j++] = slots_[p];
            }
        slots_.resize(j);
        if (slots_.capacity() > 4 * std::size_t{j} + 1024) slots_.shrink_to_fit();
        for (auto& [id, pos] : map_) pos = moved_to[pos];
        // A map emptied by FIFO removal keeps its buckets; give them back when mostly unused.
        if (map_.bucket_count() > 8 * map_.size() + 1024) map_.rehash(0);
    }

private:
    struct id_hash {
        using is_transparent = void;
        std::size_t operator()(std::string_view id) const noexcept { return std::hash<std::string_view>{}(id); }
    };

    std::vector<slot> slots_;
    boost::unordered_flat_map<std::string, std::uint32_t, id_hash, std::equal_to<>> map_;
};

} // namespace syncvault_bench

#endif
