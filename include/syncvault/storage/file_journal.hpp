#ifndef SYNCVAULT_STORAGE_FILE_JOURNAL_HPP
#define SYNCVAULT_STORAGE_FILE_JOURNAL_HPP

/**
 * @file
 * `file_journal`: the default `syncvault::storage`, one append-only file of checksummed records
 * in a directory of its own (`vault_config::storage_path`).
 *
 * What it promises (SPEC sections 4 and 7):
 * - An inserting `save` returns only once the record is on disk (`fdatasync`), one sync per
 *   record (`durability::per_record`, the default) or one shared by concurrent inserters
 *   (`durability::group_commit`); `save_batch` costs one write and one sync, all or nothing.
 *   `durability::none` never syncs: a process crash loses nothing, a power cut may lose the
 *   actions saved since the last `flush()`.
 * - Updates and removes are written before they return (a process crash keeps them) and synced
 *   lazily: by the next inserting save, `flush()`, or the destructor.
 * - One process, one instance: an exclusive lock on `syncvault.journal.lock` (`flock`;
 *   `LockFileEx` on Windows); a second instance, in this process or another, throws
 *   `std::system_error` with `errc::storage_locked`.
 * - Files are created 0600 (on Windows: a DACL for the creating user alone); the directory is
 *   synced when a file is created or replaced, where the platform has directory sync. "Synced"
 *   is `fdatasync`, `F_FULLFSYNC` on Apple, `FlushFileBuffers` on Windows
 *   (detail/file_layer.hpp).
 * - Opening recovers (SPEC 9.1 "Recovery"):
 *   - a torn tail, the last writes before a crash or power cut (a record cut short, or whole in
 *     length but with a bad checksum, with no whole record after it), is truncated away
 *     silently: such a record was never synced, so never acknowledged;
 *   - a damaged record with whole records after it keeps every record before it, the damaged
 *     file is kept as `syncvault.journal.corrupt-<UTC time>` and a `diagnostic` with
 *     `errc::storage_corrupt` naming both files waits in `take_diagnostics()`;
 *   - a record that passes its checksum but cannot be decoded (malformed framing found on open,
 *     or JSON that is not an action found by `load_all`) is set aside the same way, and every
 *     other record, before and after it, is kept: an action whose newest record is bad keeps
 *     the version before it, in its place, when the file still holds one that decodes. It never
 *     makes a constructor or `load_all` fail.
 * - A failed write (disk full, I/O error) returns a code equal to `errc::storage_failed` that
 *   keeps the system cause (`== std::errc::no_space_on_device`), cuts the file back to
 *   where it was and leaves the stored set unchanged. A failed `fdatasync` leaves the journal
 *   refusing writes until it is reopened (the kernel may have dropped the unsynced pages); the
 *   insert it was for returns `errc::storage_failed` and leaves memory, but its bytes may yet
 *   reach the disk and the action reappear after a reopen (its idempotency key makes a resend
 *   harmless).
 * - Limit: damage to the very last records (no whole record after it) cannot be told from a
 *   torn write, and is truncated like one; bit rot there loses those records silently.
 * - When dead records outweigh live ones past `compaction_floor`, the call that made them dead
 *   rewrites the live records to a new file and renames it into place. Enqueuers on other threads
 *   wait only for the final switch, which copies the few records appended meanwhile.
 *
 * Memory: the journal keeps each action's id and where its record is (about 110 bytes an action
 * at a million), not the action; `load_all()` reads the records back, in file order, and parses
 * them outside the lock.
 *
 * Group commit: one fdatasync at a time, serving every inserter waiting for it. An inserter
 * whose record a running sync does not cover waits for that sync to end; then one of them leads
 * the next sync, which covers every record written meanwhile. Before it syncs, the leader waits
 * (at most half a sync's latency) until as many inserters as the last sync served have written,
 * so the producers the last sync released ride this one; a lone producer never waits.
 * `save_batch` is one record: after a crash, all of it or none.
 *
 * @code
 * syncvault::file_journal journal{"/var/lib/app/outbox"};   // or file_journal{cfg}
 * journal.save(action);                                      // durable when it returns
 * for (const auto& a : journal.load_all().value()) ...;
 * @endcode
 */

#include <syncvault/action.hpp>
#include <syncvault/concepts/storage.hpp>
#include <syncvault/config.hpp>
#include <syncvault/detail/action_codec.hpp>
#include <syncvault/detail/action_reader.hpp>
#include <syncvault/detail/epoch_signal.hpp>
#include <syncvault/detail/journal_format.hpp>
#include <syncvault/detail/journal_index.hpp>
#include <syncvault/detail/journal_io.hpp>

#include <boost/json.hpp>
#include <boost/unordered/unordered_flat_map.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <numeric>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

namespace syncvault {

/** Moments a `file_journal_options::hook` is told about (for tests of concurrency). */
enum class journal_event {
    /// An inserter is about to `fdatasync` (no lock held). In group commit the sync covers every
    /// record written before the hook returns.
    before_sync,
    compaction_copied,  ///< compaction copied the live records; the switch comes next (no lock held)
};

/** How a `file_journal` behaves; the defaults suit a vault. */
struct file_journal_options {
    durability mode = durability::per_record;
    /// Compact on its own when dead records outweigh live ones and the file is past the floor.
    bool auto_compact = true;
    std::uint64_t compaction_floor = std::uint64_t{4} << 20;  ///< bytes
    /// Called at each `journal_event`, on the thread doing the work. For tests; leave it empty.
    std::function<void(journal_event)> hook;
};

/** What a `file_journal` has done, for tests, benchmarks and monitoring. */
struct file_journal_stats {
    std::size_t actions = 0;          ///< stored actions, pending and dead
    std::uint64_t file_bytes = 0;     ///< journal length
    std::uint64_t synced_bytes = 0;   ///< a prefix of the journal known to be on disk
    std::uint64_t live_bytes = 0;     ///< about how much of it the stored actions take
    std::uint64_t syncs = 0;          ///< fdatasync calls for inserts and `flush()`
    std::uint64_t compactions = 0;
};

namespace detail {

// Everything behind file_journal's pointer. One mutex guards the index and the file's end;
// fdatasync, compaction's bulk copy and load_all's reads and parsing run without it.
// `Index` is journal_index; the benchmark passes others to compare.
template <class Index = journal_index>
class journal_impl {
public:
    /** A record that passed its checksum but cannot be decoded. */
    struct undecodable {
        std::size_t pos;     // in load_all's result
        std::uint64_t off;   // of its entry
        std::string id;
        const char* why;
    };

