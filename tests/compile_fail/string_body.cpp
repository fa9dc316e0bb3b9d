// A std::string or string literal body: bytes or JSON text? Must fail with one static_assert
// pointing to raw_body and boost::json::parse (SPEC 9.6).
#include "models.hpp"

int string_body()
{
    syncvault::basic_vault<user::my_transport, user::map_storage, user::os_connectivity, user::fixed_delay,
                           user::utc_clock>
        v{syncvault::vault_config{.base_url = "http://api.test"}};
    auto r = v.post("/jobs", std::string(R"({"id":1})"));
    return r.is_sent() ? 0 : 1;
}
