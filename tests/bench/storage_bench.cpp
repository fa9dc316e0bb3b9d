// file_journal against the physical limit (a raw write + fdatasync loop) and against what a user
// would write instead (SQLite, WAL, synchronous=FULL, one insert per transaction), in one run,
// with the same 256-byte body in the same directory.
//
//   syncvault_storage_bench [reopen_n=1000000] [durable_n=2000] [directory=$TMPDIR] [index|durable] [--json]
//
// Prints tables and JSON lines. Not a test: CI may run it small (`... 20000 200`).
// First the durable enqueue side by side (issue 17): a vault over file_journal, file_journal
// alone, a raw write+fdatasync loop and SQLite WAL synchronous=FULL, with 1 and with 8
// producers, fdatasync calls per insert, and the ratios; `rounds` (env SYNCVAULT_BENCH_ROUNDS,
// default 3) interleaved rounds, the median of each row reported. `durable` as the fourth
// argument runs only that table; `--json` (anywhere) prints it as one JSON document instead.
// Then the reopen and memory rows, and a comparison of file_journal's index
// (boost::unordered_flat_map) with the hand-written one it replaced, in the same run over the
// same journal: open + index, load_all, memory, save/remove throughput, and the index alone.
// `index` as the fourth argument runs only that comparison.
//
// Modes for scripts/perf-table.sh (issue 17), each a fresh process, in `directory` itself:
//   syncvault_storage_bench N 0 DIR reopen-prepare   N pending actions in DIR/reopen-journal
//                                                    (file_journal) and DIR/reopen.db (SQLite)
//   syncvault_storage_bench N 0 DIR reopen-vault     open + load them into a basic_vault
//   syncvault_storage_bench N 0 DIR reopen-journal   file_journal alone: open + load_all
//   syncvault_storage_bench N 0 DIR reopen-sqlite    SELECT + parse the same rows from SQLite
//   syncvault_storage_bench N 0 DIR vault-memory     post() N actions into an offline vault over
//                                                    file_journal; heap and RSS growth per action
// Each prints one JSON line.

#include <syncvault/basic_vault.hpp>
#include <syncvault/connectivity/manual_connectivity.hpp>
#include <syncvault/detail/action_codec.hpp>
#include <syncvault/detail/action_reader.hpp>
#include <syncvault/retry/jittered_backoff.hpp>
#include <syncvault/storage/file_journal.hpp>
#include <syncvault/testing/fake_transport.hpp>

#include "legacy_journal_index.hpp"
#include "string_keyed_index.hpp"

#ifdef SYNCVAULT_BENCH_SQLITE
#include <sqlite3.h>
#include <syncvault/storage/sqlite_storage.hpp>  // sqlite_storage rows (issue 5)
#endif

#include <boost/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <malloc.h>
#include <time.h>
#include <unistd.h>

namespace fs = std::filesystem;
using clock_type = std::chrono::steady_clock;

