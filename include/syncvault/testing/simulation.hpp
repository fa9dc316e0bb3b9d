#ifndef SYNCVAULT_TESTING_SIMULATION_HPP
#define SYNCVAULT_TESTING_SIMULATION_HPP

/**
 * @file
 * `testing::simulation`: a deterministic simulator, in the style of FoundationDB's and
 * TigerBeetle's, that drives a real `basic_vault` through a fault schedule generated from one
 * 64-bit seed and checks every promise of SPEC section 3 and 7 after every step.
 *
 * From the seed it generates, over simulated time (a `fake_clock`, no real time, no threads):
 * - application requests: POST, PUT, PATCH, DELETE, GET and HEAD (sent directly, failing fast
 *   offline, or queued with `queue_if_offline`), with generated keys, fresh keys and duplicate
 *   keys, sensitive headers, paths the server rejects for good;
 * - connectivity flaps (`manual_connectivity`), manual syncs (`process_queue`), requeues, drops
 *   and `clear_queue`;
 * - network faults between the vault and a model server: refused connections, timeouts before
 *   the server, responses lost after the server applied the effect, 5xx from a proxy or after
 *   the effect, 408, 429 and 503 with `Retry-After` in seconds or as an HTTP date, latency;
 * - clock jumps, forward and back;
 * - crash-restarts: the vault is destroyed between operations, or "during" one (at a chosen
 *   storage write or transfer: the durable state is captured there and everything the doomed
 *   process does afterwards is discarded), and rebuilt over the same storage. A storage factory
 *   that models power loss (`file_journal_factory`) may also drop writes that were not synced.
 *
 * Steps call `poll()` when it said work is due (advancing the clock to that time), right after
 * the vault asks to be woken (as `background_sync` would), and `process_queue()` at random.
 * After every step the checker compares the vault with a model built only from what the
 * application can see (results, events, status, the storage writes, the requests on the wire):
 *
 * | invariant | what it means |
 * |---|---|
 * | `durability` | each state an event or a result reports was written to storage first (SPEC 7); no secret header is stored |
 * | `no-loss` | a crash or power cut never loses an acknowledged action: the reloaded store equals the writes before the crash (or, after a power cut, a prefix of them no shorter than the last synced insert) |
 * | `exactly-once` | a key's effect is applied at most once; every action that reached `success` had its effect applied |
 * | `fifo` | attempts go to the head of the queue only; effects are first applied in queue order (dead letters and requeues accounted for) |
 * | `attempts` | started attempts count 1, 2, ... and never exceed `max_retries + 1` per lifecycle |
 * | `dead-letter` | only for a permanent outcome, exhausted retries, or an expired key |
 * | `outcome` | each outcome event classifies the response the vault really got as the retry table says |
 * | `lifecycle` | queued, (started, failed)*, started, success or dead_letter; no second `queued` after a restart; a cut attempt has no outcome |
 * | `timers` | `poll()` never starts an attempt before its next-attempt time; that time honours `Retry-After` and the cap |
 * | `status` | `status()` and `on_status` agree with the queue (SPEC 3.11); pending_actions, dead_letters and pending_count agree with the model |
 * | `send-or-queue` | SPEC 3.2 and 3.4: what each request call returns, when it sends at once |
 * | `headers` | every attempt carries the key and the stored headers; a sensitive header only in the process it was given to (SPEC 3.9, 3.16) |
 * | `liveness` | after a final quiet period (online, no faults), everything not dead-lettered is delivered |
 *
 * On the first violation the run stops and returns the seed, the step, the invariant, and the
 * last steps of the trace. Running the same seed again reproduces it exactly: the schedule
 * depends only on the seed (the vault's random UUIDs appear as `#n` sequence numbers).
 *
 * @code
 * syncvault::testing::simulation<> sim;                 // memory_storage, jittered_backoff, model_server
 * for (std::uint64_t seed = 1; seed <= 1000; ++seed) {
 *     auto r = sim.run(seed);
 *     if (!r.ok()) { std::cerr << r.report(); break; }
 * }
 * @endcode
 *
 * Bring your own policies: the storage through a factory (see `simulated_storage`), the retry
 * policy as a type with a maker (`with_retry`), the server model (`simulated_server`,
 * `with_server`), or a transport of your own wrapped around the simulated network
 * (`with_transport`). If your retry policy classifies outcomes differently from SPEC's retry
 * table on purpose, set `simulation_options::expected_outcome` to your table.
 */

#include <syncvault/action.hpp>
#include <syncvault/basic_vault.hpp>
#include <syncvault/config.hpp>
#include <syncvault/error.hpp>
#include <syncvault/events.hpp>
#include <syncvault/concepts/retry_policy.hpp>
#include <syncvault/concepts/storage.hpp>
#include <syncvault/connectivity/manual_connectivity.hpp>
#include <syncvault/retry/jittered_backoff.hpp>
#include <syncvault/storage/memory_storage.hpp>
#include <syncvault/testing/fake_clock.hpp>

#include <boost/json.hpp>

#if __has_include(<syncvault/storage/file_journal.hpp>)
#include <syncvault/storage/file_journal.hpp>
#include <fstream>
#include <iterator>
#define SYNCVAULT_SIMULATION_HAS_FILE_JOURNAL 1
#endif

#include <algorithm>
#include <chrono>
#include <concepts>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

namespace syncvault::testing {

// =================================================================================================
// Randomness and small helpers
// =================================================================================================

/**
 * The simulator's random numbers: xoshiro256** seeded through splitmix64. Its own generator and
 * its own range reduction (std's distributions differ between standard libraries), so a seed
 * means the same schedule everywhere.
 */
class sim_random {
public:
    explicit sim_random(std::uint64_t seed) noexcept
    {
        for (auto& s : s_) {
            seed += 0x9e3779b97f4a7c15ULL;
            std::uint64_t z = seed;
            z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
            z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
            s = z ^ (z >> 31);
        }
    }

    std::uint64_t next() noexcept
    {
        const std::uint64_t result = rotl(s_[1] * 5, 7) * 9;
        const std::uint64_t t = s_[1] << 17;
        s_[2] ^= s_[0];
        s_[3] ^= s_[1];
        s_[1] ^= s_[2];
        s_[0] ^= s_[3];
        s_[2] ^= t;
        s_[3] = rotl(s_[3], 45);
        return result;
    }

    /** Uniform in [0, n); 0 when n is 0. */
    std::uint64_t below(std::uint64_t n) noexcept { return n == 0 ? 0 : next() % n; }
    /** Uniform in [lo, hi]. */
    std::int64_t between(std::int64_t lo, std::int64_t hi) noexcept
    {
        return lo + static_cast<std::int64_t>(below(static_cast<std::uint64_t>(hi - lo) + 1));
    }
    /** True with probability `p`. */
    bool chance(double p) noexcept { return static_cast<double>(next() >> 11) * 0x1.0p-53 < p; }

    /** Index chosen with the given weights (none positive: 0). */
    std::size_t weighted(std::span<const unsigned> weights) noexcept
    {
        std::uint64_t total = 0;
        for (auto w : weights) total += w;
        auto x = below(total);
        for (std::size_t i = 0; i < weights.size(); ++i) {
            if (x < weights[i]) return i;
            x -= weights[i];
        }
        return 0;
    }

private:
    static std::uint64_t rotl(std::uint64_t x, int k) noexcept { return (x << k) | (x >> (64 - k)); }
    std::uint64_t s_[4]{};
};

/** `t` as an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), as servers write `Retry-After`. */
inline std::string format_http_date(std::chrono::system_clock::time_point t)
{
    using namespace std::chrono;
    static constexpr const char* days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static constexpr const char* months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                             "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    const auto secs = floor<seconds>(t);
    const auto day = floor<std::chrono::days>(secs);
    const year_month_day ymd{day};
    const hh_mm_ss hms{secs - day};
    char buf[64];
    std::snprintf(buf, sizeof buf, "%s, %02u %s %04d %02d:%02d:%02d GMT", days[weekday{day}.c_encoding()],
                  unsigned(ymd.day()), months[unsigned(ymd.month()) - 1], int(ymd.year()), int(hms.hours().count()),
                  int(hms.minutes().count()), int(hms.seconds().count()));
    return buf;
}

// =================================================================================================
// The server model
// =================================================================================================

/** What a simulated server did with one request. */
struct server_reply {
    http_response response;
    bool applied = false;  ///< this request applied a new effect (the checker counts these per key)
};

/**
 * A server model for the simulator: `s.handle(request, now)` returns a `server_reply`. It sits
 * behind the simulated network's fault layer, so it only sees requests that got through. A
 * model should apply each idempotency key's effect at most once (the checker verifies it).
 */
template <class S>
concept simulated_server = std::movable<S> &&
    requires(S& s, const http_request& r, std::chrono::system_clock::time_point now)
{
    {
        s.handle(r, now)
        } -> std::same_as<server_reply>;
};

/**
 * The default server model: it applies each idempotency key's effect at most once and records
 * effects in order; a repeated key gets the first reply again (as Stripe does). Paths containing
 * `/reject` answer 422 and those containing `/gone` 410 (permanent, nothing applied); requests
 * without a key (direct reads) apply nothing.
 */
class model_server {
public:
    /** One applied effect. */
    struct effect {
        std::string key;
        http_method method = http_method::post;
        std::string url, body;
        std::chrono::system_clock::time_point at{};
    };

    explicit model_server(std::string idempotency_header = "Idempotency-Key") : header_(std::move(idempotency_header))
    {}

    server_reply handle(const http_request& r, std::chrono::system_clock::time_point now)
    {
        if (r.url.find("/reject") != std::string::npos) return {{422, {}, "rejected"}, false};
        if (r.url.find("/gone") != std::string::npos) return {{410, {}, "gone"}, false};
        auto key = find_header(r.headers, header_);
        if (!key) return {{200, {}, r.method == http_method::head ? "" : "read"}, false};
        if (auto it = replies_.find(std::string(*key)); it != replies_.end()) {
            auto replay = it->second;
            replay.headers.push_back({"Idempotent-Replayed", "true"});
            return {std::move(replay), false};
        }
        http_response reply{
            r.method == http_method::post      ? 201
            : r.method == http_method::delete_ ? 204
                                               : 200,
            {},
            r.method == http_method::delete_ || r.method == http_method::head ? "" : "ok " + std::string(*key)};
        replies_.emplace(std::string(*key), reply);
        effects_.push_back({std::string(*key), r.method, r.url, r.body, now});
        return {std::move(reply), true};
    }

