// sqlite_storage beyond the laws: crashes, foreign and locked files, schema versions,
// permissions, and errors that keep SQLite's words.

#include <syncvault/storage/sqlite_storage.hpp>

#include <syncvault/basic_vault.hpp>
#include <syncvault/connectivity/manual_connectivity.hpp>
#include <syncvault/retry/jittered_backoff.hpp>
#include <syncvault/testing/fake_clock.hpp>
#include <syncvault/testing/fake_transport.hpp>
#include <syncvault/testing/storage_laws.hpp>

#include "storage/temp_dir.hpp"

#include <catch2/catch.hpp>

#include <sqlite3.h>

#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <iterator>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace {

using syncvault::errc;
using syncvault::sqlite_storage;
using syncvault::sync_action;
using syncvault::testing::detail::reference_model;
using syncvault::testing::detail::sample_action;
using namespace std::chrono_literals;

syncvault::sqlite_storage_options quick_lock_timeout()
{
    syncvault::sqlite_storage_options o;
    o.busy_timeout = 50ms;
    return o;
}

std::string read_file(const std::filesystem::path& p)
{
    std::ifstream in(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), {}};
}

unsigned mode_of(const std::filesystem::path& p)
{
    struct stat st {};
    REQUIRE(::stat(p.c_str(), &st) == 0);
    return st.st_mode & 07777;
}

std::vector<std::string> ids_of(const std::vector<sync_action>& v)
{
    std::vector<std::string> out;
    for (const auto& a : v) out.push_back(a.id);
    return out;
}

std::vector<sync_action> load(sqlite_storage& s)
{
    auto r = s.load_all();
    REQUIRE(r.has_value());
    return *r;
}

// A plain SQLite connection, as another program would hold one.
class raw_db {
public:
    explicit raw_db(const std::filesystem::path& p)
    {
        REQUIRE(sqlite3_open(p.c_str(), &db_) == SQLITE_OK);
    }
    ~raw_db() { sqlite3_close(db_); }
    raw_db(const raw_db&) = delete;
    raw_db& operator=(const raw_db&) = delete;

    int exec(const std::string& sql) { return sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, nullptr); }
    std::string message() const { return sqlite3_errmsg(db_); }

    // The first column of the first row, as text ("" when there is none).
    std::string query(const std::string& sql)
    {
        sqlite3_stmt* s = nullptr;
        REQUIRE(sqlite3_prepare_v2(db_, sql.c_str(), -1, &s, nullptr) == SQLITE_OK);
        std::string out;
        if (sqlite3_step(s) == SQLITE_ROW && sqlite3_column_text(s, 0))
            out = reinterpret_cast<const char*>(sqlite3_column_text(s, 0));
        sqlite3_finalize(s);
        return out;
    }

private:
    sqlite3* db_ = nullptr;
};

template <class F>
std::system_error open_error(F&& open)
{
    try {
        open();
    } catch (const std::system_error& e) {
        return e;
    }
    FAIL("opening did not throw std::system_error");
    return std::system_error(std::error_code{}, "");
}

// Pipes that carry "I am ready" and "you may go" between a parent and its forked child, so
// neither side sleeps to wait for the other.
struct pipe_pair {
    int fds[2] = {-1, -1};
    pipe_pair() { REQUIRE(::pipe(fds) == 0); }
    ~pipe_pair()
    {
        for (int fd : fds)
            if (fd >= 0) ::close(fd);
    }
    void close_read() { ::close(std::exchange(fds[0], -1)); }
    void close_write() { ::close(std::exchange(fds[1], -1)); }
    int read_end() const { return fds[0]; }
    int write_end() const { return fds[1]; }
};

// ---- the crash test's writer: a fixed script of operations, replayed on a model to check ------

// Operation `i` of round `round`: blocks of four, so every update and remove has a target.
void run_op(int round, std::size_t i, const auto& save, const auto& remove, const auto& save_batch)
{
    const auto block = i / 4;
    auto action = [&](const char* which) {
        auto a = sample_action("r" + std::to_string(round) + "-" + std::to_string(block) + which,
                               std::uint64_t(round) * 1'000'000 + i);
        a.body.append(4096, char('a' + block % 26));  // big enough that a kill lands mid-write
        return a;
    };
    switch (i % 4) {
    case 0: save(action("a")); break;
    case 1: save(action("b")); break;
    case 2: {
        auto a = action("a");
        a.attempts = int(block % 5) + 1;
        if (block % 2) a.state = syncvault::action_state::dead;
        save(a);  // an update: lazily synced, yet a process crash keeps it
        break;
    }
    default:
        if (block % 3 == 0)
            remove(action("b").id);
        else
            save_batch(std::vector<sync_action>{action("c"), action("d")});
    }
}

