#ifndef SYNCVAULT_DETAIL_ACTION_READER_HPP
#define SYNCVAULT_DETAIL_ACTION_READER_HPP

// Reads one stored record (action_codec.hpp's format) straight into a sync_action with
// Boost.JSON's SAX parser: no tree is built and no field is looked up by name twice. Opening a
// journal decodes every record this way and a drain reads one body back per attempt (SPEC 9.8),
// so this is on both paths the issue-17 benchmarks measure.
//
// It accepts exactly what `decode_action` accepts from a parsed tree (the fuzz target checks the
// two agree): every field present with its type, numbers integral, unknown fields ignored
// whatever their shape, and for a repeated field the last occurrence counts, as in a tree.

#include <syncvault/action.hpp>
#include <syncvault/detail/action_codec.hpp>
#include <syncvault/detail/record_limits.hpp>
#include <syncvault/error.hpp>

#include <boost/json/basic_parser_impl.hpp>  // the template's definitions, for our handler
#include <boost/json/parse_options.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace syncvault::detail {

/** The SAX handler: fills an action and remembers, per field, whether it was seen well-typed. */
class action_sax {
public:
    static constexpr std::size_t max_object_size = std::size_t(-1);
    static constexpr std::size_t max_array_size = std::size_t(-1);
    static constexpr std::size_t max_key_size = std::size_t(-1);
    static constexpr std::size_t max_string_size = std::size_t(-1);

    enum field : unsigned char {
        f_id, f_method, f_path, f_body, f_headers, f_key, f_attempts, f_seq, f_dead, f_created, f_next,
        f_status, f_error, f_lane, f_coalesce, f_after, f_answered, f_count, f_unknown = f_count
    };
    enum class mark : unsigned char { missing, ok, bad };

    /** `body_only`: read `id` and `body`, then stop (`finished()`); nothing else is checked. */
    explicit action_sax(bool body_only = false) noexcept : body_only_(body_only) {}

    void reset() noexcept
    {
        a_ = {};
        marks_.fill(mark::missing);
        method_.clear();
        key_.clear();
        depth_ = 0;
        field_ = f_unknown;
        skipping_ = mid_string_ = finished_ = false;
        target_ = nullptr;
        pair_n_ = 0;
    }

    sync_action& action() noexcept { return a_; }
    bool finished() const noexcept { return finished_; }
    mark marked(field f) const noexcept { return marks_[f]; }
    std::int64_t number(field f) const noexcept { return numbers_[f]; }
    std::string_view method() const noexcept { return method_; }

    // ---- basic_parser's handler interface ----
    bool on_document_begin(boost::json::error_code&) { return true; }
    bool on_document_end(boost::json::error_code&) { return true; }

    bool on_object_begin(boost::json::error_code&)
    {
        if (depth_ == 0) {
            depth_ = 1;
            return true;
        }
        if (depth_++ == 1 && !skipping_) mistyped();  // no field holds an object
        else if (!skipping_) scalar_mistyped();          // nor does `headers` or `after`
        skipping_ = true;
        return true;
    }
    bool on_object_end(std::size_t, boost::json::error_code&) { return close(); }

    bool on_array_begin(boost::json::error_code& ec)
    {
        if (depth_ == 0) return not_an_object(ec);
        ++depth_;
        if (skipping_) return true;
        if (depth_ == 2 && field_ == f_headers) {
            a_.headers.clear();
            marks_[f_headers] = mark::ok;  // until an element says otherwise
        } else if (depth_ == 2 && field_ == f_after) {
            a_.after.clear();
            marks_[f_after] = mark::ok;
        } else if (depth_ == 3 && field_ == f_headers) {
            a_.headers.emplace_back();
            pair_n_ = 0;
        } else {
            if (depth_ == 2) mistyped();
            else marks_[field_] = mark::bad;  // an array inside `after` or a header pair
            skipping_ = true;
        }
        return true;
    }
    bool on_array_end(std::size_t, boost::json::error_code&)
    {
        if (depth_ == 3 && !skipping_ && field_ == f_headers && pair_n_ != 2) {
            marks_[f_headers] = mark::bad;
            skipping_ = true;
        }
        return close();
    }

    bool on_key_part(boost::json::string_view s, std::size_t, boost::json::error_code&)
    {
        if (depth_ == 1) key_.append(s.data(), s.size());
        return true;
    }
    bool on_key(boost::json::string_view s, std::size_t, boost::json::error_code&)
    {
        if (depth_ != 1) return true;
        key_.append(s.data(), s.size());
        field_ = field_named(key_);
        key_.clear();
        return true;
    }