namespace {

double seconds_since(clock_type::time_point t)
{
    return std::chrono::duration<double>(clock_type::now() - t).count();
}

/** A pending action as a vault makes it: UUID id and key, a 256-byte JSON body. */
syncvault::sync_action make_action(std::uint64_t i)
{
    char uuid[40];
    std::snprintf(uuid, sizeof uuid, "%08llx-0000-4000-8000-%012llx", static_cast<unsigned long long>(i),
                  static_cast<unsigned long long>(i * 2654435761u));
    syncvault::sync_action a;
    a.id = uuid;
    a.idempotency_key = std::string(uuid).replace(0, 1, "k");
    a.method = syncvault::http_method::post;
    a.path = "/jobs";
    a.body = "{\"payload\":\"";
    while (a.body.size() < 254) a.body += char('a' + a.body.size() % 26);
    a.body += "\"}";
    a.headers = {{"Content-Type", "application/json"}};
    a.sequence = i;
    a.created_at = std::chrono::system_clock::time_point{std::chrono::milliseconds{1767225600000 + i}};
    a.next_attempt_at = a.created_at;
    return a;
}

std::size_t rss_bytes()
{
    long pages = 0, resident = 0;
    if (FILE* f = std::fopen("/proc/self/statm", "r")) {
        if (std::fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
        std::fclose(f);
    }
    return static_cast<std::size_t>(resident) * static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
}

void check(std::error_code ec, const char* what)
{
    if (ec) throw std::runtime_error(std::string(what) + ": " + ec.message());
}

double process_cpu_s()
{
    timespec ts{};
    ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return double(ts.tv_sec) + double(ts.tv_nsec) / 1e9;
}

double last_rate_cpu_s = 0;  // the process's CPU time (user + system) in the last rate()

/** Runs `per_thread` calls of `fn(thread, i)` on each of `threads` threads; returns calls per second. */
template <class Fn>
double rate(int threads, std::size_t per_thread, Fn fn)
{
    const double cpu0 = process_cpu_s();
    const auto t0 = clock_type::now();
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t)
        pool.emplace_back([&, t] {
            for (std::size_t i = 0; i < per_thread; ++i) fn(t, i);
        });
    for (auto& th : pool) th.join();
    const double r = double(per_thread) * threads / seconds_since(t0);
    last_rate_cpu_s = process_cpu_s() - cpu0;
    return r;
}

/** Parses one record as file_journal's load_all does (the same reader), for a fair SQLite load. */
struct fast_parser {
    syncvault::detail::action_reader reader;
    syncvault::sync_action operator()(std::string_view text) { return reader.read(text).value(); }
};

#ifdef SYNCVAULT_BENCH_SQLITE
struct sqlite_db {
    sqlite3* db = nullptr;
    explicit sqlite_db(const fs::path& file)
    {
        if (sqlite3_open(file.c_str(), &db) != SQLITE_OK) throw std::runtime_error("sqlite3_open");
        exec("PRAGMA journal_mode=WAL");
        exec("PRAGMA synchronous=FULL");
        // The body in a column of its own, beside the record (as file_journal keeps it): an
        // outbox a user would write, neither escaping the body nor parsing it back.
        exec("CREATE TABLE IF NOT EXISTS actions(seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, "
             "data TEXT NOT NULL, body BLOB NOT NULL)");
    }
    ~sqlite_db() { sqlite3_close(db); }
    void exec(const char* sql)
    {
        char* err = nullptr;
        if (sqlite3_exec(db, sql, nullptr, nullptr, &err) != SQLITE_OK) {
            std::string msg = err ? err : "?";
            sqlite3_free(err);
            throw std::runtime_error(msg);
        }
    }
};

struct sqlite_insert {
    sqlite3_stmt* stmt = nullptr;
    explicit sqlite_insert(sqlite3* db)
    {
        sqlite3_prepare_v2(db, "INSERT INTO actions(id, data, body) VALUES(?, ?, ?)", -1, &stmt, nullptr);
    }
    ~sqlite_insert() { sqlite3_finalize(stmt); }
    void operator()(const syncvault::sync_action& a)
    {
        const std::string json = syncvault::detail::serialize_action(a, syncvault::detail::record_body::beside);
        sqlite3_bind_text(stmt, 1, a.id.data(), int(a.id.size()), SQLITE_TRANSIENT);
        sqlite3_bind_text(stmt, 2, json.data(), int(json.size()), SQLITE_TRANSIENT);
        sqlite3_bind_blob(stmt, 3, a.body.data(), int(a.body.size()), SQLITE_TRANSIENT);
        if (sqlite3_step(stmt) != SQLITE_DONE) throw std::runtime_error("sqlite insert");
        sqlite3_reset(stmt);
    }
};
#endif

// ---- durable enqueue, side by side (issue 17) ------------------------------------------------

/** One row of the durable enqueue table: inserts per second and fdatasync calls. */
struct durable_cell {
    double per_s = 0;
    double syncs = -1;   // fdatasync calls for the run; negative: not counted (SQLite)
    double cpu_us = -1;  // CPU time (user + system, every thread) per insert
};

struct durable_row {
    const char* key;    // JSON name
    const char* label;  // table name
    durable_cell p1, p8;
};

/** The median of each cell over the rounds. */
durable_cell median_of(std::vector<durable_cell> v)
{
    if (v.empty()) return {};
    std::sort(v.begin(), v.end(), [](const auto& x, const auto& y) { return x.per_s < y.per_s; });
    return v[v.size() / 2];
}

/** Raw loop: each of `threads` threads appends `batch` records with write() then fdatasync()s. */
durable_cell raw_rate(const fs::path& file, const std::string& record, std::size_t n, int threads, std::size_t batch)
{
    int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0) throw std::runtime_error("raw open");
    std::string chunk;
    for (std::size_t i = 0; i < batch; ++i) chunk += record;
    const std::size_t per = n / std::size_t(threads) / batch;
    const double r = rate(threads, per, [&](int, std::size_t) {
        if (::write(fd, chunk.data(), chunk.size()) != ssize_t(chunk.size()) || ::fdatasync(fd) != 0)
            throw std::runtime_error("raw write");
    });
    ::close(fd);
    return {r * double(batch), double(per * std::size_t(threads)), last_rate_cpu_s * 1e6 / double(n)};
}

durable_cell journal_cell(const fs::path& dir, syncvault::durability mode, std::size_t n, int threads)
{
    fs::remove_all(dir);
    syncvault::file_journal j{dir, mode};
    const std::size_t per = n / std::size_t(threads);
    const double r = rate(
        threads, per, [&](int t, std::size_t i) { check(j.save(make_action(std::uint64_t(t) << 32 | i)), "save"); });
    return {r, double(j.stats().syncs), last_rate_cpu_s * 1e6 / double(n)};
}

using bench_vault =
    syncvault::basic_vault<syncvault::testing::fake_transport, syncvault::file_journal, syncvault::manual_connectivity,
                           syncvault::jittered_backoff, std::chrono::system_clock>;

/** What an app does: `post()` a JSON body into an offline vault over file_journal; each returns queued and durable. */
durable_cell vault_cell(const fs::path& dir, syncvault::durability mode, std::size_t n, int threads)
{
    fs::remove_all(dir);
    syncvault::vault_config cfg;
    cfg.base_url = "http://api.test";
    cfg.storage_path = dir;
    cfg.storage_durability = mode;
    cfg.max_pending = n + 1;
    bench_vault v{cfg, syncvault::testing::fake_transport{}, syncvault::file_journal{cfg},
                  syncvault::manual_connectivity{false}};
    const boost::json::value body = boost::json::parse(make_action(0).body);
    const std::size_t per = n / std::size_t(threads);
    const auto before = v.storage().stats().syncs;
    const double r = rate(threads, per, [&](int, std::size_t) {
        auto sent = v.post("/jobs", body);
        if (!sent.is_queued()) throw std::runtime_error("vault post: " + sent.error().message());
    });
    const double cpu_us = last_rate_cpu_s * 1e6 / double(n);
    const double syncs = double(v.storage().stats().syncs - before);
    if (v.pending_count() != per * std::size_t(threads)) throw std::runtime_error("vault pending_count");
    return {r, syncs, cpu_us};
}

