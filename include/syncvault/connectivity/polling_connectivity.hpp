#ifndef SYNCVAULT_CONNECTIVITY_POLLING_CONNECTIVITY_HPP
#define SYNCVAULT_CONNECTIVITY_POLLING_CONNECTIVITY_HPP

/**
 * @file
 * `polling_connectivity`: the reference `syncvault::connectivity` for real networks. It learns
 * from transport outcomes and, while offline, probes the server with a TCP connect.
 *
 * Its members are defined in impl/polling_connectivity.ipp, the only file that sees Boost.Asio
 * and Boost.URL: inline, or compiled once with SYNCVAULT_SEPARATE_COMPILATION (see
 * detail/compile_mode.hpp).
 */

#include <syncvault/config.hpp>
#include <syncvault/concepts/connectivity.hpp>
#include <syncvault/detail/compile_mode.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>

namespace syncvault {

/**
 * Tells whether `base_url`'s server is reachable.
 *
 * - **Starts online**, so the first request goes out at once instead of waiting for a probe;
 *   the first network failure (`report(false)`) says otherwise.
 * - **While online it does not probe**: requests themselves are the signal (`report`), and an
 *   idle app costs no traffic and no wake-ups. `tick` returns nothing.
 * - **While offline** `tick(now)` probes with a TCP connect to the host and port of `base_url`
 *   (port 80 or 443 by default), bounded by `probe_timeout`. The first probe is due
 *   `probe_interval` after the first `tick` that sees the vault offline; each failed probe
 *   doubles the interval up to `probe_max_interval`; success (or `report(true)`) goes back
 *   online and resets it.
 * - Each change calls the handler given to `set_change_handler`, without any lock held.
 *   `set_change_handler` returns only once no call of the previous handler is running on
 *   another thread, so an owner may install an empty handler and then die safely.
 * - `is_online()` is a lock-free atomic read; every member may be called from any thread.
 * - `cancel()` ends a probe in progress at once (no state change) so a shutdown need not wait
 *   for `probe_timeout`; like `curl_transport::cancel`, it has no effect when no probe runs.
 *
 * Intervals and the timeout may be as large as `std::chrono::milliseconds::max()` (no bound,
 * in effect): schedules and deadlines saturate instead of overflowing.
 *
 * Name resolution runs inside the probe's time bound, but a resolver that never answers can
 * hold the thread until the system resolver gives up (Asio joins its resolver thread).
 * Movable; a moved-from object can only be destroyed or assigned to.
 *
 * @code
 * syncvault::polling_connectivity net{cfg};   // cfg.base_url = "https://api.example.com/v1"
 * net.report(false);                          // a request just failed: offline
 * auto next = net.tick(std::chrono::system_clock::now());   // schedules the first probe
 * @endcode
 */
class polling_connectivity {
public:
    using time_point = std::chrono::system_clock::time_point;

    /**
     * Probes the host and port of `cfg.base_url` with `cfg.probe_interval`,
     * `cfg.probe_max_interval` and `cfg.probe_timeout`.
     * @throws std::invalid_argument naming the field when `base_url` is not an http(s) URL with
     *         a host, or an interval or timeout is not positive.
     */
    SYNCVAULT_DECL explicit polling_connectivity(const vault_config& cfg);

    SYNCVAULT_DECL polling_connectivity(polling_connectivity&&) noexcept;
    SYNCVAULT_DECL polling_connectivity& operator=(polling_connectivity&&) noexcept;
    SYNCVAULT_DECL ~polling_connectivity();

    /** Whether requests are worth trying now. Lock-free. */
    SYNCVAULT_DECL bool is_online() const noexcept;

    /**
     * Calls `fn(online)` on each change from now on (an empty `fn`: no calls). Returns once no
     * call of the previous handler is running on another thread.
     */
    SYNCVAULT_DECL void set_change_handler(std::function<void(bool)> fn);

    /**
     * Learns from a transport outcome: `true` when a server answered (online), `false` on a
     * network-class failure (offline).
     */
    void report(bool reachable) { change(reachable); }

    /**
     * Probes if a probe is due at `now` (blocking up to `probe_timeout`) and says when the next
     * one is; nothing while online.
     */
    SYNCVAULT_DECL std::optional<time_point> tick(time_point now);

    /** Runs one TCP connect probe now, whatever the schedule, and returns whether it connected.
     *  Does not change the state (use `report` for that). */
    bool probe_now() { return probe() == probe_result::reachable; }

    /** The interval the next failed probe will be followed by (for tests and diagnostics). */
    SYNCVAULT_DECL std::chrono::milliseconds current_interval() const;

    /** Ends a probe in progress at once, from any thread; no effect when none runs. */
    SYNCVAULT_DECL void cancel() noexcept;

private:
    enum class probe_result { reachable, unreachable, cancelled };

    struct state;  // impl/polling_connectivity.ipp

    SYNCVAULT_DECL void change(bool online);
    SYNCVAULT_DECL probe_result probe();

    std::unique_ptr<state> s_;
};

static_assert(syncvault::connectivity<polling_connectivity>);
static_assert(syncvault::notifying_connectivity<polling_connectivity>);
static_assert(syncvault::probing_connectivity<polling_connectivity>);
static_assert(syncvault::reported_connectivity<polling_connectivity>);

}  // namespace syncvault

#ifndef SYNCVAULT_SEPARATE_COMPILATION
#include <syncvault/impl/polling_connectivity.ipp>
#endif

#endif
