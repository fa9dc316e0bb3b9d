// The storage laws (<syncvault/testing/storage_laws.hpp>) over every storage that ships, over a
// storage written here as a user would, and over broken storages, to show the laws catch them.

#include <syncvault/testing/storage_laws.hpp>

#include <syncvault/storage/memory_storage.hpp>
#ifndef SYNCVAULT_TESTS_NO_SQLITE  // the MinGW build (tests/windows) has no SQLite
#include <syncvault/storage/sqlite_storage.hpp>
#endif
#if __has_include(<syncvault/storage/file_journal.hpp>)
#include <syncvault/storage/file_journal.hpp>
#define SYNCVAULT_TESTS_HAVE_FILE_JOURNAL 1
#endif

#include "storage/temp_dir.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

using syncvault::testing::check_storage_laws;
using syncvault::testing::law_violation;
using syncvault::testing::storage_law_options;

storage_law_options durable_laws()
{
    storage_law_options o;
    o.durable = true;
    return o;
}

void require_no_violation(const std::vector<law_violation>& violations)
{
    for (const auto& v : violations) FAIL_CHECK(v.law << ": " << v.detail);
    CHECK(violations.empty());
}

bool broke(const std::vector<law_violation>& violations, const std::string& law)
{
    return std::any_of(violations.begin(), violations.end(), [&](const auto& v) { return v.law == law; });
}

// What a user would write: a map by id, with an insertion counter for FIFO order.
class user_map_storage {
public:
    std::error_code save(const syncvault::sync_action& a)
    {
        auto it = rows_.find(a.id);
        if (it != rows_.end())
            it->second.action = a;  // an update keeps its position
        else
            rows_.emplace(a.id, row{next_++, a});
        return {};
    }
    std::error_code remove(std::string_view id)
    {
        if (auto it = rows_.find(std::string(id)); it != rows_.end()) rows_.erase(it);
        return {};
    }
    syncvault::result<std::vector<syncvault::sync_action>> load_all()
    {
        std::vector<const row*> ordered;
        for (const auto& [id, r] : rows_) ordered.push_back(&r);
        std::sort(ordered.begin(), ordered.end(), [](auto* a, auto* b) { return a->position < b->position; });
        std::vector<syncvault::sync_action> out;
        for (const auto* r : ordered) out.push_back(r->action);
        return out;
    }
    std::error_code clear()
    {
        rows_.clear();
        return {};
    }
    std::size_t count() const { return rows_.size(); }

private:
    struct row {
        std::uint64_t position;
        syncvault::sync_action action;
    };
    std::map<std::string, row> rows_;
    std::uint64_t next_ = 0;
};
static_assert(syncvault::storage<user_map_storage>);

// Broken on purpose, one flaw each, by wrapping the user's storage.
template <class Flaw>
class flawed_storage : public user_map_storage {
public:
    std::error_code save(const syncvault::sync_action& a)
    {
        auto copy = a;
        Flaw::on_save(*this, copy);
        return user_map_storage::save(copy);
    }
};

struct update_goes_last {
    static void on_save(user_map_storage& s, syncvault::sync_action& a) { (void)s.remove(a.id); }
};
struct body_as_c_string {
    static void on_save(user_map_storage&, syncvault::sync_action& a) { a.body = a.body.c_str(); }
};
struct seconds_only {
    static void on_save(user_map_storage&, syncvault::sync_action& a)
    {
        a.next_attempt_at = std::chrono::floor<std::chrono::seconds>(a.next_attempt_at);
    }
};
// A 0.1 model: keeps every field it knew, forgets those added in 0.2.
struct drops_new_fields {
    static void on_save(user_map_storage&, syncvault::sync_action& a)
    {
        a.lane.clear();
        a.coalesce_key.clear();
        a.after.clear();
        a.answered = 0;
    }
};
// Keeps only the first dependency.
struct one_dependency {
    static void on_save(user_map_storage&, syncvault::sync_action& a)
    {
        if (a.after.size() > 1) a.after.resize(1);
    }
};
struct drops_dead_letters {
    static void on_save(user_map_storage&, syncvault::sync_action& a)
    {
        a.state = syncvault::action_state::pending;
    }
};

