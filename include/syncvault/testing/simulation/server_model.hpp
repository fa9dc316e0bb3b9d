#ifndef SYNCVAULT_TESTING_SIMULATION_SERVER_MODEL_HPP
#define SYNCVAULT_TESTING_SIMULATION_SERVER_MODEL_HPP

/**
 * @file
 * The server behind the simulated network: the `simulated_server` concept and `model_server`,
 * which applies each idempotency key's effect at most once.
 */

#include <syncvault/action.hpp>

#include <chrono>
#include <concepts>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace syncvault::testing {

/** What a simulated server did with one request. */
struct server_reply {
    http_response response;
    bool applied = false;  ///< this request applied a new effect (the checker counts these per key)
};

/**
 * A server model for the simulator: `s.handle(request, now)` returns a `server_reply`. It sits
 * behind the simulated network's fault layer, so it only sees requests that got through. A
 * model should apply each idempotency key's effect at most once (the checker verifies it).
 */
template <class S>
concept simulated_server = std::movable<S> &&
    requires(S& s, const http_request& r, std::chrono::system_clock::time_point now)
{
    {
        s.handle(r, now)
        } -> std::same_as<server_reply>;
};

/**
 * The default server model: it applies each idempotency key's effect at most once and records
 * effects in order; a repeated key gets the first reply again (as Stripe does). Paths containing
 * `/reject` answer 422 and those containing `/gone` 410 (permanent, nothing applied); requests
 * without a key (direct reads) apply nothing.
 */
class model_server {
public:
    /** One applied effect. */
    struct effect {
        std::string key;
        http_method method = http_method::post;
        std::string url, body;
        std::chrono::system_clock::time_point at{};
    };

    explicit model_server(std::string idempotency_header = "Idempotency-Key") : header_(std::move(idempotency_header))
    {}

    server_reply handle(const http_request& r, std::chrono::system_clock::time_point now)
    {
        if (r.url.find("/reject") != std::string::npos) return {{422, {}, "rejected"}, false};
        if (r.url.find("/gone") != std::string::npos) return {{410, {}, "gone"}, false};
        auto key = find_header(r.headers, header_);
        if (!key) return {{200, {}, r.method == http_method::head ? "" : "read"}, false};
        if (auto it = replies_.find(std::string(*key)); it != replies_.end()) {
            auto replay = it->second;
            replay.headers.push_back({"Idempotent-Replayed", "true"});
            return {std::move(replay), false};
        }
        http_response reply{
            r.method == http_method::post      ? 201
            : r.method == http_method::delete_ ? 204
                                               : 200,
            {},
            r.method == http_method::delete_ || r.method == http_method::head ? "" : "ok " + std::string(*key)};
        replies_.emplace(std::string(*key), reply);
        effects_.push_back({std::string(*key), r.method, r.url, r.body, now});
        return {std::move(reply), true};
    }

    /** Every effect applied, in order. */
    const std::vector<effect>& effects() const noexcept { return effects_; }

private:
    std::string header_;
    std::map<std::string, http_response> replies_;  // lookup only: never iterated
    std::vector<effect> effects_;
};

static_assert(simulated_server<model_server>);

}  // namespace syncvault::testing

#endif