void apply_to_model(reference_model& m, int round, std::size_t i)
{
    run_op(
        round, i, [&](const sync_action& a) { m.save(a); }, [&](const std::string& id) { m.remove(id); },
        [&](const std::vector<sync_action>& batch) {
            for (const auto& a : batch) m.save(a);
        });
}

[[noreturn]] void crash_test_writer(const std::filesystem::path& db, int round, int ack_fd)
{
    try {
        sqlite_storage s(db);
        for (std::size_t i = 0; i < 1'000'000; ++i) {
            bool ok = true;
            run_op(
                round, i, [&](const sync_action& a) { ok = !s.save(a); },
                [&](const std::string& id) { ok = !s.remove(id); },
                [&](const std::vector<sync_action>& b) { ok = !s.save_batch(b); });
            if (!ok) ::_exit(3);
            // Acknowledged: the call returned, so the action must survive.
            const std::string line = std::to_string(i) + "\n";
            if (::write(ack_fd, line.data(), line.size()) != ssize_t(line.size())) ::_exit(4);
        }
    } catch (...) {
        ::_exit(5);
    }
    ::_exit(0);
}

} // namespace

TEST_CASE("sqlite_storage keeps every acknowledged write when its process is killed",
          "[storage][sqlite][crash]")
{
    syncvault_tests::temp_dir dir("sqlite-kill");
    const auto db = dir / "syncvault.db";
    std::vector<sync_action> before;  // what the store held when the round began

    for (int round = 0; round < 4; ++round) {
        INFO("round " << round);
        pipe_pair acks;
        const pid_t child = ::fork();
        REQUIRE(child >= 0);
        if (child == 0) {
            acks.close_read();
            crash_test_writer(db, round, acks.write_end());
        }
        acks.close_write();

        // Let it acknowledge a varying number of operations, then kill it mid-stride.
        const std::size_t kill_after = 25 + std::size_t(round) * 37;
        std::size_t acknowledged = 0;
        char buf[4096];
        bool killed = false;
        for (;;) {
            const auto n = ::read(acks.read_end(), buf, sizeof buf);
            if (n <= 0) break;  // the child died: every acknowledgement has been read
            for (ssize_t k = 0; k < n; ++k) acknowledged += buf[k] == '\n';
            if (!killed && acknowledged >= kill_after) {
                REQUIRE(::kill(child, SIGKILL) == 0);
                killed = true;
            }
        }
        int status = 0;
        REQUIRE(::waitpid(child, &status, 0) == child);
        INFO("writer exit status " << (WIFEXITED(status) ? WEXITSTATUS(status) : -1));
        REQUIRE(WIFSIGNALED(status));
        REQUIRE(WTERMSIG(status) == SIGKILL);

        // The store holds every acknowledged operation, and the one in flight either whole or
        // not at all.
        reference_model acked;
        for (const auto& a : before) acked.save(a);
        for (std::size_t i = 0; i < acknowledged; ++i) apply_to_model(acked, round, i);
        reference_model in_flight = acked;
        apply_to_model(in_flight, round, acknowledged);

        sqlite_storage s(db);
        const auto loaded = load(s);
        INFO("acknowledged " << acknowledged << " operations");
        const bool exact = loaded == acked.rows() || loaded == in_flight.rows();
        if (!exact) {
            CAPTURE(ids_of(loaded), ids_of(acked.rows()));
            FAIL("the store after kill -9 is neither the acknowledged state nor one step past it");
        }
        CHECK(s.count() == loaded.size());
        before = loaded;
    }
}

TEST_CASE("sqlite_storage refuses a file that is not SQLite and leaves it untouched", "[storage][sqlite]")
{
    syncvault_tests::temp_dir dir("sqlite-notadb");
    syncvault::vault_config cfg;
    cfg.storage_path = dir.path();
    const auto db = dir / "syncvault.db";
    std::string text;
    for (int i = 0; i < 200; ++i) text += "line " + std::to_string(i) + ": precious data, not SQLite\n";
    std::ofstream(db, std::ios::binary) << text;

    auto e = open_error([&] { sqlite_storage s(cfg); });
    CHECK(e.code() == errc::storage_corrupt);
    CHECK_THAT(e.what(), Catch::Contains("file is not a database"));  // SQLite's own words
    CHECK_THAT(e.what(), Catch::Contains(db.string()));
    CHECK(read_file(db) == text);
    CHECK_FALSE(std::filesystem::exists(dir / "syncvault.db-wal"));
}

