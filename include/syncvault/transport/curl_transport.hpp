#ifndef SYNCVAULT_TRANSPORT_CURL_TRANSPORT_HPP
#define SYNCVAULT_TRANSPORT_CURL_TRANSPORT_HPP

/**
 * @file
 * `curl_transport`: the reference `syncvault::transport`, built on libcurl (7.85 or newer, with
 * the header API). Link CMake target `syncvault::curl`.
 */

#include <syncvault/action.hpp>
#include <syncvault/concepts/transport.hpp>
#include <syncvault/config.hpp>
#include <syncvault/detail/saturating_chrono.hpp>
#include <syncvault/error.hpp>

#include <curl/curl.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdio>
#include <filesystem>
#include <iterator>
#include <limits>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#if LIBCURL_VERSION_NUM < 0x075500
#error "syncvault::curl_transport needs libcurl 7.85 or newer (CURLOPT_PROTOCOLS_STR, curl_easy_nextheader)"
#endif

namespace syncvault {

namespace detail {

/** Initializes libcurl once per process, thread-safely; never cleaned up (process lifetime). */
inline void curl_global_init_once()
{
    static const CURLcode rc = curl_global_init(CURL_GLOBAL_DEFAULT);
    if (rc != CURLE_OK)
        throw std::runtime_error(std::string("curl_global_init: ") + curl_easy_strerror(rc));
}

struct curl_easy_deleter {
    void operator()(CURL* h) const noexcept { curl_easy_cleanup(h); }
};
struct curl_multi_deleter {
    void operator()(CURLM* m) const noexcept { curl_multi_cleanup(m); }
};
struct curl_share_deleter {
    void operator()(CURLSH* s) const noexcept { curl_share_cleanup(s); }
};
struct curl_slist_deleter {
    void operator()(curl_slist* l) const noexcept { curl_slist_free_all(l); }
};

/**
 * `d` for libcurl's `CURLOPT_CONNECTTIMEOUT_MS`: 0 stays 0 (libcurl's default, 300 s); anything
 * else is clamped to `INT_MAX` ms (24.8 days), which libcurl adds to its clock safely, so
 * `milliseconds::max()` means "no limit" in effect instead of an overflow.
 */
inline long curl_timeout_ms(std::chrono::milliseconds d) noexcept
{
    if (d.count() <= 0) return 0;
    return static_cast<long>(std::min<std::chrono::milliseconds::rep>(d.count(), std::numeric_limits<int>::max()));
}

/** What every transfer of one transport is set up with. */
struct curl_settings {
    long connect_timeout_ms = 0;
    std::chrono::milliseconds receive_timeout{0};  // longest silence; 0: no limit
    std::size_t max_response_bytes = 0;            // 0: no cap
    bool verify_peer = true;
    std::string ca_file;
};

/**
 * The caches all transfers of one transport share through libcurl's share interface: DNS and
 * TLS sessions, each behind its own mutex. Connections are not shared this way: libcurl does
 * not support a shared connection cache used by concurrent threads (its known bug "A shared
 * connection cache is not thread-safe"); each slot's multi handle keeps its own connection
 * alive instead, and slots are reused, so a connection is too.
 */
class curl_share {
public:
    curl_share() : handle_(curl_share_init())
    {
        if (!handle_) throw std::runtime_error("curl_transport: curl_share_init failed");
        CURLSH* s = handle_.get();
        curl_share_setopt(s, CURLSHOPT_LOCKFUNC, &curl_share::lock);
        curl_share_setopt(s, CURLSHOPT_UNLOCKFUNC, &curl_share::unlock);
        curl_share_setopt(s, CURLSHOPT_USERDATA, this);
        curl_share_setopt(s, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
        curl_share_setopt(s, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);  // a no-op without TLS
    }
    curl_share(const curl_share&) = delete;
    curl_share& operator=(const curl_share&) = delete;

    CURLSH* get() const noexcept { return handle_.get(); }

private:
    std::mutex& mutex_for(curl_lock_data data) noexcept
    {
        const auto i = static_cast<std::size_t>(data);
        return mutexes_[i < mutexes_.size() ? i : 0];
    }
    static void lock(CURL*, curl_lock_data data, curl_lock_access, void* self) noexcept
    {
        static_cast<curl_share*>(self)->mutex_for(data).lock();
    }
    static void unlock(CURL*, curl_lock_data data, void* self) noexcept
    {
        static_cast<curl_share*>(self)->mutex_for(data).unlock();
    }

    std::array<std::mutex, CURL_LOCK_DATA_LAST> mutexes_;  // outlive the handle (its cleanup locks)
    std::unique_ptr<CURLSH, curl_share_deleter> handle_;
};

/**
 * One transfer at a time: an easy handle, the multi handle that drives it (so that the wait can
 * be woken by `cancel()` and bounded at millisecond resolution), and what has come back. Slots
 * are reused; the multi handle's connection cache keeps the connection alive for the next
 * transfer (keep-alive). Lives at a stable address: libcurl's callbacks point here.
 */
struct curl_slot {
    std::unique_ptr<CURLM, curl_multi_deleter> multi;  // destroyed after the easy handle
    std::unique_ptr<CURL, curl_easy_deleter> easy;
    std::atomic<bool> cancel_requested{false};         // set by cancel() from any thread
    const curl_settings* settings = nullptr;

