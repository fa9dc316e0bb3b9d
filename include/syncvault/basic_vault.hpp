#ifndef SYNCVAULT_BASIC_VAULT_HPP
#define SYNCVAULT_BASIC_VAULT_HPP

/**
 * @file
 * `basic_vault`: the store-and-forward engine. It sends a request now when it can, otherwise
 * keeps it durably and replays it in order, with backoff, when the network returns. Every
 * concern is a policy (see `concepts/`); `<syncvault/vault.hpp>` names the defaults.
 *
 * The vault is a thin orchestrator over three parts that do no I/O of their own:
 * `detail/request_builder.hpp` (checking and building requests), `detail/queue_machine.hpp`
 * (the queue as a state machine) and `detail/retry_decision.hpp` (what follows an attempt). It
 * owns the locks and calls the policies, each through a guard that turns an exception into the
 * failure it stands for (SPEC 9.1): no exception leaves the vault's state half-changed.
 */

#include <syncvault/action.hpp>
#include <syncvault/body.hpp>
#include <syncvault/config.hpp>
#include <syncvault/error.hpp>
#include <syncvault/events.hpp>
#include <syncvault/response_ref.hpp>
#include <syncvault/send_result.hpp>
#include <syncvault/concepts/clock.hpp>
#include <syncvault/concepts/connectivity.hpp>
#include <syncvault/concepts/retry_policy.hpp>
#include <syncvault/concepts/storage.hpp>
#include <syncvault/concepts/transport.hpp>
#include <syncvault/detail/async_registry.hpp>
#include <syncvault/detail/event_hub.hpp>
#include <syncvault/detail/fair_mutex.hpp>
#include <syncvault/detail/policy_guard.hpp>
#include <syncvault/detail/queue_machine.hpp>
#include <syncvault/detail/request_builder.hpp>
#include <syncvault/detail/retry_decision.hpp>

#include <boost/asio/async_result.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <memory>
#include <mutex>
#include <random>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

namespace syncvault {

/**
 * The vault.
 *
 * @tparam Transport    models `syncvault::transport` (concepts/transport.hpp)
 * @tparam Storage      models `syncvault::storage` (concepts/storage.hpp)
 * @tparam Connectivity models `syncvault::connectivity` (concepts/connectivity.hpp)
 * @tparam RetryPolicy  models `syncvault::retry_policy` (concepts/retry_policy.hpp)
 * @tparam Clock        models `syncvault::clock` (concepts/clock.hpp)
 *
 * Every member may be called from any thread. Callbacks run without internal locks held (they
 * may call the vault), in the order things happened, on the thread doing the work or through
 * `vault_config::dispatch`. A callback or policy that throws leaves the vault consistent and
 * live (SPEC 9.1).
 *
 * @code
 * syncvault::basic_vault<my_transport, syncvault::memory_storage, syncvault::manual_connectivity,
 *                        syncvault::jittered_backoff, std::chrono::system_clock>
 *     v{{.base_url = "https://api.example.com"}};
 * auto r = v.post("/jobs", boost::json::object{{"id", 7}});
 * if (r.is_queued()) { ... }   // it will be replayed by poll() / process_queue()
 * @endcode
 */
template <class Transport, class Storage, class Connectivity, class RetryPolicy, class Clock>
class basic_vault {
    static_assert(syncvault::transport<Transport>,
                  "basic_vault: Transport must model syncvault::transport: a movable type with "
                  "`result<http_response> send(const http_request&)`; see <syncvault/concepts/transport.hpp>");
    static_assert(syncvault::storage<Storage>,
                  "basic_vault: Storage must model syncvault::storage: save, remove, load_all, clear, "
                  "count; see <syncvault/concepts/storage.hpp>");
    static_assert(syncvault::connectivity<Connectivity>,
                  "basic_vault: Connectivity must model syncvault::connectivity: `bool is_online()`; "
                  "see <syncvault/concepts/connectivity.hpp>");
    static_assert(syncvault::retry_policy<RetryPolicy>,
                  "basic_vault: RetryPolicy must model syncvault::retry_policy: classify, delay, "
                  "max_delay; see <syncvault/concepts/retry_policy.hpp>");
    static_assert(syncvault::clock<Clock>,
                  "basic_vault: Clock must model syncvault::clock: "
                  "`std::chrono::system_clock::time_point now()`; see <syncvault/concepts/clock.hpp>");

public:
    using transport_type = Transport;
    using storage_type = Storage;
    using connectivity_type = Connectivity;
    using retry_policy_type = RetryPolicy;
    using clock_type = Clock;
    using time_point = std::chrono::system_clock::time_point;