#ifdef SYNCVAULT_BENCH_SQLITE
/** What a user would write instead: one insert per transaction; 8 producers share a connection (one writer anyway). */
durable_cell sqlite_cell(const fs::path& file, std::size_t n, int threads)
{
    sqlite_db db{file};
    sqlite_insert ins{db.db};
    std::mutex mu;
    const double r = rate(threads, n / std::size_t(threads), [&](int t, std::size_t i) {
        auto a = make_action(std::uint64_t(t) << 32 | i);
        std::lock_guard lk(mu);
        ins(a);
    });
    return {r, -1, last_rate_cpu_s * 1e6 / double(n)};
}

durable_cell sqlite_storage_cell(const fs::path& file, syncvault::durability mode, std::size_t n, int threads)
{
    syncvault::sqlite_storage_options o;
    o.mode = mode;
    syncvault::sqlite_storage s{file, o};
    const double r = rate(threads, n / std::size_t(threads), [&](int t, std::size_t i) {
        check(s.save(make_action(std::uint64_t(t) << 32 | i)), "sqlite_storage save");
    });
    return {r, -1, last_rate_cpu_s * 1e6 / double(n)};
}
#endif

/** Runs every durable row, `rounds` times interleaved; prints the table (or the JSON). */
std::vector<durable_row> durable_table(const fs::path& root, std::size_t n, int rounds, bool json)
{
    const std::size_t serialized = syncvault::detail::serialize_action(make_action(1)).size();
    const std::string record(serialized + 15, 'x');  // a journal record's size
    using syncvault::durability;
    std::vector<durable_row> rows = {
        {"raw", "raw write+fdatasync (8: a thread each)", {}, {}},
        {"raw_batched", "raw, one fdatasync per 8 records", {}, {}},
        {"journal", "file_journal (1: per_record, 8: group)", {}, {}},
        {"journal_per_record", "file_journal per_record", {}, {}},
        {"vault", "vault + file_journal (1: per_record, 8: group)", {}, {}},
        {"vault_per_record", "vault + file_journal per_record", {}, {}},
        {"sqlite", "SQLite WAL FULL (8: one shared connection)", {}, {}},
        {"sqlite_storage", "sqlite_storage (1: per_record, 8: group)", {}, {}},
        {"sqlite_storage_per_record", "sqlite_storage per_record", {}, {}},
    };
    std::vector<std::vector<durable_cell>> got(rows.size() * 2);
    for (int round = 0; round < rounds; ++round) {
        std::size_t k = 0;
        auto add = [&](durable_cell c1, durable_cell c8) {
            got[2 * k].push_back(c1);
            got[2 * k + 1].push_back(c8);
            ++k;
        };
        add(raw_rate(root / "raw.bin", record, n, 1, 1), raw_rate(root / "raw.bin", record, n, 8, 1));
        add({}, raw_rate(root / "raw.bin", record, n, 1, 8));
        add(journal_cell(root / "j1", durability::per_record, n, 1),
            journal_cell(root / "j8", durability::group_commit, n, 8));
        add({}, journal_cell(root / "j8p", durability::per_record, n, 8));
        add(vault_cell(root / "v1", durability::per_record, n, 1),
            vault_cell(root / "v8", durability::group_commit, n, 8));
        add({}, vault_cell(root / "v8p", durability::per_record, n, 8));
#ifdef SYNCVAULT_BENCH_SQLITE
        add(sqlite_cell(root / ("s1-" + std::to_string(round) + ".db"), n, 1),
            sqlite_cell(root / ("s8-" + std::to_string(round) + ".db"), n, 8));
        add(sqlite_storage_cell(root / ("ss1-" + std::to_string(round) + ".db"), durability::per_record, n, 1),
            sqlite_storage_cell(root / ("ss8-" + std::to_string(round) + ".db"), durability::group_commit, n, 8));
        add({}, sqlite_storage_cell(root / ("ss8p-" + std::to_string(round) + ".db"), durability::per_record, n, 8));
#else
        for (int i = 0; i < 3; ++i) add({}, {});
#endif
    }
    for (std::size_t k = 0; k < rows.size(); ++k) {
        rows[k].p1 = median_of(got[2 * k]);
        rows[k].p8 = median_of(got[2 * k + 1]);
    }
    auto find = [&](std::string_view key) -> const durable_row& {
        for (const auto& r : rows)
            if (key == r.key) return r;
        throw std::logic_error("no row");
    };
    auto ratio = [](double a, double b) { return b > 0 ? a / b : 0.0; };
    const auto& raw = find("raw");
    const auto& vault = find("vault");
    const auto& journal = find("journal");
    const auto& sqlite = find("sqlite");
    struct goal {
        const char* key;
        const char* label;
        double reached, target;
    };
    const goal goals[] = {
        {"vault_1p_vs_raw", "vault, 1 producer vs raw write+fdatasync", ratio(vault.p1.per_s, raw.p1.per_s), 0.95},
        {"vault_8p_vs_sqlite_8p", "vault, 8 producers vs SQLite, 8 producers", ratio(vault.p8.per_s, sqlite.p8.per_s),
         5.0},
        {"journal_1p_vs_raw", "file_journal, 1 producer vs raw", ratio(journal.p1.per_s, raw.p1.per_s), 0.95},
        {"journal_8p_vs_sqlite_8p", "file_journal, 8 producers vs SQLite, 8", ratio(journal.p8.per_s, sqlite.p8.per_s),
         5.0},
        {"vault_8p_vs_raw_batched", "vault, 8 producers vs raw, one sync per 8 records",
         ratio(vault.p8.per_s, find("raw_batched").p8.per_s), 0.0},
        {"vault_1p_vs_sqlite_1p", "vault, 1 producer vs SQLite, 1 producer", ratio(vault.p1.per_s, sqlite.p1.per_s),
         0.0},
    };
    auto per_insert = [n](const durable_cell& c) { return c.syncs < 0 ? -1.0 : c.syncs / double(n); };
    if (!json) {
        std::printf("\ndurable enqueue, %zu inserts of a %zu-byte action, median of %d interleaved rounds\n"
                    "(syncs: fdatasync calls per insert; CPU us: process CPU time per insert, every thread)\n",
                    n, serialized, rounds);
        std::printf("%-48s %12s %7s %7s %12s %7s %7s\n", "", "1 producer", "syncs", "CPU us", "8 producers", "syncs",
                    "CPU us");
        auto cell = [&](const durable_cell& c) {
            if (c.per_s <= 0) return std::printf(" %12s %7s %7s", "-", "-", "-");
            if (c.syncs < 0) return std::printf(" %10.0f/s %7s %7.1f", c.per_s, "-", c.cpu_us);
            return std::printf(" %10.0f/s %7.3f %7.1f", c.per_s, per_insert(c), c.cpu_us);
        };
        for (const auto& r : rows) {
            std::printf("%-48s", r.label);
            cell(r.p1);
            cell(r.p8);
            std::printf("\n");
        }
        std::printf("\n%-48s %8s %8s\n", "ratio", "reached", "goal");
        for (const auto& g : goals) {
            if (g.target > 0)
                std::printf("%-48s %7.2fx %7.2fx\n", g.label, g.reached, g.target);
            else
                std::printf("%-48s %7.2fx %8s\n", g.label, g.reached, "-");
        }
    }
    std::printf("{\"bench\":\"storage_durable\",\"inserts\":%zu,\"rounds\":%d,\"serialized_bytes\":%zu,\"rows\":[", n,
                rounds, serialized);
    auto num = [](double v, bool known) {  // null: not measured (or not countable, for SQLite's syncs)
        char buf[32];
        std::snprintf(buf, sizeof buf, "%.4f", v);
        return known ? std::string(buf) : std::string("null");
    };
    for (std::size_t k = 0; k < rows.size(); ++k) {
        const auto& r = rows[k];
        std::printf(
            "%s{\"row\":\"%s\",\"label\":\"%s\",\"p1_per_s\":%s,\"p1_syncs_per_insert\":%s,"
            "\"p1_cpu_us_per_insert\":%s,\"p8_per_s\":%s,\"p8_syncs_per_insert\":%s,\"p8_cpu_us_per_insert\":%s}",
            k ? "," : "", r.key, r.label, num(r.p1.per_s, r.p1.per_s > 0).c_str(),
            num(per_insert(r.p1), r.p1.per_s > 0 && r.p1.syncs >= 0).c_str(), num(r.p1.cpu_us, r.p1.per_s > 0).c_str(),
            num(r.p8.per_s, r.p8.per_s > 0).c_str(), num(per_insert(r.p8), r.p8.per_s > 0 && r.p8.syncs >= 0).c_str(),
            num(r.p8.cpu_us, r.p8.per_s > 0).c_str());
    }
    std::printf("],\"ratios\":{");
    for (std::size_t k = 0; k < std::size(goals); ++k)
        std::printf("%s\"%s\":{\"reached\":%.3f,\"goal\":%.2f}", k ? "," : "", goals[k].key, goals[k].reached,
                    goals[k].target);
    std::printf("}}\n");
    return rows;
}

