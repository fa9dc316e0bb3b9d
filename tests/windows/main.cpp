// The Windows test executable's main: Catch2's runner, and the child mode the process tests use
// (the executable re-invoked as `--syncvault-child <role> ...`: see child_process.hpp). Also
// where Boost.JSON and Boost.URL are compiled, header-only, once for the whole program.

#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <boost/json/src.hpp>
#include <boost/url/src.hpp>

#include "child_process.hpp"

#include <cstring>

int main(int argc, char* argv[])
{
    if (argc >= 2 && std::strcmp(argv[1], syncvault_windows_tests::child_flag) == 0)
        return syncvault_windows_tests::child_main(argc - 2, argv + 2);
    return Catch::Session().run(argc, argv);
}
