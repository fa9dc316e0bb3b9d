// curl_transport and polling_connectivity against a real loopback server (tests/support).
#include <syncvault/connectivity/polling_connectivity.hpp>
#include <syncvault/retry/jittered_backoff.hpp>
#include <syncvault/testing/fake_transport.hpp>
#include <syncvault/transport/curl_transport.hpp>

#include "support/test_server.hpp"

#include <boost/asio/write.hpp>

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <future>
#include <limits>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using syncvault::errc;
using syncvault::http_method;
using syncvault::http_request;
using syncvault::test_support::step;
using syncvault::test_support::test_server;

namespace {

using steady = std::chrono::steady_clock;

syncvault::vault_config config_for(const test_server& server)
{
    syncvault::vault_config cfg;
    cfg.base_url = server.base_url();
    cfg.connect_timeout = 2s;
    cfg.receive_timeout = 5s;
    return cfg;
}

http_request request(http_method m, const test_server& server, std::string target, std::string body = {})
{
    return {m, server.base_url() + target, {}, std::move(body)};
}

std::filesystem::path temp_dir(const std::string& name)
{
    auto dir = std::filesystem::temp_directory_path() /
               ("syncvault-" + name + "-" + std::to_string(steady::now().time_since_epoch().count()));
    std::filesystem::create_directories(dir);
    return dir;
}

} // namespace

TEST_CASE("curl_transport sends every method and returns status, headers and body",
          "[integration][curl]")
{
    test_server server;
    syncvault::curl_transport t{config_for(server)};

    SECTION("GET")
    {
        auto r = t.send(request(http_method::get, server, "/things?id=7"));
        REQUIRE(r.has_value());
        CHECK(r->status == 200);
        CHECK(r->body == "/things?id=7");
        CHECK(syncvault::find_header(r->headers, "x-method") == "GET");
        CHECK(server.requests().at(0).method == "GET");
    }
    SECTION("HEAD")
    {
        auto r = t.send(request(http_method::head, server, "/things"));
        REQUIRE(r.has_value());
        CHECK(r->status == 200);
        CHECK(r->body.empty());
        CHECK(syncvault::find_header(r->headers, "X-Method") == "HEAD");
    }
    SECTION("POST, PUT, PATCH and DELETE with a body and headers")
    {
        for (auto m : {http_method::post, http_method::put, http_method::patch, http_method::delete_}) {
            auto req = request(m, server, "/jobs/1", R"({"state":"DONE"})");
            req.headers = {{"Content-Type", "application/json"}, {"Idempotency-Key", "k-" + std::string(to_string(m))},
                           {"X-Empty", ""}};
            auto r = t.send(req);
            REQUIRE(r.has_value());
            CHECK(r->status == 200);
            CHECK(r->body == R"({"state":"DONE"})");
            CHECK(syncvault::find_header(r->headers, "X-Method") == to_string(m));
            const auto seen = server.requests().back();
            CHECK(seen.method == to_string(m));
            CHECK(seen.target == "/jobs/1");
            CHECK(seen.body == R"({"state":"DONE"})");
            CHECK(seen.header_value("content-type") == "application/json");
            CHECK(seen.header_value("X-Empty") == "");
            CHECK_FALSE(seen.header_value("Expect"));
        }
        CHECK(server.effect_count() == 4);
    }
    SECTION("DELETE without a body, POST without a content type")
    {
        REQUIRE(t.send(request(http_method::delete_, server, "/jobs/1")).has_value());
        CHECK(server.requests().back().method == "DELETE");
        CHECK(server.requests().back().body.empty());
        REQUIRE(t.send(request(http_method::post, server, "/raw", "bytes")).has_value());
        // libcurl's made-up form content type is not sent.
        CHECK_FALSE(server.requests().back().header_value("Content-Type"));
    }
    SECTION("a binary body survives intact")
    {
        std::string bytes;
        for (int i = 0; i < 256; ++i) bytes += static_cast<char>(i);
        auto r = t.send(request(http_method::put, server, "/blob", bytes));
        REQUIRE(r.has_value());
        CHECK(r->body == bytes);
    }
}

