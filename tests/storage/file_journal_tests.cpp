// file_journal against real files and real fsync: recovery from every torn tail and from bit
// flips, kill -9 torture, locking, compaction racing enqueuers, disk full, power-cut simulation
// and group commit.

#include <syncvault/storage/file_journal.hpp>

#include <syncvault/basic_vault.hpp>
#include <syncvault/connectivity/manual_connectivity.hpp>
#include <syncvault/retry/jittered_backoff.hpp>
#include <syncvault/testing/fake_clock.hpp>
#include <syncvault/testing/fake_transport.hpp>

#include <syncvault/response_ref.hpp>

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <mutex>
#include <random>
#include <span>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

namespace fs = std::filesystem;
using syncvault::durability;
using syncvault::errc;
using syncvault::file_journal;
using syncvault::file_journal_options;
using syncvault::journal_event;
using syncvault::sync_action;

namespace {

/** A fresh directory, removed with everything in it at scope exit. */
struct temp_dir {
    fs::path path;
    explicit temp_dir(const fs::path& base = fs::temp_directory_path())
    {
        std::string tmpl = (base / "syncvault-fj-XXXXXX").string();
        REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
        path = tmpl;
    }
    temp_dir(const temp_dir&) = delete;
    temp_dir& operator=(const temp_dir&) = delete;
    ~temp_dir()
    {
        std::error_code ec;
        fs::remove_all(path, ec);
    }
    fs::path operator/(const std::string& s) const { return path / s; }
};

/**
 * Where the exhaustive recovery tests open thousands of journals: a tmpfs when there is one, as
 * each torn open truncates and syncs (milliseconds each on a disk); the code path is the same.
 */
fs::path scratch_base()
{
    std::error_code ec;
    if (fs::is_directory("/dev/shm", ec) && ::access("/dev/shm", W_OK) == 0) return "/dev/shm";
    return fs::temp_directory_path();
}

/** A deterministic action for `id`: every field set, bytes that are not valid UTF-8 included. */
sync_action make_action(const std::string& id, int attempts = 0, std::size_t body_size = 40)
{
    sync_action a;
    a.id = id;
    a.method = syncvault::http_method::patch;
    a.path = "/jobs/" + id + "?q=caf\xc3\xa9";
    a.body = "{\"v\":\"";
    for (std::size_t i = 0; a.body.size() < body_size; ++i) a.body += char('a' + (i + id.size()) % 26);
    a.body += "\"}";
    a.headers = {{"Content-Type", "application/json"}, {"X-Trace", id}};
    a.idempotency_key = "key-" + id;
    a.attempts = attempts;
    a.sequence = std::hash<std::string>{}(id) % 100000;
    a.created_at = std::chrono::system_clock::time_point{std::chrono::milliseconds{1767225600000}};
    a.next_attempt_at = a.created_at + std::chrono::seconds{attempts};
    a.last_status = attempts ? 503 : 0;
    return a;
}

std::vector<sync_action> load(file_journal& j)
{
    auto r = j.load_all();
    REQUIRE(r.has_value());
    return std::move(*r);
}

std::vector<std::string> ids_of(const std::vector<sync_action>& v)
{
    std::vector<std::string> out;
    for (const auto& a : v) out.push_back(a.id);
    return out;
}

file_journal_options opts(durability mode, std::uint64_t floor = std::uint64_t{4} << 20, bool autoc = true)
{
    file_journal_options o;
    o.mode = mode;
    o.compaction_floor = floor;
    o.auto_compact = autoc;
    return o;
}

std::string read_file(const fs::path& p)
{
    std::ifstream in(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), {}};
}

void write_file(const fs::path& p, std::string_view bytes)
{
    std::ofstream out(p, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

unsigned mode_of(const fs::path& p)
{
    struct stat st {};
    REQUIRE(::stat(p.c_str(), &st) == 0);
    return st.st_mode & 07777;
}

/** The storage model a journal must agree with: insertion order, updates in place. */
struct model {
    std::vector<sync_action> rows;
    void save(const sync_action& a)
    {
        for (auto& r : rows)
            if (r.id == a.id) {
                r = a;
                return;
            }
        rows.push_back(a);
    }
    void remove(const std::string& id)
    {
        std::erase_if(rows, [&](const auto& r) { return r.id == id; });
    }
};

/**
 * Builds a journal of whole records in `dir` and remembers, after each record, the file length
 * and what a reopen must return: the boundaries a torn or damaged journal falls back to.
 */
struct recorded_journal {
    std::vector<std::uint64_t> ends;          // file length after record i (ends[0]: the magic)
    std::vector<std::vector<sync_action>> states;  // what load_all returns at that length

    explicit recorded_journal(const fs::path& dir, int records)
    {
        file_journal j{dir, durability::none};
        model m;
        auto mark = [&] {
            ends.push_back(j.stats().file_bytes);
            states.push_back(m.rows);
        };
        mark();
        int next = 0;
        for (int i = 0; i < records; ++i) {
            const std::string id = "r" + std::to_string(next);
            switch (i % 7) {
            case 3: {  // update an earlier one in place
                auto a = make_action("r" + std::to_string(next / 2), 2);
                if (std::none_of(m.rows.begin(), m.rows.end(), [&](auto& r) { return r.id == a.id; }))
                    a = make_action(id), ++next;
                REQUIRE(!j.save(a));
                m.save(a);
                break;
            }
            case 5:  // remove the oldest
                if (!m.rows.empty()) {
                    auto victim = m.rows.front().id;
                    REQUIRE(!j.remove(victim));
                    m.remove(victim);
                    break;
                }
                [[fallthrough]];
            case 6: {  // a batch of two: one record
                std::vector<sync_action> batch{make_action(id), make_action("r" + std::to_string(next + 1))};
                next += 2;
                REQUIRE(!j.save_batch(batch));
                for (auto& a : batch) m.save(a);
                break;
            }
            default:
                REQUIRE(!j.save(make_action(id)));
                m.save(make_action(id));
                ++next;
            }
            mark();
        }
        REQUIRE(load(j) == m.rows);
    }

    /** Index of the last whole record within `length` bytes. */
    std::size_t boundary(std::uint64_t length) const
    {
        auto it = std::upper_bound(ends.begin(), ends.end(), length);
        return it == ends.begin() ? 0 : std::size_t(it - ends.begin() - 1);
    }
};

// Reads everything from `fd` until end of file.
std::string drain(int fd)
{
    std::string out;
    char buf[4096];
    for (;;) {
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return out;
        out.append(buf, std::size_t(n));
    }
}

void write_line(int fd, const std::string& line)
{
    std::string s = line + "\n";
    const char* p = s.data();
    std::size_t left = s.size();
    while (left > 0) {
        ssize_t n = ::write(fd, p, left);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) ::_exit(90);
        p += n;
        left -= std::size_t(n);
    }
}

int wait_child(pid_t pid)
{
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    return status;
}

} // namespace

TEST_CASE("file_journal keeps every field, insertion order, updates in place", "[file_journal]")
{
    temp_dir dir;
    model m;
    {
        file_journal j{dir.path};
        CHECK(j.count() == 0);
        CHECK(j.path() == dir.path / "syncvault.journal");
        auto binary = make_action("bin");
        binary.body = std::string("\x00\xff\xfe raw \xc3\x28 bytes", 17);
        for (auto& a : {make_action("a"), make_action("b"), binary, make_action("c")}) {
            REQUIRE(!j.save(a));
            m.save(a);
        }
        auto b2 = make_action("b", 3);
        b2.state = syncvault::action_state::dead;
        REQUIRE(!j.save(b2));  // update keeps its place
        m.save(b2);
        REQUIRE(!j.remove("a"));
        m.remove("a");
        REQUIRE(!j.save(make_action("a", 1)));  // remove then save: at the tail
        m.save(make_action("a", 1));
        REQUIRE(!j.remove("never-saved"));  // not an error
        CHECK(j.count() == 4);
        CHECK(load(j) == m.rows);
        CHECK(ids_of(load(j)) == std::vector<std::string>{"b", "bin", "c", "a"});
    }
    {
        file_journal j{dir.path};
        CHECK(load(j) == m.rows);
        CHECK(j.take_diagnostics().empty());
        REQUIRE(!j.clear());
        CHECK(j.count() == 0);
        CHECK(load(j).empty());
        REQUIRE(!j.save(make_action("z")));
    }
    file_journal j{dir.path};
    CHECK(ids_of(load(j)) == std::vector<std::string>{"z"});

    file_journal moved = std::move(j);  // movable, as the concept asks
    CHECK(moved.count() == 1);
    j = std::move(moved);
    CHECK(j.count() == 1);
}

TEST_CASE("file_journal index stays right when removals leave most of it tombstones", "[file_journal]")
{
    temp_dir dir;
    {
        file_journal j{dir.path, opts(durability::none, std::uint64_t{1} << 40)};
        for (int i = 0; i < 2000; ++i) REQUIRE(!j.save(make_action("n" + std::to_string(i))));
        for (int i = 500; i < 2000; ++i) REQUIRE(!j.remove("n" + std::to_string(i)));  // sweeps
        CHECK(j.count() == 500);
        for (int i = 0; i < 500; ++i) REQUIRE(!j.save(make_action("n" + std::to_string(i), 1)));
        CHECK(j.count() == 500);  // updates, not inserts
        const auto rows = load(j);
        REQUIRE(rows.size() == 500);
        for (int i = 0; i < 500; ++i) CHECK(rows[std::size_t(i)] == make_action("n" + std::to_string(i), 1));
        for (int i = 0; i < 250; ++i) REQUIRE(!j.remove("n" + std::to_string(i)));
        CHECK(j.count() == 250);
    }
    file_journal j{dir.path};
    const auto rows = load(j);
    REQUIRE(rows.size() == 250);
    CHECK(rows.front() == make_action("n250", 1));
}

TEST_CASE("file_journal save_batch is one record and one sync", "[file_journal]")
{
    temp_dir dir;
    file_journal j{dir.path};
    REQUIRE(!j.save(make_action("x")));
    const auto syncs = j.stats().syncs;
    std::vector<sync_action> batch{make_action("a"), make_action("x", 4), make_action("b"), make_action("a", 1)};
    REQUIRE(!j.save_batch(batch));
    CHECK(j.stats().syncs == syncs + 1);
    CHECK(j.stats().synced_bytes == j.stats().file_bytes);
    std::vector<sync_action> expected{make_action("x", 4), make_action("a", 1), make_action("b")};
    CHECK(load(j) == expected);
    REQUIRE(!j.save_batch({}));
    // Updates only: written, not synced.
    std::vector<sync_action> updates{make_action("a", 2)};
    REQUIRE(!j.save_batch(updates));
    CHECK(j.stats().syncs == syncs + 1);
}

