#ifndef SYNCVAULT_STORAGE_MEMORY_STORAGE_HPP
#define SYNCVAULT_STORAGE_MEMORY_STORAGE_HPP

/**
 * @file
 * `memory_storage`: a `syncvault::storage` in memory, for tests and for applications that accept
 * losing the queue when the process ends. Copies share one store (it is a handle), so a test can
 * destroy a vault and build another over the same memory, as a restart would. Every call is
 * O(1) but `load_all` (a list in insertion order, indexed by id).
 */

#include <syncvault/action.hpp>
#include <syncvault/concepts/storage.hpp>

#include <list>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace syncvault {

class memory_storage {
public:
    static constexpr bool thread_safe = true;

    memory_storage() : state_(std::make_shared<state>()) {}

    std::error_code save(const sync_action& a)
    {
        std::lock_guard lock(state_->mutex);
        state_->put(a);
        return {};
    }

    std::error_code save_batch(std::span<const sync_action> batch)
    {
        std::lock_guard lock(state_->mutex);
        for (const auto& a : batch) state_->put(a);
        return {};
    }

    std::error_code remove(std::string_view id)
    {
        std::lock_guard lock(state_->mutex);
        if (auto it = state_->index.find(std::string(id)); it != state_->index.end()) {
            state_->rows.erase(it->second);
            state_->index.erase(it);
        }
        return {};
    }

    result<std::vector<sync_action>> load_all()
    {
        std::lock_guard lock(state_->mutex);
        return std::vector<sync_action>(state_->rows.begin(), state_->rows.end());
    }

    std::error_code clear()
    {
        std::lock_guard lock(state_->mutex);
        state_->rows.clear();
        state_->index.clear();
        return {};
    }

    std::size_t count() const
    {
        std::lock_guard lock(state_->mutex);
        return state_->rows.size();
    }

private:
    struct state {
        mutable std::mutex mutex;
        std::list<sync_action> rows;  // insertion order
        std::unordered_map<std::string, std::list<sync_action>::iterator> index;

        void put(const sync_action& a)
        {
            if (auto it = index.find(a.id); it != index.end())
                *it->second = a;  // an update keeps its place
            else
                index.emplace(a.id, rows.insert(rows.end(), a));
        }
    };
    std::shared_ptr<state> state_;
};

static_assert(syncvault::storage<memory_storage>);
static_assert(syncvault::batch_storage<memory_storage>);
static_assert(syncvault::thread_safe_storage<memory_storage>);

} // namespace syncvault

#endif
