// A second file that sees the declarations only: the probe, path checks and UUIDs link to src.cpp.
#include <syncvault/connectivity/polling_connectivity.hpp>
#include <syncvault/detail/request_check.hpp>
#include <syncvault/detail/url_encode.hpp>
#include <syncvault/detail/uuid.hpp>

#include <cstdio>

bool check_declared_parts()
{
    namespace sv = syncvault;
    bool ok = true;
    auto expect = [&](bool cond, const char* what) {
        if (!cond) std::fprintf(stderr, "separate compilation: %s\n", what);
        ok = ok && cond;
    };
    sv::polling_connectivity net{sv::vault_config{.base_url = "http://127.0.0.1:9"}};
    expect(net.is_online(), "polling_connectivity starts online");
    net.report(false);
    expect(!net.is_online(), "polling_connectivity learns from report(false)");
    expect(sv::detail::make_uuid_v4().size() == 36, "make_uuid_v4 makes a UUID");
    expect(sv::detail::make_uuid_v4() != sv::detail::make_uuid_v4(), "UUIDs differ");
    expect(!sv::detail::check_path("/jobs/1", 2048), "check_path accepts /jobs/1");
    expect(sv::detail::check_path("/a/../b", 2048) == sv::errc::invalid_path, "check_path refuses ..");
    expect(sv::detail::checked_base_url("https://h/api/") == "https://h/api", "checked_base_url");
    expect(sv::detail::percent_encode_unreserved("a b/c") == "a%20b%2Fc", "percent_encode_unreserved");
    return ok;
}