    // Per transfer; touched only by the thread in send().
    std::string body;
    std::size_t received_bytes = 0;
    bool too_large = false;
    bool request_sent = false;  // the connection is up and the request is on its way
    curl_off_t uploaded = 0;
    std::chrono::steady_clock::time_point last_activity{};
    char error_buffer[CURL_ERROR_SIZE] = {};

    void begin_transfer()
    {
        body.clear();
        received_bytes = 0;
        too_large = false;
        request_sent = false;
        uploaded = 0;
        last_activity = std::chrono::steady_clock::now();
        error_buffer[0] = '\0';
    }

    // Counts bytes (headers and body) against the cap; false when it is exceeded.
    bool account(std::size_t n) noexcept
    {
        last_activity = std::chrono::steady_clock::now();
        received_bytes += n;
        if (settings->max_response_bytes != 0 && received_bytes > settings->max_response_bytes) too_large = true;
        return !too_large;
    }

    static std::size_t on_body(char* data, std::size_t size, std::size_t n, void* self) noexcept
    {
        auto& s = *static_cast<curl_slot*>(self);
        if (!s.account(size * n)) return 0;  // any short count aborts with CURLE_WRITE_ERROR
        try {
            s.body.append(data, size * n);
        } catch (...) {
            return 0;
        }
        return size * n;
    }

    // Header lines are only counted here; libcurl's header API hands over the final
    // response's fields, parsed and unfolded, once the transfer is done.
    static std::size_t on_header(char*, std::size_t size, std::size_t n, void* self) noexcept
    {
        return static_cast<curl_slot*>(self)->account(size * n) ? size * n : 0;
    }

    // Called once the connection is up (new or reused), just before the request goes out:
    // from here on the receive timeout ("longest silence") applies instead of the connect one.
    static int on_prereq(void* self, char*, char*, int, int) noexcept
    {
        auto& s = *static_cast<curl_slot*>(self);
        s.request_sent = true;
        s.last_activity = std::chrono::steady_clock::now();
        return CURL_PREREQFUNC_OK;
    }

    // Upload progress counts as activity too (a large body being sent is not silence).
    static int on_progress(void* self, curl_off_t, curl_off_t, curl_off_t, curl_off_t ulnow) noexcept
    {
        auto& s = *static_cast<curl_slot*>(self);
        if (ulnow != s.uploaded) {
            s.uploaded = ulnow;
            s.last_activity = std::chrono::steady_clock::now();
        }
        return 0;
    }
};

/** Everything one `curl_transport` owns, at a stable address (the transport itself moves). */
struct curl_pool {
    curl_settings settings;
    curl_share share;  // outlives every slot: easy handles detach from it when cleaned up