TEST_CASE("curl_transport reuses its connection (keep-alive)", "[integration][curl]")
{
    test_server server;
    syncvault::curl_transport t{config_for(server)};
    for (int i = 0; i < 5; ++i) REQUIRE(t.send(request(http_method::post, server, "/a", "x")).has_value());
    CHECK(server.connection_count() == 1);

    SECTION("and survives being moved")
    {
        syncvault::curl_transport moved = std::move(t);
        REQUIRE(moved.send(request(http_method::get, server, "/b")).has_value());
        CHECK(server.connection_count() == 1);
    }
}

namespace {

/** Answers one connection with `canned` bytes, whatever the request (for responses that the
 *  Beast server cannot send: interim 1xx, folded header lines). */
struct canned_server {
    boost::asio::io_context io;
    boost::asio::ip::tcp::acceptor acceptor{io, {boost::asio::ip::address_v4::loopback(), 0}};
    std::thread thread;

    explicit canned_server(std::string canned)
    {
        thread = std::thread([this, canned = std::move(canned)] {
            boost::system::error_code ec;
            auto socket = acceptor.accept(ec);
            if (ec) return;
            std::string request;
            char buf[4096];
            while (request.find("\r\n\r\n") == std::string::npos) {
                const auto n = socket.read_some(boost::asio::buffer(buf), ec);
                if (ec) return;
                request.append(buf, n);
            }
            boost::asio::write(socket, boost::asio::buffer(canned), ec);
            socket.shutdown(boost::asio::ip::tcp::socket::shutdown_both, ec);
        });
    }
    ~canned_server() { thread.join(); }
    std::string url() const { return "http://127.0.0.1:" + std::to_string(acceptor.local_endpoint().port()) + "/x"; }
};

} // namespace

TEST_CASE("curl_transport returns the final response's headers only, unfolded", "[integration][curl][headers]")
{
    canned_server server("HTTP/1.1 103 Early Hints\r\nLink: </style.css>\r\nX-Interim: 1\r\n\r\n"
                         "HTTP/1.1 503 Service Unavailable\r\nRetry-After:   120  \r\nX-Folded: first\r\n"
                         "   second\r\nContent-Length: 4\r\nConnection: close\r\n\r\ndown");
    syncvault::vault_config cfg;
    cfg.connect_timeout = 2s;
    cfg.receive_timeout = 5s;
    syncvault::curl_transport t{cfg};
    auto r = t.send({http_method::get, server.url(), {}, {}});
    REQUIRE(r.has_value());
    CHECK(r->status == 503);
    CHECK(r->body == "down");
    CHECK(syncvault::find_header(r->headers, "Retry-After") == "120");
    CHECK(syncvault::find_header(r->headers, "X-Folded") == "first second");
    CHECK_FALSE(syncvault::find_header(r->headers, "Link"));
    CHECK_FALSE(syncvault::find_header(r->headers, "X-Interim"));
    CHECK(r->headers.size() == 4);  // Retry-After, X-Folded, Content-Length, Connection
}

