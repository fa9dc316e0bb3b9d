#ifndef SYNCVAULT_TESTING_SIMULATION_DRIVER_HPP
#define SYNCVAULT_TESTING_SIMULATION_DRIVER_HPP

/**
 * @file
 * The driver: setting a run up, building each process's vault, the quiet period, the trace,
 * and `run_seeds` over many seeds.
 */

#include <syncvault/testing/simulation/simulator.hpp>
#include <boost/json.hpp>

#include <algorithm>
#include <chrono>
#include <string>
#include <vector>

namespace syncvault::testing {

template <class StorageFactory, class RetryPolicy, class Server, class Transport, class Connectivity>
std::uint64_t
simulation<StorageFactory, RetryPolicy, Server, Transport, Connectivity>::runner::mix(std::uint64_t seed,
                                                                                      std::uint64_t salt) noexcept
{
    sim_random r(seed ^ (salt * 0x9e3779b97f4a7c15ULL));
    return r.next();
}

template <class StorageFactory, class RetryPolicy, class Server, class Transport, class Connectivity>
void simulation<StorageFactory, RetryPolicy, Server, Transport, Connectivity>::runner::configure()
{
    cfg_.base_url = "http://sim.test/api";
    cfg_.receive_timeout = ms{rng_.between(1, 30) * 1'000};
    if (opt_.randomize_config) {
        cfg_.max_retries = static_cast<int>(rng_.between(0, 5));
        cfg_.write_ahead = !rng_.chance(0.15);
        if (rng_.chance(0.15)) cfg_.idempotency_key_lifetime = ms{rng_.between(2, 20) * 60'000};
        if (rng_.chance(0.10)) cfg_.max_pending = static_cast<std::size_t>(rng_.between(2, 8));
        if (rng_.chance(0.10)) cfg_.max_dead_letters = static_cast<std::size_t>(rng_.between(1, 4));
    }
    xrng_ = sim_random(mix(seed_, 0x1a9e5));
    if (opt_.lanes && xrng_.chance(0.7)) {
        lanes_ = {"", "a", "b"};
        cfg_.max_in_flight = static_cast<std::size_t>(xrng_.between(1, 3));
    }
    constexpr bool server_knows_auth = requires(Server & s)
    {
        s.expire_credentials();
        s.log_in();
    };
    if constexpr (server_knows_auth) {
        auth_on_ = opt_.auth_expiry && xrng_.chance(0.5);
        if (auth_on_ && xrng_.chance(0.75)) {
            constexpr double rates[] = {0.0, 0.4, 0.9};
            renew_rate_ = rates[xrng_.below(3)];
            cfg_.refresh_auth = [this](const http_response& r) { return refresh_hook(r); };
        }
    }
    erng_ = sim_random(mix(seed_, 0xed175));
    edits_on_ = opt_.queue_edits;
    if (opt_.in_progress_409 && xrng_.chance(0.6)) processing_ = ms{xrng_.between(1, 40) * 1'000};
    if (opt_.configure) opt_.configure(cfg_);
    if constexpr (std::is_same_v<Server, model_server>)
        if (!sim_.make_server_) server_ = model_server(cfg_.idempotency_header);
    power_cuts_ = opt_.power_cuts && StorageFactory::models_power_loss;
    online_ = true;
    configure_faults();
}

template <class StorageFactory, class RetryPolicy, class Server, class Transport, class Connectivity>
void simulation<StorageFactory, RetryPolicy, Server, Transport, Connectivity>::runner::configure_faults()
{
    // Drawn from their own stream, so a seed's schedule without them is what it always was.
    frng_ = sim_random(mix(seed_, 0xfa17));
    constexpr double callback_rates[] = {0, 0.02, 0.05, 0.15};
    constexpr double reentry_rates[] = {0, 0.03, 0.08, 0.2};
    callback_throw_rate_ = opt_.throwing_callbacks ? callback_rates[frng_.below(4)] : 0;
    reentry_rate_ = opt_.reentrant_callbacks ? reentry_rates[frng_.below(4)] : 0;
    storage_throw_rate_ = opt_.storage_faults && frng_.chance(0.5) ? 0.02 : 0;
    transport_throw_rate_ = opt_.throwing_transport && frng_.chance(0.5) ? 0.05 : 0;
    if (!opt_.throwing_callbacks) return;
    cfg_.before_send = [this](http_request& r) { before_send_hook(r); };
    cfg_.on_dead_letter = [this](const sync_event&) {
        if (!injecting_ || !alive_ || violation_ || !frng_.chance(0.3)) return;
        ++stats_.callback_throws;
        note("(on_dead_letter throws)");
        throw sim_fault("simulated on_dead_letter threw");
    };
    if (frng_.chance(0.3)) {
        // A dispatcher (a GUI's queue) that fails after running the callback: the vault must go on.
        cfg_.dispatch = [this](std::function<void()> fn) {
            fn();
            if (!injecting_ || !alive_ || violation_ || !frng_.chance(callback_throw_rate_)) return;
            ++stats_.callback_throws;
            note("(dispatch throws)");
            throw sim_fault("simulated dispatch threw");
        };
    }
}

template <class StorageFactory, class RetryPolicy, class Server, class Transport, class Connectivity>
std::string simulation<StorageFactory, RetryPolicy, Server, Transport, Connectivity>::runner::describe_config() const
{
    const vault_config defaults;  // (a `vault_config{}` temporary here crashes g++ 12)
    std::string s =
        "max_retries=" + std::to_string(cfg_.max_retries) + " write_ahead=" + (cfg_.write_ahead ? "on" : "off");
    if (callback_throw_rate_ > 0) s += " callback_throws=" + std::to_string(int(callback_throw_rate_ * 100)) + "%";
    if (reentry_rate_ > 0) s += " reentry=" + std::to_string(int(reentry_rate_ * 100)) + "%";
    if (storage_throw_rate_ > 0 && storage_faults_on()) s += " storage_throws";
    if (transport_throw_rate_ > 0) s += " transport_throws";
    if (cfg_.dispatch) s += " dispatch";
    if (lanes_.size() > 1) s += " lanes max_in_flight=" + std::to_string(cfg_.max_in_flight);
    if (auth_on_)
        s += cfg_.refresh_auth ? " token_expiry refresh=" + std::to_string(int(renew_rate_ * 100)) + "%"
                               : std::string(" token_expiry no_refresh");
    if (processing_.count() > 0) s += " in_progress=" + std::to_string(processing_.count() / 1000) + "s";
    if (cfg_.idempotency_key_lifetime.count() > 0)
        s += " key_lifetime=" + std::to_string(cfg_.idempotency_key_lifetime.count() / 1000) + "s";
    if (cfg_.max_pending != defaults.max_pending) s += " max_pending=" + std::to_string(cfg_.max_pending);
    if (cfg_.max_dead_letters != defaults.max_dead_letters)
        s += " max_dead_letters=" + std::to_string(cfg_.max_dead_letters);
    return s;
}

template <class StorageFactory, class RetryPolicy, class Server, class Transport, class Connectivity>
RetryPolicy simulation<StorageFactory, RetryPolicy, Server, Transport, Connectivity>::runner::make_retry()
{
    const auto s = mix(seed_, 0x7e7 + processes_);
    return sim_.make_retry_ ? sim_.make_retry_(s) : default_retry(s);
}

template <class StorageFactory, class RetryPolicy, class Server, class Transport, class Connectivity>
Transport simulation<StorageFactory, RetryPolicy, Server, Transport, Connectivity>::runner::make_transport()
{
    sim_network net(this);
    return sim_.make_transport_ ? sim_.make_transport_(net) : default_transport(net);
}

/** Builds the vault over the store; after a crash, checks what it reloaded. */
template <class StorageFactory, class RetryPolicy, class Server, class Transport, class Connectivity>
void simulation<StorageFactory, RetryPolicy, Server, Transport, Connectivity>::runner::build_vault(bool after_crash)
{
    ++processes_;
    alive_ = true;
    injecting_ = false;
    last_failed_ = false;
    statuses_.clear();
    call_ = call::construct;
    try {
        vault_ = std::make_unique<vault_type>(cfg_, detail::sim_probe<Transport>(make_transport(), this),
                                              detail::sim_storage<storage_type>(factory_.open(), this),
                                              Connectivity{online_}, make_retry(), clock_);
    } catch (const std::exception& e) {
        call_ = call::none;
        fail("no-loss", std::string("the vault could not be rebuilt over its storage: ") + e.what());
        return;
    }
    call_ = call::none;
    event_sub_ = vault_->on_event([this](const sync_event& e) { on_event(e); });
    status_sub_ = vault_->on_status([this](sync_status s) { on_status(s); });
    wake_sub_ = vault_->on_wake([this] { woken_ = true; });
    install_user_callbacks();
    injecting_ = true;
    wake_.reset();
    woken_ = true;  // a new process polls at once, as background_sync would
    if (after_crash) check_reload();
}

template <class StorageFactory, class RetryPolicy, class Server, class Transport, class Connectivity>
void simulation<StorageFactory, RetryPolicy, Server, Transport, Connectivity>::runner::quiet_period()
{
    fault_rate_ = 0;
    crash_countdown_ = 0;
    injecting_ = false;
    storage_down_until_.reset();
    storage_throw_rate_ = transport_throw_rate_ = callback_throw_rate_ = reentry_rate_ = 0;
    begin_step("quiet period: online, no faults");
    if constexpr (requires(Server & s) { s.log_in(); })
        if (auth_on_) server_.log_in();
    if (paused_) {
        note("the app logs in again and resumes");
        paused_ = false;
        if (std::exchange(paused_uncertain_, false)) status_uncertain_ = true;
        ++stats_.resumes;
        vault_->resume();
    }
    if (!online_) {
        online_ = true;
        vault_->connectivity().set_online(true);
    }
    end_step();
    wake_ = clock_.now();
    const std::size_t limit = 64 + actions_.size() * std::size_t(cfg_.max_retries + 2) * 4;
    for (std::size_t i = 0; i < limit && !violation_ && wake_; ++i) {
        clock_.set(std::max(clock_.now(), *wake_));
        step_poll("poll (quiet)");
    }
    if (violation_) return;
    for (const auto& t : actions_) {
        if (t.st == state::pending)
            return fail("liveness", "#" + std::to_string(t.no) + " is still pending after the quiet period");
        if (t.st == state::success && applied_count(t.key) != 1)
            return fail("exactly-once", "#" + std::to_string(t.no) + " succeeded but its key was applied " +
                                            std::to_string(applied_count(t.key)) + " times");
    }
    if (vault_->pending_count() != 0) fail("liveness", "the vault still holds actions after the quiet period");
}

template <class StorageFactory, class RetryPolicy, class Server, class Transport, class Connectivity>
simulation_result simulation<StorageFactory, RetryPolicy, Server, Transport, Connectivity>::runner::finish()
{
    simulation_result r;
    r.seed = seed_;
    r.violation = violation_;
    r.trace_digest = digest_;
    for (const auto& step : recent_)
        for (const auto& line : step) r.trace.push_back(line);
    stats_.actions = actions_.size();
    stats_.operations = ops_;
    r.stats = stats_;
    user_event_sub_.reset();
    user_status_sub_.reset();
    event_sub_.reset();
    status_sub_.reset();
    wake_sub_.reset();
    vault_.reset();
    return r;
}

template <class StorageFactory, class RetryPolicy, class Server, class Transport, class Connectivity>
void simulation<StorageFactory, RetryPolicy, Server, Transport, Connectivity>::runner::begin_step(std::string what)
{
    ++step_;
    ++stats_.steps;
    current_.clear();
    current_.push_back("[" + std::to_string(step_) + "] " + at(clock_.now()) + " " + what);
    successes_in_call_ = 0;
    reentered_ = false;
    storage_fault_in_call_ = attempt_blocked_ = false;
}

template <class StorageFactory, class RetryPolicy, class Server, class Transport, class Connectivity>
void simulation<StorageFactory, RetryPolicy, Server, Transport, Connectivity>::runner::end_step()
{
    if (!alive_ && !violation_) {
        flush_step();
        restart();
        return;
    }
    check_state();
    if (!requeued_.empty() && !violation_)
        fail("lifecycle", "requeue() returned true but no `queued` event followed by the end of the step");
    status_uncertain_ = false;
    for (auto& t : actions_)
        if (t.cleared_in_flight) t.awaiting = false;  // its transfer ended without an event, as it must
    if (woken_ && !violation_) {
        woken_ = false;
        // The driver polls soon after a wake-up, as background_sync would.
        const auto soon = clock_.now() + ms{rng_.chance(0.7) ? 0 : rng_.between(1, 500)};
        wake_ = wake_ ? std::min(*wake_, soon) : soon;
    }
    flush_step();
}

template <class StorageFactory, class RetryPolicy, class Server, class Transport, class Connectivity>
void simulation<StorageFactory, RetryPolicy, Server, Transport, Connectivity>::runner::flush_step()
{
    for (const auto& line : current_) digest_ = detail::fnv1a(digest_, line);
    recent_.push_back(std::move(current_));
    current_.clear();
    if (!opt_.keep_full_trace)
        while (recent_.size() > opt_.trace_steps) recent_.pop_front();
}

template <class StorageFactory, class RetryPolicy, class Server, class Transport, class Connectivity>
void simulation<StorageFactory, RetryPolicy, Server, Transport, Connectivity>::runner::fail(std::string invariant,
                                                                                            std::string detail)
{
    if (violation_) return;
    note("!! violation [" + invariant + "] " + detail);
    violation_ = simulation_violation{step_, std::move(invariant), std::move(detail)};
}

template <class StorageFactory, class RetryPolicy, class Server, class Transport, class Connectivity>
std::string simulation<StorageFactory, RetryPolicy, Server, Transport, Connectivity>::runner::at(time_point t) const
{
    const auto d = std::chrono::duration_cast<ms>(t - fake_clock::epoch()).count();
    char buf[40];
    std::snprintf(buf, sizeof buf, "%s%lld.%03llds", d < 0 ? "-" : "+", (long long)(std::llabs(d) / 1000),
                  (long long)(std::llabs(d) % 1000));
    return buf;
}

template <class StorageFactory, class RetryPolicy, class Server, class Transport, class Connectivity>
int simulation<StorageFactory, RetryPolicy, Server, Transport, Connectivity>::runner::index_of(
    std::string_view id) const
{
    auto it = by_id_.find(std::string(id));
    return it == by_id_.end() ? -1 : int(it->second);
}

template <class StorageFactory, class RetryPolicy, class Server, class Transport, class Connectivity>
auto simulation<StorageFactory, RetryPolicy, Server, Transport, Connectivity>::runner::in_flight() -> tracked*
{
    for (auto& t : actions_)
        if (t.awaiting) return &t;
    return nullptr;
}

template <class StorageFactory, class RetryPolicy, class Server, class Transport, class Connectivity>
std::size_t simulation<StorageFactory, RetryPolicy, Server, Transport, Connectivity>::runner::count(state s) const
{
    return std::size_t(std::count_if(actions_.begin(), actions_.end(), [&](const auto& t) { return t.st == s; }));
}

template <class StorageFactory, class RetryPolicy, class Server, class Transport, class Connectivity>
std::vector<std::size_t>
simulation<StorageFactory, RetryPolicy, Server, Transport, Connectivity>::runner::indices(state s) const
{
    std::vector<std::size_t> out;
    for (std::size_t i = 0; i < actions_.size(); ++i)
        if (actions_[i].st == s) out.push_back(i);
    return out;
}

template <class StorageFactory, class RetryPolicy, class Server, class Transport, class Connectivity>
int simulation<StorageFactory, RetryPolicy, Server, Transport, Connectivity>::runner::applied_count(
    const std::string& key) const
{
    auto it = applied_.find(key);
    return it == applied_.end() ? 0 : it->second;
}

template <class StorageFactory, class RetryPolicy, class Server, class Transport, class Connectivity>
std::string simulation<StorageFactory, RetryPolicy, Server, Transport, Connectivity>::runner::kind_name(outcome_kind k)
{
    return k == outcome_kind::success ? "success" : k == outcome_kind::retry ? "retry" : "permanent";
}

template <class StorageFactory, class RetryPolicy, class Server, class Transport, class Connectivity>
std::string simulation<StorageFactory, RetryPolicy, Server, Transport, Connectivity>::runner::cut_note(const tracked& t)
{
    return t.cut ? ", " + std::to_string(t.cut) + " attempt(s) cut short by a crash" : std::string();
}

template <class StorageFactory, class RetryPolicy, class Server, class Transport, class Connectivity>
auto simulation<StorageFactory, RetryPolicy, Server, Transport, Connectivity>::runner::retry_after_of(
    const result<http_response>& o, time_point now) -> std::optional<ms>
{
    if (!o || (o->status != 429 && o->status != 503)) return std::nullopt;
    auto v = find_header(o->headers, "Retry-After");
    if (!v) return std::nullopt;
    std::string s(*v);
    if (!s.empty() && s.find_first_not_of("0123456789") == std::string::npos) return ms{std::stoll(s) * 1000};
    // Our own dates: IMF-fixdate of a whole second.
    for (std::int64_t k = -2; k <= 200; ++k) {
        const auto t = std::chrono::floor<std::chrono::seconds>(now) + std::chrono::seconds{k};
        if (format_http_date(t) == s) return t <= now ? ms{0} : std::chrono::ceil<ms>(t - now);
    }
    return std::nullopt;
}

// =================================================================================================
// Many seeds
// =================================================================================================

/** What `run_seeds` found. */
struct seed_sweep {
    std::uint64_t first = 0;
    std::size_t runs = 0;
    std::vector<simulation_result> failures;  ///< in seed order, at most `max_failures`
    double seconds = 0;
    simulation_stats totals;

    bool ok() const noexcept { return failures.empty(); }
    double seeds_per_second() const noexcept { return seconds > 0 ? double(runs) / seconds : 0; }
};

/**
 * Runs seeds `first`, `first + 1`, ... `first + count - 1`, stopping after `max_failures`
 * violations. Wall time is measured only for the report; it does not affect any run.
 */
template <class Simulation>
seed_sweep run_seeds(const Simulation& sim, std::uint64_t first, std::size_t count, std::size_t max_failures = 1)
{
    seed_sweep sweep;
    sweep.first = first;
    const auto start = std::chrono::steady_clock::now();
    for (std::size_t i = 0; i < count; ++i) {
        auto r = sim.run(first + i);
        ++sweep.runs;
        auto& t = sweep.totals;
        t.steps += r.stats.steps;
        t.operations += r.stats.operations;
        t.actions += r.stats.actions;
        t.successes += r.stats.successes;
        t.dead_letters += r.stats.dead_letters;
        t.requests += r.stats.requests;
        t.faults += r.stats.faults;
        t.effects += r.stats.effects;
        t.crashes += r.stats.crashes;
        t.power_cuts += r.stats.power_cuts;
        t.clock_jumps += r.stats.clock_jumps;
        t.flaps += r.stats.flaps;
        t.callback_throws += r.stats.callback_throws;
        t.reentrant_calls += r.stats.reentrant_calls;
        t.storage_throws += r.stats.storage_throws;
        t.storage_failures += r.stats.storage_failures;
        t.transport_throws += r.stats.transport_throws;
        t.escapes += r.stats.escapes;
        t.expiries += r.stats.expiries;
        t.unauthorized += r.stats.unauthorized;
        t.refreshes += r.stats.refreshes;
        t.renewed += r.stats.renewed;
        t.pauses += r.stats.pauses;
        t.resumes += r.stats.resumes;
        t.conflicts += r.stats.conflicts;
        t.coalesced += r.stats.coalesced;
        t.cancelled += r.stats.cancelled;
        t.dependency_failed += r.stats.dependency_failed;
        t.refs_filled += r.stats.refs_filled;
        if (!r.ok()) {
            sweep.failures.push_back(std::move(r));
            if (sweep.failures.size() >= max_failures) break;
        }
    }
    sweep.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return sweep;
}

}  // namespace syncvault::testing

#endif
