#ifndef SYNCVAULT_RESPONSE_REF_HPP
#define SYNCVAULT_RESPONSE_REF_HPP

/**
 * @file
 * `response_ref`: a placeholder for a value the server has not assigned yet (SPEC 9.4).
 *
 * @code
 * auto created = v.post("/todos", todo{"milk"});                 // offline: queued
 * v.patch("/todos/" + syncvault::response_ref(created.action_id(), "/id"), done{true});
 * @endcode
 *
 * When the referenced action succeeds, each placeholder in a later request's path, header
 * values and JSON body is replaced by the value at the JSON pointer (RFC 6901) in its response
 * body. A reference implies `request_options::after`.
 */

#include <string>
#include <string_view>

namespace syncvault {

namespace detail {
inline constexpr std::string_view ref_prefix = "~svref:";  // unreserved in URLs, plain in headers and JSON
inline constexpr char ref_separator = ':';
inline constexpr char ref_suffix = '~';
}  // namespace detail

/**
 * A placeholder for the value at `json_pointer` in the response body of action `action_id`.
 * Its form (`~svref:<id>:<pointer as hex>~`) uses only characters that are valid unescaped in a
 * path, a header value and a JSON string, so a request carrying it passes every check.
 */
inline std::string response_ref(std::string_view action_id, std::string_view json_pointer)
{
    constexpr char digits[] = "0123456789abcdef";
    std::string out(detail::ref_prefix);
    out += action_id;
    out += detail::ref_separator;
    for (unsigned char c : json_pointer) {
        out += digits[c >> 4];
        out += digits[c & 15];
    }
    out += detail::ref_suffix;
    return out;
}

}  // namespace syncvault

#endif