TEST_CASE("curl_transport returns error statuses as responses", "[integration][curl]")
{
    test_server server;
    syncvault::curl_transport t{config_for(server)};

    SECTION("5xx")
    {
        server.script(step::respond(503, "down"));
        auto r = t.send(request(http_method::post, server, "/a", "x"));
        REQUIRE(r.has_value());
        CHECK(r->status == 503);
        CHECK(r->body == "down");
        CHECK(server.effect_count() == 0);
    }
    SECTION("429 with Retry-After in seconds and as an HTTP date")
    {
        const auto date = syncvault::test_support::http_date(std::chrono::system_clock::now() + 1h);
        server.script(step::retry_after(429, "7"));
        server.script(step::retry_after(503, date));
        auto first = t.send(request(http_method::post, server, "/a", "x"));
        REQUIRE(first.has_value());
        CHECK(first->status == 429);
        CHECK(syncvault::find_header(first->headers, "retry-after") == "7");
        auto second = t.send(request(http_method::post, server, "/a", "x"));
        REQUIRE(second.has_value());
        CHECK(second->status == 503);
        CHECK(syncvault::find_header(second->headers, "Retry-After") == date);
    }
    SECTION("repeated header fields all arrive, in order; names as sent")
    {
        server.script(step::respond(200, "ok", {{"X-Dup", "a"}, {"Set-Cookie", "s=1"}, {"X-Dup", "b"}}));
        auto r = t.send(request(http_method::get, server, "/dup"));
        REQUIRE(r.has_value());
        std::vector<std::string> dups;
        for (const auto& h : r->headers)
            if (h.name == "X-Dup") dups.push_back(h.value);
        CHECK(dups == std::vector<std::string>{"a", "b"});
        CHECK(syncvault::find_header(r->headers, "set-cookie") == "s=1");
        for (const auto& h : r->headers) CHECK_FALSE(h.name.starts_with("HTTP/"));
    }
    SECTION("redirects are not followed")
    {
        server.script(step::respond(302, "", {{"Location", "/elsewhere"}}));
        auto r = t.send(request(http_method::post, server, "/a", "x"));
        REQUIRE(r.has_value());
        CHECK(r->status == 302);
        CHECK(syncvault::find_header(r->headers, "Location") == "/elsewhere");
        CHECK(server.request_count() == 1);
    }
}

TEST_CASE("curl_transport maps network failures to errc", "[integration][curl]")
{
    test_server server;
    auto cfg = config_for(server);

    SECTION("refused: connection_failed")
    {
        syncvault::curl_transport t{cfg};
        REQUIRE(t.send(request(http_method::get, server, "/")).has_value());
        server.stop();
        auto r = t.send(request(http_method::get, server, "/"));
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error() == errc::connection_failed);
        CHECK_FALSE(t.last_error_message().empty());
        syncvault::send_details details;
        CHECK_FALSE(t.send(request(http_method::get, server, "/"), details).has_value());
        CHECK_THAT(details.error_message, Catch::Contains("connect", Catch::CaseSensitive::No));

        server.start();  // and back on the same port
        CHECK(t.send(request(http_method::get, server, "/")).has_value());
    }
    SECTION("silence longer than the receive timeout: timeout")
    {
        cfg.receive_timeout = 300ms;
        syncvault::curl_transport t{cfg};
        server.script(step::slow(5s));
        const auto start = steady::now();
        auto r = t.send(request(http_method::post, server, "/slow", "x"));
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error() == errc::timeout);
        CHECK(steady::now() - start < 3s);
        CHECK(server.effect_count() == 1);  // the server did apply it: only the answer was late
    }
    SECTION("a slow answer within the receive timeout is fine")
    {
        cfg.receive_timeout = 3s;
        syncvault::curl_transport t{cfg};
        server.script(step::slow(200ms));
        auto r = t.send(request(http_method::post, server, "/slow", "x"));
        REQUIRE(r.has_value());
        CHECK(r->status == 200);
    }
    SECTION("dropped connection: an error, and a re-send with the same key is applied once")
    {
        syncvault::curl_transport t{cfg};
        server.script(step::drop_after_effect());
        auto req = request(http_method::post, server, "/jobs", "x");
        req.headers = {{"Idempotency-Key", "drop-1"}};
        auto lost = t.send(req);
        REQUIRE_FALSE(lost.has_value());
        CHECK(lost.error() == errc::connection_failed);
        auto again = t.send(req);
        REQUIRE(again.has_value());
        CHECK(again->status == 200);
        CHECK(syncvault::find_header(again->headers, "Idempotent-Replayed") == "true");
        CHECK(server.deliveries("drop-1") == 2);
        CHECK(server.effects("drop-1") == 1);
    }
    SECTION("a response over the cap: response_too_large, and the transport still works")
    {
        cfg.max_response_bytes = 64 * 1024;
        syncvault::curl_transport t{cfg};
        server.script(step::respond(200, std::string(100 * 1024, 'x')));
        auto r = t.send(request(http_method::get, server, "/big"));
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error() == errc::response_too_large);
        auto ok = t.send(request(http_method::get, server, "/small"));
        REQUIRE(ok.has_value());
        CHECK(ok->body == "/small");
    }
    SECTION("a malformed URL: invalid_request")
    {
        syncvault::curl_transport t{cfg};
        auto r = t.send({http_method::get, "ftp://127.0.0.1/x", {}, {}});
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error() == errc::invalid_request);
    }
}