TEST_CASE("file_journal rejects ids it cannot frame", "[file_journal]")
{
    temp_dir dir;
    file_journal j{dir.path};
    CHECK(j.save(make_action(std::string(70000, 'x'))) == errc::invalid_request);
    CHECK(j.count() == 0);
}

TEST_CASE("file_journal construction checks its path", "[file_journal]")
{
    syncvault::vault_config cfg;
    try {
        file_journal j{cfg};
        FAIL("an empty storage_path must throw");
    } catch (const std::invalid_argument& e) {
        CHECK_THAT(e.what(), Catch::Contains("storage_path"));
    }

    temp_dir dir;
    write_file(dir / "plain-file", "not a directory");
    cfg.storage_path = dir / "plain-file" / "journal";  // unwritable even for root
    try {
        file_journal j{cfg};
        FAIL("an unusable storage_path must throw");
    } catch (const std::system_error& e) {
        CHECK(e.code() == errc::storage_failed);
        CHECK_THAT(e.what(), Catch::Contains(cfg.storage_path.string()));
    }

    cfg.storage_path = dir / "nested" / "deeper";  // created if missing
    cfg.storage_durability = durability::none;
    file_journal j{cfg};
    REQUIRE(!j.save(make_action("a")));
    CHECK(j.stats().syncs == 0);  // durability taken from the config
    CHECK(fs::exists(dir / "nested" / "deeper" / "syncvault.journal"));
}

TEST_CASE("file_journal files are created 0600", "[file_journal]")
{
    struct umask_guard {
        mode_t old = ::umask(0);  // prove the mode is ours, not the umask's
        ~umask_guard() { ::umask(old); }
    } guard;
    temp_dir dir;
    {
        file_journal j{dir.path, opts(durability::none, 0, false)};
        for (int i = 0; i < 10; ++i) REQUIRE(!j.save(make_action(std::to_string(i))));
        for (int i = 0; i < 9; ++i) REQUIRE(!j.remove(std::to_string(i)));
        REQUIRE(!j.compact());
        CHECK(j.stats().compactions == 1);
        CHECK(mode_of(dir / "syncvault.journal") == 0600);  // the rewritten file too
        CHECK(mode_of(dir / "syncvault.journal.lock") == 0600);
    }
    // A damaged journal's copy kept aside.
    auto bytes = read_file(dir / "syncvault.journal");
    bytes[0] ^= 0x01;  // the magic: damage, not a torn tail
    write_file(dir / "syncvault.journal", bytes);
    ::chmod((dir / "syncvault.journal").c_str(), 0600);
    file_journal j{dir.path};
    REQUIRE(j.take_diagnostics().size() == 1);
    for (const auto& e : fs::directory_iterator(dir.path)) CHECK(mode_of(e.path()) == 0600);
}

TEST_CASE("file_journal refuses a second opener with storage_locked", "[file_journal]")
{
    temp_dir dir;
    file_journal first{dir.path};
    REQUIRE(!first.save(make_action("a")));

    SECTION("in the same process")
    {
        try {
            file_journal second{dir.path};
            FAIL("a second journal over the same directory must throw");
        } catch (const std::system_error& e) {
            CHECK(e.code() == errc::storage_locked);
            CHECK_THAT(e.what(), Catch::Contains((dir.path / "syncvault.journal").string()));
        }
    }
    SECTION("in another process")
    {
        const pid_t pid = ::fork();
        REQUIRE(pid >= 0);
        if (pid == 0) {
            int code = 1;
            try {
                file_journal second{dir.path};
            } catch (const std::system_error& e) {
                code = e.code() == errc::storage_locked &&
                               std::string(e.what()).find((dir.path / "syncvault.journal").string()) !=
                                   std::string::npos
                           ? 0
                           : 2;
            } catch (...) {
                code = 3;
            }
            ::_exit(code);
        }
        const int status = wait_child(pid);
        REQUIRE(WIFEXITED(status));
        CHECK(WEXITSTATUS(status) == 0);
    }
    CHECK(first.count() == 1);  // the holder is untouched
}

TEST_CASE("file_journal lock is released when it closes", "[file_journal]")
{
    temp_dir dir;
    { file_journal j{dir.path}; }
    file_journal again{dir.path};
    CHECK(again.count() == 0);
}

TEST_CASE("file_journal cut at every byte recovers exactly a prefix of whole records", "[file_journal]")
{
    temp_dir src{scratch_base()}, dst{scratch_base()};
    const recorded_journal rec{src.path, 56};
    const std::string bytes = read_file(src / "syncvault.journal");
    REQUIRE(bytes.size() == rec.ends.back());
    REQUIRE(rec.ends.size() == 57);

    std::size_t checked = 0;
    for (std::uint64_t cut = 0; cut <= bytes.size(); ++cut) {
        write_file(dst / "syncvault.journal", std::string_view(bytes).substr(0, cut));
        const std::size_t k = rec.boundary(cut);
        file_journal j{dst.path, durability::none};
        const auto got = load(j);
        if (got != rec.states[k]) FAIL_CHECK("cut at byte " << cut << " did not recover record prefix " << k);
        if (!j.take_diagnostics().empty()) FAIL_CHECK("cut at byte " << cut << " reported damage");
        if (j.stats().file_bytes != rec.ends[k]) FAIL_CHECK("cut at byte " << cut << " kept a partial record");
        ++checked;
    }
    CHECK(checked == bytes.size() + 1);
    // What was truncated stays truncated and appendable.
    file_journal j{dst.path};
    REQUIRE(!j.save(make_action("after")));
    CHECK(load(j).back().id == "after");
}

TEST_CASE("file_journal detects bit flips, keeps the prefix and sets the damaged file aside", "[file_journal]")
{
    temp_dir src{scratch_base()};
    const recorded_journal rec{src.path, 60};
    const std::string bytes = read_file(src / "syncvault.journal");
    std::mt19937 rng(20260101);

    auto check_flip = [&](std::uint64_t bit, std::size_t damaged_record) {
        temp_dir dst{scratch_base()};
        std::string damaged = bytes;
        damaged[bit / 8] = char(damaged[bit / 8] ^ (1 << (bit % 8)));
        write_file(dst / "syncvault.journal", damaged);
        INFO("bit " << bit << " in record " << damaged_record);
        {
            file_journal j{dst.path, durability::none};
            CHECK(load(j) == rec.states[damaged_record]);
            const auto diags = j.take_diagnostics();
            REQUIRE(diags.size() == 1);
            CHECK(diags[0].error == errc::storage_corrupt);
            CHECK_THAT(diags[0].message, Catch::Contains((dst.path / "syncvault.journal").string()));
            fs::path aside;
            for (const auto& e : fs::directory_iterator(dst.path))
                if (e.path().filename().string().starts_with("syncvault.journal.corrupt-")) aside = e.path();
            REQUIRE(!aside.empty());
            CHECK_THAT(diags[0].message, Catch::Contains(aside.string()));
            CHECK(read_file(aside) == damaged);  // the evidence, byte for byte
            CHECK(j.take_diagnostics().empty());
            REQUIRE(!j.save(make_action("new")));
        }
        file_journal again{dst.path};  // the rewritten journal is clean
        auto expected = rec.states[damaged_record];
        expected.push_back(make_action("new"));
        CHECK(load(again) == expected);
        CHECK(again.take_diagnostics().empty());
    };

    // Random bits in random records before the last (the last is a torn tail: see the next test).
    for (int trial = 0; trial < 40; ++trial) {
        const std::size_t r = std::uniform_int_distribution<std::size_t>(1, rec.ends.size() - 2)(rng);
        const std::uint64_t first = rec.ends[r - 1] * 8, last = rec.ends[r] * 8 - 1;
        check_flip(std::uniform_int_distribution<std::uint64_t>(first, last)(rng), r - 1);
    }
    // The checksum and the content of the record before the last.
    const std::size_t last = rec.ends.size() - 1;
    check_flip(rec.ends[last - 2] * 8 + 3, last - 2);
    check_flip(rec.ends[last - 1] * 8 - 5, last - 2);
    // The magic: nothing is kept, all of it is set aside.
    check_flip(2 * 8 + 1, 0);
}

