#ifndef SYNCVAULT_TESTS_SUPPORT_TEST_SERVER_HPP
#define SYNCVAULT_TESTS_SUPPORT_TEST_SERVER_HPP

/**
 * @file
 * A real HTTP(S) server on 127.0.0.1 for integration tests, examples and benchmarks
 * (Boost.Beast, one thread, C++20 coroutines). It behaves like an API that honours idempotency
 * keys, and can be scripted to misbehave.
 *
 * - Every request is recorded (method, target, headers, body).
 * - A mutating request (POST, PUT, PATCH, DELETE) applies an "effect", logged in order. With an
 *   `Idempotency-Key` the effect is applied at most once: a repeat gets the stored response
 *   (plus `Idempotent-Replayed: true`), as real servers do.
 * - The normal answer is 200 with the request body echoed, `X-Method` and, for an effect,
 *   `X-Effect: <n>` (its position in the effect log, from 1). A GET echoes its target.
 * - Scripted steps, consumed one per request in arrival order: `answer` (normal), `respond` (any status, no
 *   effect), `retry_after`, `slow` (effect at once, answer after a delay), `stall` (never
 *   answer), `drop_after_effect` (effect, then close without answering). `stop()` makes the port
 *   refuse connections; `start()` opens the same port again.
 * - `options::assign_ids_from`: a POST whose body is a JSON object is answered 201 with that object
 *   plus `"id": <n>`, n counting up from the option's value, as an API that assigns the ids of
 *   what it creates (a repeat of the key gets the same id back).
 * - `set_latency(d)` delays every answer by `d` more (a server that takes time to work, for
 *   benchmarks of concurrent transfers); connections are served concurrently meanwhile.
 *
 * @code
 * test_support::test_server server;                 // listening on an ephemeral port
 * server.script(test_support::step::retry_after(429, "1"));
 * cfg.base_url = server.base_url();                  // "http://127.0.0.1:<port>"
 * ...
 * CHECK(server.effects("key-1") == 1);
 * @endcode
 */

#include <syncvault/action.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <boost/json.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <ctime>
#include <deque>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

namespace syncvault::test_support {

/** One request as the server received it. */
struct recorded_request {
    std::string method, target;
    std::vector<header> headers;
    std::string body;
    std::chrono::steady_clock::time_point received_at;

    /** The first header named `name` (case-insensitive), if any. */
    std::optional<std::string> header_value(std::string_view name) const
    {
        auto v = find_header(headers, name);
        return v ? std::optional<std::string>(*v) : std::nullopt;
    }
};

/** One applied effect, in the order the server applied them. */
struct effect {
    std::string idempotency_key, method, target, body;
};

/** What the server does with one request; see the factory functions. */
struct step {
    enum class kind { answer, respond, slow, stall, drop_after_effect };
    kind what = kind::answer;
    int status = 200;
    std::vector<header> headers;
    std::string body;
    std::chrono::milliseconds delay{0};