    journal_impl(std::filesystem::path directory, file_journal_options options)
        : dir_(std::move(directory)), opts_(std::move(options))
    {
        if (dir_.empty())
            throw std::invalid_argument(
                "syncvault: file_journal needs a directory (vault_config::storage_path is empty)");
        path_ = dir_ / "syncvault.journal";
        lock_path_ = path_;
        lock_path_ += ".lock";
        temp_path_ = path_;
        temp_path_ += ".compact";

        std::error_code ec;
        const bool made = std::filesystem::create_directories(dir_, ec);
        if (ec) fail_open("cannot create the journal directory " + dir_.string(), ec);
        if (made) (void)journal_sync_dir(parent_of(dir_));

        take_lock();
        if (auto ec = file_finish_replace(path_))  // a replace cut short (Windows' two-step fallback)
            fail_open("cannot finish replacing " + path_.string(), ec);
        if (auto ec = file_remove(temp_path_))  // a compaction cut short
            fail_open("cannot remove " + temp_path_.string(), ec);

        journal_fd file;
        auto open_ec = file_open(path_, file_open_mode::create_new, file);
        const bool created = !open_ec;
        if (open_ec == std::errc::file_exists) open_ec = file_open(path_, file_open_mode::open_existing, file);
        if (open_ec) fail_open("cannot open " + path_.string(), open_ec);
        file_ = std::make_shared<journal_fd>(std::move(file));

        std::unique_lock lk(mu_);
        if (created) {
            if (auto e = write_magic()) fail_open("cannot write " + path_.string(), e);
            if (auto e = journal_sync_dir(dir_)) fail_open("cannot sync " + dir_.string(), e);
        } else {
            recover(lk);
        }
        open_ = true;
    }

    journal_impl(const journal_impl&) = delete;
    journal_impl& operator=(const journal_impl&) = delete;

    ~journal_impl()
    {
        if (opts_.mode != durability::none) (void)flush();
    }

    std::error_code save(const sync_action& a)
    {
        std::string rec;
        if (auto ec = encode_put(rec, a)) return ec;
        const std::uint64_t entry_size = rec.size() - journal_header_size - 1;

        std::unique_lock lk(mu_);
        if (failed_) return make_error_code(errc::storage_failed);
        const bool insert = index_.find(a.id) == Index::npos;
        // Memory is made ready before the append: once the record is in the file, the index
        // must follow it without an allocation that could throw.
        std::string fresh_id;
        if (insert) {
            fresh_id = a.id;
            index_.make_room(1);
        }
        const std::uint64_t entry_off = end_ + journal_header_size + 1;
        if (auto ec = append_locked(rec)) return ec;
        if (insert)
            apply_put(std::move(fresh_id), entry_off, static_cast<std::uint32_t>(entry_size));
        else
            apply_put(a.id, entry_off, static_cast<std::uint32_t>(entry_size));
        if (!insert) {
            maybe_compact(lk);
            return {};
        }
        const std::string_view ids[] = {a.id};
        return sync_inserts(lk, end_, ids);
    }

    std::error_code save_batch(std::span<const sync_action> batch)
    {
        if (batch.empty()) return {};
        std::string rec;
        const std::size_t at = journal_begin(rec, journal_op::batch);
        for (const auto& a : batch) {
            if (a.id.size() > journal_max_id) return make_error_code(errc::invalid_request);
            const std::string json = serialize_action(a, record_body::beside);
            const std::uint64_t entry = journal_raw_entry_size(a.id.size(), json.size(), a.body.size());
            if (rec.size() + entry > journal_max_body) return make_error_code(errc::invalid_request);
            journal_append_raw_entry(rec, a.id, json, a.body);
        }
        journal_seal(rec, at);

        std::unique_lock lk(mu_);
        if (failed_) return make_error_code(errc::storage_failed);
        std::vector<std::string_view> inserted;
        for (const auto& a : batch)
            if (index_.find(a.id) == Index::npos &&
                std::find(inserted.begin(), inserted.end(), a.id) == inserted.end())
                inserted.push_back(a.id);
        std::vector<std::string> fresh_ids(inserted.begin(), inserted.end());  // as in save()
        index_.make_room(fresh_ids.size());
        const std::uint64_t body_off = end_ + journal_header_size;
        if (auto ec = append_locked(rec)) return ec;
        std::size_t k = journal_header_size + 1, next_new = 0;
        while (k < rec.size()) {
            journal_entry e;
            journal_parse_entry(rec.data() + k, rec.size() - k, e);
            const auto off = body_off + (k - journal_header_size);
            const auto len = static_cast<std::uint32_t>(e.size);
            // `inserted` lists the new ids in the order of their first entries.
            if (next_new < inserted.size() && e.id == inserted[next_new])
                apply_put(std::move(fresh_ids[next_new++]), off, len);
            else
                apply_put(e.id, off, len);
            k += e.size;
        }
        if (inserted.empty()) {
            maybe_compact(lk);
            return {};
        }
        return sync_inserts(lk, end_, inserted);
    }

    // The attempt's fields of `a` (SPEC 3.8), as 24 bytes on top of its newest put; an action
    // this journal does not hold is saved whole.
    std::error_code save_progress(const sync_action& a)
    {
        if (a.id.size() > journal_max_id) return make_error_code(errc::invalid_request);
        const journal_progress v{a.attempts, to_epoch_ms(a.next_attempt_at), a.last_status, a.last_error, a.answered};
        std::string rec;
        rec.reserve(journal_header_size + 3 + a.id.size() + journal_progress_size);
        const std::size_t at = journal_begin(rec, journal_op::progress);
        journal_append_progress(rec, a.id, v);
        journal_seal(rec, at);

        std::unique_lock lk(mu_);
        if (failed_) return make_error_code(errc::storage_failed);
        if (index_.find(a.id) == Index::npos) {
            lk.unlock();
            return save(a);
        }
        // The slot exists before the append (as in save()): after it, nothing may throw.
        const auto [slot, fresh] = progress_.try_emplace(a.id);
        if (auto ec = append_locked(rec)) {
            if (fresh) progress_.erase(slot);
            return ec;
        }
        set_progress(slot->second, fresh, v, rec.size());
        maybe_compact(lk);
        return {};
    }

    std::error_code remove(std::string_view id)
    {
        std::string rec;
        const std::size_t at = journal_begin(rec, journal_op::remove);
        rec.append(id);
        journal_seal(rec, at);

        std::unique_lock lk(mu_);
        if (index_.find(id) == Index::npos) return {};
        if (failed_) return make_error_code(errc::storage_failed);
        if (auto ec = append_locked(rec)) return ec;
        apply_remove(id);
        maybe_compact(lk);
        return {};
    }

    std::error_code clear()
    {
        std::string rec;
        journal_seal(rec, journal_begin(rec, journal_op::clear));

        std::unique_lock lk(mu_);
        if (index_.size() == 0) return {};
        if (failed_) return make_error_code(errc::storage_failed);
        if (auto ec = append_locked(rec)) return ec;
        apply_clear();
        maybe_compact(lk);
        return {};
    }

    std::size_t count() const
    {
        std::lock_guard lk(mu_);
        return index_.size();
    }

