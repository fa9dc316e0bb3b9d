#ifndef SYNCVAULT_DETAIL_JOURNAL_INDEX_HPP
#define SYNCVAULT_DETAIL_JOURNAL_INDEX_HPP

// file_journal's in-memory index: for each stored action, its id and where its entry lies in the
// file, in insertion order (`slots`), plus a boost::unordered_flat_set of positions in that
// order, compared through the slots (heterogeneous lookup by id). Each 8-byte element carries
// its id's hash next to the position, so growing the set touches neither a slot nor an id
// string, and a probe compares strings only on a hash match: opening a journal of a million
// actions spends its time reading. Measured against the hand-written table this replaced and a
// flat map owning std::string keys, 1M actions, one run (tests/bench/storage_bench.cpp, `index`):
// open 0.44 s vs 0.50 s and 0.86 s; 114 vs 113 and 145 bytes per action; save+update+remove at
// the same rate; the bare index 0.7x the hand-written table's rate, lost behind file I/O.
// Removed actions leave tombstones in the order (removal is mostly at the front, FIFO); `sweep`
// drops them.

#include <boost/unordered/unordered_flat_set.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace syncvault::detail {

class journal_index {
public:
    /** One action; `len == 0` marks a tombstone (an entry is never empty). */
    struct slot {
        std::string id;
        std::uint64_t off;   // the entry's offset in the journal
        std::uint32_t len;   // the entry's size
        std::uint32_t hash;  // of `id`
    };
    static constexpr std::size_t npos = static_cast<std::size_t>(-1);

    journal_index() : set_(0, by_slot_hash{&slots_}, by_slot_equal{&slots_}) {}
    journal_index(const journal_index&) = delete;  // the set's functions point at slots_
    journal_index& operator=(const journal_index&) = delete;

    std::size_t size() const noexcept { return set_.size(); }
    std::vector<slot>& slots() noexcept { return slots_; }
    const std::vector<slot>& slots() const noexcept { return slots_; }

    /** Position of `id` in `slots()`, or npos. */
    std::size_t find(std::string_view id) const noexcept
    {
        const auto it = set_.find(lookup{id, hash(id)});
        return it == set_.end() ? npos : pos_of(*it);
    }

    /**
     * Inserts `id` at the end, or moves its entry in place. Returns the size of the entry it
     * replaced, 0 if it is new.
     */
    std::uint32_t put(std::string_view id, std::uint64_t off, std::uint32_t len) { return emplace(id, off, len); }

    /** As above, with the id's string made by the caller: after `make_room`, it allocates nothing. */
    std::uint32_t put(std::string&& id, std::uint64_t off, std::uint32_t len) { return emplace(std::move(id), off, len); }

    /** Makes room for `n` new ids, so that inserting them allocates nothing. */
    void make_room(std::size_t n)
    {
        if (slots_.capacity() - slots_.size() < n) slots_.reserve(std::max(2 * slots_.capacity(), slots_.size() + n));
        set_.reserve(set_.size() + n);
        // Erasures can lower the set's load limit below what its capacity holds (Boost's guard
        // against probe-length drift), and then `reserve` changes nothing: grow it here.
        if (set_.max_load() < set_.size() + n) set_.rehash(set_.bucket_count() + 1);
    }

    /** How many new ids fit without allocating (not counting their strings). */
    std::size_t room() const noexcept
    {
        const std::size_t set_room = set_.max_load() > set_.size() ? set_.max_load() - set_.size() : 0;
        return std::min(slots_.capacity() - slots_.size(), set_room);
    }

    /** Forgets `id`; returns its entry's size, 0 if it was not there. */
    std::uint32_t erase(std::string_view id)
    {
        const auto it = set_.find(lookup{id, hash(id)});
        if (it == set_.end()) return 0;
        auto& s = slots_[pos_of(*it)];
        set_.erase(it);
        const std::uint32_t old = s.len;
        s.len = 0;
        std::string().swap(s.id);
        return old;
    }

    void clear() noexcept
    {
        set_.clear();
        slots_.clear();
    }

    /** Tombstones in the order outnumber live entries (worth a `sweep`). */
    bool sparse() const noexcept { return slots_.size() >= 1024 && slots_.size() >= 2 * set_.size(); }

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
        // Renumber, with each slot's cached hash: no id is hashed again.
        set_.clear();
        if (set_.bucket_count() > 8 * j + 1024) set_.rehash(0);  // give back what FIFO removal left
        set_.reserve(j);
        for (std::size_t p = 0; p < j; ++p) set_.insert(element(p, slots_[p].hash));
    }

private:
    template <class Id>
    std::uint32_t emplace(Id&& id, std::uint64_t off, std::uint32_t len)
    {
        const std::uint32_t h = hash(id);
        if (const auto it = set_.find(lookup{id, h}); it != set_.end()) {
            auto& s = slots_[pos_of(*it)];
            const std::uint32_t old = s.len;
            s.off = off;
            s.len = len;
            return old;
        }
        slots_.push_back({std::string(std::forward<Id>(id)), off, len, h});
        try {
            set_.insert(element(slots_.size() - 1, h));
        } catch (...) {
            slots_.pop_back();
            throw;
        }
        return 0;
    }

    static std::uint32_t hash(std::string_view id) noexcept
    {
        const std::uint64_t h = std::hash<std::string_view>{}(id);
        return static_cast<std::uint32_t>(h ^ (h >> 32));
    }

    // An id and its hash: how the set is searched.
    struct lookup {
        std::string_view id;
        std::uint32_t hash;
    };

    // An element: the id's hash in the high half, the position in slots_ in the low half.
    static std::uint64_t element(std::size_t pos, std::uint32_t h) noexcept
    {
        return std::uint64_t{h} << 32 | static_cast<std::uint32_t>(pos);
    }
    static std::uint32_t pos_of(std::uint64_t e) noexcept { return static_cast<std::uint32_t>(e); }
    static std::uint32_t hash_of(std::uint64_t e) noexcept { return static_cast<std::uint32_t>(e >> 32); }

    // Ids look elements up without a temporary slot; only equality reads a slot.
    struct by_slot_hash {
        using is_transparent = void;
        const std::vector<slot>* slots;
        std::size_t operator()(std::uint64_t e) const noexcept { return hash_of(e); }
        std::size_t operator()(const lookup& l) const noexcept { return l.hash; }
    };
    struct by_slot_equal {
        using is_transparent = void;
        const std::vector<slot>* slots;
        bool operator()(std::uint64_t a, std::uint64_t b) const noexcept { return pos_of(a) == pos_of(b); }
        bool operator()(const lookup& l, std::uint64_t e) const noexcept
        {
            return hash_of(e) == l.hash && (*slots)[pos_of(e)].id == l.id;
        }
        bool operator()(std::uint64_t e, const lookup& l) const noexcept { return (*this)(l, e); }
    };

    std::vector<slot> slots_;
    boost::unordered_flat_set<std::uint64_t, by_slot_hash, by_slot_equal> set_;
};

} // namespace syncvault::detail

#endif
