// file_journal on the Win32 file layer (detail/file_layer_win32.hpp), run under Wine in CI: the
// durability tests of tests/storage/file_journal_tests.cpp that use fork and kill there, with
// CreateProcess and TerminateProcess here (a writer killed at random moments, the lock held by
// another process), a journal cut at every byte, damage set aside, compaction replacing a file
// that readers still have open, and the owner-only DACL.

#include <syncvault/storage/file_journal.hpp>

#include "child_process.hpp"
#include "storage/temp_dir.hpp"

#include <catch2/catch.hpp>

#include <aclapi.h>
#include <sddl.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace fs = std::filesystem;
using syncvault::durability;
using syncvault::errc;
using syncvault::file_journal;
using syncvault::file_journal_options;
using syncvault::sync_action;
using syncvault_tests::temp_dir;
using syncvault_windows_tests::child_process;
using syncvault_windows_tests::write_line;

namespace {

sync_action make_action(const std::string& id, int attempts = 0)
{
    sync_action a;
    a.id = id;
    a.method = syncvault::http_method::patch;
    a.path = "/jobs/" + id + "?q=caf\xc3\xa9";
    a.body = "{\"v\":\"" + std::string(20 + id.size() % 7, char('a' + id.size() % 26)) + "\"}";
    a.headers = {{"Content-Type", "application/json"}, {"X-Trace", id}};
    a.idempotency_key = "key-" + id;
    a.attempts = attempts;
    a.created_at = std::chrono::system_clock::time_point{std::chrono::milliseconds{1767225600000}};
    a.next_attempt_at = a.created_at + std::chrono::seconds{attempts};
    a.last_status = attempts ? 503 : 0;
    return a;
}

file_journal_options opts(durability mode, std::uint64_t floor, bool autoc = true)
{
    file_journal_options o;
    o.mode = mode;
    o.compaction_floor = floor;
    o.auto_compact = autoc;
    return o;
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

/** Insertion order, updates in place: what a journal must agree with. */
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

/** A journal of whole records, with the file length and the stored set after each record. */
struct recorded_journal {
    std::vector<std::uint64_t> ends;
    std::vector<std::vector<sync_action>> states;

    recorded_journal(const fs::path& dir, int records)
    {
        file_journal j{dir, durability::none};
        model m;
        auto mark = [&] {
            ends.push_back(j.stats().file_bytes);
            states.push_back(m.rows);
        };
        mark();
        for (int i = 0; i < records; ++i) {
            const std::string id = "r" + std::to_string(i);
            if (i % 5 == 3) {  // update an earlier one in place
                auto a = make_action(m.rows.front().id, i);
                REQUIRE(!j.save(a));
                m.save(a);
            } else if (i % 5 == 4) {  // remove the oldest
                const auto victim = m.rows.front().id;
                REQUIRE(!j.remove(victim));
                m.remove(victim);
            } else if (i % 7 == 6) {  // a batch: one record
                std::vector<sync_action> batch{make_action(id), make_action(id + "b")};
                REQUIRE(!j.save_batch(batch));
                for (auto& a : batch) m.save(a);
            } else {
                REQUIRE(!j.save(make_action(id)));
                m.save(make_action(id));
            }
            mark();
        }
        REQUIRE(load(j) == m.rows);
    }

    std::size_t boundary(std::uint64_t length) const
    {
        auto it = std::upper_bound(ends.begin(), ends.end(), length);
        return it == ends.begin() ? 0 : std::size_t(it - ends.begin() - 1);
    }
};

std::wstring wide(const fs::path& p)
{
    return p.wstring();
}

/**
 * A fresh directory for the tests that open thousands of journals, each open of a torn one
 * truncating and syncing: under SYNCVAULT_TEST_SCRATCH when set (scripts/test.sh points it at a
 * tmpfs through Wine's Z: drive, as the POSIX tests use /dev/shm), else the temporary folder.
 */
struct scratch_dir {
    fs::path path;
    explicit scratch_dir(const std::string& prefix)
    {
        const char* base = std::getenv("SYNCVAULT_TEST_SCRATCH");
        const fs::path root = base && *base ? fs::path(base) : fs::temp_directory_path();
        static std::mt19937_64 rng{std::random_device{}()};
        for (int i = 0; i < 100 && path.empty(); ++i) {
            auto p = root / (prefix + "-" + std::to_string(rng() % 1000000000000u));
            std::error_code ec;
            if (fs::create_directories(p, ec)) path = p;
        }
        REQUIRE(!path.empty());
    }
    scratch_dir(const scratch_dir&) = delete;
    scratch_dir& operator=(const scratch_dir&) = delete;
    ~scratch_dir()
    {
        std::error_code ec;
        fs::remove_all(path, ec);
    }
    fs::path operator/(const std::string& s) const { return path / s; }
};

/** The DACL of `path`: true if it is protected and grants exactly one entry, to `user`. */
bool owner_only(const fs::path& path, PSID user, std::string& why)
{
    PACL dacl = nullptr;
    PSECURITY_DESCRIPTOR sd = nullptr;
    const DWORD rc = ::GetNamedSecurityInfoW(path.c_str(), SE_FILE_OBJECT, DACL_SECURITY_INFORMATION, nullptr, nullptr,
                                             &dacl, nullptr, &sd);
    if (rc != ERROR_SUCCESS) {
        why = "GetNamedSecurityInfoW failed: " + std::to_string(rc);
        return false;
    }
    bool ok = false;
    SECURITY_DESCRIPTOR_CONTROL control = 0;
    DWORD revision = 0;
    ::GetSecurityDescriptorControl(sd, &control, &revision);
    void* ace = nullptr;
    if (!dacl)
        why = "no DACL (everyone has access)";
    else if (dacl->AceCount != 1)
        why = std::to_string(dacl->AceCount) + " entries";
    else if (!::GetAce(dacl, 0, &ace))
        why = "GetAce failed";
    else if (static_cast<ACCESS_ALLOWED_ACE*>(ace)->Header.AceType != ACCESS_ALLOWED_ACE_TYPE)
        why = "the entry does not allow";
    else if (!::EqualSid(reinterpret_cast<PSID>(&static_cast<ACCESS_ALLOWED_ACE*>(ace)->SidStart), user))
        why = "the entry is for another account";
    else if (!(control & SE_DACL_PROTECTED))
        why = "the DACL is not protected from inheritance";
    else
        ok = true;
    ::LocalFree(sd);
    return ok;
}

// --- the child roles (run by `--syncvault-child <role> <dir> ...`) -----------------------------

// Opens the journal; exit 0: refused with storage_locked naming the journal, 3: it opened.
int child_try_open(const fs::path& dir)
{
    try {
        file_journal j{dir};
        return 3;
    } catch (const std::system_error& e) {
        const bool named = std::string(e.what()).find((dir / "syncvault.journal").string()) != std::string::npos;
        return e.code() == errc::storage_locked && named ? 0 : 2;
    } catch (...) {
        return 4;
    }
}

// Opens the journal, says so, and holds it until killed.
int child_hold(const fs::path& dir)
{
    file_journal j{dir};
    write_line("held");
    ::Sleep(INFINITE);
    return 0;
}

// Enqueues, updates and removes, reporting each intent before and each acknowledgement after,
// until killed (the same protocol as the POSIX kill -9 test).
int child_writer(const fs::path& dir, int round)
{
    struct row {
        std::string id;
        int attempts;
    };
    try {
        const auto mode = round % 4 == 3 ? durability::per_record : durability::none;
        file_journal j{dir, opts(mode, 4096)};
        auto rows = j.load_all();
        if (!rows) write_line("E load");
        std::vector<row> live;
        for (auto& a : *rows) live.push_back({a.id, a.attempts});
        std::mt19937 rng(static_cast<unsigned>(round));
        for (int i = 0;; ++i) {
            const int dice = int(rng() % 10);
            std::error_code ec;
            if (live.empty() || (dice < 4 && live.size() < 40)) {
                row r{"k" + std::to_string(round) + "-" + std::to_string(i), 0};
                write_line("I " + r.id + " 0");
                ec = j.save(make_action(r.id, 0));
                live.push_back(r);
            } else if (dice < 7) {
                auto& r = live[rng() % live.size()];
                ++r.attempts;
                write_line("U " + r.id + " " + std::to_string(r.attempts));
                ec = j.save(make_action(r.id, r.attempts));
            } else {
                auto r = live.front();
                write_line("R " + r.id + " 0");
                ec = j.remove(r.id);
                live.erase(live.begin());
            }
            write_line(ec ? "E op " + ec.message() : "A");
        }
    } catch (const std::exception& e) {
        write_line(std::string("E ") + e.what());
    }
    return 1;
}

}  // namespace

int syncvault_windows_tests::child_main(int argc, char* argv[])
{
    if (argc < 2) return 64;
    const std::string role = argv[0];
    const fs::path dir = argv[1];
    if (role == "try-open") return child_try_open(dir);
    if (role == "hold") return child_hold(dir);
    if (role == "writer" && argc >= 3) return child_writer(dir, std::atoi(argv[2]));
    return 64;
}

TEST_CASE("file_journal runs on the Win32 file layer", "[windows][file_journal]")
{
    CHECK(std::string(syncvault::detail::file_layer_name) == "win32");
    temp_dir dir("win-basic");
    model m;
    {
        file_journal j{dir.path()};
        for (auto& a : {make_action("a"), make_action("b"), make_action("c")}) {
            REQUIRE(!j.save(a));
            m.save(a);
        }
        REQUIRE(!j.save(make_action("b", 3)));
        m.save(make_action("b", 3));
        REQUIRE(!j.remove("a"));
        m.remove("a");
        CHECK(load(j) == m.rows);
        CHECK(j.stats().syncs == 3);  // FlushFileBuffers per insert
    }
    file_journal j{dir.path()};
    CHECK(load(j) == m.rows);
    CHECK(ids_of(load(j)) == std::vector<std::string>{"b", "c"});
}

TEST_CASE("file_journal on Windows refuses a second opener with storage_locked", "[windows][file_journal][lock]")
{
    temp_dir dir("win-lock");
    {
        file_journal first{dir.path()};
        REQUIRE(!first.save(make_action("a")));
        // In this process: LockFileEx locks belong to a handle, so a second handle is refused.
        try {
            file_journal second{dir.path()};
            FAIL("a second journal over the same directory must throw");
        } catch (const std::system_error& e) {
            CHECK(e.code() == errc::storage_locked);
        }
        // In another process.
        child_process child({L"try-open", wide(dir.path())});
        CHECK(child.wait() == 0);
        CHECK(first.count() == 1);
    }
    // Closed: released.
    child_process child({L"try-open", wide(dir.path())});
    CHECK(child.wait() == 3);
}

TEST_CASE("file_journal on Windows: a killed holder's lock is released", "[windows][file_journal][lock]")
{
    temp_dir dir("win-lock-kill");
    child_process holder({L"hold", wide(dir.path())});
    std::string line;
    REQUIRE(holder.read_line(line));
    REQUIRE(line == "held");
    try {
        file_journal j{dir.path()};
        FAIL("the journal is held by the child");
    } catch (const std::system_error& e) {
        CHECK(e.code() == errc::storage_locked);
    }
    holder.kill();
    // Windows releases a dead process's locks, though not always at once.
    for (int i = 0;; ++i) {
        try {
            file_journal j{dir.path()};
            CHECK(j.count() == 0);
            break;
        } catch (const std::system_error& e) {
            REQUIRE(e.code() == errc::storage_locked);
            REQUIRE(i < 100);
            ::Sleep(20);
        }
    }
}

TEST_CASE("file_journal on Windows: cut at every byte recovers exactly a prefix of whole records",
          "[windows][file_journal][recovery]")
{
    scratch_dir src("win-cut-src"), dst("win-cut-dst");
    const recorded_journal rec{src.path, 24};
    const std::string bytes = read_file(src / "syncvault.journal");
    REQUIRE(bytes.size() == rec.ends.back());

    std::size_t checked = 0;
    for (std::uint64_t cut = 0; cut <= bytes.size(); ++cut) {
        write_file(dst / "syncvault.journal", std::string_view(bytes).substr(0, cut));
        const std::size_t k = rec.boundary(cut);
        file_journal j{dst.path, durability::none};
        if (load(j) != rec.states[k]) FAIL_CHECK("cut at byte " << cut << " did not recover record prefix " << k);
        if (!j.take_diagnostics().empty()) FAIL_CHECK("cut at byte " << cut << " reported damage");
        if (j.stats().file_bytes != rec.ends[k]) FAIL_CHECK("cut at byte " << cut << " kept a partial record");
        ++checked;
    }
    CHECK(checked == bytes.size() + 1);
    file_journal j{dst.path};
    REQUIRE(!j.save(make_action("after")));
    CHECK(load(j).back().id == "after");
}

TEST_CASE("file_journal on Windows sets a damaged journal aside and rewrites it", "[windows][file_journal][recovery]")
{
    temp_dir src("win-flip-src");
    const recorded_journal rec{src.path(), 20};
    const std::string bytes = read_file(src / "syncvault.journal");
    for (std::size_t r : {std::size_t{2}, std::size_t{9}, std::size_t{15}}) {
        temp_dir dst("win-flip");
        std::string damaged = bytes;
        const std::uint64_t at = (rec.ends[r] + rec.ends[r + 1]) / 2;  // inside record r
        damaged[at] = char(damaged[at] ^ 0x10);
        write_file(dst / "syncvault.journal", damaged);
        INFO("damage in record " << r);
        {
            file_journal j{dst.path(), durability::none};
            CHECK(load(j) == rec.states[r]);
            const auto diags = j.take_diagnostics();
            REQUIRE(diags.size() == 1);
            CHECK(diags[0].error == errc::storage_corrupt);
            fs::path aside;
            for (const auto& e : fs::directory_iterator(dst.path()))
                if (e.path().filename().string().starts_with("syncvault.journal.corrupt-")) aside = e.path();
            REQUIRE(!aside.empty());
            CHECK(read_file(aside) == damaged);
            REQUIRE(!j.save(make_action("new")));
        }
        file_journal again{dst.path()};
        auto expected = rec.states[r];
        expected.push_back(make_action("new"));
        CHECK(load(again) == expected);
        CHECK(again.take_diagnostics().empty());
    }
}

TEST_CASE("file_journal on Windows: compaction replaces the file while readers hold the old one",
          "[windows][file_journal][compaction]")
{
    temp_dir dir("win-compact");
    model m;
    {
        file_journal j{dir.path(), opts(durability::none, 0, false)};
        for (int i = 0; i < 200; ++i) {
            REQUIRE(!j.save(make_action("c" + std::to_string(i))));
            m.save(make_action("c" + std::to_string(i)));
        }
        std::atomic<bool> stop{false};
        std::atomic<int> reads{0}, bad{0};
        std::thread reader([&] {
            while (!stop) {
                auto r = j.load_all();  // reads the file it started on, old or new
                if (!r || r->empty()) ++bad;
                ++reads;
            }
        });
        struct joiner {
            std::atomic<bool>& stop;
            std::thread& t;
            ~joiner()
            {
                stop = true;
                t.join();
            }
        } join_reader{stop, reader};
        for (int round = 0; round < 20; ++round) {
            for (int i = 0; i < 5; ++i) {
                const std::string id = m.rows.front().id;
                REQUIRE(!j.remove(id));
                m.remove(id);
            }
            const auto before = j.stats().compactions;
            const auto ec = j.compact();
            INFO("compaction: " << ec.message() << " (" << j.last_system_error().message() << ")");
            REQUIRE(!ec);
            CHECK(j.stats().compactions == before + 1);
        }
        stop = true;
        CHECK(bad == 0);
        CHECK(reads > 0);
        CHECK(load(j) == m.rows);
    }
    file_journal j{dir.path()};
    CHECK(load(j) == m.rows);
    CHECK(!fs::exists(dir / "syncvault.journal.compact"));
}

TEST_CASE("file_journal on Windows creates owner-only files", "[windows][file_journal][files]")
{
    HANDLE token = nullptr;
    REQUIRE(::OpenProcessToken(::GetCurrentProcess(), TOKEN_QUERY, &token));
    DWORD size = 0;
    ::GetTokenInformation(token, TokenUser, nullptr, 0, &size);
    std::vector<unsigned char> buf(size);
    REQUIRE(::GetTokenInformation(token, TokenUser, buf.data(), size, &size));
    ::CloseHandle(token);
    PSID user = reinterpret_cast<TOKEN_USER*>(buf.data())->User.Sid;

    // What file_open passes to CreateFileW: a protected DACL, one entry, the user's.
    SECURITY_ATTRIBUTES sa{};
    REQUIRE(!syncvault::detail::owner_only_attributes(sa));
    LPWSTR sddl = nullptr;
    REQUIRE(::ConvertSecurityDescriptorToStringSecurityDescriptorW(sa.lpSecurityDescriptor, SDDL_REVISION_1,
                                                                   DACL_SECURITY_INFORMATION, &sddl, nullptr));
    LPWSTR sid = nullptr;
    REQUIRE(::ConvertSidToStringSidW(user, &sid));
    CHECK(std::wstring(sddl) == L"D:P(A;;FA;;;" + std::wstring(sid) + L")");
    ::LocalFree(sid);
    ::LocalFree(sddl);
    CHECK(sa.bInheritHandle == FALSE);

    temp_dir dir("win-acl");
    {
        file_journal j{dir.path(), opts(durability::none, 0, false)};
        for (int i = 0; i < 10; ++i) REQUIRE(!j.save(make_action(std::to_string(i))));
        for (int i = 0; i < 9; ++i) REQUIRE(!j.remove(std::to_string(i)));
        REQUIRE(!j.compact());  // the rewritten file too
    }
    // What the files got. Wine keeps no security descriptor on a Unix file system (it shows one
    // made up from the Unix mode), so only Windows itself can answer this.
    if (::GetProcAddress(::GetModuleHandleW(L"ntdll.dll"), "wine_get_version")) {
        WARN("under Wine: the files' DACL is not checked (Wine does not store it)");
        return;
    }
    for (const char* name : {"syncvault.journal", "syncvault.journal.lock"}) {
        std::string why;
        if (!owner_only(dir / name, user, why)) FAIL_CHECK(name << ": " << why);
    }
}

TEST_CASE("file_journal on Windows survives TerminateProcess at random moments", "[windows][file_journal][torture]")
{
    temp_dir dir("win-kill");
    struct row {
        std::string id;
        int attempts;
    };
    std::vector<row> expected;
    std::mt19937 rng(7);
    const int rounds = 120;
    for (int round = 0; round < rounds; ++round) {
        INFO("round " << round);
        child_process child({L"writer", wide(dir.path()), std::to_wstring(round)});
        // Let it acknowledge a random number of operations (0: kill it while it opens).
        const int acks = std::uniform_int_distribution<int>(0, 30)(rng);
        std::string seen, line;
        for (int got = 0; got < acks && child.read_line(line);) {
            seen += line + "\n";
            if (line == "A") ++got;
        }
        child.kill();
        seen += child.rest();
        seen.erase(seen.rfind('\n') == std::string::npos ? 0 : seen.rfind('\n') + 1);  // a cut line

        std::istringstream lines(seen);
        std::string op, id;
        int attempts = 0, pattempts = 0;
        bool pending = false;
        char pop = 0;
        std::string pid_id;
        while (std::getline(lines, line)) {
            if (line.empty()) continue;
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
            if (!(f >> op >> id >> attempts)) break;
            pending = true;
            pop = op[0];
            pid_id = id;
            pattempts = attempts;
        }

        // The dead child's lock may take a moment to go.
        std::optional<file_journal> opened;
        for (int i = 0; !opened; ++i) {
            try {
                opened.emplace(dir.path(), durability::none);
            } catch (const std::system_error& e) {
                REQUIRE(e.code() == errc::storage_locked);
                REQUIRE(i < 100);
                ::Sleep(20);
            }
        }
        auto& j = *opened;
        REQUIRE(j.take_diagnostics().empty());  // a crash is not damage
        std::vector<row> actual;
        for (const auto& a : load(j)) {
            REQUIRE(a == make_action(a.id, a.attempts));
            actual.push_back({a.id, a.attempts});
        }
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
            INFO("position " << i);
            REQUIRE(actual[i].id == expected[i].id);
            REQUIRE(actual[i].attempts == expected[i].attempts);
        }
    }
}
