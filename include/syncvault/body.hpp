#ifndef SYNCVAULT_BODY_HPP
#define SYNCVAULT_BODY_HPP

/**
 * @file
 * Request and response bodies. A body handed to `post`/`put`/`patch` is a `boost::json::value`,
 * a user's `BOOST_HANA_DEFINE_STRUCT` type (or anything Boost.JSON converts), or a `raw_body`;
 * responses read back into a struct with `body_as<T>`.
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

#include <string>
#include <string_view>

namespace syncvault {

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