// ---- the index comparison (issue 12) ---------------------------------------------------------

struct index_numbers {
    double open_s = 1e9, load_s = 1e9, churn_per_s = 0, index_per_s = 0, bytes_per_action = 0;
};

/** One round of every measure with file_journal over `Index`; keeps the best of the rounds. */
template <class Index>
void measure_index(const fs::path& root, const fs::path& big, std::size_t n, std::size_t churn_n,
                   index_numbers& best)
{
    using journal = syncvault::detail::journal_impl<Index>;
    syncvault::file_journal_options none;
    none.mode = syncvault::durability::none;
    {
        ::malloc_trim(0);
        const std::size_t rss0 = rss_bytes();
        auto t0 = clock_type::now();
        std::optional<journal> j;
        j.emplace(big, none);
        best.open_s = std::min(best.open_s, seconds_since(t0));
        ::malloc_trim(0);
        const std::size_t rss1 = rss_bytes();
        best.bytes_per_action = double(rss1 > rss0 ? rss1 - rss0 : 0) / double(n);
        t0 = clock_type::now();
        auto rows = j->load_all();
        best.load_s = std::min(best.load_s, seconds_since(t0));
        if (!rows || rows->size() != n) throw std::runtime_error("index bench load_all");
    }
    {
        // A vault's life in durability::none (no sync: the index and the writes are what is
        // measured): enqueue, update the attempt count, remove on success, a window of 10,000
        // pending, compacting on its own as it goes.
        const fs::path dir = root / "churn";
        fs::remove_all(dir);
        journal j(dir, none);
        const std::size_t window = 10'000;
        auto t0 = clock_type::now();
        for (std::size_t i = 0; i < churn_n; ++i) {
            auto a = make_action(i);
            check(j.save(a), "save");
            if (i >= window) {
                auto head = make_action(i - window);
                head.attempts = 1;
                check(j.save(head), "update");
                check(j.remove(head.id), "remove");
            }
        }
        best.churn_per_s = std::max(best.churn_per_s, double(3 * churn_n) / seconds_since(t0));
    }
    {
        // The index alone: insert n ids, look each up, update each, remove them in FIFO order.
        std::vector<std::string> ids;
        ids.reserve(n);
        for (std::size_t i = 0; i < n; ++i) ids.push_back(make_action(i).id);
        Index index;
        auto t0 = clock_type::now();
        for (std::size_t i = 0; i < n; ++i) index.put(ids[i], i * 600, 500);
        std::size_t found = 0;
        for (std::size_t i = 0; i < n; ++i) found += index.find(ids[i]) != Index::npos;
        for (std::size_t i = 0; i < n; ++i) index.put(ids[i], i * 600 + 1, 501);
        for (std::size_t i = 0; i < n; ++i) {
            index.erase(ids[i]);
            if (index.sparse()) index.sweep();
        }
        const double s = seconds_since(t0);
        if (found != n || index.size() != 0) throw std::runtime_error("index bench index");
        best.index_per_s = std::max(best.index_per_s, double(4 * n) / s);
    }
}