    std::mutex mutex;
    // Guarded by `mutex`. Nodes move between the lists by splice (no allocation, no throw);
    // idle slots are taken from the back, so the warmest connection is reused first.
    std::list<std::unique_ptr<curl_slot>> idle, busy;
    std::string last_error;
};

/** libcurl's result as an `errc`: TLS failures keep their cause, the rest of the network
 *  failures are `connection_failed`. */
inline std::error_code curl_error_to_errc(CURLcode rc) noexcept
{
    switch (rc) {
    case CURLE_OPERATION_TIMEDOUT: return errc::timeout;
    case CURLE_ABORTED_BY_CALLBACK: return errc::cancelled;
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_BAD_FUNCTION_ARGUMENT: return errc::invalid_request;
    case CURLE_OUT_OF_MEMORY: return std::make_error_code(std::errc::not_enough_memory);
    case CURLE_SSL_CONNECT_ERROR:          // handshake failed
    case CURLE_PEER_FAILED_VERIFICATION:   // certificate or host name not trusted
    case CURLE_SSL_CERTPROBLEM:            // our client certificate
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_ENGINE_INITFAILED:
    case CURLE_SSL_SHUTDOWN_FAILED:
    case CURLE_USE_SSL_FAILED: return errc::tls_failed;
    default: return errc::connection_failed;  // refused, reset, DNS, nothing received...
    }
}

} // namespace detail

/**
 * Sends requests with libcurl, reusing connections where the server allows (keep-alive).
 *
 * - **Thread-safe** (`thread_safe` is true): `send` may run on several threads at once. Each
 *   concurrent transfer gets its own easy handle from a small pool of reusable ones (as many
 *   as ever ran at once); every handle keeps its connection open for the next transfer, and
 *   all of them share the DNS cache and TLS sessions (libcurl's share interface), so a new
 *   connection to a known server skips the lookup and resumes the TLS session. Used from one
 *   thread, it is one handle and one connection, as before. (Connections themselves are not
 *   put in the share: libcurl does not support a connection cache shared by concurrent
 *   threads.)
 * - Connect timeout: `vault_config::connect_timeout`, for DNS, TCP and the TLS handshake
 *   (zero: libcurl's default, 300 s; at most `INT_MAX` ms, so `milliseconds::max()` is no
 *   limit in effect).
 * - Receive timeout: `vault_config::receive_timeout` is the longest silence once the request is
 *   on its way: the transfer fails with `errc::timeout` when no byte has been sent or received
 *   for that long (a slow but steady download goes on). Measured with millisecond resolution by
 *   the transport's own wait loop, not by libcurl's whole-second low-speed check. Zero, or a
 *   value too large for the clock (`milliseconds::max()`): no limit.
 * - TLS: peer and host verification on; `tls_ca_file` replaces the system CA bundle;
 *   `tls_insecure_skip_verify` turns verification off (tests against throwaway servers only).
 * - Redirects are not followed (a 3xx is returned as is); only http and https are allowed.
 *   The response's headers are the final response's (not a 1xx's), in order, as libcurl's
 *   header API gives them (names as sent, values trimmed and unfolded).
 * - At most `max_response_bytes` of headers plus body are accepted (0: no cap); beyond that
 *   the transfer fails with `errc::response_too_large`.
 * - Errors: `errc::timeout`, `errc::cancelled`, `errc::response_too_large`,
 *   `errc::tls_failed` (handshake, certificate or host verification: retryable, a captive
 *   portal causes it too), `errc::invalid_request` (malformed URL), else
 *   `errc::connection_failed` (refused, reset, DNS, no answer). libcurl's own text for a
 *   failure comes with it through `send(request, details)`; `last_error_message()` keeps the
 *   most recent one of any thread.
 * - `cancel()` may be called from any thread: it aborts every transfer in progress at once
 *   (each one's wait is woken with `curl_multi_wakeup`), and each of those `send`s returns
 *   `errc::cancelled`. A `send` that starts after it is not affected, so a cancel that lands
 *   when no transfer runs has no effect; a caller that may race with the start of a transfer
 *   repeats it until the sender is done (as `background_sync` does).
 *
 * Movable; a moved-from transport can only be destroyed or assigned to. Destroy it only when
 * no `send` runs.
 *
 * @code
 * syncvault::curl_transport t{cfg};
 * syncvault::send_details details;
 * auto r = t.send({syncvault::http_method::get, "https://example.com/health", {}, {}}, details);
 * if (r) std::cout << r->status << '\n';
 * else std::cout << r.error().message() << ": " << details.error_message << '\n';
 * @endcode
 */
class curl_transport {
public:
    /** `send` may be called from several threads at once (see `concurrent_transport`). */
    static constexpr bool thread_safe = true;

