// A struct the vault cannot turn into JSON: must fail with one static_assert naming
// BOOST_HANA_DEFINE_STRUCT (SPEC 9.6).
#include "models.hpp"

namespace user {
struct job_done {
    int id;
    std::string status;
};
} // namespace user

int unreflected_body()
{
    syncvault::basic_vault<user::my_transport, user::map_storage, user::os_connectivity, user::fixed_delay,
                           user::utc_clock>
        v{syncvault::vault_config{.base_url = "http://api.test"}};
    auto r = v.post("/jobs", user::job_done{7, "DONE"});
    return r.is_sent() ? 0 : 1;
}
