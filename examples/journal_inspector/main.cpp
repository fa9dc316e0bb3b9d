// What is waiting on that device? Prints every action a file_journal holds: id, method, path,
// idempotency key, attempts, next attempt, state and last outcome.
//
//   journal_inspector <storage_path or journal file> [--json]
//   journal_inspector --self-test      builds a small journal with a live vault, then inspects it
//
// It never touches the journal it is given: it copies the file to a temporary directory and
// opens the copy. So it works while the app is running (the app holds the journal's lock), and
// the recovery that opening performs (cutting a torn tail, setting damaged records aside)
// happens to the copy only, and is reported.

#include <syncvault.hpp>
#include <syncvault/testing/fake_transport.hpp>
#include <syncvault/storage/file_journal.hpp>

#include <boost/json.hpp>

#include <chrono>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <iostream>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

std::string utc(std::chrono::system_clock::time_point t)
{
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
    const std::time_t secs = static_cast<std::time_t>(ms / 1000);
    std::tm tm{};
    gmtime_r(&secs, &tm);
    char out[40];
    const auto n = std::strftime(out, sizeof out, "%Y-%m-%dT%H:%M:%S", &tm);
    std::snprintf(out + n, sizeof out - n, ".%03lldZ", static_cast<long long>(ms % 1000));
    return out;
}

std::string relative(std::chrono::system_clock::time_point t, std::chrono::system_clock::time_point now)
{
    const auto s = std::chrono::duration_cast<std::chrono::seconds>(t - now).count();
    if (s <= 0) return "due now";
    return s < 120 ? "in " + std::to_string(s) + " s" : "in " + std::to_string(s / 60) + " min";
}

std::string last_outcome(const syncvault::sync_action& a)
{
    if (a.last_status != 0) return "HTTP " + std::to_string(a.last_status);
    if (a.last_error != 0) return make_error_code(static_cast<syncvault::errc>(a.last_error)).message();
    return "-";
}

boost::json::object to_json(const syncvault::sync_action& a)
{
    return {{"id", a.id},
            {"state", a.state == syncvault::action_state::dead ? "dead" : "pending"},
            {"method", syncvault::to_string(a.method)},
            {"path", a.path},
            {"idempotency_key", a.idempotency_key},
            {"attempts", a.attempts},
            {"next_attempt_at", utc(a.next_attempt_at)},
            {"created_at", utc(a.created_at)},
            {"last_status", a.last_status},
            {"last_error", a.last_error},
            {"body_bytes", a.body.size()}};
}

struct snapshot {
    fs::path file;
    std::vector<syncvault::sync_action> actions;   // insertion order, pending and dead
    std::vector<syncvault::diagnostic> problems;   // what opening the copy had to recover from
};

/** Reads the journal in `where` (a storage directory or the journal file) through a copy. */
snapshot read_copy(const fs::path& where)
{
    snapshot s;
    s.file = fs::is_directory(where) ? where / syncvault::file_journal::file_name : where;
    if (!fs::exists(s.file)) throw std::runtime_error("no journal at " + s.file.string());
    char tmp[] = "/tmp/journal-inspector-XXXXXX";
    if (!mkdtemp(tmp)) throw std::system_error(errno, std::system_category(), "mkdtemp");
    const fs::path copy_dir = tmp;
    try {
        fs::copy_file(s.file, copy_dir / syncvault::file_journal::file_name);
        syncvault::file_journal journal{copy_dir, syncvault::durability::none};
        s.problems = journal.take_diagnostics();
        s.actions = journal.load_all().value();
    } catch (...) {
        fs::remove_all(copy_dir);
        throw;
    }
    fs::remove_all(copy_dir);
    return s;
}