    /** Default timeouts and limits of `vault_config`. */
    curl_transport() : curl_transport(vault_config{}) {}

    /**
     * Reads the timeouts, TLS settings and response cap from `cfg`.
     * @throws std::invalid_argument naming the field for a negative timeout or a missing
     *         `tls_ca_file`; std::runtime_error when libcurl cannot be set up or lacks the
     *         header API.
     */
    explicit curl_transport(const vault_config& cfg)
    {
        if (cfg.connect_timeout.count() < 0)
            throw std::invalid_argument("vault_config::connect_timeout must not be negative");
        if (cfg.receive_timeout.count() < 0)
            throw std::invalid_argument("vault_config::receive_timeout must not be negative");
        if (!cfg.tls_ca_file.empty()) {
            std::error_code ec;
            if (!std::filesystem::is_regular_file(cfg.tls_ca_file, ec))
                throw std::invalid_argument("vault_config::tls_ca_file: no such file: " +
                                            cfg.tls_ca_file.string());
        }
        detail::curl_global_init_once();
        p_ = std::make_unique<detail::curl_pool>();
        auto& settings = p_->settings;
        settings.connect_timeout_ms = detail::curl_timeout_ms(cfg.connect_timeout);
        settings.receive_timeout = cfg.receive_timeout;
        settings.max_response_bytes = cfg.max_response_bytes;
        settings.verify_peer = !cfg.tls_insecure_skip_verify;
        settings.ca_file = cfg.tls_ca_file.string();

        // The first slot now: setup failures surface here, not at the first send.
        auto first = make_slot();
        if (!first) throw std::runtime_error("curl_transport: libcurl init failed");
        curl_header* unused = nullptr;
        if (curl_easy_header(first->easy.get(), "Date", 0, CURLH_HEADER, -1, &unused) == CURLHE_NOT_BUILT_IN)
            throw std::runtime_error("curl_transport: libcurl was built without its header API");
        p_->idle.push_back(std::move(first));
    }

    curl_transport(curl_transport&&) noexcept = default;
    curl_transport& operator=(curl_transport&&) noexcept = default;

    /** Performs `r`; any HTTP status is a response, an error means no usable answer. Never throws. */
    result<http_response> send(const http_request& r) noexcept { return send_reporting(r, nullptr); }

    /** As `send(r)`, and on failure puts libcurl's text for it in `details.error_message`. */
    result<http_response> send(const http_request& r, send_details& details) noexcept
    {
        details.error_message.clear();
        return send_reporting(r, &details);
    }

    /**
     * Aborts every `send` in progress, from any thread: each returns `errc::cancelled`
     * promptly. No effect on a `send` that starts later. Safe at any time.
     */
    void cancel() noexcept
    {
        if (!p_) return;
        std::lock_guard lock(p_->mutex);
        for (const auto& slot : p_->busy) {
            slot->cancel_requested.store(true);
            curl_multi_wakeup(slot->multi.get());  // thread-safe; a wakeup before the wait is kept
        }
    }

