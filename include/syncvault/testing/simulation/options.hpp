#ifndef SYNCVAULT_TESTING_SIMULATION_OPTIONS_HPP
#define SYNCVAULT_TESTING_SIMULATION_OPTIONS_HPP

/**
 * @file
 * What a simulation run is asked to do (`simulation_options`) and what it reports
 * (`simulation_result`, `simulation_violation`, `simulation_stats`).
 */

#include <syncvault/action.hpp>
#include <syncvault/concepts/retry_policy.hpp>
#include <syncvault/config.hpp>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace syncvault::testing {

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

    // ---- faults inside the application and the policies (SPEC 9.1) ----------------------------
    /// Event and status listeners, `on_dead_letter`, `before_send` and `dispatch` that throw.
    bool throwing_callbacks = true;
    /// Listeners that call back into the vault (post, clear_queue, requeue, drop_dead_letter),
    /// also while the action they report is in flight.
    bool reentrant_callbacks = true;
    /// A storage whose `save` throws, or fails for a while (a full disk) and then recovers.
    bool storage_faults = true;
    /// A transport whose `send` throws.
    bool throwing_transport = true;
    /// Wall-clock jumps of days, forward and back (with `clock_jumps`).
    bool long_clock_jumps = true;
    // ---- SPEC 9.2 and 9.3 -------------------------------------------------------------------------
    /// Requests in a few seeded lanes, and `max_in_flight` > 1 in some runs.
    bool lanes = true;
    /// The server's credentials expire now and then (401 until the app logs in again); a seeded
    /// `refresh_auth` that sometimes renews them; the app resumes a paused vault later.
    bool auth_expiry = true;
    /// A lost response leaves its key "still being processed" at the server for a while: repeats
    /// answer 409 meanwhile (express-idempotency), then replay the stored response.
    bool in_progress_409 = true;
    /// SPEC 9.4: coalescing edits of a few objects (a create, then PATCH, PUT and DELETE with
    /// coalesce keys), `after` chains across lanes, `response_ref` chains on ids the server
    /// assigns, and `cancel()` (testing/simulation/queue_edits.hpp). Off by default, so the
    /// seeds of the other modes replay as they always did.
    bool queue_edits = false;
    /// Diagnosis only: an exception that escapes a vault call is noted, not a violation, so the
    /// run goes on to show what it left behind (a wedged drain, a phantom action). The default,
    /// false, is SPEC 9.1: no fault of a callback or a policy escapes a public call.
    bool tolerate_escapes = false;
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
    /// SPEC 9.1 faults injected: callbacks that threw, calls made from callbacks, storage
    /// writes that threw or failed, transports that threw, escapes seen (tolerate_escapes).
    std::size_t callback_throws = 0, reentrant_calls = 0, storage_throws = 0, storage_failures = 0,
                transport_throws = 0, escapes = 0;
    /// SPEC 9.2 and 9.3: credential expiries, 401s, refreshes (renewed or not), pauses seen,
    /// resumes, 409s answered, lane heads sent while another lane waited.
    std::size_t expiries = 0, unauthorized = 0, refreshes = 0, renewed = 0, pauses = 0, resumes = 0, conflicts = 0;
    /// SPEC 9.4: requests merged into a pending action, cancellations, dependents dead-lettered
    /// with their parent, requests sent with placeholders filled.
    std::size_t coalesced = 0, cancelled = 0, dependency_failed = 0, refs_filled = 0;
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

}  // namespace syncvault::testing

#endif
