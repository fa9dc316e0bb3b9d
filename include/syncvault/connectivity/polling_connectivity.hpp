#ifndef SYNCVAULT_CONNECTIVITY_POLLING_CONNECTIVITY_HPP
#define SYNCVAULT_CONNECTIVITY_POLLING_CONNECTIVITY_HPP

/**
 * @file
 * `polling_connectivity`: the reference `syncvault::connectivity` for real networks. It learns
 * from transport outcomes and, while offline, probes the server with a TCP connect.
 */

#include <syncvault/concepts/connectivity.hpp>
#include <syncvault/config.hpp>
#include <syncvault/detail/saturating_chrono.hpp>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/url/parse.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

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
    explicit polling_connectivity(const vault_config& cfg) : s_(std::make_unique<state>())
    {
        auto url = boost::urls::parse_uri(cfg.base_url);
        if (!url) throw std::invalid_argument("vault_config::base_url: not a URL: " + cfg.base_url);
        const auto scheme = url->scheme_id();
        if (scheme != boost::urls::scheme::http && scheme != boost::urls::scheme::https)
            throw std::invalid_argument("vault_config::base_url: not http or https: " + cfg.base_url);
        s_->host = url->host_address();  // IPv6 without brackets, percent-decoded
        if (s_->host.empty())
            throw std::invalid_argument("vault_config::base_url: no host: " + cfg.base_url);
        s_->port = url->has_port() ? url->port_number()
                                   : (scheme == boost::urls::scheme::https ? 443 : 80);
        if (s_->port == 0) throw std::invalid_argument("vault_config::base_url: bad port: " + cfg.base_url);
        if (cfg.probe_interval.count() <= 0)
            throw std::invalid_argument("vault_config::probe_interval must be positive");
        if (cfg.probe_max_interval < cfg.probe_interval)
            throw std::invalid_argument("vault_config::probe_max_interval must be >= probe_interval");
        if (cfg.probe_timeout.count() <= 0)
            throw std::invalid_argument("vault_config::probe_timeout must be positive");
        s_->base_interval = s_->interval = cfg.probe_interval;
        s_->max_interval = cfg.probe_max_interval;
        s_->timeout = cfg.probe_timeout;
    }

    polling_connectivity(polling_connectivity&&) noexcept = default;
    polling_connectivity& operator=(polling_connectivity&&) noexcept = default;

    /** Whether requests are worth trying now. Lock-free. */
    bool is_online() const noexcept { return s_->online.load(); }

    /**
     * Calls `fn(online)` on each change from now on (an empty `fn`: no calls). Returns once no
     * call of the previous handler is running on another thread.
     */
    void set_change_handler(std::function<void(bool)> fn)
    {
        std::unique_lock lock(s_->mutex);
        s_->handler = std::move(fn);
        const auto self = std::this_thread::get_id();
        s_->idle.wait(lock, [&] {
            return std::all_of(s_->calling.begin(), s_->calling.end(),
                               [&](std::thread::id id) { return id == self; });
        });
    }

    /**
     * Learns from a transport outcome: `true` when a server answered (online), `false` on a
     * network-class failure (offline).
     */
    void report(bool reachable) { change(reachable); }

    /**
     * Probes if a probe is due at `now` (blocking up to `probe_timeout`) and says when the next
     * one is; nothing while online.
     */
    std::optional<time_point> tick(time_point now)
    {
        {
            std::lock_guard lock(s_->mutex);
            if (s_->online.load()) return std::nullopt;
            if (!s_->next_probe) {  // just went offline: first probe one interval from now
                s_->next_probe = detail::saturating_add(now, s_->interval);
                return s_->next_probe;
            }
            if (now < *s_->next_probe) return s_->next_probe;
        }
        const auto reachable = probe();
        if (reachable == probe_result::reachable) {
            change(true);
            return std::nullopt;
        }
        std::lock_guard lock(s_->mutex);
        if (s_->online.load()) return std::nullopt;  // a report(true) came in meanwhile
        if (reachable == probe_result::unreachable)
            s_->interval = detail::doubled_up_to(s_->interval, s_->max_interval);
        s_->next_probe = detail::saturating_add(now, s_->interval);
        return s_->next_probe;
    }

    /** Runs one TCP connect probe now, whatever the schedule, and returns whether it connected.
     *  Does not change the state (use `report` for that). */
    bool probe_now() { return probe() == probe_result::reachable; }

    /** The interval the next failed probe will be followed by (for tests and diagnostics). */
    std::chrono::milliseconds current_interval() const
    {
        std::lock_guard lock(s_->mutex);
        return s_->interval;
    }

    /** Ends a probe in progress at once, from any thread; no effect when none runs. */
    void cancel() noexcept
    {
        if (!s_) return;
        std::lock_guard lock(s_->mutex);
        s_->cancel_requested = true;
        if (s_->probing) s_->probing->stop();
    }