    /**
     * Builds each policy not given from `cfg` (when it has a constructor from
     * `const vault_config&`) or by default construction, then loads the queue.
     * Throws `std::invalid_argument` naming a bad config field, `std::system_error` when the
     * storage cannot be opened (`errc::storage_locked` if another vault holds it).
     */
    explicit basic_vault(vault_config cfg) : basic_vault(validated(std::move(cfg))) {}
    basic_vault(vault_config cfg, Transport t) : basic_vault(validated(std::move(cfg)), std::move(t)) {}
    basic_vault(vault_config cfg, Transport t, Storage s)
        : basic_vault(validated(std::move(cfg)), std::move(t), std::move(s))
    {
    }
    basic_vault(vault_config cfg, Transport t, Storage s, Connectivity c)
        : basic_vault(validated(std::move(cfg)), std::move(t), std::move(s), std::move(c))
    {
    }
    basic_vault(vault_config cfg, Transport t, Storage s, Connectivity c, RetryPolicy r)
        : basic_vault(validated(std::move(cfg)), std::move(t), std::move(s), std::move(c), std::move(r))
    {
    }
    basic_vault(vault_config cfg, Transport t, Storage s, Connectivity c, RetryPolicy r, Clock k)
        : basic_vault(validated(std::move(cfg)), std::move(t), std::move(s), std::move(c), std::move(r), std::move(k))
    {
    }

    basic_vault(const basic_vault&) = delete;
    basic_vault& operator=(const basic_vault&) = delete;

    /** Destroying a vault that a `background_sync` still drives is a programming error: it aborts. */
    ~basic_vault()
    {
        if (drivers_.load() != 0) {
            std::fputs("syncvault: a basic_vault was destroyed while a background_sync still drives it; "
                       "destroy the background_sync first\n",
                       stderr);
            std::abort();
        }
        if constexpr (notifying_connectivity<Connectivity>) {
            try {
                connectivity_.set_change_handler({});
            } catch (...) {
            }
        }
        if constexpr (flushable_storage<Storage>) {
            std::lock_guard slock(storage_mutex_);
            (void)flush_guarded();
        }
    }

    // --- requests ------------------------------------------------------------------------

    /** POST `body` (JSON value, Hana struct, `raw_body`, or `nullptr` for none) to `path`. */
    template <class Body>
    send_result post(std::string_view path, const Body& body, const request_options& opts = {})
    {
        return mutate(http_method::post, path, body, opts);
    }
    template <class Body>
    send_result put(std::string_view path, const Body& body, const request_options& opts = {})
    {
        return mutate(http_method::put, path, body, opts);
    }
    template <class Body>
    send_result patch(std::string_view path, const Body& body, const request_options& opts = {})
    {
        return mutate(http_method::patch, path, body, opts);
    }
    send_result delete_(std::string_view path, const request_options& opts = {})
    {
        return mutate(http_method::delete_, path, nullptr, opts);
    }
    /** Sent when online; `errc::offline` when not, unless `opts.queue_if_offline`. */
    send_result get(std::string_view path, const request_options& opts = {}) { return read(http_method::get, path, opts); }
    send_result head(std::string_view path, const request_options& opts = {})
    {
        return read(http_method::head, path, opts);
    }

    // --- the queue -----------------------------------------------------------------------

    /**
     * Manual sync: tries the queue now, in order, ignoring backoff timers; stops a lane at its
     * first retryable failure; dead-letters permanent failures and goes on. Returns the number
     * of successes; 0 at once when offline or when every drain slot (`max_in_flight`) is taken.
     */
    std::size_t process_queue()
    {
        note_driven();
        return drain(false);
    }

