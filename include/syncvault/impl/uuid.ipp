#ifndef SYNCVAULT_IMPL_UUID_IPP
#define SYNCVAULT_IMPL_UUID_IPP

// The body of detail/uuid.hpp: inline there, or compiled once by <syncvault/src.hpp>.

#include <syncvault/detail/uuid.hpp>

#include <boost/uuid/random_generator.hpp>
#include <boost/uuid/uuid_io.hpp>

#include <string>

namespace syncvault::detail {

SYNCVAULT_DECL std::string make_uuid_v4()
{
    // One generator per thread: boost::uuids::random_generator is not thread-safe.
    thread_local boost::uuids::random_generator generate;
    return boost::uuids::to_string(generate());
}

}  // namespace syncvault::detail

#endif