TEST_CASE("file_journal survives kill -9 at random moments", "[file_journal][torture]")
{
    temp_dir dir;
    struct row {
        std::string id;
        int attempts;
    };
    std::vector<row> expected;  // what every reopen must return, in order
    std::mt19937 rng(7);
    std::uint64_t inode_changes = 0, last_inode = 0;
    const int rounds = 220;
    for (int round = 0; round < rounds; ++round) {
        int fds[2];
        REQUIRE(::pipe(fds) == 0);
        const pid_t pid = ::fork();
        REQUIRE(pid >= 0);
        if (pid == 0) {
            // Child: enqueue, update and remove, reporting each intent before and each
            // acknowledgement after, until killed.
            ::close(fds[0]);
            try {
                const auto mode = round % 4 == 3 ? durability::per_record : durability::none;
                file_journal j{dir.path, opts(mode, 4096)};
                auto rows = j.load_all();
                if (!rows) write_line(fds[1], "E load");
                std::vector<row> live;
                for (auto& a : *rows) live.push_back({a.id, a.attempts});
                std::mt19937 crng(static_cast<unsigned>(round));
                for (int i = 0;; ++i) {
                    const int dice = int(crng() % 10);
                    std::error_code ec;
                    if (live.empty() || (dice < 4 && live.size() < 40)) {
                        row r{"k" + std::to_string(round) + "-" + std::to_string(i), 0};
                        write_line(fds[1], "I " + r.id + " 0");
                        ec = j.save(make_action(r.id, 0));
                        live.push_back(r);
                    } else if (dice < 7) {
                        auto& r = live[crng() % live.size()];
                        ++r.attempts;
                        write_line(fds[1], "U " + r.id + " " + std::to_string(r.attempts));
                        ec = j.save(make_action(r.id, r.attempts));
                    } else {
                        auto r = live.front();
                        write_line(fds[1], "R " + r.id + " 0");
                        ec = j.remove(r.id);
                        live.erase(live.begin());
                    }
                    write_line(fds[1], ec ? "E op" : "A");
                }
            } catch (const std::exception& e) {
                write_line(fds[1], std::string("E ") + e.what());
            }
            ::_exit(1);
        }
        ::close(fds[1]);
        // Let it acknowledge a random number of operations (0: kill it while it opens).
        const int acks = std::uniform_int_distribution<int>(0, 30)(rng);
        std::string seen;
        int got = 0;
        while (got < acks) {
            char c;
            ssize_t n = ::read(fds[0], &c, 1);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) break;
            seen += c;
            if (c == '\n' && seen.size() >= 2 && seen[seen.size() - 2] == 'A' &&
                (seen.size() == 2 || seen[seen.size() - 3] == '\n'))
                ++got;
        }
        ::kill(pid, SIGKILL);
        const int status = wait_child(pid);
        REQUIRE(WIFSIGNALED(status));
        seen += drain(fds[0]);
        ::close(fds[0]);
        seen.erase(seen.rfind('\n') == std::string::npos ? 0 : seen.rfind('\n') + 1);  // a cut line

        // Apply acknowledged operations; remember the one in flight, if any.
        std::istringstream lines(seen);
        std::string line, op, id;
        int attempts = 0;
        bool pending = false;
        char pop = 0;
        std::string pid_id;
        int pattempts = 0;
        while (std::getline(lines, line)) {
            if (line.empty()) continue;  // a line cut by the kill cannot be empty; skip blanks
            if (line[0] == 'E') FAIL("child reported: " << line);
            if (line == "A") {
                REQUIRE(pending);
                pending = false;
                if (pop == 'I') expected.push_back({pid_id, 0});
                if (pop == 'U')
                    for (auto& r : expected)
                        if (r.id == pid_id) r.attempts = pattempts;
                if (pop == 'R') std::erase_if(expected, [&](auto& r) { return r.id == pid_id; });
                continue;
            }
            std::istringstream f(line);
            if (!(f >> op >> id >> attempts)) break;  // the last line, cut short by the kill
            pending = true;
            pop = op[0];
            pid_id = id;
            pattempts = attempts;
        }

        file_journal j{dir.path, durability::none};
        REQUIRE(j.take_diagnostics().empty());  // a crash is not damage
        const auto got_rows = load(j);
        std::vector<row> actual;
        for (const auto& a : got_rows) {
            REQUIRE(a == make_action(a.id, a.attempts));  // whole, not mixed with another record
            actual.push_back({a.id, a.attempts});
        }
        // The operation in flight may or may not have happened; nothing else may differ.
        if (pending) {
            if (pop == 'I' && !actual.empty() && actual.back().id == pid_id) expected.push_back({pid_id, 0});
            if (pop == 'U')
                for (auto& a : actual)
                    if (a.id == pid_id && a.attempts == pattempts)
                        for (auto& r : expected)
                            if (r.id == pid_id) r.attempts = pattempts;
            if (pop == 'R' && std::none_of(actual.begin(), actual.end(), [&](auto& a) { return a.id == pid_id; }))
                std::erase_if(expected, [&](auto& r) { return r.id == pid_id; });
        }
        REQUIRE(actual.size() == expected.size());
        for (std::size_t i = 0; i < actual.size(); ++i) {
            INFO("round " << round << " position " << i);
            REQUIRE(actual[i].id == expected[i].id);
            REQUIRE(actual[i].attempts == expected[i].attempts);
        }
        struct stat st {};
        REQUIRE(::stat(j.path().c_str(), &st) == 0);
        if (last_inode && st.st_ino != last_inode) ++inode_changes;
        last_inode = st.st_ino;
    }
    INFO("journals replaced by compaction while being killed: " << inode_changes);
    SUCCEED();
}

TEST_CASE("file_journal compaction never loses a record appended meanwhile", "[file_journal][compaction]")
{
    SECTION("appends, updates and removes between the copy and the switch")
    {
        temp_dir dir;
        file_journal* self = nullptr;
        model m;
        bool fired = false;
        auto o = opts(durability::per_record, 0, false);
        o.hook = [&](journal_event e) {
            if (e != journal_event::compaction_copied || fired) return;
            fired = true;
            for (int i = 0; i < 5; ++i) {
                REQUIRE(!self->save(make_action("late" + std::to_string(i))));
                m.save(make_action("late" + std::to_string(i)));
            }
            REQUIRE(!self->save(make_action("e50", 9)));  // copied, then updated
            m.save(make_action("e50", 9));
            REQUIRE(!self->remove("e60"));  // copied, then removed
            m.remove("e60");
            REQUIRE(!self->remove("late1"));  // appended, then removed
            m.remove("late1");
            REQUIRE(!self->save(make_action("late3", 2)));
            m.save(make_action("late3", 2));
        };
        std::optional<file_journal> opened;
        opened.emplace(dir.path, o);
        auto& j = *opened;
        self = &j;
        for (int i = 0; i < 100; ++i) {
            REQUIRE(!j.save(make_action("e" + std::to_string(i))));
            m.save(make_action("e" + std::to_string(i)));
        }
        for (int i = 0; i < 40; ++i) {
            REQUIRE(!j.remove("e" + std::to_string(i)));
            m.remove("e" + std::to_string(i));
        }
        const auto before = j.stats().file_bytes;
        REQUIRE(!j.compact());
        REQUIRE(fired);
        CHECK(j.stats().compactions == 1);
        CHECK(j.stats().file_bytes < before);
        CHECK(j.stats().synced_bytes == j.stats().file_bytes);
        CHECK(load(j) == m.rows);
        REQUIRE(!j.save(make_action("after")));  // appends go to the new file
        m.save(make_action("after"));
        REQUIRE(!j.remove("e70"));
        m.remove("e70");
        CHECK(load(j) == m.rows);
        self = nullptr;
        opened.reset();
        file_journal again{dir.path};
        CHECK(load(again) == m.rows);
    }

    SECTION("threads enqueue while another drains and compacts")
    {
        temp_dir dir;
        const int producers = 4, per = 400;
        std::vector<std::string> kept;
        {
            file_journal j{dir.path, opts(durability::group_commit, 32 << 10)};
            std::mutex mu;
            std::vector<std::string> queue;
            std::atomic<int> done{0}, failures{0};
            std::vector<std::thread> threads;
            for (int p = 0; p < producers; ++p)
                threads.emplace_back([&, p] {
                    for (int i = 0; i < per; ++i) {
                        auto id = "p" + std::to_string(p) + "-" + std::to_string(i);
                        if (j.save(make_action(id, 0, 200))) ++failures;
                        std::lock_guard lk(mu);
                        queue.push_back(id);
                    }
                    ++done;
                });
            auto drain_some = [&] {
                std::vector<std::string> batch;
                {
                    std::lock_guard lk(mu);
                    batch.swap(queue);
                }
                for (auto& id : batch) {
                    const int n = std::stoi(id.substr(id.find('-') + 1));
                    if (n % 10 == 0) {
                        kept.push_back(id);
                        REQUIRE(!j.save(make_action(id, 1, 200)));  // an update, as an attempt is
                    } else {
                        REQUIRE(!j.remove(id));
                    }
                }
            };
            while (done < producers) drain_some();
            for (auto& t : threads) t.join();
            drain_some();
            REQUIRE(failures == 0);
            CHECK(j.stats().compactions > 0);
            const auto got = ids_of(load(j));
            // Exactly the kept ones, each producer's in its order.
            CHECK(std::is_permutation(got.begin(), got.end(), kept.begin(), kept.end()));
            for (int p = 0; p < producers; ++p) {
                std::vector<int> seq;
                for (auto& id : got)
                    if (id.starts_with("p" + std::to_string(p) + "-"))
                        seq.push_back(std::stoi(id.substr(id.find('-') + 1)));
                CHECK(std::is_sorted(seq.begin(), seq.end()));
                CHECK(seq.size() == per / 10);
            }
            for (auto& a : load(j)) CHECK(a == make_action(a.id, 1, 200));
        }
        file_journal again{dir.path};
        const auto got = ids_of(load(again));
        CHECK(std::is_permutation(got.begin(), got.end(), kept.begin(), kept.end()));
        CHECK(again.take_diagnostics().empty());
    }
}

TEST_CASE("file_journal loads while another thread compacts", "[file_journal][compaction]")
{
    temp_dir dir;
    file_journal j{dir.path, opts(durability::none, 0, false)};
    for (int i = 0; i < 2000; ++i) REQUIRE(!j.save(make_action("x" + std::to_string(i))));
    for (int i = 0; i < 1000; ++i) REQUIRE(!j.remove("x" + std::to_string(i)));
    std::atomic<int> failures{0};
    std::thread compactor([&] {
        for (int i = 0; i < 5; ++i)
            if (j.compact()) ++failures;
    });
    for (int i = 0; i < 5; ++i) {
        const auto rows = load(j);
        REQUIRE(rows.size() == 1000);
        CHECK(rows.front() == make_action("x1000"));
        CHECK(rows.back() == make_action("x1999"));
    }
    compactor.join();
    CHECK(failures == 0);
    CHECK(j.stats().compactions == 5);
}

TEST_CASE("file_journal load_body reads the newest record: puts, batches, updates, compaction, reopen",
          "[file_journal][load_body]")
{
    temp_dir dir;
    std::map<std::string, std::string> want;
    auto check_all = [&](file_journal& j) {
        for (const auto& [id, body] : want) {
            auto b = j.load_body(id);
            REQUIRE(b.has_value());
            CHECK(*b == body);
        }
    };
    {
        file_journal j{dir.path, opts(durability::none, 0, false)};
        std::vector<sync_action> batch;
        for (int i = 0; i < 3; ++i) batch.push_back(make_action("b" + std::to_string(i), 0, 100 + i));
        batch[1].body = std::string("\x00\xff\x80 not utf-8", 13);
        REQUIRE(!j.save_batch(batch));
        std::vector<sync_action> one{make_action("single", 0, 60)};
        REQUIRE(!j.save_batch(one));  // a batch of one entry
        REQUIRE(!j.save(make_action("p", 0, 300)));
        for (const auto& a : batch) want[a.id] = a.body;
        want["single"] = one[0].body;
        want["p"] = make_action("p", 0, 300).body;
        check_all(j);
        auto updated = batch[0];
        updated.body = "updated";
        ++updated.attempts;
        REQUIRE(!j.save(updated));
        want["b0"] = "updated";
        check_all(j);
        CHECK(j.load_body("nobody").error() == errc::storage_failed);
        REQUIRE(!j.remove("b2"));
        want.erase("b2");
        CHECK(!j.load_body("b2"));
        check_all(j);
        REQUIRE(!j.compact());
        check_all(j);
    }
    file_journal j{dir.path};
    check_all(j);
}

TEST_CASE("file_journal load_body never returns a damaged body", "[file_journal][load_body]")
{
    temp_dir dir;
    file_journal j{dir.path, opts(durability::none, 0, false)};
    auto a = make_action("victim", 0, 80);
    a.body = "{\"marker\":\"MARKER-1234567890\"}";
    REQUIRE(!j.save(a));
    REQUIRE(j.load_body("victim").value() == a.body);
    // Bit rot after the journal was opened: the record's checksum no longer matches.
    const std::string bytes = read_file(dir / "syncvault.journal");
    const auto at = bytes.find("MARKER-1234567890");
    REQUIRE(at != std::string::npos);
    {
        std::fstream f(dir / "syncvault.journal", std::ios::in | std::ios::out | std::ios::binary);
        f.seekp(static_cast<std::streamoff>(at + 3));
        f.put('X');
    }
    auto b = j.load_body("victim");
    REQUIRE(!b);
    CHECK(b.error() == errc::storage_corrupt);
}

