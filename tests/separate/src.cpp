// The one file of the program that compiles syncvault's non-template parts and `vault`.
#include <syncvault/vault_src.hpp>