TEST_CASE("saturating chrono helpers clamp instead of overflowing", "[integration][timeouts]")
{
    using namespace std::chrono;
    using syncvault::detail::doubled_up_to;
    using syncvault::detail::saturating_add;
    using syncvault::detail::saturating_duration_cast;
    STATIC_REQUIRE(saturating_duration_cast<nanoseconds>(milliseconds::max()) == nanoseconds::max());
    STATIC_REQUIRE(saturating_duration_cast<nanoseconds>(milliseconds::min()) == nanoseconds::min());
    STATIC_REQUIRE(saturating_duration_cast<nanoseconds>(milliseconds(5)) == nanoseconds(5'000'000));
    STATIC_REQUIRE(saturating_duration_cast<duration<int, std::milli>>(seconds::max()) == duration<int, std::milli>::max());
    STATIC_REQUIRE(saturating_duration_cast<milliseconds>(nanoseconds(-7'900'000)) == milliseconds(-7));
    constexpr steady_clock::time_point t{nanoseconds(1000)};
    STATIC_REQUIRE(saturating_add(t, milliseconds::max()) == steady_clock::time_point::max());
    STATIC_REQUIRE(saturating_add(t, milliseconds(1)) == t + milliseconds(1));
    STATIC_REQUIRE(saturating_add(steady_clock::time_point{nanoseconds(-5)}, milliseconds::min()) ==
                   steady_clock::time_point::min());
    STATIC_REQUIRE(doubled_up_to(milliseconds::max() / 2 + milliseconds(1), milliseconds::max()) == milliseconds::max());
    STATIC_REQUIRE(doubled_up_to(milliseconds(100), milliseconds(350)) == milliseconds(200));
    STATIC_REQUIRE(doubled_up_to(milliseconds(200), milliseconds(350)) == milliseconds(350));
    CHECK(syncvault::detail::curl_timeout_ms(milliseconds::max()) == std::numeric_limits<int>::max());
    CHECK(syncvault::detail::curl_timeout_ms(0ms) == 0);
    CHECK(syncvault::detail::curl_timeout_ms(1500ms) == 1500);
}

TEST_CASE("curl_transport takes milliseconds::max() as no limit (defect 13)", "[integration][curl][timeouts]")
{
    test_server server;
    auto cfg = config_for(server);
    cfg.connect_timeout = std::chrono::milliseconds::max();
    cfg.receive_timeout = std::chrono::milliseconds::max();
    syncvault::curl_transport t{cfg};

    SECTION("a request succeeds")
    {
        auto r = t.send(request(http_method::post, server, "/jobs", "x"));
        REQUIRE(r.has_value());
        CHECK(r->status == 200);
        CHECK(r->body == "x");
    }
    SECTION("a slow answer within it succeeds")
    {
        server.script(step::slow(300ms));
        auto r = t.send(request(http_method::post, server, "/slow", "y"));
        REQUIRE(r.has_value());
        CHECK(r->status == 200);
        CHECK(r->body == "y");
    }
    SECTION("and cancel() still ends a stalled transfer")
    {
        server.script(step::stall());
        auto pending = std::async(std::launch::async, [&] { return t.send(request(http_method::post, server, "/hang", "x")); });
        REQUIRE(server.wait_for_requests(1, 10s));
        t.cancel();
        REQUIRE(pending.wait_for(5s) == std::future_status::ready);
        auto r = pending.get();
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error() == errc::cancelled);
    }
}

