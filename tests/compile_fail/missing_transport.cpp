// A transport whose send returns a bare http_response, not result<http_response>: it could
// never report a network failure. Must fail naming syncvault::transport.
#include "models.hpp"

namespace user {
struct throwing_transport {
    syncvault::http_response send(const syncvault::http_request&) { return {200, {}, {}}; }
};
}  // namespace user

int missing_transport()
{
    return user::use_vault<user::throwing_transport, user::map_storage, user::os_connectivity, user::fixed_delay,
                           user::utc_clock>();
}