// Forgets removes in count(): count() and load_all() disagree.
class stale_count_storage : public user_map_storage {
public:
    std::error_code remove(std::string_view id)
    {
        ++removed_;
        return user_map_storage::remove(id);
    }
    std::size_t count() const { return user_map_storage::count() + (removed_ ? 1 : 0); }

private:
    std::size_t removed_ = 0;
};

// Throws from load_all: a law violation, not an escaping exception.
class throwing_storage : public user_map_storage {
public:
    syncvault::result<std::vector<syncvault::sync_action>> load_all()
    {
        throw std::runtime_error("disk on fire");
    }
};

} // namespace

TEST_CASE("memory_storage keeps the storage laws, across handles too", "[conformance][storage]")
{
    syncvault::memory_storage shared;
    // Copies share one store, so a "reopen" (a new handle) must see everything.
    require_no_violation(check_storage_laws([&] { return shared; }, durable_laws()));
}

#ifndef SYNCVAULT_TESTS_NO_SQLITE
TEST_CASE("sqlite_storage keeps the storage laws in every durability mode", "[conformance][storage]")
{
    auto mode = GENERATE(syncvault::durability::per_record, syncvault::durability::group_commit,
                         syncvault::durability::none);
    INFO("durability mode " << int(mode));
    syncvault_tests::temp_dir dir("sqlite-laws");
    syncvault::sqlite_storage_options opts;
    opts.mode = mode;
    require_no_violation(check_storage_laws(
        [&] { return syncvault::sqlite_storage(dir / "laws.db", opts); }, durable_laws()));
}

TEST_CASE("sqlite_storage built from a vault_config keeps the storage laws", "[conformance][storage]")
{
    syncvault_tests::temp_dir dir("sqlite-laws-cfg");
    syncvault::vault_config cfg;
    cfg.storage_path = dir / "nested" / "queue";
    require_no_violation(check_storage_laws([&] { return syncvault::sqlite_storage(cfg); }, durable_laws()));
}
#endif

#ifdef SYNCVAULT_TESTS_HAVE_FILE_JOURNAL
TEST_CASE("file_journal keeps the storage laws in every durability mode", "[conformance][storage]")
{
    auto mode = GENERATE(syncvault::durability::per_record, syncvault::durability::group_commit,
                         syncvault::durability::none);
    INFO("durability mode " << int(mode));
    syncvault_tests::temp_dir dir("journal-laws");
    require_no_violation(check_storage_laws(
        [&] { return syncvault::file_journal(dir.path(), mode); }, durable_laws()));
}
#endif

TEST_CASE("a storage written by a user keeps the storage laws", "[conformance][storage]")
{
    require_no_violation(check_storage_laws([] { return user_map_storage{}; }));
}

namespace {

// A user's map storage with the optional load_body hook, right or stale.
template <bool Stale>
class body_map_storage : public user_map_storage {
public:
    std::error_code save(const syncvault::sync_action& a)
    {
        if (!Stale || !first_.contains(a.id)) first_[a.id] = a.body;  // stale: the first body saved
        return user_map_storage::save(a);
    }
    syncvault::result<std::string> load_body(std::string_view id)
    {
        auto rows = load_all().value();
        for (const auto& r : rows)
            if (r.id == id) return first_.at(r.id);
        return make_error_code(syncvault::errc::storage_failed);
    }

private:
    std::map<std::string, std::string> first_;
};

} // namespace

TEST_CASE("the load_body law holds for a right model and catches a stale one", "[conformance][storage][load_body]")
{
    static_assert(syncvault::body_reading_storage<body_map_storage<false>>);
    require_no_violation(check_storage_laws([] { return body_map_storage<false>{}; }));
    auto v = check_storage_laws([] { return body_map_storage<true>{}; });
    REQUIRE(broke(v, "load_body reads back the saved body"));
    auto it = std::find_if(v.begin(), v.end(), [](auto& x) { return x.law.starts_with("load_body"); });
    CHECK_THAT(it->detail, Catch::Contains("after an update"));
}