    /** Every effect applied, in order. */
    const std::vector<effect>& effects() const noexcept { return effects_; }

private:
    std::string header_;
    std::map<std::string, http_response> replies_;  // lookup only: never iterated
    std::vector<effect> effects_;
};

static_assert(simulated_server<model_server>);

// =================================================================================================
// Storage factories
// =================================================================================================

/**
 * How the simulator opens, crashes and reopens a storage model. A factory `f` of type `F`:
 *
 * | expression | meaning |
 * |---|---|
 * | `F::storage_type` | the storage model (`syncvault::storage`) |
 * | `F::image_type` | what a crash leaves behind |
 * | `F::models_power_loss` | `constexpr bool`: `restore` can drop unsynced writes |
 * | `F::durable_inserts` | `constexpr bool`: an inserting `save` survives a power cut once it returned |
 * | `f.reset()` | start over with an empty store (called before each run) |
 * | `f.open()` | a new instance over the same place (the previous one is destroyed first) |
 * | `f.capture(s)` | the image a crash at this instant would leave, from the live instance `s` |
 * | `f.restore(img, power_loss, rng)` | after the instance is destroyed, put the place back as `img` says; with `power_loss`, unsynced writes may be dropped. Returns true when something was dropped. |
 *
 * A crash-consistent model restores exactly what was written before the crash; a model that
 * loses power restores a prefix of the writes at least as long as the last synced insert.
 */
template <class F>
concept simulated_storage = syncvault::storage<typename F::storage_type> && std::copyable<F> &&
    requires(F& f, typename F::storage_type& s, const typename F::image_type& img, sim_random& rng)
{
    {
        F::models_power_loss
        } -> std::convertible_to<bool>;
    {
        F::durable_inserts
        } -> std::convertible_to<bool>;
    f.reset();
    {
        f.open()
        } -> std::same_as<typename F::storage_type>;
    {
        f.capture(s)
        } -> std::same_as<typename F::image_type>;
    {
        f.restore(img, true, rng)
        } -> std::same_as<bool>;
};

/** `memory_storage` in the simulator: a crash keeps the memory (copies share one store). */
class memory_storage_factory {
public:
    using storage_type = memory_storage;
    using image_type = std::vector<sync_action>;
    static constexpr bool models_power_loss = false;
    static constexpr bool durable_inserts = true;

    void reset() { place_ = memory_storage{}; }
    memory_storage open() { return place_; }
    image_type capture(memory_storage&) { return place_.load_all().value(); }
    bool restore(const image_type& image, bool, sim_random&)
    {
        (void)place_.clear();
        for (const auto& a : image) (void)place_.save(a);
        return false;
    }

private:
    memory_storage place_;
};

static_assert(simulated_storage<memory_storage_factory>);

#ifdef SYNCVAULT_SIMULATION_HAS_FILE_JOURNAL
/**
 * `file_journal` in the simulator, in a directory of its own (wiped by `reset()`). A crash
 * keeps every byte written (the page cache survives a process crash); a power loss keeps the
 * synced prefix (`stats().synced_bytes`) plus any part of the unsynced tail, possibly ending in
 * a torn record.
 */
class file_journal_factory {
public:
    using storage_type = file_journal;
    struct image_type {
        std::string bytes;
        std::uint64_t synced = 0;
    };
    static constexpr bool models_power_loss = true;
    static constexpr bool durable_inserts = true;  // per_record and group_commit; not durability::none

    explicit file_journal_factory(std::filesystem::path directory, durability mode = durability::per_record)
        : dir_(std::move(directory)), mode_(mode)
    {}

    void reset()
    {
        std::error_code ec;
        std::filesystem::remove_all(dir_, ec);
    }
    file_journal open() { return file_journal{dir_, mode_}; }
    image_type capture(file_journal& j)
    {
        image_type image;
        std::ifstream in(j.path(), std::ios::binary);
        image.bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
        image.synced = std::min<std::uint64_t>(j.stats().synced_bytes, image.bytes.size());
        return image;
    }
    bool restore(const image_type& image, bool power_loss, sim_random& rng)
    {
        std::size_t keep = image.bytes.size();
        if (power_loss && image.synced < keep)
            keep = static_cast<std::size_t>(image.synced + rng.below(keep - image.synced + 1));
        std::ofstream out(dir_ / file_journal::file_name, std::ios::binary | std::ios::trunc);
        out.write(image.bytes.data(), static_cast<std::streamsize>(keep));
        return keep < image.bytes.size();
    }
    const std::filesystem::path& directory() const noexcept { return dir_; }

private:
    std::filesystem::path dir_;
    durability mode_;
};

static_assert(simulated_storage<file_journal_factory>);
#endif

// =================================================================================================
// Options and results
// =================================================================================================

/** What to simulate. The defaults are what CI runs. */
struct simulation_options {
    std::size_t steps = 120;       ///< application-level operations per run (polls come on top)
    std::size_t trace_steps = 30;  ///< steps kept in a violation's trace
    bool keep_full_trace = false;  ///< keep every step (for debugging one seed)
    bool faults = true;            ///< network faults between the vault and the server
    bool flaps = true;             ///< connectivity changes
    bool crashes = true;           ///< crash-restarts, between and during operations
    bool power_cuts = true;        ///< with a factory that models power loss
    bool clock_jumps = true;       ///< wall-clock jumps, forward and back
    bool randomize_config = true;  ///< max_retries, write_ahead, key lifetime, limits per seed
    /// An attempt cut short by a crash counts toward `max_retries + 1` (SPEC 7: a crash never
    /// forgets an increment, so an action that crashes the process on every attempt still ends
    /// in the dead-letter list). False tolerates a vault that starts one more attempt per cut one.
    bool count_cut_attempts = true;
    /// SPEC's retry table, the oracle for every outcome event. Replace it if your policy's table
    /// differs on purpose.
    std::function<outcome_kind(const result<http_response>&)> expected_outcome = classify_outcome;
    /// Last word on the vault's configuration, after the seed chose its values.
    std::function<void(vault_config&)> configure;
};

/** The first broken promise of a run. */
struct simulation_violation {
    std::size_t step = 0;   ///< the step during which it was seen
    std::string invariant;  ///< the invariant's name (see the file comment)
    std::string detail;     ///< what was seen, with actions as `#n`

    friend bool operator==(const simulation_violation&, const simulation_violation&) = default;
};

/** Counters of one run. */
struct simulation_stats {
    std::size_t steps = 0, operations = 0, actions = 0, successes = 0, dead_letters = 0, requests = 0, faults = 0,
                effects = 0, crashes = 0, power_cuts = 0, clock_jumps = 0, flaps = 0;
};

/** The outcome of one run. */
struct simulation_result {
    std::uint64_t seed = 0;
    std::optional<simulation_violation> violation;  ///< empty when every invariant held
    std::vector<std::string> trace;                 ///< the last steps (all with `keep_full_trace`)
    std::uint64_t trace_digest = 0;                 ///< a hash of the whole trace: equal runs, equal digests
    simulation_stats stats;

    bool ok() const noexcept { return !violation.has_value(); }

    /** Seed, step, invariant, detail and trace, ready to print. */
    std::string report() const
    {
        std::string s = "simulation seed " + std::to_string(seed);
        if (!violation) {
            s += ": ok (" + std::to_string(stats.steps) + " steps)\n";
        } else {
            s += ", step " + std::to_string(violation->step) + ": [" + violation->invariant + "] " + violation->detail +
                 "\n";
        }
        s += "rerun: SYNCVAULT_SIM_SEED=" + std::to_string(seed) + "\ntrace:\n";
        for (const auto& line : trace) s += line + "\n";
        return s;
    }
};

namespace detail {

/** What the simulator's seams report to the run that owns them. */
class sim_hooks {
public:
    enum class storage_op { save, remove, clear };

    virtual result<http_response> network_send(const http_request& r) = 0;
    virtual void transfer_begin(const http_request& r) = 0;
    virtual void transfer_end(const http_request& r, const result<http_response>& outcome) = 0;
    virtual void storage_before(storage_op op, const sync_action* a, std::string_view id) = 0;
    virtual void storage_after(storage_op op, const sync_action* a, std::string_view id, std::error_code ec) = 0;

protected:
    ~sim_hooks() = default;
};

}  // namespace detail

/**
 * The simulated network, a `syncvault::transport`: the fault layer, then the server model. The
 * simulator gives one to the transport factory (`simulation::with_transport`); a transport of
 * your own wraps it and calls `send` to put requests on the wire.
 */
class sim_network {
public:
    explicit sim_network(detail::sim_hooks* hooks) noexcept : hooks_(hooks) {}
    result<http_response> send(const http_request& r) { return hooks_->network_send(r); }

private:
    detail::sim_hooks* hooks_;
};

static_assert(syncvault::transport<sim_network>);

namespace detail {

/** The vault's transport in a simulation: the user's transport, observed. */
template <class Transport>
class sim_probe {
public:
    sim_probe(Transport inner, sim_hooks* hooks) : inner_(std::move(inner)), hooks_(hooks) {}
    sim_probe() = default;  // basic_vault's constructor names it; the simulator always passes one

    result<http_response> send(const http_request& r)
    {
        hooks_->transfer_begin(r);
        auto outcome = inner_->send(r);
        hooks_->transfer_end(r, outcome);
        return outcome;
    }

    Transport& inner() noexcept { return *inner_; }

private:
    std::optional<Transport> inner_;
    sim_hooks* hooks_ = nullptr;
};

/** The vault's storage in a simulation: the model, with a seam at every write. */
template <class Storage>
class sim_storage {
public:
    static constexpr bool thread_safe = syncvault::thread_safe_storage<Storage>;

    sim_storage(Storage inner, sim_hooks* hooks) : inner_(std::move(inner)), hooks_(hooks) {}
    sim_storage() = default;  // basic_vault's constructor names it; the simulator always passes one

    std::error_code save(const sync_action& a)
    {
        hooks_->storage_before(sim_hooks::storage_op::save, &a, a.id);
        auto ec = inner_->save(a);
        hooks_->storage_after(sim_hooks::storage_op::save, &a, a.id, ec);
        return ec;
    }
    std::error_code remove(std::string_view id)
    {
        hooks_->storage_before(sim_hooks::storage_op::remove, nullptr, id);
        auto ec = inner_->remove(id);
        hooks_->storage_after(sim_hooks::storage_op::remove, nullptr, id, ec);
        return ec;
    }
    std::error_code clear()
    {
        hooks_->storage_before(sim_hooks::storage_op::clear, nullptr, {});
        auto ec = inner_->clear();
        hooks_->storage_after(sim_hooks::storage_op::clear, nullptr, {}, ec);
        return ec;
    }
    result<std::vector<sync_action>> load_all() { return inner_->load_all(); }
    std::size_t count() const { return static_cast<std::size_t>(inner_->count()); }