TEST_CASE("file_journal load_body while other threads update and compact", "[file_journal][load_body][compaction][thread]")
{
    temp_dir dir;
    file_journal j{dir.path, opts(durability::none, 64 << 10, true)};  // compacts often
    constexpr int ids = 50;
    auto body_of = [](int id, int version) {
        return "id" + std::to_string(id) + ":v" + std::to_string(version) + ":" + std::string(200, char('a' + id % 26));
    };
    for (int i = 0; i < ids; ++i) {
        auto a = make_action("t" + std::to_string(i));
        a.body = body_of(i, 0);
        REQUIRE(!j.save(a));
    }
    std::atomic<bool> done{false};
    std::atomic<int> errors{0}, wrong{0};
    std::thread writer([&] {
        for (int version = 1; version <= 60; ++version) {
            for (int i = 0; i < ids; ++i) {
                auto a = make_action("t" + std::to_string(i));
                a.body = body_of(i, version);
                if (j.save(a)) ++errors;
            }
            if (version % 20 == 0 && j.compact()) ++errors;
        }
        done = true;
    });
    std::vector<int> seen(ids, 0);
    while (!done) {
        for (int i = 0; i < ids; ++i) {
            auto b = j.load_body("t" + std::to_string(i));
            if (!b) {
                ++errors;
                continue;
            }
            // A body this id had, never older than one read before.
            const auto prefix = "id" + std::to_string(i) + ":v";
            const auto colon = b->find(':', prefix.size());
            if (!b->starts_with(prefix) || colon == std::string::npos) {
                ++wrong;
                continue;
            }
            const int version = std::stoi(b->substr(prefix.size(), colon - prefix.size()));
            if (version < seen[i] || *b != body_of(i, version)) ++wrong;
            seen[i] = version;
        }
    }
    writer.join();
    CHECK(errors == 0);
    CHECK(wrong == 0);
    CHECK(j.stats().compactions >= 3);
    for (int i = 0; i < ids; ++i) CHECK(j.load_body("t" + std::to_string(i)).value() == body_of(i, 60));
}

TEST_CASE("file_journal power cut loses only unsynced updates, never an acknowledged insert", "[file_journal]")
{
    for (auto mode : {durability::per_record, durability::group_commit}) {
        temp_dir dir, cut;
        INFO("mode " << int(mode));
        file_journal j{dir.path, mode};
        for (auto id : {"a", "b", "c"}) REQUIRE(!j.save(make_action(id)));
        CHECK(j.stats().synced_bytes == j.stats().file_bytes);
        REQUIRE(!j.save(make_action("a", 1)));  // lazily synced
        REQUIRE(!j.remove("b"));
        auto s = j.stats();
        CHECK(s.synced_bytes < s.file_bytes);

        // The power goes: only the synced prefix reaches the new boot.
        auto power_cut = [&] {
            const auto bytes = read_file(j.path()).substr(0, j.stats().synced_bytes);
            fs::remove_all(cut.path);
            fs::create_directories(cut.path);
            write_file(cut / "syncvault.journal", bytes);
            file_journal after{cut.path};
            CHECK(after.take_diagnostics().empty());
            return load(after);
        };
        CHECK(power_cut() == std::vector<sync_action>{make_action("a"), make_action("b"), make_action("c")});

        REQUIRE(!j.save(make_action("d")));  // an insert's sync covers what came before it
        CHECK(power_cut() == std::vector<sync_action>{make_action("a", 1), make_action("c"), make_action("d")});

        REQUIRE(!j.remove("c"));
        REQUIRE(!j.flush());
        CHECK(j.stats().synced_bytes == j.stats().file_bytes);
        CHECK(power_cut() == std::vector<sync_action>{make_action("a", 1), make_action("d")});
    }
    temp_dir dir;
    file_journal none{dir.path, durability::none};
    REQUIRE(!none.save(make_action("a")));
    CHECK(none.stats().syncs == 0);  // the documented loss window
}

TEST_CASE("file_journal group commit shares one fdatasync among concurrent inserters", "[file_journal][group_commit]")
{
    SECTION("eight inserters waiting on one leader: one sync")
    {
        temp_dir dir;
        file_journal* self = nullptr;
        std::atomic<int> hooks{0};
        auto o = opts(durability::group_commit);
        o.hook = [&](journal_event e) {
            // The first leader waits until all eight records are written, so one sync covers them.
            if (e == journal_event::before_sync && hooks++ == 0)
                while (self->count() < 8) std::this_thread::yield();
        };
        file_journal j{dir.path, o};
        self = &j;
        std::atomic<int> failures{0};
        std::vector<std::thread> threads;
        for (int t = 0; t < 8; ++t)
            threads.emplace_back([&, t] {
                if (j.save(make_action("t" + std::to_string(t)))) ++failures;
            });
        for (auto& t : threads) t.join();
        CHECK(failures == 0);
        CHECK(j.stats().syncs == 1);
        CHECK(j.stats().synced_bytes == j.stats().file_bytes);
        CHECK(j.count() == 8);
    }
    SECTION("eight threads, free running")
    {
        temp_dir dir;
        const int per = 150;
        {
            file_journal j{dir.path, durability::group_commit};
            std::atomic<int> failures{0};
            std::vector<std::thread> threads;
            for (int t = 0; t < 8; ++t)
                threads.emplace_back([&, t] {
                    for (int i = 0; i < per; ++i)
                        if (j.save(make_action("t" + std::to_string(t) + "-" + std::to_string(i)))) ++failures;
                });
            for (auto& t : threads) t.join();
            REQUIRE(failures == 0);
            CHECK(j.stats().syncs <= 8u * per);
            CHECK(j.stats().synced_bytes == j.stats().file_bytes);
            INFO("fdatasync calls for " << 8 * per << " inserts: " << j.stats().syncs);
            CHECK(j.count() == 8u * per);
        }
        file_journal j{dir.path};
        const auto got = ids_of(load(j));
        REQUIRE(got.size() == 8u * per);
        for (int t = 0; t < 8; ++t) {
            int next = 0;
            for (auto& id : got)
                if (id.starts_with("t" + std::to_string(t) + "-")) CHECK(id == "t" + std::to_string(t) + "-" + std::to_string(next++));
            CHECK(next == per);
        }
    }
    SECTION("per_record: one sync per insert")
    {
        temp_dir dir;
        file_journal j{dir.path, durability::per_record};
        std::atomic<int> failures{0};
        std::vector<std::thread> threads;
        for (int t = 0; t < 8; ++t)
            threads.emplace_back([&, t] {
                for (int i = 0; i < 10; ++i)
                    if (j.save(make_action(std::to_string(t * 100 + i)))) ++failures;
            });
        for (auto& t : threads) t.join();
        CHECK(failures == 0);
        CHECK(j.stats().syncs == 80);
    }
}

TEST_CASE("file_journal disk full (RLIMIT_FSIZE) fails cleanly and loses nothing acknowledged", "[file_journal][disk_full]")
{
    temp_dir dir;
    int fds[2];
    REQUIRE(::pipe(fds) == 0);
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        ::close(fds[0]);
        int code = 0;
        try {
            std::signal(SIGXFSZ, SIG_IGN);  // get EFBIG, not a signal
            rlimit lim{32 << 10, 32 << 10};
            if (::setrlimit(RLIMIT_FSIZE, &lim) != 0) ::_exit(10);
            file_journal j{dir.path, opts(durability::per_record, 0, false)};
            int acked = 0;
            std::error_code ec;
            for (;; ++acked) {
                ec = j.save(make_action("f" + std::to_string(acked)));
                if (ec) break;
                write_line(fds[1], "f" + std::to_string(acked));
            }
            if (ec != errc::storage_failed) code = 11;
            if (j.count() != std::size_t(acked)) code = 12;
            if (j.last_system_error() != std::errc::file_too_large) code = 13;
            // A batch that cannot fit: all or nothing.
            std::vector<sync_action> batch{make_action("b1"), make_action("b2")};
            if (j.save_batch(batch) != errc::storage_failed || j.count() != std::size_t(acked)) code = 14;
            // Updates fail the same way and change nothing.
            if (j.save(make_action("f0", 5, 4000)) != errc::storage_failed) code = 15;
            auto rows = j.load_all();
            if (!rows || rows->size() != std::size_t(acked) || (*rows)[0] != make_action("f0")) code = 16;
        } catch (...) {
            code = 17;
        }
        ::_exit(code);
    }
    ::close(fds[1]);
    std::istringstream acked(drain(fds[0]));
    ::close(fds[0]);
    const int status = wait_child(pid);
    REQUIRE(WIFEXITED(status));
    REQUIRE(WEXITSTATUS(status) == 0);

    std::vector<std::string> expected;
    for (std::string id; std::getline(acked, id);) expected.push_back(id);
    REQUIRE(expected.size() > 10);
    file_journal j{dir.path};
    CHECK(j.take_diagnostics().empty());  // no half record left to misread
    CHECK(ids_of(load(j)) == expected);
    CHECK(j.stats().file_bytes == fs::file_size(j.path()));
}

TEST_CASE("file_journal on a full tmpfs fails with storage_failed and still opens", "[file_journal][disk_full]")
{
    temp_dir dir;
    const fs::path mnt = dir / "small";
    fs::create_directories(mnt);
    if (::mount("tmpfs", mnt.c_str(), "tmpfs", 0, "size=64k,mode=0700") != 0) {
        WARN("skipped: cannot mount a small tmpfs here (" << std::strerror(errno) << ")");
        return;
    }
    struct unmount {
        fs::path p;
        ~unmount() { ::umount2(p.c_str(), MNT_DETACH); }
    } guard{mnt};

    std::vector<std::string> expected;
    {
        file_journal j{mnt, opts(durability::per_record, 8 << 10)};
        std::error_code ec;
        for (int i = 0; !ec; ++i) {
            ec = j.save(make_action("t" + std::to_string(i), 0, 300));
            if (!ec) expected.push_back("t" + std::to_string(i));
        }
        CHECK(ec == errc::storage_failed);
        CHECK(ec == std::errc::no_space_on_device);  // the cause travels with the code (SPEC 9.6)
        CHECK(j.last_system_error() == std::errc::no_space_on_device);
        CHECK(ids_of(load(j)) == expected);
        // Removing makes dead records; compaction cannot find room for its new file and must
        // leave the journal as it was.
        for (std::size_t i = 0; i + 1 < expected.size(); i += 2) {
            if (j.remove(expected[i])) break;
            expected[i].clear();
        }
        std::erase(expected, std::string{});
        CHECK(ids_of(load(j)) == expected);
    }
    file_journal j{mnt};
    CHECK(j.take_diagnostics().empty());
    CHECK(ids_of(load(j)) == expected);
    CHECK(!fs::exists(mnt / "syncvault.journal.compact"));
}