private:
    enum class probe_result { reachable, unreachable, cancelled };

    struct state {
        mutable std::mutex mutex;
        std::condition_variable idle;  // signalled when a handler call ends
        std::atomic<bool> online{true};
        std::string host;
        std::uint16_t port = 0;
        std::chrono::milliseconds base_interval{}, interval{}, max_interval{}, timeout{};
        std::optional<time_point> next_probe;  // set by the first tick after going offline
        std::function<void(bool)> handler;
        std::vector<std::thread::id> calling;  // threads inside the handler
        boost::asio::io_context* probing = nullptr;
        bool cancel_requested = false;
    };

    void change(bool online)
    {
        if (s_->online.load() == online) return;  // the common case, once per request: no lock
        std::function<void(bool)> fn;
        {
            std::lock_guard lock(s_->mutex);
            if (s_->online.load() == online) return;
            s_->online.store(online);
            s_->interval = s_->base_interval;
            s_->next_probe.reset();
            if (!s_->handler) return;
            fn = s_->handler;
            s_->calling.push_back(std::this_thread::get_id());
        }
        struct done_calling {
            state& s;
            ~done_calling()
            {
                std::lock_guard lock(s.mutex);
                s.calling.erase(std::find(s.calling.begin(), s.calling.end(), std::this_thread::get_id()));
                s.idle.notify_all();
            }
        } guard{*s_};
        fn(online);
    }

    probe_result probe()
    {
        namespace asio = boost::asio;
        using asio::ip::tcp;
        asio::io_context io;
        {
            std::lock_guard lock(s_->mutex);
            s_->cancel_requested = false;
            s_->probing = &io;
        }
        bool connected = false;
        tcp::resolver resolver(io);
        tcp::socket socket(io);
        resolver.async_resolve(s_->host, std::to_string(s_->port),
                               [&](boost::system::error_code ec, tcp::resolver::results_type found) {
                                   if (ec) return;
                                   asio::async_connect(socket, found,
                                                       [&](boost::system::error_code cec, const tcp::endpoint&) {
                                                           connected = !cec;
                                                       });
                               });
        // run_for(timeout) would add it to now() unchecked: milliseconds::max() must mean "no
        // bound", not a deadline in the past that ends every probe at once.
        io.run_until(detail::saturating_add(std::chrono::steady_clock::now(), s_->timeout));
        bool cancelled = false;
        {
            std::lock_guard lock(s_->mutex);
            s_->probing = nullptr;
            cancelled = std::exchange(s_->cancel_requested, false);
        }
        if (connected) return probe_result::reachable;
        return cancelled ? probe_result::cancelled : probe_result::unreachable;
    }

    std::unique_ptr<state> s_;
};

static_assert(syncvault::connectivity<polling_connectivity>);
static_assert(syncvault::notifying_connectivity<polling_connectivity>);
static_assert(syncvault::probing_connectivity<polling_connectivity>);
static_assert(syncvault::reported_connectivity<polling_connectivity>);

} // namespace syncvault

#endif
