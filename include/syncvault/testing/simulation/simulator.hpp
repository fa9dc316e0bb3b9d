#ifndef SYNCVAULT_TESTING_SIMULATION_SIMULATOR_HPP
#define SYNCVAULT_TESTING_SIMULATION_SIMULATOR_HPP

/**
 * @file
 * `testing::simulation`, the front users drive, and the declaration of one run (`runner`):
 * the model of every action the application can observe. The runner's members are defined by
 * concern in the sibling headers (workload, fault_layer, power_model, oracle, driver);
 * include `<syncvault/testing/simulation.hpp>` to get them all.
 */

#include <syncvault/action.hpp>
#include <syncvault/basic_vault.hpp>
#include <syncvault/config.hpp>
#include <syncvault/error.hpp>
#include <syncvault/events.hpp>
#include <syncvault/concepts/retry_policy.hpp>
#include <syncvault/connectivity/manual_connectivity.hpp>
#include <syncvault/retry/jittered_backoff.hpp>
#include <syncvault/testing/fake_clock.hpp>
#include <syncvault/testing/simulation/edit_model.hpp>
#include <syncvault/testing/simulation/object_model.hpp>
#include <syncvault/testing/simulation/options.hpp>
#include <syncvault/testing/simulation/random.hpp>
#include <syncvault/testing/simulation/seams.hpp>
#include <syncvault/testing/simulation/server_model.hpp>
#include <syncvault/testing/simulation/storage_factories.hpp>

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