    /**
     * Does all work due at `clock().now()` (a connectivity probe, due attempts) and says when
     * the next work is due; nothing when only an outside event (a new action, connectivity
     * coming back, a transfer ending) can create work.
     */
    next_wake poll();

    std::size_t pending_count() const
    {
        std::lock_guard lock(mutex_);
        return machine_.pending_count();
    }

    /**
     * Pending actions in FIFO order, bodies included: with a storage that reads bodies back
     * (`body_reading_storage`) they are read from it. One whose body cannot be read is left out,
     * and a `diagnostic` says so.
     */
    std::vector<sync_action> pending_actions() const
    {
        std::vector<std::size_t> missing;
        std::vector<sync_action> out;
        if constexpr (body_reading_storage<Storage>) {
            // The storage lock keeps every stored body as it is while we read (enqueuers that
            // skip it write new actions, not listed here).
            std::lock_guard slock(storage_mutex_);
            {
                std::lock_guard lock(mutex_);
                out = machine_.pending_actions(&missing);
            }
            if (!missing.empty()) const_cast<basic_vault&>(*this).load_bodies(out, missing);  // logically const
        } else {
            std::lock_guard lock(mutex_);
            out = machine_.pending_actions();
        }
        if (!missing.empty()) events_->deliver();
        return out;
    }

    /**
     * Removes every pending action, without events; an attempt in flight is forgotten (its
     * outcome is ignored). Synced before it returns: a power cut does not bring them back. On a
     * storage failure it stops, returns the error, and the actions not yet removed stay queued.
     */
    std::error_code clear_queue();

    sync_status status() const
    {
        std::lock_guard lock(mutex_);
        return machine_.status();
    }

    // --- dead letters ----------------------------------------------------------------------

    /** Dead letters, oldest first (bounded by `max_dead_letters`, oldest dropped first). */
    std::vector<sync_action> dead_letters() const
    {
        std::lock_guard lock(mutex_);
        return machine_.dead_letters();
    }

    /**
     * Moves a dead letter back to the tail of its lane with its attempts reset (a new
     * lifecycle: `queued` again), synced before it returns. False when no such dead letter
     * exists, when another pending action holds its idempotency key, or when storage fails.
     */
    bool requeue(std::string_view action_id);

    /** Forgets a dead letter, synced before it returns. False when there is none, or storage fails. */
    bool drop_dead_letter(std::string_view action_id);

    // --- editing and pausing (SPEC 9.3, 9.4) ------------------------------------------------

    /**
     * Removes a pending action that is not being attempted, with the event `cancelled`; synced
     * before it returns. False when unknown, in flight, or when storage fails (then unchanged).
     */
    bool cancel(std::string_view action_id);

    /** Stops sending (log-out, metered network) until `resume()`; not persisted. Status: error. */
    void pause() { set_paused(true); }
    void resume() { set_paused(false); }
    /** True after `pause()`, or after a 401 that `refresh_auth` could not cure, until `resume()`. */
    bool is_paused() const
    {
        std::lock_guard lock(mutex_);
        return machine_.paused();
    }

    // --- asynchronous requests (SPEC 9.5; bodies in impl/basic_vault_async.ipp) -----------

