#ifndef SYNCVAULT_EXAMPLES_TODO_SERVER_HPP
#define SYNCVAULT_EXAMPLES_TODO_SERVER_HPP

// A small todo REST API on 127.0.0.1, served by a thread of this process (Boost.Beast), so the
// example needs nothing outside itself. It behaves like a careful real API:
//
//   GET    /todos        200 [{"id":1,"text":"...","done":false}, ...]
//   POST   /todos        {"text":"..."}         201 {"id":1,"text":"...","done":false}, the id
//                                               assigned by the server; 422 if the text is empty
//                                               or over 80 bytes
//   PATCH  /todos/<id>   {"text":"...","done":true} (either or both)   200; 404 if there is no
//                                               such item; 422 for a bad text
//   DELETE /todos/<id>                          204; 404 if there is no such item
//   POST   /login  {"user":"...","password":"..."}   200 {"access_token","refresh_token","expires_in"}
//   POST   /token  {"refresh_token":"..."}            200 a new access token; 401 if the session ended
//
// With `require_login(true)` (the demo), every /todos request needs `Authorization: Bearer
// <access token>`; a missing, unknown or expired one gets 401. Access tokens live 15 minutes by the server's clock, which the demo can
// move ahead (`advance_clock`) instead of waiting; `revoke_sessions()` ends every session (a
// password change elsewhere), so refresh tokens stop working until the user logs in again.
//
// Item ids are assigned by the server (1, 2, 3...), as most REST APIs do: an app that creates an
// item offline learns its id only when the POST is answered, so its later changes name it with
// `syncvault::response_ref` (SPEC 9.4). A mutating request with an `Idempotency-Key` takes
// effect at most once: a repeat gets the first answer back, as Stripe-style APIs do, so a
// re-sent POST creates nothing new and answers with the id it assigned the first time. `stop()` closes
// the port (connections are refused), `start()` opens the same port again, `busy(n)` answers the
// next n requests with 503 and `Retry-After: 1`.

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace todo_example {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;

class todo_server {
public:
    todo_server() { start(); }
    ~todo_server() { stop(); }
    todo_server(const todo_server&) = delete;
    todo_server& operator=(const todo_server&) = delete;

    void start()
    {
        if (io_) return;
        io_ = std::make_unique<asio::io_context>(1);
        tcp::acceptor acceptor(*io_, {asio::ip::address_v4::loopback(), port_});
        port_ = acceptor.local_endpoint().port();  // the first start picks a free port
        asio::co_spawn(*io_, listen(std::move(acceptor)), asio::detached);
        thread_ = std::thread([io = io_.get()] { io->run(); });
    }

    void stop()
    {
        if (!io_) return;
        io_->stop();
        thread_.join();
        io_.reset();  // closes the listening socket and every connection
    }

    bool running() const { return io_ != nullptr; }
    std::string base_url() const { return "http://127.0.0.1:" + std::to_string(port_); }

    void busy(int requests)
    {
        std::lock_guard lock(mutex_);
        busy_ = requests;
    }

    /** Every /todos request needs a bearer token from then on (the Todo demo); off: an open API. */
    void require_login(bool on)
    {
        std::lock_guard lock(mutex_);
        require_login_ = on;
    }

    /** Moves the server's clock ahead (tokens expire by it), as if that much time had passed. */
    void advance_clock(std::chrono::seconds by)
    {
        std::lock_guard lock(mutex_);
        skew_ += by;
    }

    /** Ends every session: access and refresh tokens are refused until the next login. */
    void revoke_sessions()
    {
        std::lock_guard lock(mutex_);
        access_.clear();
        refresh_.clear();
    }

    static constexpr std::chrono::seconds token_lifetime{15 * 60};

    /** What the server holds, as GET /todos would answer. */
    boost::json::array items() const
    {
        std::lock_guard lock(mutex_);
        boost::json::array out;
        for (const auto& [id, item] : items_) out.push_back(item);
        return out;
    }

    /** Item `id` as the server holds it; null if there is none. */
    boost::json::value item(std::int64_t id) const
    {
        std::lock_guard lock(mutex_);
        const auto it = items_.find(id);
        return it == items_.end() ? boost::json::value{} : boost::json::value(it->second);
    }

    /** Every change the server applied ("PATCH /todos/3 {...}"), in order; a replay of an
     *  idempotency key applies nothing and is not listed. */
    std::vector<std::string> applied() const
    {
        std::lock_guard lock(mutex_);
        return applied_;
    }

private:
    using request = http::request<http::string_body>;
    using response = http::response<http::string_body>;

    asio::awaitable<void> listen(tcp::acceptor acceptor)
    {
        for (;;) {
            auto [ec, socket] = co_await acceptor.async_accept(asio::as_tuple(asio::use_awaitable));
            if (ec == asio::error::operation_aborted) co_return;
            if (!ec) asio::co_spawn(acceptor.get_executor(), serve(std::move(socket)), asio::detached);
        }
    }

    asio::awaitable<void> serve(tcp::socket socket)
    {
        boost::beast::flat_buffer buffer;
        for (;;) {
            request req;
            auto [ec, n] = co_await http::async_read(socket, buffer, req, asio::as_tuple(asio::use_awaitable));
            if (ec) co_return;
            response res = handle(req);
            res.keep_alive(req.keep_alive());
            res.prepare_payload();
            auto [wec, m] = co_await http::async_write(socket, res, asio::as_tuple(asio::use_awaitable));
            if (wec || !req.keep_alive()) co_return;
        }
    }

    response handle(const request& req)
    {
        std::lock_guard lock(mutex_);
        if (busy_ > 0) {
            --busy_;
            auto res = reply(http::status::service_unavailable, error("busy, try again"));
            res.set(http::field::retry_after, "1");
            return res;
        }
        // Credentials first: a refused request is not an answer a key remembers.
        const std::string target(req.target());
        if (target == "/login" || target == "/token") return authenticate(req, target == "/login");
        const std::string bearer(req[http::field::authorization]);
        const auto token = access_.find(bearer.starts_with("Bearer ") ? bearer.substr(7) : std::string{});
        if (require_login_ && (token == access_.end() || now() >= token->second)) {
            auto res = reply(http::status::unauthorized, error("access token missing or expired"));
            res.set(http::field::www_authenticate, "Bearer error=\"invalid_token\"");
            return res;
        }
        const bool mutating = req.method() != http::verb::get;
        const std::string key(req["Idempotency-Key"]);
        if (mutating && !key.empty()) {
            if (auto it = answered_.find(key); it != answered_.end()) return it->second;  // a replay
        }
        response res = apply(req);
        if (mutating && res.result_int() < 300) {
            std::string change = std::string(req.method_string()) + " " + std::string(req.target());
            if (!req.body().empty()) change += " " + req.body();
            applied_.push_back(std::move(change));
        }
        if (mutating && !key.empty()) answered_.emplace(key, res);
        return res;
    }

    // The API itself (mutex_ held).
    response apply(const request& req)
    {
        const std::string target(req.target());
        if (target == "/todos" && req.method() == http::verb::get) {
            boost::json::array out;
            for (const auto& [id, item] : items_) out.push_back(item);
            return reply(http::status::ok, boost::json::serialize(out));
        }
        boost::system::error_code ec;
        const auto body = req.body().empty() ? boost::json::value{} : boost::json::parse(req.body(), ec);
        if (ec) return reply(http::status::bad_request, error("not JSON"));
        if (target == "/todos" && req.method() == http::verb::post) {
            const auto* o = body.if_object();
            const auto* text = o ? o->if_contains("text") : nullptr;
            if (!text || !text->is_string()) return reply(http::status::bad_request, error("want a text"));
            if (!valid_text(*text)) return reply(http::status::unprocessable_entity, error("text must be 1 to 80 bytes"));
            const std::int64_t id = next_id_++;  // assigned here, never by the client
            boost::json::object item{{"id", id}, {"text", text->get_string()}, {"done", false}};
            items_[id] = item;
            return reply(http::status::created, boost::json::serialize(item));
        }
        const auto id = item_id(target);
        const auto it = id ? items_.find(*id) : items_.end();
        if (it == items_.end()) return reply(http::status::not_found, error("no such item"));
        if (req.method() == http::verb::patch) {
            const auto* o = body.if_object();
            if (!o) return reply(http::status::bad_request, error("want a JSON object"));
            const auto* text = o->if_contains("text");
            const auto* done = o->if_contains("done");
            if (text && !valid_text(*text))
                return reply(http::status::unprocessable_entity, error("text must be 1 to 80 bytes"));
            if (done && !done->is_bool()) return reply(http::status::bad_request, error("done must be a boolean"));
            if (text) it->second["text"] = text->get_string();
            if (done) it->second["done"] = done->get_bool();
            return reply(http::status::ok, boost::json::serialize(it->second));
        }
        if (req.method() == http::verb::delete_) {
            items_.erase(it);
            return reply(http::status::no_content, "");
        }
        return reply(http::status::method_not_allowed, "");
    }

    static bool valid_text(const boost::json::value& v)
    {
        return v.is_string() && !v.get_string().empty() && v.get_string().size() <= 80;
    }

    // "/todos/<digits>" -> the id; anything else (an unsubstituted placeholder...) names nothing.
    static std::optional<std::int64_t> item_id(std::string_view target)
    {
        constexpr std::string_view prefix = "/todos/";
        if (!target.starts_with(prefix) || target.size() == prefix.size() || target.size() > prefix.size() + 18)
            return std::nullopt;
        std::int64_t id = 0;
        for (char c : target.substr(prefix.size())) {
            if (c < '0' || c > '9') return std::nullopt;
            id = id * 10 + (c - '0');
        }
        return id;
    }

    std::chrono::steady_clock::time_point now() const { return std::chrono::steady_clock::now() + skew_; }

    // POST /login (a password) or POST /token (a refresh token): a new access token.
    response authenticate(const request& req, bool login)
    {
        boost::system::error_code ec;
        const auto body = boost::json::parse(req.body(), ec);
        const auto* o = ec ? nullptr : body.if_object();
        if (req.method() != http::verb::post || !o) return reply(http::status::bad_request, error("want a JSON object"));
        std::string refresh;
        if (login) {
            const auto* password = o->if_contains("password");
            if (!password || !password->is_string() || password->get_string() != "demo")
                return reply(http::status::unauthorized, error("wrong user or password"));
            refresh = new_token("r");
            refresh_.emplace(refresh);
        } else {
            const auto* given = o->if_contains("refresh_token");
            if (!given || !given->is_string() || !refresh_.contains(std::string(given->get_string())))
                return reply(http::status::unauthorized, error("session ended: log in again"));
            refresh = given->get_string();
        }
        const auto access = new_token("a");
        access_[access] = now() + token_lifetime;
        return reply(http::status::ok, boost::json::serialize(boost::json::object{
                                           {"access_token", access},
                                           {"refresh_token", refresh},
                                           {"expires_in", token_lifetime.count()}}));
    }

    std::string new_token(const char* kind) { return std::string(kind) + "-" + std::to_string(++tokens_issued_); }

    static std::string error(std::string_view message)
    {
        return boost::json::serialize(boost::json::object{{"error", message}});
    }

    static response reply(http::status status, std::string body)
    {
        response res{status, 11};
        res.set(http::field::content_type, "application/json");
        res.body() = std::move(body);
        return res;
    }

    std::unique_ptr<asio::io_context> io_;
    std::thread thread_;
    std::uint16_t port_ = 0;

    mutable std::mutex mutex_;
    std::map<std::int64_t, boost::json::object> items_;
    std::map<std::string, response> answered_;  // idempotency key -> first answer
    std::vector<std::string> applied_;          // changes applied, in order
    std::int64_t next_id_ = 1;
    int busy_ = 0;
    std::chrono::seconds skew_{0};
    std::map<std::string, std::chrono::steady_clock::time_point> access_;  // token -> expiry
    std::set<std::string> refresh_;
    int tokens_issued_ = 0;
    bool require_login_ = false;
};

} // namespace todo_example

#endif
