#ifndef SYNCVAULT_DETAIL_JSON_MERGE_HPP
#define SYNCVAULT_DETAIL_JSON_MERGE_HPP

// JSON Merge Patch (RFC 7396) over Boost.JSON trees, for coalescing (SPEC 9.4). Boost.JSON 1.81
// has the tree and JSON pointers but no merge patch, so the two small algorithms are here.

#include <boost/json.hpp>

namespace syncvault::detail {

/** RFC 7396 section 2, MergePatch(target, patch): the document after the server applies `patch`. */
inline void apply_merge_patch(boost::json::value& target, const boost::json::value& patch)
{
    if (!patch.is_object()) {
        target = patch;
        return;
    }
    if (!target.is_object()) target = boost::json::object{};
    auto& doc = target.get_object();
    for (const auto& [name, value] : patch.get_object()) {
        if (value.is_null()) {
            doc.erase(name);
        } else {
            apply_merge_patch(doc[name], value);
        }
    }
}

/**
 * Folds `later` into `earlier` so that sending the result has the effect of sending `earlier`
 * and then `later`; a `null` stays (it must still delete on the server). False, with `earlier`
 * partly changed, when no single merge patch has that effect: `later` sets an object where
 * `earlier` set a scalar or deleted, since merging would then keep the server's old members.
 * Callers fold into a copy.
 */
inline bool compose_merge_patches(boost::json::object& earlier, const boost::json::object& later)
{
    for (const auto& [name, value] : later) {
        auto* before = earlier.if_contains(name);
        if (!value.is_object() || !before) {
            earlier[name] = value;  // a scalar, array or null replaces; a new member is as sent
        } else if (before->is_object()) {
            if (!compose_merge_patches(before->get_object(), value.get_object())) return false;
        } else {
            return false;
        }
    }
    return true;
}

}  // namespace syncvault::detail

#endif
