#ifndef SYNCVAULT_TESTING_SIMULATION_THREADED_HPP
#define SYNCVAULT_TESTING_SIMULATION_THREADED_HPP

/**
 * @file
 * `testing::threaded_simulation`: the vault under real threads. Posters post concurrently (some
 * with shared idempotency keys), pollers call `poll()` and `process_queue()` from several
 * threads, a chaos thread flaps connectivity and makes storage fail for a while; listeners
 * throw and call back into the vault. It cannot be deterministic (the seed fixes each thread's
 * choices, not the interleaving), so it checks what must hold under any interleaving:
 *
 * | invariant | what it means |
 * |---|---|
 * | `exceptions` | no exception escapes a public vault call (SPEC 9.1) |
 * | `one-transfer` | at most one transfer at a time (`max_in_flight == 1`); no action in flight twice at once |
 * | `lifecycle` | each action's events read queued, (started, failed)*, started, success or dead_letter (requeue starts again; a clear_queue() may cut it) |
 * | `no-loss` | every action a call accepted (queued or sent) ends in success or dead_letter once the network is back and the queue drained, unless a clear_queue() had not returned when it was posted |
 * | `exactly-once` | a key's effect is applied at most once; every success had its effect applied |
 * | `liveness` | the queue drains after the network returns; status is not stuck at `syncing` and the last `on_status` value is `status()` |
 *
 * Runs under TSan (clang `-fsanitize=thread`): all shared state is behind the world's mutex or
 * atomic.
 */

#include <syncvault/action.hpp>
#include <syncvault/basic_vault.hpp>
#include <syncvault/config.hpp>
#include <syncvault/error.hpp>
#include <syncvault/events.hpp>
#include <syncvault/connectivity/manual_connectivity.hpp>
#include <syncvault/retry/jittered_backoff.hpp>
#include <syncvault/storage/memory_storage.hpp>
#include <syncvault/testing/simulation/random.hpp>
#include <syncvault/testing/simulation/seams.hpp>
#include <syncvault/testing/simulation/server_model.hpp>

#include <boost/json.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <system_error>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

namespace syncvault::testing {

/** What a threaded run does. The defaults are what CI runs. */
struct threaded_options {
    std::size_t posters = 4, posts_per_poster = 40, pollers = 3;
    bool throwing_callbacks = true;                  ///< listeners, before_send, on_dead_letter, dispatch throw
    bool reentrant_callbacks = true;                 ///< listeners post, clear_queue, requeue, drop_dead_letter
    bool storage_faults = true;                      ///< saves fail for a while (slowly, to widen the races)
    bool storage_throws = true;                      ///< saves throw now and then (with storage_faults)
    bool throwing_transport = true;                  ///< send throws
    bool flaps = true;                               ///< connectivity flaps while posting
    double network_fault_rate = 0.2;                 ///< refused connections and 503s
    std::chrono::milliseconds drain_timeout{3'000};  ///< after the network returns
};

/** The outcome of one threaded run. */
struct threaded_result {
    std::uint64_t seed = 0;
    std::vector<std::string> violations;  ///< `[invariant] detail`, at most a few
    std::size_t accepted = 0, successes = 0, dead_letters = 0, transfers = 0, callback_throws = 0, reentrant_calls = 0,
                storage_faults = 0, transport_throws = 0, clears = 0;

    bool ok() const noexcept { return violations.empty(); }
    std::string report() const
    {
        std::string s = "threaded simulation seed " + std::to_string(seed) + (ok() ? ": ok" : ": FAILED") + " (" +
                        std::to_string(accepted) + " accepted, " + std::to_string(successes) + " successes, " +
                        std::to_string(dead_letters) + " dead letters, " + std::to_string(transfers) + " transfers, " +
                        std::to_string(storage_faults) + " storage faults, " + std::to_string(callback_throws) +
                        " callback throws, " + std::to_string(transport_throws) + " transport throws, " +
                        std::to_string(reentrant_calls) + " calls from callbacks, " + std::to_string(clears) +
                        " clears)\n";
        for (const auto& v : violations) s += "  " + v + "\n";
        s += "rerun: SYNCVAULT_SIM_THREADED_SEED=" + std::to_string(seed) + " (the interleaving differs each run)\n";
        return s;
    }
};

namespace detail {

/** What every thread of a threaded run shares; everything behind `mutex` or atomic. */
struct threaded_world {
    explicit threaded_world(std::uint64_t seed, const threaded_options& o) : options(o), rng(seed) {}

