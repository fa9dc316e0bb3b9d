#ifndef SYNCVAULT_DETAIL_UUID_HPP
#define SYNCVAULT_DETAIL_UUID_HPP

// Random (version 4) UUIDs from Boost.UUID, for action ids and generated idempotency keys.
// Boost.UUID's generator is seen only by impl/uuid.ipp (compiled once with
// SYNCVAULT_SEPARATE_COMPILATION, see detail/compile_mode.hpp).

#include <syncvault/detail/compile_mode.hpp>

#include <string>

namespace syncvault::detail {

SYNCVAULT_DECL std::string make_uuid_v4();

}  // namespace syncvault::detail

#ifndef SYNCVAULT_SEPARATE_COMPILATION
#include <syncvault/impl/uuid.ipp>
#endif

#endif