TEST_CASE("sqlite_storage refuses another application's database and leaves it untouched",
          "[storage][sqlite]")
{
    syncvault_tests::temp_dir dir("sqlite-foreign");
    const auto db = dir / "app.db";
    {
        raw_db raw(db);
        REQUIRE(raw.exec("CREATE TABLE users (name TEXT); INSERT INTO users VALUES ('ada')") == SQLITE_OK);
    }
    const auto bytes = read_file(db);

    auto e = open_error([&] { sqlite_storage s(db); });
    CHECK(e.code() == errc::storage_failed);
    CHECK_THAT(e.what(), Catch::Contains("not a syncvault database"));
    CHECK(read_file(db) == bytes);  // not even switched to WAL
    raw_db raw(db);
    CHECK(raw.query("SELECT name FROM users") == "ada");
    CHECK(raw.query("PRAGMA journal_mode") == "delete");
}

TEST_CASE("sqlite_storage checks the schema version on open", "[storage][sqlite]")
{
    syncvault_tests::temp_dir dir("sqlite-version");
    const auto db = dir / "syncvault.db";
    {
        sqlite_storage s(db);
        REQUIRE_FALSE(s.save(sample_action("kept", 1)));
    }
    {
        raw_db raw(db);
        CHECK(raw.query("PRAGMA user_version") == std::to_string(sqlite_storage::schema_version));
        CHECK(raw.query("PRAGMA application_id") == std::to_string(sqlite_storage::application_id));
        REQUIRE(raw.exec("PRAGMA user_version = 3") == SQLITE_OK);
    }

    auto e = open_error([&] { sqlite_storage s(db); });
    CHECK(e.code() == errc::storage_failed);
    CHECK_THAT(e.what(), Catch::Contains("unknown schema version 3") && Catch::Contains("newer syncvault"));
    {
        raw_db raw(db);
        CHECK(raw.query("PRAGMA user_version") == "3");  // left as found
        REQUIRE(raw.exec("PRAGMA user_version = " + std::to_string(sqlite_storage::schema_version)) == SQLITE_OK);
    }
    sqlite_storage s(db);  // nothing was lost
    CHECK(ids_of(load(s)) == std::vector<std::string>{"kept"});
}

TEST_CASE("sqlite_storage is held exclusively, a locked database gives storage_locked and loses nothing",
          "[storage][sqlite][lock]")
{
    syncvault_tests::temp_dir dir("sqlite-lock");
    const auto db = dir / "syncvault.db";
    std::optional<sqlite_storage> first;
    first.emplace(db);
    REQUIRE_FALSE(first->save(sample_action("a", 1)));
    REQUIRE_FALSE(first->save(sample_action("b", 2)));

    SECTION("a second sqlite_storage in this process")
    {
        const auto start = std::chrono::steady_clock::now();
        auto e = open_error([&] { sqlite_storage second(db, quick_lock_timeout()); });
        CHECK(std::chrono::steady_clock::now() - start >= 50ms);  // it waited the busy timeout
        CHECK(e.code() == errc::storage_locked);
        CHECK_THAT(e.what(), Catch::Contains("database is locked"));
        // The holder goes on working, and a new instance sees everything once it is gone.
        REQUIRE_FALSE(first->save(sample_action("c", 3)));
        first.reset();
        sqlite_storage again(db);
        CHECK(ids_of(load(again)) == std::vector<std::string>{"a", "b", "c"});
    }
    SECTION("another program cannot read it while it is open")
    {
        raw_db raw(db);  // no busy timeout: it answers at once
        CHECK(raw.exec("SELECT count(*) FROM syncvault_actions") == SQLITE_BUSY);
    }
    SECTION("another process")
    {
        first.reset();
        pipe_pair ready, go;
        const pid_t child = ::fork();
        REQUIRE(child >= 0);
        if (child == 0) {
            ready.close_read();
            go.close_write();
            int code = 0;
            try {
                sqlite_storage held(db);
                if (held.save(sample_action("from-child", 4))) code = 2;
                if (::write(ready.write_end(), "r", 1) != 1) code = 3;
                char c;
                (void)!::read(go.read_end(), &c, 1);  // EOF when the parent lets go
            } catch (...) {
                code = 1;
            }
            ::_exit(code);
        }
        ready.close_write();
        go.close_read();
        char c = 0;
        REQUIRE(::read(ready.read_end(), &c, 1) == 1);

        auto e = open_error([&] { sqlite_storage mine(db, quick_lock_timeout()); });
        CHECK(e.code() == errc::storage_locked);
        CHECK_THAT(e.what(), Catch::Contains("database is locked"));

        go.close_write();
        int status = 0;
        REQUIRE(::waitpid(child, &status, 0) == child);
        REQUIRE(WIFEXITED(status));
        REQUIRE(WEXITSTATUS(status) == 0);
        sqlite_storage mine(db);
        CHECK(ids_of(load(mine)) == std::vector<std::string>{"a", "b", "from-child"});
    }
    SECTION("a plain connection holding a write transaction")
    {
        first.reset();
        raw_db raw(db);
        REQUIRE(raw.exec("BEGIN IMMEDIATE") == SQLITE_OK);
        auto e = open_error([&] { sqlite_storage mine(db, quick_lock_timeout()); });
        CHECK(e.code() == errc::storage_locked);
        CHECK_THAT(e.what(), Catch::Contains("database is locked"));
        REQUIRE(raw.exec("ROLLBACK") == SQLITE_OK);
    }
    first.reset();
    sqlite_storage after(db);
    auto ids = ids_of(load(after));
    CHECK(ids.size() >= 2);
    CHECK(ids[0] == "a");
    CHECK(ids[1] == "b");
}