    /** libcurl's message for the most recent failed `send` on any thread (empty if none). With
     *  concurrent sends, prefer `send(r, details)`, which reports per call. */
    std::string last_error_message() const
    {
        if (!p_) return {};
        std::lock_guard lock(p_->mutex);
        return p_->last_error;
    }

private:
    using slot_list = std::list<std::unique_ptr<detail::curl_slot>>;

    /** A slot taken out of the idle list for one transfer; back to idle when it ends. */
    class lease {
    public:
        lease(detail::curl_pool& p, slot_list::iterator it) noexcept : p_(p), it_(it) {}
        lease(const lease&) = delete;
        lease& operator=(const lease&) = delete;
        ~lease()
        {
            std::lock_guard lock(p_.mutex);
            p_.idle.splice(p_.idle.end(), p_.busy, it_);
        }
        detail::curl_slot& operator*() const noexcept { return **it_; }

    private:
        detail::curl_pool& p_;
        slot_list::iterator it_;
    };

    result<http_response> send_reporting(const http_request& r, send_details* details) noexcept
    {
        if (!p_) return errc::invalid_config;  // moved from
        std::string message;
        result<http_response> out = errc::connection_failed;
        try {
            out = perform_request(r, message);
        } catch (...) {  // only allocation can throw in there
            out = std::make_error_code(std::errc::not_enough_memory);
            message = "out of memory";
        }
        if (!out) {
            try {
                if (message.empty()) message = std::error_code(out.error()).message();
                if (details) details->error_message = message;
                std::lock_guard lock(p_->mutex);
                p_->last_error = std::move(message);
            } catch (...) {  // the message is a courtesy: keep the error
            }
        }
        return out;
    }

    std::unique_ptr<detail::curl_slot> make_slot() const
    {
        auto slot = std::make_unique<detail::curl_slot>();
        slot->multi.reset(curl_multi_init());
        slot->easy.reset(curl_easy_init());
        if (!slot->multi || !slot->easy) return nullptr;
        const auto& settings = p_->settings;
        slot->settings = &settings;

        CURL* h = slot->easy.get();
        set(h, CURLOPT_SHARE, p_->share.get());
        set(h, CURLOPT_NOSIGNAL, 1L);  // threads: no SIGALRM for DNS timeouts
        set(h, CURLOPT_PROTOCOLS_STR, "http,https");
        set(h, CURLOPT_FOLLOWLOCATION, 0L);
        set(h, CURLOPT_CONNECTTIMEOUT_MS, settings.connect_timeout_ms);
        set(h, CURLOPT_SSL_VERIFYPEER, settings.verify_peer ? 1L : 0L);
        set(h, CURLOPT_SSL_VERIFYHOST, settings.verify_peer ? 2L : 0L);
        if (!settings.ca_file.empty()) set(h, CURLOPT_CAINFO, settings.ca_file.c_str());
        set(h, CURLOPT_TCP_KEEPALIVE, 1L);
        set(h, CURLOPT_ERRORBUFFER, slot->error_buffer);
        set(h, CURLOPT_WRITEFUNCTION, &detail::curl_slot::on_body);
        set(h, CURLOPT_WRITEDATA, slot.get());
        set(h, CURLOPT_HEADERFUNCTION, &detail::curl_slot::on_header);
        set(h, CURLOPT_HEADERDATA, slot.get());
        set(h, CURLOPT_PREREQFUNCTION, &detail::curl_slot::on_prereq);
        set(h, CURLOPT_PREREQDATA, slot.get());
        set(h, CURLOPT_XFERINFOFUNCTION, &detail::curl_slot::on_progress);
        set(h, CURLOPT_XFERINFODATA, slot.get());
        set(h, CURLOPT_NOPROGRESS, 0L);
        return slot;
    }

