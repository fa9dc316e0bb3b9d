#ifndef SYNCVAULT_DETAIL_RESPONSE_REFS_HPP
#define SYNCVAULT_DETAIL_RESPONSE_REFS_HPP

// Finding `response_ref` placeholders in an action and replacing them by values from a parent's
// response (SPEC 9.4). Pure functions: the queue machine calls them under its lock when a
// parent succeeds, and the result is persisted before the dependent's first attempt.

#include <syncvault/action.hpp>
#include <syncvault/error.hpp>
#include <syncvault/response_ref.hpp>
#include <syncvault/detail/request_check.hpp>
#include <syncvault/detail/url_encode.hpp>

#include <boost/json.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace syncvault::detail {

/** One placeholder found in a text: where it is, and what it names. */
struct found_ref {
    std::size_t begin = 0, end = 0;  // [begin, end) in the text
    std::string_view action_id;
    std::string pointer;  // decoded
};

/** The first well-formed placeholder at or after `from`; malformed ones are plain text. */
inline std::optional<found_ref> next_ref(std::string_view text, std::size_t from)
{
    auto unhex = [](char c) { return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1; };
    for (auto at = text.find(ref_prefix, from); at != std::string_view::npos; at = text.find(ref_prefix, at + 1)) {
        const auto id_begin = at + ref_prefix.size();
        const auto sep = text.find(ref_separator, id_begin);
        if (sep == std::string_view::npos) return std::nullopt;
        const auto stop = text.find(ref_suffix, sep + 1);
        if (stop == std::string_view::npos) return std::nullopt;
        const auto id = text.substr(id_begin, sep - id_begin);
        const auto hex = text.substr(sep + 1, stop - sep - 1);
        if (id.empty() || id.find(ref_suffix) != std::string_view::npos || hex.size() % 2 != 0) continue;
        std::string pointer;
        bool ok = true;
        for (std::size_t i = 0; i < hex.size() && ok; i += 2) {
            const int hi = unhex(hex[i]), lo = unhex(hex[i + 1]);
            ok = hi >= 0 && lo >= 0;
            pointer += static_cast<char>(hi * 16 + lo);
        }
        if (ok) return found_ref{at, stop + 1, id, std::move(pointer)};
    }
    return std::nullopt;
}

/** Whether `a`'s body is JSON (the only kind of body placeholders are replaced in). */
inline bool has_json_body(const sync_action& a)
{
    auto type = find_header(a.headers, "Content-Type");
    return type && type->substr(0, 16) == "application/json";
}

/** Every placeholder's action id in `a`'s path, header values and (JSON) body, and `extra` headers. */
inline std::vector<std::string> referenced_ids(const sync_action& a, const std::vector<header>& extra = {})
{
    std::vector<std::string> ids;
    auto scan = [&](std::string_view text) {
        for (auto r = next_ref(text, 0); r; r = next_ref(text, r->end))
            if (std::find(ids.begin(), ids.end(), r->action_id) == ids.end()) ids.emplace_back(r->action_id);
    };
    scan(a.path);
    for (const auto& h : a.headers) scan(h.value);
    for (const auto& h : extra) scan(h.value);
    if (has_json_body(a)) scan(a.body);
    return ids;
}

/**
 * Replaces the placeholders naming `parent` in `text` by the text of their values in `response`
 * (a string's characters, any other value's JSON text), each passed through `encode`. False if a
 * pointer does not resolve.
 */
template <class Encode>
bool substitute_text(std::string& text, std::string_view parent, const boost::json::value& response, Encode encode)
{
    if (text.find(ref_prefix) == std::string::npos) return true;
    std::string out;
    std::size_t copied = 0;
    for (auto r = next_ref(text, 0); r; r = next_ref(text, r->end)) {
        if (r->action_id != parent) continue;
        boost::system::error_code ec;
        const auto* value = response.find_pointer(r->pointer, ec);
        if (!value) return false;
        out.append(text, copied, r->begin - copied);
        out += encode(value->is_string() ? std::string(value->get_string()) : boost::json::serialize(*value));
        copied = r->end;
    }
    if (copied == 0) return true;
    out.append(text, copied);
    text = std::move(out);
    return true;
}

/** Walks a JSON body: a string that is exactly one placeholder takes the value with its type. */
inline bool substitute_json(boost::json::value& v, std::string_view parent, const boost::json::value& response)
{
    if (auto* s = v.if_string()) {
        const std::string_view text = *s;
        if (auto r = next_ref(text, 0); r && r->begin == 0 && r->end == text.size() && r->action_id == parent) {
            boost::system::error_code ec;
            const auto* value = response.find_pointer(r->pointer, ec);
            if (!value) return false;
            v = *value;
            return true;
        }
        std::string copy(text);
        if (!substitute_text(copy, parent, response, [](std::string t) { return t; })) return false;
        if (copy != text) *s = copy;
        return true;
    }
    if (auto* o = v.if_object()) {
        for (auto& member : *o)
            if (!substitute_json(member.value(), parent, response)) return false;
    } else if (auto* a = v.if_array()) {
        for (auto& item : *a)
            if (!substitute_json(item, parent, response)) return false;
    }
    return true;
}

/**
 * Rewrites `a` (and its in-memory `sensitive` headers) with `parent`'s values from its
 * `response_body`. `errc::dependency_failed` if the body is not JSON, a pointer does not resolve,
 * or the result is not a valid request (a value that puts a line break in a header, say); `a`
 * is then unchanged.
 */
inline std::error_code substitute_refs(sync_action& a, std::vector<header>& sensitive, std::string_view parent,
                                       std::string_view response_body, std::size_t max_path_bytes)
{
    const auto failed = make_error_code(errc::dependency_failed);
    boost::system::error_code ec;
    const auto response = boost::json::parse(response_body, ec);
    if (ec) return failed;
    sync_action out = a;
    auto extra = sensitive;
    auto for_url = [](const std::string& t) { return percent_encode_unreserved(t); };
    auto as_is = [](std::string t) { return t; };
    if (!substitute_text(out.path, parent, response, for_url) || check_path(out.path, max_path_bytes)) return failed;
    for (auto* headers : {&out.headers, &extra})
        for (auto& h : *headers)
            if (!substitute_text(h.value, parent, response, as_is) || check_header(h)) return failed;
    if (has_json_body(out) && out.body.find(ref_prefix) != std::string::npos) {
        auto body = boost::json::parse(out.body, ec);
        if (ec || !substitute_json(body, parent, response)) return failed;
        out.body = boost::json::serialize(body);
    }
    std::erase(out.after, std::string(parent));
    // Only what changed: the id and key stay the very strings they were (the queue's indexes
    // view them).
    a.path = std::move(out.path);
    a.headers = std::move(out.headers);
    a.body = std::move(out.body);
    a.after = std::move(out.after);
    sensitive = std::move(extra);
    return {};
}

}  // namespace syncvault::detail

#endif