TEST_CASE("sqlite_storage creates its files 0600 whatever the umask", "[storage][sqlite]")
{
    syncvault_tests::temp_dir dir("sqlite-mode");
    syncvault::vault_config cfg;
    cfg.storage_path = dir / "fresh";
    const auto old_mask = ::umask(0);
    std::optional<sqlite_storage> s;
    try {
        s.emplace(cfg);
    } catch (...) {
        ::umask(old_mask);
        throw;
    }
    ::umask(old_mask);
    REQUIRE_FALSE(s->save(sample_action("a", 1)));
    auto b = sample_action("a", 1);
    b.attempts = 1;
    REQUIRE_FALSE(s->save(b));
    CHECK(mode_of(cfg.storage_path / "syncvault.db") == 0600);
    REQUIRE(std::filesystem::exists(cfg.storage_path / "syncvault.db-wal"));
    CHECK(mode_of(cfg.storage_path / "syncvault.db-wal") == 0600);
    // Exclusive locking mode keeps the WAL index in memory: no -shm file at all.
    CHECK_FALSE(std::filesystem::exists(cfg.storage_path / "syncvault.db-shm"));

    SECTION("a mode the user chose for an existing file is kept")
    {
        s.reset();
        std::filesystem::permissions(cfg.storage_path / "syncvault.db",
                                     std::filesystem::perms::owner_read | std::filesystem::perms::owner_write |
                                         std::filesystem::perms::group_read);
        sqlite_storage again(cfg);
        CHECK(mode_of(cfg.storage_path / "syncvault.db") == 0640);
    }
}

TEST_CASE("sqlite_storage checks its path", "[storage][sqlite][config]")
{
    syncvault_tests::temp_dir dir("sqlite-path");

    SECTION("an empty storage_path is named")
    {
        syncvault::vault_config cfg;
        CHECK_THROWS_WITH(sqlite_storage(cfg), Catch::Contains("storage_path"));
        CHECK_THROWS_AS(sqlite_storage(cfg), std::invalid_argument);
    }
    SECTION("a storage_path that cannot be a directory is named")
    {
        std::ofstream(dir / "file") << "x";
        syncvault::vault_config cfg;
        cfg.storage_path = dir / "file" / "sub";
        auto e = open_error([&] { sqlite_storage s(cfg); });
        CHECK(e.code() == errc::storage_failed);
        CHECK_THAT(e.what(), Catch::Contains("storage_path") && Catch::Contains((dir / "file" / "sub").string()));
    }
    SECTION("a database path in a missing directory keeps SQLite's message")
    {
        auto e = open_error([&] { sqlite_storage s(dir / "missing" / "x.db"); });
        CHECK(e.code() == errc::storage_failed);
        CHECK_THAT(e.what(), Catch::Contains("unable to open database file"));
    }
}