    /**
     * The async_* family: Asio completion tokens over the vault, completion signature
     * `void(std::error_code, http_response)`. No call blocks on the network.
     *
     * - POST/PUT/PATCH/DELETE: the action is checked and written (as `write_ahead` says) but
     *   never sent on the calling thread, whatever `send_on_caller` says; the worker
     *   (`background_sync`, `poll()`, `process_queue()`) sends it. The operation completes when
     *   the action reaches its terminal outcome in this process: success (no error, the 2xx
     *   response); dead letter (its error and last response; a permanent refusal is
     *   `errc::rejected`, whose response says why); cancelled, evicted, `clear_queue`d or the
     *   vault destroyed (`errc::cancelled`; `errc::evicted` compares equal to it). A request
     *   whose idempotency key is already pending follows that action. A bad request,
     *   `queue_full` or a storage failure completes at once with that error. Not persisted:
     *   after a restart, events report the outcome.
     * - GET/HEAD: the blocking transfer runs as a job `post`ed to the handler's associated
     *   executor (the system thread pool for a plain callback), never on the caller; it
     *   completes with the response (any status), `errc::offline`, or the transport's error.
     *   With `queue_if_offline` while offline it becomes an action, and completes like one.
     *
     * The handler runs on its associated executor, and is never called from inside the
     * initiating function. Its executor is kept busy (`io_context::run()` does not return)
     * until it completes. As `std::error_code` is not Asio's error type, `use_future` yields a
     * `std::future<std::tuple<std::error_code, http_response>>` and `use_awaitable` a tuple:
     * errors never throw. A completion that runs during the vault's destruction must not use it.
     *
     * @code
     * auto [ec, response] = co_await v.async_post("/jobs", job, {}, boost::asio::use_awaitable);
     * if (ec == syncvault::errc::rejected) log(response.status, response.body);
     * @endcode
     */
    template <class Body, boost::asio::completion_token_for<void(std::error_code, http_response)> Token>
    auto async_post(std::string_view path, const Body& body, const request_options& opts, Token&& token);
    template <class Body, boost::asio::completion_token_for<void(std::error_code, http_response)> Token>
    auto async_put(std::string_view path, const Body& body, const request_options& opts, Token&& token);
    template <class Body, boost::asio::completion_token_for<void(std::error_code, http_response)> Token>
    auto async_patch(std::string_view path, const Body& body, const request_options& opts, Token&& token);
    template <boost::asio::completion_token_for<void(std::error_code, http_response)> Token>
    auto async_delete(std::string_view path, const request_options& opts, Token&& token);
    template <boost::asio::completion_token_for<void(std::error_code, http_response)> Token>
    auto async_get(std::string_view path, const request_options& opts, Token&& token);
    template <boost::asio::completion_token_for<void(std::error_code, http_response)> Token>
    auto async_head(std::string_view path, const request_options& opts, Token&& token);

    // --- observing -------------------------------------------------------------------------

    /** `fn(sync_status)`: called at once with the current status, then on each change. */
    [[nodiscard]] subscription on_status(std::function<void(sync_status)> fn)
    {
        subscription s;
        {
            // Under the lock, so no change slips between the current value and the next one.
            std::lock_guard lock(mutex_);
            s = events_->add_status_listener(std::move(fn), published_status_);
        }
        events_->deliver();
        return s;
    }

    /** `fn(const sync_event&)` for every event of every action. */
    [[nodiscard]] subscription on_event(std::function<void(const sync_event&)> fn)
    {
        return events_->add_event_listener(std::move(fn));
    }

    /** Events of one action. */
    [[nodiscard]] subscription events_for(std::string_view action_id, std::function<void(const sync_event&)> fn)
    {
        return events_->add_event_listener(std::move(fn), std::string(action_id));
    }

    /** Events of the actions carrying one idempotency key. */
    [[nodiscard]] subscription events_for_key(std::string_view key, std::function<void(const sync_event&)> fn)
    {
        return events_->add_event_listener(std::move(fn), std::nullopt, std::string(key));
    }

    /**
     * `fn()` when work may be due sooner than the last `poll()` said: an action was queued or
     * requeued, connectivity came back, a transfer ended. Called outside every lock; keep it
     * short (notify a condition variable).
     */
    [[nodiscard]] subscription on_wake(std::function<void()> fn) { return wake_->add(std::move(fn)); }

    /**
     * Like `on_wake`, for a driver of this vault (`background_sync`): the vault must not be
     * destroyed while the returned subscription lives (it aborts with a message if it is).
     */
    [[nodiscard]] subscription attach_driver(std::function<void()> fn)
    {
        auto wake = wake_->add(std::move(fn));
        ++drivers_;
        return subscription([this, wake = std::make_shared<subscription>(std::move(wake))] {
            wake->reset();
            --drivers_;
        });
    }

    /** Aborts the transfers in progress, if the transport can (its optional `cancel()`). */
    void interrupt()
    {
        if constexpr (cancellable_transport<Transport>) {
            try {
                transport_.cancel();
            } catch (...) {
            }
        }
    }

    /** Problems met and recovered from: corrupt records set aside, storage failures (bounded). */
    std::vector<diagnostic> diagnostics() const
    {
        std::lock_guard lock(mutex_);
        return {diagnostics_.begin(), diagnostics_.end()};
    }

