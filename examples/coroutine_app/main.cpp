// A coroutine app: the vault's async_* operations awaited with Boost.Asio's `use_awaitable`.
//
// The app's logic runs as coroutines on one io_context (an event loop, as a GUI or a server
// has); a `background_sync` worker sends the queue. No coroutine ever blocks: a mutating request
// is written to the journal and the coroutine is suspended until the action's terminal outcome
// (success, dead letter, cancellation), even across retries; a GET runs on the loop's executor.
// The server is the todo example's REST API on a thread of this process.
//
// Completions carry `std::error_code`, not Asio's error type, so `co_await` yields a tuple
// (error, response) and never throws: `auto [ec, response] = co_await ...`.

#include "../todo/todo_server.hpp"

#include <syncvault/vault.hpp>  // syncvault::vault: libcurl, the file journal, a TCP probe

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/hana/define_struct.hpp>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <string>

namespace asio = boost::asio;
using namespace std::chrono_literals;

struct new_todo {  // the server assigns the id
    BOOST_HANA_DEFINE_STRUCT(new_todo, (std::string, text));
};

// g++ 12 mishandles some temporaries inside a co_await expression (a `{}` argument, a string
// literal where a std::string_view is expected): the app passes named values.
asio::awaitable<int> app(syncvault::vault& v, todo_example::todo_server& server)
{
    int failures = 0;
    auto expect = [&](bool ok, const std::string& what) {
        std::printf("  %s %s\n", ok ? "ok  " : "FAIL", what.c_str());
        if (!ok) ++failures;
    };
    const std::string todos = "/todos";
    const syncvault::request_options none;

    // 1. A POST: completes with the server's 201 once the worker has sent it.
    const new_todo milk{"buy milk"};
    auto [ec, created] = co_await v.async_post(todos, milk, none, asio::use_awaitable);
    expect(!ec && created.status == 201, "POST /todos -> " + std::to_string(created.status) + " " + created.body);

    // 2. A refusal is a dead letter: errc::rejected, and the response says why.
    const new_todo empty{""};
    auto [refused_ec, refused] = co_await v.async_post(todos, empty, none, asio::use_awaitable);
    expect(refused_ec == syncvault::errc::rejected && refused.status == 422,
           "POST an empty todo -> " + refused_ec.message() + " (" + std::to_string(refused.status) + ")");

    // 3. A busy server (503, Retry-After: 1) twice: the coroutine waits across the retries.
    server.busy(2);
    const auto before = std::chrono::steady_clock::now();
    const new_todo bread{"bake bread"};
    auto [busy_ec, accepted] = co_await v.async_post(todos, bread, none, asio::use_awaitable);
    const auto waited = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - before);
    expect(!busy_ec && accepted.status == 201,
           "POST after two 503s -> " + std::to_string(accepted.status) + " after " + std::to_string(waited.count()) + " ms");

    // 4. A GET: the transfer runs on this loop's executor, not on the coroutine's caller.
    auto [get_ec, list] = co_await v.async_get(todos, none, asio::use_awaitable);
    expect(!get_ec && list.status == 200, "GET /todos -> " + list.body);
    co_return failures;
}

int main()
{
    try {
        todo_example::todo_server server;
        const auto journal = std::filesystem::temp_directory_path() /
                             ("syncvault-coroutine-app-" + std::to_string(std::chrono::steady_clock::now().time_since_epoch().count()));
        std::filesystem::create_directories(journal);

        syncvault::vault_config cfg;
        cfg.base_url = server.base_url();
        cfg.storage_path = journal;
        cfg.send_on_caller = false;  // the plain post() never blocks either (SPEC 9.5)
        cfg.connect_timeout = 1s;
        cfg.receive_timeout = 2s;
        int failures = 1;
        {
            // The vault first, its worker after it: the worker is destroyed first.
            syncvault::vault v{cfg};
            syncvault::background_sync worker{v};

            std::printf("syncvault coroutine app against %s\n", server.base_url().c_str());
            asio::io_context io;
            asio::co_spawn(io, app(v, server), [&](std::exception_ptr e, int n) {
                if (e) std::printf("  FAIL the app threw\n");
                failures = e ? 1 : n;
            });
            io.run();  // returns once the app is done: pending operations keep it running
        }
        std::filesystem::remove_all(journal);
        std::printf(failures == 0 ? "all good\n" : "%d failures\n", failures);
        return failures == 0 ? 0 : 1;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "coroutine_app: %s\n", e.what());
        return 1;
    }
}