namespace {
// Lowers RLIMIT_FSIZE for one scope, so writes past `bytes` fail with EFBIG (SIGXFSZ ignored).
class file_size_limit {
public:
    explicit file_size_limit(rlim_t bytes)
    {
        REQUIRE(::getrlimit(RLIMIT_FSIZE, &saved_) == 0);
        old_handler_ = ::signal(SIGXFSZ, SIG_IGN);
        rlimit lowered = saved_;
        lowered.rlim_cur = bytes;
        REQUIRE(::setrlimit(RLIMIT_FSIZE, &lowered) == 0);
    }
    ~file_size_limit()
    {
        ::setrlimit(RLIMIT_FSIZE, &saved_);
        ::signal(SIGXFSZ, old_handler_);
    }
    file_size_limit(const file_size_limit&) = delete;
    file_size_limit& operator=(const file_size_limit&) = delete;

private:
    rlimit saved_{};
    void (*old_handler_)(int) = nullptr;
};
} // namespace

TEST_CASE("a failed write returns storage_failed, keeps SQLite's message and changes nothing",
          "[storage][sqlite]")
{
    syncvault_tests::temp_dir dir("sqlite-full");
    const auto db = dir / "syncvault.db";
    sqlite_storage s(db);
    reference_model m;
    for (int i = 0; i < 3; ++i) {
        auto a = sample_action("a" + std::to_string(i), std::uint64_t(i));
        REQUIRE_FALSE(s.save(a));
        m.save(a);
    }
    REQUIRE_FALSE(s.flush());  // the WAL starts empty, so the limit below bites at once
    CHECK(s.last_error_message().empty());

    auto big = sample_action("big", 10);
    big.body.assign(std::size_t(1) << 20, 'x');
    std::vector<sync_action> batch{sample_action("batch-1", 11), big};
    {
        file_size_limit limit(256 * 1024);
        auto ec = s.save(big);
        CHECK(ec == errc::storage_failed);
        CHECK(s.save_batch(batch) == errc::storage_failed);
    }
    CHECK_THAT(s.last_error_message(), Catch::Contains("disk I/O error") || Catch::Contains("disk is full"));
    CHECK_THAT(s.last_error_message(), Catch::Contains("SQLite result code"));
    CHECK(load(s) == m.rows());  // the batch was all or nothing
    CHECK(s.count() == 3);

    // Space is back: the same store goes on.
    REQUIRE_FALSE(s.save(big));
    m.save(big);
    CHECK(load(s) == m.rows());
    s = sqlite_storage(dir / "other.db");  // move-assign closes the first database
    sqlite_storage reopened(db);
    CHECK(load(reopened) == m.rows());
}

TEST_CASE("sqlite_storage keeps a table a person can query", "[storage][sqlite]")
{
    syncvault_tests::temp_dir dir("sqlite-table");
    const auto db = dir / "syncvault.db";
    {
        sqlite_storage s(db);
        for (const char* id : {"x", "y", "z"}) REQUIRE_FALSE(s.save(sample_action(id, 1)));
        auto y = sample_action("y", 2);
        y.state = syncvault::action_state::dead;
        REQUIRE_FALSE(s.save(y));
        REQUIRE_FALSE(s.remove("x"));
        REQUIRE_FALSE(s.save(sample_action("x", 3)));
    }
    raw_db raw(db);
    CHECK(raw.query("SELECT group_concat(id, ',') FROM (SELECT id FROM syncvault_actions ORDER BY position)") ==
          "y,z,x");
    CHECK(raw.query("SELECT id FROM syncvault_actions WHERE state = 'dead'") == "y");
    CHECK(raw.query("SELECT json_extract(headers, '$[0][0]') FROM syncvault_actions WHERE id = 'z'") ==
          "Content-Type");
    CHECK(raw.query("SELECT count(*) FROM sqlite_master WHERE type = 'table'") == "1");
}

TEST_CASE("sqlite_storage flush() checkpoints the WAL", "[storage][sqlite]")
{
    syncvault_tests::temp_dir dir("sqlite-flush");
    sqlite_storage s(dir / "syncvault.db");
    REQUIRE_FALSE(s.save(sample_action("a", 1)));
    REQUIRE_FALSE(s.remove("a"));
    CHECK(std::filesystem::file_size(dir / "syncvault.db-wal") > 0);
    REQUIRE_FALSE(s.flush());
    CHECK(std::filesystem::file_size(dir / "syncvault.db-wal") == 0);
}

