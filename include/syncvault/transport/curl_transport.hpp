#ifndef SYNCVAULT_TRANSPORT_CURL_TRANSPORT_HPP
#define SYNCVAULT_TRANSPORT_CURL_TRANSPORT_HPP

/**
 * @file
 * `curl_transport`: the reference `syncvault::transport`, built on libcurl (7.85 or newer).
 * Link CMake target `syncvault::curl`.
 */

#include <syncvault/action.hpp>
#include <syncvault/concepts/transport.hpp>
#include <syncvault/config.hpp>
#include <syncvault/error.hpp>

#include <curl/curl.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

#if LIBCURL_VERSION_NUM < 0x075500
#error "syncvault::curl_transport needs libcurl 7.85 or newer (CURLOPT_PROTOCOLS_STR)"
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
struct curl_slist_deleter {
    void operator()(curl_slist* l) const noexcept { curl_slist_free_all(l); }
};

/** `s` without leading and trailing spaces, tabs, CR and LF. */
constexpr std::string_view trim_http_whitespace(std::string_view s) noexcept
{
    constexpr std::string_view ws = " \t\r\n";
    const auto first = s.find_first_not_of(ws);
    if (first == std::string_view::npos) return {};
    return s.substr(first, s.find_last_not_of(ws) - first + 1);
}

/** The connection, the request in flight and what has come back of it, at a stable address
 *  (libcurl's callbacks point here), so that `curl_transport` itself can move. */
struct curl_state {
    std::unique_ptr<CURLM, curl_multi_deleter> multi;  // owns the connection cache (keep-alive)
    std::unique_ptr<CURL, curl_easy_deleter> easy;     // reused for every request
    std::atomic<bool> cancel_requested{false};

    std::chrono::milliseconds receive_timeout{0};
    std::size_t max_response_bytes = 0;

    // Per transfer; touched only by the thread in send().
    http_response response;
    std::size_t received_bytes = 0;
    bool too_large = false;
    bool request_sent = false;  // the connection is up and the request is on its way
    curl_off_t uploaded = 0;
    std::chrono::steady_clock::time_point last_activity{};
    char error_buffer[CURL_ERROR_SIZE] = {};

    void begin_transfer()
    {
        response = {};
        received_bytes = 0;
        too_large = false;
        request_sent = false;
        uploaded = 0;
        last_activity = std::chrono::steady_clock::now();
        error_buffer[0] = '\0';
    }

    // Counts bytes against the cap; false when it is exceeded.
    bool account(std::size_t n) noexcept
    {
        last_activity = std::chrono::steady_clock::now();
        received_bytes += n;
        if (max_response_bytes != 0 && received_bytes > max_response_bytes) too_large = true;
        return !too_large;
    }

    static std::size_t on_body(char* data, std::size_t size, std::size_t n, void* self) noexcept
    {
        auto& s = *static_cast<curl_state*>(self);
        if (!s.account(size * n)) return 0;  // any short count aborts with CURLE_WRITE_ERROR
        try {
            s.response.body.append(data, size * n);
        } catch (...) {
            return 0;
        }
        return size * n;
    }

    static std::size_t on_header(char* data, std::size_t size, std::size_t n, void* self) noexcept
    {
        auto& s = *static_cast<curl_state*>(self);
        if (!s.account(size * n)) return 0;
        try {
            s.add_header_line(std::string_view(data, size * n));
        } catch (...) {
            return 0;
        }
        return size * n;
    }

    void add_header_line(std::string_view line)
    {
        // A status line starts a new response: an interim 1xx's headers are not the final ones.
        if (line.starts_with("HTTP/")) {
            response.headers.clear();
            return;
        }
        if (line.empty() || trim_http_whitespace(line).empty()) return;
        if (line.front() == ' ' || line.front() == '\t') {  // obsolete line folding
            if (!response.headers.empty()) {
                auto& v = response.headers.back().value;
                v += ' ';
                v += trim_http_whitespace(line);
            }
            return;
        }
        const auto colon = line.find(':');
        if (colon == std::string_view::npos) return;
        response.headers.push_back({std::string(trim_http_whitespace(line.substr(0, colon))),
                                    std::string(trim_http_whitespace(line.substr(colon + 1)))});
    }

    // Called once the connection is up (new or reused), just before the request goes out:
    // from here on the receive timeout ("longest silence") applies instead of the connect one.
    static int on_prereq(void* self, char*, char*, int, int) noexcept
    {
        auto& s = *static_cast<curl_state*>(self);
        s.request_sent = true;
        s.last_activity = std::chrono::steady_clock::now();
        return CURL_PREREQFUNC_OK;
    }