    /** An idle slot (or a new one) moved to the busy list, uncancelled. */
    std::optional<lease> acquire()
    {
        auto& p = *p_;
        {
            std::lock_guard lock(p.mutex);
            if (!p.idle.empty()) {
                p.busy.splice(p.busy.end(), p.idle, std::prev(p.idle.end()));
                auto it = std::prev(p.busy.end());
                (*it)->cancel_requested.store(false);  // a cancel aborts only transfers it finds running
                return std::optional<lease>(std::in_place, p, it);
            }
        }
        auto fresh = make_slot();  // outside the lock: more transfers at once than ever before
        if (!fresh) return std::nullopt;
        std::lock_guard lock(p.mutex);
        p.busy.push_back(std::move(fresh));
        return std::optional<lease>(std::in_place, p, std::prev(p.busy.end()));
    }

    result<http_response> perform_request(const http_request& r, std::string& message)
    {
        auto taken = acquire();
        if (!taken) {
            message = "libcurl could not make a handle";
            return std::make_error_code(std::errc::not_enough_memory);
        }
        auto& s = **taken;
        CURL* h = s.easy.get();

        std::unique_ptr<curl_slist, detail::curl_slist_deleter> headers;
        bool has_content_type = false;
        for (const auto& f : r.headers) {
            has_content_type = has_content_type || header_name_equals(f.name, "Content-Type");
            // "Name;" is libcurl's spelling of a header with an empty value.
            const auto line = f.value.empty() ? f.name + ";" : f.name + ": " + f.value;
            if (!append(headers, line.c_str())) return std::make_error_code(std::errc::not_enough_memory);
        }
        // No "Expect: 100-continue" round trip for large bodies; no made-up form content type.
        if (!append(headers, "Expect:")) return std::make_error_code(std::errc::not_enough_memory);
        if (!has_content_type && !append(headers, "Content-Type:"))
            return std::make_error_code(std::errc::not_enough_memory);

        set(h, CURLOPT_URL, r.url.c_str());
        set(h, CURLOPT_HTTPHEADER, headers.get());
        set(h, CURLOPT_NOBODY, 0L);
        set(h, CURLOPT_CUSTOMREQUEST, static_cast<const char*>(nullptr));
        switch (r.method) {
        case http_method::get: set(h, CURLOPT_HTTPGET, 1L); break;
        case http_method::head: set(h, CURLOPT_NOBODY, 1L); break;
        case http_method::delete_:
            if (r.body.empty()) {  // no "Content-Length: 0" on a plain DELETE
                set(h, CURLOPT_HTTPGET, 1L);
                set(h, CURLOPT_CUSTOMREQUEST, "DELETE");
                break;
            }
            [[fallthrough]];
        case http_method::post:
        case http_method::put:
        case http_method::patch:
            set(h, CURLOPT_POST, 1L);
            set(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(r.body.size()));
            set(h, CURLOPT_POSTFIELDS, r.body.data());
            if (r.method != http_method::post)
                set(h, CURLOPT_CUSTOMREQUEST, to_string(r.method).data());  // a literal
            break;
        }

        s.begin_transfer();
        http_response response;
        auto outcome = perform(s, response.headers);
        // The options point into `r` and `headers`: leave no dangling pointer behind.
        set(h, CURLOPT_HTTPHEADER, static_cast<curl_slist*>(nullptr));
        set(h, CURLOPT_POSTFIELDS, static_cast<const char*>(nullptr));
        if (!outcome) {
            message = s.error_buffer;
            return outcome.error();
        }

        long status = 0;
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
        response.status = static_cast<int>(status);
        response.body = std::move(s.body);
        return response;
    }

    template <class V>
    static void set(CURL* h, CURLoption opt, V value) noexcept
    {
        curl_easy_setopt(h, opt, value);
    }

