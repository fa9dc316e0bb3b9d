#ifndef SYNCVAULT_DETAIL_UUID_HPP
#define SYNCVAULT_DETAIL_UUID_HPP

// Random (version 4) UUIDs from Boost.UUID, for action ids and generated idempotency keys.

#include <boost/uuid/random_generator.hpp>
#include <boost/uuid/uuid_io.hpp>

#include <string>

namespace syncvault::detail {

inline std::string make_uuid_v4()
{
    // One generator per thread: boost::uuids::random_generator is not thread-safe.
    thread_local boost::uuids::random_generator generate;
    return boost::uuids::to_string(generate());
}

} // namespace syncvault::detail

#endif