    // Upload progress counts as activity too (a large body being sent is not silence).
    static int on_progress(void* self, curl_off_t, curl_off_t, curl_off_t, curl_off_t ulnow) noexcept
    {
        auto& s = *static_cast<curl_state*>(self);
        if (ulnow != s.uploaded) {
            s.uploaded = ulnow;
            s.last_activity = std::chrono::steady_clock::now();
        }
        return 0;
    }
};

inline std::error_code curl_error_to_errc(CURLcode rc) noexcept
{
    switch (rc) {
    case CURLE_OPERATION_TIMEDOUT: return errc::timeout;
    case CURLE_ABORTED_BY_CALLBACK: return errc::cancelled;
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_BAD_FUNCTION_ARGUMENT: return errc::invalid_request;
    case CURLE_OUT_OF_MEMORY: return std::make_error_code(std::errc::not_enough_memory);
    default: return errc::connection_failed;  // refused, reset, DNS, TLS, nothing received...
    }
}

} // namespace detail

/**
 * Sends requests with libcurl, over one reused connection where the server allows (keep-alive).
 *
 * - Connect timeout: `vault_config::connect_timeout`, for DNS, TCP and the TLS handshake
 *   (zero: libcurl's default, 300 s).
 * - Receive timeout: `vault_config::receive_timeout` is the longest silence once the request is
 *   on its way: the transfer fails with `errc::timeout` when no byte has been sent or received
 *   for that long (a slow but steady download goes on). Measured with millisecond resolution by
 *   the transport's own wait loop, not by libcurl's whole-second low-speed check. Zero: no limit.
 * - TLS: peer and host verification on; `tls_ca_file` replaces the system CA bundle;
 *   `tls_insecure_skip_verify` turns verification off (tests against throwaway servers only).
 * - Redirects are not followed (a 3xx is returned as is); only http and https are allowed.
 * - At most `max_response_bytes` of headers plus body are accepted (0: no cap); beyond that
 *   the transfer fails with `errc::response_too_large`.
 * - Errors: `errc::timeout`, `errc::cancelled`, `errc::response_too_large`,
 *   `errc::invalid_request` (malformed URL), else `errc::connection_failed` (refused, reset,
 *   DNS, TLS, no answer). `last_error_message()` keeps libcurl's detail.
 * - `cancel()` may be called from any thread: it aborts the transfer in progress at once
 *   (libcurl's wait is woken with `curl_multi_wakeup`), and `send` returns `errc::cancelled`.
 *   Each `send` starts uncancelled, so a cancel that lands when no transfer runs has no
 *   effect; a caller that may race with the start of a transfer repeats it until the sender
 *   is done (as `background_sync` does).
 *
 * Not thread-safe apart from `cancel()`: one `send` at a time (the vault guarantees it).
 * Movable; a moved-from transport can only be destroyed or assigned to.
 *
 * @code
 * syncvault::curl_transport t{cfg};
 * auto r = t.send({syncvault::http_method::get, "https://example.com/health", {}, {}});
 * if (r) std::cout << r->status << '\n';
 * @endcode
 */
class curl_transport {
public:
    /** Default timeouts and limits of `vault_config`. */
    curl_transport() : curl_transport(vault_config{}) {}

    /**
     * Reads the timeouts, TLS settings and response cap from `cfg`.
     * @throws std::invalid_argument naming the field for a negative timeout or a missing
     *         `tls_ca_file`; std::runtime_error when libcurl cannot be set up.
     */
    explicit curl_transport(const vault_config& cfg) : s_(std::make_unique<detail::curl_state>())
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
        s_->multi.reset(curl_multi_init());
        s_->easy.reset(curl_easy_init());
        if (!s_->multi || !s_->easy) throw std::runtime_error("curl_transport: libcurl init failed");
        s_->receive_timeout = cfg.receive_timeout;
        s_->max_response_bytes = cfg.max_response_bytes;

