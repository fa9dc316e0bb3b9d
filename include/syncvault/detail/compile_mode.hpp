#ifndef SYNCVAULT_DETAIL_COMPILE_MODE_HPP
#define SYNCVAULT_DETAIL_COMPILE_MODE_HPP

// How syncvault's non-template parts are compiled (SPEC 9.7).
//
// Header-only (the default): every function is defined in the headers, `inline`; nothing to
// build or link but Boost and the policies' own libraries.
//
// Separate compilation (opt-in, as Boost.JSON's <boost/json/src.hpp>): define
// SYNCVAULT_SEPARATE_COMPILATION in every translation unit of the program (a compile
// definition), and include <syncvault/src.hpp> (or <syncvault/vault_src.hpp>, which adds
// curl_transport and the `vault` alias) in exactly one of them. The headers then declare what
// they used to define (the connectivity probe's Boost.Asio, Boost.URL parsing, UUIDs, the
// CRC), and <syncvault/vault.hpp> declares `syncvault::vault` an extern template: a file that
// posts compiles only what it instantiates itself (the body's conversion to JSON).

#ifdef SYNCVAULT_SEPARATE_COMPILATION
// Defined out of line, in the one translation unit that includes <syncvault/src.hpp>.
#define SYNCVAULT_DECL
#else
#define SYNCVAULT_DECL inline
#endif

#endif
