#ifndef SYNCVAULT_BODY_HPP
#define SYNCVAULT_BODY_HPP

/**
 * @file
 * Request and response bodies. A body handed to `post`/`put`/`patch` is a `boost::json::value`,
 * a user's `BOOST_HANA_DEFINE_STRUCT` type (or anything Boost.JSON converts), or a `raw_body`;
 * responses read back into a struct with `body_as<T>`. A `std::string` or `const char*` body does
 * not compile (is it bytes or JSON text?): wrap bytes in `raw_body`, parse JSON text with
 * `boost::json::parse`; a struct without `BOOST_HANA_DEFINE_STRUCT` (or Boost.JSON's
 * `tag_invoke`) does not compile either.
 *
 * @code
 * struct job_done { BOOST_HANA_DEFINE_STRUCT(job_done, (int, id), (std::string, status)); };
 * v.post("/jobs", job_done{7, "DONE"});
 * auto job = syncvault::body_as<job_done>(*sent.response());   // result<job_done>
 * @endcode
 */

#include <syncvault/action.hpp>
#include <syncvault/detail/json_convert.hpp>

#include <boost/json.hpp>

#include <cstddef>
#include <string>
#include <string_view>
#include <type_traits>

namespace syncvault {

namespace detail {

/** Text whose meaning the vault cannot guess: bytes, or JSON to parse? */
template <class B>
inline constexpr bool is_text_body =
    std::is_same_v<B, std::string> || std::is_same_v<B, std::string_view> || std::is_same_v<B, const char*> ||
    std::is_same_v<B, char*> || (std::is_array_v<B> && std::is_same_v<std::remove_cv_t<std::remove_extent_t<B>>, char>);

/**
 * True when `Body` can be a request body; otherwise the first error names the way out (SPEC
 * 9.6): `raw_body` or `boost::json::parse` for text, `BOOST_HANA_DEFINE_STRUCT` for a struct.
 */
template <class Body>
consteval bool check_body()
{
    using B = std::remove_cvref_t<Body>;
    static_assert(!is_text_body<B>,
                  "syncvault: a std::string or const char* body is ambiguous; send bytes as syncvault::raw_body{bytes, "
                  "content_type}, or JSON text as boost::json::parse(text)");
    constexpr bool known = std::is_same_v<B, std::nullptr_t> || std::is_same_v<B, raw_body> ||
                           std::is_same_v<B, boost::json::value> || std::is_same_v<B, boost::json::object> ||
                           std::is_same_v<B, boost::json::array>;
    static_assert(is_text_body<B> || known || is_hana_struct<B> || boost::json::has_value_from<B>::value,
                  "syncvault: this body type has no JSON form; declare its members with BOOST_HANA_DEFINE_STRUCT "
                  "(see syncvault/body.hpp), or give it Boost.JSON's tag_invoke(value_from_tag, ...)");
    return !is_text_body<B> && (known || is_hana_struct<B> || boost::json::has_value_from<B>::value);
}

} // namespace detail

/** `value` as JSON: Hana structs member by member, everything else through Boost.JSON. */
template <class T>
boost::json::value to_json(const T& value)
{
    boost::json::value out;
    detail::to_json(out, value);
    return out;
}

/** `json` as a `T`; `errc::invalid_request` (or Boost.JSON's error) when it does not fit. */
template <class T>
result<T> from_json(const boost::json::value& json)
{
    return detail::from_json<T>(json);
}

/** Parses a JSON text into a `T`. */
template <class T>
result<T> body_as(std::string_view json_text)
{
    boost::system::error_code ec;
    auto parsed = boost::json::parse(json_text, ec);
    if (ec) return ec;
    return from_json<T>(parsed);
}

/** Parses a response body into a `T`. */
template <class T>
result<T> body_as(const http_response& response)
{
    return body_as<T>(std::string_view{response.body});
}

} // namespace syncvault

#endif
