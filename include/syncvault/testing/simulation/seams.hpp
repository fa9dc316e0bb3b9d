#ifndef SYNCVAULT_TESTING_SIMULATION_SEAMS_HPP
#define SYNCVAULT_TESTING_SIMULATION_SEAMS_HPP

/**
 * @file
 * The seams between a run and the real vault: the simulated network (`sim_network`), and
 * the probes around the user's transport and storage that report every transfer and write.
 */

#include <syncvault/action.hpp>
#include <syncvault/error.hpp>
#include <syncvault/concepts/storage.hpp>
#include <syncvault/concepts/connectivity.hpp>
#include <syncvault/concepts/transport.hpp>

#include <atomic>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

namespace syncvault::testing {

/** What every fault the simulator injects throws: an application or policy failure. */
struct sim_fault : std::runtime_error {
    using std::runtime_error::runtime_error;
};

namespace detail {

/** What the simulator's seams report to the run that owns them. */
class sim_hooks {
public:
    enum class storage_op { save, remove, clear };

    virtual result<http_response> network_send(const http_request& r) = 0;
    virtual void transfer_begin(const http_request& r) = 0;
    virtual void transfer_end(const http_request& r, const result<http_response>& outcome) = 0;
    virtual void storage_before(storage_op op, const sync_action* a, std::string_view id) = 0;
    virtual void storage_after(storage_op op, const sync_action* a, std::string_view id, std::error_code ec) = 0;
    /// A storage fault to inject before `op` reaches the model: an error to return (nothing
    /// written), or a throw (`sim_fault`), or none.
    virtual std::error_code storage_fault(storage_op op, const sync_action* a) = 0;
    /// True when this transfer's `send` should throw (`sim_fault`) instead of reaching the network.
    virtual bool transport_throws(const http_request& r) = 0;

protected:
    ~sim_hooks() = default;
};

}  // namespace detail

/**
 * The simulated network, a `syncvault::transport`: the fault layer, then the server model. The
 * simulator gives one to the transport factory (`simulation::with_transport`); a transport of
 * your own wraps it and calls `send` to put requests on the wire.
 */
class sim_network {
public:
    explicit sim_network(detail::sim_hooks* hooks) noexcept : hooks_(hooks) {}
    result<http_response> send(const http_request& r) { return hooks_->network_send(r); }

private:
    detail::sim_hooks* hooks_;
};

static_assert(syncvault::transport<sim_network>);

/**
 * A connectivity model with only `is_online()`, the concept's minimal example: no change
 * handler, no probe, no reports. The vault cannot hear the network come back; SPEC 9.1 says it
 * must still drain (its `poll()` names a wake time while work is pending). `set_online` is the
 * simulator's lever; the vault cannot see it.
 */
class online_only_connectivity {
public:
    online_only_connectivity() : online_(std::make_shared<std::atomic<bool>>(true)) {}
    explicit online_only_connectivity(bool online) : online_(std::make_shared<std::atomic<bool>>(online)) {}
    bool is_online() const noexcept { return online_->load(); }
    void set_online(bool online) noexcept { online_->store(online); }

private:
    std::shared_ptr<std::atomic<bool>> online_;
};

static_assert(syncvault::connectivity<online_only_connectivity>);
static_assert(!syncvault::notifying_connectivity<online_only_connectivity> &&
              !syncvault::probing_connectivity<online_only_connectivity> &&
              !syncvault::reported_connectivity<online_only_connectivity>);

namespace detail {

/** The vault's transport in a simulation: the user's transport, observed. */
template <class Transport>
class sim_probe {
public:
    sim_probe(Transport inner, sim_hooks* hooks) : inner_(std::move(inner)), hooks_(hooks) {}
    sim_probe() = default;  // basic_vault's constructor names it; the simulator always passes one