    bool on_string_part(boost::json::string_view s, std::size_t, boost::json::error_code&)
    {
        if (!mid_string_) {
            mid_string_ = true;
            target_ = start_string();
        }
        if (target_) target_->append(s.data(), s.size());
        return true;
    }
    bool on_string(boost::json::string_view s, std::size_t, boost::json::error_code& ec)
    {
        if (!mid_string_) target_ = start_string();
        mid_string_ = false;
        if (!target_) return true;
        target_->append(s.data(), s.size());
        target_ = nullptr;
        if (depth_ == 1) marks_[field_] = mark::ok;
        else ++pair_n_;  // a header's name or value
        return keep_going(ec);
    }

    bool on_number_part(boost::json::string_view, boost::json::error_code&) { return true; }
    bool on_int64(std::int64_t v, boost::json::string_view, boost::json::error_code&)
    {
        integer(v, true);
        return true;
    }
    bool on_uint64(std::uint64_t v, boost::json::string_view, boost::json::error_code&)
    {
        // Past INT64_MAX no field's number fits, as in a tree; `answered` takes int64 only.
        if (v <= std::uint64_t(INT64_MAX)) integer(std::int64_t(v), false);
        else scalar_mistyped();
        return true;
    }
    bool on_double(double, boost::json::string_view, boost::json::error_code&)
    {
        scalar_mistyped();
        return true;
    }
    bool on_bool(bool b, boost::json::error_code&)
    {
        if (depth_ == 1 && !skipping_ && field_ == f_dead) {
            a_.state = b ? action_state::dead : action_state::pending;
            marks_[f_dead] = mark::ok;
        } else {
            scalar_mistyped();
        }
        return true;
    }
    bool on_null(boost::json::error_code&)
    {
        scalar_mistyped();
        return true;
    }
    bool on_comment_part(boost::json::string_view, boost::json::error_code&) { return true; }
    bool on_comment(boost::json::string_view, boost::json::error_code&) { return true; }

private:
    static field field_named(std::string_view k) noexcept
    {
        static constexpr std::string_view names[f_count] = {
            "id", "method", "path", "body", "headers", "key", "attempts", "seq", "dead", "created",
            "next", "status", "error", "lane", "coalesce", "after", "answered"};
        for (unsigned char f = 0; f < f_count; ++f)
            if (names[f] == k) return field(f);
        return f_unknown;
    }

    // A value of the wrong type for the current top-level field (no-op for unknown fields).
    void mistyped() noexcept
    {
        if (field_ < f_count) marks_[field_] = mark::bad;
    }

    // A number, boolean or null where the context wants something else.
    void scalar_mistyped() noexcept
    {
        if (skipping_) return;
        if (depth_ == 1) mistyped();
        else if (depth_ > 1) {
            marks_[field_] = mark::bad;  // inside `headers` or `after`: only strings belong there
            skipping_ = true;
        }
    }

    // `signed_ok`: the parser produced an int64 (`answered` takes nothing else, as in a tree).
    void integer(std::int64_t v, bool signed_ok) noexcept
    {
        if (skipping_) return;
        if (depth_ != 1) return scalar_mistyped();
        switch (field_) {
        case f_attempts: case f_seq: case f_created: case f_next: case f_status: case f_error:
            numbers_[field_] = v;
            marks_[field_] = mark::ok;
            return;
        case f_answered:
            if (!signed_ok || !record_limits::count_ok(v)) return mistyped();
            a_.answered = static_cast<int>(v);
            marks_[field_] = mark::ok;
            return;
        default:
            mistyped();
        }
    }

    // Where the string now starting goes, or nullptr to drop it.
    std::string* start_string()
    {
        if (skipping_) return nullptr;
        if (depth_ == 1) {
            std::string* t = nullptr;
            switch (field_) {
            case f_id: t = &a_.id; break;
            case f_method: t = &method_; break;
            case f_path: t = &a_.path; break;
            case f_body: t = &a_.body; break;
            case f_key: t = &a_.idempotency_key; break;
            case f_lane: t = &a_.lane; break;
            case f_coalesce: t = &a_.coalesce_key; break;
            default: mistyped(); return nullptr;
            }
            if (body_only_ && field_ != f_id && field_ != f_body) return nullptr;
            t->clear();
            return t;
        }
        if (depth_ == 2 && field_ == f_after) return &a_.after.emplace_back();
        if (depth_ == 3 && field_ == f_headers && pair_n_ < 2) {
            auto& h = a_.headers.back();
            return pair_n_ == 0 ? &h.name : &h.value;
        }
        marks_[field_] = mark::bad;  // a bare string in `headers`, or a third one in a pair
        skipping_ = true;
        return nullptr;
    }

