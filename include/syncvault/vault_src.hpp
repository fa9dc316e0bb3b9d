#ifndef SYNCVAULT_VAULT_SRC_HPP
#define SYNCVAULT_VAULT_SRC_HPP

/**
 * @file
 * Separate compilation of <syncvault/vault.hpp> (SPEC 9.7): with SYNCVAULT_SEPARATE_COMPILATION
 * defined in every translation unit of the program, include this file in exactly one of them
 * (instead of <syncvault/src.hpp>, which it includes). It compiles `syncvault::vault` (the
 * defaults: libcurl, file journal, TCP probe, jittered backoff) once, so a file that posts
 * compiles only its own calls. Link `syncvault::curl`.
 *
 * Without SYNCVAULT_SEPARATE_COMPILATION every header is complete on its own and this file adds
 * nothing.
 *
 * @code
 * // syncvault_src.cpp, compiled with -DSYNCVAULT_SEPARATE_COMPILATION like every other file
 * #include <syncvault/vault_src.hpp>
 * @endcode
 */

#include <syncvault/detail/compile_mode.hpp>

#ifdef SYNCVAULT_SEPARATE_COMPILATION
#include <syncvault/src.hpp>
#include <syncvault/vault.hpp>

#include <chrono>

namespace syncvault {

template class basic_vault<curl_transport, file_journal, polling_connectivity, jittered_backoff,
                           std::chrono::system_clock>;

}  // namespace syncvault
#endif

#endif
