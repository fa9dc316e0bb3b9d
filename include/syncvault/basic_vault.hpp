#ifndef SYNCVAULT_BASIC_VAULT_HPP
#define SYNCVAULT_BASIC_VAULT_HPP

/**
 * @file
 * `basic_vault`: the store-and-forward engine. It sends a request now when it can, otherwise
 * keeps it durably and replays it in order, with backoff, when the network returns. Every
 * concern is a policy (see `concepts/`); `<syncvault/vault.hpp>` names the defaults.
 */

#include <syncvault/action.hpp>
#include <syncvault/body.hpp>
#include <syncvault/config.hpp>
#include <syncvault/error.hpp>
#include <syncvault/events.hpp>
#include <syncvault/concepts/clock.hpp>
#include <syncvault/concepts/connectivity.hpp>
#include <syncvault/concepts/retry_policy.hpp>
#include <syncvault/concepts/storage.hpp>
#include <syncvault/concepts/transport.hpp>
#include <syncvault/detail/event_hub.hpp>
#include <syncvault/detail/request_check.hpp>
#include <syncvault/detail/retry_after.hpp>
#include <syncvault/detail/uuid.hpp>

#include <boost/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

namespace syncvault {

/** When `poll()` wants to be called again: a time point of the vault's Clock, or nothing. */
using next_wake = std::optional<std::chrono::system_clock::time_point>;

/** What a request call returns: sent (with the response), queued, or an error. */
class send_result {
public:
    /** Sent: a response came back (success or permanent failure). */
    static send_result sent(http_response r, std::string action_id = {})
    {
        send_result s;
        s.response_ = std::move(r);
        s.action_id_ = std::move(action_id);
        return s;
    }
    /** Queued (or already queued under the same idempotency key). */
    static send_result queued(std::string action_id)
    {
        send_result s;
        s.queued_ = true;
        s.action_id_ = std::move(action_id);
        return s;
    }
    static send_result failed(std::error_code e, std::string action_id = {})
    {
        send_result s;
        s.error_ = e;
        s.action_id_ = std::move(action_id);
        return s;
    }

    bool is_queued() const noexcept { return queued_; }
    bool is_sent() const noexcept { return response_.has_value(); }
    /** The response, when sent; else null. */
    const http_response* response() const noexcept { return response_ ? &*response_ : nullptr; }
    /** The action's id whenever an action was made (empty for GET/HEAD sent directly). */
    std::string_view action_id() const noexcept { return action_id_; }
    /** Why it was neither sent nor queued. */
    std::error_code error() const noexcept { return error_; }

private:
    send_result() = default;
    bool queued_ = false;
    std::optional<http_response> response_;
    std::string action_id_;
    std::error_code error_;
};

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
 * `vault_config::dispatch`.
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