    result<http_response> send(const http_request& r)
    {
        hooks_->transfer_begin(r);
        if (hooks_->transport_throws(r)) {
            // A network-class failure of this attempt (SPEC 9.1), as the checks record it.
            hooks_->transfer_end(r, make_error_code(errc::connection_failed));
            throw sim_fault("simulated transport: send threw");
        }
        auto outcome = inner_->send(r);
        hooks_->transfer_end(r, outcome);
        return outcome;
    }

    Transport& inner() noexcept { return *inner_; }

private:
    std::optional<Transport> inner_;
    sim_hooks* hooks_ = nullptr;
};

/** The vault's storage in a simulation: the model, with a seam at every write. */
template <class Storage>
class sim_storage {
public:
    static constexpr bool thread_safe = syncvault::thread_safe_storage<Storage>;

    sim_storage(Storage inner, sim_hooks* hooks) : inner_(std::move(inner)), hooks_(hooks) {}
    sim_storage() = default;  // basic_vault's constructor names it; the simulator always passes one

    std::error_code save(const sync_action& a)
    {
        hooks_->storage_before(sim_hooks::storage_op::save, &a, a.id);
        if (auto fault = hooks_->storage_fault(sim_hooks::storage_op::save, &a)) return fault;
        auto ec = inner_->save(a);
        hooks_->storage_after(sim_hooks::storage_op::save, &a, a.id, ec);
        return ec;
    }
    /// Forwarded, so file_journal's progress records see every crash and power cut. To the
    /// hooks it is the save it stands for: storage holds `a` afterwards.
    std::error_code save_progress(const sync_action& a) requires syncvault::progress_storage<Storage>
    {
        hooks_->storage_before(sim_hooks::storage_op::save, &a, a.id);
        if (auto fault = hooks_->storage_fault(sim_hooks::storage_op::save, &a)) return fault;
        auto ec = inner_->save_progress(a);
        hooks_->storage_after(sim_hooks::storage_op::save, &a, a.id, ec);
        return ec;
    }
    std::error_code remove(std::string_view id)
    {
        hooks_->storage_before(sim_hooks::storage_op::remove, nullptr, id);
        if (auto fault = hooks_->storage_fault(sim_hooks::storage_op::remove, nullptr)) return fault;
        auto ec = inner_->remove(id);
        hooks_->storage_after(sim_hooks::storage_op::remove, nullptr, id, ec);
        return ec;
    }
    std::error_code clear()
    {
        hooks_->storage_before(sim_hooks::storage_op::clear, nullptr, {});
        if (auto fault = hooks_->storage_fault(sim_hooks::storage_op::clear, nullptr)) return fault;
        auto ec = inner_->clear();
        hooks_->storage_after(sim_hooks::storage_op::clear, nullptr, {}, ec);
        return ec;
    }
    result<std::vector<sync_action>> load_all() { return inner_->load_all(); }
    std::size_t count() const { return static_cast<std::size_t>(inner_->count()); }
    /// Forwarded, so the vault keeps bodies in the model as it would without the seam (SPEC 9.8):
    /// every crash and power cut then finds them there. Reads change nothing: no fault, no hook.
    result<std::string> load_body(std::string_view id) requires syncvault::body_reading_storage<Storage>
    {
        return inner_->load_body(id);
    }

    std::error_code flush() requires syncvault::flushable_storage<Storage> { return inner_->flush(); }
    std::vector<diagnostic> take_diagnostics() requires syncvault::diagnosing_storage<Storage>
    {
        return inner_->take_diagnostics();
    }

    Storage& inner() noexcept { return *inner_; }

private:
    std::optional<Storage> inner_;
    sim_hooks* hooks_ = nullptr;
};

inline std::string describe_outcome(const result<http_response>& o)
{
    if (!o) return "error " + o.error().message();
    std::string s = std::to_string(o->status);
    if (auto ra = find_header(o->headers, "Retry-After")) s += " Retry-After: " + std::string(*ra);
    return s;
}

inline std::string_view method_name(http_method m)
{
    return to_string(m);
}

}  // namespace detail

}  // namespace syncvault::testing

#endif