    std::error_code flush() requires syncvault::flushable_storage<Storage> { return inner_->flush(); }
    std::vector<diagnostic> take_diagnostics() requires syncvault::diagnosing_storage<Storage>
    {
        return inner_->take_diagnostics();
    }

    Storage& inner() noexcept { return *inner_; }

private:
    std::optional<Storage> inner_;
    sim_hooks* hooks_ = nullptr;
};

inline std::uint64_t fnv1a(std::uint64_t h, std::string_view s) noexcept
{
    for (unsigned char c : s) {
        h ^= c;
        h *= 0x100000001b3ULL;
    }
    return h ^ 0xff;  // line separator
}

inline std::string describe_outcome(const result<http_response>& o)
{
    if (!o) return "error " + o.error().message();
    std::string s = std::to_string(o->status);
    if (auto ra = find_header(o->headers, "Retry-After")) s += " Retry-After: " + std::string(*ra);
    return s;
}

inline std::string_view method_name(http_method m)
{
    return to_string(m);
}

}  // namespace detail

// =================================================================================================
// The simulation
// =================================================================================================

/**
 * Runs seeded fault schedules against a real `basic_vault` and checks every invariant after
 * every step (see the file comment).
 *
 * @tparam StorageFactory models `simulated_storage` (`memory_storage_factory`, `file_journal_factory`, yours)
 * @tparam RetryPolicy    models `syncvault::retry_policy`; built per process by the maker given to `with_retry`
 *                        (default: `jittered_backoff` with a seeded, randomized configuration, or
 *                        construction from the seed, or default construction)
 * @tparam Server         models `simulated_server` (default `model_server`)
 * @tparam Transport      models `syncvault::transport`; built from a `sim_network` (default: the network itself)
 *
 * Runs share nothing: each `run(seed)` builds its own clock, server, store and vaults.
 */
template <class StorageFactory = memory_storage_factory, class RetryPolicy = jittered_backoff,
          class Server = model_server, class Transport = sim_network>
class simulation {
    static_assert(simulated_storage<StorageFactory>,
                  "simulation: StorageFactory must model syncvault::testing::simulated_storage; see "
                  "<syncvault/testing/simulation.hpp>");
    static_assert(
        syncvault::retry_policy<RetryPolicy>,
        "simulation: RetryPolicy must model syncvault::retry_policy; see <syncvault/concepts/retry_policy.hpp>");
    static_assert(simulated_server<Server>, "simulation: Server must model syncvault::testing::simulated_server; see "
                                            "<syncvault/testing/simulation.hpp>");
    static_assert(syncvault::transport<Transport>,
                  "simulation: Transport must model syncvault::transport; see <syncvault/concepts/transport.hpp>");

public:
    using storage_type = typename StorageFactory::storage_type;
    /** The vault under test: the real `basic_vault`, over the simulator's seams. */
    using vault_type = basic_vault<detail::sim_probe<Transport>, detail::sim_storage<storage_type>, manual_connectivity,
                                   RetryPolicy, fake_clock>;

    explicit simulation(simulation_options options = {}, StorageFactory storage = {})
        : options_(std::move(options)), storage_(std::move(storage))
    {}

    /** How each process's retry policy is built, from a seed derived from the run's seed. */
    simulation& with_retry(std::function<RetryPolicy(std::uint64_t seed)> make)
    {
        make_retry_ = std::move(make);
        return *this;
    }
    /** How the run's server model is built. */
    simulation& with_server(std::function<Server(std::uint64_t seed)> make)
    {
        make_server_ = std::move(make);
        return *this;
    }
    /** How each process's transport is built around the simulated network. */
    simulation& with_transport(std::function<Transport(sim_network)> make)
    {
        make_transport_ = std::move(make);
        return *this;
    }

    simulation_options& options() noexcept { return options_; }