void print(const snapshot& s, bool json)
{
    const auto now = std::chrono::system_clock::now();
    if (json) {
        for (const auto& a : s.actions) std::cout << boost::json::serialize(to_json(a)) << '\n';
    } else {
        std::size_t dead = 0;
        for (const auto& a : s.actions) dead += a.state == syncvault::action_state::dead;
        std::cout << s.file.string() << ": " << s.actions.size() - dead << " pending, " << dead << " dead letter"
                  << (dead == 1 ? "" : "s") << ", " << fs::file_size(s.file) << " bytes\n";
        int n = 0;
        for (const auto& a : s.actions) {
            const bool is_dead = a.state == syncvault::action_state::dead;
            std::printf("\n#%d %-7s %s %s\n", ++n, is_dead ? "DEAD" : "pending",
                        std::string(syncvault::to_string(a.method)).c_str(), a.path.c_str());
            std::printf("   id        %s\n   key       %s\n", a.id.c_str(), a.idempotency_key.c_str());
            std::printf("   attempts  %d (last: %s)\n", a.attempts, last_outcome(a).c_str());
            if (!is_dead)
                std::printf("   next      %s (%s)\n", utc(a.next_attempt_at).c_str(),
                            relative(a.next_attempt_at, now).c_str());
            std::printf("   created   %s\n   body      %zu bytes\n", utc(a.created_at).c_str(), a.body.size());
        }
        std::fflush(stdout);
    }
    for (const auto& p : s.problems) std::cerr << "warning: " << p.message << " (" << p.error.message() << ")\n";
}

/** Makes a journal the way an app would (a dead letter, a retry, two requests made offline) and
 *  inspects it while the vault still holds it, as on a device in use. */
int self_test()
{
    char tmp[] = "/tmp/journal-inspector-demo-XXXXXX";
    if (!mkdtemp(tmp)) return 2;
    const fs::path dir = tmp;
    bool ok = false;
    {
        syncvault::testing::fake_transport server;
        syncvault::basic_vault<syncvault::testing::fake_transport, syncvault::file_journal,
                               syncvault::manual_connectivity, syncvault::jittered_backoff, std::chrono::system_clock>
            v{{.base_url = "https://api.example.com/v1", .storage_path = dir}, server};
        server.respond(422).respond(503, {{"Retry-After", "120"}});
        v.post("/orders", boost::json::object{{"sku", "A-1"}, {"qty", -1}}, {.idempotency_key = "order-41"});  // dead
        v.post("/orders", boost::json::object{{"sku", "B-7"}, {"qty", 2}}, {.idempotency_key = "order-42"});   // 2 min
        v.connectivity().set_online(false);
        v.put("/profile", boost::json::object{{"name", "Ada"}});
        v.delete_("/orders/40", {.idempotency_key = "cancel-40"});

        const auto s = read_copy(dir);
        print(s, false);
        const auto& a = s.actions;
        ok = s.problems.empty() && a.size() == 4 &&
             a[0].idempotency_key == "order-41" && a[0].state == syncvault::action_state::dead &&
             a[0].last_status == 422 &&
             a[1].idempotency_key == "order-42" && a[1].attempts == 1 && a[1].last_status == 503 &&
             a[2].method == syncvault::http_method::put &&
             a[3].method == syncvault::http_method::delete_ && a[3].attempts == 0;
    }
    fs::remove_all(dir);
    std::cout << (ok ? "\nself-test passed\n" : "\nself-test FAILED\n");
    return ok ? 0 : 1;
}

} // namespace

int main(int argc, char** argv)
{
    const std::string first = argc > 1 ? argv[1] : "";
    if (first == "--self-test") return self_test();
    if (first.empty() || first == "--help") {
        std::cerr << "usage: journal_inspector <storage_path or journal file> [--json]\n"
                     "       journal_inspector --self-test\n";
        return first.empty() ? 2 : 0;
    }
    try {
        const auto s = read_copy(first);
        print(s, argc > 2 && std::string(argv[2]) == "--json");
        return s.problems.empty() ? 0 : 1;
    } catch (const std::exception& e) {
        std::cerr << "journal_inspector: " << e.what() << '\n';
        return 2;
    }
}
