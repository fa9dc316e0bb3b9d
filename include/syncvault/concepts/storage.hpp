#ifndef SYNCVAULT_CONCEPTS_STORAGE_HPP
#define SYNCVAULT_CONCEPTS_STORAGE_HPP

/**
 * @file
 * `syncvault::storage`: where actions wait, durably. RAII: a model opens its store in its
 * constructor (throwing `std::system_error` if it cannot; `errc::storage_locked` when another
 * vault or process holds it) and closes it in its destructor.
 *
 * ## Minimal complete definition
 * | expression        | type                               | meaning |
 * |---|---|---|
 * | `s.save(a)`       | `std::error_code`                  | insert `a`, or replace the stored action with `a.id` |
 * | `s.remove(id)`    | `std::error_code`                  | forget the action `id` (`std::string_view`); unknown ids are not an error |
 * | `s.load_all()`    | `result<std::vector<sync_action>>` | every stored action, pending and dead, in insertion order |
 * | `s.clear()`       | `std::error_code`                  | forget everything |
 * | `s.count()`       | convertible to `std::size_t`       | how many actions are stored (pending and dead) |
 *
 * ## Dead letters
 * Dead letters are ordinary actions with `state == action_state::dead`: the vault moves an action
 * to the dead-letter list by saving it with that state, and back (`requeue`) by saving it pending
 * with a new, larger `sequence`. A model stores `state` like any other field; it needs no second
 * table. The vault orders what `load_all` returns by `sequence`, so a model that keeps insertion
 * order (updates in place, remove-then-save at the tail) is always right.
 *
 * ## Laws (run them over your model: `<syncvault/testing/storage_laws.hpp>`)
 * - After `save(a)`, `load_all()` holds an action equal to `a` (every field, any bytes in
 *   `body`, non-ASCII text), exactly once, whatever was saved under `a.id` before.
 * - `load_all()` keeps insertion order: an update keeps the action's place, a save after a
 *   remove puts it last.
 * - `remove(id)` and `clear()` take effect for `load_all()` and `count()` at once.
 * - A failed call returns an error and leaves the stored set as it was.
 * - Durable models: what `load_all()` returned before the process ended, a new instance over the
 *   same place returns after (SPEC section 7 says when each kind of write must be synced).
 *
 * To check your own model, call `syncvault::testing::check_storage_laws(make, opts)` from any
 * test framework: `make()` returns your model opened over one place (it is called again to reopen
 * it, after the previous instance is destroyed), `opts.durable = true` adds the reopen laws, and
 * the result lists each broken law with what was seen, empty when all hold. The laws' actions
 * carry whole-millisecond times. In Catch2:
 * `CHECK(to_string(check_storage_laws([&] { return my_storage{dir}; }, opts)) == "");`
 *
 * ## Durability (SPEC section 7)
 * - Inserting save (a new id): synced before it returns, per the model's durability mode.
 * - Updating save (attempt count, next-attempt time, dead letter, requeue) and remove: written
 *   before returning (a process crash keeps it), synced lazily (a power cut may forget it).
 *
 * ## Optional hooks (detected, not demanded)
 * - `s.save_batch(std::span<const sync_action>)` -> `std::error_code`: insert all with one sync,
 *   all or nothing.
 * - `s.flush()` -> `std::error_code`: sync what was written lazily (the vault calls it from its
 *   destructor).
 * - `s.take_diagnostics()` -> `std::vector<diagnostic>`: problems found and recovered from since
 *   the last call (corrupt records set aside...); the vault reports them to the application.
 * - `s.load_body(id)` -> `result<std::string>`: the stored body of the action `id` (pending or
 *   dead), as the last `save` wrote it; an unknown id is an error (`errc::storage_failed`). With
 *   it, the vault keeps only pending actions' metadata in memory and reads a body back when it
 *   needs one (to send it, to save the action again, for `pending_actions()`); without it
 *   (`memory_storage`) bodies stay in memory. Laws: after `save(a)`, `load_body(a.id) ==
 *   a.body` (any bytes), after an update and, for durable models, after a reopen.
 * - `s.save_progress(a)` -> `std::error_code`: an updating save the vault makes before each
 *   attempt, when `a` differs from the stored action only in `attempts`, `next_attempt_at`,
 *   `last_status`, `last_error` and `answered`. A model may write just those (file_journal
 *   appends 24 bytes instead of the whole action and its body); an id it does not hold is saved
 *   whole. Law: afterwards `load_all()` holds `a`, as after `save(a)`; durability as an update.
 * - `static constexpr bool thread_safe = true;`: the model takes calls from several threads at
 *   once. The vault then writes new actions without serializing them, so concurrent enqueuers
 *   can share one sync (group commit). Otherwise the vault makes one storage call at a time.
 *
 * ## Models
 * `file_journal` (default, `<syncvault/storage/file_journal.hpp>`), `sqlite_storage`
 * (`<syncvault/storage/sqlite_storage.hpp>`), `memory_storage`
 * (`<syncvault/storage/memory_storage.hpp>`).
 *
 * @code
 * struct map_storage {   // keeps nothing across restarts: for illustration
 *     std::vector<syncvault::sync_action> rows;
 *     std::error_code save(const syncvault::sync_action& a) {
 *         for (auto& r : rows) if (r.id == a.id) { r = a; return {}; }
 *         rows.push_back(a); return {};
 *     }
 *     std::error_code remove(std::string_view id) {
 *         std::erase_if(rows, [&](auto& r) { return r.id == id; }); return {};
 *     }
 *     syncvault::result<std::vector<syncvault::sync_action>> load_all() { return rows; }
 *     std::error_code clear() { rows.clear(); return {}; }
 *     std::size_t count() const { return rows.size(); }
 * };
 * static_assert(syncvault::storage<map_storage>);
 * @endcode
 */

