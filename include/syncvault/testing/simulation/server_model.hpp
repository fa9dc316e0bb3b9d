#ifndef SYNCVAULT_TESTING_SIMULATION_SERVER_MODEL_HPP
#define SYNCVAULT_TESTING_SIMULATION_SERVER_MODEL_HPP

/**
 * @file
 * The server behind the simulated network: the `simulated_server` concept and `model_server`,
 * which applies each idempotency key's effect at most once.
 */

#include <syncvault/action.hpp>
#include <syncvault/testing/simulation/object_model.hpp>

#include <chrono>
#include <concepts>
#include <cstdint>
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
 * without a key (direct reads) apply nothing. With `expire_credentials()` every mutating request
 * answers 401 until `log_in()`; `hold_in_progress` makes repeats of a key answer 409 for a while.
 * Each applied request changes its `objects()` (object_model.hpp); a POST answers
 * `{"id": ...}`, an id the server assigns when it creates in a collection (SPEC 9.4's
 * `response_ref` reads it).
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
        const bool mutating = r.method != http_method::get && r.method != http_method::head;
        if (expired_ && mutating) return {{401, {{"WWW-Authenticate", "Bearer"}}, "token expired"}, false};
        if (r.url.find("/reject") != std::string::npos) return {{422, {}, "rejected"}, false};
        if (r.url.find("/gone") != std::string::npos) return {{410, {}, "gone"}, false};
        auto key = find_header(r.headers, header_);
        if (!key) return {{200, {}, r.method == http_method::head ? "" : "read"}, false};
        if (auto p = processing_.find(std::string(*key)); p != processing_.end()) {
            if (now < p->second) return {{409, {}, "request with this key is still being processed"}, false};
            processing_.erase(p);
        }
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
        if (r.method == http_method::post) {
            const auto path = object_path(r.url);
            std::string id;
            if (creates_in_place(path))
                id = path.substr(path.rfind('/') + 1);
            else
                id = "s" + std::to_string(++next_id_);
            apply_request(objects_, r.method, r.url, r.body, id);
            reply.headers.push_back({"Content-Type", "application/json"});
            reply.body = boost::json::serialize(boost::json::object{{"id", id}, {"key", *key}});
        } else {
            apply_request(objects_, r.method, r.url, r.body);
        }
        replies_.emplace(std::string(*key), reply);
        effects_.push_back({std::string(*key), r.method, r.url, r.body, now});
        return {std::move(reply), true};
    }

    /**
     * SPEC 9.3 "in progress": the request with `key` was applied but its response never reached
     * the client (lost, or the client crashed); as express-idempotency does while the first
     * request is still being processed, repeats of the key answer 409 until `until`, then
     * replay the stored response.
     */
    void hold_in_progress(const std::string& key, std::chrono::system_clock::time_point until)
    {
        processing_[key] = until;
    }
    /** The credentials expire: every mutating request gets 401 until `log_in()`. */
    void expire_credentials() noexcept { expired_ = true; }
    void log_in() noexcept { expired_ = false; }
    bool credentials_expired() const noexcept { return expired_; }

    /** Every effect applied, in order. */
    const std::vector<effect>& effects() const noexcept { return effects_; }
    /** The objects as the applied requests left them. */
    const object_map& objects() const noexcept { return objects_; }

private:
    std::string header_;
    std::map<std::string, http_response> replies_;  // lookup only: never iterated
    std::vector<effect> effects_;
    std::map<std::string, std::chrono::system_clock::time_point> processing_;  // lookup only
    bool expired_ = false;
    object_map objects_;
    std::uint64_t next_id_ = 0;
};

static_assert(simulated_server<model_server>);

}  // namespace syncvault::testing

#endif
