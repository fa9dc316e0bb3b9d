#ifndef SYNCVAULT_TESTING_SIMULATION_EDIT_MODEL_HPP
#define SYNCVAULT_TESTING_SIMULATION_EDIT_MODEL_HPP

/**
 * @file
 * What the simulator's model knows of one action's SPEC 9.4 edits: the application's requests
 * folded into it, the actions it waits for, and the `response_ref` placeholders it carries.
 * The checks that read it are in queue_edits.hpp.
 */

#include <syncvault/action.hpp>

#include <cstddef>
#include <string>
#include <vector>

namespace syncvault::testing::detail {

/** One request as the application made it (placeholders included). */
struct app_request {
    http_method method = http_method::post;
    std::string path, body;
};

/** A placeholder an action carries: the action it names and its text. */
struct placeholder {
    std::size_t parent = 0;  // index into the model's actions
    std::string text;        // what `response_ref(parent's id, "/id")` returned
};

/** SPEC 9.4 as the model sees one action. */
struct edit_info {
    std::string coalesce_key;
    std::vector<app_request> parts;  // the requests folded into it, oldest first
    std::vector<std::size_t> waits;  // actions it must not be sent before (pending when it was made)
    std::vector<placeholder> refs;   // placeholders in its path and body
    bool uncertain = false;          // a coalescing write failed: its stored form may be either
    bool doomed = false;             // a parent failed or was cancelled: it must end dead
    bool dependency_dead = false;    // dead-lettered with dependency_failed
    bool succeeded = false;          // reached `success` at least once
};

}  // namespace syncvault::testing::detail

#endif