namespace syncvault::testing {

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
 * @tparam Connectivity   `manual_connectivity` (default) or `online_only_connectivity` (only `is_online()`:
 *                        the vault cannot hear the network return)
 *
 * Runs share nothing: each `run(seed)` builds its own clock, server, store and vaults.
 */
template <class StorageFactory = memory_storage_factory, class RetryPolicy = jittered_backoff,
          class Server = model_server, class Transport = sim_network, class Connectivity = manual_connectivity>
class simulation {
    static_assert(simulated_storage<StorageFactory>,
                  "simulation: StorageFactory must model syncvault::testing::simulated_storage; see "
                  "<syncvault/testing/simulation.hpp>");
    static_assert(
        syncvault::retry_policy<RetryPolicy>,
        "simulation: RetryPolicy must model syncvault::retry_policy; see <syncvault/concepts/retry_policy.hpp>");
    static_assert(simulated_server<Server>, "simulation: Server must model syncvault::testing::simulated_server; see "
                                            "<syncvault/testing/simulation.hpp>");
    static_assert(
        syncvault::connectivity<Connectivity> && std::constructible_from<Connectivity, bool> &&
            requires(Connectivity & c) { c.set_online(true); },
        "simulation: Connectivity must model syncvault::connectivity, be constructible from the initial "
        "state and have set_online(bool) (manual_connectivity, online_only_connectivity)");
    static_assert(syncvault::transport<Transport>,
                  "simulation: Transport must model syncvault::transport; see <syncvault/concepts/transport.hpp>");

public:
    using storage_type = typename StorageFactory::storage_type;
    /** The vault under test: the real `basic_vault`, over the simulator's seams. */
    using vault_type = basic_vault<detail::sim_probe<Transport>, detail::sim_storage<storage_type>, Connectivity,
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

template <class StorageFactory, class RetryPolicy, class Server, class Transport, class Connectivity>
class simulation<StorageFactory, RetryPolicy, Server, Transport, Connectivity>::runner final
    : public detail::sim_hooks {
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
        http_method method = http_method::post;  // what it asks for: coalescing and placeholders change it
        std::string path, body;
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
        std::vector<std::size_t> writes;   // indices into write_log_
        std::vector<header> headers;       // given with the request: sensitive ones too
        std::uint64_t process = 0;         // the process it was requested in
        std::uint64_t origin = 0;          // the vault call that made it (calls nest in callbacks)
        const char* removed_by = nullptr;  // the edit (clear_queue, drop_dead_letter) that removed it and returned
        bool cleared_in_flight = false;    // clear_queue removed it while its attempt ran: no outcome event
        std::string lane;                  // SPEC 9.2
        bool unknown = false;              // an attempt of this lifecycle ended without an answer (SPEC 9.3)
        bool unknown_at_send = false;      // ... before the attempt now in flight
        bool applied_now = false;          // its effect was applied during this lifecycle
        bool stale_store = false;          // a 401's take-back could not be written: stored one attempt ahead
        detail::edit_info edit;            // SPEC 9.4 (queue_edits.hpp)
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

    static std::uint64_t mix(std::uint64_t seed, std::uint64_t salt) noexcept;
    void configure();
    void configure_faults();
    std::string describe_config() const;
    RetryPolicy make_retry();
    Transport make_transport();
    /** Builds the vault over the store; after a crash, checks what it reloaded. */
    void build_vault(bool after_crash);

    // =============================================================================================
    // The schedule
    // =============================================================================================

    ms gap();
    void operation();
    std::string make_path();
    /** No key (generated), a fresh one, or one used before (pending or not). */
    std::string make_key();
    std::vector<header> make_headers();
    void op_mutate();
    void op_read();
    std::string key_note(const request_options& o) const;
    void op_flap();
    void op_weather();
    void op_clock_jump();
    void op_crash();
    void op_arm_crash();
    void op_process_queue();
    void op_requeue();
    void op_drop();
    void op_clear();
    /** SPEC 9.3: the server's credentials expire. */
    void op_expire();
    /** SPEC 9.3: the app logs in again and resumes a paused vault. */
    void op_resume();
    // ---- SPEC 9.4: coalescing, `after` and `response_ref` (queue_edits.hpp) ----------------------
    void op_edit();
    void op_cancel();
    /** After a request call: a merge, a cancelling DELETE, or a refused dependency; true if handled. */
    bool edit_result(http_method method, const std::string& path, const std::string& body, const request_options& o,
                     const std::vector<detail::placeholder>& refs, const send_result& r, bool made_none);
    /** The parents of a request about to be made that are still pending (or dead). */
    std::vector<std::size_t> parents_of(const request_options& o, bool dead_too) const;
    void on_cancelled(tracked& t, const sync_event& e);
    /** A dead letter with dependency_failed and no attempt: true when the model explains it. */
    bool dependency_dead(tracked& t, const sync_event& e);
    void doom_dependents(const tracked& p);
    bool requeue_refused(const tracked& t) const;
    /** The request `x` must send now: its placeholders filled with what the server assigned. */
    std::string filled(const tracked& x, std::string text) const;
    void edits_on_send(tracked& x, const http_request& r);
    void edits_on_applied(tracked& x, const http_request& r, const http_response& reply);
    void edits_check_state();
    std::string make_lane();
    /** `refresh_auth`: seeded, sometimes renews the server's credentials. */
    bool refresh_hook(const http_response& r);
    /** SPEC 9.3: the outcome kind of `o` for `t`: a 409 after an unknown outcome is a retry. */
    outcome_kind expected_kind(const tracked& t, const result<http_response>& o) const;
    static bool is_status(const result<http_response>& o, int status) { return o && o->status == status; }
    /** A poll step: what `background_sync` does at a due time, or when woken. */
    void step_poll(const std::string& what);

    // =============================================================================================
    // Request calls
    // =============================================================================================

    template <class Body>
    void request(http_method method, const std::string& path, const Body& body, const request_options& o, bool online,
                 bool nested = false);
    // op_read's online branch: a direct read, no action.
    void do_direct_read(http_method method, const std::string& path, const request_options& o);

    // =============================================================================================
    // Crashes
    // =============================================================================================

    /** A seam: crash here if armed (or unconditionally between operations). */
    void crash_point(const char* where, bool now = false);
    /** After the call the crash interrupted: the process is gone; a new one starts. */
    void restart();
    /** The store a new process reloaded must be explained by the writes before the crash. */
    void check_reload();
    /** Forgets writes past `cut`: the shadows become what the store holds. */
    void rewind_writes(std::size_t cut);
    static std::string describe(const snapshot& s);

    // =============================================================================================
    // The quiet period
    // =============================================================================================

    void quiet_period();
    simulation_result finish();

    // =============================================================================================
    // Seams
    // =============================================================================================

    result<http_response> network_send(const http_request& r) override;
    void on_applied(tracked& x);
    void transfer_begin(const http_request& r) override;
    void transfer_end(const http_request&, const result<http_response>& outcome) override;
    void storage_before(storage_op, const sync_action*, std::string_view) override;
    void storage_after(storage_op op, const sync_action* a, std::string_view id, std::error_code ec) override;
    void record_save(const sync_action& a);
    void record_remove(std::string_view id);
    void log_write(std::size_t i, snapshot s);
    std::size_t add_action(const sync_action& a);
    std::error_code storage_fault(storage_op op, const sync_action* a) override;
    bool transport_throws(const http_request& r) override;

    // =============================================================================================
    // Faults of the application and its policies (SPEC 9.1)
    // =============================================================================================

    /** Runs one vault call; an exception that escapes it is a violation (or noted, tolerate_escapes). */
    template <class F>
    bool guarded(std::string_view what, F&& f);
    /** The user callbacks of a process: they throw, and call back into the vault. */
    void install_user_callbacks();
    void user_event(const sync_event& e);
    void user_status(sync_status s);
    /** A call into the vault from inside a callback. */
    void reenter(const sync_event* e);
    void before_send_hook(http_request& r);
    /** One storage episode: saves fail (a full disk) until a time, then recover. */
    void op_storage_trouble();
    /** The model after clear_queue() removed every pending action. */
    void model_cleared(bool nested);
    std::size_t diagnostics_count();
    bool storage_faults_on() const { return opt_.storage_faults && cfg_.write_ahead; }

    // =============================================================================================
    // Events and status
    // =============================================================================================

    void on_status(sync_status s);
    void on_event(const sync_event& e);
    void on_queued(const sync_event& e, int i);
    void on_started(tracked& t, const sync_event& e);
    /** Checks an outcome event against the transfer's real outcome; nullopt when it fits. */
    std::optional<std::string> outcome_mismatch(const tracked& t, const sync_event& e, outcome_kind want_kind);
    void on_failed(tracked& t, const sync_event& e);
    void on_success(tracked& t, const sync_event& e);
    void on_dead(tracked& t, const sync_event& e);
    /** Why a dead letter at `attempts` would be unjustified; nullopt when it is justified. */
    std::optional<std::string> dead_letter_unjustified(const tracked& t, int attempts, time_point created_at);

    // =============================================================================================
    // The step-level check
    // =============================================================================================

    void check_state();
    static snapshot snap_of(const sync_action& a)
    {
        return {true, a.state, a.attempts, a.sequence, a.method, a.path, a.body};
    }
    void expect_written_pending(const tracked& t, const std::string& when);

    // =============================================================================================
    // Trace and helpers
    // =============================================================================================

    void begin_step(std::string what);
    void note(std::string line) { current_.push_back("      " + std::move(line)); }

    void end_step();
    void flush_step();
    void fail(std::string invariant, std::string detail);
    std::string at(time_point t) const;
    int index_of(std::string_view id) const;
    tracked* in_flight();
    std::size_t count(state s) const;
    std::vector<std::size_t> indices(state s) const;
    int applied_count(const std::string& key) const;
    outcome_kind outcome_of(const result<http_response>& o) const { return opt_.expected_outcome(o); }

    static std::string kind_name(outcome_kind k);
    int attempt_limit(const tracked& t) const { return cfg_.max_retries + 1 + (opt_.count_cut_attempts ? 0 : t.cut); }

    static std::string cut_note(const tracked& t);
    static std::string show_key(const tracked& t) { return t.key.size() == 36 ? "auto" : t.key; }

    static std::optional<ms> retry_after_of(const result<http_response>& o, time_point now);

    // ---- state ----------------------------------------------------------------------------------

    const simulation& sim_;
    const simulation_options& opt_;
    std::uint64_t seed_;
    sim_random rng_;
    sim_random frng_{0};  // the SPEC 9.1 faults' own stream: with them off, a seed runs as before
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
    // faults (SPEC 9.1)
    int callback_depth_ = 0;                      // > 0 inside an injected callback's vault call
    bool injecting_ = false;                      // user callbacks act (not while a process is being built)
    std::uint64_t calls_ = 0, current_call_ = 0;  // serials of vault calls, for nested calls
    bool reentered_ = false;                      // a callback called the vault during the current step
    bool status_uncertain_ = false;               // a nested clear_queue(): earlier events may be delivered after it
    bool storage_fault_in_call_ = false, attempt_blocked_ = false;
    std::optional<time_point> storage_down_until_;
    bool storage_unrecovered_ = false;
    std::optional<std::vector<std::string>>
        clear_scope_;  // what was pending when op_clear called clear_queue()  // a save failed and none has succeeded since (the vault may stay in error)
    std::size_t storage_episodes_ = 0;
    double storage_throw_rate_ = 0, callback_throw_rate_ = 0, transport_throw_rate_ = 0, reentry_rate_ = 0;
    std::vector<std::string> requeued_;           // requeues whose `queued` event is still to come
    std::vector<std::string> dead_write_failed_;  // actions whose move to the dead letters could not be written
    std::map<std::string, int> wire_keys_;        // idempotency keys that reached the transport; lookup only
    subscription user_event_sub_, user_status_sub_;
    // SPEC 9.2 and 9.3, drawn from their own stream
    sim_random xrng_{0};
    std::vector<std::string> lanes_{""};
    std::string request_lane_;
    bool auth_on_ = false;
    double renew_rate_ = 0;
    ms processing_{0};               // how long a lost response's key stays "in progress" at the server
    bool paused_ = false;            // the model: the vault is paused (SPEC 9.3)
    bool paused_uncertain_ = false;  // status_uncertain_ came while paused: settled after resume()
    std::string refreshed_for_;      // the action whose 401 a refresh just answered with true
    std::string unauthorized_;       // the action whose 401 awaits its refresh_auth call
    std::size_t resume_at_ = 0;      // the operation at which the app logs in again and resumes
    // SPEC 9.4, drawn from their own stream
    sim_random erng_{0};
    bool edits_on_ = false;
    bool cancelling_ = false;                      // a call that may cancel (cancel(), a coalescing DELETE)
    std::vector<std::size_t> edit_waits_;          // the parents of the request being made
    std::vector<detail::placeholder> edit_refs_;   // its placeholders
    std::vector<std::size_t> notes_;               // actions that created a /notes/<n> object, still live
    std::vector<std::size_t> things_;              // POSTs to /things (the server assigns the id)
    std::map<std::string, std::string> assigned_;  // idempotency key -> id the server assigned; lookup only
    object_map world_;                             // the objects, from the application's requests one by one
    std::vector<std::size_t> dead_on_load_;        // dependents a new process dead-lettered while loading
    int note_counter_ = 0;

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

}  // namespace syncvault::testing

#endif
