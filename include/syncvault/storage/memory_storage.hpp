#ifndef SYNCVAULT_STORAGE_MEMORY_STORAGE_HPP
#define SYNCVAULT_STORAGE_MEMORY_STORAGE_HPP

/**
 * @file
 * `memory_storage`: a `syncvault::storage` in memory, for tests and for applications that accept
 * losing the queue when the process ends. Copies share one store (it is a handle), so a test can
 * destroy a vault and build another over the same memory, as a restart would.
 */

#include <syncvault/action.hpp>
#include <syncvault/concepts/storage.hpp>

#include <algorithm>
#include <memory>
#include <mutex>
#include <string_view>
#include <vector>

namespace syncvault {

class memory_storage {
public:
    static constexpr bool thread_safe = true;

    memory_storage() : state_(std::make_shared<state>()) {}

    std::error_code save(const sync_action& a)
    {
        std::lock_guard lock(state_->mutex);
        auto& rows = state_->rows;
        auto it = std::find_if(rows.begin(), rows.end(), [&](const auto& r) { return r.id == a.id; });
        if (it != rows.end())
            *it = a;
        else
            rows.push_back(a);
        return {};
    }

    std::error_code save_batch(std::span<const sync_action> batch)
    {
        for (const auto& a : batch) save(a);
        return {};
    }

    std::error_code remove(std::string_view id)
    {
        std::lock_guard lock(state_->mutex);
        std::erase_if(state_->rows, [&](const auto& r) { return r.id == id; });
        return {};
    }

    result<std::vector<sync_action>> load_all()
    {
        std::lock_guard lock(state_->mutex);
        return state_->rows;
    }

    std::error_code clear()
    {
        std::lock_guard lock(state_->mutex);
        state_->rows.clear();
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
        std::vector<sync_action> rows;  // insertion order
    };
    std::shared_ptr<state> state_;
};

static_assert(syncvault::storage<memory_storage>);
static_assert(syncvault::batch_storage<memory_storage>);

} // namespace syncvault

#endif