TEST_CASE("curl_transport::cancel aborts a hanging transfer promptly", "[integration][curl]")
{
    test_server server;
    auto cfg = config_for(server);
    cfg.receive_timeout = 60s;
    syncvault::curl_transport t{cfg};

    SECTION("from another thread while the server stalls")
    {
        server.script(step::stall());
        auto pending = std::async(std::launch::async, [&] { return t.send(request(http_method::post, server, "/hang", "x")); });
        REQUIRE(server.wait_for_requests(1, 10s));
        const auto start = steady::now();
        t.cancel();
        REQUIRE(pending.wait_for(5s) == std::future_status::ready);
        CHECK(steady::now() - start < 1s);
        auto r = pending.get();
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error() == errc::cancelled);

        // The flag was used up: the next request goes through.
        CHECK(t.send(request(http_method::get, server, "/after")).has_value());
    }
    SECTION("a cancel with nothing in flight does not affect the next send")
    {
        t.cancel();
        CHECK(t.send(request(http_method::get, server, "/x")).has_value());
        CHECK(server.request_count() == 1);
    }
}

// --- concurrent sends (SPEC 9.2); run under TSan too: [thread] --------------------------------

TEST_CASE("curl_transport sends from many threads at once", "[integration][curl][thread]")
{
    static_assert(syncvault::concurrent_transport<syncvault::curl_transport>);
    test_server server;
    syncvault::curl_transport t{config_for(server)};
    constexpr int threads = 8, per_thread = 25;

    std::atomic<int> ok{0};
    std::vector<std::string> failures[threads];
    std::vector<std::thread> workers;
    for (int w = 0; w < threads; ++w)
        workers.emplace_back([&, w] {
            for (int i = 0; i < per_thread; ++i) {
                const auto body = "w" + std::to_string(w) + "-" + std::to_string(i);
                auto r = t.send(request(http_method::post, server, "/jobs/" + body, body));
                if (r && r->status == 200 && r->body == body &&
                    syncvault::find_header(r->headers, "X-Method") == "POST")
                    ++ok;
                else
                    failures[w].push_back(body + ": " + (r ? std::to_string(r->status) : r.error().message()));
            }
        });
    for (auto& w : workers) w.join();
    for (const auto& f : failures) CHECK(f.empty());
    CHECK(ok == threads * per_thread);
    CHECK(server.request_count() == std::size_t(threads * per_thread));
    // One handle per concurrent transfer, each keeping its connection: never more than threads.
    CHECK(server.connection_count() <= std::size_t(threads));
    CHECK(server.connection_count() >= 1);

    SECTION("and one thread afterwards reuses a connection that is already open")
    {
        const auto before = server.connection_count();
        for (int i = 0; i < 5; ++i) REQUIRE(t.send(request(http_method::get, server, "/after")).has_value());
        CHECK(server.connection_count() == before);
    }
}

TEST_CASE("curl_transport's concurrent transfers overlap", "[integration][curl][thread]")
{
    test_server server;
    syncvault::curl_transport t{config_for(server)};
    constexpr int n = 8;
    server.script(step::slow(400ms), n);
    const auto start = steady::now();
    std::vector<std::future<syncvault::result<syncvault::http_response>>> sends;
    for (int i = 0; i < n; ++i)
        sends.push_back(std::async(std::launch::async, [&t, &server, i] {
            return t.send(request(http_method::post, server, "/slow", std::to_string(i)));
        }));
    for (int i = 0; i < n; ++i) {
        auto r = sends[std::size_t(i)].get();
        REQUIRE(r.has_value());
        CHECK(r->body == std::to_string(i));
    }
    CHECK(steady::now() - start < 2s);  // one at a time would take 3.2 s
}

TEST_CASE("curl_transport::cancel aborts every transfer in progress", "[integration][curl][thread]")
{
    test_server server;
    auto cfg = config_for(server);
    cfg.receive_timeout = 60s;
    syncvault::curl_transport t{cfg};
    constexpr int n = 8;
    server.script(step::stall(), n);
    std::vector<std::future<syncvault::result<syncvault::http_response>>> sends;
    for (int i = 0; i < n; ++i)
        sends.push_back(std::async(std::launch::async, [&t, &server] {
            return t.send(request(http_method::post, server, "/hang", "x"));
        }));
    REQUIRE(server.wait_for_requests(n, 10s));

    const auto start = steady::now();
    t.cancel();
    for (auto& f : sends) {
        REQUIRE(f.wait_for(5s) == std::future_status::ready);
        auto r = f.get();
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error() == errc::cancelled);
    }
    CHECK(steady::now() - start < 1s);
    CHECK(t.last_error_message() == "cancelled");

    // Nothing stays cancelled: the handles go back to the pool and work.
    for (int i = 0; i < n; ++i) CHECK(t.send(request(http_method::get, server, "/after")).has_value());
}

