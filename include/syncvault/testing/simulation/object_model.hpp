#ifndef SYNCVAULT_TESTING_SIMULATION_OBJECT_MODEL_HPP
#define SYNCVAULT_TESTING_SIMULATION_OBJECT_MODEL_HPP

/**
 * @file
 * The objects a simulated server keeps, and how one request changes them: PUT replaces, PATCH
 * merges by RFC 7396, DELETE removes, POST creates (at its own path when the last segment is a
 * number, else in the collection under an id the server assigns). `model_server` applies each
 * request it accepts; the oracle applies the application's requests one by one, in order, and
 * compares (SPEC 9.4: coalescing never changes the effect). Written from the RFC, independently
 * of the vault's own merge code.
 */

#include <syncvault/action.hpp>

#include <boost/json.hpp>

#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace syncvault::testing {

/** The objects: path (as the server sees it, e.g. `/api/notes/3`) to JSON value. */
using object_map = std::map<std::string, boost::json::value>;

/** RFC 7396 section 2: the result of applying merge patch `patch` to `target`. */
inline boost::json::value merge_patch(boost::json::value target, const boost::json::value& patch)
{
    if (!patch.is_object()) return patch;
    if (!target.is_object()) target = boost::json::object{};
    auto& t = target.as_object();
    for (const auto& [name, value] : patch.as_object()) {
        if (value.is_null()) {
            t.erase(name);
        } else {
            auto it = t.find(name);
            t[name] = merge_patch(it == t.end() ? boost::json::value{} : it->value(), value);
        }
    }
    return target;
}

/** The path part of a URL (`http://host/api/x?q` gives `/api/x`). */
inline std::string object_path(std::string_view url)
{
    auto scheme = url.find("://");
    auto start = url.find('/', scheme == std::string_view::npos ? 0 : scheme + 3);
    if (start == std::string_view::npos) return "/";
    auto stop = url.find_first_of("?#", start);
    return std::string(url.substr(start, stop == std::string_view::npos ? std::string_view::npos : stop - start));
}

/** Whether a POST to `path` creates the object at `path` itself (its last segment is a number). */
inline bool creates_in_place(std::string_view path)
{
    const auto slash = path.rfind('/');
    const auto last = path.substr(slash == std::string_view::npos ? 0 : slash + 1);
    return !last.empty() && last.find_first_not_of("0123456789") == std::string_view::npos;
}

/** A body as JSON (a body that is not JSON is kept as a string). */
inline boost::json::value body_value(std::string_view body)
{
    boost::system::error_code ec;
    auto v = boost::json::parse(body, ec);
    if (ec) return boost::json::value(body);
    return v;
}

/**
 * Applies one request to `objects`. A POST to a collection creates `<path>/<assigned_id>`.
 * Returns the path it changed.
 */
inline std::string apply_request(object_map& objects, http_method method, std::string_view url, std::string_view body,
                                 std::string_view assigned_id = {})
{
    auto path = object_path(url);
    switch (method) {
    case http_method::post:
        if (!creates_in_place(path)) path += "/" + std::string(assigned_id);
        objects[path] = body_value(body);
        break;
    case http_method::put: objects[path] = body_value(body); break;
    case http_method::patch: {
        auto it = objects.find(path);
        objects[path] = merge_patch(it == objects.end() ? boost::json::value{} : it->second, body_value(body));
        break;
    }
    case http_method::delete_: objects.erase(path); break;
    default: break;
    }
    return path;
}

/** The id a POST's JSON response names (`{"id": ...}`), if any. */
inline std::optional<std::string> assigned_id(std::string_view response_body)
{
    boost::system::error_code ec;
    auto v = boost::json::parse(response_body, ec);
    if (ec || !v.is_object()) return std::nullopt;
    auto* id = v.as_object().if_contains("id");
    if (!id || !id->is_string()) return std::nullopt;
    return std::string(id->as_string());
}

}  // namespace syncvault::testing

#endif
