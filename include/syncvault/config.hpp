#ifndef SYNCVAULT_CONFIG_HPP
#define SYNCVAULT_CONFIG_HPP

/**
 * @file
 * `vault_config`, everything a vault and its policies are built from, and `request_options`,
 * the per-request knobs.
 */

#include <syncvault/action.hpp>
#include <syncvault/events.hpp>

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <functional>
#include <string>
#include <system_error>
#include <vector>

namespace syncvault {

/** When a durable storage syncs an inserted action (SPEC section 7). */
enum class durability {
    per_record,    ///< one fdatasync per insert, before it returns (default)
    group_commit,  ///< concurrent inserts share one fdatasync; each still returns only once synced
    none,          ///< never synced: a power cut (not a process crash) may lose recent actions
};

/** What `vault_config::on_rejected` decides for an action the server refused (SPEC 9.3). */
enum class rejection {
    dead_letter,  ///< to the dead-letter list (the default, and what no hook means)
    drop,         ///< removed, event `cancelled`
    retry,        ///< kept at its lane's head as a failed attempt, with the hook's edits
};

/** What a full queue does with a new action (SPEC 9.4). */
enum class overflow_policy {
    reject_new,   ///< the new one gets `errc::queue_full`
    drop_oldest,  ///< the oldest pending actions not in flight are cancelled until it fits
};

/**
 * The default of `vault_config::sensitive_headers`: Authorization, Cookie, Proxy-Authorization.
 * (A function rather than a braced list in the member: GCC 12 crashes, "internal compiler error
 * in check_noexcept_r", on a braced-list member initializer when a designated-initializer
 * `vault_config{...}` temporary is passed to a constructor inside a template.)
 */
inline std::vector<std::string> default_sensitive_headers()
{
    return {"Authorization", "Cookie", "Proxy-Authorization"};
}

/**
 * Configuration of a vault and of the policies it builds from it. Checked at construction: a bad
 * field throws `std::invalid_argument` naming it.
 */
struct vault_config {
    std::string base_url{};                 ///< required, http or https
    std::filesystem::path storage_path{};   ///< a directory for file_journal / sqlite_storage
    int max_retries = 3;                  ///< retries after the first attempt
    std::chrono::milliseconds connect_timeout{30'000};
    std::chrono::milliseconds receive_timeout{30'000};  ///< longest silence waiting for bytes
    /// Persist an action before its first attempt (SPEC 3.3). Off: an immediate attempt is made
    /// from memory and the action reaches storage only if it must wait, so a crash during that
    /// first attempt loses it.
    bool write_ahead = true;
    std::size_t max_pending = 10'000;
    std::size_t max_body_bytes = 1 << 20;  ///< measured serialized
    std::string idempotency_header = "Idempotency-Key";
    std::vector<std::string> sensitive_headers = default_sensitive_headers();
    std::function<void(http_request&)> before_send{};         ///< before every attempt (SPEC 3.16)
    std::function<void(const sync_event&)> on_dead_letter{};  ///< SPEC 3.10
    std::function<void(std::function<void()>)> dispatch{};    ///< where callbacks run (SPEC 3.13)

    // Beyond SPEC's names:
    std::size_t max_dead_letters = 1'000;   ///< oldest dropped first when over
    std::size_t max_headers = 64;           ///< per request, counted before the vault adds its own
    std::size_t max_header_bytes = 8 * 1024;  ///< names plus values, per request
    std::size_t max_path_bytes = 2048;
    std::size_t max_key_bytes = 255;        ///< idempotency keys: visible ASCII only
    /// Dead-letter, with `errc::key_expired`, an action older than this instead of replaying it
    /// after the server may have forgotten its key. Zero (the default): no limit.
    std::chrono::milliseconds idempotency_key_lifetime{0};
    /// Problems a policy recovered from (corrupt records set aside...), as they are found.
    std::function<void(const diagnostic&)> on_diagnostic{};
    /// At most this many transfers at once, at most one per lane (SPEC 9.2). A transport that
    /// does not declare `thread_safe` is still never called concurrently.
    std::size_t max_in_flight = 1;
    /// When connectivity comes back, the first drain waits `uniform(0, reconnect_jitter)`, so a
    /// fleet of devices that regain the network together does not hit the server together.
    std::chrono::milliseconds reconnect_jitter{0};
    /// A 401 arrived (SPEC 9.3): called once, outside locks; true when new credentials exist
    /// (the action is tried again at once, `before_send` supplying them). False, no hook, or a
    /// second 401 right after a refresh pauses the vault until `resume()`.
    std::function<bool(const http_response&)> refresh_auth{};
    /// A permanent response (any 4xx but 401 and the retryable ones, 1xx, 3xx): what to do with
    /// the action. The hook may edit its `path`, `body` or `headers` before a `retry`.
    std::function<rejection(sync_action&, const http_response&)> on_rejected{};
    /// True (0.1's behaviour): a mutating request is tried at once on the calling thread when
    /// its lane is free. False: it is written (as write_ahead says) and returned `is_queued()`
    /// at once, and a driver (`background_sync`, `poll()`) sends it; no call blocks on the network.
    bool send_on_caller = true;
    std::size_t max_pending_bytes = std::size_t(64) << 20;  ///< sum of pending bodies (SPEC 9.4)
    overflow_policy overflow = overflow_policy::reject_new;  ///< when max_pending(_bytes) is reached

    // Read by the reference policies that are built from the config:
    durability storage_durability = durability::per_record;  ///< file_journal, sqlite_storage
    std::filesystem::path tls_ca_file{};      ///< curl_transport: CA bundle (PEM); empty: system's
    /// curl_transport: turns off TLS peer and host verification. Only for tests against a
    /// throwaway server: it makes every HTTPS request open to interception.
    bool tls_insecure_skip_verify = false;
    std::size_t max_response_bytes = 8u << 20;  ///< curl_transport: body plus headers
    std::chrono::milliseconds probe_interval{1'000};      ///< polling_connectivity, while offline
    std::chrono::milliseconds probe_max_interval{30'000}; ///< polling_connectivity: backoff cap
    std::chrono::milliseconds probe_timeout{2'000};       ///< polling_connectivity: TCP connect
};

/** Per-request options. */
struct request_options {
    std::string idempotency_key{};   ///< empty: a UUIDv4 is generated for mutating requests
    std::vector<header> headers{};
    bool queue_if_offline = false;  ///< GET/HEAD only: queue as an action instead of `offline`
    /// Ordering lane (SPEC 9.2): actions leave each lane in order; lanes do not wait for each
    /// other. Empty: the default lane. At most `vault_config::max_key_bytes`, no control characters.
    std::string lane{};
    /// Coalescing (SPEC 9.4): a PUT, PATCH or DELETE merges into the newest pending action of
    /// its lane with the same key, if that one was never attempted. Empty: never merged. Bounded
    /// like a lane.
    std::string coalesce_key{};
    /// Action ids this one waits for (SPEC 9.4): it is not attempted before each has succeeded,
    /// and is dead-lettered (`errc::dependency_failed`) if one fails or is cancelled. An id that
    /// is neither pending nor a dead letter does not hold it back.
    std::vector<std::string> after{};
};

} // namespace syncvault

#endif