TEST_CASE("curl_transport shares TLS sessions between concurrent handles", "[integration][curl][tls][thread]")
{
    const auto dir = temp_dir("tls-threads");
    const auto files = syncvault::test_support::make_self_signed_cert(dir);
    {
        test_server server({files, "Idempotency-Key"});
        auto cfg = config_for(server);
        cfg.tls_ca_file = files.cert;
        syncvault::curl_transport t{cfg};
        REQUIRE(t.send(request(http_method::get, server, "/warm")).has_value());  // a session to share
        constexpr int threads = 4, per_thread = 10;
        std::atomic<int> ok{0};
        std::vector<std::thread> workers;
        for (int w = 0; w < threads; ++w)
            workers.emplace_back([&, w] {
                for (int i = 0; i < per_thread; ++i) {
                    const auto body = std::to_string(w * 100 + i);
                    auto r = t.send(request(http_method::put, server, "/s", body));
                    if (r && r->status == 200 && r->body == body) ++ok;
                }
            });
        for (auto& w : workers) w.join();
        CHECK(ok == threads * per_thread);
        CHECK(server.connection_count() <= std::size_t(threads));
    }
    std::filesystem::remove_all(dir);
}

TEST_CASE("testing::fake_transport takes calls from many threads", "[integration][fake][thread]")
{
    static_assert(syncvault::concurrent_transport<syncvault::testing::fake_transport>);
    syncvault::testing::fake_transport net;
    constexpr int threads = 8, per_thread = 50;
    for (int i = 0; i < threads * per_thread / 2; ++i) net.respond(201, {}, std::to_string(i));
    std::atomic<int> scripted{0}, fallback{0};
    std::vector<std::thread> workers;
    for (int w = 0; w < threads; ++w)
        workers.emplace_back([&, w] {
            for (int i = 0; i < per_thread; ++i) {
                if (i % 10 == 0) net.respond_by_default(200);  // writers race with senders
                (void)net.requests();
                (void)net.scripted();
                auto r = net.send({http_method::post, "http://h/" + std::to_string(w), {}, std::to_string(i)});
                if (r && r->status == 201) ++scripted;
                else if (r && r->status == 200) ++fallback;
            }
        });
    for (auto& w : workers) w.join();
    CHECK(scripted == threads * per_thread / 2);  // each scripted outcome taken exactly once
    CHECK(fallback == threads * per_thread / 2);
    CHECK(net.request_count() == std::size_t(threads * per_thread));
    CHECK(net.scripted() == 0);
    CHECK(net.max_concurrent_sends() >= 1);
}

TEST_CASE("curl_transport verifies TLS peers", "[integration][curl][tls]")
{
    const auto dir = temp_dir("tls");
    const auto files = syncvault::test_support::make_self_signed_cert(dir);
    test_server server({files, "Idempotency-Key"});
    auto cfg = config_for(server);
    REQUIRE(cfg.base_url.starts_with("https://"));

    SECTION("a self-signed certificate fails verification by default: tls_failed, with libcurl's words")
    {
        syncvault::curl_transport t{cfg};
        auto r = t.send(request(http_method::get, server, "/secure"));
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error() == errc::tls_failed);
        CHECK_THAT(t.last_error_message(), Catch::Contains("certificate", Catch::CaseSensitive::No));

        syncvault::send_details details;
        auto again = t.send(request(http_method::get, server, "/secure"), details);
        REQUIRE_FALSE(again.has_value());
        CHECK(again.error() == errc::tls_failed);
        CHECK_THAT(details.error_message, Catch::Contains("certificate", Catch::CaseSensitive::No));

        // still a network-class failure: the retry policy retries it
        CHECK(syncvault::classify_outcome(again) == syncvault::outcome_kind::retry);
    }
    SECTION("and is accepted once its CA is configured")
    {
        cfg.tls_ca_file = files.cert;
        syncvault::curl_transport t{cfg};
        syncvault::send_details details;
        auto r = t.send(request(http_method::post, server, "/secure", "x"), details);
        REQUIRE(r.has_value());
        CHECK(r->status == 200);
        CHECK(r->body == "x");
        CHECK(details.error_message.empty());
    }
    SECTION("or when verification is turned off")
    {
        cfg.tls_insecure_skip_verify = true;
        syncvault::curl_transport t{cfg};
        CHECK(t.send(request(http_method::get, server, "/secure")).has_value());
    }
    std::filesystem::remove_all(dir);
}