    // Not const: a record that cannot be decoded is set aside on the way.
    result<std::vector<sync_action>> load_all()
    {
        for (int round = 0;; ++round) {
            std::vector<undecodable> bad;
            std::uint64_t gen = 0;
            auto out = read_all(bad, gen);
            if (!out || bad.empty()) return out;
            std::unique_lock lk(mu_);
            // Compaction names slots by position and moves entries: let it finish, and read
            // again if it moved what was read.
            while (compacting_) sync_cv_.wait_for(lk, std::chrono::milliseconds(5));
            if (gen != file_gen_ && round < 3) continue;
            // An action whose newest record is bad but an older one decodes (an update gone
            // wrong) falls back to that version in its place: read again to return it.
            if (!set_aside_undecodable(lk, bad)) return out;
        }
    }

    result<std::vector<sync_action>> read_all(std::vector<undecodable>& bad, std::uint64_t& gen)
    {
        std::vector<std::pair<std::uint64_t, std::uint32_t>> where;
        std::vector<std::pair<std::uint32_t, journal_progress>> progress;  // (position in `where`, fields)
        std::shared_ptr<journal_fd> file;
        std::uint64_t size = 0;
        {
            std::lock_guard lk(mu_);
            where.reserve(index_.size());
            const auto with_progress = progress_by_slot();
            std::size_t k = 0;
            for (std::size_t i = 0; i < index_.slots().size(); ++i)
                if (const auto& s = index_.slots()[i]; s.len) {
                    if (k < with_progress.size() && with_progress[k].first == i)
                        progress.emplace_back(static_cast<std::uint32_t>(where.size()), with_progress[k++].second);
                    where.emplace_back(s.off, s.len);
                }
            file = file_;
            size = end_;
            gen = file_gen_;
        }
        // Read in file order (sequential I/O), place in insertion order.
        std::vector<std::uint32_t> order(where.size());
        std::iota(order.begin(), order.end(), 0u);
        if (!std::is_sorted(where.begin(), where.end()))
            std::sort(order.begin(), order.end(),
                      [&](auto x, auto y) { return where[x].first < where[y].first; });

        std::vector<sync_action> out(where.size());
        journal_reader reader(file->get(), size);
        action_reader records;
        for (auto i : order) {
            const char* p = nullptr;
            std::size_t avail = 0;
            if (auto ec = reader.fetch(where[i].first, where[i].second, p, avail)) {
                remember(ec);
                return make_error_code(errc::storage_failed);
            }
            journal_entry e;
            // Opening checked every entry's framing: failing here, the file changed under us.
            if (avail < where[i].second || !journal_parse_entry(p, avail, e))
                return make_error_code(errc::storage_corrupt);
            const char* why = nullptr;
            if (auto decoded = records.read(e.json); !decoded) {
                why = records.problem();
            } else if (decoded->id != e.id) {
                why = "its id differs from the id it is filed under";
            } else if (!body_in_one_place(e, *decoded)) {
                why = "it has a body both in its JSON and beside it";
            } else {
                out[i] = std::move(*decoded);
                if (e.raw_body) out[i].body.assign(e.body);
                continue;
            }
            bad.push_back({i, where[i].first, std::string(e.id), why});
        }
        for (const auto& [i, v] : progress) {  // (an undecodable one is dropped next, whatever it holds)
            auto& a = out[i];
            a.attempts = v.attempts;
            a.next_attempt_at = from_epoch_ms(v.next_ms);
            a.last_status = v.status;
            a.last_error = v.error;
            a.answered = v.answered;
        }
        if (!bad.empty()) {
            std::vector<bool> drop(out.size());
            for (const auto& b : bad) drop[b.pos] = true;
            std::size_t j = 0;
            for (std::size_t i = 0; i < out.size(); ++i)
                if (!drop[i]) {
                    if (i != j) out[j] = std::move(out[i]);  // never self-move
                    ++j;
                }
            out.resize(j);
        }
        return out;
    }

    // The body of `id`'s newest record. The file and the entry's place are read together under
    // the mutex (compaction switches both at once, and a replaced file stays readable through
    // the pointer), the bytes outside it: records are never rewritten in place.
    result<std::string> load_body(std::string_view id)
    {
        std::shared_ptr<journal_fd> file;
        std::uint64_t off = 0;
        std::uint32_t len = 0;
        {
            std::lock_guard lk(mu_);
            const std::size_t pos = index_.find(id);
            if (pos == Index::npos) return make_error_code(errc::storage_failed);  // no such action
            off = index_.slots()[pos].off;
            len = index_.slots()[pos].len;
            file = file_;
        }
        // A `put` record (or a batch of one) holds one entry, right after its header and op byte:
        // its checksum is checked. An entry inside a larger batch was checked when the file was opened or
        // written, as `load_all` trusts it.
        constexpr std::size_t lead = journal_header_size + 1;
        const bool own_record = off >= journal_magic_size + lead;
        const std::uint64_t from = own_record ? off - lead : off;
        std::string buf(static_cast<std::size_t>(len) + (own_record ? lead : 0), '\0');
        std::size_t got = 0;
        if (auto ec = journal_pread(file->get(), buf.data(), buf.size(), from, got)) {
            remember(ec);
            return make_error_code(errc::storage_failed);
        }
        if (got != buf.size()) return make_error_code(errc::storage_corrupt);
        const char* p = buf.data();
        const char op = p[journal_header_size];
        if (own_record && journal_get_u32(p + 4) == len + 1 &&
            (op == char(journal_op::put) || op == char(journal_op::batch))) {
            if (crc32c(p + 4, 4 + std::size_t{len} + 1) != journal_get_u32(p))
                return make_error_code(errc::storage_corrupt);
        }
        if (own_record) p += lead;
        journal_entry e;
        if (!journal_parse_entry(p, len, e) || e.size != len || e.id != id) return make_error_code(errc::storage_corrupt);
        if (e.raw_body) return std::string(e.body);
        return parse_body(e.json, id);
    }

    std::error_code flush()
    {
        std::unique_lock lk(mu_);
        if (end_ == synced_) return {};
        if (failed_) return make_error_code(errc::storage_failed);
        const auto gen = file_gen_;
        const std::uint64_t upto = end_;
        auto file = file_;
        ++stats_.syncs;
        lk.unlock();
        auto ec = journal_datasync(file->get());
        lk.lock();
        if (gen != file_gen_) return {};  // compaction synced a copy of everything
        if (ec) return poison(ec);
        synced_ = std::max(synced_, upto);
        return {};
    }

    std::error_code compact()
    {
        std::unique_lock lk(mu_);
        if (compacting_) return {};
        if (failed_) return make_error_code(errc::storage_failed);
        return run_compaction(lk);
    }

    std::vector<diagnostic> take_diagnostics()
    {
        std::lock_guard lk(mu_);
        return std::exchange(diagnostics_, {});
    }