    const vault_config& config() const noexcept { return config_; }

    // --- the policies (tests drive the fakes through these) --------------------------------
    Transport& transport() noexcept { return transport_; }
    Storage& storage() noexcept { return storage_; }
    Connectivity& connectivity() noexcept { return connectivity_; }
    RetryPolicy& retry_policy() noexcept { return retry_; }
    Clock& clock() noexcept { return clock_; }

private:
    // ---- construction -----------------------------------------------------------------------

    /** A config that passed every check, so no policy is built (no file created) from a bad one. */
    struct validated {
        explicit validated(vault_config c)
            : cfg(detail::checked_config(std::move(c))), base_url(detail::checked_base_url(cfg.base_url))
        {
        }
        vault_config cfg;
        std::string base_url;
    };

    // Each constructor builds the next missing policy from the config and delegates; `v` is only
    // moved from in the last one, so reading `v.cfg` in these argument lists is safe.
    explicit basic_vault(validated&& v) : basic_vault(std::move(v), build<Transport>(v.cfg)) {}
    basic_vault(validated&& v, Transport t) : basic_vault(std::move(v), std::move(t), build<Storage>(v.cfg)) {}
    basic_vault(validated&& v, Transport t, Storage s)
        : basic_vault(std::move(v), std::move(t), std::move(s), build<Connectivity>(v.cfg))
    {
    }
    basic_vault(validated&& v, Transport t, Storage s, Connectivity c)
        : basic_vault(std::move(v), std::move(t), std::move(s), std::move(c), build<RetryPolicy>(v.cfg))
    {
    }
    basic_vault(validated&& v, Transport t, Storage s, Connectivity c, RetryPolicy r)
        : basic_vault(std::move(v), std::move(t), std::move(s), std::move(c), std::move(r), build<Clock>(v.cfg))
    {
    }
    basic_vault(validated&& v, Transport t, Storage s, Connectivity c, RetryPolicy r, Clock k)
        : config_(std::move(v.cfg)),
          base_url_(std::move(v.base_url)),
          transport_(std::move(t)),
          storage_(std::move(s)),
          connectivity_(std::move(c)),
          retry_(std::move(r)),
          clock_(std::move(k)),
          machine_({config_.max_pending, config_.max_dead_letters, config_.max_in_flight, config_.max_pending_bytes,
                    config_.overflow == overflow_policy::drop_oldest, config_.max_body_bytes, config_.max_path_bytes,
                    body_reading_storage<Storage>}),
          events_(std::make_shared<detail::event_hub>(config_.dispatch)),
          wake_(std::make_shared<detail::wake_hub>())
    {
        load();
        if constexpr (notifying_connectivity<Connectivity>) {
            // Holds the wake hub, not `this`: a late notification after destruction is harmless.
            connectivity_.set_change_handler([wake = wake_](bool online) {
                if (online) wake->notify();
            });
        }
    }

    /** A policy not given: built from the config when it can be, else default-constructed. */
    template <class P>
    static P build(const vault_config& cfg)
    {
        if constexpr (std::is_constructible_v<P, const vault_config&>)
            return P(cfg);
        else
            return P{};
    }

    void load();

    /** Reads the bodies at `missing` back into `out` (storage_mutex_ held); drops those it cannot. */
    void load_bodies(std::vector<sync_action>& out, const std::vector<std::size_t>& missing);

    /** Reads the claimed `seq`'s body back if it left memory (both locks held); false: storage failed. */
    bool fetch_body(std::uint64_t seq, time_point t, std::unique_lock<std::mutex>& lock);

    // ---- requests ---------------------------------------------------------------------------

    template <class Body>
    send_result mutate(http_method method, std::string_view path, const Body& body, const request_options& opts)
    {
        auto made = detail::make_action(method, path, body, opts, config_);
        if (!made) return send_result::failed(made.error());
        return enqueue(std::move(*made));
    }

    send_result read(http_method method, std::string_view path, const request_options& opts);