void compare_indexes(const fs::path& root, std::size_t n, bool json)
{
    const fs::path big = root / "index-big";
    {
        syncvault::file_journal j{big, syncvault::durability::none};
        std::vector<syncvault::sync_action> batch;
        for (std::size_t i = 0; i < n; ++i) {
            batch.push_back(make_action(i));
            if (batch.size() == 1000 || i + 1 == n) {
                check(j.save_batch(batch), "save_batch");
                batch.clear();
            }
        }
        check(j.flush(), "flush");
    }
    const std::size_t churn_n = std::max<std::size_t>(n / 4, 20'000);
    index_numbers legacy, keyed, flat;
    for (int round = 0; round < 5; ++round) {  // interleaved, best of five: load moves all alike
        measure_index<syncvault_bench::legacy_journal_index>(root, big, n, churn_n, legacy);
        measure_index<syncvault_bench::string_keyed_index>(root, big, n, churn_n, keyed);
        measure_index<syncvault::detail::journal_index>(root, big, n, churn_n, flat);
    }
    fs::remove_all(big);
    auto row = [](const char* what, double old_v, double keyed_v, double new_v, bool lower_is_better) {
        const double gain = lower_is_better ? old_v / new_v : new_v / old_v;
        std::printf("%-46s %13.3f %13.3f %13.3f %7.2fx\n", what, old_v, keyed_v, new_v, gain);
    };
    if (!json) {
        std::printf("\nfile_journal index, %zu actions, best of 5 in one run\n%-46s %13s %13s %13s %8s\n", n, "measure",
                    "hand-written", "flat_map<str>", "flat_set<pos>", "set/hand");
        row("open: scan, checksums, index (s)", legacy.open_s, keyed.open_s, flat.open_s, true);
        row("load_all after it (s)", legacy.load_s, keyed.load_s, flat.load_s, true);
        row("RSS per action after open (B)", legacy.bytes_per_action, keyed.bytes_per_action, flat.bytes_per_action,
            true);
        row("save+update+remove, durability none (k/s)", legacy.churn_per_s / 1e3, keyed.churn_per_s / 1e3,
            flat.churn_per_s / 1e3, false);
        row("index alone: put, find, update, erase (M/s)", legacy.index_per_s / 1e6, keyed.index_per_s / 1e6,
            flat.index_per_s / 1e6, false);
    }
    std::printf("{\"bench\":\"storage_index\",\"n\":%zu,\"churn_n\":%zu", n, churn_n);
    for (auto [name, v] : {std::pair{"legacy", &legacy}, std::pair{"flat_map", &keyed}, std::pair{"flat_set", &flat}})
        std::printf(",\"%s_open_s\":%.4f,\"%s_load_s\":%.4f,\"%s_bytes_per_action\":%.1f,"
                    "\"%s_churn_per_s\":%.1f,\"%s_index_per_s\":%.1f",
                    name, v->open_s, name, v->load_s, name, v->bytes_per_action, name, v->churn_per_s, name,
                    v->index_per_s);
    std::printf("}\n");
}

// ---- perf-table modes (issue 17): one measure per fresh process ------------------------------

/** Bytes the allocator has handed out and not taken back. */
std::size_t heap_in_use()
{
    return static_cast<std::size_t>(::mallinfo2().uordblks);
}

syncvault::vault_config reopen_config(const fs::path& dir, std::size_t n)
{
    syncvault::vault_config cfg;
    cfg.base_url = "http://api.test";
    cfg.storage_path = dir;
    cfg.max_pending = n + 1;
    return cfg;
}

void reopen_prepare(const fs::path& dir, std::size_t n)
{
    fs::remove_all(dir / "reopen-journal");
    fs::remove(dir / "reopen.db");
    fs::remove(dir / "reopen.db-wal");
    fs::remove(dir / "reopen.db-shm");
    const auto t0 = clock_type::now();
    {
        syncvault::file_journal j{dir / "reopen-journal", syncvault::durability::none};
        std::vector<syncvault::sync_action> batch;
        for (std::size_t i = 0; i < n; ++i) {
            batch.push_back(make_action(i));
            if (batch.size() == 1000 || i + 1 == n) {
                check(j.save_batch(batch), "save_batch");
                batch.clear();
            }
        }
        check(j.flush(), "flush");
    }
#ifdef SYNCVAULT_BENCH_SQLITE
    {
        sqlite_db db{dir / "reopen.db"};
        sqlite_insert ins{db.db};
        db.exec("BEGIN");
        for (std::size_t i = 0; i < n; ++i) ins(make_action(i));
        db.exec("COMMIT");
        db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
    }
#endif
    std::printf("{\"bench\":\"storage_reopen_prepare\",\"n\":%zu,\"seconds\":%.3f,\"body_bytes\":%zu,"
                "\"serialized_bytes\":%zu}\n",
                n, seconds_since(t0), make_action(1).body.size(), syncvault::detail::serialize_action(make_action(1)).size());
}

/** Open + load into a vault: the constructor opens the journal and loads every pending action. */
void reopen_vault(const fs::path& dir, std::size_t n)
{
    auto cfg = reopen_config(dir / "reopen-journal", n);
    ::malloc_trim(0);
    const std::size_t heap0 = heap_in_use(), rss0 = rss_bytes();
    const double cpu0 = process_cpu_s();
    const auto t0 = clock_type::now();
    std::optional<bench_vault> v;
    v.emplace(cfg, syncvault::testing::fake_transport{}, syncvault::file_journal{cfg},
              syncvault::manual_connectivity{false});
    const double s = seconds_since(t0), cpu = process_cpu_s() - cpu0;
    if (v->pending_count() != n) throw std::runtime_error("reopen-vault: pending_count");
    ::malloc_trim(0);
    const std::size_t heap1 = heap_in_use(), rss1 = rss_bytes();
    std::printf("{\"bench\":\"storage_reopen_vault\",\"n\":%zu,\"seconds\":%.4f,\"cpu_seconds\":%.4f,"
                "\"heap_bytes_per_action\":%.1f,\"rss_bytes_per_action\":%.1f}\n",
                n, s, cpu, double(heap1 > heap0 ? heap1 - heap0 : 0) / double(n),
                double(rss1 > rss0 ? rss1 - rss0 : 0) / double(n));
}

/** The journal alone, for comparison: file_journal open (scan, checksums, index) + load_all. */
void reopen_journal(const fs::path& dir, std::size_t n)
{
    const double cpu0 = process_cpu_s();
    const auto t0 = clock_type::now();
    syncvault::file_journal j{dir / "reopen-journal"};
    const double open_s = seconds_since(t0);
    auto rows = j.load_all();
    const double s = seconds_since(t0), cpu = process_cpu_s() - cpu0;
    if (!rows || rows->size() != n) throw std::runtime_error("reopen-journal: load_all");
    std::printf("{\"bench\":\"storage_reopen_journal\",\"n\":%zu,\"seconds\":%.4f,\"open_seconds\":%.4f,"
                "\"cpu_seconds\":%.4f}\n",
                n, s, open_s, cpu);
}

/** What a user would write instead: open SQLite, SELECT every row, parse each into a sync_action. */
void reopen_sqlite([[maybe_unused]] const fs::path& dir, [[maybe_unused]] std::size_t n)
{
#ifdef SYNCVAULT_BENCH_SQLITE
    const double cpu0 = process_cpu_s();
    const auto t0 = clock_type::now();
    std::vector<syncvault::sync_action> rows;
    {
        sqlite_db db{dir / "reopen.db"};
        sqlite3_stmt* stmt = nullptr;
        sqlite3_prepare_v2(db.db, "SELECT data, body FROM actions ORDER BY seq", -1, &stmt, nullptr);
        fast_parser parse;
        while (sqlite3_step(stmt) == SQLITE_ROW) {
            rows.push_back(parse({reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0)),
                                  std::size_t(sqlite3_column_bytes(stmt, 0))}));
            rows.back().body.assign(static_cast<const char*>(sqlite3_column_blob(stmt, 1)),
                                    std::size_t(sqlite3_column_bytes(stmt, 1)));
        }
        sqlite3_finalize(stmt);
    }
    const double s = seconds_since(t0), cpu = process_cpu_s() - cpu0;
    if (rows.size() != n) throw std::runtime_error("reopen-sqlite: row count");
    std::printf("{\"bench\":\"storage_reopen_sqlite\",\"n\":%zu,\"seconds\":%.4f,\"cpu_seconds\":%.4f}\n", n, s,
                cpu);
