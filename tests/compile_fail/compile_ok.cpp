// Positive control: the concepts' own minimal examples model them, and a vault over them
// compiles. If this fails, the compile-fail tests prove nothing.
#include "models.hpp"

static_assert(syncvault::transport<user::my_transport>);
static_assert(syncvault::storage<user::map_storage>);
static_assert(syncvault::connectivity<user::os_connectivity>);
static_assert(syncvault::retry_policy<user::fixed_delay>);
static_assert(syncvault::clock<user::utc_clock>);
static_assert(syncvault::clock<std::chrono::system_clock>);

int compile_ok()
{
    return user::use_vault<user::my_transport, user::map_storage, user::os_connectivity, user::fixed_delay,
                           user::utc_clock>();
}