#include <syncvault/action.hpp>

#include <concepts>
#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace syncvault {

template <class S>
concept storage_saves = requires(S& s, const sync_action& a) {
    { s.save(a) } -> std::same_as<std::error_code>;
};

template <class S>
concept storage_removes = requires(S& s, std::string_view id) {
    { s.remove(id) } -> std::same_as<std::error_code>;
};

template <class S>
concept storage_loads = requires(S& s) {
    { s.load_all() } -> std::same_as<result<std::vector<sync_action>>>;
};

template <class S>
concept storage_clears = requires(S& s) {
    { s.clear() } -> std::same_as<std::error_code>;
};

template <class S>
concept storage_counts = requires(S& s) {
    { s.count() } -> std::convertible_to<std::size_t>;
};

template <class S>
concept storage = std::movable<S> && storage_saves<S> && storage_removes<S> && storage_loads<S> &&
                  storage_clears<S> && storage_counts<S>;

/** Optional hook: many inserts, one sync. */
template <class S>
concept batch_storage = requires(S& s, std::span<const sync_action> batch) {
    { s.save_batch(batch) } -> std::same_as<std::error_code>;
};

/** Optional hook: sync lazy writes. */
template <class S>
concept flushable_storage = requires(S& s) {
    { s.flush() } -> std::same_as<std::error_code>;
};

/** Optional hook: the model is thread-safe, so inserts need not be serialized. */
template <class S>
concept thread_safe_storage = requires { requires S::thread_safe; };

/** Optional hook: read one action's body back, so the vault need not keep it in memory. */
template <class S>
concept body_reading_storage = requires(S& s, std::string_view id) {
    { s.load_body(id) } -> std::same_as<result<std::string>>;
};

/** Optional hook: record an attempt's fields without rewriting the action (issue 17). */
template <class S>
concept progress_storage = requires(S& s, const sync_action& a) {
    { s.save_progress(a) } -> std::same_as<std::error_code>;
};

/** Optional hook: report recovered problems. */
template <class S>
concept diagnosing_storage = requires(S& s) {
    { s.take_diagnostics() } -> std::same_as<std::vector<diagnostic>>;
};

} // namespace syncvault

#endif