        CURL* h = s_->easy.get();
        set(h, CURLOPT_NOSIGNAL, 1L);  // threads: no SIGALRM for DNS timeouts
        set(h, CURLOPT_PROTOCOLS_STR, "http,https");
        set(h, CURLOPT_FOLLOWLOCATION, 0L);
        set(h, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(cfg.connect_timeout.count()));
        set(h, CURLOPT_SSL_VERIFYPEER, cfg.tls_insecure_skip_verify ? 0L : 1L);
        set(h, CURLOPT_SSL_VERIFYHOST, cfg.tls_insecure_skip_verify ? 0L : 2L);
        if (!cfg.tls_ca_file.empty()) set(h, CURLOPT_CAINFO, cfg.tls_ca_file.c_str());
        set(h, CURLOPT_TCP_KEEPALIVE, 1L);
        set(h, CURLOPT_ERRORBUFFER, s_->error_buffer);
        set(h, CURLOPT_WRITEFUNCTION, &detail::curl_state::on_body);
        set(h, CURLOPT_WRITEDATA, s_.get());
        set(h, CURLOPT_HEADERFUNCTION, &detail::curl_state::on_header);
        set(h, CURLOPT_HEADERDATA, s_.get());
        set(h, CURLOPT_PREREQFUNCTION, &detail::curl_state::on_prereq);
        set(h, CURLOPT_PREREQDATA, s_.get());
        set(h, CURLOPT_XFERINFOFUNCTION, &detail::curl_state::on_progress);
        set(h, CURLOPT_XFERINFODATA, s_.get());
        set(h, CURLOPT_NOPROGRESS, 0L);
    }

    curl_transport(curl_transport&&) noexcept = default;
    curl_transport& operator=(curl_transport&&) noexcept = default;

    /** Performs `r`; any HTTP status is a response, an error means no usable answer. Never throws. */
    result<http_response> send(const http_request& r) noexcept
    {
        try {
            return perform_request(r);
        } catch (...) {  // only allocation can throw in there
            return std::make_error_code(std::errc::not_enough_memory);
        }
    }

    /**
     * Aborts the `send` in progress, from any thread: it returns `errc::cancelled` promptly.
     * No effect when none is in progress (the next `send` starts afresh). Safe at any time.
     */
    void cancel() noexcept
    {
        if (!s_) return;
        s_->cancel_requested.store(true);
        curl_multi_wakeup(s_->multi.get());  // thread-safe; a wakeup before the wait is kept
    }

    /** libcurl's message for the last failed `send` (empty if it gave none). */
    std::string_view last_error_message() const noexcept { return s_ ? s_->error_buffer : ""; }

private:
    result<http_response> perform_request(const http_request& r)
    {
        auto& s = *s_;
        s.cancel_requested.store(false);  // a cancel aborts only a transfer it finds running
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
        auto outcome = perform();
        // The options point into `r` and `headers`: leave no dangling pointer behind.
        set(h, CURLOPT_HTTPHEADER, static_cast<curl_slist*>(nullptr));
        set(h, CURLOPT_POSTFIELDS, static_cast<const char*>(nullptr));
        if (!outcome) return outcome.error();

        long status = 0;
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
        s.response.status = static_cast<int>(status);
        return std::move(s.response);
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

    // Runs the transfer through the multi handle so that the wait can be woken by cancel()
    // and bounded by the receive timeout at millisecond resolution.
    result<void> perform()
    {
        using namespace std::chrono;
        auto& s = *s_;
        CURLM* m = s.multi.get();
        CURL* h = s.easy.get();
        if (curl_multi_add_handle(m, h) != CURLM_OK) return errc::connection_failed;

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
            if (s.request_sent && s.receive_timeout.count() > 0) {
                const auto left =
                    duration_cast<milliseconds>(s.last_activity + s.receive_timeout - steady_clock::now());
                if (left.count() <= 0) {
                    std::snprintf(s.error_buffer, sizeof s.error_buffer, "no data for %lld ms",
                                  static_cast<long long>(s.receive_timeout.count()));
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

        CURLcode rc = CURLE_OK;
        if (!aborted) {
            int left = 0;
            while (CURLMsg* msg = curl_multi_info_read(m, &left))
                if (msg->msg == CURLMSG_DONE && msg->easy_handle == h) rc = msg->data.result;
        }
        curl_multi_remove_handle(m, h);  // mid-transfer, this closes the connection

        if (aborted) return aborted;
        if (s.too_large) return errc::response_too_large;
        if (rc != CURLE_OK) return detail::curl_error_to_errc(rc);
        return {};
    }

    std::unique_ptr<detail::curl_state> s_;
};

static_assert(syncvault::transport<curl_transport>);
static_assert(syncvault::cancellable_transport<curl_transport>);

} // namespace syncvault

#endif