    /** Undoes an admission unless committed: an exception or a failed write leaves no trace. */
    class admission_guard {
    public:
        admission_guard(basic_vault& v, std::uint64_t seq) : v_(v), seq_(seq) {}
        admission_guard(const admission_guard&) = delete;
        admission_guard& operator=(const admission_guard&) = delete;
        ~admission_guard()
        {
            if (!armed_) return;
            {
                std::lock_guard lock(v_.mutex_);
                v_.machine_.abort(seq_);
                v_.update_status();
            }
            v_.written_.notify_all();
        }
        void disarm() noexcept { armed_ = false; }

    private:
        basic_vault& v_;
        std::uint64_t seq_;
        bool armed_ = true;
    };

    /** Admits and writes `n`; sends it at once only if `allow_send` and the config and lane allow. */
    send_result enqueue(detail::new_action n, bool allow_send = true);

    /** Merges `n` into a pending action with its coalesce key, if SPEC 9.4 allows; else nothing. */
    std::optional<send_result> coalesce(detail::new_action& n);

    /** Writes what a transition left besides its main write (storage_mutex_ held); false: one failed. */
    bool perform_side_writes(const detail::side_writes& w);

    /**
     * Before `seq` is cancelled: saves its dependents as the dead letters the cancel will make
     * of them (storage_mutex_ held), so the sync that covers the cancel covers them too.
     * Returns the originals to put back if the cancel cannot be completed; nullopt (storage as
     * it was) if a save failed.
     */
    std::optional<std::vector<sync_action>> doom_dependents(std::uint64_t seq);

    /** Puts back what `doom_dependents` saved (the cancel failed): best effort, as any put-back. */
    void undo_doom(const std::vector<sync_action>& originals);

    // ---- attempts ---------------------------------------------------------------------------

    /** Owns a claimed head while it is attempted; releasing it is unwinding-proof. */
    class head_claim {
    public:
        head_claim(basic_vault& v, std::uint64_t seq) : v_(v), seq_(seq) {}
        head_claim(const head_claim&) = delete;
        head_claim& operator=(const head_claim&) = delete;
        ~head_claim()
        {
            {
                std::lock_guard lock(v_.mutex_);
                v_.machine_.release(seq_);
                v_.update_status();
            }
            v_.events_->deliver();
            v_.wake_->notify();  // a lane and a transfer slot are free again
        }

    private:
        basic_vault& v_;
        std::uint64_t seq_;
    };

    struct attempt_report {
        bool attempted = false;  // false: storage could not record it, or it left the queue
        bool stalled = false;    // not attempted because storage failed: stop draining
        detail::verdict decision = detail::verdict::retry;
        std::optional<http_response> response;
        std::error_code error;
    };

    /** One attempt of the claimed head `seq`: record it, send it, settle it. */
    attempt_report attempt(std::uint64_t seq);

    /** Persists the attempt count before the transfer (mutex_ and storage_mutex_ held); false: storage failed. */
    bool record_attempt(std::uint64_t seq, time_point t, std::unique_lock<std::mutex>& lock);

    /** `attempt`, and after a 401 `refresh_auth` and one more try, or a pause (SPEC 9.3). */
    attempt_report attempt_with_credentials(std::uint64_t seq);

    /** `vault_config::on_rejected` for a permanent response (called with no lock held). */
    detail::attempt_decision ask_on_rejected(std::uint64_t seq, const http_response& response);

    /** Performs a write a transition asked for (storage_mutex_ held). False: a required insert failed. */
    bool perform(const detail::storage_write& w);

    /** process_queue (ignore timers) or poll (respect them): attempts heads until none is due. */
    std::size_t drain(bool respect_timers);

    /** One transfer: serialized in arrival order unless the transport is thread-safe. */
    result<http_response> transfer(http_request request);

    // ---- policies, guarded ------------------------------------------------------------------

