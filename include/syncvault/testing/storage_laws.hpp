#ifndef SYNCVAULT_TESTING_STORAGE_LAWS_HPP
#define SYNCVAULT_TESTING_STORAGE_LAWS_HPP

/**
 * @file
 * The laws of `syncvault::storage` (see `<syncvault/concepts/storage.hpp>`) as one reusable,
 * framework-free suite: run it over any model from any test framework.
 *
 * @code
 * // Catch2
 * TEST_CASE("my_storage keeps the storage laws") {
 *     auto violations = syncvault::testing::check_storage_laws(
 *         [&] { return my_storage{"/tmp/test-store"}; }, {.durable = true});
 *     for (const auto& v : violations) FAIL_CHECK(v.law << ": " << v.detail);
 * }
 * // GoogleTest: EXPECT_TRUE(violations.empty()) << syncvault::testing::to_string(violations);
 * @endcode
 *
 * `make()` opens the model over one place (a file, a directory, a shared handle) and is called
 * again to reopen it: each law clears the store first, and destroys the instance it holds before
 * calling `make()` again, so a model that locks its store exclusively works. With
 * `durable = true` the laws also check that a new instance returns what the previous one stored.
 * Times in the actions the laws save are whole milliseconds: a model may keep times to the
 * millisecond. Every field counts, release 0.2's too (`lane` and `coalesce_key` of any bytes,
 * several `after` ids in order, `answered`), set and unset again by updates.
 */

#include <syncvault/action.hpp>
#include <syncvault/concepts/storage.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <limits>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace syncvault::testing {

/** One broken law: which, and what was seen. */
struct law_violation {
    std::string law;
    std::string detail;
};

/** All violations, one per line ("law: detail"), for frameworks that print a string. */
inline std::string to_string(const std::vector<law_violation>& violations)
{
    std::string out;
    for (const auto& v : violations) out += v.law + ": " + v.detail + "\n";
    return out;
}

/** What to check. */
struct storage_law_options {
    /// The model keeps its contents across instances (`make()` again sees them).
    bool durable = false;
    /// Seed of the random mix of saves, updates and removes (reported with a failure).
    std::uint32_t seed = 20260101;
    /// Steps of the random mix.
    std::size_t random_steps = 400;
    /// Durable models: reopen during the random mix every this many steps.
    std::size_t reopen_every = 100;
};