TEST_CASE("sqlite_storage takes concurrent saves, sharing commits in group_commit mode",
          "[storage][sqlite][threads]")
{
    auto mode = GENERATE(syncvault::durability::per_record, syncvault::durability::group_commit);
    INFO("durability mode " << int(mode));
    syncvault_tests::temp_dir dir("sqlite-threads");
    syncvault::sqlite_storage_options opts;
    opts.mode = mode;
    std::optional<sqlite_storage> s;
    s.emplace(dir / "syncvault.db", opts);
    constexpr int threads = 8, per_thread = 40;
    std::vector<std::thread> pool;
    std::atomic<int> failures{0};
    for (int t = 0; t < threads; ++t)
        pool.emplace_back([&, t] {
            for (int i = 0; i < per_thread; ++i) {
                auto a = sample_action("t" + std::to_string(t) + "-" + std::to_string(i), std::uint64_t(i));
                if (s->save(a)) ++failures;
                a.attempts = 1;  // an update racing other threads' inserts
                if (i % 4 == 0 && s->save(a)) ++failures;
            }
        });
    for (auto& th : pool) th.join();
    CHECK(failures == 0);
    CHECK(s->count() == std::size_t(threads * per_thread));
    s.reset();
    sqlite_storage reopened(dir / "syncvault.db");
    const auto loaded = load(reopened);
    REQUIRE(loaded.size() == std::size_t(threads * per_thread));
    // Each thread's actions appear in the order it saved them.
    for (int t = 0; t < threads; ++t) {
        int expected = 0;
        const auto prefix = "t" + std::to_string(t) + "-";
        for (const auto& a : loaded)
            if (a.id.starts_with(prefix)) {
                CHECK(a.id == prefix + std::to_string(expected));
                CHECK(a.attempts == (expected % 4 == 0 ? 1 : 0));
                ++expected;
            }
        CHECK(expected == per_thread);
    }
}

TEST_CASE("a moved-from sqlite_storage fails politely", "[storage][sqlite]")
{
    syncvault_tests::temp_dir dir("sqlite-moved");
    sqlite_storage s(dir / "syncvault.db");
    sqlite_storage t(std::move(s));
    CHECK(s.save(sample_action("a", 1)) == errc::storage_failed);  // NOLINT(bugprone-use-after-move)
    CHECK(s.count() == 0);
    CHECK_FALSE(t.save(sample_action("a", 1)));
    CHECK(t.count() == 1);
}

TEST_CASE("a vault runs on sqlite_storage built from the config alone and keeps its queue across restarts",
          "[storage][sqlite][vault]")
{
    using sqlite_vault = syncvault::basic_vault<syncvault::testing::fake_transport, sqlite_storage,
                                                syncvault::manual_connectivity, syncvault::jittered_backoff,
                                                syncvault::testing::fake_clock>;
    syncvault_tests::temp_dir dir("sqlite-vault");
    syncvault::vault_config cfg;
    cfg.base_url = "http://example.test/api";
    cfg.storage_path = dir / "queue";
    syncvault::testing::fake_transport net;
    {
        sqlite_vault v{cfg, net};
        v.connectivity().set_online(false);
        REQUIRE(v.post("/jobs", boost::json::object{{"n", 1}}).is_queued());
        REQUIRE(v.put("/blobs/1", syncvault::raw_body{std::string("\0\xff bytes", 8)}).is_queued());
        CHECK(v.pending_count() == 2);
        // The store is held: a second vault over the same storage_path is refused.
        try {
            sqlite_vault second{cfg, net};
            FAIL("a second vault opened the same store");
        } catch (const std::system_error& e) {
            CHECK(e.code() == errc::storage_locked);
        }
    }
    {
        sqlite_vault v{cfg, net};  // a restart
        REQUIRE(v.pending_count() == 2);
        CHECK(v.process_queue() == 2);
        const auto sent = net.requests();
        REQUIRE(sent.size() == 2);
        CHECK(sent[0].url == "http://example.test/api/jobs");
        CHECK(sent[1].body == std::string("\0\xff bytes", 8));
    }
    sqlite_vault v{cfg, net};
    CHECK(v.pending_count() == 0);
}

