// Plugging in your own HTTP stack: a complete `syncvault::transport` over Boost.Beast (plain
// HTTP), used by a vault that posts to a loopback server this program starts.
//
// A transport is one member: `result<http_response> send(const http_request&)`. Any HTTP status
// is a response; an error means no usable answer and is retried by the vault. The vault never
// calls `send` from two threads at once, so the transport needs no locking.

#include "../todo/todo_server.hpp"  // the todo example's small REST API

#include <syncvault.hpp>

#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/url/parse.hpp>

#include <chrono>
#include <cstdio>

// ---- the transport ------------------------------------------------------------------------

class beast_transport {
public:
    explicit beast_transport(std::chrono::milliseconds timeout = std::chrono::seconds(10)) : timeout_(timeout) {}

    syncvault::result<syncvault::http_response> send(const syncvault::http_request& r)
    {
        namespace http = boost::beast::http;
        auto url = boost::urls::parse_uri(r.url);
        if (!url || url->scheme_id() != boost::urls::scheme::http) return syncvault::errc::invalid_request;
        http::request<http::string_body> req{verb(r.method), url->encoded_target(), 11};
        req.set(http::field::host, url->encoded_host_and_port());
        for (const auto& h : r.headers) req.insert(h.name, h.value);
        req.body() = r.body;
        req.prepare_payload();

        // One connection per request keeps this short (curl_transport reuses connections).
        // Async operations on a tcp_stream give the whole exchange one deadline.
        boost::asio::io_context io;
        boost::asio::ip::tcp::resolver resolver(io);
        boost::beast::tcp_stream stream(io);
        boost::beast::flat_buffer buffer;
        http::response<http::string_body> res;
        boost::system::error_code ec;
        stream.expires_after(timeout_);
        resolver.async_resolve(url->host(), url->has_port() ? url->port() : "80", [&](auto e, auto found) {
            if (e) { ec = e; return; }
            stream.async_connect(found, [&](auto e, auto) {
                if (e) { ec = e; return; }
                http::async_write(stream, req, [&](auto e, auto) {
                    if (e) { ec = e; return; }
                    http::async_read(stream, buffer, res, [&](auto e, auto) { ec = e; });
                });
            });
        });
        io.run();
        if (ec == boost::beast::error::timeout) return syncvault::errc::timeout;
        if (ec) return syncvault::errc::connection_failed;

        syncvault::http_response out{static_cast<int>(res.result_int()), {}, std::move(res.body())};
        for (const auto& field : res)
            out.headers.push_back({std::string(field.name_string()), std::string(field.value())});
        return out;
    }

private:
    static boost::beast::http::verb verb(syncvault::http_method m)
    {
        using boost::beast::http::verb;
        switch (m) {
        case syncvault::http_method::get: return verb::get;
        case syncvault::http_method::head: return verb::head;
        case syncvault::http_method::post: return verb::post;
        case syncvault::http_method::put: return verb::put;
        case syncvault::http_method::patch: return verb::patch;
        case syncvault::http_method::delete_: return verb::delete_;
        }
        return verb::get;
    }

    std::chrono::milliseconds timeout_;
};

static_assert(syncvault::transport<beast_transport>);

// ---- using it -------------------------------------------------------------------------------

int main()
{
    todo_example::todo_server server;
    syncvault::basic_vault<beast_transport, syncvault::memory_storage, syncvault::manual_connectivity,
                           syncvault::jittered_backoff, std::chrono::system_clock>
        v{{.base_url = server.base_url()}};

    auto sent = v.post("/todos", boost::json::object{{"id", 1}, {"text", "sent over Beast"}});
    std::printf("server up:   POST /todos -> %s %d\n", sent.is_sent() ? "sent, HTTP" : "not sent",
                sent.response() ? sent.response()->status : 0);

    server.stop();
    auto queued = v.post("/todos", boost::json::object{{"id", 2}, {"text", "queued while down"}});
    std::printf("server down: POST /todos -> %s (%zu pending)\n", queued.is_queued() ? "queued" : "not queued",
                v.pending_count());

    server.start();
    const auto delivered = v.process_queue();
    std::printf("server back: process_queue() delivered %zu; the server holds %zu items\n", delivered,
                server.items().size());

    const bool ok = sent.is_sent() && sent.response()->status == 201 && queued.is_queued() && delivered == 1 &&
                    server.items().size() == 2 && v.pending_count() == 0;
    return ok ? 0 : 1;
}