    const threaded_options& options;
    std::mutex mutex;
    sim_random rng;  // for the policies' faults (guarded by mutex)
    model_server server;
    std::vector<std::string> violations;
    std::map<std::string, std::vector<sync_event>> events;  // per action id, in delivery order
    std::set<std::string> in_flight_keys;
    std::optional<sync_status> last_status;
    threaded_result counts;

    std::atomic<int> transfers_now{0};
    std::atomic<bool> storage_bad{false}, quiet{false};
    std::atomic<std::uint64_t> clear_epoch{0};  // clear_queue() calls begun
    std::atomic<std::uint64_t> clears_done{0};  // ... and returned

    bool chance(double p)
    {
        std::lock_guard lock(mutex);
        return rng.chance(p);
    }
    void violation(const std::string& invariant, const std::string& detail)
    {
        std::lock_guard lock(mutex);
        if (violations.size() < 8) violations.push_back("[" + invariant + "] " + detail);
    }
};

/** The fake network and server, safe to call from any thread; it checks one-transfer. */
class threaded_transport {
public:
    static constexpr bool thread_safe = true;
    threaded_transport() = default;
    explicit threaded_transport(threaded_world* w) : w_(w) {}

    result<http_response> send(const http_request& r)
    {
        const auto key = std::string(find_header(r.headers, "Idempotency-Key").value_or(""));
        struct leave {
            threaded_world* w;
            const std::string& key;
            ~leave()
            {
                {
                    std::lock_guard lock(w->mutex);
                    if (!key.empty()) w->in_flight_keys.erase(key);
                }
                --w->transfers_now;
            }
        };
        if (const int n = ++w_->transfers_now; n > 1)
            w_->violation("one-transfer", std::to_string(n) + " transfers at once with max_in_flight 1");
        {
            std::lock_guard lock(w_->mutex);
            ++w_->counts.transfers;
            if (!key.empty() && !w_->in_flight_keys.insert(key).second)
                w_->violations.push_back("[one-transfer] the action with key " + key + " is in flight twice at once");
        }
        leave guard{w_, key};
        std::this_thread::sleep_for(std::chrono::microseconds(50));
        const bool noisy = !w_->quiet.load();
        if (noisy && w_->options.throwing_transport && w_->chance(0.03)) {
            std::lock_guard lock(w_->mutex);
            ++w_->counts.transport_throws;
            throw sim_fault("threaded transport: send threw");
        }
        if (noisy && w_->chance(w_->options.network_fault_rate))
            return w_->chance(0.5) ? result<http_response>(make_error_code(errc::connection_failed))
                                   : result<http_response>(http_response{503, {}, "busy"});
        std::lock_guard lock(w_->mutex);
        return w_->server.handle(r, std::chrono::system_clock::now()).response;
    }

private:
    threaded_world* w_ = nullptr;
};

/** memory_storage whose saves fail (slowly, to widen races) while the world says so, or throw. */
class threaded_storage {
public:
    static constexpr bool thread_safe = true;
    threaded_storage() = default;
    explicit threaded_storage(threaded_world* w) : w_(w) {}

    std::error_code save(const sync_action& a)
    {
        if (w_ && w_->options.storage_faults && !w_->quiet.load()) {
            if (w_->storage_bad.load()) {
                std::this_thread::sleep_for(std::chrono::microseconds(200));
                std::lock_guard lock(w_->mutex);
                ++w_->counts.storage_faults;
                return std::make_error_code(std::errc::no_space_on_device);
            }
            if (w_->options.storage_throws && w_->chance(0.01)) {
                {
                    std::lock_guard lock(w_->mutex);
                    ++w_->counts.storage_faults;
                }
                throw sim_fault("threaded storage: save threw");
            }
        }
        return inner_.save(a);
    }
    std::error_code remove(std::string_view id) { return inner_.remove(id); }
    std::error_code clear() { return inner_.clear(); }
    result<std::vector<sync_action>> load_all() { return inner_.load_all(); }
    std::size_t count() const { return inner_.count(); }

private:
    threaded_world* w_ = nullptr;
    memory_storage inner_;
};

}  // namespace detail

/** Concurrent posters and pollers over the real vault; see the file comment. */
class threaded_simulation {
public:
    using vault_type = basic_vault<detail::threaded_transport, detail::threaded_storage, manual_connectivity,
                                   jittered_backoff, std::chrono::system_clock>;