    file_journal_stats stats() const
    {
        std::lock_guard lk(mu_);
        auto s = stats_;
        s.actions = index_.size();
        s.file_bytes = end_;
        s.synced_bytes = synced_;
        s.live_bytes = live_bytes_;
        return s;
    }

    std::error_code last_system_error() const
    {
        std::lock_guard lk(mu_);
        return last_error_;
    }

    const std::filesystem::path& path() const noexcept { return path_; }

private:
    static std::uint64_t cost(std::uint32_t entry_len) noexcept
    {
        return std::uint64_t{entry_len} + journal_header_size + 1;
    }

    static std::filesystem::path parent_of(const std::filesystem::path& dir)
    {
        auto p = dir.has_filename() ? dir : dir.parent_path();
        auto parent = p.parent_path();
        return parent.empty() ? std::filesystem::path(".") : parent;
    }

    [[noreturn]] static void fail_open(const std::string& what, std::error_code ec)
    {
        throw std::system_error(make_error_code(errc::storage_failed),
                                "syncvault: " + what + " (" + ec.message() + ")");
    }

    void take_lock()
    {
        if (auto ec = file_open(lock_path_, file_open_mode::open_or_create, lock_fd_))
            fail_open("cannot open " + lock_path_.string(), ec);
        bool held = false;
        if (auto ec = file_try_lock(lock_fd_.get(), held)) fail_open("cannot lock " + lock_path_.string(), ec);
        if (held)
            throw std::system_error(make_error_code(errc::storage_locked),
                                    "syncvault: journal " + path_.string() + " is open in another vault or process");
    }

    std::error_code write_magic()
    {
        if (auto ec = journal_pwrite(file_->get(), journal_magic, journal_magic_size, 0)) return ec;
        if (auto ec = file_truncate(file_->get(), journal_magic_size)) return ec;
        if (auto ec = journal_datasync(file_->get())) return ec;
        end_ = synced_ = journal_magic_size;
        return {};
    }

    std::error_code encode_put(std::string& rec, const sync_action& a) const
    {
        if (a.id.size() > journal_max_id) return make_error_code(errc::invalid_request);
        const std::string json = serialize_action(a, record_body::beside);
        const std::uint64_t entry = journal_raw_entry_size(a.id.size(), json.size(), a.body.size());
        if (entry + 1 > journal_max_body) return make_error_code(errc::invalid_request);
        rec.reserve(journal_header_size + 1 + static_cast<std::size_t>(entry));
        const std::size_t at = journal_begin(rec, journal_op::put);
        journal_append_raw_entry(rec, a.id, json, a.body);
        journal_seal(rec, at);
        return {};
    }

    void remember(std::error_code ec) const
    {
        std::lock_guard lk(mu_);
        last_error_ = ec;
    }

    // Appends a whole record at the end. On failure the file is cut back, so no half record
    // stays for a later open to misread; if even that fails, the journal refuses writes.
    std::error_code append_locked(std::string_view rec)
    {
        if (auto ec = journal_pwrite(file_->get(), rec.data(), rec.size(), end_)) {
            last_error_ = ec;
            if (file_truncate(file_->get(), end_)) failed_ = true;
            return detail::storage_failure(ec);
        }
        end_ += rec.size();
        return {};
    }

    std::error_code poison(std::error_code ec)
    {
        last_error_ = ec;
        failed_ = true;
        return detail::storage_failure(ec);
    }

    // Returns once bytes [0, target) are synced, per the durability mode. A failed sync undoes
    // the inserts in memory and stops writes: the kernel may have dropped the pages.
    std::error_code sync_inserts(std::unique_lock<std::mutex>& lk, std::uint64_t target,
                                 std::span<const std::string_view> ids)
    {
        if (opts_.mode == durability::none) return {};
        const auto gen = file_gen_;
        std::error_code ec;
        if (opts_.mode == durability::per_record) {
            auto file = file_;
            const std::uint64_t upto = end_;
            ++stats_.syncs;
            lk.unlock();
            if (opts_.hook) opts_.hook(journal_event::before_sync);
            ec = journal_datasync(file->get());
            lk.lock();
            if (gen != file_gen_) return {};
            if (!ec) {
                synced_ = std::max(synced_, upto);
                return {};
            }
        } else {
            // Group commit: one sync at a time. While it runs, the inserters that arrive write
            // their records and wait; when it ends, one of those it did not cover leads the
            // next, which covers every record written meanwhile. Concurrent fdatasyncs cost
            // nearly one device flush each (measured: 8 threads syncing their own records get
            // 2.2x one thread, one sync of 8 records 5.8x), so a sync is never started beside
            // another. The leader's window: the producers the last sync released are still
            // making their next record when the next leader starts, so without it the batches
            // split in two cohorts that alternate. The leader waits, at most half a sync, until
            // as many inserters as the last sync served have written; with one producer that
            // is the leader itself and it never waits.
            if (++cut_inserts_ == window_target_) window_cv_.notify_one();
            while (gen == file_gen_ && synced_ < target && !failed_) {
                if (leading_) {
                    // Wait off the mutex: a follower the sync covers returns without taking it
                    // again, so a finished sync does not wake its followers into a fight for it.
                    const auto epoch = sync_epoch_.load();
                    lk.unlock();
                    sync_epoch_.wait(epoch);
                    if (gen_seen_.load() != gen || synced_seen_.load() >= target) return {};
                    lk.lock();
                    continue;
                }
                leading_ = true;
                if (cut_inserts_ < last_batch_) {
                    const auto until = std::chrono::steady_clock::now() + sync_time_ / 2;
                    window_target_ = last_batch_;
                    while (cut_inserts_ < last_batch_ && gen == file_gen_ && !failed_)
                        if (window_cv_.wait_until(lk, until) == std::cv_status::timeout) break;
                    window_target_ = 0;
                }
                auto file = file_;
                if (opts_.hook) {
                    lk.unlock();
                    opts_.hook(journal_event::before_sync);
                    lk.lock();
                }
                const std::uint64_t upto = end_;
                last_batch_ = std::max<std::size_t>(cut_inserts_, 1);
                cut_inserts_ = 0;
                std::error_code e;
                if (gen == file_gen_) {  // else compaction synced a copy of our record
                    ++stats_.syncs;
                    lk.unlock();
                    const auto t0 = std::chrono::steady_clock::now();
                    e = journal_datasync(file->get());
                    const auto took = std::chrono::steady_clock::now() - t0;
                    lk.lock();
                    sync_time_ = (sync_time_ * 7 + took) / 8;  // a moving average
                }
                leading_ = false;
                if (e)
                    (void)poison(e);
                else if (gen == file_gen_)
                    synced_ = std::max(synced_, upto);
                synced_seen_.store(synced_);
                sync_epoch_.advance();
            }
            sync_cv_.notify_all();
            if (gen != file_gen_ || synced_ >= target) return {};
            ec = last_error_;
        }
        for (auto id : ids) apply_remove(id);
        return poison(ec);
    }

