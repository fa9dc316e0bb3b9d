// std::chrono::steady_clock as the Clock: its now() is not a wall-clock time point, so persisted
// times and HTTP dates would mean nothing. Must fail naming syncvault::clock.
#include "models.hpp"

int missing_clock()
{
    return user::use_vault<user::my_transport, user::map_storage, user::os_connectivity, user::fixed_delay,
                           std::chrono::steady_clock>();
}
