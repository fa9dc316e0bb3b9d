#ifndef SYNCVAULT_HPP
#define SYNCVAULT_HPP

// Everything in syncvault that needs only Boost (and POSIX) for an application. libcurl's
// `curl_transport` (and the `vault` alias over it) and `sqlite_storage` have their own headers
// and CMake targets; the test doubles are in <syncvault/testing/...>, included by tests.

#include <syncvault/action.hpp>
#include <syncvault/config.hpp>
#include <syncvault/error.hpp>
#include <syncvault/events.hpp>

#include <syncvault/concepts/clock.hpp>
#include <syncvault/concepts/connectivity.hpp>
#include <syncvault/concepts/retry_policy.hpp>
#include <syncvault/concepts/storage.hpp>
#include <syncvault/concepts/transport.hpp>

#include <syncvault/background_sync.hpp>
#include <syncvault/basic_vault.hpp>
#include <syncvault/body.hpp>

#include <syncvault/connectivity/manual_connectivity.hpp>
#include <syncvault/connectivity/polling_connectivity.hpp>
#include <syncvault/retry/jittered_backoff.hpp>
#include <syncvault/storage/file_journal.hpp>
#include <syncvault/storage/memory_storage.hpp>

#include <syncvault/ui/event_tracker.hpp>
#include <syncvault/ui/status_watcher.hpp>
#include <syncvault/ui/sync_listener.hpp>

// Not the test doubles of <syncvault/testing/...> (fake clock and transport, the simulator, the
// storage laws): tests include the ones they use, and production code never pays for them.

#endif