    static bool append(std::unique_ptr<curl_slist, detail::curl_slist_deleter>& list,
                       const char* line) noexcept
    {
        curl_slist* grown = curl_slist_append(list.get(), line);
        if (!grown) return false;
        (void)list.release();  // curl_slist_append returns the same head, now owning `line`
        list.reset(grown);
        return true;
    }

    // The final response's fields (not a 1xx's, not a proxy's CONNECT answer), in order.
    static void collect_headers(CURL* h, std::vector<header>& out)
    {
        curl_header* field = nullptr;
        while ((field = curl_easy_nextheader(h, CURLH_HEADER, -1, field)) != nullptr)
            out.push_back({field->name, field->value});
    }

    // Runs the transfer through the slot's multi handle so that the wait can be woken by
    // cancel() and bounded by the receive timeout at millisecond resolution. On success the
    // response's headers are in `headers`; on failure the error buffer says why.
    static result<void> perform(detail::curl_slot& s, std::vector<header>& headers)
    {
        using namespace std::chrono;
        CURLM* m = s.multi.get();
        CURL* h = s.easy.get();
        if (curl_multi_add_handle(m, h) != CURLM_OK) return errc::connection_failed;
        struct detach {  // mid-transfer, removing the handle closes the connection
            CURLM* m;
            CURL* h;
            ~detach() { curl_multi_remove_handle(m, h); }
        } detach_on_exit{m, h};

        const auto receive_timeout = s.settings->receive_timeout;
        std::error_code aborted;
        int running = 1;
        for (;;) {
            if (curl_multi_perform(m, &running) != CURLM_OK) {
                aborted = errc::connection_failed;
                break;
            }
            if (running == 0) break;
            if (s.cancel_requested.load()) {
                std::snprintf(s.error_buffer, sizeof s.error_buffer, "cancelled");
                aborted = errc::cancelled;
                break;
            }
            auto wait = milliseconds(1'000);  // libcurl shortens it to its own timers
            if (s.request_sent && receive_timeout.count() > 0) {
                // Saturating: receive_timeout may be milliseconds::max() (no limit).
                const auto deadline = detail::saturating_add(s.last_activity, receive_timeout);
                const auto left = duration_cast<milliseconds>(deadline - steady_clock::now());
                if (left.count() <= 0) {
                    std::snprintf(s.error_buffer, sizeof s.error_buffer, "no data for %lld ms",
                                  static_cast<long long>(receive_timeout.count()));
                    aborted = errc::timeout;
                    break;
                }
                wait = std::min(wait, left + milliseconds(1));
            }
            if (curl_multi_poll(m, nullptr, 0, static_cast<int>(wait.count()), nullptr) != CURLM_OK) {
                aborted = errc::connection_failed;
                break;
            }
        }
        if (aborted) return aborted;

        CURLcode rc = CURLE_OK;
        int left = 0;
        while (CURLMsg* msg = curl_multi_info_read(m, &left))
            if (msg->msg == CURLMSG_DONE && msg->easy_handle == h) rc = msg->data.result;
        if (s.too_large) {
            std::snprintf(s.error_buffer, sizeof s.error_buffer, "response over %zu bytes (max_response_bytes)",
                          s.settings->max_response_bytes);
            return errc::response_too_large;
        }
        if (rc != CURLE_OK) {
            if (s.error_buffer[0] == '\0')
                std::snprintf(s.error_buffer, sizeof s.error_buffer, "%s", curl_easy_strerror(rc));
            return detail::curl_error_to_errc(rc);
        }
        collect_headers(h, headers);
        return {};
    }

    std::unique_ptr<detail::curl_pool> p_;
};

static_assert(syncvault::transport<curl_transport>);
static_assert(syncvault::cancellable_transport<curl_transport>);
static_assert(syncvault::concurrent_transport<curl_transport>);
static_assert(syncvault::detailed_transport<curl_transport>);

} // namespace syncvault

#endif
