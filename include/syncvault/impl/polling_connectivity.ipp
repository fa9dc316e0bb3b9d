#ifndef SYNCVAULT_IMPL_POLLING_CONNECTIVITY_IPP
#define SYNCVAULT_IMPL_POLLING_CONNECTIVITY_IPP

// The bodies of connectivity/polling_connectivity.hpp, the only place Boost.Asio's sockets and
// Boost.URL are seen: inline there, or compiled once by <syncvault/src.hpp>.

#include <syncvault/connectivity/polling_connectivity.hpp>
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

struct polling_connectivity::state {
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

SYNCVAULT_DECL polling_connectivity::polling_connectivity(const vault_config& cfg) : s_(std::make_unique<state>())
{
    auto url = boost::urls::parse_uri(cfg.base_url);
    if (!url) throw std::invalid_argument("vault_config::base_url: not a URL: " + cfg.base_url);
    const auto scheme = url->scheme_id();
    if (scheme != boost::urls::scheme::http && scheme != boost::urls::scheme::https)
        throw std::invalid_argument("vault_config::base_url: not http or https: " + cfg.base_url);
    s_->host = url->host_address();  // IPv6 without brackets, percent-decoded
    if (s_->host.empty()) throw std::invalid_argument("vault_config::base_url: no host: " + cfg.base_url);
    s_->port = url->has_port() ? url->port_number() : (scheme == boost::urls::scheme::https ? 443 : 80);
    if (s_->port == 0) throw std::invalid_argument("vault_config::base_url: bad port: " + cfg.base_url);
    if (cfg.probe_interval.count() <= 0) throw std::invalid_argument("vault_config::probe_interval must be positive");
    if (cfg.probe_max_interval < cfg.probe_interval)
        throw std::invalid_argument("vault_config::probe_max_interval must be >= probe_interval");
    if (cfg.probe_timeout.count() <= 0) throw std::invalid_argument("vault_config::probe_timeout must be positive");
    s_->base_interval = s_->interval = cfg.probe_interval;
    s_->max_interval = cfg.probe_max_interval;
    s_->timeout = cfg.probe_timeout;
}

SYNCVAULT_DECL polling_connectivity::polling_connectivity(polling_connectivity&&) noexcept = default;
SYNCVAULT_DECL polling_connectivity& polling_connectivity::operator=(polling_connectivity&&) noexcept = default;
SYNCVAULT_DECL polling_connectivity::~polling_connectivity() = default;

SYNCVAULT_DECL bool polling_connectivity::is_online() const noexcept
{
    return s_->online.load();
}

SYNCVAULT_DECL void polling_connectivity::set_change_handler(std::function<void(bool)> fn)
{
    std::unique_lock lock(s_->mutex);
    s_->handler = std::move(fn);
    const auto self = std::this_thread::get_id();
    s_->idle.wait(lock, [&] {
        return std::all_of(s_->calling.begin(), s_->calling.end(), [&](std::thread::id id) { return id == self; });
    });
}

SYNCVAULT_DECL auto polling_connectivity::tick(time_point now) -> std::optional<time_point>
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
    if (reachable == probe_result::unreachable) s_->interval = detail::doubled_up_to(s_->interval, s_->max_interval);
    s_->next_probe = detail::saturating_add(now, s_->interval);
    return s_->next_probe;
}

SYNCVAULT_DECL std::chrono::milliseconds polling_connectivity::current_interval() const
{
    std::lock_guard lock(s_->mutex);
    return s_->interval;
}

SYNCVAULT_DECL void polling_connectivity::cancel() noexcept
{
    if (!s_) return;
    std::lock_guard lock(s_->mutex);
    s_->cancel_requested = true;
    if (s_->probing) s_->probing->stop();
}

SYNCVAULT_DECL void polling_connectivity::change(bool online)
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

SYNCVAULT_DECL auto polling_connectivity::probe() -> probe_result
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
    resolver.async_resolve(
        s_->host, std::to_string(s_->port), [&](boost::system::error_code ec, tcp::resolver::results_type found) {
            if (ec) return;
            asio::async_connect(socket, found,
                                [&](boost::system::error_code cec, const tcp::endpoint&) { connected = !cec; });
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

}  // namespace syncvault

#endif