TEST_CASE("curl_transport rejects a bad configuration", "[integration][curl]")
{
    syncvault::vault_config cfg;
    cfg.tls_ca_file = "/nonexistent/ca.pem";
    CHECK_THROWS_WITH(syncvault::curl_transport{cfg}, Catch::Contains("tls_ca_file"));
    cfg = {};
    cfg.receive_timeout = -1ms;
    CHECK_THROWS_WITH(syncvault::curl_transport{cfg}, Catch::Contains("receive_timeout"));
}

// --- polling_connectivity ------------------------------------------------------------------

namespace {

syncvault::vault_config probe_config(const test_server& server)
{
    auto cfg = config_for(server);
    cfg.probe_interval = 100ms;
    cfg.probe_max_interval = 350ms;
    cfg.probe_timeout = 2s;
    return cfg;
}

const auto t0 = std::chrono::system_clock::time_point{} + std::chrono::hours(24 * 365 * 56);

} // namespace

TEST_CASE("polling_connectivity starts online and learns from reports", "[integration][connectivity]")
{
    test_server server;
    syncvault::polling_connectivity net{probe_config(server)};
    std::vector<bool> changes;
    net.set_change_handler([&](bool online) { changes.push_back(online); });

    CHECK(net.is_online());
    CHECK_FALSE(net.tick(t0));  // no probes while online
    net.report(true);
    CHECK(changes.empty());     // no change, no call
    net.report(false);
    CHECK_FALSE(net.is_online());
    net.report(false);
    net.report(true);
    CHECK(net.is_online());
    CHECK(changes == std::vector<bool>{false, true});
}

TEST_CASE("polling_connectivity probes while offline and comes back online", "[integration][connectivity]")
{
    test_server server;
    syncvault::polling_connectivity net{probe_config(server)};
    std::vector<bool> changes;
    net.set_change_handler([&](bool online) { changes.push_back(online); });

    net.report(false);
    const auto first = net.tick(t0);  // schedules, does not probe yet
    REQUIRE(first.has_value());
    CHECK(*first == t0 + 100ms);
    CHECK(net.tick(t0 + 50ms) == first);  // not due
    CHECK(server.connection_count() == 0);

    CHECK_FALSE(net.tick(t0 + 100ms));  // due: the probe connects
    CHECK(net.is_online());
    CHECK(server.wait_for_connections(1, 10s));  // the server accepts it on its own thread
    CHECK(changes == std::vector<bool>{false, true});
}

TEST_CASE("polling_connectivity backs off while the server refuses", "[integration][connectivity]")
{
    test_server server;
    syncvault::polling_connectivity net{probe_config(server)};
    server.stop();
    CHECK_FALSE(net.probe_now());

    net.report(false);
    auto now = t0;
    REQUIRE(net.tick(now) == now + 100ms);
    now += 100ms;
    CHECK(net.tick(now) == now + 200ms);  // probe refused: doubled
    now += 200ms;
    CHECK(net.tick(now) == now + 350ms);  // capped at probe_max_interval
    now += 350ms;
    CHECK(net.tick(now) == now + 350ms);
    CHECK_FALSE(net.is_online());

    server.start();
    now += 350ms;
    CHECK_FALSE(net.tick(now));
    CHECK(net.is_online());
    CHECK(net.current_interval() == 100ms);  // reset once online

    net.report(false);  // offline again: the schedule starts over from the base interval
    CHECK(net.tick(now) == now + 100ms);
}