// The 0.1 DDL, verbatim: what a database written by syncvault 0.1 holds.
constexpr const char* v1_schema =
    "CREATE TABLE syncvault_actions ("
    " position INTEGER PRIMARY KEY,"
    " id TEXT NOT NULL UNIQUE,"
    " method TEXT NOT NULL,"
    " path TEXT NOT NULL,"
    " body BLOB NOT NULL,"
    " headers TEXT NOT NULL,"
    " idempotency_key TEXT NOT NULL,"
    " attempts INTEGER NOT NULL,"
    " sequence INTEGER NOT NULL,"
    " state TEXT NOT NULL,"
    " created_at_ms INTEGER NOT NULL,"
    " next_attempt_at_ms INTEGER NOT NULL,"
    " last_status INTEGER NOT NULL,"
    " last_error INTEGER NOT NULL);"
    "PRAGMA user_version=1;";

TEST_CASE("sqlite_storage migrates a version 1 database in place and keeps every row", "[storage][sqlite][migration]")
{
    syncvault_tests::temp_dir dir("sqlite-migrate");
    const auto db = dir / "syncvault.db";
    {
        raw_db raw(db);
        REQUIRE(raw.exec(v1_schema) == SQLITE_OK);
        REQUIRE(raw.exec("PRAGMA application_id=" + std::to_string(sqlite_storage::application_id)) == SQLITE_OK);
        REQUIRE(raw.exec("INSERT INTO syncvault_actions (id, method, path, body, headers, idempotency_key,"
                         " attempts, sequence, state, created_at_ms, next_attempt_at_ms, last_status, last_error)"
                         " VALUES ('old-1', 'POST', '/a', x'00ff7b7d', '[[\"Content-Type\",\"text/plain\"]]',"
                         " 'key-1', 2, 7, 'pending', 1767225600000, 1767225601000, 503, 9),"
                         " ('old-2', 'DELETE', '/b', x'', '[]', 'key-2', 1, 8, 'dead', 0, 5, -1, 0)") == SQLITE_OK);
    }
    sync_action one;
    one.id = "old-1";
    one.method = syncvault::http_method::post;
    one.path = "/a";
    one.body = std::string("\0\xff{}", 4);
    one.headers = {{"Content-Type", "text/plain"}};
    one.idempotency_key = "key-1";
    one.attempts = 2;
    one.sequence = 7;
    one.created_at = syncvault::detail::from_epoch_ms(1767225600000);
    one.next_attempt_at = syncvault::detail::from_epoch_ms(1767225601000);
    one.last_status = 503;
    one.last_error = 9;
    sync_action two;
    two.id = "old-2";
    two.method = syncvault::http_method::delete_;
    two.path = "/b";
    two.idempotency_key = "key-2";
    two.attempts = 1;
    two.sequence = 8;
    two.state = syncvault::action_state::dead;
    two.next_attempt_at = syncvault::detail::from_epoch_ms(5);
    two.last_status = -1;
    auto three = sample_action("new-3", 9);
    three.coalesce_key = "doc/1";
    {
        sqlite_storage s(db);
        CHECK(load(s) == std::vector<sync_action>{one, two});
        CHECK(s.count() == 2);
        CHECK(s.take_diagnostics().empty());
        // The migrated table takes the 0.2 fields, updates keep the place.
        one.lane = "caf\xc3\xa9";
        one.after = {"old-2", "elsewhere"};
        one.answered = 2;
        REQUIRE_FALSE(s.save(one));
        REQUIRE_FALSE(s.save(three));
        CHECK(load(s) == std::vector<sync_action>{one, two, three});
    }
    {
        raw_db raw(db);
        CHECK(raw.query("PRAGMA user_version") == std::to_string(sqlite_storage::schema_version));
        CHECK(raw.query("SELECT extra FROM syncvault_actions WHERE id = 'old-2'").empty());  // NULL
        CHECK(raw.query("SELECT json_extract(extra, '$.lane') FROM syncvault_actions WHERE id = 'old-1'") ==
              "caf\xc3\xa9");
        CHECK(raw.query("SELECT count(*) FROM sqlite_master WHERE type = 'table'") == "1");
    }
    sqlite_storage again(db);  // a migrated database opens as a current one
    CHECK(load(again) == std::vector<sync_action>{one, two, three});
}