namespace detail {

inline std::chrono::system_clock::time_point ms_time(std::int64_t ms)
{
    return std::chrono::system_clock::time_point{
        std::chrono::duration_cast<std::chrono::system_clock::duration>(std::chrono::milliseconds{ms})};
}

inline std::int64_t to_ms(std::chrono::system_clock::time_point t)
{
    return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

constexpr std::int64_t jan_2026_ms = 1'767'225'600'000;  // 2026-01-01T00:00:00Z, fake_clock's start

/** An ordinary pending action, as the vault would queue it. */
inline sync_action sample_action(std::string id, std::uint64_t sequence)
{
    sync_action a;
    a.path = "/jobs/" + id;
    a.body = R"({"job":")" + id + R"(","n":)" + std::to_string(sequence) + "}";
    a.headers = {{"Content-Type", "application/json"}};
    a.idempotency_key = "key-" + id;
    a.id = std::move(id);
    a.sequence = sequence;
    a.created_at = ms_time(jan_2026_ms + std::int64_t(sequence % 1'000'000'000) * 1000);
    a.next_attempt_at = a.created_at;
    return a;
}

inline std::string quote(std::string_view s, std::size_t max = 40)
{
    std::string out = "\"";
    for (std::size_t i = 0; i < s.size() && i < max; ++i) {
        auto c = static_cast<unsigned char>(s[i]);
        if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
            out += char(c);
        } else {
            static constexpr char hex[] = "0123456789abcdef";
            out += "\\x";
            out += hex[c >> 4];
            out += hex[c & 15];
        }
    }
    if (s.size() > max) out += "...";
    return out + "\" (" + std::to_string(s.size()) + " bytes)";
}

inline std::string bytes_difference(std::string_view want, std::string_view got)
{
    std::size_t i = 0;
    while (i < want.size() && i < got.size() && want[i] == got[i]) ++i;
    std::string out = "expected " + std::to_string(want.size()) + " bytes, got " +
                      std::to_string(got.size()) + "; first difference at byte " + std::to_string(i);
    if (want.size() <= 64 && got.size() <= 64) out += ": expected " + quote(want) + ", got " + quote(got);
    return out;
}

/** The first field in which `got` differs from `want`, in words; empty when equal. */
inline std::string describe_difference(const sync_action& want, const sync_action& got)
{
    auto num = [](auto v) { return std::to_string(v); };
    if (want.id != got.id) return "id: " + bytes_difference(want.id, got.id);
    const std::string who = "action " + quote(want.id) + ": ";
    if (want.method != got.method)
        return who + "method: expected " + std::string(to_string(want.method)) + ", got " +
               std::string(to_string(got.method));
    if (want.path != got.path) return who + "path: " + bytes_difference(want.path, got.path);
    if (want.body != got.body) return who + "body: " + bytes_difference(want.body, got.body);
    if (want.headers.size() != got.headers.size())
        return who + "headers: expected " + num(want.headers.size()) + ", got " + num(got.headers.size());
    for (std::size_t i = 0; i < want.headers.size(); ++i) {
        if (want.headers[i].name != got.headers[i].name)
            return who + "header " + num(i) + " name: " +
                   bytes_difference(want.headers[i].name, got.headers[i].name);
        if (want.headers[i].value != got.headers[i].value)
            return who + "header " + num(i) + " value: " +
                   bytes_difference(want.headers[i].value, got.headers[i].value);
    }
    if (want.idempotency_key != got.idempotency_key)
        return who + "idempotency_key: " + bytes_difference(want.idempotency_key, got.idempotency_key);
    if (want.attempts != got.attempts)
        return who + "attempts: expected " + num(want.attempts) + ", got " + num(got.attempts);
    if (want.sequence != got.sequence)
        return who + "sequence: expected " + num(want.sequence) + ", got " + num(got.sequence);
    if (want.state != got.state)
        return who + "state: expected " + (want.state == action_state::dead ? "dead" : "pending");
    if (want.created_at != got.created_at)
        return who + "created_at: expected " + num(to_ms(want.created_at)) + " ms, got " +
               num(to_ms(got.created_at)) + " ms (" +
               num((got.created_at - want.created_at).count()) + " ticks off)";
    if (want.next_attempt_at != got.next_attempt_at)
        return who + "next_attempt_at: expected " + num(to_ms(want.next_attempt_at)) + " ms, got " +
               num(to_ms(got.next_attempt_at)) + " ms";
    if (want.last_status != got.last_status)
        return who + "last_status: expected " + num(want.last_status) + ", got " + num(got.last_status);
    if (want.last_error != got.last_error)
        return who + "last_error: expected " + num(want.last_error) + ", got " + num(got.last_error);
    if (want.lane != got.lane) return who + "lane: " + bytes_difference(want.lane, got.lane);
    if (want.coalesce_key != got.coalesce_key)
        return who + "coalesce_key: " + bytes_difference(want.coalesce_key, got.coalesce_key);
    if (want.after.size() != got.after.size())
        return who + "after: expected " + num(want.after.size()) + " ids, got " + num(got.after.size());
    for (std::size_t i = 0; i < want.after.size(); ++i)
        if (want.after[i] != got.after[i])
            return who + "after[" + num(i) + "]: " + bytes_difference(want.after[i], got.after[i]);
    if (want.answered != got.answered)
        return who + "answered: expected " + num(want.answered) + ", got " + num(got.answered);
    if (!(want == got)) return who + "differs in a field the laws do not name";
    return {};
}

inline std::string id_list(const std::vector<sync_action>& v)
{
    std::string out = "[";
    for (std::size_t i = 0; i < v.size(); ++i) {
        if (i == 12) {
            out += ", ... " + std::to_string(v.size() - i) + " more";
            break;
        }
        out += (i ? ", " : "") + v[i].id;
    }
    return out + "]";
}

/** The storage concept's meaning, in the simplest terms: a vector in insertion order. */
class reference_model {
public:
    void save(const sync_action& a)
    {
        for (auto& r : rows_)
            if (r.id == a.id) {
                r = a;
                return;
            }
        rows_.push_back(a);
    }
    void remove(std::string_view id) { std::erase_if(rows_, [&](const auto& r) { return r.id == id; }); }
    void clear() { rows_.clear(); }
    const std::vector<sync_action>& rows() const { return rows_; }
    const sync_action* find(std::string_view id) const
    {
        for (const auto& r : rows_)
            if (r.id == id) return &r;
        return nullptr;
    }

private:
    std::vector<sync_action> rows_;
};

// A law failed with this; caught by the runner, which records it and moves to the next law.
struct law_failed {};

template <class Storage, class Make>
class law_runner {
public:
    law_runner(Make& make, const storage_law_options& opts) : make_(make), opts_(opts) {}

    std::vector<law_violation> run_all()
    {
        run("save inserts", [&] { save_inserts(); });
        run("save updates by id", [&] { save_updates(); });
        run("update keeps its place", [&] { update_keeps_place(); });
        run("remove", [&] { remove_law(); });
        run("save after remove goes last", [&] { save_after_remove(); });
        run("clear", [&] { clear_law(); });
        run("every field round-trips", [&] { fields_round_trip(); });
        run("0.2 fields round-trip (lane, coalesce_key, after, answered)", [&] { extras_round_trip(); });
        run("bodies keep any bytes", [&] { any_bytes(); });
        run("large bodies", [&] { large_bodies(); });
        run("random mix keeps FIFO order", [&] { random_mix(); });
        run("a moved storage is the same store", [&] { moved(); });
        if constexpr (batch_storage<Storage>) run("save_batch", [&] { batch(); });
        if constexpr (flushable_storage<Storage>) run("flush", [&] { flush(); });
        if constexpr (body_reading_storage<Storage>) run("load_body reads back the saved body", [&] { load_body_law(); });
        if constexpr (progress_storage<Storage>) run("save_progress updates the attempt fields", [&] { progress_law(); });
        if (opts_.durable) run("reopen keeps pending and dead actions", [&] { reopen_law(); });
        return std::move(violations_);
    }

private:
    Make& make_;
    storage_law_options opts_;
    std::vector<law_violation> violations_;
    std::string law_;

    template <class F>
    void run(std::string name, F&& body)
    {
        law_ = std::move(name);
        try {
            body();
        } catch (const law_failed&) {
        } catch (const std::exception& e) {
            violations_.push_back({law_, std::string("threw: ") + e.what()});
        } catch (...) {
            violations_.push_back({law_, "threw a non-standard exception"});
        }
    }

    [[noreturn]] void fail(std::string detail)
    {
        violations_.push_back({law_, std::move(detail)});
        throw law_failed{};
    }

    void ok(std::error_code ec, std::string_view what)
    {
        if (ec) fail(std::string(what) + " returned an error: " + ec.message());
    }

    // A store as the law starts it: opened by `make()` and cleared.
    std::optional<Storage> open_empty()
    {
        std::optional<Storage> s;
        s.emplace(make_());
        ok(s->clear(), "clear()");
        return s;
    }

    void reopen(std::optional<Storage>& s)
    {
        s.reset();  // first: a model may hold its store exclusively
        s.emplace(make_());
    }

    void save(Storage& s, reference_model& m, const sync_action& a)
    {
        ok(s.save(a), "save(" + quote(a.id) + ")");
        m.save(a);
    }

    void remove(Storage& s, reference_model& m, std::string_view id)
    {
        ok(s.remove(id), "remove(" + quote(id) + ")");
        m.remove(id);
    }

    // `s` holds exactly `m`: count() and load_all() agree with the model, field for field.
    void expect(Storage& s, const reference_model& m, std::string_view when)
    {
        const auto& want = m.rows();
        const std::size_t n = s.count();
        auto loaded = s.load_all();
        if (!loaded) fail("load_all() " + std::string(when) + " failed: " + loaded.error().message());
        const auto& got = *loaded;
        if (n != want.size())
            fail("count() " + std::string(when) + " is " + std::to_string(n) + ", expected " +
                 std::to_string(want.size()));
        bool same_ids = got.size() == want.size();
        for (std::size_t i = 0; same_ids && i < got.size(); ++i) same_ids = got[i].id == want[i].id;
        if (!same_ids)
            fail("load_all() " + std::string(when) + " returned ids " + id_list(got) + ", expected " +
                 id_list(want));
        for (std::size_t i = 0; i < got.size(); ++i)
            if (auto d = describe_difference(want[i], got[i]); !d.empty())
                fail("load_all() " + std::string(when) + ": " + d);
    }

    void save_inserts()
    {
        auto s = open_empty();
        reference_model m;
        expect(*s, m, "after clear()");
        for (int i = 0; i < 5; ++i) {
            save(*s, m, sample_action("insert-" + std::to_string(i), std::uint64_t(i + 1)));
            expect(*s, m, "after inserting " + std::to_string(i + 1) + " actions");
        }
    }

    void save_updates()
    {
        auto s = open_empty();
        reference_model m;
        auto a = sample_action("update-me", 1);
        save(*s, m, a);
        save(*s, m, sample_action("other", 2));
        // Every field but the id changes, as the vault's updates do (and more).
        a.method = http_method::put;
        a.path = "/changed";
        a.body = "changed body";
        a.headers = {{"X-Changed", "yes"}, {"Content-Type", "text/plain"}};
        a.idempotency_key = "changed-key";
        a.attempts = 3;
        a.sequence = 77;
        a.state = action_state::dead;
        a.created_at = ms_time(jan_2026_ms + 5);
        a.next_attempt_at = ms_time(jan_2026_ms + 60'000);
        a.last_status = 503;
        a.last_error = 8;
        a.lane = "lane-\xc3\xa9";
        a.coalesce_key = "doc/7";
        a.after = {"first", "second"};
        a.answered = 2;
        save(*s, m, a);
        expect(*s, m, "after an update");
        a.state = action_state::pending;
        a.sequence = 78;
        a.attempts = 0;
        save(*s, m, a);
        expect(*s, m, "after updating a dead action back to pending");
        // Fields set once and unset again must read back unset.
        a.lane.clear();
        a.coalesce_key.clear();
        a.after.clear();
        a.answered = 0;
        save(*s, m, a);
        save(*s, m, a);  // the same value twice is still one action
        expect(*s, m, "after updating twice");
    }

    void update_keeps_place()
    {
        auto s = open_empty();
        reference_model m;
        for (const char* id : {"a", "b", "c", "d"}) save(*s, m, sample_action(id, m.rows().size() + 1));
        for (const char* id : {"b", "a", "d", "c", "b"}) {
            auto a = *m.find(id);
            ++a.attempts;
            a.sequence += 100;  // requeue gives a larger sequence, yet the place is kept
            save(*s, m, a);
            expect(*s, m, std::string("after updating ") + id);
        }
    }

    void remove_law()
    {
        auto s = open_empty();
        reference_model m;
        for (const char* id : {"a", "b", "c", "d", "e"}) save(*s, m, sample_action(id, m.rows().size() + 1));
        remove(*s, m, "c");
        expect(*s, m, "after removing the middle action");
        remove(*s, m, "a");
        expect(*s, m, "after removing the head");
        remove(*s, m, "e");
        expect(*s, m, "after removing the tail");
        remove(*s, m, "e");
        expect(*s, m, "after removing an id again");
        remove(*s, m, "never-saved");
        expect(*s, m, "after removing an unknown id");
        remove(*s, m, "");
        expect(*s, m, "after removing the empty id");
        remove(*s, m, "b");
        remove(*s, m, "d");
        expect(*s, m, "after removing everything");
    }

    void save_after_remove()
    {
        auto s = open_empty();
        reference_model m;
        for (const char* id : {"a", "b", "c"}) save(*s, m, sample_action(id, m.rows().size() + 1));
        auto a = *m.find("a");
        remove(*s, m, "a");
        a.sequence = 10;
        save(*s, m, a);
        expect(*s, m, "after removing the head and saving it again");
        auto c = *m.find("c");
        remove(*s, m, "c");
        save(*s, m, c);
        expect(*s, m, "after removing the middle action and saving it again");
    }

    void clear_law()
    {
        auto s = open_empty();
        reference_model m;
        ok(s->clear(), "clear() of an empty store");
        expect(*s, m, "after clearing an empty store");
        for (int i = 0; i < 4; ++i) save(*s, m, sample_action("c" + std::to_string(i), std::uint64_t(i + 1)));
        auto dead = sample_action("dead", 9);
        dead.state = action_state::dead;
        save(*s, m, dead);
        ok(s->clear(), "clear()");
        m.clear();
        expect(*s, m, "after clear() (pending and dead actions alike)");
        save(*s, m, sample_action("c2", 20));
        save(*s, m, sample_action("after", 21));
        expect(*s, m, "after saving again after clear()");
    }

    void fields_round_trip()
    {
        auto s = open_empty();
        reference_model m;
        int n = 0;
        for (auto method : {http_method::get, http_method::head, http_method::post, http_method::put,
                            http_method::patch, http_method::delete_})
            for (auto state : {action_state::pending, action_state::dead}) {
                auto a = sample_action("field-" + std::to_string(n), std::uint64_t(n + 1));
                a.method = method;
                a.state = state;
                a.attempts = n;
                a.last_status = 200 + n;
                a.last_error = n % 14;
                a.next_attempt_at = ms_time(jan_2026_ms + 123'456 * n + 789);
                save(*s, m, a);
                ++n;
            }
        auto extreme = sample_action("extremes", std::uint64_t(std::numeric_limits<std::int64_t>::max()));
        extreme.attempts = std::numeric_limits<int>::max();
        extreme.last_status = 599;
        extreme.last_error = std::numeric_limits<int>::max();
        extreme.created_at = ms_time(0);                       // the epoch itself
        // 2200-01-01T00:00:00.001Z: far, yet inside libstdc++'s nanosecond system_clock (2262).
        extreme.next_attempt_at = ms_time(7'258'118'400'001);
        save(*s, m, extreme);
        auto empty = sample_action("empty-fields", 0);
        empty.path.clear();
        empty.body.clear();
        empty.headers.clear();
        empty.idempotency_key.clear();
        empty.created_at = {};
        empty.next_attempt_at = {};
        save(*s, m, empty);
        auto many = sample_action("many-headers", 3);
        many.headers.clear();
        for (int i = 0; i < 40; ++i) many.headers.push_back({"X-H" + std::to_string(i % 7), std::string(std::size_t(i), 'v')});
        many.headers.push_back({"X-Empty", ""});
        many.headers.push_back({"x-empty", "duplicate name, other case"});
        save(*s, m, many);
        expect(*s, m, "after saving every method, state and extreme value");
    }

    // Release 0.2's fields: lanes and keys of any text, several dependencies, answered counts,
    // each alone and all together, pending and dead, updated and kept across a reopen.
    void extras_round_trip()
    {
        auto s = open_empty();
        reference_model m;
        const std::string lanes[] = {"uploads", "caf\xc3\xa9/\xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80",
                                     std::string("nul\0inside", 11), "\"quoted\" \\ lane", " "};
        int n = 0;
        auto next = [&](std::string_view what) {
            auto a = sample_action("extra-" + std::string(what) + "-" + std::to_string(n), std::uint64_t(n + 1));
            ++n;
            return a;
        };
        for (const auto& lane : lanes) {
            auto a = next("lane");
            a.lane = lane;
            save(*s, m, a);
        }
        auto key = next("coalesce");
        key.coalesce_key = "cl\xc3\xa9/\xf0\x9f\x94\x91";
        save(*s, m, key);
        auto one = next("after");
        one.after = {"extra-lane-0"};
        save(*s, m, one);
        auto several = next("after");
        several.after = {"a", "b\xc3\xa9", "extra-lane-0", "", "a"};  // duplicates kept as given
        save(*s, m, several);
        auto answered = next("answered");
        answered.attempts = 5;
        answered.answered = 3;
        save(*s, m, answered);
        auto all = next("all");
        all.lane = lanes[1];
        all.coalesce_key = "k";
        all.after = {"x", "y", "z"};
        all.answered = std::numeric_limits<int>::max();
        all.attempts = std::numeric_limits<int>::max();
        all.state = action_state::dead;
        all.last_status = -1;  // a transport may report any int
        save(*s, m, all);
        expect(*s, m, "after saving actions with 0.2 fields");
        all.lane = "moved lane";
        all.after = {"only"};
        all.answered = 1;
        save(*s, m, all);
        several.after.clear();
        several.lane = lanes[0];
        save(*s, m, several);
        expect(*s, m, "after updating 0.2 fields");
        if constexpr (batch_storage<Storage>) {
            auto b1 = next("batch");
            b1.lane = lanes[1];
            b1.after = {"extra-all-9", "extra-answered-8"};
            auto b2 = key;
            b2.coalesce_key.clear();
            b2.answered = 4;
            std::vector<sync_action> group = {b1, b2};
            ok(s->save_batch(std::span<const sync_action>(group)), "save_batch() with 0.2 fields");
            for (const auto& x : group) m.save(x);
            expect(*s, m, "after save_batch() with 0.2 fields");
        }
        if (opts_.durable) {
            reopen(s);
            expect(*s, m, "after a reopen");
        }
    }

    void any_bytes()
    {
        auto s = open_empty();
        reference_model m;
        std::string all;
        for (int i = 0; i < 256; ++i) all += char(i);
        std::string reversed(all.rbegin(), all.rend());
        const std::string bodies[] = {
            all,
            reversed + all,
            std::string(16, '\0'),
            std::string("\0leading and trailing NUL\0", 26),
            "\xc0\x80 overlong NUL, \xed\xa0\x80 surrogate, \xff\xfe, lone \x80, truncated \xe2\x82",
            "\"quotes\" \\backslashes\\ \\u0000 \n\r\t {\"json\": [1, 2]}",
            "caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e \xf0\x9f\x98\x80 \xd0\x9f\xd1\x80\xd0\xb8",
            " ",
        };
        int n = 0;
        for (const auto& body : bodies) {
            auto a = sample_action("bytes-" + std::to_string(n), std::uint64_t(n + 1));
            a.body = body;
            save(*s, m, a);
            ++n;
        }
        auto text = sample_action("non-ascii", 50);
        text.path = "/caf\xc3\xa9/\xe6\x97\xa5\xe6\x9c\xac/\xf0\x9f\x98\x80?q=\xc3\xbc";
        text.headers = {{"X-Name", "Ren\xc3\xa9\x65 \xe2\x80\x94 \xe5\x90\x8d\xe5\x89\x8d"},
                        {"X-Obs-Text", "\x80\xff\xfe raw"},
                        {"X-Tab", "a\tb"}};
        text.idempotency_key = "cl\xc3\xa9-\xf0\x9f\x94\x91";
        save(*s, m, text);
        expect(*s, m, "after saving bodies of any bytes and non-ASCII text");
        if (opts_.durable) {
            reopen(s);
            expect(*s, m, "after a reopen");
        }
    }

    void large_bodies()
    {
        auto s = open_empty();
        reference_model m;
        std::mt19937 gen(opts_.seed);
        auto big = [&](std::size_t size) {
            std::string b(size, '\0');
            for (auto& c : b) c = char(gen() & 0xff);
            return b;
        };
        auto a = sample_action("large-a", 1);
        a.body = big(std::size_t(1) << 20);
        save(*s, m, a);
        save(*s, m, sample_action("small", 2));
        auto b = sample_action("large-b", 3);
        b.body = big((std::size_t(1) << 20) + 17);
        save(*s, m, b);
        expect(*s, m, "after saving 1 MiB bodies");
        a.body = big(std::size_t(1) << 20);
        a.attempts = 1;
        save(*s, m, a);
        expect(*s, m, "after updating a 1 MiB body");
        if (opts_.durable) {
            reopen(s);
            expect(*s, m, "after a reopen");
        }
        remove(*s, m, "large-b");
        expect(*s, m, "after removing a 1 MiB body");
    }

    void random_mix()
    {
        auto s = open_empty();
        reference_model m;
        std::mt19937 gen(opts_.seed);  // mt19937's output is fixed by the standard: reproducible
        auto pick = [&](std::size_t n) { return std::size_t(gen() % n); };
        std::vector<std::string> removed;
        std::uint64_t next_id = 0, sequence = 0;
        auto fresh = [&] {
            auto a = sample_action("mix-" + std::to_string(next_id++), ++sequence);
            a.body.assign(pick(48), '\0');
            for (auto& c : a.body) c = char(gen() & 0xff);
            if (pick(5) == 0) a.state = action_state::dead;
            if (pick(3) == 0) a.lane = pick(2) ? "l\xc3\xa4ne-" + std::to_string(pick(3)) : "upload";
            if (pick(6) == 0) a.after = {"mix-" + std::to_string(pick(next_id)), "mix-" + std::to_string(pick(next_id))};
            if (pick(8) == 0) a.coalesce_key = "key-" + std::to_string(pick(4));
            return a;
        };
        auto existing = [&]() -> const sync_action& { return m.rows()[pick(m.rows().size())]; };
        for (std::size_t step = 0; step < opts_.random_steps; ++step) {
            const std::size_t r = pick(100);
            std::string what;
            if (r < 35 || m.rows().empty()) {
                auto a = fresh();
                what = "inserting " + a.id;
                save(*s, m, a);
            } else if (r < 60) {
                auto a = existing();
                what = "updating " + a.id;
                ++a.attempts;
                a.next_attempt_at = ms_time(jan_2026_ms + std::int64_t(pick(1'000'000)));
                a.last_status = int(pick(600));
                a.last_error = int(pick(14));
                if (pick(2) == 0) ++a.answered;
                if (pick(8) == 0) a.after.clear();
                if (pick(4) == 0) {  // dead letter, or requeue
                    a.state = a.state == action_state::dead ? action_state::pending : action_state::dead;
                    a.sequence = ++sequence;
                }
                if (pick(4) == 0) a.body += char(gen() & 0xff);
                save(*s, m, a);
            } else if (r < 75) {
                auto id = existing().id;
                what = "removing " + id;
                remove(*s, m, id);
                removed.push_back(id);
            } else if (r < 80) {
                what = "removing an unknown id";
                remove(*s, m, "unknown-" + std::to_string(step));
            } else if (r < 90 && !removed.empty()) {
                auto id = removed[pick(removed.size())];
                std::erase(removed, id);
                what = "saving the removed " + id + " again";
                if (!m.find(id)) save(*s, m, sample_action(id, ++sequence));
            } else if (r < 98) {
                std::vector<sync_action> group;
                for (std::size_t i = 0, k = 1 + pick(4); i < k; ++i) {
                    if (pick(3) == 0 && !m.rows().empty()) {
                        auto a = existing();
                        ++a.attempts;
                        bool dup = false;
                        for (const auto& g : group) dup = dup || g.id == a.id;
                        if (!dup) group.push_back(a);
                    } else {
                        group.push_back(fresh());
                    }
                }
                what = "saving " + std::to_string(group.size()) + " actions";
                if constexpr (batch_storage<Storage>) {
                    what += " with save_batch";
                    ok(s->save_batch(std::span<const sync_action>(group)), "save_batch()");
                    for (const auto& a : group) m.save(a);
                } else {
                    for (const auto& a : group) save(*s, m, a);
                }
            } else {
                what = "clear()";
                ok(s->clear(), "clear()");
                m.clear();
            }
            const auto when = "at step " + std::to_string(step) + " (seed " + std::to_string(opts_.seed) +
                              ", after " + what + ")";
            expect(*s, m, when);
            if (opts_.durable && opts_.reopen_every && (step + 1) % opts_.reopen_every == 0) {
                reopen(s);
                expect(*s, m, when + " and a reopen");
            }
        }
    }

    void moved()
    {
        auto s = open_empty();
        reference_model m;
        save(*s, m, sample_action("before-move", 1));
        Storage t(std::move(*s));
        s.reset();  // the moved-from instance may be destroyed at once
        expect(t, m, "in the move-constructed storage");
        save(t, m, sample_action("after-move", 2));
        expect(t, m, "after saving through the move-constructed storage");
        std::optional<Storage> u;
        u.emplace(std::move(t));
        expect(*u, m, "after a second move");
        remove(*u, m, "before-move");
        expect(*u, m, "after removing through the moved storage");
    }

    void batch()
    {
        auto s = open_empty();
        reference_model m;
        save(*s, m, sample_action("a", 1));
        save(*s, m, sample_action("b", 2));
        std::vector<sync_action> group = {sample_action("c", 3), sample_action("d", 4)};
        ok(s->save_batch(std::span<const sync_action>(group)), "save_batch() of new actions");
        for (const auto& a : group) m.save(a);
        expect(*s, m, "after save_batch() of new actions");
        auto a = *m.find("a");
        a.attempts = 2;
        group = {sample_action("e", 5), a};
        ok(s->save_batch(std::span<const sync_action>(group)), "save_batch() mixing an update and an insert");
        for (const auto& x : group) m.save(x);
        expect(*s, m, "after save_batch() mixing an update and an insert");
        ok(s->save_batch(std::span<const sync_action>()), "save_batch() of nothing");
        expect(*s, m, "after save_batch() of nothing");
        if (opts_.durable) {
            reopen(s);
            expect(*s, m, "after a reopen");
        }
    }

    void flush()
    {
        auto s = open_empty();
        reference_model m;
        ok(s->flush(), "flush() of an empty store");
        save(*s, m, sample_action("a", 1));
        auto b = sample_action("b", 2);
        save(*s, m, b);
        b.attempts = 1;
        save(*s, m, b);
        remove(*s, m, "a");
        ok(s->flush(), "flush()");
        expect(*s, m, "after flush()");
        if (opts_.durable) {
            reopen(s);
            expect(*s, m, "after flush() and a reopen");
        }
    }

    // `s.load_body(id)` equals the body of what `m` holds under `id`, for every id.
    void expect_bodies(Storage& s, const reference_model& m, std::string_view when)
    {
        for (const auto& r : m.rows()) {
            auto b = s.load_body(r.id);
            if (!b) fail("load_body(" + quote(r.id) + ") " + std::string(when) + " failed: " + b.error().message());
            if (*b != r.body)
                fail("load_body(" + quote(r.id) + ") " + std::string(when) + " returned " + std::to_string(b->size()) +
                     " bytes differing from the " + std::to_string(r.body.size()) + " saved");
        }
    }

    void load_body_law()
    {
        auto s = open_empty();
        reference_model m;
        std::string every_byte;
        for (int i = 0; i < 256; ++i) every_byte.push_back(static_cast<char>(i));
        auto a = sample_action("body-a", 1);
        a.body = every_byte + every_byte;
        save(*s, m, a);
        save(*s, m, sample_action("body-b", 2));
        auto empty = sample_action("body-empty", 3);
        empty.body.clear();
        save(*s, m, empty);
        expect_bodies(*s, m, "after inserts");
        a.body = "changed \xff\xfe body";
        a.state = action_state::dead;
        ++a.attempts;
        save(*s, m, a);
        expect_bodies(*s, m, "after an update");
        if (s->load_body("never-saved")) fail("load_body of an id never saved succeeded");
        remove(*s, m, "body-b");
        if (s->load_body("body-b")) fail("load_body of a removed id succeeded");
        expect_bodies(*s, m, "after a remove");
        if (opts_.durable) {
            reopen(s);
            expect_bodies(*s, m, "after a reopen");
            a.body = every_byte;
            save(*s, m, a);
            expect_bodies(*s, m, "after an update after a reopen");
        }
    }

    // `save_progress(a)` where `a` differs from the stored action only in its attempt fields:
    // afterwards storage holds `a`, through later saves, a remove and a reopen.
    void progress_law()
    {
        auto s = open_empty();
        reference_model m;
        auto a = sample_action("progress-a", 1);
        save(*s, m, a);
        save(*s, m, sample_action("progress-b", 2));
        auto attempt = [&](sync_action& x, int status) {
            ++x.attempts;
            x.next_attempt_at += std::chrono::seconds(30 * x.attempts);
            x.last_status = status;
            x.last_error = status ? 0 : 7;
            if (status) ++x.answered;
            ok(s->save_progress(x), "save_progress(" + quote(x.id) + ")");
            m.save(x);
        };
        attempt(a, 503);
        expect(*s, m, "after save_progress");
        attempt(a, 0);
        expect(*s, m, "after a second save_progress");
        if constexpr (body_reading_storage<Storage>) expect_bodies(*s, m, "after save_progress");
        a.body = "edited";  // a whole save replaces every field again
        a.state = action_state::dead;
        save(*s, m, a);
        expect(*s, m, "after save_progress then save");
        auto c = sample_action("progress-c", 3);  // not stored: saved whole
        c.attempts = 1;
        ok(s->save_progress(c), "save_progress of an action not stored");
        m.save(c);
        expect(*s, m, "after save_progress of an action not stored");
        auto b = sample_action("progress-b", 2);
        attempt(b, 500);
        if (opts_.durable) {
            if constexpr (flushable_storage<Storage>) ok(s->flush(), "flush()");
            reopen(s);
            expect(*s, m, "after save_progress and a reopen");
            attempt(b, 409);
            reopen(s);
            expect(*s, m, "after save_progress after a reopen");
        }
        remove(*s, m, "progress-b");
        expect(*s, m, "after save_progress then remove");
    }

    void reopen_law()
    {
        auto s = open_empty();
        reference_model m;
        reopen(s);
        expect(*s, m, "after reopening an empty store");
        for (int i = 0; i < 6; ++i) save(*s, m, sample_action("r" + std::to_string(i), std::uint64_t(i + 1)));
        auto dead = *m.find("r1");
        dead.state = action_state::dead;
        dead.attempts = 4;
        dead.answered = 4;
        dead.last_status = 422;
        dead.lane = "\xd0\xbb\xd0\xb5\xd0\xb9\xd0\xbd";
        dead.after = {"r0", "r2"};
        save(*s, m, dead);
        auto retried = *m.find("r3");
        retried.attempts = 2;
        retried.next_attempt_at = ms_time(jan_2026_ms + 90'000);
        retried.last_error = 9;
        save(*s, m, retried);
        remove(*s, m, "r4");
        reopen(s);
        expect(*s, m, "after a reopen (pending, dead, updated and removed actions)");
        // The reopened store goes on keeping insertion order.
        save(*s, m, sample_action("r4", 7));
        auto head = *m.find("r0");
        head.attempts = 1;
        save(*s, m, head);
        remove(*s, m, "r2");
        expect(*s, m, "after changes made after a reopen");
        reopen(s);
        expect(*s, m, "after a second reopen");
        reopen(s);
        expect(*s, m, "after reopening without changes");
        ok(s->clear(), "clear()");
        m.clear();
        reopen(s);
        expect(*s, m, "after clear() and a reopen");
    }
};

} // namespace detail

/**
 * Checks every law of `syncvault::storage` over the model that `make()` opens; returns what was
 * broken (empty when the model keeps every law). Never throws for the model's sake: a model that
 * throws breaks the law it was checked against, and the other laws still run.
 *
 * @tparam Make a callable returning a `syncvault::storage` model by value, opened over the same
 *         place on each call.
 */
template <class Make>
std::vector<law_violation> check_storage_laws(Make&& make, const storage_law_options& opts = {})
{
    using storage_type = std::remove_cvref_t<std::invoke_result_t<Make&>>;
    static_assert(syncvault::storage<storage_type>,
                  "make() must return a syncvault::storage model: see syncvault/concepts/storage.hpp");
    detail::law_runner<storage_type, std::remove_reference_t<Make>> runner(make, opts);
    return runner.run_all();
}

} // namespace syncvault::testing

#endif
