// A connectivity that spells its query online() instead of is_online(). Must fail naming
// syncvault::connectivity.
#include "models.hpp"

namespace user {
struct misnamed_connectivity {
    bool online() const { return true; }
};
}  // namespace user

int missing_connectivity()
{
    return user::use_vault<user::my_transport, user::map_storage, user::misnamed_connectivity, user::fixed_delay,
                           user::utc_clock>();
}
