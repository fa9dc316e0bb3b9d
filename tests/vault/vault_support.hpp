#ifndef SYNCVAULT_TESTS_VAULT_SUPPORT_HPP
#define SYNCVAULT_TESTS_VAULT_SUPPORT_HPP

// A vault over the fakes, and an event recorder that renders lifecycles as short strings
// ("queued", "started:1", "failed:1", "success:2") so expected sequences read at a glance.

#include <syncvault.hpp>
#include <syncvault/testing/fake_clock.hpp>
#include <syncvault/testing/fake_transport.hpp>

#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace sv_test {

using namespace std::chrono_literals;
using syncvault::testing::fake_clock;
using syncvault::testing::fake_transport;

template <class Storage = syncvault::memory_storage>
using fake_vault = syncvault::basic_vault<fake_transport, Storage, syncvault::manual_connectivity,
                                          syncvault::jittered_backoff, fake_clock>;

/** No jitter, base 1 s, cap 60 s: delays are 1, 2, 4... seconds, easy to step through. */
inline syncvault::jittered_backoff exact_backoff()
{
    return syncvault::jittered_backoff({.base = 1s, .cap = 60s, .kind = syncvault::jittered_backoff::jitter::none, .seed = 1});
}

inline syncvault::vault_config test_config()
{
    syncvault::vault_config cfg;
    cfg.base_url = "http://api.test/v1";
    return cfg;
}

/**
 * Opens a storage model over the same place each time, as a restarted process would. Durable
 * models get specializations (in the test files that can include them) keeping a temp dir.
 */
template <class Storage>
struct storage_maker;

template <>
struct storage_maker<syncvault::memory_storage> {
    syncvault::memory_storage shared;  // copies share one store
    syncvault::memory_storage open() { return shared; }
};

/** The policies a test keeps handles to; `make()` builds a vault over them (again, after a "restart"). */
template <class Storage = syncvault::memory_storage>
struct rig {
    fake_clock clock;
    fake_transport net;
    storage_maker<Storage> storage;
    syncvault::vault_config cfg = test_config();

    rig() { net.attach_clock(clock); }

    std::unique_ptr<fake_vault<Storage>> make(bool online = true)
    {
        return std::make_unique<fake_vault<Storage>>(cfg, net, storage.open(), syncvault::manual_connectivity{online},
                                                     exact_backoff(), clock);
    }
};

inline std::string describe(const syncvault::sync_event& e)
{
    std::string s(syncvault::to_string(e.status));
    if (e.status != syncvault::sync_event_status::queued) s += ":" + std::to_string(e.attempt);
    return s;
}

/** Records every event (thread-safe). */
struct event_log {
    mutable std::mutex mutex;
    std::vector<syncvault::sync_event> events;
    syncvault::subscription sub;

    template <class Vault>
    explicit event_log(Vault& v)
        : sub(v.on_event([this](const syncvault::sync_event& e) {
              std::lock_guard lock(mutex);
              events.push_back(e);
          }))
    {
    }

    std::vector<std::string> lifecycle(std::string_view action_id = {}) const
    {
        std::lock_guard lock(mutex);
        std::vector<std::string> out;
        for (const auto& e : events)
            if (action_id.empty() || e.action_id == action_id) out.push_back(describe(e));
        return out;
    }

    syncvault::sync_event last() const
    {
        std::lock_guard lock(mutex);
        return events.back();
    }
};

using lifecycle = std::vector<std::string>;

} // namespace sv_test

#endif