    time_point now() noexcept { return clock_reading_.now(clock_); }
    bool online() noexcept { return detail::online_guarded(connectivity_); }
    next_wake tick() noexcept { return detail::tick_guarded(connectivity_, now()); }
    std::chrono::milliseconds cap() noexcept { return detail::policy_cap(retry_); }
    std::error_code flush_guarded() noexcept { return detail::flush_guarded(storage_); }
    std::error_code save_guarded(const sync_action& a) noexcept { return detail::save_guarded(storage_, a); }
    /** A body storage holds; a storage without the hook holds none apart (the machine keeps them). */
    result<std::string> load_body_guarded(std::string_view id) noexcept
    {
        if constexpr (body_reading_storage<Storage>) return detail::load_body_guarded(storage_, id);
        else {
            (void)id;
            return make_error_code(errc::storage_failed);
        }
    }
    std::error_code remove_guarded(std::string_view id) noexcept { return detail::remove_guarded(storage_, id); }

    /** How long storage is left alone after failures: 100 ms doubling, up to the policy's cap (at least 1 s). */
    std::chrono::milliseconds storage_backoff();

    void set_paused(bool paused);

    /** poll() or process_queue() ran: the queue is being driven. */
    void note_driven()
    {
        std::lock_guard lock(mutex_);
        undriven_since_.reset();
    }

    /**
     * Actions wait and nothing has driven the vault for a minute, and no background_sync is
     * attached: the most common mistake (forgetting the driver) says so once, as a diagnostic.
     */
    void check_driven(time_point t)
    {
        if (drivers_.load() != 0 || undriven_reported_) return;
        if (!undriven_since_) {
            undriven_since_ = t;
            return;
        }
        if (t - *undriven_since_ < std::chrono::minutes(1)) return;
        undriven_reported_ = true;
        add_diagnostic({make_error_code(errc::offline),
                        "actions have waited a minute and nothing drives this vault: create a "
                        "background_sync, or call poll() or process_queue()"});
    }

    /** Connectivity as a drain saw it: coming back online starts the reconnect jitter. */
    void note_connectivity(bool is_online);

    // ---- events and status (mutex_ held) ------------------------------------------------------

    void publish(detail::outbox& out);

    void update_status()
    {
        const auto s = machine_.status();
        if (s == published_status_) return;
        published_status_ = s;
        events_->publish(s);
    }

    /** Kept for `diagnostics()` (the most recent 256) and handed to `on_diagnostic`. */
    void add_diagnostic(diagnostic d);

    // ---- state ------------------------------------------------------------------------------

    vault_config config_;
    std::string base_url_;
    Transport transport_;
    Storage storage_;
    Connectivity connectivity_;
    RetryPolicy retry_;
    Clock clock_;

    // Lock order: storage_mutex_, then mutex_. Callbacks and transfers run with neither held.
    mutable std::mutex mutex_;      // guards machine_, published_status_, diagnostics_, drainers_
    mutable std::mutex storage_mutex_;  // every storage write but a thread-safe model's inserts; body reads
    detail::fair_mutex transport_mutex_;  // transfers, one at a time, in arrival order
    std::condition_variable written_;     // an admitted action's first write ended

    detail::queue_machine machine_;
    sync_status published_status_ = sync_status::synced;
    std::deque<diagnostic> diagnostics_;
    std::size_t drainers_ = 0;
    bool was_online_ = true;                 // as the last poll saw it
    std::optional<time_point> undriven_since_;  // work queued, no poll/process_queue since
    bool undriven_reported_ = false;
    std::minstd_rand jitter_random_{std::random_device{}()};
    std::atomic<std::size_t> drivers_{0};
    detail::guarded_clock<Clock> clock_reading_;

    std::shared_ptr<detail::event_hub> events_;
    std::shared_ptr<detail::wake_hub> wake_;

    // ---- async_* (impl/basic_vault_async.ipp) ----------------------------------------------
    template <class Body, class Handler>
    void initiate_mutation(Handler handler, http_method method, std::string path, Body body, request_options opts);
    template <class Handler>
    void initiate_read(Handler handler, http_method method, std::string path, request_options opts);
    /** The registry, subscribed to this vault's events. */
    detail::async_registry& subscribed_registry();

    // Declared last, so destroyed first, while every policy still lives: waiting operations
    // complete with errc::cancelled and GET/HEAD jobs in progress are interrupted and awaited.
    detail::async_owner async_{[this] { interrupt(); }};
};

} // namespace syncvault

#include <syncvault/impl/basic_vault.ipp>
#include <syncvault/impl/basic_vault_async.ipp>

#endif
