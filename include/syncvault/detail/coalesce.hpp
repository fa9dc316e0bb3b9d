#ifndef SYNCVAULT_DETAIL_COALESCE_HPP
#define SYNCVAULT_DETAIL_COALESCE_HPP

// What a request does to the pending action it coalesces with (SPEC 9.4), as a pure function of
// the two actions. The queue machine decides whether they may meet at all (same lane and key,
// never attempted, not in flight); this decides what they become.

#include <syncvault/action.hpp>
#include <syncvault/detail/json_merge.hpp>
#include <syncvault/detail/response_refs.hpp>

#include <boost/json.hpp>

#include <algorithm>
#include <optional>
#include <string>
#include <vector>

namespace syncvault::detail {

struct coalesce_outcome {
    enum class kind {
        queue_behind,  // no merge: the request is queued as usual
        merge,         // `merged` replaces the earlier action, which keeps its id, key and place
        cancel_both,   // a DELETE after a never-sent POST: the POST is cancelled, nothing queued
    } what = kind::queue_behind;
    sync_action merged;
};

/** `body` parsed, if `a`'s body is JSON. */
inline std::optional<boost::json::value> json_body(const sync_action& a)
{
    if (!has_json_body(a)) return std::nullopt;
    boost::system::error_code ec;
    auto v = boost::json::parse(a.body, ec);
    if (ec) return std::nullopt;
    return v;
}

/**
 * `incoming` (a PUT, PATCH or DELETE) arriving behind `earlier` (same lane and coalesce key,
 * never attempted). The merged action must keep every promise `earlier` made: it names no
 * action `earlier` did not already wait for, and never itself (a placeholder for its own
 * response could not be filled); a body over `max_body_bytes`, a PATCH that is not a JSON
 * object, or a pair RFC 7396 cannot fold queue behind instead.
 */
inline coalesce_outcome coalesce(const sync_action& earlier, const sync_action& incoming, std::size_t max_body_bytes)
{
    const coalesce_outcome behind{};
    for (const auto& id : incoming.after)
        if (id != earlier.id && std::find(earlier.after.begin(), earlier.after.end(), id) == earlier.after.end())
            return behind;

    coalesce_outcome out{coalesce_outcome::kind::merge, earlier};
    sync_action& m = out.merged;
    switch (incoming.method) {
    case http_method::put:
        if (earlier.method != http_method::post) m.method = http_method::put;
        m.body = incoming.body;
        m.headers = incoming.headers;  // its Content-Type describes the new body
        break;
    case http_method::patch: {
        if (earlier.method == http_method::delete_) return behind;
        auto patch = json_body(incoming);
        auto base = json_body(earlier);
        if (!patch || !patch->is_object() || !base) return behind;
        if (earlier.method == http_method::patch) {
            if (!base->is_object() || !compose_merge_patches(base->get_object(), patch->get_object())) return behind;
        } else {
            apply_merge_patch(*base, *patch);
        }
        m.body = boost::json::serialize(*base);
        break;
    }
    case http_method::delete_:
        if (earlier.method == http_method::post) return {coalesce_outcome::kind::cancel_both, {}};
        if (earlier.method == http_method::delete_) return behind;
        m.method = http_method::delete_;
        m.path = incoming.path;
        m.headers = incoming.headers;
        m.body = incoming.body;
        break;
    default: return behind;
    }
    if (m.body.size() > max_body_bytes) return behind;
    const auto refs = referenced_ids(m);
    if (std::find(refs.begin(), refs.end(), earlier.id) != refs.end()) return behind;
    return out;
}

}  // namespace syncvault::detail

#endif
