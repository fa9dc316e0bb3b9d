// A retry policy without max_delay(), the cap Retry-After is clamped to. Must fail naming
// syncvault::retry_policy.
#include "models.hpp"

namespace user {
struct uncapped_delay {
    syncvault::outcome_kind classify(const syncvault::result<syncvault::http_response>& o) const
    {
        return syncvault::classify_outcome(o);
    }
    std::chrono::milliseconds delay(int) { return std::chrono::seconds{5}; }
};
}  // namespace user

int missing_retry_policy()
{
    return user::use_vault<user::my_transport, user::map_storage, user::os_connectivity, user::uncapped_delay,
                           user::utc_clock>();
}