#else
    std::printf("{\"bench\":\"storage_reopen_sqlite\",\"n\":%zu,\"seconds\":null}\n", n);
#endif
}

/** Resident memory per pending action inside a vault: post() n actions while offline. */
void vault_memory(const fs::path& dir, std::size_t n)
{
    fs::remove_all(dir / "memory-journal");
    auto cfg = reopen_config(dir / "memory-journal", n);
    cfg.storage_durability = syncvault::durability::none;  // memory, not the disk, is measured
    const boost::json::value body = boost::json::parse(make_action(0).body);
    std::optional<bench_vault> v;
    v.emplace(cfg, syncvault::testing::fake_transport{}, syncvault::file_journal{cfg},
              syncvault::manual_connectivity{false});
    // One action first: what is allocated once (buffers, the first table) is not per action.
    if (!v->post("/jobs", body).is_queued()) throw std::runtime_error("vault-memory: post");
    check(v->storage().flush(), "flush");
    ::malloc_trim(0);
    const std::size_t heap0 = heap_in_use(), rss0 = rss_bytes();
    for (std::size_t i = 1; i < n; ++i)
        if (!v->post("/jobs", body).is_queued()) throw std::runtime_error("vault-memory: post");
    check(v->storage().flush(), "flush");
    ::malloc_trim(0);
    const std::size_t heap1 = heap_in_use(), rss1 = rss_bytes();
    if (v->pending_count() != n) throw std::runtime_error("vault-memory: pending_count");
    std::printf("{\"bench\":\"storage_vault_memory\",\"n\":%zu,\"body_bytes\":%zu,\"heap_bytes_per_action\":%.1f,"
                "\"rss_bytes_per_action\":%.1f}\n",
                n, make_action(0).body.size(), double(heap1 > heap0 ? heap1 - heap0 : 0) / double(n - 1),
                double(rss1 > rss0 ? rss1 - rss0 : 0) / double(n - 1));
    v.reset();
    fs::remove_all(dir / "memory-journal");
}

} // namespace