    explicit threaded_simulation(threaded_options options = {}) : options_(options) {}
    threaded_options& options() noexcept { return options_; }

    threaded_result run(std::uint64_t seed) const
    {
        detail::threaded_world w(seed, options_);
        sim_random setup(seed);
        vault_config cfg;
        cfg.base_url = "http://sim.test/api";
        cfg.max_retries = static_cast<int>(setup.between(1, 4));
        cfg.max_pending = 100'000;
        const bool throwing = options_.throwing_callbacks;
        std::atomic<bool> stop{false};
        std::atomic<bool> posting{true};
        vault_type* vp = nullptr;  // set before any callback can run
        if (throwing) {
            cfg.before_send = [&w](http_request&) {
                if (!w.quiet.load() && w.chance(0.02)) throw_counted(w, "threaded before_send threw");
            };
            cfg.on_dead_letter = [&w](const sync_event&) {
                if (!w.quiet.load() && w.chance(0.2)) throw_counted(w, "threaded on_dead_letter threw");
            };
            if (setup.chance(0.5))
                cfg.dispatch = [&w](std::function<void()> fn) {
                    fn();
                    if (!w.quiet.load() && w.chance(0.02)) throw_counted(w, "threaded dispatch threw");
                };
        }
        auto retry = jittered_backoff(
            {.base = std::chrono::milliseconds{1}, .cap = std::chrono::milliseconds{20}, .seed = seed});
        vault_type v(cfg, detail::threaded_transport(&w), detail::threaded_storage(&w), manual_connectivity{true},
                     retry, std::chrono::system_clock{});
        vp = &v;

        auto observer = v.on_event([&w](const sync_event& e) {
            std::lock_guard lock(w.mutex);
            w.events[e.action_id].push_back(e);
        });
        auto status_observer = v.on_status([&w](sync_status s) {
            std::lock_guard lock(w.mutex);
            w.last_status = s;
        });
        std::map<std::string, std::uint64_t> accepted;  // action id -> clear epoch before its post
        std::mutex accepted_mutex;
        auto guarded = [&w](const char* what, auto&& f) {
            try {
                f();
            } catch (const std::exception& e) {
                w.violation("exceptions", std::string(what) + " let an exception escape: " + e.what());
            }
        };
        auto post = [&](sim_random& rng, const char* what) {
            request_options o;
            const auto r = rng.below(10);
            if (r < 3) o.idempotency_key = std::string("s").append(std::to_string(rng.below(8)));  // shared: dedupe
            // A clear that has not returned when this post begins may still list it (it is
            // then ordered before the clear): count from the clears finished, not begun.
            const auto epoch = w.clears_done.load();
            guarded(what, [&] {
                auto res = vp->post(std::string("/items/").append(std::to_string(rng.below(50))),
                                    boost::json::object{{"n", rng.next() % 1000}}, o);
                if (res.is_queued() || res.is_sent()) {
                    std::lock_guard lock(accepted_mutex);
                    accepted.emplace(std::string(res.action_id()), epoch);
                }
            });
        };

        // Listeners that throw and call back into the vault (their own random streams, per thread
        // of delivery: a mutex keeps the stream's state safe).
        sim_random callback_rng(seed ^ 0xca11);
        std::mutex callback_mutex;
        subscription user_events, user_status;
        if (options_.throwing_callbacks || options_.reentrant_callbacks) {
            user_events = v.on_event([&](const sync_event& e) {
                if (w.quiet.load()) return;
                int what = -1;
                std::uint64_t pick = 0;
                {
                    std::lock_guard lock(callback_mutex);
                    if (options_.reentrant_callbacks && callback_rng.chance(0.05)) what = int(callback_rng.below(5));
                    pick = callback_rng.next();
                }
                if (what >= 0) {
                    {
                        std::lock_guard lock(w.mutex);
                        ++w.counts.reentrant_calls;
                    }
                    sim_random local(pick);
                    switch (what) {
                    case 0: post(local, "post() (from a callback)"); break;
                    case 1:
                        if (local.chance(0.3)) {  // rarely: a clear cuts lifecycles short
                            ++w.clear_epoch;
                            {
                                std::lock_guard lock(w.mutex);
                                ++w.counts.clears;
                            }
                            guarded("clear_queue() (from a callback)", [&] { (void)vp->clear_queue(); });
                            ++w.clears_done;
                        }
                        break;
                    case 2:
                    case 3: {
                        std::vector<sync_action> dead;
                        guarded("dead_letters()", [&] { dead = vp->dead_letters(); });
                        if (dead.empty()) break;
                        const auto id = dead[local.below(dead.size())].id;
                        if (what == 2)
                            guarded("requeue() (from a callback)", [&] { (void)vp->requeue(id); });
                        else
                            guarded("drop_dead_letter() (from a callback)", [&] { (void)vp->drop_dead_letter(id); });
                        break;
                    }
                    default: guarded("process_queue() (from a callback)", [&] { (void)vp->process_queue(); }); break;
                    }
                }
                (void)e;
                if (options_.throwing_callbacks && (pick >> 40) % 100 < 3) throw_counted(w, "threaded listener threw");
            });
            user_status = v.on_status([&](sync_status) {
                if (!w.quiet.load() && options_.throwing_callbacks && w.chance(0.03))
                    throw_counted(w, "threaded status listener threw");
            });
        }

        // The threads: chaos first, so storage and network misbehave from the first post.
        std::thread chaos([&] {
            sim_random rng(seed ^ 0xc4a05);
            while (posting.load()) {
                if (options_.flaps && rng.chance(0.3)) v.connectivity().set_online(rng.chance(0.6));
                if (options_.storage_faults) w.storage_bad.store(rng.chance(0.4));
                std::this_thread::sleep_for(std::chrono::microseconds(100 + rng.below(600)));
            }
        });
        std::vector<std::thread> threads;
        for (std::size_t p = 0; p < options_.posters; ++p)
            threads.emplace_back([&, p] {
                sim_random rng(seed * 1000 + p + 1);
                for (std::size_t i = 0; i < options_.posts_per_poster; ++i) {
                    post(rng, "post()");
                    std::this_thread::sleep_for(std::chrono::microseconds(rng.below(200)));
                }
            });
        std::vector<std::thread> pollers;
        for (std::size_t p = 0; p < options_.pollers; ++p)
            pollers.emplace_back([&, p] {
                sim_random rng(seed * 2000 + p + 1);
                while (!stop.load()) {
                    if (rng.chance(0.5))
                        guarded("poll()", [&] { (void)vp->poll(); });
                    else
                        guarded("process_queue()", [&] { (void)vp->process_queue(); });
                    std::this_thread::sleep_for(std::chrono::microseconds(rng.below(300)));
                }
            });
        for (auto& t : threads) t.join();
        posting.store(false);
        chaos.join();

        // The network returns, faults stop: everything accepted must end.
        w.storage_bad.store(false);
        w.quiet.store(true);
        v.connectivity().set_online(true);
        const auto deadline = std::chrono::steady_clock::now() + options_.drain_timeout;
        bool drained = false;
        while (std::chrono::steady_clock::now() < deadline) {
            std::size_t pending = 1;
            sync_status status = sync_status::syncing;
            guarded("poll()", [&] { (void)v.poll(); });
            guarded("pending_count()", [&] {
                pending = v.pending_count();
                status = v.status();
            });
            if (pending == 0 && status != sync_status::syncing) {
                drained = true;
                break;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
        stop.store(true);
        for (auto& t : pollers) t.join();
        guarded("poll()", [&] { (void)v.poll(); });  // deliver anything still in the outbox
        user_events.reset();
        user_status.reset();

        check(w, v, accepted, drained);
        auto out = w.counts;
        out.seed = seed;
        out.violations = w.violations;
        out.accepted = accepted.size();
        return out;
    }

private:
    [[noreturn]] static void throw_counted(detail::threaded_world& w, const char* what)
    {
        {
            std::lock_guard lock(w.mutex);
            ++w.counts.callback_throws;
        }
        throw sim_fault(what);
    }

    static void check(detail::threaded_world& w, vault_type& v, const std::map<std::string, std::uint64_t>& accepted,
                      bool drained)
    {
        // The vault's state first: its lock is never taken inside the world's (the storage and the
        // transport take the world's inside the vault's).
        const auto pending = v.pending_count();
        const auto status = v.status();
        std::lock_guard lock(w.mutex);
        auto fail = [&](const std::string& inv, const std::string& d) {
            if (w.violations.size() < 8) w.violations.push_back("[" + inv + "] " + d);
        };
        if (!drained)
            fail("liveness", "the queue did not drain within " + std::to_string(w.options.drain_timeout.count()) +
                                 " ms after the network returned: " + std::to_string(pending) + " pending, status " +
                                 std::string(to_string(status)));
        if (w.last_status && *w.last_status != status)
            fail("liveness", "the last on_status value is " + std::string(to_string(*w.last_status)) +
                                 " but status() is " + std::string(to_string(status)));
        if (status == sync_status::syncing) fail("liveness", "status() is stuck at syncing with nothing in flight");
        std::map<std::string, int> applied;
        for (const auto& e : w.server.effects()) ++applied[e.key];
        for (const auto& [key, n] : applied)
            if (n > 1) fail("exactly-once", "key " + key + " was applied " + std::to_string(n) + " times");

        // Each action's events, per SPEC 3.1 (a requeue starts a new lifecycle).
        std::map<std::string, sync_event_status> last;
        for (const auto& [id, events] : w.events) {
            enum { none, queued, started, failed, success, dead } at = none;
            int attempt = 0;
            for (const auto& e : events) {
                const auto s = e.status;
                const bool ok =
                    (s == sync_event_status::queued && (at == none || at == dead)) ||
                    (s == sync_event_status::started && (at == queued || at == failed) && e.attempt == attempt + 1) ||
                    ((s == sync_event_status::failed || s == sync_event_status::success ||
                      s == sync_event_status::dead_letter) &&
                     at == started && e.attempt == attempt);
                if (!ok) {
                    std::string seq;
                    for (const auto& x : events)
                        seq += std::string(to_string(x.status)) + ":" + std::to_string(x.attempt) + " ";
                    fail("lifecycle", "action " + id + "'s events are not a legal sequence: " + seq);
                    break;
                }
                if (s == sync_event_status::queued) attempt = 0;
                if (s == sync_event_status::started) attempt = e.attempt;
                at = s == sync_event_status::queued    ? queued
                     : s == sync_event_status::started ? started
                     : s == sync_event_status::failed  ? failed
                     : s == sync_event_status::success ? success
                                                       : dead;
                if (s == sync_event_status::success) {
                    ++w.counts.successes;
                    if (applied[e.idempotency_key] != 1)
                        fail("exactly-once", "action " + id + " succeeded but its key " + e.idempotency_key +
                                                 " was applied " + std::to_string(applied[e.idempotency_key]) +
                                                 " times");
                }
                if (s == sync_event_status::dead_letter) ++w.counts.dead_letters;
            }
            last[id] = events.empty() ? sync_event_status::queued : events.back().status;
        }
        const auto epoch = w.clear_epoch.load();
        for (const auto& [id, before] : accepted) {
            const bool cleared = epoch > before;  // a clear_queue() had not returned when it was posted
            auto it = last.find(id);
            if (it == last.end()) {
                if (!cleared)
                    fail("no-loss", "a call accepted action " + id +
                                        " but it never had an event: a phantom (deduplicated against a write "
                                        "that then failed?)");
                continue;
            }
            if (it->second != sync_event_status::success && it->second != sync_event_status::dead_letter && !cleared)
                fail("no-loss", "accepted action " + id + " ended at " + std::string(to_string(it->second)) +
                                    ", not success or dead_letter, after the queue drained");
        }
    }

    threaded_options options_;
};

}  // namespace syncvault::testing

#endif
