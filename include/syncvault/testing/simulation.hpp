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
 * - clock jumps, forward and back, by seconds to days;
 * - SPEC 9.1's faults inside the application and the policies (testing/simulation/faults.hpp):
 *   listeners, `on_dead_letter`, `before_send` and `dispatch` that throw; listeners that call
 *   back into the vault (post, clear_queue, requeue, drop_dead_letter), also while the action
 *   they report is in flight; a storage whose saves throw or fail for a while; a transport whose
 *   `send` throws; and, as a mode, a connectivity model with only `is_online()`
 *   (`online_only_connectivity`);
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
 * | `liveness` | after a final quiet period (online, no faults), everything not dead-lettered is delivered; `poll()` names a wake while work is pending (offline too, when connectivity cannot announce its return); never spins; diagnostics stay bounded per storage failure episode |
 * | `exceptions` | no exception escapes a public vault call because of a callback or a policy (SPEC 9.1) |
 *
 * `threaded_simulation` (testing/simulation/threaded.hpp) adds what one thread cannot show:
 * concurrent posters and pollers, checked for what holds under any interleaving (run it under TSan).
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

#include <syncvault/testing/simulation/random.hpp>
#include <syncvault/testing/simulation/options.hpp>
#include <syncvault/testing/simulation/server_model.hpp>
#include <syncvault/testing/simulation/storage_factories.hpp>
#include <syncvault/testing/simulation/seams.hpp>
#include <syncvault/testing/simulation/simulator.hpp>
#include <syncvault/testing/simulation/workload.hpp>
#include <syncvault/testing/simulation/faults.hpp>
#include <syncvault/testing/simulation/fault_layer.hpp>
#include <syncvault/testing/simulation/power_model.hpp>
#include <syncvault/testing/simulation/oracle.hpp>
#include <syncvault/testing/simulation/queue_edits.hpp>
#include <syncvault/testing/simulation/driver.hpp>
#include <syncvault/testing/simulation/threaded.hpp>

#endif