    // A raw-body entry's JSON holds "body":"": a body in both places is damage.
    static bool body_in_one_place(const journal_entry& e, const sync_action& decoded) noexcept
    {
        return !e.raw_body || decoded.body.empty();
    }

    // `Id`: a string_view, or the id's string made beforehand (then nothing here allocates).
    template <class Id>
    void apply_put(Id&& id, std::uint64_t off, std::uint32_t len)
    {
        drop_progress(id);  // a put holds every field
        if (const std::uint32_t old = index_.put(std::forward<Id>(id), off, len)) live_bytes_ -= cost(old);
        live_bytes_ += cost(len);
    }

    // `record_bytes`: the whole progress record, which stays live until a put or remove.
    void apply_progress(std::string_view id, const journal_progress& v, std::uint64_t record_bytes)
    {
        auto it = progress_.find(id);
        const bool fresh = it == progress_.end();
        if (fresh) it = progress_.emplace(std::string(id), progress_slot{}).first;
        set_progress(it->second, fresh, v, record_bytes);
    }

    // `slot`: a progress_slot (declared with the members, below).
    void set_progress(auto& slot, bool fresh, const journal_progress& v, std::uint64_t record_bytes) noexcept
    {
        if (!fresh) live_bytes_ -= slot.record_bytes;
        slot = {v, record_bytes};
        live_bytes_ += record_bytes;
    }

    // The slot positions of the actions with a progress record, in slot order, with its fields.
    std::vector<std::pair<std::size_t, journal_progress>> progress_by_slot() const
    {
        std::vector<std::pair<std::size_t, journal_progress>> v;
        v.reserve(progress_.size());
        for (const auto& [id, p] : progress_)
            if (const std::size_t pos = index_.find(id); pos != Index::npos) v.emplace_back(pos, p.values);
        std::sort(v.begin(), v.end(), [](const auto& x, const auto& y) { return x.first < y.first; });
        return v;
    }

    void drop_progress(std::string_view id)
    {
        if (progress_.empty()) return;
        if (auto it = progress_.find(id); it != progress_.end()) {
            live_bytes_ -= it->second.record_bytes;
            progress_.erase(it);
        }
    }

    void apply_remove(std::string_view id)
    {
        drop_progress(id);
        if (const std::uint32_t old = index_.erase(id)) {
            live_bytes_ -= cost(old);
            // FIFO removal leaves tombstones at the front; not while compacting, whose plan
            // names slots by position.
            if (!compacting_ && index_.sparse()) index_.sweep();
        }
    }

    void apply_clear()
    {
        index_.clear();
        progress_.clear();
        live_bytes_ = 0;
    }

    void maybe_compact(std::unique_lock<std::mutex>& lk)
    {
        if (!opts_.auto_compact || compacting_ || failed_) return;
        if (end_ < opts_.compaction_floor || end_ < retry_compaction_at_) return;
        const std::uint64_t data = end_ - journal_magic_size;
        const std::uint64_t dead = data > live_bytes_ ? data - live_bytes_ : 0;
        if (dead <= live_bytes_) return;
        (void)run_compaction(lk);
    }

    // Copies [from, to) of `src` to the end of `dst`.
    static std::error_code copy_range(native_file src, std::uint64_t from, std::uint64_t to, native_file dst,
                                      std::uint64_t& dst_end, std::string& buf)
    {
        buf.resize(1u << 20);
        while (from < to) {
            const auto want = static_cast<std::size_t>(std::min<std::uint64_t>(buf.size(), to - from));
            std::size_t got = 0;
            if (auto ec = journal_pread(src, buf.data(), want, from, got)) return ec;
            if (got != want) return std::make_error_code(std::errc::io_error);
            if (auto ec = journal_pwrite(dst, buf.data(), got, dst_end)) return ec;
            from += got;
            dst_end += got;
        }
        return {};
    }

    // Rewrites the journal as one put record per stored action, in order, without holding the
    // lock for the bulk of the work: snapshot the slots, copy their entries to a temporary file,
    // copy whatever was appended meanwhile verbatim (it replays on top), and under the lock copy
    // the last few bytes, sync, rename, sync the directory and repoint the slots.
    std::error_code run_compaction(std::unique_lock<std::mutex>& lk)
    {
        struct moved {
            std::uint32_t slot, len;
            std::uint64_t from, to;
            std::optional<journal_progress> progress;  // rewritten right after the put
        };
        compacting_ = true;
        std::vector<moved> plan;
        plan.reserve(index_.size());
        const auto with_progress = progress_by_slot();
        std::size_t k = 0;
        for (std::uint32_t i = 0; i < index_.slots().size(); ++i)
            if (const auto& s = index_.slots()[i]; s.len) {
                plan.push_back({i, s.len, s.off, 0, std::nullopt});
                if (k < with_progress.size() && with_progress[k].first == i) plan.back().progress = with_progress[k++].second;
            }
        const std::uint64_t start = end_;
        auto src = file_;
        lk.unlock();

        std::error_code ec;
        journal_fd tmp;
        ec = file_open(temp_path_, file_open_mode::create_or_truncate, tmp);
        std::uint64_t tmp_end = 0;
        std::string buf;
        if (!ec) {
            buf.assign(journal_magic, journal_magic_size);
            journal_reader reader(src->get(), start);
            for (auto& m : plan) {
                const char* p = nullptr;
                std::size_t avail = 0;
                if ((ec = reader.fetch(m.from, m.len, p, avail))) break;
                if (avail != m.len) {
                    ec = std::make_error_code(std::errc::io_error);
                    break;
                }
                m.to = tmp_end + buf.size() + journal_header_size + 1;
                const std::size_t at = journal_begin(buf, journal_op::put);
                buf.append(p, m.len);
                journal_seal(buf, at);
                if (m.progress) {
                    journal_entry e;
                    journal_parse_entry(p, m.len, e);  // checked when it was written or opened
                    const std::size_t pat = journal_begin(buf, journal_op::progress);
                    journal_append_progress(buf, e.id, *m.progress);
                    journal_seal(buf, pat);
                }
                if (buf.size() >= (1u << 20)) {
                    if ((ec = journal_pwrite(tmp.get(), buf.data(), buf.size(), tmp_end))) break;
                    tmp_end += buf.size();
                    buf.clear();
                }
            }
            if (!ec) ec = journal_pwrite(tmp.get(), buf.data(), buf.size(), tmp_end);
            if (!ec) tmp_end += buf.size();
        }
        const std::uint64_t tail_base = tmp_end;  // where old byte `start` lands
        std::uint64_t copied = start;
        for (int round = 0; !ec && round < 8; ++round) {
            lk.lock();
            const std::uint64_t end = end_;
            lk.unlock();
            if (end - copied < (64u << 10)) break;
            ec = copy_range(src->get(), copied, end, tmp.get(), tmp_end, buf);
            copied = end;
        }
        if (!ec) ec = journal_datasync(tmp.get());
        if (!ec && open_ && opts_.hook) opts_.hook(journal_event::compaction_copied);

        lk.lock();
        if (!ec && copied < end_) {
            ec = copy_range(src->get(), copied, end_, tmp.get(), tmp_end, buf);
            if (!ec) ec = journal_datasync(tmp.get());
        }
        if (!ec) ec = file_replace(temp_path_, path_);
        if (ec) {
            (void)file_remove(temp_path_);
            compacting_ = false;
            retry_compaction_at_ = end_ + std::max<std::uint64_t>(opts_.compaction_floor, 1u << 20);
            last_error_ = ec;
            return detail::storage_failure(ec);
        }
        const auto dir_ec = journal_sync_dir(dir_);

        // Repoint the slots: copied ones to their new place, later ones shifted with the tail.
        // The high bit marks "done" so a shifted offset is never mistaken for an old one.
        constexpr std::uint64_t done = std::uint64_t{1} << 63;
        auto& slots = index_.slots();
        for (const auto& m : plan) {  // (a clear() meanwhile may have emptied the slots)
            if (m.slot >= slots.size()) continue;
            auto& s = slots[m.slot];
            if (s.len && s.off == m.from) s.off = m.to | done;
        }
        for (auto& s : slots)
            if (s.len) s.off = (s.off & done) ? (s.off & ~done) : s.off - start + tail_base;

        file_ = std::make_shared<journal_fd>(std::move(tmp));
        ++file_gen_;
        end_ = tmp_end;
        synced_ = tmp_end;
        ++stats_.compactions;
        compacting_ = false;
        retry_compaction_at_ = 0;
        if (index_.sparse()) index_.sweep();
        sync_cv_.notify_all();
        window_cv_.notify_all();
        gen_seen_.store(file_gen_);
        synced_seen_.store(synced_);
        sync_epoch_.advance();
        return dir_ec ? poison(dir_ec) : std::error_code{};
    }

