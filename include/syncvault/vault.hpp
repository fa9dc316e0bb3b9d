#ifndef SYNCVAULT_VAULT_HPP
#define SYNCVAULT_VAULT_HPP

/**
 * @file
 * `syncvault::vault`: the defaults, ready to use. libcurl sends, a file journal keeps the queue
 * under `vault_config::storage_path`, a TCP probe watches the network, jittered exponential
 * backoff spaces retries, and the system clock tells the time. Link `syncvault::curl`.
 *
 * @code
 * syncvault::vault v{{.base_url = "https://api.example.com", .storage_path = dir}};
 * syncvault::background_sync worker{v};   // replays the queue on its own thread
 * v.post("/jobs/complete", job_done{123, "DONE"}, {.idempotency_key = "job_123_complete"});
 * @endcode
 *
 * With SYNCVAULT_SEPARATE_COMPILATION defined, `vault` is compiled once, in the file that
 * includes <syncvault/vault_src.hpp> (see detail/compile_mode.hpp).
 */

#include <syncvault/background_sync.hpp>
#include <syncvault/basic_vault.hpp>
#include <syncvault/connectivity/polling_connectivity.hpp>
#include <syncvault/retry/jittered_backoff.hpp>
#include <syncvault/storage/file_journal.hpp>
#include <syncvault/transport/curl_transport.hpp>

#include <chrono>

namespace syncvault {

using vault = basic_vault<curl_transport, file_journal, polling_connectivity, jittered_backoff,
                          std::chrono::system_clock>;

#ifdef SYNCVAULT_SEPARATE_COMPILATION
// Compiled once, by <syncvault/vault_src.hpp> (see detail/compile_mode.hpp): a file that uses
// `vault` instantiates only the member templates it calls (post's body conversion).
extern template class basic_vault<curl_transport, file_journal, polling_connectivity, jittered_backoff,
                                  std::chrono::system_clock>;
#endif

} // namespace syncvault

#endif