TEST_CASE("the storage laws catch broken storages", "[conformance][storage]")
{
    SECTION("an update that moves the action to the tail")
    {
        auto v = check_storage_laws([] { return flawed_storage<update_goes_last>{}; });
        CHECK(broke(v, "update keeps its place"));
        CHECK(broke(v, "random mix keeps FIFO order"));
        CHECK_FALSE(broke(v, "save inserts"));
    }
    SECTION("a body cut at its first NUL")
    {
        auto v = check_storage_laws([] { return flawed_storage<body_as_c_string>{}; });
        REQUIRE(broke(v, "bodies keep any bytes"));
        CHECK_FALSE(broke(v, "update keeps its place"));
        auto it = std::find_if(v.begin(), v.end(), [](auto& x) { return x.law == "bodies keep any bytes"; });
        CHECK_THAT(it->detail, Catch::Contains("body") && Catch::Contains("first difference at byte 0"));
    }
    SECTION("times kept to the second only")
    {
        auto v = check_storage_laws([] { return flawed_storage<seconds_only>{}; });
        REQUIRE(broke(v, "every field round-trips"));
        auto it = std::find_if(v.begin(), v.end(), [](auto& x) { return x.law == "every field round-trips"; });
        CHECK_THAT(it->detail, Catch::Contains("next_attempt_at"));
    }
    SECTION("dead letters stored as pending")
    {
        auto v = check_storage_laws([] { return flawed_storage<drops_dead_letters>{}; });
        CHECK(broke(v, "save updates by id"));
        CHECK(broke(v, "every field round-trips"));
    }
    SECTION("the 0.2 fields forgotten")
    {
        auto v = check_storage_laws([] { return flawed_storage<drops_new_fields>{}; });
        REQUIRE(broke(v, "0.2 fields round-trip (lane, coalesce_key, after, answered)"));
        CHECK(broke(v, "save updates by id"));
        CHECK_FALSE(broke(v, "bodies keep any bytes"));
        auto it = std::find_if(v.begin(), v.end(), [](auto& x) { return x.law.starts_with("0.2 fields"); });
        CHECK_THAT(it->detail, Catch::Contains("lane"));
    }
    SECTION("only the first of several dependencies kept")
    {
        auto v = check_storage_laws([] { return flawed_storage<one_dependency>{}; });
        REQUIRE(broke(v, "0.2 fields round-trip (lane, coalesce_key, after, answered)"));
        auto it = std::find_if(v.begin(), v.end(), [](auto& x) { return x.law.starts_with("0.2 fields"); });
        CHECK_THAT(it->detail, Catch::Contains("after: expected 5 ids, got 1"));
    }
    SECTION("a count() that disagrees with load_all()")
    {
        auto v = check_storage_laws([] { return stale_count_storage{}; });
        REQUIRE(broke(v, "remove"));
        auto it = std::find_if(v.begin(), v.end(), [](auto& x) { return x.law == "remove"; });
        CHECK_THAT(it->detail, Catch::Contains("count()"));
    }
    SECTION("a store that claims to be durable but forgets on reopen")
    {
        auto v = check_storage_laws([] { return user_map_storage{}; }, durable_laws());
        CHECK(broke(v, "reopen keeps pending and dead actions"));
        CHECK(broke(v, "large bodies"));
        CHECK_FALSE(broke(v, "remove"));
    }
    SECTION("a model that throws breaks laws without escaping")
    {
        std::vector<law_violation> v;
        REQUIRE_NOTHROW(v = check_storage_laws([] { return throwing_storage{}; }));
        REQUIRE(broke(v, "save inserts"));
        CHECK_THAT(v.front().detail, Catch::Contains("disk on fire"));
        CHECK(v.size() >= 10);  // every law ran, and each one failed
    }
    SECTION("a failure names the seed and step of the random mix")
    {
        storage_law_options o;
        o.seed = 7;
        auto v = check_storage_laws([] { return flawed_storage<update_goes_last>{}; }, o);
        auto it = std::find_if(v.begin(), v.end(), [](auto& x) { return x.law == "random mix keeps FIFO order"; });
        REQUIRE(it != v.end());
        CHECK_THAT(it->detail, Catch::Contains("at step ") && Catch::Contains("(seed 7, after "));
    }
}