TEST_CASE("sqlite_storage sets aside a row it cannot decode, reports it and loads the rest", "[storage][sqlite][recovery]")
{
    syncvault_tests::temp_dir dir("sqlite-quarantine");
    const auto db = dir / "syncvault.db";
    std::vector<sync_action> good;
    {
        sqlite_storage s(db);
        for (int i = 0; i < 6; ++i) {
            auto a = sample_action("row-" + std::to_string(i), std::uint64_t(i + 1));
            if (i == 4) a.lane = "l\xc3\xa4ne";
            REQUIRE_FALSE(s.save(a));
            good.push_back(a);
        }
    }
    // Damage as a hand edit or a buggy tool would: each kind of undecodable row once.
    const char* damage[] = {
        "UPDATE syncvault_actions SET method = 'FETCH' WHERE id = 'row-1'",
        "UPDATE syncvault_actions SET headers = 'not json' WHERE id = 'row-2'",
        "UPDATE syncvault_actions SET extra = '{\"after\": 7}' WHERE id = 'row-4'",
        "UPDATE syncvault_actions SET attempts = 'three' WHERE id = 'row-5'",
    };
    {
        raw_db raw(db);
        for (const char* sql : damage) REQUIRE(raw.exec(sql) == SQLITE_OK);
    }
    {
        sqlite_storage s(db);  // never throws for a bad row
        CHECK(ids_of(load(s)) == std::vector<std::string>{"row-0", "row-3"});
        CHECK(s.count() == 2);
        const auto diags = s.take_diagnostics();
        REQUIRE(diags.size() == 4);
        const char* named[] = {"row-1", "row-2", "row-4", "row-5"};
        for (std::size_t i = 0; i < 4; ++i) {
            CHECK(diags[i].error == errc::storage_corrupt);
            CHECK_THAT(diags[i].message, Catch::Contains(named[i]) && Catch::Contains("syncvault_quarantine") &&
                                             Catch::Contains(db.string()));
        }
        CHECK_THAT(diags[0].message, Catch::Contains("FETCH"));
        CHECK(s.take_diagnostics().empty());
        CHECK(ids_of(load(s)) == std::vector<std::string>{"row-0", "row-3"});
        CHECK(s.take_diagnostics().empty());  // set aside once, not at every load
        REQUIRE_FALSE(s.save(good[1]));       // the id is free again
        CHECK(ids_of(load(s)) == std::vector<std::string>{"row-0", "row-3", "row-1"});
    }
    {
        raw_db raw(db);  // kept as it was, with the reason
        CHECK(raw.query("SELECT count(*) FROM syncvault_quarantine") == "4");
        CHECK(raw.query("SELECT method FROM syncvault_quarantine WHERE id = 'row-1'") == "FETCH");
        CHECK(raw.query("SELECT attempts FROM syncvault_quarantine WHERE id = 'row-5'") == "three");
        CHECK(raw.query("SELECT extra FROM syncvault_quarantine WHERE id = 'row-4'") == "{\"after\": 7}");
        CHECK(raw.query("SELECT body FROM syncvault_quarantine WHERE id = 'row-2'") == good[2].body);
        CHECK_THAT(raw.query("SELECT reason FROM syncvault_quarantine WHERE id = 'row-2'"), Catch::Contains("headers"));
    }
    sqlite_storage s(db);
    CHECK(ids_of(load(s)) == std::vector<std::string>{"row-0", "row-3", "row-1"});
    CHECK(s.take_diagnostics().empty());
}

TEST_CASE("a vault over sqlite_storage with an undecodable row starts and reports it", "[storage][sqlite][recovery]")
{
    syncvault_tests::temp_dir dir("sqlite-vault-bad-row");
    syncvault::vault_config cfg;
    cfg.storage_path = dir.path();
    {
        sqlite_storage s(cfg);
        REQUIRE_FALSE(s.save(sample_action("fine", 1)));
        REQUIRE_FALSE(s.save(sample_action("broken", 2)));
    }
    {
        raw_db raw(dir / "syncvault.db");
        REQUIRE(raw.exec("UPDATE syncvault_actions SET state = 'limbo' WHERE id = 'broken'") == SQLITE_OK);
    }
    std::vector<syncvault::diagnostic> seen;
    cfg.base_url = "http://example.test/api";
    cfg.on_diagnostic = [&](const syncvault::diagnostic& d) { seen.push_back(d); };
    syncvault::testing::fake_transport net;
    syncvault::basic_vault<syncvault::testing::fake_transport, sqlite_storage, syncvault::manual_connectivity,
                           syncvault::jittered_backoff, syncvault::testing::fake_clock>
        v{cfg, net};  // before the fix, load_all failed and this threw
    REQUIRE(seen.size() == 1);
    CHECK(v.diagnostics().size() == 1);
    CHECK(seen[0].error == errc::storage_corrupt);
    CHECK_THAT(seen[0].message, Catch::Contains("broken") && Catch::Contains("limbo"));
    CHECK(v.pending_count() == 1);
}