int main(int argc, char** argv)
try {
    bool json = false;
    std::vector<std::string_view> args;  // positional, without the flags
    for (int i = 0; i < argc; ++i) {
        if (std::string_view(argv[i]) == "--json")
            json = true;
        else
            args.push_back(argv[i]);
    }
    argc = int(args.size());
    const auto arg = [&](int i) { return std::string(args[std::size_t(i)]); };
    const std::string_view mode = argc > 4 ? args[4] : std::string_view{};
    const bool durable_only = mode == "durable";
    const std::size_t reopen_n = argc > 1 ? std::stoull(arg(1)) : 1'000'000;
    const std::size_t durable_n = argc > 2 ? std::stoull(arg(2)) : 2'000;
    const fs::path base = argc > 3 ? fs::path(arg(3)) : fs::temp_directory_path();
    if (mode == "reopen-prepare" || mode == "reopen-vault" || mode == "reopen-journal" || mode == "reopen-sqlite" ||
        mode == "vault-memory") {
        fs::create_directories(base);
        if (mode == "reopen-prepare") reopen_prepare(base, reopen_n);
        if (mode == "reopen-vault") reopen_vault(base, reopen_n);
        if (mode == "reopen-journal") reopen_journal(base, reopen_n);
        if (mode == "reopen-sqlite") reopen_sqlite(base, reopen_n);
        if (mode == "vault-memory") vault_memory(base, std::max<std::size_t>(reopen_n, 2));
        return 0;
    }
    const fs::path root = base / ("syncvault-bench-" + std::to_string(::getpid()));
    fs::remove_all(root);
    fs::create_directories(root);
    if (mode == "index") {
        compare_indexes(root, reopen_n, json);
        fs::remove_all(root);
        return 0;
    }
    const std::size_t serialized = syncvault::detail::serialize_action(make_action(1)).size();
    if (!json)
        std::printf("syncvault storage benchmark: %zu-byte body, %zu-byte serialized action, in %s\n",
                    make_action(1).body.size(), serialized, root.c_str());

    // --- durable enqueue rate (issue 17: every row side by side, the rows below read from it)
    int rounds = 3;
    if (const char* r = std::getenv("SYNCVAULT_BENCH_ROUNDS")) rounds = std::max(1, std::atoi(r));
    const auto table = durable_table(root, durable_n, rounds, json);
    if (durable_only) {
        fs::remove_all(root);
        return 0;
    }
    auto row = [&](std::string_view key) -> const durable_row& {
        for (const auto& r : table)
            if (key == r.key) return r;
        throw std::logic_error("no row");
    };
    const double raw = row("raw").p1.per_s;
    const double j1 = row("journal").p1.per_s, j8 = row("journal").p8.per_s;
    const double j8p = row("journal_per_record").p8.per_s;
    const auto j1_syncs = static_cast<unsigned long long>(row("journal").p1.syncs);
    const auto j8_syncs = static_cast<unsigned long long>(row("journal").p8.syncs);
    const auto j8p_syncs = static_cast<unsigned long long>(row("journal_per_record").p8.syncs);
    const double s1 = row("sqlite").p1.per_s, s8 = row("sqlite").p8.per_s;
    const double ss1 = row("sqlite_storage").p1.per_s, ss8 = row("sqlite_storage").p8.per_s;
    const double ss8p = row("sqlite_storage_per_record").p8.per_s;

    // --- reopen time and memory at reopen_n pending actions ------------------------------
    {
        syncvault::file_journal j{root / "big", syncvault::durability::none};
        std::vector<syncvault::sync_action> batch;
        for (std::size_t i = 0; i < reopen_n; ++i) {
            batch.push_back(make_action(i));
            if (batch.size() == 1000 || i + 1 == reopen_n) {
                check(j.save_batch(batch), "save_batch");
                batch.clear();
            }
        }
        check(j.flush(), "flush");
    }
    ::malloc_trim(0);
    const std::size_t rss0 = rss_bytes();
    auto t0 = clock_type::now();
    std::optional<syncvault::file_journal> big;
    big.emplace(root / "big");
    const double open_s = seconds_since(t0);
    ::malloc_trim(0);
    const std::size_t rss_index = rss_bytes();
    t0 = clock_type::now();
    auto loaded = big->load_all();
    const double load_s = seconds_since(t0);
    if (!loaded || loaded->size() != reopen_n) throw std::runtime_error("load_all");
    const double journal_reopen = open_s + load_s;
    const double bytes_per_action = double(rss_index > rss0 ? rss_index - rss0 : 0) / double(reopen_n);
    loaded->clear();
    loaded->shrink_to_fit();
    big.reset();

    double sqlite_reopen = 0;
#ifdef SYNCVAULT_BENCH_SQLITE
    {
        sqlite_db db{root / "big.db"};
        sqlite_insert ins{db.db};
        db.exec("BEGIN");
        for (std::size_t i = 0; i < reopen_n; ++i) ins(make_action(i));
        db.exec("COMMIT");
    }
    {
        t0 = clock_type::now();
        sqlite_db db{root / "big.db"};
        sqlite3_stmt* stmt = nullptr;
        sqlite3_prepare_v2(db.db, "SELECT data FROM actions ORDER BY seq", -1, &stmt, nullptr);
        std::vector<syncvault::sync_action> rows;
        fast_parser parse;
        while (sqlite3_step(stmt) == SQLITE_ROW)
            rows.push_back(parse({reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0)),
                                  std::size_t(sqlite3_column_bytes(stmt, 0))}));
        sqlite3_finalize(stmt);
        sqlite_reopen = seconds_since(t0);
        if (rows.size() != reopen_n) throw std::runtime_error("sqlite load");
    }
#endif

    // --- sqlite_storage reopen (issue 5): open (schema and lock checks) + load_all ---------
    double ss_reopen = 0;