    /** One run: the schedule `seed` generates, checked after every step. */
    simulation_result run(std::uint64_t seed) const
    {
        runner r(*this, seed);
        return r.run();
    }

private:
    static RetryPolicy default_retry(std::uint64_t seed)
    {
        if constexpr (std::is_same_v<RetryPolicy, jittered_backoff>) {
            sim_random rng(seed);
            jittered_backoff::options o;
            o.base = std::chrono::milliseconds{rng.between(100, 2'000)};
            o.cap = o.base * rng.between(4, 60);
            constexpr jittered_backoff::jitter kinds[] = {
                jittered_backoff::jitter::full, jittered_backoff::jitter::equal, jittered_backoff::jitter::decorrelated,
                jittered_backoff::jitter::none};
            o.kind = kinds[rng.below(4)];
            o.seed = seed;
            return jittered_backoff(o);
        } else if constexpr (std::is_constructible_v<RetryPolicy, std::uint64_t>) {
            return RetryPolicy(seed);
        } else {
            return RetryPolicy{};
        }
    }

    static Server default_server(std::uint64_t)
    {
        if constexpr (std::is_same_v<Server, model_server>)
            return model_server{};
        else
            return Server{};
    }

    static Transport default_transport(sim_network net)
    {
        if constexpr (std::is_constructible_v<Transport, sim_network>)
            return Transport(net);
        else
            return Transport{};
    }

    class runner;

    simulation_options options_;
    StorageFactory storage_;
    std::function<RetryPolicy(std::uint64_t)> make_retry_;
    std::function<Server(std::uint64_t)> make_server_;
    std::function<Transport(sim_network)> make_transport_;
};

// -------------------------------------------------------------------------------------------------
// One run
// -------------------------------------------------------------------------------------------------

template <class StorageFactory, class RetryPolicy, class Server, class Transport>
class simulation<StorageFactory, RetryPolicy, Server, Transport>::runner final : public detail::sim_hooks {
    using time_point = std::chrono::system_clock::time_point;
    using ms = std::chrono::milliseconds;
    using image_type = typename StorageFactory::image_type;

    // ---- the model of one action, built from what the application can observe ----------------

    enum class state { pending, success, dead, removed };

    struct snapshot {  // one action as storage holds it (or not)
        bool present = false;
        action_state st = action_state::pending;
        int attempts = 0;
        std::uint64_t sequence = 0;
        friend bool operator==(const snapshot&, const snapshot&) = default;
    };

    struct tracked {
        int no = 0;  // #n in traces: the order the simulator first saw it
        std::string id, key;
        http_method method = http_method::post;
        std::string path, body;
        std::uint64_t sequence = 0;
        time_point created_at{}, next_attempt_at{};
        state st = state::pending;
        bool queued_seen = false;   // this lifecycle's `queued` (or an earlier process's) was seen
        bool acknowledged = false;  // a request call returned it, or it survived a restart
        int attempts = 0;           // the last attempt started (this lifecycle)
        bool awaiting = false;      // started, no outcome yet (this process)
        int sends = 0;              // transfers this lifecycle
        bool rolled_back = false;   // a power cut rolled it back: attempt counts may repeat
        int cut = 0;                // attempts cut short by a crash (this lifecycle)
        bool evicted = false;       // dropped from the bounded dead-letter list before its event
        std::optional<result<http_response>> last_outcome;  // what the vault got from its last transfer
        int last_outcome_attempt = 0;
        int applied = 0;  // effects applied at the server by its requests
        // What the vault last wrote for it (SPEC 7: written before the event or the return).
        bool written = false;
        std::optional<sync_action> shadow;
        std::vector<std::size_t> writes;  // indices into write_log_
        std::vector<header> headers;      // given with the request: sensitive ones too
        std::uint64_t process = 0;        // the process it was requested in
    };

    struct write_record {
        std::size_t action;  // index into actions_
        snapshot snap;
    };

    enum class call { none, mutate, read, poll, process_queue, requeue, drop, clear, construct };

public:
    runner(const simulation& sim, std::uint64_t seed)
        : sim_(sim),
          opt_(sim.options_),
          seed_(seed),
          rng_(seed),
          factory_(sim.storage_),
          server_(sim.make_server_ ? sim.make_server_(mix(seed, 0x5e)) : default_server(mix(seed, 0x5e)))
    {}

    simulation_result run()
    {
        factory_.reset();
        configure();
        begin_step("start: " + describe_config());
        build_vault(false);
        end_step();

        next_op_at_ = clock_.now() + gap();
        std::size_t busy_polls = 0;
        while (ops_ < opt_.steps && !violation_) {
            if (wake_ && *wake_ <= next_op_at_) {
                const auto at = std::max(clock_.now(), *wake_);
                busy_polls = at == clock_.now() ? busy_polls + 1 : 0;
                if (busy_polls > 200) {
                    fail("liveness", "poll() keeps asking to be called at the same time without progress");
                    break;
                }
                clock_.set(at);
                step_poll("poll (due)");
            } else {
                if (next_op_at_ > clock_.now()) clock_.set(next_op_at_);
                busy_polls = 0;
                operation();
                ++ops_;
                next_op_at_ = clock_.now() + gap();
            }
        }
        if (!violation_) quiet_period();
        return finish();
    }

private:
    // =============================================================================================
    // Setup
    // =============================================================================================

    static std::uint64_t mix(std::uint64_t seed, std::uint64_t salt) noexcept
    {
        sim_random r(seed ^ (salt * 0x9e3779b97f4a7c15ULL));
        return r.next();
    }

    void configure()
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
        if (opt_.configure) opt_.configure(cfg_);
        if constexpr (std::is_same_v<Server, model_server>)
            if (!sim_.make_server_) server_ = model_server(cfg_.idempotency_header);
        power_cuts_ = opt_.power_cuts && StorageFactory::models_power_loss;
        online_ = true;
    }

    std::string describe_config() const
    {
        const vault_config defaults;  // (a `vault_config{}` temporary here crashes g++ 12)
        std::string s =
            "max_retries=" + std::to_string(cfg_.max_retries) + " write_ahead=" + (cfg_.write_ahead ? "on" : "off");
        if (cfg_.idempotency_key_lifetime.count() > 0)
            s += " key_lifetime=" + std::to_string(cfg_.idempotency_key_lifetime.count() / 1000) + "s";
        if (cfg_.max_pending != defaults.max_pending) s += " max_pending=" + std::to_string(cfg_.max_pending);
        if (cfg_.max_dead_letters != defaults.max_dead_letters)
            s += " max_dead_letters=" + std::to_string(cfg_.max_dead_letters);
        return s;
    }

    RetryPolicy make_retry()
    {
        const auto s = mix(seed_, 0x7e7 + processes_);
        return sim_.make_retry_ ? sim_.make_retry_(s) : default_retry(s);
    }

    Transport make_transport()
    {
        sim_network net(this);
        return sim_.make_transport_ ? sim_.make_transport_(net) : default_transport(net);
    }

    /** Builds the vault over the store; after a crash, checks what it reloaded. */
    void build_vault(bool after_crash)
    {
        ++processes_;
        alive_ = true;
        last_failed_ = false;
        statuses_.clear();
        call_ = call::construct;
        try {
            vault_ = std::make_unique<vault_type>(cfg_, detail::sim_probe<Transport>(make_transport(), this),
                                                  detail::sim_storage<storage_type>(factory_.open(), this),
                                                  manual_connectivity{online_}, make_retry(), clock_);
        } catch (const std::exception& e) {
            call_ = call::none;
            fail("no-loss", std::string("the vault could not be rebuilt over its storage: ") + e.what());
            return;
        }
        call_ = call::none;
        event_sub_ = vault_->on_event([this](const sync_event& e) { on_event(e); });
        status_sub_ = vault_->on_status([this](sync_status s) { on_status(s); });
        wake_sub_ = vault_->on_wake([this] { woken_ = true; });
        wake_.reset();
        woken_ = true;  // a new process polls at once, as background_sync would
        if (after_crash) check_reload();
    }

    // =============================================================================================
    // The schedule
    // =============================================================================================

    ms gap()
    {
        if (rng_.chance(0.1)) return ms{rng_.between(10'000, 300'000)};
        return ms{rng_.between(0, 5'000)};
    }

    void operation()
    {
        enum {
            mutate_op,
            read_op,
            flap,
            process,
            jump,
            weather,
            crash_now,
            crash_armed,
            requeue_op,
            drop_op,
            clear_op,
            idle
        };
        const unsigned weights[] = {40,
                                    8,
                                    opt_.flaps ? 6u : 0u,
                                    5,
                                    opt_.clock_jumps ? 2u : 0u,
                                    opt_.faults ? 4u : 0u,
                                    opt_.crashes ? 2u : 0u,
                                    opt_.crashes ? 3u : 0u,
                                    3,
                                    1,
                                    1,
                                    3};
        switch (rng_.weighted(weights)) {
        case mutate_op: op_mutate(); break;
        case read_op: op_read(); break;
        case flap: op_flap(); break;
        case process: op_process_queue(); break;
        case jump: op_clock_jump(); break;
        case weather: op_weather(); break;
        case crash_now: op_crash(); break;
        case crash_armed: op_arm_crash(); break;
        case requeue_op: op_requeue(); break;
        case drop_op: op_drop(); break;
        case clear_op: op_clear(); break;
        default: step_poll("poll (app)"); break;
        }
    }

    std::string make_path()
    {
        const auto r = rng_.below(100);
        if (r < 6) return "/reject/" + std::to_string(rng_.below(5));
        if (r < 9) return "/gone/" + std::to_string(rng_.below(5));
        if (r < 20) return "/orders";
        return "/items/" + std::to_string(rng_.below(20));
    }

    /** No key (generated), a fresh one, or one used before (pending or not). */
    std::string make_key()
    {
        const auto r = rng_.below(100);
        if (r < 40) return {};
        if (r < 80 || used_keys_.empty()) {
            used_keys_.push_back("k" + std::to_string(++key_counter_));
            return used_keys_.back();
        }
        return used_keys_[used_keys_.size() - 1 - rng_.below(std::min<std::size_t>(used_keys_.size(), 6))];
    }

    std::vector<header> make_headers()
    {
        std::vector<header> h;
        if (rng_.chance(0.3)) h.push_back({"Authorization", "Bearer token-" + std::to_string(rng_.below(1000))});
        if (rng_.chance(0.3)) h.push_back({"X-Request-Tag", "tag-" + std::to_string(rng_.below(1000))});
        return h;
    }

    void op_mutate()
    {
        constexpr http_method methods[] = {http_method::post, http_method::put, http_method::patch,
                                           http_method::delete_};
        const auto method = methods[rng_.below(4)];
        const auto path = make_path();
        request_options o;
        o.idempotency_key = make_key();
        o.headers = make_headers();
        boost::json::value body;
        if (method != http_method::delete_) body = boost::json::object{{"n", ++body_counter_}, {"path", path}};
        begin_step(std::string(detail::method_name(method)) + " " + path + key_note(o));
        request(method, path, body, o, online_);
        end_step();
    }

    void op_read()
    {
        const auto method = rng_.chance(0.5) ? http_method::get : http_method::head;
        const auto path = make_path();
        request_options o;
        if (rng_.chance(0.5)) o.idempotency_key = "g" + std::to_string(++key_counter_);  // keys of their own
        o.queue_if_offline = rng_.chance(0.6);
        o.headers = make_headers();
        begin_step(std::string(detail::method_name(method)) + " " + path + key_note(o) +
                   (o.queue_if_offline ? " queue_if_offline" : ""));
        if (online_)
            do_direct_read(method, path, o);
        else
            request(method, path, nullptr, o, false);
        end_step();
    }

    std::string key_note(const request_options& o) const
    {
        std::string s = o.idempotency_key.empty() ? " key=auto" : " key=" + o.idempotency_key;
        for (const auto& h : o.headers) s += " +" + h.name;
        return s;
    }

    void op_flap()
    {
        online_ = !online_;
        ++stats_.flaps;
        begin_step(online_ ? "network: online" : "network: offline");
        vault_->connectivity().set_online(online_);
        end_step();
    }

    void op_weather()
    {
        const auto r = rng_.below(10);
        fault_rate_ = r < 3 ? 0.0 : r < 7 ? 0.15 : r < 9 ? 0.5 : 0.9;
        begin_step("weather: " + std::to_string(int(fault_rate_ * 100)) + "% faults");
        end_step();
    }

    void op_clock_jump()
    {
        const bool back = rng_.chance(0.4);
        const ms d{rng_.between(60, 2 * 3600) * 1'000};
        ++stats_.clock_jumps;
        begin_step(std::string("clock jumps ") + (back ? "back " : "forward ") + std::to_string(d.count() / 1000) +
                   "s");
        clock_.set(back ? clock_.now() - d : clock_.now() + d);
        end_step();
    }

    void op_crash()
    {
        begin_step("crash (between operations)");
        crash_point("between operations", true);
        end_step();
    }

    void op_arm_crash()
    {
        crash_countdown_ = static_cast<int>(rng_.between(1, 8));
        begin_step("crash armed: at seam point " + std::to_string(crash_countdown_) +
                   " from now (before/after a storage write or a transfer)");
        end_step();
    }

    void op_process_queue()
    {
        begin_step("process_queue()");
        call_ = call::process_queue;
        const auto n = vault_->process_queue();
        call_ = call::none;
        if (alive_ && !violation_) {
            note("-> " + std::to_string(n) + " delivered");
            if (n != successes_in_call_)
                fail("status", "process_queue() returned " + std::to_string(n) + " but " +
                                   std::to_string(successes_in_call_) + " success events fired");
        }
        end_step();
    }

    void op_requeue()
    {
        auto dead = indices(state::dead);
        if (dead.empty()) return step_poll("poll (app)");
        auto& t = actions_[dead[rng_.below(dead.size())]];
        begin_step("requeue #" + std::to_string(t.no));
        bool key_busy = false;
        for (const auto& o : actions_)
            if (o.st == state::pending && o.key == t.key) key_busy = true;
        call_ = call::requeue;
        requeue_target_ = index_of(t.id);
        const bool done = vault_->requeue(t.id);
        call_ = call::none;
        if (alive_ && !violation_) {
            note(done ? "-> requeued" : "-> refused");
            if (done == key_busy)
                fail("send-or-queue", "requeue #" + std::to_string(t.no) + " returned " + (done ? "true" : "false") +
                                          (key_busy ? " while a pending action holds its key" : ""));
            else if (done && (t.st != state::pending || !t.queued_seen))
                fail("lifecycle", "requeue #" + std::to_string(t.no) + " succeeded without a new `queued` event");
            else if (done)
                expect_written_pending(t, "requeue returned");
        }
        end_step();
    }

    void op_drop()
    {
        auto dead = indices(state::dead);
        if (dead.empty()) return step_poll("poll (app)");
        auto& t = actions_[dead[rng_.below(dead.size())]];
        begin_step("drop_dead_letter #" + std::to_string(t.no));
        call_ = call::drop;
        const bool done = vault_->drop_dead_letter(t.id);
        call_ = call::none;
        if (alive_ && !violation_) {
            if (!done) fail("status", "drop_dead_letter refused dead letter #" + std::to_string(t.no));
            t.st = state::removed;
            if (t.shadow) fail("durability", "dropped dead letter #" + std::to_string(t.no) + " is still stored");
        }
        end_step();
    }

    void op_clear()
    {
        begin_step("clear_queue()");
        call_ = call::clear;
        vault_->clear_queue();
        call_ = call::none;
        if (alive_ && !violation_) {
            for (auto& t : actions_) {
                if (t.st != state::pending) continue;
                t.st = state::removed;
                if (t.shadow) fail("durability", "cleared action #" + std::to_string(t.no) + " is still stored");
            }
            last_failed_ = false;
        }
        end_step();
    }

    /** A poll step: what `background_sync` does at a due time, or when woken. */
    void step_poll(const std::string& what)
    {
        begin_step(what);
        call_ = call::poll;
        auto wake = vault_->poll();
        call_ = call::none;
        woken_ = false;  // its own wake-ups: background_sync ignores those from its thread
        if (alive_ && !violation_) {
            wake_ = wake;
            if (wake)
                note("-> next wake " + at(*wake));
            else
                note("-> nothing scheduled");
            if (online_ && !wake && count(state::pending) > 0)
                fail("liveness", "poll() scheduled nothing while online with " + std::to_string(count(state::pending)) +
                                     " actions pending");
        }
        end_step();
    }

    // =============================================================================================
    // Request calls
    // =============================================================================================

    template <class Body>
    void request(http_method method, const std::string& path, const Body& body, const request_options& o, bool online)
    {
        const auto before = actions_.size();
        const auto pending = count(state::pending);
        const bool read = method == http_method::get || method == http_method::head;
        int dup = -1;
        if (!o.idempotency_key.empty())
            for (std::size_t i = 0; i < actions_.size(); ++i)
                if (actions_[i].st == state::pending && actions_[i].key == o.idempotency_key) dup = int(i);
        const bool immediate = dup < 0 && online && pending == 0 && pending < cfg_.max_pending;
        immediate_expected_ = immediate;
        request_headers_ = o.headers;
        call_ = call::mutate;
        send_result r = [&] {
            switch (method) {
            case http_method::post: return vault_->post(path, body, o);
            case http_method::put: return vault_->put(path, body, o);
            case http_method::patch: return vault_->patch(path, body, o);
            case http_method::delete_: return vault_->delete_(path, o);
            case http_method::get: return vault_->get(path, o);
            case http_method::head: return vault_->head(path, o);
            }
            return vault_->post(path, body, o);
        }();
        call_ = call::none;
        immediate_expected_ = false;
        if (!alive_) {
            note("(the process crashed during the call: not acknowledged)");
            return;
        }
        if (violation_) return;
        auto name = [&](std::string_view id) {
            auto i = index_of(id);
            return i < 0 ? std::string("an unknown action") : "#" + std::to_string(actions_[std::size_t(i)].no);
        };
        if (r.is_queued())
            note("-> queued " + name(r.action_id()));
        else if (r.is_sent())
            note("-> sent " + std::to_string(r.response()->status) + " " + name(r.action_id()));
        else
            note("-> error " + r.error().message());

        if (read && !o.queue_if_offline) {
            if (r.error() != make_error_code(errc::offline) || actions_.size() != before)
                fail("send-or-queue", "an offline GET/HEAD without queue_if_offline must fail with errc::offline");
            return;
        }
        if (dup >= 0) {
            if (!r.is_queued() || r.action_id() != actions_[std::size_t(dup)].id || actions_.size() != before)
                fail("send-or-queue", "a request with the key of pending #" +
                                          std::to_string(actions_[std::size_t(dup)].no) +
                                          " must return that action, queued, and queue nothing");
            return;
        }
        if (pending >= cfg_.max_pending) {
            if (r.error() != make_error_code(errc::queue_full) || actions_.size() != before)
                fail("send-or-queue",
                     "a full queue (" + std::to_string(pending) + " pending) must refuse with queue_full");
            return;
        }
        if (actions_.size() != before + 1) {
            fail("send-or-queue",
                 "a request call made " + std::to_string(actions_.size() - before) + " actions, not one");
            return;
        }
        auto& t = actions_.back();
        if (r.action_id() != t.id) {
            fail("send-or-queue", "the result names " + name(r.action_id()) + ", not the new #" + std::to_string(t.no));
            return;
        }
        t.acknowledged = r.is_queued() || r.is_sent();
        if (r.is_queued()) {
            if (t.st != state::pending)
                return fail("send-or-queue", "queued result for #" + std::to_string(t.no) + " which is not pending");
            if (immediate != (t.attempts > 0))
                return fail("send-or-queue",
                            std::string("#") + std::to_string(t.no) +
                                (immediate ? " was not tried at once though the vault was online and idle"
                                           : " was tried at once though it had to wait"));
            expect_written_pending(t, "the request returned queued");
        } else if (r.is_sent()) {
            if (!immediate || (t.st != state::success && t.st != state::dead))
                return fail("send-or-queue",
                            "sent result for #" + std::to_string(t.no) + " which was not tried at once to an end");
            if (!t.last_outcome || !*t.last_outcome || (*t.last_outcome)->status != r.response()->status ||
                (*t.last_outcome)->body != r.response()->body)
                return fail("send-or-queue", "the sent result's response is not the one the transport returned");
        } else if (!(t.st == state::dead && immediate)) {
            fail("send-or-queue", "request for #" + std::to_string(t.no) + " failed with " + r.error().message());
        }
    }

    // op_read's online branch: a direct read, no action.
    void do_direct_read(http_method method, const std::string& path, const request_options& o)
    {
        const auto before = actions_.size();
        direct_ = true;
        direct_outcome_.reset();
        call_ = call::read;
        auto r = method == http_method::get ? vault_->get(path, o) : vault_->head(path, o);
        call_ = call::none;
        direct_ = false;
        if (!alive_ || violation_) return;
        if (r.is_sent())
            note("-> sent " + std::to_string(r.response()->status));
        else
            note("-> error " + r.error().message());
        if (actions_.size() != before || !r.action_id().empty() || r.is_queued())
            return fail("send-or-queue", "an online GET/HEAD became an action");
        if (!direct_outcome_) return fail("send-or-queue", "an online GET/HEAD was not sent");
        if (r.is_sent() != bool(*direct_outcome_) ||
            (r.is_sent() && r.response()->status != (*direct_outcome_)->status))
            fail("send-or-queue", "an online GET/HEAD's result is not what the transport returned");
    }

    // =============================================================================================
    // Crashes
    // =============================================================================================

    /** A seam: crash here if armed (or unconditionally between operations). */
    void crash_point(const char* where, bool now = false)
    {
        if (!alive_ || violation_ || !vault_ || call_ == call::construct) return;
        if (!now && (crash_countdown_ <= 0 || --crash_countdown_ > 0)) return;
        crash_image_ = factory_.capture(vault_->storage().inner());
        crash_writes_ = write_log_.size();
        crash_floor_ = StorageFactory::durable_inserts ? synced_floor_ : 0;
        alive_ = false;
        ++stats_.crashes;
        note(std::string("** crash ") + where);
    }

    /** After the call the crash interrupted: the process is gone; a new one starts. */
    void restart()
    {
        event_sub_.reset();
        status_sub_.reset();
        wake_sub_.reset();
        vault_.reset();
        const bool power = power_cuts_ && rng_.chance(0.5);
        const bool dropped = factory_.restore(*crash_image_, power, rng_);
        crash_image_.reset();
        power_loss_ = power;
        if (power) ++stats_.power_cuts;
        begin_step(std::string("restart") + (power ? " after a power cut" : "") +
                   (dropped ? " (unsynced bytes lost)" : ""));
        build_vault(true);
        end_step();
    }

    /** The store a new process reloaded must be explained by the writes before the crash. */
    void check_reload()
    {
        if (violation_) return;
        const auto pending = vault_->pending_actions();
        const auto dead = vault_->dead_letters();
        std::vector<snapshot> reloaded(actions_.size());
        std::vector<const sync_action*> loaded(actions_.size(), nullptr);
        for (const auto* list : {&pending, &dead})
            for (const auto& a : *list) {
                const auto i = index_of(a.id);
                if (i < 0) return fail("no-loss", "after the restart the vault holds an action no process ever wrote");
                reloaded[std::size_t(i)] = {true, a.state, a.attempts, a.sequence};
                loaded[std::size_t(i)] = &a;
            }
        for (std::size_t i = 0; i < actions_.size(); ++i) {
            const auto* a = loaded[i];
            const auto& t = actions_[i];
            if (a && (a->method != t.method || a->path != t.path || a->body != t.body || a->idempotency_key != t.key))
                return fail("no-loss", "#" + std::to_string(t.no) + " came back from storage altered");
        }

        // Find a cut c of the write log, crash_floor_ <= c <= crash_writes_, that explains the store
        // (exactly the crash point when no power was lost).
        const std::size_t lo = power_loss_ ? std::min(crash_floor_, crash_writes_) : crash_writes_;
        std::vector<snapshot> at(actions_.size());
        // Dead letters the new process dropped while loading (the bounded list) must have been dead.
        std::vector<bool> evicted(actions_.size(), false);
        for (auto i : evicted_on_load_) evicted[i] = true;
        auto matches = [&](std::size_t i) {
            return evicted[i] ? at[i].present && at[i].st == action_state::dead : at[i] == reloaded[i];
        };
        std::size_t mismatched = 0;
        for (std::size_t i = 0; i < actions_.size(); ++i) mismatched += !matches(i);
        std::optional<std::size_t> cut;
        for (std::size_t c = 0; c <= crash_writes_; ++c) {
            if (c >= lo && mismatched == 0) {
                cut = c;
                break;
            }
            if (c == crash_writes_) break;
            const auto& w = write_log_[c];
            mismatched -= !matches(w.action);
            at[w.action] = w.snap;
            mismatched += !matches(w.action);
        }
        if (!cut) {
            // Describe the first difference from the state at the crash point.
            std::vector<snapshot> last(actions_.size());
            for (std::size_t c = 0; c < crash_writes_; ++c) last[write_log_[c].action] = write_log_[c].snap;
            std::string what;
            for (std::size_t i = 0; i < actions_.size() && what.empty(); ++i)
                if (!(last[i] == reloaded[i]) && !evicted[i])
                    what = "#" + std::to_string(actions_[i].no) + " was " + describe(last[i]) +
                           " when the process died, and came back " + describe(reloaded[i]);
            const bool acked_lost = [&] {
                for (std::size_t i = 0; i < actions_.size(); ++i)
                    if (last[i].present && !reloaded[i].present && actions_[i].acknowledged && !evicted[i]) return true;
                return false;
            }();
            return fail("no-loss",
                        std::string(power_loss_ ? "after a power cut no prefix of the writes since the last sync"
                                                : "after a crash the store is not what was written before it") +
                            (acked_lost ? " (an acknowledged action is lost)" : "") + ": " + what);
        }
        if (*cut < crash_writes_)
            note("power cut kept " + std::to_string(*cut - lo) + " of " + std::to_string(crash_writes_ - lo) +
                 " unsynced writes");
        // The writes after the cut never happened, as far as the new process is concerned.
        rewind_writes(*cut);
        for (auto i : std::exchange(evicted_on_load_, {})) {
            note("#" + std::to_string(actions_[i].no) + " dropped from the bounded dead-letter list on load");
            log_write(i, {});
            actions_[i].shadow.reset();
            actions_[i].st = state::removed;
            actions_[i].awaiting = false;
        }

        // The model follows the reloaded store.
        for (std::size_t i = 0; i < actions_.size(); ++i) {
            auto& t = actions_[i];
            const auto& r = reloaded[i];
            const bool was_awaiting = std::exchange(t.awaiting, false);
            if (r.present) {
                const auto& a = *loaded[i];
                // Its last attempt's outcome is lost (cut by the crash, or forgotten by a power
                // cut, perhaps back into an earlier lifecycle): one more attempt is tolerated
                // unless `count_cut_attempts`.
                if (r.st == action_state::pending && a.attempts > 0 &&
                    (was_awaiting || t.st != state::pending || a.attempts != t.attempts))
                    t.cut = std::max(t.cut + 1, a.attempts - cfg_.max_retries);
                const auto st = r.st == action_state::dead ? state::dead : state::pending;
                if (st != t.st || a.attempts < t.attempts || a.sequence != t.sequence) {
                    if (power_loss_) t.rolled_back = true;
                    if (st == state::pending && t.st != state::pending) t.queued_seen = true;  // resurrected
                }
                if (st == state::pending && a.attempts < t.attempts) t.sends = std::min(t.sends, a.attempts);
                t.st = st;
                t.attempts = a.attempts;
                t.sequence = a.sequence;
                t.next_attempt_at = a.next_attempt_at;
                t.created_at = a.created_at;
                t.queued_seen = true;
                t.acknowledged = true;
                if (st == state::pending && a.next_attempt_at > clock_.now() + ms(vault_->retry_policy().max_delay()))
                    return fail("timers", "#" + std::to_string(t.no) + " reloaded with a next attempt beyond the cap");
            } else if (t.st == state::pending || t.st == state::dead) {
                // Gone: its removal was written (a success, a clear or a drop whose end the crash
                // cut; record_remove vetted it), or it was never durable (write_ahead off, or a
                // power cut under durability::none).
                const bool removal_written = !t.writes.empty() && !write_log_[t.writes.back()].snap.present;
                if (removal_written && t.last_outcome && t.last_outcome_attempt == t.attempts &&
                    outcome_of(*t.last_outcome) == outcome_kind::success)
                    t.st = state::success;
                else if (removal_written)
                    t.st = state::removed;
                else if (t.acknowledged && t.written && StorageFactory::durable_inserts)
                    return fail("no-loss", "acknowledged #" + std::to_string(t.no) + " did not survive the restart");
                else
                    t.st = state::removed;
            }
        }
        if constexpr (syncvault::diagnosing_storage<storage_type>) {
            for (const auto& d : vault_->diagnostics())
                return fail("no-loss", "a crash that only cut the journal's tail was reported as damage: " + d.message);
        }
    }

    /** Forgets writes past `cut`: the shadows become what the store holds. */
    void rewind_writes(std::size_t cut)
    {
        write_log_.resize(cut);
        synced_floor_ = cut;  // what the new process reloaded is on disk
        for (auto& t : actions_) {
            while (!t.writes.empty() && t.writes.back() >= cut) t.writes.pop_back();
            t.written = !t.writes.empty();
            if (!t.written)
                t.shadow.reset();
            else if (!write_log_[t.writes.back()].snap.present)
                t.shadow.reset();
            else if (t.shadow) {
                const auto& s = write_log_[t.writes.back()].snap;
                t.shadow->state = s.st;
                t.shadow->attempts = s.attempts;
                t.shadow->sequence = s.sequence;
            } else {
                const auto& s = write_log_[t.writes.back()].snap;
                sync_action a;
                a.id = t.id;
                a.state = s.st;
                a.attempts = s.attempts;
                a.sequence = s.sequence;
                t.shadow = a;
            }
        }
    }

    static std::string describe(const snapshot& s)
    {
        if (!s.present) return "missing";
        return std::string(s.st == action_state::dead ? "dead" : "pending") + " (attempts " +
               std::to_string(s.attempts) + ", sequence " + std::to_string(s.sequence) + ")";
    }

    // =============================================================================================
    // The quiet period
    // =============================================================================================

    void quiet_period()
    {
        fault_rate_ = 0;
        crash_countdown_ = 0;
        begin_step("quiet period: online, no faults");
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

    simulation_result finish()
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
        event_sub_.reset();
        status_sub_.reset();
        wake_sub_.reset();
        vault_.reset();
        return r;
    }

    // =============================================================================================
    // Seams
    // =============================================================================================

    result<http_response> network_send(const http_request& r) override
    {
        if (!alive_) return make_error_code(errc::connection_failed);  // nothing leaves a dead process
        crash_point("before the request reached the network");
        if (!alive_) return make_error_code(errc::connection_failed);
        ++stats_.requests;

        tracked* x = nullptr;
        if (!direct_) {
            x = in_flight();
            if (!x) {
                fail("fifo", "the network saw a request (" + r.url + ") while no attempt was in flight");
                return make_error_code(errc::connection_failed);
            }
            const auto key = find_header(r.headers, cfg_.idempotency_header);
            if (!key || *key != x->key || r.method != x->method || r.body != x->body ||
                r.url != cfg_.base_url + x->path) {
                const auto what = std::string(detail::method_name(r.method)) + " " + r.url;
                std::string whose =
                    (key ? "a request with an unknown key (" : "a request without a key (") + what + ")";
                for (const auto& o : actions_)
                    if (key && o.key == *key && r.url == cfg_.base_url + o.path)
                        whose = "#" + std::to_string(o.no) + "'s request";
                fail("fifo", "the network saw " + whose + " while #" + std::to_string(x->no) +
                                 "'s attempt was in flight (reordered, replayed or altered)");
                return make_error_code(errc::connection_failed);
            }
        }

        if (x) {
            for (const auto& h : x->headers) {
                const bool sensitive = std::any_of(cfg_.sensitive_headers.begin(), cfg_.sensitive_headers.end(),
                                                   [&](const auto& s) { return header_name_equals(s, h.name); });
                const bool present =
                    std::any_of(r.headers.begin(), r.headers.end(), [&](const auto& g) { return g == h; });
                if (present != (!sensitive || x->process == processes_)) {
                    fail("headers",
                         "#" + std::to_string(x->no) + "'s attempt " + (present ? "carries " : "lacks ") + h.name +
                             (sensitive ? (present ? " in a later process" : " in the process it was given to") : ""));
                    return make_error_code(errc::connection_failed);
                }
            }
        }
        const std::string who = x ? "#" + std::to_string(x->no) : std::string("read");
        clock_.advance(ms{rng_.between(0, 300)});  // latency
        enum {
            none,
            refused,
            timeout,
            lost,
            proxy_5xx,
            applied_5xx,
            too_many_seconds,
            too_many_date,
            unavailable,
            request_timeout
        };
        int fault = none;
        if (opt_.faults && fault_rate_ > 0 && rng_.chance(fault_rate_)) {
            const unsigned weights[] = {0, 15, 10, 15, 15, 5, 10, 8, 7, 5};
            fault = int(rng_.weighted(weights));
            ++stats_.faults;
        }
        auto retry_after = [&](bool date) {
            const auto s = rng_.between(0, 90);
            return date ? format_http_date(clock_.now() + std::chrono::seconds{s}) : std::to_string(s);
        };
        result<http_response> out = make_error_code(errc::connection_failed);
        switch (fault) {
        case refused: note("net " + who + ": connection refused"); return make_error_code(errc::connection_failed);
        case timeout:
            clock_.advance(cfg_.receive_timeout);
            note("net " + who + ": timed out before the server");
            return make_error_code(errc::timeout);
        case proxy_5xx: {
            constexpr int codes[] = {500, 502, 503, 504};
            http_response resp{codes[rng_.below(4)], {}, "proxy"};
            if (resp.status == 503 && rng_.chance(0.5))
                resp.headers.push_back({"Retry-After", retry_after(rng_.chance(0.5))});
            note("net " + who + ": proxy answers " + detail::describe_outcome(resp));
            return resp;
        }
        case too_many_seconds:
        case too_many_date: {
            http_response resp{429, {{"Retry-After", retry_after(fault == too_many_date)}}, "slow down"};
            note("net " + who + ": " + detail::describe_outcome(resp));
            return resp;
        }
        case unavailable: {
            http_response resp{503, {}, "maintenance"};
            if (rng_.chance(0.7)) resp.headers.push_back({"Retry-After", retry_after(rng_.chance(0.5))});
            note("net " + who + ": " + detail::describe_outcome(resp));
            return resp;
        }
        case request_timeout: note("net " + who + ": 408"); return http_response{408, {}, "request timeout"};
        default: break;
        }

        auto reply = server_.handle(r, clock_.now());
        note("server " + who + ": " + std::to_string(reply.response.status) + (reply.applied ? " (applied)" : ""));
        if (reply.applied && x) {
            ++stats_.effects;
            on_applied(*x);
            if (violation_) return make_error_code(errc::connection_failed);
        } else if (reply.applied) {
            if (auto key = find_header(r.headers, cfg_.idempotency_header)) ++applied_[std::string(*key)];
        }
        crash_point("after the server answered");
        if (!alive_) return make_error_code(errc::connection_failed);
        if (fault == lost) {
            note("net " + who + ": response lost");
            if (rng_.chance(0.5)) clock_.advance(cfg_.receive_timeout);
            return make_error_code(rng_.chance(0.5) ? errc::timeout : errc::connection_failed);
        }
        if (fault == applied_5xx) {
            note("net " + who + ": gateway answers 504 after the server applied it");
            return http_response{504, {}, "gateway timeout"};
        }
        return std::move(reply.response);
    }

    void on_applied(tracked& x)
    {
        if (++applied_[x.key] > 1)
            return fail("exactly-once",
                        "the effect of key " + show_key(x) + " was applied twice (#" + std::to_string(x.no) + ")");
        if (++x.applied > 1) return fail("exactly-once", "#" + std::to_string(x.no) + "'s effect was applied twice");
        for (const auto& y : actions_)
            if (y.st == state::pending && y.sequence < x.sequence && applied_count(y.key) == 0)
                return fail("fifo", "#" + std::to_string(x.no) + "'s effect was applied before that of #" +
                                        std::to_string(y.no) + ", queued earlier and still pending");
    }

    void transfer_begin(const http_request&) override
    {
        if (!alive_ || violation_ || direct_) return;
        auto* x = in_flight();
        if (!x) return fail("lifecycle", "the transport was called without a `started` event");
        ++x->sends;
        if (x->sends > attempt_limit(*x) && !x->rolled_back)
            return fail("attempts", "#" + std::to_string(x->no) + " was sent " + std::to_string(x->sends) +
                                        " times in one lifecycle (max_retries " + std::to_string(cfg_.max_retries) +
                                        ")");
        if (vault_->status() != sync_status::syncing)
            return fail("status", std::string("status() is ") + std::string(to_string(vault_->status())) +
                                      " while a transfer runs");
        if (vault_->pending_count() != count(state::pending))
            return fail("status", "pending_count() is " + std::to_string(vault_->pending_count()) +
                                      " during a transfer; the model has " + std::to_string(count(state::pending)));
    }

    void transfer_end(const http_request&, const result<http_response>& outcome) override
    {
        if (!alive_ || violation_) return;
        if (direct_) {
            direct_outcome_ = outcome;
            return;
        }
        if (auto* x = in_flight()) {
            x->last_outcome = outcome;
            x->last_outcome_attempt = x->attempts;
        }
    }

    void storage_before(storage_op, const sync_action*, std::string_view) override
    {
        crash_point("before a storage write");
    }

    void storage_after(storage_op op, const sync_action* a, std::string_view id, std::error_code ec) override
    {
        if (!alive_ || violation_ || ec) return;
        if (op == storage_op::save)
            record_save(*a);
        else if (op == storage_op::remove)
            record_remove(id);
        else
            for (auto& t : actions_)
                if (t.shadow) record_remove(t.id);
        crash_point("after a storage write");
    }

    void record_save(const sync_action& a)
    {
        auto i = index_of(a.id);
        if (i < 0) i = int(add_action(a));
        auto& t = actions_[std::size_t(i)];
        for (const auto& h : a.headers)
            for (const auto& s : cfg_.sensitive_headers)
                if (header_name_equals(h.name, s))
                    return fail("durability",
                                "#" + std::to_string(t.no) + " was stored with its " + h.name + " header");
        if (a.attempts > attempt_limit(t))
            return fail("attempts", "#" + std::to_string(t.no) + " stored with " + std::to_string(a.attempts) +
                                        " attempts (max_retries " + std::to_string(cfg_.max_retries) + cut_note(t) +
                                        ")");
        if (a.state == action_state::dead && (!t.shadow || t.shadow->state != action_state::dead)) {
            if (auto why = dead_letter_unjustified(t, a.attempts, a.created_at))
                return fail("dead-letter", "#" + std::to_string(t.no) + " stored as a dead letter " + *why);
        }
        const bool insert = !t.shadow;
        log_write(std::size_t(i), {true, a.state, a.attempts, a.sequence});
        t.shadow = a;
        if (insert) synced_floor_ = write_log_.size();  // an insert syncs everything before it
    }

    void record_remove(std::string_view id)
    {
        const auto i = index_of(id);
        if (i < 0) return;
        auto& t = actions_[std::size_t(i)];
        if (call_ == call::construct) {  // the bounded dead-letter list, applied on load
            evicted_on_load_.push_back(std::size_t(i));
            return;
        }
        if (!t.shadow) return;
        const bool dead = t.shadow->state == action_state::dead;
        const bool succeeded = t.last_outcome && t.last_outcome_attempt == t.shadow->attempts &&
                               outcome_of(*t.last_outcome) == outcome_kind::success;
        if (!(call_ == call::clear || dead || succeeded))
            return fail("no-loss", "#" + std::to_string(t.no) + " was removed from storage without a success");
        if (dead && call_ != call::drop) {  // the bounded dead-letter list dropped its oldest
            note("#" + std::to_string(t.no) + " dropped from the bounded dead-letter list");
            if (t.st == state::dead)
                t.st = state::removed;
            else
                t.evicted = true;  // before its dead_letter event was delivered
        }
        log_write(std::size_t(i), {});
        t.shadow.reset();
    }

    void log_write(std::size_t i, snapshot s)
    {
        actions_[i].writes.push_back(write_log_.size());
        actions_[i].written = true;
        write_log_.push_back({i, s});
    }

    std::size_t add_action(const sync_action& a)
    {
        tracked t;
        t.no = int(actions_.size()) + 1;
        t.id = a.id;
        t.key = a.idempotency_key;
        t.method = a.method;
        t.path = a.path;
        t.body = a.body;
        t.sequence = a.sequence;
        t.created_at = a.created_at;
        t.next_attempt_at = a.next_attempt_at;
        t.attempts = a.attempts;
        if (call_ == call::mutate) {  // the request being made now: remember what it was given
            t.headers = request_headers_;
            t.process = processes_;
        }
        actions_.push_back(std::move(t));
        by_id_.emplace(a.id, actions_.size() - 1);
        return actions_.size() - 1;
    }

    // =============================================================================================
    // Events and status
    // =============================================================================================

    void on_status(sync_status s)
    {
        if (!alive_ || violation_) return;
        if (!statuses_.empty() && statuses_.back() == s)
            return fail("status", std::string("on_status delivered ") + std::string(to_string(s)) + " twice in a row");
        statuses_.push_back(s);
    }

    void on_event(const sync_event& e)
    {
        if (!alive_ || violation_) return;
        const auto i = index_of(e.action_id);
        if (e.status == sync_event_status::queued) return on_queued(e, i);
        if (i < 0) return fail("lifecycle", std::string(to_string(e.status)) + " event for an action never queued");
        auto& t = actions_[std::size_t(i)];
        const auto n = "#" + std::to_string(t.no);
        note(n + " " + std::string(to_string(e.status)) + ":" + std::to_string(e.attempt));
        if (e.idempotency_key != t.key) return fail("lifecycle", n + "'s event carries another key");
        if (!t.queued_seen)
            return fail("lifecycle", n + " has a " + std::string(to_string(e.status)) + " event before `queued`");

        switch (e.status) {
        case sync_event_status::started: return on_started(t, e);
        case sync_event_status::failed: return on_failed(t, e);
        case sync_event_status::success: return on_success(t, e);
        case sync_event_status::dead_letter: return on_dead(t, e);
        default: return;
        }
    }

    void on_queued(const sync_event& e, int i)
    {
        const auto pending = vault_->pending_actions();
        auto it = std::find_if(pending.begin(), pending.end(), [&](const auto& a) { return a.id == e.action_id; });
        if (it == pending.end()) return fail("lifecycle", "a `queued` event for an action not in the queue");
        if (i < 0) i = int(add_action(*it));
        auto& t = actions_[std::size_t(i)];
        note("#" + std::to_string(t.no) + " queued" + (t.key.size() == 36 ? "" : " key=" + t.key));
        if (t.queued_seen) {
            if (t.st != state::dead || call_ != call::requeue || index_of(e.action_id) != requeue_target_)
                return fail("lifecycle", "#" + std::to_string(t.no) + " has a second `queued` event");
            // requeue: a new lifecycle
            t.attempts = 0;
            t.sends = 0;
            t.rolled_back = false;
            t.cut = 0;
            t.evicted = false;
            t.last_outcome.reset();
        }
        for (const auto& o : actions_)
            if (&o != &t && o.queued_seen && o.sequence >= it->sequence &&
                (o.st == state::pending || o.st == state::dead))
                return fail("fifo", "#" + std::to_string(t.no) + " was queued with sequence " +
                                        std::to_string(it->sequence) + ", not after #" + std::to_string(o.no) + "'s " +
                                        std::to_string(o.sequence));
        t.queued_seen = true;
        t.st = state::pending;
        t.sequence = it->sequence;
        t.created_at = it->created_at;
        t.next_attempt_at = it->next_attempt_at;
        if (it->attempts != 0)
            return fail("attempts",
                        "#" + std::to_string(t.no) + " queued with attempts " + std::to_string(it->attempts));
        if (e.attempt != 0) return fail("lifecycle", "`queued` carries attempt " + std::to_string(e.attempt));
        if (cfg_.write_ahead || !immediate_expected_) expect_written_pending(t, "`queued` fired");
    }

    void on_started(tracked& t, const sync_event& e)
    {
        const auto n = "#" + std::to_string(t.no);
        if (t.st != state::pending || t.awaiting)
            return fail("lifecycle",
                        n + " started while " + (t.awaiting ? "an attempt was already running" : "not pending"));
        if (e.attempt != t.attempts + 1)
            return fail("attempts", n + " started attempt " + std::to_string(e.attempt) + " after attempt " +
                                        std::to_string(t.attempts));
        if (e.attempt > attempt_limit(t))
            return fail("attempts", n + " started attempt " + std::to_string(e.attempt) + " (max_retries " +
                                        std::to_string(cfg_.max_retries) + cut_note(t) + ")");
        if (!online_) return fail("send-or-queue", n + " was attempted while offline");
        if (call_ == call::poll && e.time < t.next_attempt_at)
            return fail("timers", n + " was attempted by poll() at " + at(e.time) + ", before its next-attempt time " +
                                      at(t.next_attempt_at));
        if (cfg_.idempotency_key_lifetime.count() > 0 && e.time - t.created_at > cfg_.idempotency_key_lifetime)
            return fail("dead-letter", n + " was replayed after its idempotency key expired");
        for (const auto& o : actions_)
            if (o.st == state::pending && o.sequence < t.sequence)
                return fail("fifo", n + " started while #" + std::to_string(o.no) + ", queued before it, was pending");
        if (t.written || cfg_.write_ahead) {
            if (!t.shadow || t.shadow->state != action_state::pending || t.shadow->attempts != e.attempt)
                return fail("durability",
                            n + "'s attempt " + std::to_string(e.attempt) + " started before its count was stored");
        }
        t.attempts = e.attempt;
        t.awaiting = true;
    }

    /** Checks an outcome event against the transfer's real outcome; nullopt when it fits. */
    std::optional<std::string> outcome_mismatch(const tracked& t, const sync_event& e, outcome_kind expected_kind)
    {
        if (!t.awaiting || e.attempt != t.attempts) return "without a matching `started`";
        if (!t.last_outcome || t.last_outcome_attempt != t.attempts) return "without a transfer";
        const auto kind = outcome_of(*t.last_outcome);
        if (kind != expected_kind)
            return "but the transport returned " + detail::describe_outcome(*t.last_outcome) +
                   ", which the retry table calls " + kind_name(kind);
        const auto& o = *t.last_outcome;
        if (o && (!e.response || e.response->status != o->status || e.response->body != o->body))
            return "carrying another response than the transport's " + detail::describe_outcome(o);
        return std::nullopt;
    }

    void on_failed(tracked& t, const sync_event& e)
    {
        const auto n = "#" + std::to_string(t.no);
        if (auto why = outcome_mismatch(t, e, outcome_kind::retry))
            return fail("outcome", n + " failed:" + std::to_string(e.attempt) + " " + *why);
        if (e.attempt >= attempt_limit(t))
            return fail("dead-letter",
                        n + " failed attempt " + std::to_string(e.attempt) + " and will retry beyond max_retries");
        t.awaiting = false;
        last_failed_ = true;
        if (!t.shadow || t.shadow->attempts != e.attempt || t.shadow->state != action_state::pending)
            return fail("durability", n + "'s failed attempt was reported before it was stored");
        // The next attempt's time: Retry-After (capped) if given, never beyond the cap.
        const auto pending = vault_->pending_actions();
        auto it = std::find_if(pending.begin(), pending.end(), [&](const auto& a) { return a.id == t.id; });
        if (it == pending.end()) return fail("status", n + " failed but is not in pending_actions()");
        const auto cap = ms(vault_->retry_policy().max_delay());
        auto low = e.time;
        if (auto ra = retry_after_of(*t.last_outcome, e.time)) low = e.time + std::min(*ra, cap);
        if (it->next_attempt_at < low || it->next_attempt_at > e.time + cap)
            return fail("timers", n + "'s next attempt is at " + at(it->next_attempt_at) + ", outside [" + at(low) +
                                      ", " + at(e.time + cap) + "] (Retry-After and the cap)");
        t.next_attempt_at = it->next_attempt_at;
    }

    void on_success(tracked& t, const sync_event& e)
    {
        const auto n = "#" + std::to_string(t.no);
        if (auto why = outcome_mismatch(t, e, outcome_kind::success)) return fail("outcome", n + " success " + *why);
        if (applied_count(t.key) != 1)
            return fail("exactly-once", n + " reached success but its effect was applied " +
                                            std::to_string(applied_count(t.key)) + " times at the server");
        t.awaiting = false;
        t.st = state::success;
        last_failed_ = false;
        ++successes_in_call_;
        ++stats_.successes;
        if (t.shadow) return fail("durability", n + "'s success fired before its removal was written");
    }

    void on_dead(tracked& t, const sync_event& e)
    {
        const auto n = "#" + std::to_string(t.no);
        if (t.awaiting) {
            if (e.attempt != t.attempts) return fail("lifecycle", n + " dead_letter for another attempt than started");
            if (auto why = dead_letter_unjustified(t, t.attempts, t.created_at))
                return fail("dead-letter", n + " dead-lettered " + *why);
            const auto& o = *t.last_outcome;
            if (o && (!e.response || e.response->status != o->status))
                return fail("outcome", n + "'s dead_letter carries another response than the transport's");
            last_failed_ = true;
        } else if (!(e.error == make_error_code(errc::key_expired) && cfg_.idempotency_key_lifetime.count() > 0 &&
                     e.time - t.created_at > cfg_.idempotency_key_lifetime) &&
                   !(e.error == make_error_code(errc::max_retries_exceeded) && t.attempts >= cfg_.max_retries + 1 &&
                     t.cut > 0)) {
            return fail("lifecycle", n + " dead-lettered without an attempt, an expired key or a spent budget");
        }
        t.awaiting = false;
        t.st = t.evicted ? state::removed : state::dead;
        ++stats_.dead_letters;
        if (!t.evicted && (!t.shadow || t.shadow->state != action_state::dead))
            return fail("durability", n + "'s dead_letter fired before it was stored as dead");
    }

    /** Why a dead letter at `attempts` would be unjustified; nullopt when it is justified. */
    std::optional<std::string> dead_letter_unjustified(const tracked& t, int attempts, time_point created_at)
    {
        if (cfg_.idempotency_key_lifetime.count() > 0 && clock_.now() - created_at > cfg_.idempotency_key_lifetime)
            return std::nullopt;
        // Attempts cut short by crashes count too: once they spend the budget, the action is dead
        // (max_retries_exceeded) whatever the lost outcome was, rather than sent once too often.
        if (attempts >= cfg_.max_retries + 1 && t.cut > 0) return std::nullopt;
        if (!t.last_outcome || t.last_outcome_attempt != attempts) return "without an attempt or an expired key";
        const auto kind = outcome_of(*t.last_outcome);
        if (kind == outcome_kind::permanent) return std::nullopt;
        if (kind == outcome_kind::retry && attempts >= cfg_.max_retries + 1) return std::nullopt;
        return "after " + detail::describe_outcome(*t.last_outcome) + " (the retry table says " + kind_name(kind) +
               ") at attempt " + std::to_string(attempts) + " of " + std::to_string(cfg_.max_retries + 1);
    }

    // =============================================================================================
    // The step-level check
    // =============================================================================================

    void check_state()
    {
        if (!vault_ || !alive_ || violation_) return;
        for (const auto& t : actions_)
            if (t.awaiting) return fail("lifecycle", "#" + std::to_string(t.no) + "'s attempt has no outcome event");
        std::vector<const tracked*> expected;
        for (const auto& t : actions_)
            if (t.st == state::pending) expected.push_back(&t);
        std::sort(expected.begin(), expected.end(), [](auto* a, auto* b) { return a->sequence < b->sequence; });
        const auto pending = vault_->pending_actions();
        if (pending.size() != expected.size() || vault_->pending_count() != expected.size())
            return fail("status", "pending_actions() holds " + std::to_string(pending.size()) + " actions; the model " +
                                      std::to_string(expected.size()));
        for (std::size_t k = 0; k < pending.size(); ++k) {
            const auto& a = pending[k];
            const auto& t = *expected[k];
            if (a.id != t.id)
                return fail("fifo", "pending_actions()[" + std::to_string(k) + "] is not #" + std::to_string(t.no));
            if (a.attempts != t.attempts)
                return fail("attempts", "#" + std::to_string(t.no) + " shows " + std::to_string(a.attempts) +
                                            " attempts; it started " + std::to_string(t.attempts));
            if (!t.shadow || t.shadow->state != action_state::pending || t.shadow->attempts != a.attempts)
                return fail("durability", "pending #" + std::to_string(t.no) + " is not stored as it is");
        }
        const auto dead = vault_->dead_letters();
        std::vector<std::string> dead_ids, model_dead;
        for (const auto& a : dead) dead_ids.push_back(a.id);
        for (const auto& t : actions_)
            if (t.st == state::dead) model_dead.push_back(t.id);
        std::sort(dead_ids.begin(), dead_ids.end());
        std::sort(model_dead.begin(), model_dead.end());
        if (dead_ids != model_dead)
            return fail("status", "dead_letters() holds " + std::to_string(dead_ids.size()) + " actions; the model " +
                                      std::to_string(model_dead.size()));
        for (const auto& t : actions_)
            if (t.st == state::dead && (!t.shadow || t.shadow->state != action_state::dead))
                return fail("durability", "dead letter #" + std::to_string(t.no) + " is not stored as dead");
        const auto want = last_failed_       ? sync_status::error
                          : expected.empty() ? sync_status::synced
                                             : sync_status::pending;
        const auto got = vault_->status();
        if (got != want)
            return fail("status", "status() is " + std::string(to_string(got)) + "; SPEC 3.11 says " +
                                      std::string(to_string(want)));
        if (statuses_.empty() || statuses_.back() != got)
            return fail("status", "the last on_status value is not status()");
    }

    void expect_written_pending(const tracked& t, const std::string& when)
    {
        if (!t.shadow || t.shadow->state != action_state::pending || t.shadow->sequence != t.sequence)
            fail("durability", "#" + std::to_string(t.no) + " was not stored as pending when " + when);
    }

    // =============================================================================================
    // Trace and helpers
    // =============================================================================================

    void begin_step(std::string what)
    {
        ++step_;
        ++stats_.steps;
        current_.clear();
        current_.push_back("[" + std::to_string(step_) + "] " + at(clock_.now()) + " " + what);
        successes_in_call_ = 0;
    }

    void note(std::string line) { current_.push_back("      " + std::move(line)); }

    void end_step()
    {
        if (!alive_ && !violation_) {
            flush_step();
            restart();
            return;
        }
        check_state();
        if (woken_ && !violation_) {
            woken_ = false;
            // The driver polls soon after a wake-up, as background_sync would.
            const auto soon = clock_.now() + ms{rng_.chance(0.7) ? 0 : rng_.between(1, 500)};
            wake_ = wake_ ? std::min(*wake_, soon) : soon;
        }
        flush_step();
    }

    void flush_step()
    {
        for (const auto& line : current_) digest_ = detail::fnv1a(digest_, line);
        recent_.push_back(std::move(current_));
        current_.clear();
        if (!opt_.keep_full_trace)
            while (recent_.size() > opt_.trace_steps) recent_.pop_front();
    }

    void fail(std::string invariant, std::string detail)
    {
        if (violation_) return;
        note("!! violation [" + invariant + "] " + detail);
        violation_ = simulation_violation{step_, std::move(invariant), std::move(detail)};
    }

    std::string at(time_point t) const
    {
        const auto d = std::chrono::duration_cast<ms>(t - fake_clock::epoch()).count();
        char buf[40];
        std::snprintf(buf, sizeof buf, "%s%lld.%03llds", d < 0 ? "-" : "+", (long long)(std::llabs(d) / 1000),
                      (long long)(std::llabs(d) % 1000));
        return buf;
    }

    int index_of(std::string_view id) const
    {
        auto it = by_id_.find(std::string(id));
        return it == by_id_.end() ? -1 : int(it->second);
    }

    tracked* in_flight()
    {
        for (auto& t : actions_)
            if (t.awaiting) return &t;
        return nullptr;
    }

    std::size_t count(state s) const
    {
        return std::size_t(std::count_if(actions_.begin(), actions_.end(), [&](const auto& t) { return t.st == s; }));
    }

    std::vector<std::size_t> indices(state s) const
    {
        std::vector<std::size_t> out;
        for (std::size_t i = 0; i < actions_.size(); ++i)
            if (actions_[i].st == s) out.push_back(i);
        return out;
    }

    int applied_count(const std::string& key) const
    {
        auto it = applied_.find(key);
        return it == applied_.end() ? 0 : it->second;
    }

    outcome_kind outcome_of(const result<http_response>& o) const { return opt_.expected_outcome(o); }

    static std::string kind_name(outcome_kind k)
    {
        return k == outcome_kind::success ? "success" : k == outcome_kind::retry ? "retry" : "permanent";
    }

    int attempt_limit(const tracked& t) const { return cfg_.max_retries + 1 + (opt_.count_cut_attempts ? 0 : t.cut); }

    static std::string cut_note(const tracked& t)
    {
        return t.cut ? ", " + std::to_string(t.cut) + " attempt(s) cut short by a crash" : std::string();
    }

    static std::string show_key(const tracked& t) { return t.key.size() == 36 ? "auto" : t.key; }

    static std::optional<ms> retry_after_of(const result<http_response>& o, time_point now)
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

    // ---- state ----------------------------------------------------------------------------------

    const simulation& sim_;
    const simulation_options& opt_;
    std::uint64_t seed_;
    sim_random rng_;
    fake_clock clock_;
    StorageFactory factory_;
    Server server_;
    vault_config cfg_;
    std::unique_ptr<vault_type> vault_;
    subscription event_sub_, status_sub_, wake_sub_;

    bool online_ = true;
    double fault_rate_ = 0.1;
    bool power_cuts_ = false;
    std::optional<time_point> wake_;
    bool woken_ = false;
    time_point next_op_at_{};
    std::size_t ops_ = 0;
    std::uint64_t processes_ = 0;

    // the process
    bool alive_ = true;
    int crash_countdown_ = 0;
    std::optional<image_type> crash_image_;
    std::size_t crash_writes_ = 0, crash_floor_ = 0;
    bool power_loss_ = false;
    bool last_failed_ = false;
    std::vector<sync_status> statuses_;

    // the current call
    call call_ = call::none;
    bool immediate_expected_ = false;
    std::vector<header> request_headers_;
    std::size_t successes_in_call_ = 0;
    int requeue_target_ = -1;
    bool direct_ = false;
    std::optional<result<http_response>> direct_outcome_;

    // the model
    std::vector<tracked> actions_;
    std::map<std::string, std::size_t> by_id_;  // lookup only: never iterated (ids are random)
    std::map<std::string, int> applied_;        // effects per key; lookup only
    std::vector<write_record> write_log_;
    std::vector<std::size_t> evicted_on_load_;  // removes made while a new process loaded
    std::size_t synced_floor_ = 0;              // writes before this index are durable even across a power cut
    std::vector<std::string> used_keys_;
    int key_counter_ = 0, body_counter_ = 0;

    // the trace
    std::size_t step_ = 0;
    std::vector<std::string> current_;
    std::deque<std::vector<std::string>> recent_;
    std::uint64_t digest_ = 0xcbf29ce484222325ULL;
    std::optional<simulation_violation> violation_;
    simulation_stats stats_;
};

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
