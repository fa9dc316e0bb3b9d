#include <syncvault.hpp>
#include <syncvault/testing/fake_clock.hpp>  // <syncvault.hpp> leaves out the test doubles
#include <syncvault/testing/fake_transport.hpp>
#if defined(TEST_PACKAGE_HAS_CURL)
#include <syncvault/transport/curl_transport.hpp>
#endif
#if defined(TEST_PACKAGE_HAS_SQLITE)
#include <syncvault/storage/sqlite_storage.hpp>
#endif

#include <cstdio>

int main()
{
    namespace sv = syncvault;
    sv::basic_vault<sv::testing::fake_transport, sv::memory_storage, sv::manual_connectivity, sv::jittered_backoff,
                    sv::testing::fake_clock>
        v{sv::vault_config{.base_url = "http://api.test"}};
    auto r = v.post("/jobs", boost::json::object{{"id", 7}});
#if defined(TEST_PACKAGE_HAS_CURL)
    std::printf("libcurl %s\n", curl_version());
#endif
#if defined(TEST_PACKAGE_HAS_SQLITE)
    std::printf("SQLite %s\n", sqlite3_libversion());
#endif
    std::printf("syncvault test_package: %s\n", r.is_sent() ? "sent" : "not sent");
    return r.is_sent() ? 0 : 1;
}
