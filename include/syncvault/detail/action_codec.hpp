#ifndef SYNCVAULT_DETAIL_ACTION_CODEC_HPP
#define SYNCVAULT_DETAIL_ACTION_CODEC_HPP

// sync_action <-> one Boost.JSON object: the record format of file_journal and sqlite_storage.
// Field names are short but readable; times are milliseconds since the Unix epoch. Bodies may
// hold any bytes: they are written as JSON strings and read back with invalid UTF-8 allowed.
// `encode_action`/`decode_action` are the format as a tree (sqlite_storage's `extra` column, the
// tests' reference); `serialize_action` writes the same bytes without a tree, and
// action_reader.hpp reads them back without one.

#include <syncvault/action.hpp>
#include <syncvault/detail/record_limits.hpp>

#include <boost/json.hpp>

#include <charconv>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace syncvault::detail {

inline std::int64_t to_epoch_ms(std::chrono::system_clock::time_point t) noexcept
{
    return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

inline std::chrono::system_clock::time_point from_epoch_ms(std::int64_t ms) noexcept
{
    return std::chrono::system_clock::time_point{
        std::chrono::duration_cast<std::chrono::system_clock::duration>(std::chrono::milliseconds{ms})};
}

/**
 * Adds the 0.2 fields of `a` to `o`, each only when set: records stay compact and 0.1 records
 * read back as is. sqlite_storage keeps exactly these in its `extra` column.
 */
inline void encode_action_extras(const sync_action& a, boost::json::object& o)
{
    if (!a.lane.empty()) o["lane"] = a.lane;
    if (!a.coalesce_key.empty()) o["coalesce"] = a.coalesce_key;
    if (!a.after.empty()) {
        boost::json::array after;
        after.reserve(a.after.size());
        for (const auto& id : a.after) after.push_back(boost::json::string(id));
        o["after"] = std::move(after);
    }
    if (a.answered != 0) o["answered"] = a.answered;
}

/** Reads the 0.2 fields `encode_action_extras` writes into `a`; false if one is mistyped. */
inline bool decode_action_extras(const boost::json::object& o, sync_action& a)
{
    if (auto* lane = o.if_contains("lane")) {
        if (!lane->is_string()) return false;
        a.lane = lane->get_string();
    }
    if (auto* coalesce = o.if_contains("coalesce")) {
        if (!coalesce->is_string()) return false;
        a.coalesce_key = coalesce->get_string();
    }
    if (auto* after = o.if_contains("after")) {
        if (!after->is_array()) return false;
        for (const auto& id : after->get_array()) {
            if (!id.is_string()) return false;
            a.after.emplace_back(id.get_string());
        }
    }
    if (auto* f = o.if_contains("answered")) {
        if (!f->is_int64() || !record_limits::count_ok(f->get_int64())) return false;
        a.answered = static_cast<int>(f->get_int64());
    }
    return true;
}

inline boost::json::object encode_action(const sync_action& a)
{
    boost::json::array headers;
    headers.reserve(a.headers.size());
    for (const auto& h : a.headers) headers.push_back(boost::json::array{h.name, h.value});
    boost::json::object o{
        {"id", a.id},
        {"method", to_string(a.method)},
        {"path", a.path},
        {"body", a.body},
        {"headers", std::move(headers)},
        {"key", a.idempotency_key},
        {"attempts", a.attempts},
        {"seq", a.sequence},
        {"dead", a.state == action_state::dead},
        {"created", to_epoch_ms(a.created_at)},
        {"next", to_epoch_ms(a.next_attempt_at)},
        {"status", a.last_status},
        {"error", a.last_error},
    };
    encode_action_extras(a, o);
    return o;
}

/** Appends `s` to `out` as a JSON string, escaped by Boost.JSON's serializer. */
inline void append_json_string(std::string& out, std::string_view s, boost::json::serializer& sr)
{
    sr.reset(boost::json::string_view(s.data(), s.size()));
    char buf[1024];
    while (!sr.done()) {
        const auto part = sr.read(buf, sizeof buf);
        out.append(part.data(), part.size());
    }
}

template <class Integer>
void append_json_int(std::string& out, Integer v)
{
    char buf[24];
    const auto r = std::to_chars(buf, buf + sizeof buf, v);
    out.append(buf, r.ptr);
}

/** Where a record keeps the body: in its JSON, or beside it (`"body":""` in the JSON). */
enum class record_body { in_json, beside };

/**
 * The record of `a`: the object `encode_action` builds, byte for byte, written straight into a
 * string. Every save goes through here (an enqueue, each attempt count), so no tree is built.
 * With `record_body::beside` the body is left out (written as ""): file_journal stores its bytes
 * after the JSON, neither escaped nor parsed.
 */
inline std::string serialize_action(const sync_action& a, record_body body = record_body::in_json)
{
    boost::json::serializer sr;
    std::string out;
    // Room for a body with some escapes: one allocation for most records.
    const std::size_t body_size = body == record_body::in_json ? a.body.size() : 0;
    std::size_t hint = 192 + a.id.size() + a.path.size() + body_size + body_size / 4 +
                       a.idempotency_key.size() + a.lane.size() + a.coalesce_key.size();
    for (const auto& h : a.headers) hint += h.name.size() + h.value.size() + 8;
    for (const auto& id : a.after) hint += id.size() + 3;
    out.reserve(hint);
    const auto str = [&](std::string_view key, std::string_view v) {
        out += key;
        append_json_string(out, v, sr);
    };
    const auto num = [&](std::string_view key, auto v) {
        out += key;
        append_json_int(out, v);
    };
    str("{\"id\":", a.id);
    str(",\"method\":", to_string(a.method));
    str(",\"path\":", a.path);
    if (body == record_body::in_json)
        str(",\"body\":", a.body);
    else
        out += ",\"body\":\"\"";
    out += ",\"headers\":[";
    for (std::size_t i = 0; i < a.headers.size(); ++i) {
        str(i ? ",[" : "[", a.headers[i].name);
        str(",", a.headers[i].value);
        out += ']';
    }
    out += ']';
    str(",\"key\":", a.idempotency_key);
    num(",\"attempts\":", a.attempts);
    num(",\"seq\":", a.sequence);  // unsigned, as in the tree
    out += a.state == action_state::dead ? ",\"dead\":true" : ",\"dead\":false";
    num(",\"created\":", to_epoch_ms(a.created_at));
    num(",\"next\":", to_epoch_ms(a.next_attempt_at));
    num(",\"status\":", a.last_status);
    num(",\"error\":", a.last_error);
    // The 0.2 fields, each only when set, in encode_action_extras' order.
    if (!a.lane.empty()) str(",\"lane\":", a.lane);
    if (!a.coalesce_key.empty()) str(",\"coalesce\":", a.coalesce_key);
    if (!a.after.empty()) {
        for (std::size_t i = 0; i < a.after.size(); ++i) str(i ? "," : ",\"after\":[", a.after[i]);
        out += ']';
    }
    if (a.answered != 0) num(",\"answered\":", a.answered);
    out += '}';
    return out;
}

/** Rebuilds an action from its tree; any missing or mistyped field is `errc::storage_corrupt`. */
inline result<sync_action> decode_action(const boost::json::value& v)
{
    const auto corrupt = make_error_code(errc::storage_corrupt);
    const auto* o = v.if_object();
    if (!o) return corrupt;
    auto str = [&](std::string_view k) -> const boost::json::string* {
        auto* f = o->if_contains(k);
        return f ? f->if_string() : nullptr;
    };
    auto num = [&](std::string_view k) -> std::optional<std::int64_t> {
        auto* f = o->if_contains(k);
        if (!f) return std::nullopt;
        if (auto* i = f->if_int64()) return *i;
        if (auto* u = f->if_uint64(); u && *u <= std::uint64_t(INT64_MAX)) return std::int64_t(*u);
        return std::nullopt;
    };
    auto* id = str("id");
    auto* method = str("method");
    auto* path = str("path");
    auto* body = str("body");
    auto* key = str("key");
    auto* headers = o->if_contains("headers");
    auto* dead = o->if_contains("dead");
    auto attempts = num("attempts"), seq = num("seq"), created = num("created"), next = num("next"),
         status = num("status"), error = num("error");
    if (!id || !method || !path || !body || !key || !headers || !headers->is_array() || !dead ||
        !dead->is_bool() || !attempts || !seq || !created || !next || !status || !error)
        return corrupt;
    auto m = method_from_string(*method);
    if (!m) return corrupt;
    if (!record_limits::numbers_ok(*attempts, *seq, *created, *next, *status, *error))
        return corrupt;

    sync_action a;
    a.id = *id;
    a.method = *m;
    a.path = *path;
    a.body = *body;
    for (const auto& h : headers->get_array()) {
        const auto* pair = h.if_array();
        if (!pair || pair->size() != 2 || !(*pair)[0].is_string() || !(*pair)[1].is_string())
            return corrupt;
        a.headers.push_back({std::string((*pair)[0].get_string()), std::string((*pair)[1].get_string())});
    }
    a.idempotency_key = *key;
    a.attempts = static_cast<int>(*attempts);
    a.sequence = static_cast<std::uint64_t>(*seq);
    a.state = dead->get_bool() ? action_state::dead : action_state::pending;
    a.created_at = from_epoch_ms(*created);
    a.next_attempt_at = from_epoch_ms(*next);
    a.last_status = static_cast<int>(*status);
    a.last_error = static_cast<int>(*error);
    if (!decode_action_extras(*o, a)) return corrupt;
    return a;
}

} // namespace syncvault::detail

#endif
