#ifndef SYNCVAULT_TESTING_SIMULATION_WORKLOAD_HPP
#define SYNCVAULT_TESTING_SIMULATION_WORKLOAD_HPP

/**
 * @file
 * One run's workload: the seeded schedule of application operations (requests, flaps,
 * manual syncs, requeues, drops, clears, clock jumps, crashes) and what each request call
 * must return (SPEC 3.2, 3.4, 3.9).
 */

#include <syncvault/testing/simulation/simulator.hpp>
#include <boost/json.hpp>

#include <algorithm>
#include <chrono>
#include <string>
#include <vector>

namespace syncvault::testing {

template <class StorageFactory, class RetryPolicy, class Server, class Transport, class Connectivity>
auto simulation<StorageFactory, RetryPolicy, Server, Transport, Connectivity>::runner::gap() -> ms
{
    if (rng_.chance(0.1)) return ms{rng_.between(10'000, 300'000)};
    return ms{rng_.between(0, 5'000)};
}

template <class StorageFactory, class RetryPolicy, class Server, class Transport, class Connectivity>
void simulation<StorageFactory, RetryPolicy, Server, Transport, Connectivity>::runner::operation()
{
    enum {
        mutate_op,
        read_op,
        flap,
        process,
        jump,
        weather,
        crash_now,
        crash_armed,
        requeue_op,
        drop_op,
        clear_op,
        idle,
        storage_trouble
    };
    const unsigned weights[] = {40,
                                8,
                                opt_.flaps ? 6u : 0u,
                                5,
                                opt_.clock_jumps ? 2u : 0u,
                                opt_.faults ? 4u : 0u,
                                opt_.crashes ? 2u : 0u,
                                opt_.crashes ? 3u : 0u,
                                3,
                                1,
                                1,
                                3,
                                storage_faults_on() ? 2u : 0u};
    if (paused_ && resume_at_ == 0) resume_at_ = ops_ + std::size_t(xrng_.between(1, 6));
    if (paused_ && ops_ >= resume_at_) {
        resume_at_ = 0;
        return op_resume();
    }
    if (auth_on_ && xrng_.chance(0.03)) return op_expire();
    if (edits_on_ && erng_.chance(0.35)) return erng_.chance(0.08) ? op_cancel() : op_edit();  // SPEC 9.4
    switch (rng_.weighted(weights)) {
    case storage_trouble: op_storage_trouble(); break;
    case mutate_op: op_mutate(); break;
    case read_op: op_read(); break;
    case flap: op_flap(); break;
    case process: op_process_queue(); break;
    case jump: op_clock_jump(); break;
    case weather: op_weather(); break;
    case crash_now: op_crash(); break;
    case crash_armed: op_arm_crash(); break;
    case requeue_op: op_requeue(); break;
    case drop_op: op_drop(); break;
    case clear_op: op_clear(); break;
    default: step_poll("poll (app)"); break;
    }
}

template <class StorageFactory, class RetryPolicy, class Server, class Transport, class Connectivity>
std::string simulation<StorageFactory, RetryPolicy, Server, Transport, Connectivity>::runner::make_path()
{
    const auto r = rng_.below(100);
    if (r < 6) return "/reject/" + std::to_string(rng_.below(5));
    if (r < 9) return "/gone/" + std::to_string(rng_.below(5));
    if (r < 20) return "/orders";
    return "/items/" + std::to_string(rng_.below(20));
}

/** No key (generated), a fresh one, or one used before (pending or not). */
template <class StorageFactory, class RetryPolicy, class Server, class Transport, class Connectivity>
std::string simulation<StorageFactory, RetryPolicy, Server, Transport, Connectivity>::runner::make_key()
{
    const auto r = rng_.below(100);
    if (r < 40) return {};
    if (r < 80 || used_keys_.empty()) {
        used_keys_.push_back("k" + std::to_string(++key_counter_));
        return used_keys_.back();
    }
    return used_keys_[used_keys_.size() - 1 - rng_.below(std::min<std::size_t>(used_keys_.size(), 6))];
}

template <class StorageFactory, class RetryPolicy, class Server, class Transport, class Connectivity>
std::string simulation<StorageFactory, RetryPolicy, Server, Transport, Connectivity>::runner::make_lane()
{
    return lanes_.size() > 1 ? lanes_[xrng_.below(lanes_.size())] : std::string();
}

template <class StorageFactory, class RetryPolicy, class Server, class Transport, class Connectivity>
void simulation<StorageFactory, RetryPolicy, Server, Transport, Connectivity>::runner::op_expire()
{
    if constexpr (requires(Server & s) {
                      s.expire_credentials();
                      s.log_in();
                      {
                          s.credentials_expired()
                          } -> std::convertible_to<bool>;
                  }) {
        if (server_.credentials_expired()) {
            begin_step("the app logs in again (the vault not paused)");
            server_.log_in();
        } else {
            begin_step("token expired at the server");
            ++stats_.expiries;
            server_.expire_credentials();
        }
        end_step();
    }
}

template <class StorageFactory, class RetryPolicy, class Server, class Transport, class Connectivity>
void simulation<StorageFactory, RetryPolicy, Server, Transport, Connectivity>::runner::op_resume()
{
    const bool login = xrng_.chance(0.8);
    begin_step(login ? "the app logs in again and resumes" : "the app resumes (credentials unchanged)");
    if constexpr (requires(Server & s) { s.log_in(); })
        if (login) server_.log_in();
    paused_ = false;
    if (std::exchange(paused_uncertain_, false)) status_uncertain_ = true;
    ++stats_.resumes;
    current_call_ = ++calls_;
    guarded("resume()", [&] { vault_->resume(); });
    end_step();
}

template <class StorageFactory, class RetryPolicy, class Server, class Transport, class Connectivity>
bool simulation<StorageFactory, RetryPolicy, Server, Transport, Connectivity>::runner::refresh_hook(
    const http_response& r)
{
    if (!alive_ || violation_) return false;
    ++stats_.refreshes;
    if (r.status != 401) {
        fail("auth", "refresh_auth was called with a " + std::to_string(r.status) + " response");
        return false;
    }
    if (unauthorized_.empty()) {
        fail("auth", "refresh_auth was called without a 401 `failed` event before it (or twice for one 401)");
        return false;
    }
    const bool renew = xrng_.chance(renew_rate_);
    note(renew ? "refresh_auth: new credentials" : "refresh_auth: no new credentials");
    if (renew) {
        ++stats_.renewed;
        refreshed_for_ = unauthorized_;
        if constexpr (requires(Server & s) { s.log_in(); }) server_.log_in();
    } else {
        paused_ = true;
        ++stats_.pauses;
    }
    unauthorized_.clear();
    return renew;
}

template <class StorageFactory, class RetryPolicy, class Server, class Transport, class Connectivity>
std::vector<header> simulation<StorageFactory, RetryPolicy, Server, Transport, Connectivity>::runner::make_headers()
{
    std::vector<header> h;
    if (rng_.chance(0.3)) h.push_back({"Authorization", "Bearer token-" + std::to_string(rng_.below(1000))});
    if (rng_.chance(0.3)) h.push_back({"X-Request-Tag", "tag-" + std::to_string(rng_.below(1000))});
    return h;
}

template <class StorageFactory, class RetryPolicy, class Server, class Transport, class Connectivity>
void simulation<StorageFactory, RetryPolicy, Server, Transport, Connectivity>::runner::op_mutate()
{
    constexpr http_method methods[] = {http_method::post, http_method::put, http_method::patch, http_method::delete_};
    const auto method = methods[rng_.below(4)];
    const auto path = make_path();
    request_options o;
    o.idempotency_key = make_key();
    o.headers = make_headers();
    o.lane = make_lane();
    boost::json::value body;
    if (method != http_method::delete_) body = boost::json::object{{"n", ++body_counter_}, {"path", path}};
    begin_step(std::string(detail::method_name(method)) + " " + path + key_note(o));
    request(method, path, body, o, online_);
    end_step();
}

template <class StorageFactory, class RetryPolicy, class Server, class Transport, class Connectivity>
void simulation<StorageFactory, RetryPolicy, Server, Transport, Connectivity>::runner::op_read()
{
    const auto method = rng_.chance(0.5) ? http_method::get : http_method::head;
    const auto path = make_path();
    request_options o;
    if (rng_.chance(0.5)) o.idempotency_key = "g" + std::to_string(++key_counter_);  // keys of their own
    o.queue_if_offline = rng_.chance(0.6);
    o.headers = make_headers();
    o.lane = make_lane();
    begin_step(std::string(detail::method_name(method)) + " " + path + key_note(o) +
               (o.queue_if_offline ? " queue_if_offline" : ""));
    if (online_)
        do_direct_read(method, path, o);
    else
        request(method, path, nullptr, o, false);
    end_step();
}

template <class StorageFactory, class RetryPolicy, class Server, class Transport, class Connectivity>
std::string simulation<StorageFactory, RetryPolicy, Server, Transport, Connectivity>::runner::key_note(
    const request_options& o) const
{
    std::string s = o.idempotency_key.empty() ? " key=auto" : " key=" + o.idempotency_key;
    for (const auto& h : o.headers) s += " +" + h.name;
    if (!o.lane.empty()) s += " lane=" + o.lane;
    return s;
}

template <class StorageFactory, class RetryPolicy, class Server, class Transport, class Connectivity>
void simulation<StorageFactory, RetryPolicy, Server, Transport, Connectivity>::runner::op_flap()
{
    online_ = !online_;
    ++stats_.flaps;
    begin_step(online_ ? "network: online" : "network: offline");
    vault_->connectivity().set_online(online_);
    end_step();
}

template <class StorageFactory, class RetryPolicy, class Server, class Transport, class Connectivity>
void simulation<StorageFactory, RetryPolicy, Server, Transport, Connectivity>::runner::op_weather()
{
    const auto r = rng_.below(10);
    fault_rate_ = r < 3 ? 0.0 : r < 7 ? 0.15 : r < 9 ? 0.5 : 0.9;
    begin_step("weather: " + std::to_string(int(fault_rate_ * 100)) + "% faults");
    end_step();
}

template <class StorageFactory, class RetryPolicy, class Server, class Transport, class Connectivity>
void simulation<StorageFactory, RetryPolicy, Server, Transport, Connectivity>::runner::op_clock_jump()
{
    const bool back = rng_.chance(0.4);
    ms d{rng_.between(60, 2 * 3600) * 1'000};
    // Days: a phone whose clock was wrong, then set right (SPEC 9.1: no action stranded or rushed
    // further than the policy's cap).
    if (opt_.long_clock_jumps && frng_.chance(0.3)) d = ms{frng_.between(1, 40) * 86'400'000LL};
    ++stats_.clock_jumps;
    begin_step(std::string("clock jumps ") + (back ? "back " : "forward ") + std::to_string(d.count() / 1000) + "s");
    clock_.set(back ? clock_.now() - d : clock_.now() + d);
    if (back)  // waits are measured anew: an action may now be attempted at any time up to the cap
        for (auto& t : actions_)
            if (t.st == state::pending) t.next_attempt_at = std::min(t.next_attempt_at, clock_.now());
    end_step();
}

template <class StorageFactory, class RetryPolicy, class Server, class Transport, class Connectivity>
void simulation<StorageFactory, RetryPolicy, Server, Transport, Connectivity>::runner::op_crash()
{
    begin_step("crash (between operations)");
    crash_point("between operations", true);
    end_step();
}

template <class StorageFactory, class RetryPolicy, class Server, class Transport, class Connectivity>
void simulation<StorageFactory, RetryPolicy, Server, Transport, Connectivity>::runner::op_arm_crash()
{
    crash_countdown_ = static_cast<int>(rng_.between(1, 8));
    begin_step("crash armed: at seam point " + std::to_string(crash_countdown_) +
               " from now (before/after a storage write or a transfer)");
    end_step();
}

template <class StorageFactory, class RetryPolicy, class Server, class Transport, class Connectivity>
void simulation<StorageFactory, RetryPolicy, Server, Transport, Connectivity>::runner::op_process_queue()
{
    begin_step("process_queue()");
    call_ = call::process_queue;
    current_call_ = ++calls_;
    std::size_t n = 0;
    const bool ok = guarded("process_queue()", [&] { n = vault_->process_queue(); });
    call_ = call::none;
    if (ok && alive_ && !violation_) {
        note("-> " + std::to_string(n) + " delivered");
        // A clear_queue() from a callback may take an action in flight: whether its transfer
        // counts is not pinned down, so the count is checked only without calls from callbacks.
        if (n != successes_in_call_ && !reentered_)
            fail("status", "process_queue() returned " + std::to_string(n) + " but " +
                               std::to_string(successes_in_call_) + " success events fired");
    }
    end_step();
}

template <class StorageFactory, class RetryPolicy, class Server, class Transport, class Connectivity>
void simulation<StorageFactory, RetryPolicy, Server, Transport, Connectivity>::runner::op_requeue()
{
    auto dead = indices(state::dead);
    if (dead.empty()) return step_poll("poll (app)");
    auto& t = actions_[dead[rng_.below(dead.size())]];
    begin_step("requeue #" + std::to_string(t.no));
    bool key_busy = false;
    for (const auto& o : actions_)
        if (o.st == state::pending && o.key == t.key) key_busy = true;
    const bool dependency_refused = requeue_refused(t);  // SPEC 9.4
    call_ = call::requeue;
    current_call_ = ++calls_;
    requeued_.push_back(t.id);
    bool done = false;
    const bool ok = guarded("requeue()", [&] { done = vault_->requeue(t.id); });
    call_ = call::none;
    if (!done && !requeued_.empty()) requeued_.pop_back();
    if (ok && alive_ && !violation_) {
        note(done ? "-> requeued" : "-> refused");
        if (!done && storage_fault_in_call_)
            note("(refused: its write failed)");
        else if (!done && !key_busy && dependency_refused)
            note("(refused: SPEC 9.4, a parent is dead or its placeholder's parent gone)");
        else if (done && dependency_refused)
            fail("dependency", "requeue #" + std::to_string(t.no) + " succeeded though a parent it waits for is dead");
        else if (done == key_busy)
            fail("send-or-queue", "requeue #" + std::to_string(t.no) + " returned " + (done ? "true" : "false") +
                                      (key_busy ? " while a pending action holds its key" : ""));
        else if (done && (!t.queued_seen || (t.st != state::pending && !(t.st == state::removed && t.removed_by))))
            fail("lifecycle", "requeue #" + std::to_string(t.no) + " succeeded without a new `queued` event");
        else if (done && t.st == state::pending)  // not if a callback removed it meanwhile
            expect_written_pending(t, "requeue returned");
        if (done) synced_floor_ = write_log_.size();  // SPEC 9.1: synced before it returns
    }
    end_step();
}

template <class StorageFactory, class RetryPolicy, class Server, class Transport, class Connectivity>
void simulation<StorageFactory, RetryPolicy, Server, Transport, Connectivity>::runner::op_drop()
{
    auto dead = indices(state::dead);
    if (dead.empty()) return step_poll("poll (app)");
    auto& t = actions_[dead[rng_.below(dead.size())]];
    begin_step("drop_dead_letter #" + std::to_string(t.no));
    call_ = call::drop;
    current_call_ = ++calls_;
    bool done = false;
    const bool ok = guarded("drop_dead_letter()", [&] { done = vault_->drop_dead_letter(t.id); });
    call_ = call::none;
    if (ok && alive_ && !violation_) {
        if (!done) fail("status", "drop_dead_letter refused dead letter #" + std::to_string(t.no));
        t.st = state::removed;
        t.removed_by = "drop_dead_letter()";
        synced_floor_ = write_log_.size();  // SPEC 9.1: synced before it returns
        if (t.shadow) fail("durability", "dropped dead letter #" + std::to_string(t.no) + " is still stored");
    }
    end_step();
}

template <class StorageFactory, class RetryPolicy, class Server, class Transport, class Connectivity>
void simulation<StorageFactory, RetryPolicy, Server, Transport, Connectivity>::runner::op_clear()
{
    begin_step("clear_queue()");
    clear_scope_.emplace();
    for (const auto& t : actions_)
        if (t.st == state::pending) clear_scope_->push_back(t.id);
    call_ = call::clear;
    current_call_ = ++calls_;
    std::error_code ec;  // 0.1 returns nothing; SPEC 9.1 a std::error_code
    const bool ok = guarded("clear_queue()", [&] {
        if constexpr (std::is_void_v<decltype(vault_->clear_queue())>)
            vault_->clear_queue();
        else
            ec = vault_->clear_queue();
    });
    call_ = call::none;
    struct reset_scope {
        std::optional<std::vector<std::string>>& s;
        ~reset_scope() { s.reset(); }
    } scope_guard{clear_scope_};
    if (ok && alive_ && !violation_) {
        if (ec && !storage_fault_in_call_)
            fail("status", "clear_queue() reported " + ec.message() + " though no storage write failed");
        else if (!ec)
            model_cleared(false);  // (not what a callback requeued after the queue emptied)
    }
    end_step();
}

/** A poll step: what `background_sync` does at a due time, or when woken. */
template <class StorageFactory, class RetryPolicy, class Server, class Transport, class Connectivity>
void simulation<StorageFactory, RetryPolicy, Server, Transport, Connectivity>::runner::step_poll(
    const std::string& what)
{
    begin_step(what);
    call_ = call::poll;
    current_call_ = ++calls_;
    next_wake wake;
    const bool ok = guarded("poll()", [&] { wake = vault_->poll(); });
    call_ = call::none;
    woken_ = false;  // its own wake-ups: background_sync ignores those from its thread
    if (ok && alive_ && !violation_) {
        wake_ = wake;
        if (wake)
            note("-> next wake " + at(*wake));
        else
            note("-> nothing scheduled");
        const auto pending = count(state::pending);
        // SPEC 9.1: with a connectivity model that cannot announce the network's return, poll()
        // must name a time while work is pending, offline too.
        constexpr bool hears_return = syncvault::notifying_connectivity<Connectivity>;
        if (!wake && pending > 0 && (online_ || !hears_return) && !paused_)
            fail("liveness", "poll() scheduled nothing while " + std::string(online_ ? "online" : "offline") +
                                 " with " + std::to_string(pending) + " actions pending" +
                                 (hears_return ? "" : " and a connectivity model with only is_online()"));
        // SPEC 9.1: a clock jump moves no action further than the policy's cap from now.
        const auto cap = ms(vault_->retry_policy().max_delay());
        // (Not while storage fails: how long the vault then backs off is its own to choose.)
        const bool storage_trouble =
            storage_fault_in_call_ || (storage_down_until_ && clock_.now() <= *storage_down_until_ + cap);
        if (wake && pending > 0 && online_ && !storage_trouble && *wake > clock_.now() + cap + ms{1'000})
            fail("timers", "poll() names a wake at " + at(*wake) + ", " +
                               std::to_string((*wake - clock_.now()) / std::chrono::seconds{1}) +
                               "s from now, beyond the retry policy's cap of " +
                               std::to_string(cap / std::chrono::seconds{1}) + "s");
        // SPEC 9.1: a failing storage gives a bounded number of diagnostics per episode.
        const auto diagnostics = diagnostics_count();
        const auto episodes = storage_episodes_ + stats_.storage_throws + 1;
        if (diagnostics > 16 * episodes)
            fail("liveness", "the vault holds " + std::to_string(diagnostics) + " diagnostics after " +
                                 std::to_string(episodes - 1) + " storage failure episodes (unbounded growth)");
    }
    end_step();
}

template <class StorageFactory, class RetryPolicy, class Server, class Transport, class Connectivity>
template <class Body>
void simulation<StorageFactory, RetryPolicy, Server, Transport, Connectivity>::runner::request(
    http_method method, const std::string& path, const Body& body, const request_options& o, bool online, bool nested)
{
    const auto pending = count(state::pending);
    const auto lane_pending = std::size_t(std::count_if(
        actions_.begin(), actions_.end(), [&](const auto& t) { return t.st == state::pending && t.lane == o.lane; }));
    request_lane_ = o.lane;
    const bool read = method == http_method::get || method == http_method::head;
    int dup = -1;
    if (!o.idempotency_key.empty())
        for (std::size_t i = 0; i < actions_.size(); ++i)
            if (actions_[i].st == state::pending && actions_[i].key == o.idempotency_key) dup = int(i);
    // A post from a callback comes while the head is taken (faults.hpp): it waits.
    // SPEC 9.2: at once only when its own lane has nothing waiting; never while paused (9.3).
    // SPEC 9.4: never at once while a parent is pending (or dead: refused).
    const auto waits = parents_of(o, false);
    const bool held = !parents_of(o, true).empty();
    auto refs = std::exchange(edit_refs_, {});
    const bool immediate =
        !nested && dup < 0 && online && lane_pending == 0 && pending < cfg_.max_pending && !paused_ && !held;
    immediate_expected_ = immediate;
    request_headers_ = o.headers;
    call_ = call::mutate;
    const auto serial = current_call_ = ++calls_;
    storage_fault_in_call_ = attempt_blocked_ = false;
    std::optional<send_result> result;
    const bool ok = guarded(std::string(detail::method_name(method)) + (nested ? " (from a callback)" : ""), [&] {
        result = [&] {
            switch (method) {
            case http_method::post: return vault_->post(path, body, o);
            case http_method::put: return vault_->put(path, body, o);
            case http_method::patch: return vault_->patch(path, body, o);
            case http_method::delete_: return vault_->delete_(path, o);
            case http_method::get: return vault_->get(path, o);
            case http_method::head: return vault_->head(path, o);
            }
            return vault_->post(path, body, o);
        }();
    });
    call_ = call::none;
    immediate_expected_ = false;
    if (!alive_) {
        note("(the process crashed during the call: not acknowledged)");
        return;
    }
    if (!ok || violation_) return;
    const send_result& r = *result;
    auto name = [&](std::string_view id) {
        auto i = index_of(id);
        return i < 0 ? std::string("an unknown action") : "#" + std::to_string(actions_[std::size_t(i)].no);
    };
    if (r.is_queued())
        note("-> queued " + name(r.action_id()));
    else if (r.is_sent())
        note("-> sent " + std::to_string(r.response()->status) + " " + name(r.action_id()));
    else
        note("-> error " + r.error().message());

    std::vector<std::size_t> made;  // the actions this call made (calls from its callbacks make their own)
    for (std::size_t i = 0; i < actions_.size(); ++i)
        if (actions_[i].origin == serial) made.push_back(i);
    if ((r.is_queued() || r.is_sent()) && !r.action_id().empty() && index_of(r.action_id()) < 0)
        return fail("send-or-queue", "the result names an action that was never queued or stored (a phantom: "
                                     "an earlier write with this key failed?)");
    if (read && !o.queue_if_offline) {
        if (r.error() != make_error_code(errc::offline) || !made.empty())
            fail("send-or-queue", "an offline GET/HEAD without queue_if_offline must fail with errc::offline");
        return;
    }
    if (dup >= 0) {
        if (!r.is_queued() || r.action_id() != actions_[std::size_t(dup)].id || !made.empty())
            fail("send-or-queue", "a request with the key of pending #" +
                                      std::to_string(actions_[std::size_t(dup)].no) +
                                      " must return that action, queued, and queue nothing");
        return;
    }
    std::string body_text;
    if constexpr (std::is_same_v<Body, boost::json::value>) body_text = boost::json::serialize(body);
    if (edit_result(method, path, body_text, o, refs, r, made.empty())) return;
    if (pending >= cfg_.max_pending) {
        if (r.error() != make_error_code(errc::queue_full) || !made.empty())
            fail("send-or-queue", "a full queue (" + std::to_string(pending) + " pending) must refuse with queue_full");
        return;
    }
    if (made.empty() && storage_fault_in_call_) {
        // SPEC 9.1: the write failed: storage_failed, the queue and the key unchanged.
        if (!(r.error() == errc::storage_failed))  // by meaning: a syncvault.storage code narrows it
            fail("send-or-queue", "a request whose write failed must return errc::storage_failed, not " +
                                      std::string(r.is_queued() ? "queued"
                                                  : r.is_sent() ? "sent"
                                                                : r.error().message()));
        return;
    }
    if (nested && made.empty() && r.error() == make_error_code(errc::queue_full)) {
        // From a `queued` callback: the action it reports may not be counted by the model yet.
        note("(full, counting the action whose `queued` event is being delivered)");
        return;
    }
    if (made.size() != 1) {
        fail("send-or-queue", "a request call made " + std::to_string(made.size()) + " actions, not one");
        return;
    }
    auto& t = actions_[made.front()];
    if (r.action_id() != t.id) {
        fail("send-or-queue", "the result names " + name(r.action_id()) + ", not the new #" + std::to_string(t.no));
        return;
    }
    t.edit.waits = waits;
    t.edit.refs = std::move(refs);
    t.acknowledged = r.is_queued() || r.is_sent();
    const bool cleared = t.st == state::removed && t.removed_by;  // by a clear_queue() from a callback
    const auto n = "#" + std::to_string(t.no);
    if (r.is_sent() && wire_keys_.find(t.key) == wire_keys_.end())
        return fail("send-or-queue", "the request returned sent (" + std::to_string(r.response()->status) + ") for " +
                                         n +
                                         ", whose request never reached the transport: another action's response "
                                         "reported under its id");
    if (r.is_queued()) {
        if (cleared) return note("(" + n + " was cleared by a callback before its attempt)");
        if (t.st != state::pending) return fail("send-or-queue", "queued result for " + n + " which is not pending");
        // (A 401 takes its attempt back: tried all the same.)
        const bool tried = t.attempts > 0 || (t.last_outcome && is_status(*t.last_outcome, 401));
        if (immediate != tried && !(immediate && (attempt_blocked_ || paused_)))
            return fail("send-or-queue", n + (immediate ? " was not tried at once though the vault was online and idle"
                                                        : " was tried at once though it had to wait"));
        if (!nested) expect_written_pending(t, "the request returned queued");
    } else if (r.is_sent()) {
        // As if in sequence: a callback may have removed it after its outcome (drop_dead_letter).
        const bool ended = t.st == state::success || t.st == state::dead || t.cleared_in_flight ||
                           (t.st == state::removed && t.removed_by &&
                            std::string_view(t.removed_by) == "drop_dead_letter()");  // it was dead
        if (!immediate || !ended)
            return fail("send-or-queue", "sent result for " + n + " which was not tried at once to an end");
        if (!t.last_outcome || !*t.last_outcome || (*t.last_outcome)->status != r.response()->status ||
            (*t.last_outcome)->body != r.response()->body)
            return fail("send-or-queue", "the sent result's response is not the one the transport returned");
    } else if (!((t.st == state::dead ||
                  (t.st == state::removed && t.removed_by && std::string_view(t.removed_by) == "drop_dead_letter()")) &&
                 immediate)) {  // as if in sequence: a callback may have dropped the dead letter
        fail("send-or-queue", "request for " + n + " failed with " + r.error().message());
    }
}

// op_read's online branch: a direct read, no action.
template <class StorageFactory, class RetryPolicy, class Server, class Transport, class Connectivity>
void simulation<StorageFactory, RetryPolicy, Server, Transport, Connectivity>::runner::do_direct_read(
    http_method method, const std::string& path, const request_options& o)
{
    const auto before = actions_.size();
    direct_ = true;
    direct_outcome_.reset();
    call_ = call::read;
    current_call_ = ++calls_;
    std::optional<send_result> result;
    const bool ok = guarded(std::string(detail::method_name(method)) + " (direct)", [&] {
        result = method == http_method::get ? vault_->get(path, o) : vault_->head(path, o);
    });
    call_ = call::none;
    direct_ = false;
    if (!ok || !alive_ || violation_) return;
    const send_result& r = *result;
    if (r.is_sent())
        note("-> sent " + std::to_string(r.response()->status));
    else
        note("-> error " + r.error().message());
    if (actions_.size() != before || !r.action_id().empty() || r.is_queued())
        return fail("send-or-queue", "an online GET/HEAD became an action");
    if (!direct_outcome_) return fail("send-or-queue", "an online GET/HEAD was not sent");
    if (r.is_sent() != bool(*direct_outcome_) || (r.is_sent() && r.response()->status != (*direct_outcome_)->status))
        fail("send-or-queue", "an online GET/HEAD's result is not what the transport returned");
}

}  // namespace syncvault::testing

#endif