    bool close() noexcept
    {
        if (--depth_ <= 1) skipping_ = false;
        return true;
    }

    bool not_an_object(boost::json::error_code& ec)
    {
        ec = boost::json::error::syntax;  // a record is an object
        return false;
    }

    // In `body_only` mode, stops the parse once `id` and `body` are read.
    bool keep_going(boost::json::error_code& ec)
    {
        if (!body_only_ || marks_[f_id] != mark::ok || marks_[f_body] != mark::ok) return true;
        finished_ = true;
        ec = boost::json::error::extra_data;  // any code: finished() says this was on purpose
        return false;
    }

    sync_action a_;
    std::string method_, key_;
    std::array<mark, f_count + 1> marks_{};  // + f_unknown, written and never read
    std::array<std::int64_t, f_count> numbers_{};
    std::string* target_ = nullptr;
    std::size_t depth_ = 0;
    unsigned char pair_n_ = 0;
    field field_ = f_unknown;
    bool body_only_ = false;
    bool skipping_ = false, mid_string_ = false, finished_ = false;
};

/** Parses records one after another, reusing its buffers (a journal's `load_all`). */
class action_reader {
public:
    action_reader() : parser_(options()) {}

    /** The action in `text`; any malformed JSON, missing or mistyped field is `errc::storage_corrupt`. */
    result<sync_action> read(std::string_view text)
    {
        auto& h = parser_.handler();
        h.reset();
        parser_.reset();
        boost::json::error_code ec;
        const std::size_t used = parser_.write_some(false, text.data(), text.size(), ec);
        const auto corrupt = make_error_code(errc::storage_corrupt);
        problem_ = "not JSON";
        if (ec || used != text.size()) return corrupt;
        problem_ = "a field is missing or mistyped";
        using s = action_sax;
        for (int f = 0; f < s::f_count; ++f) {
            const auto m = h.marked(s::field(f));
            const bool optional = f >= s::f_lane;
            if (m == s::mark::bad || (m == s::mark::missing && !optional)) return corrupt;
        }
        const auto m = method_from_string(h.method());
        if (!m) return corrupt;
        const auto n = [&](s::field f) { return h.number(f); };
        if (!record_limits::numbers_ok(n(s::f_attempts), n(s::f_seq), n(s::f_created), n(s::f_next),
                                       n(s::f_status), n(s::f_error)))
            return corrupt;
        sync_action a = std::move(h.action());
        a.method = *m;
        a.attempts = static_cast<int>(n(s::f_attempts));
        a.sequence = static_cast<std::uint64_t>(n(s::f_seq));
        a.created_at = from_epoch_ms(n(s::f_created));
        a.next_attempt_at = from_epoch_ms(n(s::f_next));
        a.last_status = static_cast<int>(n(s::f_status));
        a.last_error = static_cast<int>(n(s::f_error));
        problem_ = nullptr;
        return a;
    }

    /** Why the last `read` failed, in words. */
    const char* problem() const noexcept { return problem_; }

    static boost::json::parse_options options() noexcept
    {
        boost::json::parse_options o;
        o.allow_invalid_utf8 = true;  // bodies may hold any bytes
        return o;
    }

private:
    boost::json::basic_parser<action_sax> parser_;
    const char* problem_ = nullptr;
};

/** Parses one serialized record (bytes in strings need not be valid UTF-8). */
inline result<sync_action> parse_action(std::string_view text)
{
    return action_reader().read(text);
}

/**
 * The body of one serialized record, reading no further than it (a drain reads a body back per
 * attempt: SPEC 9.8). A record whose `id` is not `id` is corrupt.
 */
inline result<std::string> parse_body(std::string_view text, std::string_view id)
{
    boost::json::basic_parser<action_sax> p(action_reader::options(), true);
    boost::json::error_code ec;
    (void)p.write_some(false, text.data(), text.size(), ec);
    auto& h = p.handler();
    if (!h.finished() || h.action().id != id) return make_error_code(errc::storage_corrupt);
    return std::move(h.action().body);
}

} // namespace syncvault::detail

#endif
