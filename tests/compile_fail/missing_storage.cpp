// A storage without count(). Must fail naming syncvault::storage.
#include "models.hpp"

namespace user {
struct uncounted_storage {
    std::vector<syncvault::sync_action> rows;
    std::error_code save(const syncvault::sync_action& a)
    {
        rows.push_back(a);
        return {};
    }
    std::error_code remove(std::string_view) { return {}; }
    syncvault::result<std::vector<syncvault::sync_action>> load_all() { return rows; }
    std::error_code clear()
    {
        rows.clear();
        return {};
    }
};
}  // namespace user

int missing_storage()
{
    return user::use_vault<user::my_transport, user::uncounted_storage, user::os_connectivity, user::fixed_delay,
                           user::utc_clock>();
}
