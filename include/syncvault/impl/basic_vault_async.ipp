#ifndef SYNCVAULT_IMPL_BASIC_VAULT_ASYNC_IPP
#define SYNCVAULT_IMPL_BASIC_VAULT_ASYNC_IPP

// The async_* family (SPEC 9.5): Asio completion tokens over the vault. Included at the end of
// <syncvault/basic_vault.hpp>; not a header of its own.
//
// A mutating request is admitted with `enqueue(n, false)`, which never sends on the caller; its
// completion waits in the vault's `detail::async_registry` for the action's terminal event. The
// completion is registered under the action's id before the action exists, so no event can slip
// past it; a request that joins another action (same idempotency key) is moved to that action's
// id, and the registry remembers recent outcomes for that late move. GET/HEAD run as a job on
// the handler's executor.

namespace syncvault {

template <class Transport, class Storage, class Connectivity, class RetryPolicy, class Clock>
template <class Body, boost::asio::completion_token_for<void(std::error_code, http_response)> Token>
auto basic_vault<Transport, Storage, Connectivity, RetryPolicy, Clock>::async_post(std::string_view path, const Body& body,
                                                                                  const request_options& opts, Token&& token)
{
    // Arguments are copied: a deferred or awaitable operation starts after this call returns.
    return boost::asio::async_initiate<Token, void(std::error_code, http_response)>(
        [this](auto handler, std::string p, Body b, request_options o) {
            this->initiate_mutation(std::move(handler), http_method::post, std::move(p), std::move(b), std::move(o));
        },
        token, std::string(path), body, opts);
}

template <class Transport, class Storage, class Connectivity, class RetryPolicy, class Clock>
template <class Body, boost::asio::completion_token_for<void(std::error_code, http_response)> Token>
auto basic_vault<Transport, Storage, Connectivity, RetryPolicy, Clock>::async_put(std::string_view path, const Body& body,
                                                                                 const request_options& opts, Token&& token)
{
    return boost::asio::async_initiate<Token, void(std::error_code, http_response)>(
        [this](auto handler, std::string p, Body b, request_options o) {
            this->initiate_mutation(std::move(handler), http_method::put, std::move(p), std::move(b), std::move(o));
        },
        token, std::string(path), body, opts);
}

template <class Transport, class Storage, class Connectivity, class RetryPolicy, class Clock>
template <class Body, boost::asio::completion_token_for<void(std::error_code, http_response)> Token>
auto basic_vault<Transport, Storage, Connectivity, RetryPolicy, Clock>::async_patch(std::string_view path, const Body& body,
                                                                                   const request_options& opts, Token&& token)
{
    return boost::asio::async_initiate<Token, void(std::error_code, http_response)>(
        [this](auto handler, std::string p, Body b, request_options o) {
            this->initiate_mutation(std::move(handler), http_method::patch, std::move(p), std::move(b), std::move(o));
        },
        token, std::string(path), body, opts);
}

template <class Transport, class Storage, class Connectivity, class RetryPolicy, class Clock>
template <boost::asio::completion_token_for<void(std::error_code, http_response)> Token>
auto basic_vault<Transport, Storage, Connectivity, RetryPolicy, Clock>::async_delete(std::string_view path,
                                                                                    const request_options& opts, Token&& token)
{
    return boost::asio::async_initiate<Token, void(std::error_code, http_response)>(
        [this](auto handler, std::string p, request_options o) {
            this->initiate_mutation(std::move(handler), http_method::delete_, std::move(p), nullptr, std::move(o));
        },
        token, std::string(path), opts);
}

template <class Transport, class Storage, class Connectivity, class RetryPolicy, class Clock>
template <boost::asio::completion_token_for<void(std::error_code, http_response)> Token>
auto basic_vault<Transport, Storage, Connectivity, RetryPolicy, Clock>::async_get(std::string_view path,
                                                                                 const request_options& opts, Token&& token)
{
    return boost::asio::async_initiate<Token, void(std::error_code, http_response)>(
        [this](auto handler, std::string p, request_options o) {
            this->initiate_read(std::move(handler), http_method::get, std::move(p), std::move(o));
        },
        token, std::string(path), opts);
}

template <class Transport, class Storage, class Connectivity, class RetryPolicy, class Clock>
template <boost::asio::completion_token_for<void(std::error_code, http_response)> Token>
auto basic_vault<Transport, Storage, Connectivity, RetryPolicy, Clock>::async_head(std::string_view path,
                                                                                  const request_options& opts, Token&& token)
{
    return boost::asio::async_initiate<Token, void(std::error_code, http_response)>(
        [this](auto handler, std::string p, request_options o) {
            this->initiate_read(std::move(handler), http_method::head, std::move(p), std::move(o));
        },
        token, std::string(path), opts);
}

template <class Transport, class Storage, class Connectivity, class RetryPolicy, class Clock>
template <class Body, class Handler>
void basic_vault<Transport, Storage, Connectivity, RetryPolicy, Clock>::initiate_mutation(Handler handler, http_method method,
                                                                                         std::string path, Body body,
                                                                                         request_options opts)
{
    detail::async_completion done(std::move(handler));
    auto made = detail::make_action(method, path, body, opts, config_);
    if (!made) return done.complete(std::error_code(made.error()), {}, true);
    auto& registry = subscribed_registry();
    const std::string id = made->action.id;
    // Registered before the action exists: its terminal event cannot come first.
    const auto ticket = registry.wait(id, std::move(done), true);
    std::optional<send_result> result;
    try {
        result.emplace(enqueue(std::move(*made), false));
    } catch (...) {
        (void)registry.withdraw(id, ticket);  // the handler is destroyed uncalled; the exception tells
        throw;
    }
    if (result->error()) {
        if (auto c = registry.withdraw(id, ticket)) c.complete(result->error(), {}, true);
        return;
    }
    // The same idempotency key was pending: follow that action.
    if (result->action_id() != id) registry.retarget(id, ticket, std::string(result->action_id()), true);
}

template <class Transport, class Storage, class Connectivity, class RetryPolicy, class Clock>
template <class Handler>
void basic_vault<Transport, Storage, Connectivity, RetryPolicy, Clock>::initiate_read(Handler handler, http_method method,
                                                                                     std::string path, request_options opts)
{
    // Subscribed now: a GET queued while offline completes through its action's events.
    auto registry = (subscribed_registry(), async_.registry);
    auto executor = boost::asio::get_associated_executor(handler);
    // The transfer blocks: it runs as a job on the handler's executor, never on the caller.
    boost::asio::post(executor, [this, registry, method, path = std::move(path), opts = std::move(opts),
                                 done = detail::async_completion(std::move(handler))]() mutable {
        if (!registry->begin_read()) return done.complete(make_error_code(errc::cancelled));  // the vault is gone
        std::optional<send_result> r;
        {
            struct reading {
                detail::async_registry& registry;
                ~reading() { registry.end_read(); }
            } scope{*registry};
            try {
                r.emplace(method == http_method::get ? get(path, opts) : head(path, opts));
            } catch (...) {
            }
        }
        // The vault may be destroyed from here on (even by this handler): only `registry` is used.
        if (!r) return done.complete(make_error_code(errc::connection_failed));  // as a throwing send counts
        if (r->is_sent()) return done.complete({}, *r->response());
        if (r->is_queued()) {
            registry->wait(std::string(r->action_id()), std::move(done));
            return;
        }
        done.complete(r->error());
    });
}

template <class Transport, class Storage, class Connectivity, class RetryPolicy, class Clock>
auto basic_vault<Transport, Storage, Connectivity, RetryPolicy, Clock>::subscribed_registry() -> detail::async_registry&
{
    auto& registry = *async_.registry;
    registry.ensure_subscribed([this](std::function<void(const sync_event&)> fn) { return on_event(std::move(fn)); });
    return registry;
}

} // namespace syncvault

#endif