    // Applies one record's body (already checksummed). False: well-formed checksum, malformed
    // content; nothing applied.
    bool replay(const char* body, std::uint32_t len, std::uint64_t body_off)
    {
        const char* p = body + 1;
        const std::size_t n = len - 1;
        journal_entry e;
        switch (static_cast<journal_op>(body[0])) {
        case journal_op::put:
            if (!journal_parse_entry(p, n, e) || e.size != n) return false;
            apply_put(e.id, body_off + 1, static_cast<std::uint32_t>(n));
            return true;
        case journal_op::remove: apply_remove({p, n}); return true;
        case journal_op::clear:
            if (n != 0) return false;
            apply_clear();
            return true;
        case journal_op::progress: {
            std::string_view id;
            journal_progress v;
            if (!journal_parse_progress(p, n, id, v)) return false;
            if (index_.find(id) != Index::npos) apply_progress(id, v, journal_header_size + len);
            return true;
        }
        case journal_op::batch: {
            if (n == 0) return false;
            for (std::size_t k = 0; k < n; k += e.size)
                if (!journal_parse_entry(p + k, n - k, e)) return false;
            for (std::size_t k = 0; k < n; k += e.size) {
                journal_parse_entry(p + k, n - k, e);
                apply_put(e.id, body_off + 1 + k, static_cast<std::uint32_t>(e.size));
            }
            return true;
        }
        }
        return false;
    }

    // True if a whole, checksummed record starts anywhere in (off, size): then the bad bytes at
    // `off` are damage in the middle, not a write cut short at the end.
    static bool record_follows(journal_reader& r, std::uint64_t off)
    {
        const std::uint64_t size = r.size();
        for (std::uint64_t q = off + 1; q + journal_header_size + 1 <= size; ++q) {
            const char* p = nullptr;
            std::size_t avail = 0;
            if (r.fetch(q, journal_header_size + 1, p, avail) || avail < journal_header_size + 1)
                return false;
            const std::uint32_t len = journal_get_u32(p + 4);
            const auto op = static_cast<unsigned char>(p[8]);
            if (len == 0 || len > size - q - journal_header_size || op < 1 || op > journal_last_op) continue;
            const std::uint32_t crc = journal_get_u32(p);
            if (r.fetch(q, journal_header_size + len, p, avail) || avail < journal_header_size + len)
                return false;
            if (crc32c(p + 4, 4 + std::size_t{len}) == crc) return true;
        }
        return false;
    }

    void recover(std::unique_lock<std::mutex>& lk)
    {
        std::uint64_t size = 0;
        if (auto ec = journal_file_size(file_->get(), size)) fail_open("cannot stat " + path_.string(), ec);
        journal_reader r(file_->get(), size, 4u << 20);
        const char* p = nullptr;
        std::size_t avail = 0;
        if (auto ec = r.fetch(0, journal_magic_size, p, avail)) fail_open("cannot read " + path_.string(), ec);
        if (std::memcmp(p, journal_magic, avail) != 0) {
            end_ = journal_magic_size;  // nothing of it is kept
            set_aside(lk, "does not start like a syncvault journal; kept nothing of it");
            return;
        }
        if (avail < journal_magic_size) {  // created, then cut short before its first sync
            if (auto ec = write_magic()) fail_open("cannot write " + path_.string(), ec);
            return;
        }

        std::uint64_t off = journal_magic_size;
        std::size_t records = 0;
        const char* problem = nullptr;  // why the scan stopped before the end of the file
        std::vector<std::uint64_t> skipped;  // checksummed records whose content is malformed
        while (off < size) {
            if (auto ec = r.fetch(off, journal_header_size, p, avail))
                fail_open("cannot read " + path_.string(), ec);
            if (avail < journal_header_size) {
                problem = "record cut short";
                break;
            }
            const std::uint32_t crc = journal_get_u32(p);
            const std::uint32_t len = journal_get_u32(p + 4);
            if (len > size - off - journal_header_size) {
                problem = "record cut short";
                break;
            }
            if (len == 0 || len > journal_max_body) {
                problem = "impossible record length";
                break;
            }
            if (auto ec = r.fetch(off, journal_header_size + len, p, avail))
                fail_open("cannot read " + path_.string(), ec);
            if (crc32c(p + 4, 4 + std::size_t{len}) != crc) {
                problem = "checksum mismatch";
                break;
            }
            // Its checksum vouches for its length: a record whose content makes no sense is
            // skipped (and reported below), and the records after it are still read.
            if (replay(p + journal_header_size, len, off + journal_header_size))
                ++records;
            else
                skipped.push_back(off);
            off += journal_header_size + len;
        }
        end_ = off;
        synced_ = off;
        std::string damage;
        if (off < size && record_follows(r, off)) {
            damage = "was damaged at byte " + std::to_string(off) + " (" + problem + ") with whole records after it; kept the " +
                     std::to_string(records) + " records before it";
        } else if (off < size) {
            // A torn tail: the last writes before a crash or power cut, cut short or half on the
            // disk (whatever the damage, no whole record follows it). Only a record that was
            // never synced, so never acknowledged, can be torn: dropping it loses nothing.
            if (auto ec = file_truncate(file_->get(), off)) fail_open("cannot truncate " + path_.string(), ec);
            if (auto ec = journal_datasync(file_->get())) fail_open("cannot sync " + path_.string(), ec);
        }
        if (!skipped.empty()) {
            if (!damage.empty()) damage += ", and ";
            damage += "held " + std::to_string(skipped.size()) +
                      " record(s) that passed their checksum but cannot be decoded (first at byte " +
                      std::to_string(skipped.front()) + "); set them aside and kept every other record";
        }
        if (!damage.empty()) set_aside(lk, damage);
    }

