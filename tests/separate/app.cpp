// syncvault::vault used as the README shows, from a file that compiles only its own calls.
#include <syncvault/vault.hpp>

#include <storage/temp_dir.hpp>

#include <boost/hana/define_struct.hpp>

#include <chrono>
#include <cstdio>
#include <string>

bool check_declared_parts();  // probe.cpp

struct job_done {
    BOOST_HANA_DEFINE_STRUCT(job_done, (int, id), (std::string, status));
};

int main()
{
    syncvault_tests::temp_dir dir{"syncvault-separate"};
    bool ok = check_declared_parts();
    {
        // Port 9 on loopback refuses the connection: the post is queued, and survives a reopen.
        syncvault::vault v{{.base_url = "http://127.0.0.1:9",
                            .storage_path = dir.path(),
                            .connect_timeout = std::chrono::milliseconds(2'000)}};
        auto r = v.post("/jobs/complete", job_done{123, "DONE"}, {.idempotency_key = "job-123-done"});
        if (!r.is_queued()) {
            std::fprintf(stderr, "separate compilation: the post was not queued\n");
            ok = false;
        }
    }
    syncvault::vault reopened{{.base_url = "http://127.0.0.1:9", .storage_path = dir.path()}};
    if (reopened.pending_count() != 1) {
        std::fprintf(stderr, "separate compilation: the queued post was not reloaded\n");
        ok = false;
    }
    if (reopened.clear_queue()) ok = false;
    std::puts(ok ? "separate compilation: ok" : "separate compilation: FAILED");
    return ok ? 0 : 1;
}