TEST_CASE("polling_connectivity::cancel with no probe running changes nothing", "[integration][connectivity]")
{
    test_server server;
    syncvault::polling_connectivity net{probe_config(server)};
    net.report(false);
    REQUIRE(net.tick(t0));
    net.cancel();
    CHECK_FALSE(net.tick(t0 + 100ms));  // the probe runs and connects
    CHECK(net.is_online());
}

TEST_CASE("polling_connectivity's change handler is replaced safely", "[integration][connectivity]")
{
    test_server server;
    syncvault::polling_connectivity net{probe_config(server)};

    SECTION("a handler may replace itself")
    {
        int calls = 0;
        net.set_change_handler([&](bool) {
            ++calls;
            net.set_change_handler({});
        });
        net.report(false);
        net.report(true);
        CHECK(calls == 1);
    }
    SECTION("set_change_handler waits for a call running on another thread")
    {
        std::promise<void> entered, release;
        auto released = release.get_future().share();
        net.set_change_handler([&](bool) {
            entered.set_value();
            released.wait();
        });
        auto reporter = std::async(std::launch::async, [&] { net.report(false); });
        entered.get_future().wait();
        std::atomic<bool> replaced{false};
        auto replacer = std::async(std::launch::async, [&] {
            net.set_change_handler({});
            replaced = true;
        });
        CHECK(replacer.wait_for(100ms) == std::future_status::timeout);
        CHECK_FALSE(replaced);
        release.set_value();
        REQUIRE(replacer.wait_for(10s) == std::future_status::ready);
        CHECK(replaced);
        reporter.get();
    }
}

TEST_CASE("polling_connectivity takes milliseconds::max() as no limit (defect 13)", "[integration][connectivity][timeouts]")
{
    test_server server;
    auto cfg = probe_config(server);

    SECTION("a probe with an unbounded timeout connects")
    {
        cfg.probe_timeout = std::chrono::milliseconds::max();
        syncvault::polling_connectivity net{cfg};
        CHECK(net.probe_now());
        net.report(false);
        REQUIRE(net.tick(t0) == t0 + 100ms);
        CHECK_FALSE(net.tick(t0 + 100ms));  // due: connects, back online
        CHECK(net.is_online());
    }
    SECTION("an unbounded interval schedules the probe never, not in the past")
    {
        cfg.probe_interval = std::chrono::milliseconds::max();
        cfg.probe_max_interval = std::chrono::milliseconds::max();
        syncvault::polling_connectivity net{cfg};
        net.report(false);
        const auto next = net.tick(t0);
        REQUIRE(next.has_value());
        CHECK(*next > t0 + std::chrono::hours(24 * 365));
        CHECK(net.tick(t0 + 1h) == next);  // not due: no probe
        CHECK(server.connection_count() == 0);
        CHECK_FALSE(net.is_online());
    }
    SECTION("backing off towards an unbounded cap never wraps around")
    {
        cfg.probe_max_interval = std::chrono::milliseconds::max();
        syncvault::polling_connectivity net{cfg};
        server.stop();
        net.report(false);
        auto now = t0;
        auto next = net.tick(now);
        auto previous = 0ms;
        for (int i = 0; i < 70 && next; ++i) {  // 2^70 * 100 ms is far past milliseconds::max()
            now = *next;
            next = net.tick(now);
            REQUIRE(next.has_value());
            REQUIRE(*next >= now);
            REQUIRE(net.current_interval() >= previous);
            previous = net.current_interval();
            if (*next == std::chrono::system_clock::time_point::max()) break;
        }
        CHECK_FALSE(net.is_online());
    }
}

TEST_CASE("polling_connectivity rejects a bad base_url", "[integration][connectivity]")
{
    syncvault::vault_config cfg;
    for (const char* url : {"", "not a url", "ftp://example.com/", "http:///path"}) {
        cfg.base_url = url;
        CHECK_THROWS_WITH(syncvault::polling_connectivity{cfg}, Catch::Contains("base_url"));
    }
    cfg.base_url = "https://example.com/api";
    cfg.probe_interval = 0ms;
    CHECK_THROWS_WITH(syncvault::polling_connectivity{cfg}, Catch::Contains("probe_interval"));
}
