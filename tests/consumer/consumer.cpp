// What a user of the package writes first: a vault over the test doubles, one request sent at
// once and one queued while offline, then drained. Built by each consumer project
// (find_package of the installed tree or the build tree, add_subdirectory, Conan's
// test_package); exits non-zero on any surprise.
#include <syncvault.hpp>
#include <syncvault/testing/fake_clock.hpp>
#include <syncvault/testing/fake_transport.hpp>

#if defined(SYNCVAULT_CONSUMER_HAS_CURL)
#include <syncvault/transport/curl_transport.hpp>
static_assert(syncvault::transport<syncvault::curl_transport>);
#endif
#if defined(SYNCVAULT_CONSUMER_HAS_SQLITE)
#include <syncvault/storage/sqlite_storage.hpp>
static_assert(syncvault::storage<syncvault::sqlite_storage>);
#endif

#include <cstdio>
#include <string>
#include <utility>

namespace {
int failures = 0;
void expect(bool ok, const char* what)
{
    if (!ok) {
        std::printf("FAILED: %s\n", what);
        ++failures;
    }
}
}  // namespace

int main()
{
    namespace sv = syncvault;
    using vault_type = sv::basic_vault<sv::testing::fake_transport, sv::memory_storage, sv::manual_connectivity,
                                       sv::jittered_backoff, sv::testing::fake_clock>;
    sv::testing::fake_transport net;
    net.respond(201, {{"Content-Type", "application/json"}}, R"({"id":7})");

    vault_type v{sv::vault_config{.base_url = "http://api.test/v1"}, net};
    auto sent = v.post("/jobs", boost::json::object{{"id", 7}});
    expect(sent.is_sent(), "the first post is sent at once");
    expect(sent.response() && sent.response()->status == 201, "its response is the server's");
    expect(net.request_count() == 1 && net.requests()[0].url == "http://api.test/v1/jobs",
           "it went to base_url + path");

    v.connectivity().set_online(false);
    auto queued = v.post("/jobs", boost::json::object{{"id", 8}});
    expect(queued.is_queued(), "a post while offline is queued");
    expect(v.pending_count() == 1, "one action waits");
    v.connectivity().set_online(true);
    expect(v.process_queue() == 1, "process_queue sends it");
    expect(v.pending_count() == 0 && v.status() == sv::sync_status::synced, "and the vault is synced");

#if defined(SYNCVAULT_CONSUMER_HAS_CURL)
    expect(curl_version() != nullptr, "libcurl links");
#endif
#if defined(SYNCVAULT_CONSUMER_HAS_SQLITE)
    expect(sqlite3_libversion_number() > 0, "SQLite links");
#endif
    std::printf("syncvault consumer: %s\n", failures == 0 ? "ok" : "FAILED");
    return failures == 0 ? 0 : 1;
}