    ~basic_vault()
    {
        if constexpr (notifying_connectivity<Connectivity>) connectivity_.set_change_handler({});
        if constexpr (flushable_storage<Storage>) {
            std::lock_guard lock(storage_mutex_);
            (void)storage_.flush();
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
    send_result get(std::string_view path, const request_options& opts = {})
    {
        return read(http_method::get, path, opts);
    }
    send_result head(std::string_view path, const request_options& opts = {})
    {
        return read(http_method::head, path, opts);
    }

    // --- the queue -----------------------------------------------------------------------

    /**
     * Manual sync: tries the queue now, in order, ignoring backoff timers; stops at the first
     * retryable failure; dead-letters permanent failures and goes on. Returns the number of
     * successes; 0 at once when offline or when another drain is running.
     */
    std::size_t process_queue() { return drain(false); }

    /**
     * Does all work due at `clock().now()` (a connectivity probe, due attempts) and says when
     * the next work is due; nothing when only an outside event (a new action, connectivity
     * coming back) can create work.
     */
    next_wake poll()
    {
        next_wake probe;
        if constexpr (probing_connectivity<Connectivity>) probe = connectivity_.tick(clock_.now());
        drain(true);
        if constexpr (probing_connectivity<Connectivity>) {
            // A network failure during the drain may have just turned connectivity offline:
            // ask again, or nothing would wake us for the probe that brings it back.
            if (!connectivity_.is_online()) probe = connectivity_.tick(clock_.now());
        }
        std::lock_guard lock(mutex_);
        next_wake due;
        if (!busy_ && !queue_.empty() && reserved_.empty() && connectivity_.is_online())
            due = queue_.front().next_attempt_at;
        if (!due) return probe;
        if (!probe) return due;
        return std::min(*due, *probe);
    }

    std::size_t pending_count() const
    {
        std::lock_guard lock(mutex_);
        return queue_.size();
    }

    /** Pending actions in FIFO order. */
    std::vector<sync_action> pending_actions() const
    {
        std::lock_guard lock(mutex_);
        return {queue_.begin(), queue_.end()};
    }

    /** Removes every pending action, without events (an attempt in flight is forgotten). */
    void clear_queue()
    {
        {
            std::lock_guard lock(mutex_);
            {
                std::lock_guard storage_lock(storage_mutex_);
                for (const auto& a : queue_) (void)storage_.remove(a.id);
            }
            for (const auto& a : queue_) forget(a);
            queue_.clear();
            last_attempt_failed_ = false;
            update_status();
        }
        events_->deliver();
    }

    sync_status status() const
    {
        std::lock_guard lock(mutex_);
        return compute_status();
    }

    // --- dead letters ----------------------------------------------------------------------

    /** Dead letters, oldest first (bounded by `max_dead_letters`, oldest dropped first). */
    std::vector<sync_action> dead_letters() const
    {
        std::lock_guard lock(mutex_);
        return {dead_.begin(), dead_.end()};
    }

    /**
     * Moves a dead letter back to the tail of the queue with its attempts reset (a new
     * lifecycle: `queued` again). False when no such dead letter exists, when another pending
     * action holds its idempotency key, or when storage fails.
     */
    bool requeue(std::string_view action_id)
    {
        {
            std::lock_guard lock(mutex_);
            auto it = std::find_if(dead_.begin(), dead_.end(), [&](auto& a) { return a.id == action_id; });
            if (it == dead_.end() || pending_keys_.contains(it->idempotency_key)) return false;
            sync_action a = *it;
            a.state = action_state::pending;
            a.attempts = 0;
            a.sequence = next_sequence_++;
            a.next_attempt_at = clock_.now();
            a.last_status = 0;
            a.last_error = 0;
            if (store(a)) return false;
            dead_.erase(it);
            pending_keys_.emplace(a.idempotency_key, a.id);
            queue_.push_back(a);
            publish_event(a, sync_event_status::queued, 0);
            update_status();
        }
        events_->deliver();
        wake_->notify();
        return true;
    }

    /** Forgets a dead letter. False when there is none with that id. */
    bool drop_dead_letter(std::string_view action_id)
    {
        std::lock_guard lock(mutex_);
        auto it = std::find_if(dead_.begin(), dead_.end(), [&](auto& a) { return a.id == action_id; });
        if (it == dead_.end()) return false;
        {
            std::lock_guard storage_lock(storage_mutex_);
            (void)storage_.remove(it->id);
        }
        sensitive_.erase(it->id);
        dead_.erase(it);
        return true;
    }

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
     * short (notify a condition variable). `background_sync` uses it.
     */
    [[nodiscard]] subscription on_wake(std::function<void()> fn) { return wake_->add(std::move(fn)); }

    /** Aborts the transfer in progress, if the transport can (its optional `cancel()`). */
    void interrupt()
    {
        if constexpr (cancellable_transport<Transport>) transport_.cancel();
    }

    /** Problems the storage found and recovered from (corrupt records set aside...). */
    std::vector<diagnostic> diagnostics() const
    {
        std::lock_guard lock(mutex_);
        return diagnostics_;
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
        explicit validated(vault_config c) : cfg(checked(std::move(c))), base_url(detail::checked_base_url(cfg.base_url))
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

    static vault_config checked(vault_config cfg)
    {
        auto fail = [](const char* field, const char* why) {
            throw std::invalid_argument(std::string("vault_config.") + field + ": " + why);
        };
        if (cfg.max_retries < 0) fail("max_retries", "must be >= 0");
        if (cfg.connect_timeout.count() <= 0) fail("connect_timeout", "must be > 0");
        if (cfg.receive_timeout.count() <= 0) fail("receive_timeout", "must be > 0");
        if (cfg.max_pending == 0) fail("max_pending", "must be > 0");
        if (cfg.max_body_bytes == 0) fail("max_body_bytes", "must be > 0");
        if (cfg.idempotency_header.empty() || detail::check_header({cfg.idempotency_header, ""}))
            fail("idempotency_header", "must be a valid header name");
        for (const auto& name : cfg.sensitive_headers)
            if (detail::check_header({name, ""})) fail("sensitive_headers", "holds an invalid header name");
        if (cfg.idempotency_key_lifetime.count() < 0) fail("idempotency_key_lifetime", "must be >= 0");
        if (cfg.max_key_bytes == 0) fail("max_key_bytes", "must be > 0");
        return cfg;
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

    void load()
    {
        auto loaded = storage_.load_all();
        if (!loaded)
            throw std::system_error(loaded.error(), "syncvault: cannot load the queue from storage");
        auto actions = std::move(*loaded);
        std::stable_sort(actions.begin(), actions.end(),
                         [](const auto& a, const auto& b) { return a.sequence < b.sequence; });
        const auto latest = clock_.now() + max_delay();
        for (auto& a : actions) {
            next_sequence_ = std::max(next_sequence_, a.sequence + 1);
            if (a.state == action_state::dead) {
                dead_.push_back(std::move(a));
                continue;
            }
            // A wall clock that jumped back must not strand an action far in the future.
            if (a.next_attempt_at > latest) a.next_attempt_at = latest;
            pending_keys_.emplace(a.idempotency_key, a.id);
            queue_.push_back(std::move(a));
        }
        while (dead_.size() > config_.max_dead_letters) {
            (void)storage_.remove(dead_.front().id);
            dead_.pop_front();
        }
        if constexpr (diagnosing_storage<Storage>) {
            diagnostics_ = storage_.take_diagnostics();
            if (config_.on_diagnostic)
                for (const auto& d : diagnostics_) config_.on_diagnostic(d);
        }
        published_status_ = compute_status();
    }

    // ---- building actions -------------------------------------------------------------------

    struct prepared_body {
        std::string bytes, content_type;
    };

    template <class Body>
    result<prepared_body> prepare_body(const Body& body) const
    {
        using B = std::remove_cvref_t<Body>;
        if constexpr (std::is_same_v<B, std::nullptr_t>) {
            return prepared_body{};
        } else if constexpr (std::is_same_v<B, raw_body>) {
            if (body.bytes.size() > config_.max_body_bytes) return make_error_code(errc::payload_too_large);
            if (detail::check_header({"Content-Type", body.content_type}))
                return make_error_code(errc::invalid_request);
            return prepared_body{body.bytes, body.content_type};
        } else {
            std::string text;
            if constexpr (std::is_same_v<B, boost::json::value> || std::is_same_v<B, boost::json::object> ||
                          std::is_same_v<B, boost::json::array>)
                text = boost::json::serialize(body);
            else
                text = boost::json::serialize(to_json(body));
            if (text.size() > config_.max_body_bytes) return make_error_code(errc::payload_too_large);
            // Boost.JSON writes strings' bytes as given; reading our own output back is the
            // simplest complete check that the body is valid UTF-8 JSON a server can parse.
            boost::system::error_code ec;
            (void)boost::json::parse(text, ec);
            if (ec) return make_error_code(errc::invalid_request);
            return prepared_body{std::move(text), "application/json"};
        }
    }

    /** Checks the caller's headers; splits off the sensitive ones (never stored). */
    std::error_code split_headers(const request_options& opts, std::vector<header>& stored,
                                  std::vector<header>& sensitive, std::string& key_from_header) const
    {
        if (opts.headers.size() > config_.max_headers) return errc::invalid_request;
        std::size_t bytes = 0;
        for (const auto& h : opts.headers) {
            if (auto e = detail::check_header(h)) return e;
            bytes += h.name.size() + h.value.size();
            if (header_name_equals(h.name, config_.idempotency_header)) {
                key_from_header = h.value;  // the key header is the vault's to send
                continue;
            }
            bool is_sensitive = std::any_of(config_.sensitive_headers.begin(), config_.sensitive_headers.end(),
                                            [&](const std::string& s) { return header_name_equals(s, h.name); });
            (is_sensitive ? sensitive : stored).push_back(h);
        }
        if (bytes > config_.max_header_bytes) return errc::invalid_request;
        return {};
    }

    template <class Body>
    send_result mutate(http_method method, std::string_view path, const Body& body, const request_options& opts)
    {
        if (auto e = detail::check_path(path, config_.max_path_bytes)) return send_result::failed(e);
        sync_action a;
        std::vector<header> sensitive;
        std::string key_from_header;
        if (auto e = split_headers(opts, a.headers, sensitive, key_from_header)) return send_result::failed(e);
        auto prepared = prepare_body(body);
        if (!prepared) return send_result::failed(prepared.error());
        a.idempotency_key = !opts.idempotency_key.empty() ? opts.idempotency_key
                            : !key_from_header.empty()    ? key_from_header
                                                          : detail::make_uuid_v4();
        if (auto e = detail::check_key(a.idempotency_key, config_.max_key_bytes)) return send_result::failed(e);
        if (!prepared->content_type.empty() && !find_header(a.headers, "Content-Type"))
            a.headers.push_back({"Content-Type", prepared->content_type});
        a.id = detail::make_uuid_v4();
        a.method = method;
        a.path = std::string(path);
        a.body = std::move(prepared->bytes);
        return enqueue(std::move(a), std::move(sensitive));
    }

    send_result read(http_method method, std::string_view path, const request_options& opts)
    {
        if (!connectivity_.is_online() && opts.queue_if_offline) return mutate(method, path, nullptr, opts);
        if (auto e = detail::check_path(path, config_.max_path_bytes)) return send_result::failed(e);
        std::vector<header> headers, sensitive;
        std::string key;
        if (auto e = split_headers(opts, headers, sensitive, key)) return send_result::failed(e);
        if (!connectivity_.is_online()) return send_result::failed(errc::offline);
        http_request request{method, detail::join_url(base_url_, path), std::move(headers), {}};
        request.headers.insert(request.headers.end(), sensitive.begin(), sensitive.end());
        if (!key.empty()) request.headers.push_back({config_.idempotency_header, key});
        if (config_.before_send) config_.before_send(request);
        auto outcome = send_one(request);
        if (!outcome) return send_result::failed(outcome.error());
        return send_result::sent(std::move(*outcome));
    }

    // ---- the queue --------------------------------------------------------------------------

    send_result enqueue(sync_action a, std::vector<header> sensitive)
    {
        bool send_now = false;
        {
            std::lock_guard lock(mutex_);
            if (auto it = pending_keys_.find(a.idempotency_key); it != pending_keys_.end())
                return send_result::queued(it->second);  // the same request is already waiting
            if (queue_.size() + reserved_.size() >= config_.max_pending)
                return send_result::failed(errc::queue_full);
            a.sequence = next_sequence_++;
            a.created_at = a.next_attempt_at = clock_.now();
            send_now = !busy_ && queue_.empty() && reserved_.empty() && connectivity_.is_online();
            if (send_now) busy_ = true;  // claim the head now, so later posts queue behind it
            reserved_.emplace(a.sequence, a.id);
            pending_keys_.emplace(a.idempotency_key, a.id);
        }

        // The durable write happens outside the vault's lock: status and other callers are not
        // held up by an fsync, and concurrent enqueuers can share one (group commit).
        const bool persist = config_.write_ahead || !send_now;
        std::error_code stored;
        if (persist) {
            std::unique_lock storage_lock(storage_mutex_, std::defer_lock);
            if constexpr (!thread_safe_storage<Storage>) storage_lock.lock();
            stored = storage_.save(a);
        }

        {
            std::lock_guard lock(mutex_);
            reserved_.erase(a.sequence);
            if (stored) {
                pending_keys_.erase(a.idempotency_key);
                if (send_now) busy_ = false;
            } else {
                if (!sensitive.empty()) sensitive_[a.id] = std::move(sensitive);
                if (!persist) unsaved_id_ = a.id;
                auto at = std::upper_bound(queue_.begin(), queue_.end(), a.sequence,
                                           [](std::uint64_t s, const auto& q) { return s < q.sequence; });
                queue_.insert(at, a);
                publish_event(a, sync_event_status::queued, 0);
                update_status();
            }
        }
        events_->deliver();
        wake_->notify();
        if (stored) return send_result::failed(errc::storage_failed);
        if (!send_now) return send_result::queued(a.id);

        std::unique_lock lock(mutex_);
        auto attempt = attempt_head(lock);
        busy_ = false;
        lock.unlock();
        events_->deliver();
        wake_->notify();
        // Not attempted (the attempt could not be recorded) or worth a retry: it waits in the queue.
        if (attempt.kind == outcome_kind::retry || attempt.stalled) return send_result::queued(a.id);
        if (attempt.response) return send_result::sent(std::move(*attempt.response), a.id);
        return send_result::failed(attempt.error, a.id);
    }

    /** process_queue (ignore timers, stop at a retry) or poll (respect timers). */
    std::size_t drain(bool respect_timers)
    {
        std::size_t successes = 0;
        std::unique_lock lock(mutex_);
        if (busy_) return 0;
        busy_ = true;
        while (connectivity_.is_online() && !queue_.empty()) {
            // An earlier action still being written holds its place in line.
            if (!reserved_.empty() && reserved_.begin()->first < queue_.front().sequence) break;
            if (respect_timers && queue_.front().next_attempt_at > clock_.now()) break;
            auto attempt = attempt_head(lock);
            if (attempt.kind == outcome_kind::success) ++successes;
            if (attempt.kind == outcome_kind::retry || attempt.stalled) break;
        }
        busy_ = false;
        lock.unlock();
        events_->deliver();
        wake_->notify();
        return successes;
    }

    struct attempt_outcome {
        outcome_kind kind = outcome_kind::retry;
        std::optional<http_response> response;
        std::error_code error;
        bool stalled = false;  // nothing was attempted (storage failed): stop draining
    };

    /**
     * One attempt of the head action. Called with `mutex_` held and `busy_` owned by the caller;
     * unlocks around the transfer and returns with the lock held again.
     */
    attempt_outcome attempt_head(std::unique_lock<std::mutex>& lock)
    {
        // Worked on in place: `busy_` keeps every other drain off the head, and only its id is
        // needed after the lock is released (clear_queue may remove it meanwhile).
        sync_action& head = queue_.front();
        const auto now = clock_.now();
        if (config_.idempotency_key_lifetime.count() > 0 && now - head.created_at > config_.idempotency_key_lifetime) {
            // Replaying after the server may have forgotten the key risks a duplicate effect.
            to_dead_letter(head, std::nullopt, errc::key_expired);
            return {outcome_kind::permanent, std::nullopt, errc::key_expired};
        }

        if (head.attempts > config_.max_retries) {
            // Its budget went on attempts cut short by crashes (persisted, no outcome): an action
            // that kills the process each time it is sent must not be retried forever.
            to_dead_letter(head, std::nullopt, errc::max_retries_exceeded);
            return {outcome_kind::permanent, std::nullopt, make_error_code(errc::max_retries_exceeded)};
        }
        ++head.attempts;
        const bool unsaved = head.id == unsaved_id_;
        if (!unsaved && store(head)) {  // the attempt count is persisted before the attempt
            --head.attempts;
            add_diagnostic({errc::storage_failed, "could not record an attempt of action " + head.id});
            attempt_outcome stalled;
            stalled.stalled = true;
            stalled.error = errc::storage_failed;
            return stalled;
        }
        const std::string id = head.id;
        in_flight_id_ = id;
        publish_event(head, sync_event_status::started, head.attempts);
        update_status();
        http_request request = build_request(head);
        lock.unlock();
        events_->deliver();

        if (config_.before_send) config_.before_send(request);
        auto outcome = send_one(request);

        lock.lock();
        in_flight_id_.clear();
        const bool cleared = queue_.empty() || queue_.front().id != id;
        if (cleared) {  // clear_queue ran meanwhile: the action is gone, and so are its events
            if (unsaved) unsaved_id_.clear();
            update_status();
            attempt_outcome gone;
            gone.kind = classify(outcome);
            if (outcome) gone.response = std::move(*outcome);
            else gone.error = outcome.error();
            return gone;
        }
        return settle(queue_.front(), std::move(outcome), unsaved);
    }

    outcome_kind classify(const result<http_response>& outcome)
    {
        return retry_.classify(outcome);
    }

    /** Applies an attempt's outcome to `head`, the queue's front (lock held). */
    attempt_outcome settle(sync_action& head, result<http_response> outcome, bool unsaved)
    {
        const auto kind = classify(outcome);
        std::optional<http_response> response;
        std::error_code error;
        if (outcome) response = std::move(*outcome);
        else error = outcome.error();
        head.last_status = response ? response->status : 0;
        head.last_error = error && error.category() == error_category() ? error.value()
                          : error                                       ? int(errc::connection_failed)
                                                                        : 0;

        if (kind == outcome_kind::success) {
            sync_action done = std::move(head);
            queue_.pop_front();
            {
                std::lock_guard storage_lock(storage_mutex_);
                if (!unsaved) (void)storage_.remove(done.id);  // lazily synced: a replay is harmless
            }
            forget(done);
            last_attempt_failed_ = false;
            publish_event(done, sync_event_status::success, done.attempts, response);
            update_status();
            return {kind, std::move(response), {}};
        }

        last_attempt_failed_ = true;
        if (kind == outcome_kind::permanent) {
            to_dead_letter(head, response, error);
            return {kind, std::move(response), error};
        }
        if (head.attempts > config_.max_retries) {
            to_dead_letter(head, response, errc::max_retries_exceeded);
            return {outcome_kind::permanent, std::move(response), make_error_code(errc::max_retries_exceeded)};
        }

        head.next_attempt_at = clock_.now() + retry_delay(head, response);
        if (unsaved) {
            // write_ahead off: the action reaches storage only now that it must wait.
            if (store(head)) {
                to_dead_letter(head, response, errc::storage_failed);
                return {outcome_kind::permanent, std::move(response), make_error_code(errc::storage_failed)};
            }
            unsaved_id_.clear();
        } else {
            (void)store(head);  // a lost next-attempt time only makes the retry come sooner
        }
        publish_event(head, sync_event_status::failed, head.attempts, response, error);
        update_status();
        return {kind, std::move(response), error};
    }

    /** Retry-After on 429/503 wins over the policy's backoff; both capped by max_delay. */
    std::chrono::milliseconds retry_delay(const sync_action& a, const std::optional<http_response>& response)
    {
        if (response && (response->status == 429 || response->status == 503))
            if (auto value = find_header(response->headers, "Retry-After"))
                if (auto asked = detail::parse_retry_after(*value, clock_.now()))
                    return std::min(*asked, max_delay());
        return std::clamp(retry_.delay(a.attempts - 1), std::chrono::milliseconds{0}, max_delay());
    }

    std::chrono::milliseconds max_delay() { return std::chrono::milliseconds(retry_.max_delay()); }

    /** The head action `a` leaves the queue for the dead-letter list (lock held). */
    void to_dead_letter(sync_action a, std::optional<http_response> response, std::error_code error)
    {
        a.state = action_state::dead;
        if (error && error.category() == error_category()) a.last_error = error.value();
        const bool unsaved = a.id == unsaved_id_;
        if (unsaved) {
            unsaved_id_.clear();
            (void)store(a);  // best effort: it was never stored
        } else if (store(a)) {
            add_diagnostic({errc::storage_failed, "could not record dead letter " + a.id});
        }
        queue_.pop_front();
        pending_keys_.erase(a.idempotency_key);
        dead_.push_back(a);
        while (dead_.size() > config_.max_dead_letters) {
            {
                std::lock_guard storage_lock(storage_mutex_);
                (void)storage_.remove(dead_.front().id);
            }
            sensitive_.erase(dead_.front().id);
            dead_.pop_front();
        }
        auto event = make_event(a, sync_event_status::dead_letter, a.attempts, std::move(response), error);
        events_->publish(event);
        if (config_.on_dead_letter)
            events_->publish([fn = config_.on_dead_letter, event] { fn(event); });
        update_status();
    }

    http_request build_request(const sync_action& a) const
    {
        http_request r{a.method, detail::join_url(base_url_, a.path), a.headers, a.body};
        if (auto it = sensitive_.find(a.id); it != sensitive_.end())
            r.headers.insert(r.headers.end(), it->second.begin(), it->second.end());
        r.headers.push_back({config_.idempotency_header, a.idempotency_key});
        return r;
    }

    /** One transfer; the transport is never used from two threads at once. */
    result<http_response> send_one(const http_request& request)
    {
        result<http_response> outcome = [&] {
            std::lock_guard transport_lock(transport_mutex_);
            return transport_.send(request);
        }();
        // A cancelled transfer (shutdown) says nothing about the network.
        if constexpr (reported_connectivity<Connectivity>)
            if (outcome || outcome.error() != errc::cancelled) connectivity_.report(outcome.has_value());
        return outcome;
    }

    // ---- storage ----------------------------------------------------------------------------

    std::error_code store(const sync_action& a)
    {
        std::lock_guard storage_lock(storage_mutex_);
        return storage_.save(a);
    }

    void forget(const sync_action& a)
    {
        pending_keys_.erase(a.idempotency_key);
        sensitive_.erase(a.id);
    }

    void add_diagnostic(diagnostic d)
    {
        diagnostics_.push_back(d);
        if (config_.on_diagnostic) events_->publish([fn = config_.on_diagnostic, d] { fn(d); });
    }

    // ---- events and status --------------------------------------------------------------------

    sync_event make_event(const sync_action& a, sync_event_status s, int attempt,
                          std::optional<http_response> response = {}, std::error_code error = {})
    {
        sync_event e;
        e.action_id = a.id;
        e.idempotency_key = a.idempotency_key;
        e.status = s;
        e.attempt = attempt;
        e.response = std::move(response);
        e.error = error;
        e.time = clock_.now();
        return e;
    }

    void publish_event(const sync_action& a, sync_event_status s, int attempt,
                       std::optional<http_response> response = {}, std::error_code error = {})
    {
        events_->publish(make_event(a, s, attempt, std::move(response), error));
    }

    sync_status compute_status() const
    {
        if (!in_flight_id_.empty()) return sync_status::syncing;
        if (last_attempt_failed_) return sync_status::error;
        if (!queue_.empty()) return sync_status::pending;
        return sync_status::synced;
    }

    void update_status()
    {
        auto s = compute_status();
        if (s == published_status_) return;
        published_status_ = s;
        events_->publish(s);
    }

    // ---- state ------------------------------------------------------------------------------

    vault_config config_;
    std::string base_url_;
    Transport transport_;
    Storage storage_;
    Connectivity connectivity_;
    RetryPolicy retry_;
    Clock clock_;

    mutable std::mutex mutex_;    // guards everything below
    std::mutex storage_mutex_;    // storage calls, one at a time (models need not be thread-safe)
    std::mutex transport_mutex_;  // transfers, one at a time

    std::deque<sync_action> queue_;                          // pending, FIFO (by sequence)
    std::deque<sync_action> dead_;                           // dead letters, oldest first
    std::map<std::uint64_t, std::string> reserved_;          // enqueues being written: sequence -> id
    std::unordered_map<std::string, std::string> pending_keys_;  // idempotency key -> action id
    std::unordered_map<std::string, std::vector<header>> sensitive_;  // this process only
    std::uint64_t next_sequence_ = 1;
    bool busy_ = false;             // a drain or an immediate send owns the head
    std::string in_flight_id_;      // the action whose transfer is running
    std::string unsaved_id_;        // write_ahead off: the action being tried from memory
    bool last_attempt_failed_ = false;
    sync_status published_status_ = sync_status::synced;
    std::vector<diagnostic> diagnostics_;

    std::shared_ptr<detail::event_hub> events_;
    std::shared_ptr<detail::wake_hub> wake_;
};

} // namespace syncvault

#endif
