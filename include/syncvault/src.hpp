#ifndef SYNCVAULT_SRC_HPP
#define SYNCVAULT_SRC_HPP

/**
 * @file
 * Separate compilation (SPEC 9.7), as Boost.JSON's <boost/json/src.hpp>: with
 * SYNCVAULT_SEPARATE_COMPILATION defined in every translation unit of the program, include this
 * file in exactly one of them. It defines the non-template parts that the headers then only
 * declare (the connectivity probe's Boost.Asio, Boost.URL parsing, UUIDs), so the files that
 * include syncvault's headers no longer compile them. Needs only Boost (link `syncvault::syncvault`);
 * a program that uses `curl_transport` or `syncvault::vault` includes <syncvault/vault_src.hpp>
 * instead, which includes this one.
 *
 * Without SYNCVAULT_SEPARATE_COMPILATION every header is complete on its own and this file adds
 * nothing.
 *
 * @code
 * // syncvault_src.cpp, compiled with -DSYNCVAULT_SEPARATE_COMPILATION like every other file
 * #include <syncvault/src.hpp>
 * @endcode
 */

#include <syncvault/detail/compile_mode.hpp>

#ifdef SYNCVAULT_SEPARATE_COMPILATION
#include <syncvault/impl/polling_connectivity.ipp>
#include <syncvault/impl/request_check.ipp>
#include <syncvault/impl/url_encode.ipp>
#include <syncvault/impl/uuid.ipp>
#endif

#endif