TEST_CASE("crc32c: hardware and Boost.CRC agree", "[file_journal]")
{
    CHECK(syncvault::detail::crc32c("123456789", 9) == 0xE3069283u);
    CHECK(syncvault::detail::crc32c_portable("123456789", 9) == 0xE3069283u);
    std::mt19937 rng(1);
    std::string data(1000, '\0');
    for (auto& c : data) c = char(rng());
    for (std::size_t n = 0; n < data.size(); n += 37)
        CHECK(syncvault::detail::crc32c(data.data() + 1, n) == syncvault::detail::crc32c_portable(data.data() + 1, n));
}

TEST_CASE("journal_index agrees with a map through inserts, updates, removes and sweeps", "[file_journal]")
{
    syncvault::detail::journal_index index;
    std::vector<std::pair<std::string, std::uint64_t>> order;  // the model, insertion order
    std::mt19937 rng(3);
    for (int step = 0; step < 60000; ++step) {
        const std::string id = "id" + std::to_string(rng() % 3000);
        const auto it = std::find_if(order.begin(), order.end(), [&](auto& e) { return e.first == id; });
        if (rng() % 3 == 0) {
            const bool had = it != order.end();
            REQUIRE((index.erase(id) != 0) == had);
            if (had) order.erase(it);
            if (index.sparse()) index.sweep();
        } else {
            const std::uint64_t off = std::uint64_t(step) + 1;
            const std::uint32_t old = index.put(id, off, 7);
            REQUIRE((old != 0) == (it != order.end()));
            if (it != order.end())
                it->second = off;
            else
                order.emplace_back(id, off);
        }
        if (step % 500 == 0) {
            // file_journal makes room before it appends, so that the insert after cannot fail.
            const std::size_t want = 1 + rng() % 64;
            index.make_room(want);
            REQUIRE(index.room() >= want);
        }
        if (step % 5000 == 0 || step == 59999) {
            // The live slots are the model's entries, in its order.
            std::size_t live = 0;
            for (const auto& s : index.slots()) live += s.len != 0;
            REQUIRE(live == order.size());
            REQUIRE(index.size() == order.size());
            std::size_t next = 0;
            for (const auto& [k, off] : order) {
                const std::size_t pos = index.find(k);
                REQUIRE(pos != syncvault::detail::journal_index::npos);
                REQUIRE(pos >= next);
                REQUIRE(index.slots()[pos].off == off);
                REQUIRE(index.slots()[pos].len == 7);
                next = pos + 1;
            }
        }
    }
    index.clear();
    CHECK(index.size() == 0);
    CHECK(index.find("id1") == syncvault::detail::journal_index::npos);
}

namespace {

namespace jd = syncvault::detail;

std::size_t count_asides(const fs::path& dir)
{
    std::size_t n = 0;
    for (const auto& e : fs::directory_iterator(dir))
        if (e.path().filename().string().starts_with("syncvault.journal.corrupt-")) ++n;
    return n;
}

fs::path the_aside(const fs::path& dir)
{
    for (const auto& e : fs::directory_iterator(dir))
        if (e.path().filename().string().starts_with("syncvault.journal.corrupt-")) return e.path();
    return {};
}

std::string magic() { return std::string(jd::journal_magic, jd::journal_magic_size); }

/** One record as file_journal writes it, with a correct checksum, around any bytes. */
std::string put_record(std::string_view id, std::string_view json)
{
    std::string out;
    const auto at = jd::journal_begin(out, jd::journal_op::put);
    jd::journal_append_entry(out, id, json);
    jd::journal_seal(out, at);
    return out;
}

std::string put_record(const sync_action& a) { return put_record(a.id, jd::serialize_action(a)); }

/** A record of any body (op byte included), sealed with a correct checksum. */
std::string sealed_record(std::string_view body)
{
    std::string out(jd::journal_header_size, '\0');
    out.append(body);
    jd::journal_seal(out, 0);
    return out;
}

std::string json_with(const sync_action& a, std::string_view field, boost::json::value v)
{
    auto o = jd::encode_action(a);
    o[field] = std::move(v);
    return boost::json::serialize(o);
}

} // namespace

TEST_CASE("file_journal records an attempt in 24 bytes that compaction, a reopen and a torn write keep right",
          "[file_journal][progress]")
{
    temp_dir dir;
    auto a = make_action("progress", 0, 4000);
    auto b = make_action("other", 0, 100);
    auto attempted = [](sync_action x, int status) {
        ++x.attempts;
        x.next_attempt_at += std::chrono::seconds(30);
        x.last_status = status;
        x.last_error = status ? 0 : 3;
        x.answered += status ? 1 : 0;
        return x;
    };
    const auto a1 = attempted(a, 503), a2 = attempted(a1, 0);
    std::string before_last;  // the journal's bytes before a2's record
    {
        file_journal j{dir.path, opts(durability::per_record, 1u << 30, false)};
        REQUIRE_FALSE(j.save(a));
        REQUIRE_FALSE(j.save(b));
        const auto size0 = j.stats().file_bytes;
        REQUIRE_FALSE(j.save_progress(a1));
        CHECK(j.stats().file_bytes - size0 == 8 + 1 + 2 + a.id.size() + 24);  // not the 4 KB body again
        CHECK(load(j) == std::vector<sync_action>{a1, b});
        CHECK(j.load_body(a.id).value() == a.body);
        REQUIRE_FALSE(j.flush());
        before_last = read_file(j.path());
        REQUIRE_FALSE(j.save_progress(a2));
        CHECK(load(j) == std::vector<sync_action>{a2, b});
        REQUIRE_FALSE(j.compact());
        CHECK(load(j) == std::vector<sync_action>{a2, b});
        CHECK(j.load_body(a.id).value() == a.body);
    }
    {
        file_journal j{dir.path};
        CHECK(load(j) == std::vector<sync_action>{a2, b});  // the compacted file keeps the progress
        auto edited = a2;
        edited.body = "edited";
        REQUIRE_FALSE(j.save(edited));  // a whole save supersedes the progress
        CHECK(load(j) == std::vector<sync_action>{edited, b});
        REQUIRE_FALSE(j.save_progress(attempted(edited, 500)));
        REQUIRE_FALSE(j.remove(a.id));
        CHECK(load(j) == std::vector<sync_action>{b});
        auto stray = make_action("never-saved");
        REQUIRE_FALSE(j.save_progress(stray));  // not held: saved whole
        CHECK(load(j) == std::vector<sync_action>{b, stray});
    }
    {
        file_journal j{dir.path};
        CHECK(ids_of(load(j)) == std::vector<std::string>{"other", "never-saved"});
    }
    // A torn progress record, cut at every byte: the attempt before it is what opens.
    const std::string whole = [&] {
        temp_dir d2;
        write_file(d2 / "syncvault.journal", before_last);
        file_journal j{d2.path};
        REQUIRE(load(j) == std::vector<sync_action>{a1, b});
        REQUIRE_FALSE(j.save_progress(a2));
        REQUIRE_FALSE(j.flush());
        return read_file(j.path());
    }();
    REQUIRE(whole.size() == before_last.size() + 8 + 1 + 2 + a.id.size() + 24);
    for (std::size_t cut = before_last.size(); cut <= whole.size(); ++cut) {
        temp_dir d3{scratch_base()};
        write_file(d3 / "syncvault.journal", std::string_view(whole).substr(0, cut));
        file_journal j{d3.path};
        INFO("cut at byte " << cut << " of " << whole.size());
        CHECK(load(j) == std::vector<sync_action>{cut == whole.size() ? a2 : a1, b});
    }
}

