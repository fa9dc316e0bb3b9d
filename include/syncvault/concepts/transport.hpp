#ifndef SYNCVAULT_CONCEPTS_TRANSPORT_HPP
#define SYNCVAULT_CONCEPTS_TRANSPORT_HPP

/**
 * @file
 * `syncvault::transport`: sends one HTTP request and returns what came back.
 *
 * ## Minimal complete definition
 * | expression   | type                    | meaning |
 * |---|---|---|
 * | `t.send(r)`  | `result<http_response>` | perform `r` (an absolute URL, final headers); any HTTP status is a value, an error means no usable answer (refused, timeout, reset, TLS failure...). Use `syncvault::errc::timeout` / `connection_failed` / `cancelled` / `response_too_large` where they fit; every error counts as a network-class failure and is retried. |
 *
 * ## Laws
 * - The vault never calls `send` from two threads at once: a model need not be thread-safe.
 * - `send` must not throw; report failures as errors.
 * - Redirects must not be followed (a 3xx is returned as is, and the vault treats it as permanent).
 *
 * ## Optional hooks (detected, not demanded)
 * - `t.cancel()`: callable from another thread while `send` runs; makes it return soon with an
 *   error (`errc::cancelled`). `background_sync` uses it for a prompt shutdown.
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

namespace syncvault {

/** `t.send(request)` returns exactly `result<http_response>`. */
template <class T>
concept transport_sends = requires(T& t, const http_request& r) {
    { t.send(r) } -> std::same_as<result<http_response>>;
};

template <class T>
concept transport = std::movable<T> && transport_sends<T>;

/**
 * Optional hook: `static constexpr bool thread_safe = true;` says `send` may be called from
 * several threads at once (SPEC 9.2). Without it the vault never calls `send` concurrently,
 * whatever `vault_config::max_in_flight` says.
 */
template <class T>
concept concurrent_transport = transport<T> && requires { requires T::thread_safe; };

/** Optional hook: abort the transfer in progress from another thread. */
template <class T>
concept cancellable_transport = transport<T> && requires(T& t) { t.cancel(); };

} // namespace syncvault

#endif
