#ifndef SYNCVAULT_TESTS_COMPILE_FAIL_MODELS_HPP
#define SYNCVAULT_TESTS_COMPILE_FAIL_MODELS_HPP

// Minimal user-written models of each concept, as the examples in concepts/*.hpp write them.
// compile_ok.cpp builds a vault over all of them; each missing_*.cpp breaks exactly one.

#include <syncvault.hpp>

#include <algorithm>
#include <chrono>
#include <string_view>
#include <vector>

namespace user {

struct my_transport {
    syncvault::result<syncvault::http_response> send(const syncvault::http_request& r)
    {
        if (r.url.empty()) return syncvault::errc::connection_failed;
        return syncvault::http_response{200, {}, {}};
    }
};

struct map_storage {
    std::vector<syncvault::sync_action> rows;
    std::error_code save(const syncvault::sync_action& a)
    {
        for (auto& r : rows)
            if (r.id == a.id) {
                r = a;
                return {};
            }
        rows.push_back(a);
        return {};
    }
    std::error_code remove(std::string_view id)
    {
        std::erase_if(rows, [&](auto& r) { return r.id == id; });
        return {};
    }
    syncvault::result<std::vector<syncvault::sync_action>> load_all() { return rows; }
    std::error_code clear()
    {
        rows.clear();
        return {};
    }
    std::size_t count() const { return rows.size(); }
};

struct os_connectivity {
    bool is_online() const { return true; }
};

struct fixed_delay {
    syncvault::outcome_kind classify(const syncvault::result<syncvault::http_response>& o) const
    {
        return syncvault::classify_outcome(o);
    }
    std::chrono::milliseconds delay(int) { return std::chrono::seconds{5}; }
    std::chrono::milliseconds max_delay() const { return std::chrono::seconds{5}; }
};

struct utc_clock {
    std::chrono::system_clock::time_point now() const { return std::chrono::system_clock::now(); }
};

/** Builds a vault over the given policies and posts once, as a user would. */
template <class Transport, class Storage, class Connectivity, class RetryPolicy, class Clock>
int use_vault()
{
    syncvault::basic_vault<Transport, Storage, Connectivity, RetryPolicy, Clock> v{
        syncvault::vault_config{.base_url = "http://api.test"}};
    auto r = v.post("/jobs", boost::json::object{{"id", 7}});
    return r.is_sent() ? 0 : 1;
}

}  // namespace user

#endif