    // The newest entry for `id` before byte `before` that decodes, and that no remove or clear
    // after it undid: the version an undecodable update replaced. Scans the file (rare).
    std::optional<std::pair<std::uint64_t, std::uint32_t>> older_version(std::string_view id, std::uint64_t before)
    {
        std::vector<std::pair<std::uint64_t, std::uint32_t>> found;
        journal_reader r(file_->get(), end_);
        const char* p = nullptr;
        std::size_t avail = 0;
        for (std::uint64_t off = journal_magic_size; off < before;) {
            if (r.fetch(off, journal_header_size, p, avail) || avail < journal_header_size) break;
            const std::uint32_t len = journal_get_u32(p + 4);
            if (len == 0 || r.fetch(off, journal_header_size + len, p, avail) || avail < journal_header_size + len)
                break;
            const char* body = p + journal_header_size;
            const std::uint64_t body_off = off + journal_header_size;
            const std::size_t n = len - 1;
            journal_entry e;
            switch (static_cast<journal_op>(body[0])) {
            case journal_op::put:
            case journal_op::batch:
                for (std::size_t k = 0; k < n && journal_parse_entry(body + 1 + k, n - k, e); k += e.size)
                    if (e.id == id && body_off + 1 + k < before)
                        found.emplace_back(body_off + 1 + k, static_cast<std::uint32_t>(e.size));
                break;
            case journal_op::remove:
                if (std::string_view(body + 1, n) == id) found.clear();
                break;
            case journal_op::clear: found.clear(); break;
            case journal_op::progress: break;  // overrides fields, not the entry
            }
            off += journal_header_size + len;
        }
        for (auto it = found.rbegin(); it != found.rend(); ++it) {
            journal_entry e;
            if (r.fetch(it->first, it->second, p, avail) || avail < it->second ||
                !journal_parse_entry(p, avail, e))
                continue;
            if (auto a = parse_action(e.json); a && a->id == id && body_in_one_place(e, *a)) return *it;
        }
        return std::nullopt;
    }

    // Replaces each entry in `bad` that is still the stored version of its id by the version
    // before it, if one decodes (true if any did), or else forgets the action; then sets the
    // journal aside as opening does (the evidence kept, the journal rewritten without them) and
    // reports them. If the file cannot be set aside, the report says so (a reopen finds them
    // again). Never throws: this runs inside load_all.
    bool set_aside_undecodable(std::unique_lock<std::mutex>& lk, const std::vector<undecodable>& bad)
    {
        std::string damage;
        std::size_t n = 0;
        bool fell_back = false;
        for (const auto& b : bad) {
            const std::size_t pos = index_.find(b.id);
            if (pos == Index::npos || index_.slots()[pos].off != b.off) continue;  // replaced meanwhile
            std::string what = "the record of action \"" + b.id + "\" at byte " + std::to_string(b.off) + " (" +
                               b.why + ")";
            if (const auto older = older_version(b.id, b.off)) {
                apply_put(b.id, older->first, older->second);  // keeps its place
                fell_back = true;
                what += ", which fell back to its previous version";
            } else {
                apply_remove(b.id);
            }
            if (n++ < 8) damage += (n > 1 ? "; " : "") + what;
        }
        if (n == 0) return false;  // another load set them aside
        damage = "held " + std::to_string(n) +
                 " record(s) that passed their checksum but cannot be decoded: " + damage +
                 (n > 8 ? "; ..." : "") + "; set them aside and kept every other record";
        try {
            set_aside(lk, damage);
        } catch (const std::exception& e) {
            diagnostics_.push_back({make_error_code(errc::storage_corrupt),
                                    "syncvault: journal " + path_.string() + " " + damage +
                                        ", but could not keep the damaged file (" + e.what() +
                                        "): the records stay in it and are found again at the next open"});
        }
        if (!lk.owns_lock()) lk.lock();
        return fell_back;
    }

    // Keeps the damaged file under another name (a hard link: no copy, atomic), then rewrites
    // the journal from what was recovered (the index) and reports both names; `damage` says
    // what was wrong and what was kept. Throws as `fail_open` if it cannot.
    void set_aside(std::unique_lock<std::mutex>& lk, const std::string& damage)
    {
        const auto now = std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now());
        const auto day = std::chrono::floor<std::chrono::days>(now);
        const std::chrono::year_month_day ymd{day};
        const std::chrono::hh_mm_ss hms{now - day};
        char stamp[32];
        std::snprintf(stamp, sizeof stamp, "%04d%02u%02uT%02d%02d%02dZ", int(ymd.year()), unsigned(ymd.month()),
                      unsigned(ymd.day()), int(hms.hours().count()), int(hms.minutes().count()),
                      int(hms.seconds().count()));
        std::filesystem::path aside;
        for (int i = 1;; ++i) {
            aside = path_;
            aside += ".corrupt-";
            aside += stamp;
            if (i > 1) aside += "-" + std::to_string(i);
            std::error_code ec, ignored;
            if (std::filesystem::exists(aside, ignored)) continue;
            std::filesystem::create_hard_link(path_, aside, ec);
            if (!ec) break;
            if (std::filesystem::exists(aside, ignored)) continue;
            // No hard links here: copy.
            if (!std::filesystem::copy_file(path_, aside, ec)) {
                if (std::filesystem::exists(aside, ignored)) continue;
                fail_open("cannot set aside the damaged journal " + path_.string() + " as " + aside.string(), ec);
            }
            journal_fd copy;
            if (!ec) ec = file_open(aside, file_open_mode::open_existing, copy);
            if (!ec) ec = journal_datasync(copy.get());
            if (ec) fail_open("cannot sync " + aside.string(), ec);
            break;
        }
        if (auto ec = journal_sync_dir(dir_)) fail_open("cannot sync " + dir_.string(), ec);
        if (run_compaction(lk)) fail_open("cannot rewrite " + path_.string(), last_error_);
        diagnostics_.push_back({make_error_code(errc::storage_corrupt),
                                "syncvault: journal " + path_.string() + " " + damage + " (" +
                                    std::to_string(index_.size()) +
                                    " actions now); the damaged file, as it was, is kept as " +
                                    aside.string()});
    }

    std::filesystem::path dir_, path_, lock_path_, temp_path_;
    file_journal_options opts_;
    journal_fd lock_fd_;

