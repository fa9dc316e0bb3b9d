#ifndef SYNCVAULT_TESTING_FAKE_TRANSPORT_HPP
#define SYNCVAULT_TESTING_FAKE_TRANSPORT_HPP

/**
 * @file
 * `testing::fake_transport`: a scripted `syncvault::transport`. Each `send` takes the next
 * scripted outcome (a response or an error), or the default (200, empty body) once the script is
 * used up, and records the request it saw, headers included. Copies share one script and one
 * log (it is a handle): keep one in the test, give one to the vault. Thread-safe: scripts,
 * sends and queries may come from any threads at once (`thread_safe` is true).
 *
 * @code
 * syncvault::testing::fake_transport net;
 * net.respond(503, {{"Retry-After", "10"}}).fail(syncvault::errc::timeout).respond(201);
 * @endcode
 */

#include <syncvault/action.hpp>
#include <syncvault/concepts/transport.hpp>
#include <syncvault/testing/fake_clock.hpp>

#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <system_error>
#include <thread>
#include <vector>

namespace syncvault::testing {

class fake_transport {
public:
    /** Every member may be called from any thread, `send` from several at once: each scripted
     *  outcome goes to exactly one call, in the order the calls reach the script. */
    static constexpr bool thread_safe = true;

    fake_transport() : state_(std::make_shared<state>()) {}

    /** Scripts the next response. `delay` passes on the attached clock (or really, if none). */
    fake_transport& respond(int status, std::vector<header> headers = {}, std::string body = {},
                            std::chrono::milliseconds delay = {})
    {
        return push(http_response{status, std::move(headers), std::move(body)}, delay);
    }

    /** Scripts the next outcome as a transport error (no response). */
    fake_transport& fail(std::error_code error, std::chrono::milliseconds delay = {})
    {
        return push(result<http_response>{error}, delay);
    }
    fake_transport& fail(errc error, std::chrono::milliseconds delay = {})
    {
        return fail(make_error_code(error), delay);
    }

    /** The outcome once the script is used up (initially 200 with an empty body). */
    void respond_by_default(int status, std::vector<header> headers = {}, std::string body = {})
    {
        std::lock_guard lock(state_->mutex);
        state_->fallback = http_response{status, std::move(headers), std::move(body)};
    }
    void fail_by_default(std::error_code error)
    {
        std::lock_guard lock(state_->mutex);
        state_->fallback = result<http_response>{error};
    }

    /** Scripted delays advance this clock instead of sleeping. */
    void attach_clock(fake_clock clock)
    {
        std::lock_guard lock(state_->mutex);
        state_->clock = std::move(clock);
    }

    /** Runs inside every `send`, before its outcome is chosen (tests hold a transfer open here).
     *  Called without the fake's lock, so concurrent sends may run it at once. */
    void on_send(std::function<void(const http_request&)> hook)
    {
        std::lock_guard lock(state_->mutex);
        state_->hook = std::move(hook);
    }

    /** Every request seen so far, in order. */
    std::vector<http_request> requests() const
    {
        std::lock_guard lock(state_->mutex);
        return state_->log;
    }
    std::size_t request_count() const
    {
        std::lock_guard lock(state_->mutex);
        return state_->log.size();
    }
    /** Scripted outcomes not yet used. */
    std::size_t scripted() const
    {
        std::lock_guard lock(state_->mutex);
        return state_->script.size();
    }
    /** Largest number of `send` calls seen running at once (1 unless the vault sends
     *  concurrently, which it may with `vault_config::max_in_flight` above 1). */
    int max_concurrent_sends() const
    {
        std::lock_guard lock(state_->mutex);
        return state_->max_in_send;
    }

    result<http_response> send(const http_request& request)
    {
        std::function<void(const http_request&)> hook;
        {
            std::lock_guard lock(state_->mutex);
            state_->log.push_back(request);
            state_->max_in_send = std::max(state_->max_in_send, ++state_->in_send);
            hook = state_->hook;
        }
        struct leave_send {  // also when the hook throws
            state& s;
            ~leave_send()
            {
                std::lock_guard lock(s.mutex);
                --s.in_send;
            }
        } guard{*state_};
        if (hook) hook(request);
        std::optional<step> next;
        std::optional<fake_clock> clock;
        {
            std::lock_guard lock(state_->mutex);
            if (!state_->script.empty()) {
                next = std::move(state_->script.front());
                state_->script.pop_front();
            } else {
                next = step{state_->fallback, {}};
            }
            clock = state_->clock;
        }
        if (next->delay.count() > 0) {
            if (clock)
                clock->advance(next->delay);
            else
                std::this_thread::sleep_for(next->delay);
        }
        return std::move(next->outcome);
    }

private:
    struct step {
        result<http_response> outcome;
        std::chrono::milliseconds delay;
    };
    struct state {
        mutable std::mutex mutex;
        std::deque<step> script;
        result<http_response> fallback{http_response{200, {}, {}}};
        std::vector<http_request> log;
        std::optional<fake_clock> clock;
        std::function<void(const http_request&)> hook;
        int in_send = 0, max_in_send = 0;
    };

    fake_transport& push(result<http_response> outcome, std::chrono::milliseconds delay)
    {
        std::lock_guard lock(state_->mutex);
        state_->script.push_back({std::move(outcome), delay});
        return *this;
    }

    std::shared_ptr<state> state_;
};

static_assert(syncvault::transport<fake_transport>);
static_assert(syncvault::concurrent_transport<fake_transport>);

} // namespace syncvault::testing

#endif