TEST_CASE("the record codec writes what the tree form writes and reads back what the tree form reads",
          "[file_journal][codec]")
{
    // serialize_action and action_reader skip the Boost.JSON tree for speed (issue 17); the tree
    // form (encode_action, decode_action) is the format's reference.
    std::mt19937 rng(17);
    auto text = [&](std::size_t max) {
        std::string s(rng() % (max + 1), '\0');
        for (auto& c : s) c = static_cast<char>(rng() % 4 ? 'a' + rng() % 26 : rng() % 256);  // escapes, any byte
        return s;
    };
    for (int i = 0; i < 500; ++i) {
        sync_action a;
        a.id = text(40);
        a.method = std::array{syncvault::http_method::post, syncvault::http_method::put, syncvault::http_method::patch,
                              syncvault::http_method::delete_}[rng() % 4];
        a.path = text(30);
        a.body = text(i % 50 == 0 ? 5000 : 300);
        for (std::size_t h = rng() % 4; h > 0; --h) a.headers.push_back({text(10), text(20)});
        a.idempotency_key = text(36);
        a.attempts = static_cast<int>(rng() % 100);
        a.sequence = i == 7 ? std::uint64_t(-1) : (std::uint64_t{rng()} << 31) ^ rng();  // one past INT64_MAX
        a.state = rng() % 2 ? syncvault::action_state::dead : syncvault::action_state::pending;
        a.created_at = jd::from_epoch_ms(std::int64_t(rng()) * 1000 - 1'000'000'000);
        a.next_attempt_at = jd::from_epoch_ms(std::int64_t(rng()) * 700);
        a.last_status = static_cast<int>(rng() % 600) - 1;
        a.last_error = static_cast<int>(rng() % 40);
        if (rng() % 2) a.lane = text(8);
        if (rng() % 2) a.coalesce_key = text(8);
        for (std::size_t k = rng() % 3; k > 0; --k) a.after.push_back(text(36));
        a.answered = static_cast<int>(rng() % 3);

        const std::string written = jd::serialize_action(a);
        REQUIRE(written == boost::json::serialize(jd::encode_action(a)));
        if (i == 7) {  // a sequence no record can hold: refused on reading, as by the tree form
            CHECK_FALSE(jd::parse_action(written).has_value());
            continue;
        }
        auto back = jd::parse_action(written);
        REQUIRE(back.has_value());
        CHECK(jd::serialize_action(*back) == written);  // equal up to the millisecond the format keeps
        CHECK(back->body == a.body);
        CHECK(back->headers == a.headers);
        CHECK(back->after == a.after);
        auto body = jd::parse_body(written, a.id);
        REQUIRE(body.has_value());
        CHECK(*body == a.body);
        CHECK_FALSE(jd::parse_body(written, a.id + "x").has_value());
    }
}

TEST_CASE("the record reader refuses exactly what the tree form refuses", "[file_journal][codec]")
{
    sync_action a;
    a.id = "id-1";
    a.path = "/todos";
    a.body = "{}";
    a.headers = {{"Content-Type", "application/json"}};
    a.idempotency_key = "k";
    a.after = {"p"};
    const auto tree = jd::encode_action(a);
    auto agree = [](const std::string& text) {
        INFO(text);
        boost::json::parse_options po;
        po.allow_invalid_utf8 = true;
        boost::system::error_code ec;
        const auto v = boost::json::parse(text, ec, {}, po);
        const auto by_tree = ec ? syncvault::result<sync_action>(make_error_code(errc::storage_corrupt)) : jd::decode_action(v);
        const auto by_reader = jd::parse_action(text);
        REQUIRE(bool(by_tree) == bool(by_reader));
        if (by_tree) CHECK(*by_tree == *by_reader);
        return bool(by_reader);
    };
    CHECK(agree(boost::json::serialize(tree)));
    const std::vector<boost::json::value> values = {nullptr, true, -1, 7, 1.5, "s", boost::json::array{},
                                                    boost::json::array{"a", "b"}, boost::json::array{boost::json::array{"a", "b"}},
                                                    boost::json::array{boost::json::array{"a"}}, boost::json::object{{"x", 1}},
                                                    std::uint64_t(-1), 9'000'000'000'001, INT64_MIN};
    for (const auto& [name, _] : tree) {
        auto without = tree;
        without.erase(name);
        CHECK_FALSE(agree(boost::json::serialize(without)) != (name == "after"));
        for (const auto& v : values) {
            auto o = tree;
            o[name] = v;
            (void)agree(boost::json::serialize(o));
        }
    }
    for (std::string_view extra : {"lane", "coalesce", "answered", "unknown"})
        for (const auto& v : values) {
            auto o = tree;
            o[extra] = v;
            (void)agree(boost::json::serialize(o));
        }
    // Repeated fields: the last counts, well-typed or not.
    const std::string s = boost::json::serialize(tree);
    CHECK(agree(s.substr(0, s.size() - 1) + R"(,"path":"/other"})"));
    CHECK_FALSE(agree(s.substr(0, s.size() - 1) + R"(,"path":3})"));
    CHECK(agree(R"({"path":3,)" + s.substr(1)));
    for (const std::string& bad : std::vector<std::string>{"", "[]", "3", "{", s + "x", s + " {}", "{\"id\":\"a\"} "})
        (void)agree(bad);
    CHECK(agree(" " + s + " \n"));
}

TEST_CASE("file_journal writes bodies raw beside the record and reads journals with bodies in the JSON",
          "[file_journal][load_body][codec]")
{
    // Before issue 17's raw bodies every entry held its body as a JSON string: such a journal
    // opens, loads and reads bodies back as before, and what is saved from then on is raw.
    auto old = make_action("old", 1, 50);
    old.body = "{\"note\":\"quoted \\\"text\\\"\"}";
    auto fresh = make_action("fresh", 0, 10);
    constexpr char awkward[] = "\"quotes\", a backslash \\, NUL \0, invalid UTF-8 \xff\xfe";
    fresh.body.assign(awkward, sizeof awkward - 1);  // the NUL inside included
    temp_dir dir;
    write_file(dir / "syncvault.journal", magic() + put_record(old));
    {
        file_journal j{dir.path};
        CHECK(load(j) == std::vector<sync_action>{old});
        CHECK(j.load_body("old").value() == old.body);
        REQUIRE(!j.save(fresh));
        CHECK(j.load_body("fresh").value() == fresh.body);
        // The bytes as they are in the file, not escaped as a JSON string.
        const std::string bytes = read_file(dir / "syncvault.journal");
        CHECK(bytes.find(fresh.body) != std::string::npos);
        CHECK(bytes.find(jd::serialize_action(fresh, jd::record_body::beside)) != std::string::npos);
        CHECK(bytes.find(jd::serialize_action(fresh)) == std::string::npos);
        ++old.attempts;
        old.body = "updated";
        REQUIRE(!j.save(old));  // the update is raw too
        CHECK(j.load_body("old").value() == "updated");
        CHECK(load(j) == std::vector<sync_action>{old, fresh});
    }
    {
        file_journal j{dir.path};
        CHECK(load(j) == std::vector<sync_action>{old, fresh});
        CHECK(j.take_diagnostics().empty());
        REQUIRE(!j.compact());
        CHECK(load(j) == std::vector<sync_action>{old, fresh});
        CHECK(j.load_body("fresh").value() == fresh.body);
    }
    file_journal j{dir.path};
    CHECK(load(j) == std::vector<sync_action>{old, fresh});
}

TEST_CASE("file_journal truncates a torn final record silently, whatever byte of it is damaged",
          "[file_journal][recovery]")
{
    // 8 records end with a put, 6 with a remove, 7 with a batch (see recorded_journal).
    for (int records : {8, 6, 7}) {
        temp_dir src{scratch_base()}, dst{scratch_base()};
        const recorded_journal rec{src.path, records};
        const std::string bytes = read_file(src / "syncvault.journal");
        const std::size_t last = rec.ends.size() - 1;
        const std::uint64_t from = rec.ends[last - 1], to = rec.ends[last];
        REQUIRE(to == bytes.size());
        INFO("final record at bytes " << from << ".." << to << " of a journal of " << records << " records");
        std::size_t opened = 0;
        auto expect_torn = [&](const std::string& damaged, const std::string& what) {
            fs::remove_all(dst.path);
            fs::create_directories(dst.path);
            write_file(dst / "syncvault.journal", damaged);
            file_journal j{dst.path, durability::none};
            ++opened;
            if (load(j) != rec.states[last - 1]) FAIL_CHECK(what << ": did not recover the records before it");
            if (!j.take_diagnostics().empty()) FAIL_CHECK(what << ": reported as damage");
            if (j.stats().file_bytes != from) FAIL_CHECK(what << ": the torn record was not truncated");
            if (count_asides(dst.path) != 0) FAIL_CHECK(what << ": the journal was set aside");
        };
        for (std::uint64_t at = from; at < to; ++at)
            for (int x : {0x01, 0x80, 0xff}) {
                std::string damaged = bytes;
                damaged[at] = char(damaged[at] ^ x);
                expect_torn(damaged, "byte " + std::to_string(at) + " xor " + std::to_string(x));
            }
        // Half of it on the disk: zeros from where the write stopped landing.
        for (std::uint64_t at = from; at < to; at += 5) {
            std::string damaged = bytes;
            std::fill(damaged.begin() + std::ptrdiff_t(at), damaged.end(), '\0');
            expect_torn(damaged, "zeros from byte " + std::to_string(at));
        }
        // The file grew, none of the record's data landed.
        expect_torn(bytes.substr(0, from) + std::string(to - from, '\0'), "all zeros");
        CHECK(opened == 3 * (to - from) + (to - from + 4) / 5 + 1);
        // What was truncated stays truncated and appendable.
        file_journal j{dst.path};
        REQUIRE(!j.save(make_action("after")));
        CHECK(load(j).back().id == "after");
    }
}

TEST_CASE("file_journal reports damage at every byte of a record that a whole record follows",
          "[file_journal][recovery]")
{
    temp_dir src{scratch_base()};
    const recorded_journal rec{src.path, 8};
    const std::string bytes = read_file(src / "syncvault.journal");
    const std::size_t last = rec.ends.size() - 1;
    const std::uint64_t from = rec.ends[last - 2], to = rec.ends[last - 1];  // the one before the last
    for (std::uint64_t at = from; at < to; ++at) {
        temp_dir dst{scratch_base()};
        std::string damaged = bytes;
        damaged[at] = char(damaged[at] ^ 0x01);
        write_file(dst / "syncvault.journal", damaged);
        INFO("byte " << at << " of the record at " << from << ".." << to);
        file_journal j{dst.path, durability::none};
        CHECK(load(j) == rec.states[last - 2]);
        const auto diags = j.take_diagnostics();
        REQUIRE(diags.size() == 1);
        CHECK(diags[0].error == errc::storage_corrupt);
        REQUIRE(count_asides(dst.path) == 1);
        CHECK(read_file(the_aside(dst.path)) == damaged);
    }
}

TEST_CASE("file_journal sets aside a record that passes its checksum but cannot be decoded, keeping every other",
          "[file_journal][recovery]")
{
    const auto a = make_action("a"), b = make_action("b"), c = make_action("c"), d = make_action("d");
    auto x = make_action("x");
    x.lane = "l\xc3\xa4ne";
    const auto y = make_action("y");
    std::string bad;       // the record(s) between b and c
    std::string named;     // what the report must name
    std::vector<sync_action> kept = {a, b, c, d};
    SECTION("a field of the wrong type")
    {
        bad = put_record("x", json_with(x, "status", "503"));
        named = "\"x\"";
    }
    SECTION("a 0.2 field of the wrong type")
    {
        bad = put_record("x", json_with(x, "after", 7));
        named = "\"x\"";
    }
    SECTION("an out-of-range count")
    {
        bad = put_record("x", json_with(x, "answered", -1));
        named = "\"x\"";
    }
    SECTION("not JSON")
    {
        bad = put_record("x", "{\"id\":\"x\",\"method\":");
        named = "\"x\"";
    }
    SECTION("JSON filed under another id")
    {
        bad = put_record("x", jd::serialize_action(y));
        named = "\"x\"";
    }
    SECTION("one entry of a batch")
    {
        std::string rec;
        const auto at = jd::journal_begin(rec, jd::journal_op::batch);
        jd::journal_append_entry(rec, "y", jd::serialize_action(y));
        jd::journal_append_entry(rec, "x", "[]");
        jd::journal_seal(rec, at);
        bad = rec;
        named = "\"x\"";
        kept = {a, b, y, c, d};
    }
    SECTION("an update that cannot be decoded falls back to the version before it, in its place")
    {
        auto b2 = make_action("b", 2);
        bad = put_record("b", json_with(b2, "attempts", "two"));
        named = "\"b\" at byte " + std::to_string(jd::journal_magic_size + put_record(a).size() + put_record(b).size() +
                                                  jd::journal_header_size + 1) +
                " (a field is missing or mistyped), which fell back to its previous version";
        CHECK(kept[1] == make_action("b"));
    }
    SECTION("no fallback to a version that was removed")
    {
        bad = sealed_record(std::string(1, char(jd::journal_op::remove)) + "b") +
              put_record("b", json_with(make_action("b", 2), "dead", 1));
        named = "\"b\"";
        kept = {a, c, d};
    }
    SECTION("an entry whose lengths do not fit its record (found on open)")
    {
        std::string body(1, char(jd::journal_op::put));
        body += std::string("\x01\x00x\xe8\x03\x00\x00{}", 9);  // id "x", then JSON of 1000 bytes
        bad = sealed_record(body);
        named = "byte " + std::to_string(jd::journal_magic_size + put_record(a).size() + put_record(b).size());
    }
    SECTION("a raw-body entry whose JSON holds a body too")
    {
        std::string rec;
        const auto at = jd::journal_begin(rec, jd::journal_op::put);
        jd::journal_append_raw_entry(rec, "x", jd::serialize_action(x), "beside");
        jd::journal_seal(rec, at);
        bad = rec;
        named = "\"x\"";
    }
    SECTION("a raw-body entry whose body runs past its record (found on open)")
    {
        std::string rec;
        const auto at = jd::journal_begin(rec, jd::journal_op::put);
        jd::journal_append_raw_entry(rec, "x", jd::serialize_action(x, jd::record_body::beside), "body");
        rec.resize(rec.size() - 1);  // the body's length says 4, 3 bytes follow
        jd::journal_seal(rec, at);
        bad = rec;
        named = "byte " + std::to_string(jd::journal_magic_size + put_record(a).size() + put_record(b).size());
    }
    SECTION("an unknown operation (found on open)")
    {
        bad = sealed_record("\x09 from a newer version?");
        named = "cannot be decoded";
    }
    SECTION("a progress record of the wrong size (found on open)")
    {
        bad = sealed_record(std::string(1, char(jd::journal_op::progress)) + std::string("\x01\x00x", 3) + "short");
        named = "cannot be decoded";
    }
    SECTION("a progress record with a negative attempt count (found on open)")
    {
        std::string body(1, char(jd::journal_op::progress));
        jd::journal_append_progress(body, "x", {-1, 0, 0, 0, 0});
        bad = sealed_record(body);
        named = "cannot be decoded";
    }
    SECTION("a clear with a payload (found on open)")
    {
        bad = sealed_record(std::string(1, char(jd::journal_op::clear)) + "junk");
        named = "cannot be decoded";
    }
    temp_dir dir;
    const std::string bytes = magic() + put_record(a) + put_record(b) + bad + put_record(c) + put_record(d);
    write_file(dir / "syncvault.journal", bytes);
    {
        file_journal j{dir.path};  // never throws for it
        CHECK(ids_of(load(j)) == ids_of(kept));
        const auto diags = j.take_diagnostics();
        REQUIRE(diags.size() == 1);
        CHECK(diags[0].error == errc::storage_corrupt);
        CHECK_THAT(diags[0].message, Catch::Contains(named) && Catch::Contains(j.path().string()) &&
                                         Catch::Contains("every other record"));
        REQUIRE(count_asides(dir.path) == 1);
        CHECK_THAT(diags[0].message, Catch::Contains(the_aside(dir.path).string()));
        CHECK(read_file(the_aside(dir.path)) == bytes);  // the evidence, byte for byte
        CHECK(j.count() == kept.size());
        CHECK(load(j) == kept);  // set aside once
        CHECK(j.take_diagnostics().empty());
        REQUIRE(!j.save(make_action("e")));
        REQUIRE(!j.save(x));  // the id is free again
    }
    kept.push_back(make_action("e"));
    kept.push_back(x);
    file_journal again{dir.path};
    CHECK(load(again) == kept);
    CHECK(again.take_diagnostics().empty());
    CHECK(count_asides(dir.path) == 1);
}

TEST_CASE("file_journal sets aside an undecodable record while other threads write", "[file_journal][recovery]")
{
    temp_dir dir;
    std::string bytes = magic();
    for (int i = 0; i < 200; ++i) bytes += put_record(make_action("p" + std::to_string(i)));
    bytes += put_record("bad", "{}");
    write_file(dir / "syncvault.journal", bytes);
    file_journal j{dir.path, opts(durability::none, 0)};  // compacts at every chance
    std::atomic<bool> stop{false};
    std::thread writer([&] {
        for (int i = 0; !stop; ++i) {
            (void)j.save(make_action("w" + std::to_string(i % 50), i));
            (void)j.remove("w" + std::to_string((i + 25) % 50));
        }
    });
    auto first = load(j);
    stop = true;
    writer.join();
    CHECK(std::none_of(first.begin(), first.end(), [](auto& a) { return a.id == "bad"; }));
    CHECK(j.take_diagnostics().size() == 1);
    const auto rows = load(j);
    CHECK(std::count_if(rows.begin(), rows.end(), [](auto& a) { return a.id[0] == 'p'; }) == 200);
    CHECK(j.take_diagnostics().empty());
}

TEST_CASE("a vault over a journal with an undecodable record starts, reports it and sends the rest",
          "[file_journal][recovery][vault]")
{
    using journal_vault = syncvault::basic_vault<syncvault::testing::fake_transport, file_journal,
                                                 syncvault::manual_connectivity, syncvault::jittered_backoff,
                                                 syncvault::testing::fake_clock>;
    temp_dir dir;
    auto good = make_action("good");
    good.method = syncvault::http_method::post;
    good.path = "/jobs";
    auto broken = make_action("broken");
    write_file(dir / "syncvault.journal",
               magic() + put_record("broken", json_with(broken, "method", "FETCH")) + put_record(good));
    syncvault::vault_config cfg;
    cfg.base_url = "http://example.test/api";
    cfg.storage_path = dir.path;
    std::vector<syncvault::diagnostic> seen;
    cfg.on_diagnostic = [&](const syncvault::diagnostic& d) { seen.push_back(d); };
    syncvault::testing::fake_transport net;
    journal_vault v{cfg, net};  // before the fix: load_all failed and this threw
    REQUIRE(seen.size() == 1);
    CHECK(seen[0].error == errc::storage_corrupt);
    CHECK_THAT(seen[0].message, Catch::Contains("\"broken\""));
    CHECK(v.diagnostics().size() == 1);
    CHECK(v.pending_count() == 1);
    CHECK(v.process_queue() == 1);
    REQUIRE(net.requests().size() == 1);
    CHECK(net.requests()[0].url == "http://example.test/api/jobs");
}

TEST_CASE("file_journal flush() after clear() or remove() makes them survive a power cut", "[file_journal][power_cut]")
{
    for (auto mode : {durability::per_record, durability::group_commit, durability::none}) {
        for (bool compacting : {false, true}) {
            temp_dir dir, cut;
            INFO("mode " << int(mode) << (compacting ? ", compacting" : ""));
            file_journal j{dir.path, opts(mode, compacting ? 0 : std::uint64_t{4} << 20, compacting)};
            // Only the synced prefix reaches the next boot.
            auto power_cut = [&] {
                const auto bytes = read_file(j.path()).substr(0, j.stats().synced_bytes);
                fs::remove_all(cut.path);
                fs::create_directories(cut.path);
                write_file(cut / "syncvault.journal", bytes);
                file_journal after{cut.path};
                CHECK(after.take_diagnostics().empty());
                return ids_of(load(after));
            };
            for (auto id : {"a", "b", "c", "d"}) REQUIRE(!j.save(make_action(id)));
            REQUIRE(!j.flush());
            CHECK(power_cut() == std::vector<std::string>{"a", "b", "c", "d"});

            REQUIRE(!j.remove("b"));  // a dead letter dropped: the vault flushes after it
            REQUIRE(!j.flush());
            CHECK(j.stats().synced_bytes == j.stats().file_bytes);
            CHECK(power_cut() == std::vector<std::string>{"a", "c", "d"});

            REQUIRE(!j.clear());
            if (!compacting) {
                CHECK(j.stats().synced_bytes < j.stats().file_bytes);  // lazy until flushed
                CHECK(power_cut() == std::vector<std::string>{"a", "c", "d"});
            }
            REQUIRE(!j.flush());
            CHECK(j.stats().synced_bytes == j.stats().file_bytes);
            CHECK(power_cut().empty());  // nothing cleared comes back

            // And the journal goes on from the cleared state.
            REQUIRE(!j.save(make_action("e")));
            REQUIRE(!j.flush());
            CHECK(power_cut() == std::vector<std::string>{"e"});
            CHECK(ids_of(load(j)) == std::vector<std::string>{"e"});
        }
    }
}

TEST_CASE("file_journal clear() and flush() during a compaction survive a power cut", "[file_journal][power_cut][compaction]")
{
    temp_dir dir, cut;
    file_journal* self = nullptr;
    bool fired = false;
    auto o = opts(durability::per_record, 0, false);
    o.hook = [&](journal_event e) {
        if (e != journal_event::compaction_copied || fired) return;
        fired = true;  // the live records are copied; the switch comes next
        REQUIRE(!self->clear());
        REQUIRE(!self->flush());
    };
    file_journal j{dir.path, o};
    self = &j;
    for (int i = 0; i < 50; ++i) REQUIRE(!j.save(make_action("c" + std::to_string(i))));
    for (int i = 0; i < 10; ++i) REQUIRE(!j.remove("c" + std::to_string(i)));
    REQUIRE(!j.compact());
    REQUIRE(fired);
    CHECK(j.count() == 0);
    CHECK(j.stats().synced_bytes == j.stats().file_bytes);
    const auto bytes = read_file(j.path()).substr(0, j.stats().synced_bytes);
    write_file(cut / "syncvault.journal", bytes);
    file_journal after{cut.path};
    CHECK(load(after).empty());
    CHECK(after.take_diagnostics().empty());
}

// ---- SPEC 9.4: a chain created offline survives a crash or a power cut at every write -----------

namespace {

/** The todo API as a transport: it assigns ids (from 41) and honours idempotency keys. A handle. */
class todo_api {
public:
    struct change {
        std::string method, path, body;
    };

    todo_api() : s_(std::make_shared<state>()) {}

    syncvault::result<syncvault::http_response> send(const syncvault::http_request& r)
    {
        std::lock_guard lock(s_->mutex);
        if (s_->unreachable) return syncvault::result<syncvault::http_response>{make_error_code(errc::connection_failed)};
        s_->seen.push_back(r);
        const auto key = syncvault::find_header(r.headers, "Idempotency-Key");
        if (key)
            if (auto it = s_->answered.find(std::string(*key)); it != s_->answered.end()) return it->second;
        auto res = apply(r);
        if (key) s_->answered.emplace(std::string(*key), res);
        return res;
    }

    /** While set, nothing reaches the server (a dead process sends nothing). */
    void set_unreachable(bool on)
    {
        std::lock_guard lock(s_->mutex);
        s_->unreachable = on;
    }
    std::vector<syncvault::http_request> seen() const
    {
        std::lock_guard lock(s_->mutex);
        return s_->seen;
    }
    std::vector<change> applied() const
    {
        std::lock_guard lock(s_->mutex);
        return s_->applied;
    }
    std::map<std::int64_t, boost::json::object> items() const
    {
        std::lock_guard lock(s_->mutex);
        return s_->items;
    }

    static constexpr std::string_view base_url = "http://todo.test";

private:
    struct state {
        mutable std::mutex mutex;
        bool unreachable = false;
        std::vector<syncvault::http_request> seen;
        std::map<std::string, syncvault::http_response> answered;  // idempotency key -> first answer
        std::map<std::int64_t, boost::json::object> items;
        std::vector<change> applied;
        std::int64_t next_id = 41;
    };

    syncvault::http_response apply(const syncvault::http_request& r)
    {
        const auto path = r.url.substr(base_url.size());
        boost::system::error_code ec;
        auto body = boost::json::parse(r.body, ec);
        if (ec || !body.is_object()) return {400, {}, "want a JSON object"};
        if (r.method == syncvault::http_method::post && path == "/todos") {
            const auto id = s_->next_id++;
            auto& item = s_->items[id];
            item = body.get_object();
            item["id"] = id;
            item["done"] = false;
            s_->applied.push_back({"POST", path, r.body});
            return {201, {{"Content-Type", "application/json"}}, boost::json::serialize(item)};
        }
        constexpr std::string_view prefix = "/todos/";
        std::int64_t id = -1;
        if (path.starts_with(prefix) && path.size() > prefix.size() &&
            path.find_first_not_of("0123456789", prefix.size()) == std::string::npos)
            id = std::stoll(path.substr(prefix.size()));
        const auto it = s_->items.find(id);
        if (r.method != syncvault::http_method::patch || it == s_->items.end()) return {404, {}, "no such item"};
        for (const auto& [k, v] : body.get_object()) it->second[k] = v;
        s_->applied.push_back({"PATCH", path, r.body});
        return {200, {{"Content-Type", "application/json"}}, boost::json::serialize(it->second)};
    }

    std::shared_ptr<state> s_;
};

/** Where and how the process dies: shared by the storage wrapper and the test. */
struct crash_plan {
    int crash_after = -1;        ///< writes that complete before the process dies; -1: it never does
    bool before_next = false;    ///< false: it dies right after that write; true: at the next write,
                                 ///< so what it did meanwhile (a send...) happened
    bool throws = false;         ///< refused writes throw instead of returning an error
    todo_api api;                ///< made unreachable when the process dies
    int writes = 0;
    bool dead = false;
    std::uint64_t synced_at_death = 0;
    std::vector<std::uint64_t> ends;  ///< journal length after each write: the records' boundaries
};

/** file_journal, until the process "dies": from then on every write and sync is refused. */
class crashing_journal {
public:
    crashing_journal() = default;  // basic_vault's constructor names it; the tests always pass one
    crashing_journal(file_journal j, std::shared_ptr<crash_plan> plan) : j_(std::move(j)), plan_(std::move(plan)) {}

    std::error_code save(const sync_action& a)
    {
        return write([&] { return j_->save(a); });
    }
    std::error_code save_batch(std::span<const sync_action> batch)
    {
        return write([&] { return j_->save_batch(batch); });
    }
    std::error_code remove(std::string_view id)
    {
        return write([&] { return j_->remove(id); });
    }
    std::error_code clear()
    {
        return write([&] { return j_->clear(); });
    }
    std::error_code flush() { return plan_->dead ? refused() : j_->flush(); }
    syncvault::result<std::vector<sync_action>> load_all() { return j_->load_all(); }
    std::size_t count() const { return j_->count(); }
    std::vector<syncvault::diagnostic> take_diagnostics() { return j_->take_diagnostics(); }

private:
    template <class Write>
    std::error_code write(Write w)
    {
        auto& p = *plan_;
        if (!p.dead && p.before_next && p.writes == p.crash_after) die();
        if (p.dead) return refused();
        auto ec = w();
        ++p.writes;
        p.ends.push_back(j_->stats().file_bytes);
        if (!p.before_next && p.writes == p.crash_after) die();
        return ec;
    }
    void die()
    {
        plan_->dead = true;
        plan_->synced_at_death = j_->stats().synced_bytes;
        plan_->api.set_unreachable(true);
    }
    std::error_code refused() const
    {
        if (plan_->throws) throw std::runtime_error("simulated crash: the process is gone");
        return make_error_code(errc::storage_failed);
    }

    std::optional<file_journal> j_;
    std::shared_ptr<crash_plan> plan_;
};

static_assert(syncvault::storage<crashing_journal> && syncvault::batch_storage<crashing_journal> &&
              syncvault::flushable_storage<crashing_journal>);

using chain_vault = syncvault::basic_vault<todo_api, crashing_journal, syncvault::manual_connectivity,
                                           syncvault::jittered_backoff, syncvault::testing::fake_clock>;

chain_vault open_chain_vault(const fs::path& dir, std::shared_ptr<crash_plan> plan, bool online)
{
    syncvault::vault_config cfg;
    cfg.base_url = std::string(todo_api::base_url);
    cfg.storage_path = dir;
    auto api = plan->api;
    file_journal journal{dir, durability::per_record};
    return chain_vault(cfg, std::move(api), crashing_journal(std::move(journal), std::move(plan)),
                       syncvault::manual_connectivity(online),
                       syncvault::jittered_backoff({.kind = syncvault::jittered_backoff::jitter::none, .seed = 1}));
}

syncvault::request_options key(std::string k)
{
    syncvault::request_options o;
    o.idempotency_key = std::move(k);
    return o;
}

/** What the app was told before the process died. */
struct acknowledged {
    bool create = false, patch = false;
};

/** Drains until nothing is pending (or the process dies); bounded. */
void drain_chain(chain_vault& v, const crash_plan& plan)
{
    for (int i = 0; i < 20 && v.pending_count() > 0 && !plan.dead; ++i) {
        v.process_queue();
        v.clock().advance(std::chrono::minutes(10));  // past any backoff
    }
}

/** Offline: POST /todos, then PATCH /todos/<its id>; online: drain. Stops where the process dies. */
acknowledged run_chain(const fs::path& dir, const std::shared_ptr<crash_plan>& plan)
{
    acknowledged ack;
    auto v = open_chain_vault(dir, plan, false);
    auto created = v.post("/todos", boost::json::object{{"text", "milk"}}, key("create"));
    ack.create = created.is_queued();
    if (plan->dead) return ack;
    REQUIRE(ack.create);
    const auto id = syncvault::response_ref(created.action_id(), "/id");
    ack.patch = v.patch("/todos/" + id, boost::json::object{{"done", true}, {"parent", id}}, key("done")).is_queued();
    if (plan->dead) return ack;
    REQUIRE(ack.patch);
    v.connectivity().set_online(true);
    drain_chain(v, *plan);
    return ack;
}

} // namespace

TEST_CASE("a chain created offline replays with the server's id after a crash or a power cut at any write",
          "[file_journal][vault][chain][power_cut]")
{
    // A run without a crash: how many writes there are to crash at.
    int total_writes = 0;
    {
        temp_dir dir(scratch_base());
        auto plan = std::make_shared<crash_plan>();
        const auto ack = run_chain(dir.path, plan);
        REQUIRE((ack.create && ack.patch));
        total_writes = plan->writes;
        const auto applied = plan->api.applied();
        REQUIRE(applied.size() == 2);
        CHECK(applied[1].path == "/todos/41");
    }
    REQUIRE(total_writes >= 4);  // two inserts, and the drain's own writes

    int crashes = 0, power_cuts = 0;
    // Death right after write k (k = 1..total), or at write k + 1 (k = 0..total - 1), so what the
    // process did between the two (a send whose answer the crash loses) happened.
    for (int k = 0; k <= total_writes; ++k)
        for (bool before_next : {false, true})
            for (bool throws : {false, true}) {
                if ((k == 0 && !before_next) || (k == total_writes && before_next)) continue;
                // A power cut keeps some prefix of the journal at least as long as what was
                // synced: try each record boundary (the last one: a crash without a power cut).
                std::size_t cuts = 1;
                for (std::size_t cut = 0; cut < cuts; ++cut) {
                    temp_dir dir(scratch_base());
                    auto plan = std::make_shared<crash_plan>();
                    plan->crash_after = k;
                    plan->before_next = before_next;
                    plan->throws = throws;
                    const auto ack = run_chain(dir.path, plan);  // the vault is destroyed: the process ends
                    REQUIRE(plan->dead);

                    std::vector<std::uint64_t> lengths{plan->synced_at_death};
                    for (auto e : plan->ends)
                        if (e > plan->synced_at_death) lengths.push_back(e);
                    if (cut == 0) cuts = lengths.size();
                    REQUIRE(lengths.size() == cuts);  // the runs are deterministic
                    const auto length = lengths[lengths.size() - 1 - cut];  // the whole journal first
                    const bool power_cut = cut > 0;
                    ++(power_cut ? power_cuts : crashes);
                    INFO("crash " << (before_next ? "before write " : "after write ") << (before_next ? k + 1 : k)
                                  << " of " << total_writes << (throws ? " (writes throw)" : "")
                                  << (power_cut ? ", power cut to " + std::to_string(length) + " bytes" : ""));
                    const auto journal = dir / std::string(file_journal::file_name);
                    REQUIRE(fs::file_size(journal) >= length);
                    fs::resize_file(journal, length);

                    // A new process over the same directory, online, drains what survived.
                    auto fresh = std::make_shared<crash_plan>();
                    fresh->api = plan->api;  // the same server
                    fresh->api.set_unreachable(false);
                    {
                        auto v = open_chain_vault(dir.path, fresh, true);
                        CHECK(v.diagnostics().empty());  // a cut tail is not damage
                        drain_chain(v, *fresh);
                        CHECK(v.pending_count() == 0);
                        CHECK(v.dead_letters().empty());
                    }

                    const auto applied = fresh->api.applied();
                    const auto items = fresh->api.items();
                    for (const auto& r : fresh->api.seen()) {
                        INFO(syncvault::to_string(r.method) << " " << r.url << " " << r.body);
                        CHECK(r.url.find("~svref:") == std::string::npos);  // never a placeholder on the wire
                        CHECK(r.body.find("~svref:") == std::string::npos);
                    }
                    const auto posts = std::count_if(applied.begin(), applied.end(), [](auto& c) { return c.method == "POST"; });
                    const auto patches = std::count_if(applied.begin(), applied.end(), [](auto& c) { return c.method == "PATCH"; });
                    CHECK(posts <= 1);  // the idempotency key: a re-sent POST creates nothing new
                    CHECK(patches <= 1);
                    if (ack.create) CHECK(posts == 1);    // acknowledged: never lost
                    if (ack.patch) CHECK(patches == 1);
                    CHECK(items.size() == std::size_t(posts));
                    if (patches == 1) {
                        REQUIRE(items.size() == 1);
                        const auto& [id, item] = *items.begin();
                        const auto patch = std::find_if(applied.begin(), applied.end(), [](auto& c) { return c.method == "PATCH"; });
                        CHECK(patch->path == "/todos/" + std::to_string(id));  // the id the server assigned
                        CHECK(item.at("done") == true);
                        CHECK(item.at("parent") == id);  // a whole-string placeholder: the number itself
                    }
                }
            }
    CHECK(crashes == 4 * total_writes);  // each write, two ways to die at it, two ways to refuse
    CHECK(power_cuts > total_writes);  // the drain's writes are synced lazily: many prefixes to keep
}
