#ifndef SYNCVAULT_CONCEPTS_TRANSPORT_HPP
#define SYNCVAULT_CONCEPTS_TRANSPORT_HPP

/**
 * @file
 * `syncvault::transport`: sends one HTTP request and returns what came back.
 *
 * ## Minimal complete definition
 * | expression   | type                    | meaning |
 * |---|---|---|
 * | `t.send(r)`  | `result<http_response>` | perform `r` (an absolute URL, final headers); any HTTP status is a value, an error means no usable answer (refused, timeout, reset, TLS failure...). Use `syncvault::errc::timeout` / `connection_failed` / `tls_failed` / `cancelled` / `response_too_large` where they fit; every error counts as a network-class failure and is retried. |
 *
 * ## Laws
 * - Unless the model declares `thread_safe` (below), the vault never calls `send` from two
 *   threads at once, whatever `vault_config::max_in_flight` says: a model need not be
 *   thread-safe.
 * - `send` must not throw; report failures as errors.
 * - Redirects must not be followed (a 3xx is returned as is, and the vault treats it as permanent).
 *
 * ## Optional hooks (detected, not demanded)
 * - `t.cancel()`: callable from another thread while `send` runs; makes it return soon with an
 *   error (`errc::cancelled`). `background_sync` uses it for a prompt shutdown. A thread-safe
 *   model aborts every transfer in progress.
 * - `static constexpr bool thread_safe = true;`: `send` may be called from several threads at
 *   once (and `cancel` with them). Without it the vault never calls `send` concurrently.
 *   Detected by `concurrent_transport`.
 * - `t.send(r, details)` with a `send_details&`: the same transfer, and on failure the HTTP
 *   library's own words for it in `details.error_message` (libcurl's "SSL certificate
 *   problem: self-signed certificate" behind an `errc::tls_failed`). Per call, so it stays
 *   right when several sends run at once. Detected by `detailed_transport`.
 *
 * ## Models
 * `curl_transport` (libcurl, `<syncvault/transport/curl_transport.hpp>`),
 * `testing::fake_transport` (`<syncvault/testing/fake_transport.hpp>`).
 *
 * @code
 * struct my_transport {
 *     syncvault::result<syncvault::http_response> send(const syncvault::http_request& r)
 *     {
 *         auto answer = my_http_client.perform(r.method, r.url, r.headers, r.body);
 *         if (!answer) return syncvault::errc::connection_failed;
 *         return syncvault::http_response{answer->status, answer->headers, answer->body};
 *     }
 * };
 * static_assert(syncvault::transport<my_transport>);
 * @endcode
 */

#include <syncvault/action.hpp>

#include <concepts>
#include <string>

namespace syncvault {

/** `t.send(request)` returns exactly `result<http_response>`. */
template <class T>
concept transport_sends = requires(T& t, const http_request& r) {
    { t.send(r) } -> std::same_as<result<http_response>>;
};

template <class T>
concept transport = std::movable<T> && transport_sends<T>;

/** Optional hook: abort the transfer in progress from another thread. */
template <class T>
concept cancellable_transport = transport<T> && requires(T& t) { t.cancel(); };

/** Optional hook: `send` may run on several threads at once (`static constexpr bool thread_safe = true;`). */
template <class T>
concept concurrent_transport = transport<T> && requires { requires T::thread_safe; };

/** What a transport can tell about one `send` beyond its result (see `detailed_transport`). */
struct send_details {
    /** On failure, the HTTP library's own text (libcurl's error buffer); empty on success or
     *  when the library gave none. The error code stays the thing to branch on. */
    std::string error_message;
};

/** Optional hook: `t.send(r, details)` also reports the failure's text, per call. */
template <class T>
concept detailed_transport = transport<T> && requires(T& t, const http_request& r, send_details& d) {
    { t.send(r, d) } -> std::same_as<result<http_response>>;
};

} // namespace syncvault

#endif