#ifdef SYNCVAULT_BENCH_SQLITE
    {
        syncvault::sqlite_storage_options o;
        o.mode = syncvault::durability::none;
        syncvault::sqlite_storage s{root / "big-ss.db", o};
        std::vector<syncvault::sync_action> batch;
        for (std::size_t i = 0; i < reopen_n; ++i) {
            batch.push_back(make_action(i));
            if (batch.size() == 1000 || i + 1 == reopen_n) {
                check(s.save_batch(batch), "sqlite_storage save_batch");
                batch.clear();
            }
        }
        check(s.flush(), "sqlite_storage flush");
    }
    {
        t0 = clock_type::now();
        syncvault::sqlite_storage s{root / "big-ss.db"};
        auto rows = s.load_all();
        ss_reopen = seconds_since(t0);
        if (!rows || rows->size() != reopen_n) throw std::runtime_error("sqlite_storage load_all");
    }
#endif
    // --- end of sqlite_storage reopen (issue 5) --------------------------------------------
    fs::remove_all(root);

    // --- report ---------------------------------------------------------------------------
    auto ratio = [](double a, double b) { return b > 0 ? a / b : 0.0; };
    const double mem_goal = 2.0 * double(serialized) + 200;
    if (!json) {
        std::printf("\n%-44s %14s %10s\n", "measure", "value", "syncs");
        std::printf("%-44s %12.0f/s %10zu\n", "raw write+fdatasync loop", raw, durable_n);
        std::printf("%-44s %12.0f/s %10llu\n", "file_journal per_record, 1 producer", j1, (unsigned long long)j1_syncs);
        std::printf("%-44s %12.0f/s %10llu\n", "file_journal group_commit, 8 producers", j8,
                    (unsigned long long)j8_syncs);
        std::printf("%-44s %12.0f/s %10llu\n", "file_journal per_record, 8 producers", j8p,
                    (unsigned long long)j8p_syncs);
        std::printf("%-44s %12.0f/s\n", "SQLite WAL FULL, 1 producer", s1);
        std::printf("%-44s %12.0f/s\n", "SQLite WAL FULL, 8 producers", s8);
        std::printf("%-44s %12.0f/s\n", "sqlite_storage per_record, 1 producer", ss1);     // issue 5
        std::printf("%-44s %12.0f/s\n", "sqlite_storage group_commit, 8 producers", ss8);  // issue 5
        std::printf("%-44s %12.0f/s\n", "sqlite_storage per_record, 8 producers", ss8p);   // issue 5
        std::printf("%-44s %13.3fs\n", "file_journal reopen (open + load_all)", journal_reopen);
        std::printf("%-44s %13.3fs\n", "  of which open (scan, checksums, index)", open_s);
        std::printf("%-44s %13.3fs\n", "SQLite reopen (open + SELECT + parse)", sqlite_reopen);
        std::printf("%-44s %13.3fs\n", "sqlite_storage reopen (open + load_all)", ss_reopen);  // issue 5
        std::printf("%-44s %12.0f B\n", "file_journal RSS per pending action", bytes_per_action);
        std::printf("\n%-44s %8s %8s\n", "goal", "reached", "target");
        std::printf("%-44s %7.2fx %7.2fx\n", "1 producer vs raw loop", ratio(j1, raw), 0.95);
        std::printf("%-44s %7.2fx %7.2fx\n", "1 producer vs SQLite", ratio(j1, s1), 1.0);
        std::printf("%-44s %7.2fx %7.2fx\n", "8 producers vs SQLite", ratio(j8, s8), 5.0);
        std::printf("%-44s %7.2fx %7.2fx\n", "reopen speed vs SQLite", ratio(sqlite_reopen, journal_reopen), 1.0);
        std::printf("%-44s %7.0fB %7.0fB\n", "memory per action", bytes_per_action, mem_goal);
    }
    std::printf("{\"bench\":\"storage\",\"reopen_n\":%zu,\"durable_n\":%zu,\"serialized_bytes\":%zu,"
                "\"raw_per_s\":%.1f,\"journal_1p_per_s\":%.1f,\"journal_8p_group_per_s\":%.1f,"
                "\"journal_8p_per_record_per_s\":%.1f,\"sqlite_1p_per_s\":%.1f,\"sqlite_8p_per_s\":%.1f,"
                "\"journal_8p_syncs\":%llu,\"journal_reopen_s\":%.4f,\"journal_open_s\":%.4f,"
                "\"sqlite_reopen_s\":%.4f,\"bytes_per_action\":%.1f,\"memory_goal_bytes\":%.1f,"
                "\"ratio_1p_vs_raw\":%.3f,\"ratio_1p_vs_sqlite\":%.3f,\"ratio_8p_vs_sqlite\":%.3f,"
                "\"ratio_reopen_vs_sqlite\":%.3f}\n",
                reopen_n, durable_n, serialized, raw, j1, j8, j8p, s1, s8, (unsigned long long)j8_syncs,
                journal_reopen, open_s, sqlite_reopen, bytes_per_action, mem_goal, ratio(j1, raw),
                ratio(j1, s1), ratio(j8, s8), ratio(sqlite_reopen, journal_reopen));
    // sqlite_storage (issue 5): its own JSON line, so the line above keeps its shape.
    std::printf("{\"bench\":\"storage_sqlite_storage\",\"reopen_n\":%zu,\"durable_n\":%zu,"
                "\"sqlite_storage_1p_per_s\":%.1f,\"sqlite_storage_8p_group_per_s\":%.1f,"
                "\"sqlite_storage_8p_per_record_per_s\":%.1f,\"sqlite_storage_reopen_s\":%.4f}\n",
                reopen_n, durable_n, ss1, ss8, ss8p, ss_reopen);
    fs::create_directories(root);
    compare_indexes(root, reopen_n, json);
    fs::remove_all(root);
    return 0;
} catch (const std::exception& e) {
    std::fprintf(stderr, "storage bench failed: %s\n", e.what());
    return 1;
}