    /** The normal answer (what the server does when nothing is scripted). */
    static step answer() { return {}; }
    /** Answers `status` with `body` and `headers`; applies no effect (a 5xx or 4xx didn't). */
    static step respond(int status, std::string body = {}, std::vector<header> headers = {})
    {
        return {kind::respond, status, std::move(headers), std::move(body), {}};
    }
    /** Answers `status` (429 or 503) with `Retry-After: value` (seconds or an HTTP date). */
    static step retry_after(int status, std::string value)
    {
        return respond(status, "slow down", {{"Retry-After", std::move(value)}});
    }
    /** Applies the effect at once, and answers normally after `delay`. */
    static step slow(std::chrono::milliseconds delay) { return {kind::slow, 200, {}, {}, delay}; }
    /** Reads the request and never answers (until `stop()`); no effect. */
    static step stall() { return {kind::stall, 0, {}, {}, {}}; }
    /** Applies the effect, then closes the connection without answering: a lost response. */
    static step drop_after_effect() { return {kind::drop_after_effect, 0, {}, {}, {}}; }
};

/** A certificate and its private key, PEM files. */
struct tls_files {
    std::filesystem::path cert, key;
};

/**
 * Makes a self-signed certificate for 127.0.0.1 and localhost in `dir` with the `openssl` CLI.
 * The certificate is its own CA: give it as `vault_config::tls_ca_file` to trust it.
 */
inline tls_files make_self_signed_cert(const std::filesystem::path& dir)
{
    std::filesystem::create_directories(dir);
    tls_files f{dir / "cert.pem", dir / "key.pem"};
    const std::string cmd =
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2"
        " -subj /CN=localhost -addext subjectAltName=IP:127.0.0.1,DNS:localhost"
        " -keyout '" + f.key.string() + "' -out '" + f.cert.string() + "' >/dev/null 2>&1";
    if (std::system(cmd.c_str()) != 0 || !std::filesystem::exists(f.cert))
        throw std::runtime_error("openssl could not make a test certificate (is the CLI installed?)");
    return f;
}

/** `t` as an HTTP date (IMF-fixdate), for `Retry-After`. */
inline std::string http_date(std::chrono::system_clock::time_point t)
{
    const std::time_t secs = std::chrono::system_clock::to_time_t(t);
    std::tm tm{};
    gmtime_r(&secs, &tm);
    char out[64];
    const auto n = std::strftime(out, sizeof out, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    return {out, n};
}

/** The server; see the file comment. Starts in its constructor, stops in its destructor. */
class test_server {
public:
    struct options {
        std::optional<tls_files> tls;  ///< serve HTTPS with this certificate
        std::string idempotency_header = "Idempotency-Key";
        /// As express-idempotency and Stripe do: a repeat of a key whose first request is still
        /// being processed (a `slow` step) gets 409 "request in progress"; its response is
        /// stored only once the first request is answered.
        bool conflict_while_in_progress = false;
        /// Every request needs `Authorization: Bearer <t>` with a token from `issue_token` that
        /// has not expired; else 401.
        bool require_token = false;
        /// POST with a JSON object body: 201, the object with `"id"` set to the next id from
        /// this one (see the file comment). Empty: every body is echoed.
        std::optional<std::int64_t> assign_ids_from{};
    };

    test_server() : test_server(options{}) {}
    explicit test_server(options o) : opts_(std::move(o))
    {
        if (opts_.tls) {
            tls_ = std::make_unique<boost::asio::ssl::context>(boost::asio::ssl::context::tls_server);
            tls_->use_certificate_chain_file(opts_.tls->cert.string());
            tls_->use_private_key_file(opts_.tls->key.string(), boost::asio::ssl::context::pem);
        }
        start();
    }
    ~test_server() { stop(); }
    test_server(const test_server&) = delete;
    test_server& operator=(const test_server&) = delete;

    /** Listens (again) on the same port; the first start picks an ephemeral one. */
    void start()
    {
        namespace asio = boost::asio;
        using asio::ip::tcp;
        if (io_) return;
        io_ = std::make_unique<asio::io_context>(1);
        tcp::acceptor acceptor(*io_, {asio::ip::address_v4::loopback(), port_});  // SO_REUSEADDR
        port_ = acceptor.local_endpoint().port();
        asio::co_spawn(*io_, listen(std::move(acceptor)), asio::detached);
        thread_ = std::thread([io = io_.get()] { io->run(); });
    }

    /** Closes the port (connections are refused) and every open connection, at once. */
    void stop()
    {
        if (!io_) return;
        io_->stop();
        thread_.join();
        io_.reset();  // destroys every pending coroutine with its socket
    }

    bool running() const { return io_ != nullptr; }
    std::uint16_t port() const { return port_; }
    /** "http://127.0.0.1:<port>" or "https://..." */
    std::string base_url() const
    {
        return std::string(opts_.tls ? "https" : "http") + "://127.0.0.1:" + std::to_string(port_);
    }

    /** Delays every answer by `d` (0: none) from the next request on; any thread. */
    void set_latency(std::chrono::milliseconds d) { latency_ms_.store(d.count()); }

    /** A bearer token valid for `lifetime` (`require_token`), as an auth server would issue. */
    std::string issue_token(std::chrono::milliseconds lifetime)
    {
        std::lock_guard lock(mutex_);
        auto t = "token-" + std::to_string(++tokens_issued_);
        tokens_[t] = std::chrono::steady_clock::now() + lifetime;
        return t;
    }
    /** Every token issued so far expires now. */
    void expire_tokens()
    {
        std::lock_guard lock(mutex_);
        tokens_.clear();
    }

    /** Queues `s` for the next `times` requests (after the steps already queued). */
    void script(step s, int times = 1)
    {
        std::lock_guard lock(mutex_);
        for (int i = 0; i < times; ++i) script_.push_back(s);
    }
    void clear_script()
    {
        std::lock_guard lock(mutex_);
        script_.clear();
    }

    std::vector<recorded_request> requests() const
    {
        std::lock_guard lock(mutex_);
        return requests_;
    }
    std::size_t request_count() const
    {
        std::lock_guard lock(mutex_);
        return requests_.size();
    }
    /** Requests received that carried `key`. */
    std::size_t deliveries(std::string_view key) const
    {
        std::lock_guard lock(mutex_);
        std::size_t n = 0;
        for (const auto& r : requests_)
            if (r.header_value(opts_.idempotency_header) == key) ++n;
        return n;
    }
    /** Effects applied with `key`: 0 or 1 for a server that honours keys. */
    std::size_t effects(std::string_view key) const
    {
        std::lock_guard lock(mutex_);
        std::size_t n = 0;
        for (const auto& e : effects_)
            if (e.idempotency_key == key) ++n;
        return n;
    }
    std::vector<effect> effect_log() const
    {
        std::lock_guard lock(mutex_);
        return effects_;
    }
    std::size_t effect_count() const
    {
        std::lock_guard lock(mutex_);
        return effects_.size();
    }
    /** Connections accepted since construction (keep-alive reuses one). */
    std::size_t connection_count() const
    {
        std::lock_guard lock(mutex_);
        return connections_;
    }
    /** Forgets requests, effects, stored responses and counts (not the script). */
    void reset_records()
    {
        std::lock_guard lock(mutex_);
        requests_.clear();
        effects_.clear();
        stored_.clear();
        connections_ = 0;
    }

    /** Waits until `n` requests have arrived; false after `timeout`. */
    bool wait_for_requests(std::size_t n, std::chrono::milliseconds timeout) const
    {
        std::unique_lock lock(mutex_);
        return changed_.wait_for(lock, timeout, [&] { return requests_.size() >= n; });
    }
    /** Waits until `n` connections have been accepted; false after `timeout`. */
    bool wait_for_connections(std::size_t n, std::chrono::milliseconds timeout) const
    {
        std::unique_lock lock(mutex_);
        return changed_.wait_for(lock, timeout, [&] { return connections_ >= n; });
    }
    /** Waits until `n` effects have been applied; false after `timeout`. */
    bool wait_for_effects(std::size_t n, std::chrono::milliseconds timeout) const
    {
        std::unique_lock lock(mutex_);
        return changed_.wait_for(lock, timeout, [&] { return effects_.size() >= n; });
    }

private:
    using tcp = boost::asio::ip::tcp;
    using response = boost::beast::http::response<boost::beast::http::string_body>;

    boost::asio::awaitable<void> listen(tcp::acceptor acceptor)
    {
        namespace asio = boost::asio;
        for (;;) {
            auto [ec, socket] = co_await acceptor.async_accept(asio::as_tuple(asio::use_awaitable));
            if (ec == asio::error::operation_aborted) co_return;
            if (ec) continue;
            {
                std::lock_guard lock(mutex_);
                ++connections_;
                changed_.notify_all();
            }
            socket.set_option(tcp::no_delay(true));
            if (tls_)
                asio::co_spawn(acceptor.get_executor(), serve_tls(std::move(socket)), asio::detached);
            else
                asio::co_spawn(acceptor.get_executor(), serve(std::move(socket)), asio::detached);
        }
    }

    boost::asio::awaitable<void> serve_tls(tcp::socket socket)
    {
        namespace asio = boost::asio;
        boost::beast::ssl_stream<tcp::socket> stream(std::move(socket), *tls_);
        auto [ec] = co_await stream.async_handshake(asio::ssl::stream_base::server,
                                                    asio::as_tuple(asio::use_awaitable));
        if (ec) co_return;  // the client refused our certificate
        co_await serve(std::move(stream));
    }

    template <class Stream>
    boost::asio::awaitable<void> serve(Stream stream)
    {
        namespace asio = boost::asio;
        namespace http = boost::beast::http;
        boost::beast::flat_buffer buffer;
        for (;;) {
            http::request_parser<http::string_body> parser;
            parser.body_limit(64u << 20);
            auto [ec, n] = co_await http::async_read(stream, buffer, parser, asio::as_tuple(asio::use_awaitable));
            if (ec) co_return;
            const auto& req = parser.get();
            step s = receive(req);
            response res;
            if (!authorized(req)) s = step{step::kind::respond, 401, {{"WWW-Authenticate", "Bearer"}}, "token expired", {}};
            else if (in_progress(req)) s = step{step::kind::respond, 409, {}, "request in progress", {}};
            switch (s.what) {
            case step::kind::stall: {
                asio::steady_timer forever(stream.get_executor(), asio::steady_timer::time_point::max());
                co_await forever.async_wait(asio::as_tuple(asio::use_awaitable));
                co_return;
            }
            case step::kind::drop_after_effect: apply(req); co_return;  // the socket closes here
            case step::kind::slow: {
                const auto key = std::string(req[opts_.idempotency_header]);
                res = apply(req, !opts_.conflict_while_in_progress);
                if (opts_.conflict_while_in_progress && !key.empty()) {
                    std::lock_guard lock(mutex_);
                    processing_.insert(key);
                }
                asio::steady_timer timer(stream.get_executor(), s.delay);
                co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
                if (opts_.conflict_while_in_progress && !key.empty()) {  // done: repeats now replay
                    std::lock_guard lock(mutex_);
                    processing_.erase(key);
                    stored_.emplace(key, res);
                }
                break;
            }
            case step::kind::answer: res = apply(req); break;
            case step::kind::respond: res = make_response(s.status, s.headers, s.body); break;
            }
            if (const auto latency = latency_ms_.load(); latency > 0) {
                asio::steady_timer timer(stream.get_executor(), std::chrono::milliseconds(latency));
                co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
            }
            res.keep_alive(req.keep_alive());
            if (req.method() == http::verb::head) res.body().clear();
            res.prepare_payload();
            auto [wec, written] = co_await http::async_write(stream, res, asio::as_tuple(asio::use_awaitable));
            if (wec || !req.keep_alive()) co_return;
        }
    }

    // Records the request and takes the next scripted step (the normal answer when none).
    template <class Request>
    step receive(const Request& req)
    {
        recorded_request r{std::string(req.method_string()), std::string(req.target()), {}, req.body(),
                           std::chrono::steady_clock::now()};
        for (const auto& f : req) r.headers.push_back({std::string(f.name_string()), std::string(f.value())});
        std::lock_guard lock(mutex_);
        requests_.push_back(std::move(r));
        changed_.notify_all();
        if (script_.empty()) return step{};
        step s = std::move(script_.front());
        script_.pop_front();
        return s;
    }

    template <class Request>
    bool authorized(const Request& req)
    {
        if (!opts_.require_token) return true;
        const std::string_view auth = req[boost::beast::http::field::authorization];
        if (!auth.starts_with("Bearer ")) return false;
        std::lock_guard lock(mutex_);
        auto it = tokens_.find(std::string(auth.substr(7)));
        return it != tokens_.end() && it->second > std::chrono::steady_clock::now();
    }

    template <class Request>
    bool in_progress(const Request& req)
    {
        if (!opts_.conflict_while_in_progress) return false;
        std::lock_guard lock(mutex_);
        return processing_.contains(std::string(req[opts_.idempotency_header]));
    }

    // The normal answer, applying a mutating request's effect at most once per key.
    template <class Request>
    response apply(const Request& req, bool store = true)
    {
        namespace http = boost::beast::http;
        const auto key = std::string(req[opts_.idempotency_header]);
        const auto m = req.method();
        const bool mutating = m == http::verb::post || m == http::verb::put ||
                              m == http::verb::patch || m == http::verb::delete_;
        std::lock_guard lock(mutex_);
        if (mutating && !key.empty()) {
            if (auto it = stored_.find(key); it != stored_.end()) {
                auto res = it->second;
                res.set("Idempotent-Replayed", "true");
                return res;
            }
        }
        std::vector<header> headers{{"X-Method", std::string(req.method_string())}};
        if (auto ct = req[http::field::content_type]; !ct.empty()) headers.push_back({"Content-Type", std::string(ct)});
        if (mutating) {
            effects_.push_back({key, std::string(req.method_string()), std::string(req.target()), req.body()});
            headers.push_back({"X-Effect", std::to_string(effects_.size())});
            changed_.notify_all();
        }
        auto res = make_response(200, headers, m == http::verb::get ? std::string(req.target()) : req.body());
        if (m == http::verb::post && opts_.assign_ids_from) {
            boost::system::error_code ec;
            auto body = boost::json::parse(req.body(), ec);
            if (!ec && body.is_object()) {
                body.get_object()["id"] = *opts_.assign_ids_from + std::int64_t(assigned_++);
                res.result(boost::beast::http::status::created);
                res.body() = boost::json::serialize(body);
            }
        }
        if (mutating && !key.empty() && store) stored_.emplace(key, res);
        return res;
    }

    static response make_response(int status, const std::vector<header>& headers, const std::string& body)
    {
        response res{static_cast<boost::beast::http::status>(status), 11};
        for (const auto& h : headers) res.insert(h.name, h.value);
        res.body() = body;
        return res;
    }

    options opts_;
    std::unique_ptr<boost::asio::ssl::context> tls_;
    std::unique_ptr<boost::asio::io_context> io_;
    std::thread thread_;
    std::uint16_t port_ = 0;

    mutable std::mutex mutex_;
    mutable std::condition_variable changed_;
    std::deque<step> script_;
    std::vector<recorded_request> requests_;
    std::vector<effect> effects_;
    std::map<std::string, response, std::less<>> stored_;
    std::size_t connections_ = 0;
    std::set<std::string> processing_;  // keys whose first request is still being processed
    std::map<std::string, std::chrono::steady_clock::time_point> tokens_;  // token -> expiry
    std::size_t tokens_issued_ = 0;
    std::size_t assigned_ = 0;  // ids given by assign_ids_from
    std::atomic<std::chrono::milliseconds::rep> latency_ms_{0};
};

} // namespace syncvault::test_support

#endif