    mutable std::mutex mu_;
    std::condition_variable sync_cv_;
    std::shared_ptr<journal_fd> file_;   // readers keep the file they started on
    std::uint64_t file_gen_ = 0;         // bumped when compaction replaces the file
    std::uint64_t end_ = 0;              // bytes of whole records written
    std::uint64_t synced_ = 0;           // a prefix known to be on disk
    // Group commit (sync_inserts): the leader's state and its window.
    bool leading_ = false;               // a sync is running, or its leader waits to start it
    std::condition_variable window_cv_;  // the leader waits here for more inserters
    std::size_t cut_inserts_ = 0;        // inserting calls written since a leader read end_
    std::size_t last_batch_ = 1;         // inserting calls the last sync served
    std::size_t window_target_ = 0;      // nonzero: a leader waits for this many
    // A moving average of fdatasync's latency; the window lasts at most half of it.
    std::chrono::steady_clock::duration sync_time_{};
    // Followers wait on the epoch, bumped (under mu_) when a sync ends or compaction switches
    // files, then read synced_ and file_gen_ as they were published with it, without mu_.
    epoch_signal sync_epoch_;
    std::atomic<std::uint64_t> synced_seen_{0};
    std::atomic<std::uint64_t> gen_seen_{0};
    bool failed_ = false;                // a sync or a cut-back failed: refuse writes
    bool compacting_ = false;
    bool open_ = false;                  // construction (and its recovery) is over
    std::uint64_t retry_compaction_at_ = 0;
    mutable std::error_code last_error_;

    Index index_;
    std::uint64_t live_bytes_ = 0;
    // The newest progress record of each action that has one newer than its put.
    struct progress_slot {
        journal_progress values;
        std::uint64_t record_bytes = 0;
    };
    struct id_hash {
        using is_transparent = void;
        std::size_t operator()(std::string_view id) const noexcept { return std::hash<std::string_view>{}(id); }
    };
    struct id_equal {
        using is_transparent = void;
        bool operator()(std::string_view a, std::string_view b) const noexcept { return a == b; }
    };
    boost::unordered_flat_map<std::string, progress_slot, id_hash, id_equal> progress_;
    std::vector<diagnostic> diagnostics_;
    file_journal_stats stats_;
};

} // namespace detail

/**
 * The default durable storage: an append-only, checksummed journal in a directory (see the file
 * comment for its guarantees). Models `syncvault::storage` and the optional hooks `save_batch`,
 * `flush` and `take_diagnostics`. All members may be called from any thread. Movable; a
 * moved-from journal may only be destroyed or assigned to.
 */
class file_journal {
public:
    /** The journal's file name inside its directory. */
    static constexpr std::string_view file_name = "syncvault.journal";

    /**
     * Opens (creating if needed) the journal in `cfg.storage_path`, synced per
     * `cfg.storage_durability`.
     * @throws std::invalid_argument if `storage_path` is empty;
     *         std::system_error with `errc::storage_locked` if another instance holds it, or
     *         `errc::storage_failed` (naming the path) if it cannot be created or read.
     */
    explicit file_journal(const vault_config& cfg)
        : file_journal(checked_path(cfg), options_for(cfg.storage_durability))
    {
    }

    /** Opens the journal in `directory`; throws as the config constructor does. */
    explicit file_journal(std::filesystem::path directory, durability mode = durability::per_record)
        : file_journal(std::move(directory), options_for(mode))
    {
    }

    /** Opens the journal in `directory` with every option spelled out. */
    file_journal(std::filesystem::path directory, file_journal_options options)
        : impl_(std::make_unique<detail::journal_impl<>>(std::move(directory), std::move(options)))
    {
    }

    /** Every call takes the journal's own lock: concurrent inserts can share a sync. */
    static constexpr bool thread_safe = true;

    /** Inserts `a`, or replaces the action with its id in place (see the durability rules). */
    std::error_code save(const sync_action& a) { return impl_->save(a); }
    /** Saves every action with one write and, if any is new, one sync; all or nothing. */
    std::error_code save_batch(std::span<const sync_action> batch) { return impl_->save_batch(batch); }
    /**
     * Records an attempt: `a` differs from the stored action only in its attempt fields
     * (attempts, next attempt time, last status and error, answered), which are written as a
     * 24-byte record on top of the stored one, lazily like any update. An action the journal
     * does not hold is saved whole.
     */
    std::error_code save_progress(const sync_action& a) { return impl_->save_progress(a); }
    /** Forgets the action `id`; unknown ids are not an error. */
    std::error_code remove(std::string_view id) { return impl_->remove(id); }
    /** Every stored action in insertion order, read back from the file. */
    result<std::vector<sync_action>> load_all() const { return impl_->load_all(); }
    /**
     * The body of the stored action `id`, read back from its newest record (checksum checked);
     * `errc::storage_failed` if no action has that id. With this hook the vault keeps pending
     * actions' bodies here rather than in memory.
     */
    result<std::string> load_body(std::string_view id) const { return impl_->load_body(id); }
    /** Forgets every action. */
    std::error_code clear() { return impl_->clear(); }
    /** How many actions are stored. */
    std::size_t count() const { return impl_->count(); }
    /** Syncs what was written lazily (updates and removes). */
    std::error_code flush() { return impl_->flush(); }
    /** Problems found and recovered from since the last call (a damaged journal set aside). */
    std::vector<diagnostic> take_diagnostics() { return impl_->take_diagnostics(); }

    /** Rewrites the journal with only the stored actions, now, whatever the thresholds. */
    std::error_code compact() { return impl_->compact(); }
    /** Counters; `synced_bytes` lets a test simulate a power cut by keeping only that prefix. */
    file_journal_stats stats() const { return impl_->stats(); }
    /** The operating system's error behind the last `errc::storage_failed`, for logs. */
    std::error_code last_system_error() const { return impl_->last_system_error(); }
    /** The journal file. */
    const std::filesystem::path& path() const noexcept { return impl_->path(); }

private:
    static file_journal_options options_for(durability mode)
    {
        file_journal_options o;
        o.mode = mode;
        return o;
    }

    static std::filesystem::path checked_path(const vault_config& cfg)
    {
        if (cfg.storage_path.empty())
            throw std::invalid_argument(
                "syncvault: vault_config::storage_path is empty; file_journal needs a directory");
        return cfg.storage_path;
    }

    std::unique_ptr<detail::journal_impl<>> impl_;
};

static_assert(syncvault::storage<file_journal>);
static_assert(syncvault::batch_storage<file_journal>);
static_assert(syncvault::flushable_storage<file_journal>);
static_assert(syncvault::diagnosing_storage<file_journal>);
static_assert(syncvault::thread_safe_storage<file_journal>);
static_assert(syncvault::body_reading_storage<file_journal>);
static_assert(syncvault::progress_storage<file_journal>);

} // namespace syncvault

#endif
