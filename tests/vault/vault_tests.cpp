#include <syncvault.hpp>
