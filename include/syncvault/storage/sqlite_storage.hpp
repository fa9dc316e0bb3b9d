#ifndef SYNCVAULT_STORAGE_SQLITE_STORAGE_HPP
#define SYNCVAULT_STORAGE_SQLITE_STORAGE_HPP

/**
 * @file
 * `sqlite_storage`: a `syncvault::storage` in one SQLite table (CMake target `syncvault::sqlite`).
 *
 * ## Database
 * One file (`cfg.storage_path / "syncvault.db"`, or any path given), created 0600, in WAL mode,
 * holding one table, `syncvault_actions`, one row per action with one column per field: a team
 * that keeps its data in SQLite can inspect the queue with `sqlite3`
 * (`SELECT path, attempts FROM syncvault_actions WHERE state = 'dead'`). `body` is a BLOB, so any
 * bytes survive; `headers` is JSON text (`[["name", "value"], ...]`); times are milliseconds since
 * the Unix epoch. `extra` holds the fields added since 0.1 (`lane`, `coalesce_key`, `after`,
 * `answered`) as one JSON object with the record codec's names (`{"lane": "uploads",
 * "after": ["..."]}`), NULL when none is set: later fields need no new column and no migration. The rowid (`position`) is the insertion order: an update keeps it, a save after
 * a remove gets a new, larger one, so `load_all` is FIFO. `PRAGMA application_id` marks the file
 * as syncvault's and `PRAGMA user_version` holds the schema version (`schema_version`); on open
 * an unknown version, or an SQLite database that belongs to someone else, is refused with
 * `std::system_error` and left untouched, as is a file that is not SQLite at all. A version 1
 * database (syncvault 0.1) is migrated in place, in one transaction, when it is opened: it gains
 * the `extra` column and keeps every row.
 *
 * ## Rows that cannot be read back
 * A row `load_all` cannot decode (a column of the wrong type, an unknown method, malformed
 * headers or `extra`: edited by hand, or written by a buggy tool) never fails the load: it is
 * moved, as it was, into `syncvault_quarantine` (the same columns, plus `reason` and
 * `quarantined_at_ms`; created with the first such row), every other row is returned, and a `diagnostic` with
 * `errc::storage_corrupt` naming the row waits in `take_diagnostics()` (the vault reports it to
 * the application). If even the move fails, the row stays where it is, is skipped, and the
 * diagnostic says so.
 *
 * ## Exclusive
 * The connection runs with `locking_mode=EXCLUSIVE` and takes the write lock while opening, so
 * the store is held by one instance (SPEC 3.15): a second `sqlite_storage` over the same file, in
 * this process or another, waits for the busy timeout and throws `std::system_error` with
 * `errc::storage_locked`. A side effect is that no `-shm` file is used. Mind that POSIX locks are
 * per process: opening and closing the database file by other means (an `std::ifstream` on it)
 * while a `sqlite_storage` is open in the same process drops its lock.
 *
 * ## Durability (SPEC section 7)
 * Inserting saves (and `save_batch`) commit with `synchronous=FULL`: the WAL is fsynced before
 * they return. Updating saves, `remove` and `clear` commit with `synchronous=NORMAL`: written to
 * the WAL before they return (a process crash keeps them) but synced only at the next inserting
 * commit, checkpoint, `flush()` or close (a power cut may forget them). WAL commits are ordered,
 * so a power cut can only lose a suffix of lazy commits, never an insert that returned. With
 * `durability::group_commit`, concurrent inserts share one transaction and one fsync, each
 * returning once it is synced; with `durability::none` every commit is lazy.
 *
 * ## Errors
 * SQLite's result codes map to `errc`: `SQLITE_BUSY`/`SQLITE_LOCKED` to `storage_locked`,
 * `SQLITE_CORRUPT`/`SQLITE_NOTADB` to `storage_corrupt`, anything else (full disk, I/O error) to
 * `storage_failed`. Constructors throw `std::system_error` whose `what()` holds the path and
 * SQLite's own message; calls return the `std::error_code` and keep SQLite's message for
 * `last_error_message()`. A failed call leaves the stored set as it was.
 *
 * All members may be called from any thread.
 *
 * @code
 * syncvault::sqlite_storage s{"/var/lib/app/queue.db"};
 * syncvault::basic_vault<curl_transport, syncvault::sqlite_storage, ...> v{cfg};  // from cfg.storage_path
 * @endcode
 */

#include <syncvault/action.hpp>
#include <syncvault/concepts/storage.hpp>
#include <syncvault/config.hpp>
#include <syncvault/detail/action_codec.hpp>
#include <syncvault/error.hpp>

#include <boost/json.hpp>

#include <sqlite3.h>

#include <sys/stat.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <memory>
#include <mutex>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

namespace syncvault {

/** How a `sqlite_storage` opens and commits. */
struct sqlite_storage_options {
    /// When inserts are synced (SPEC section 7); updates and removes are always lazy.
    durability mode = durability::per_record;
    /// How long opening waits for another connection's lock before `errc::storage_locked`.
    std::chrono::milliseconds busy_timeout{1'000};
};

namespace detail {

/** Maps an SQLite result code (primary or extended) to `errc`. */
inline std::error_code sqlite_error_code(int rc) noexcept
{
    switch (rc & 0xff) {
    case SQLITE_OK:
    case SQLITE_DONE:
    case SQLITE_ROW: return {};
    case SQLITE_BUSY:
    case SQLITE_LOCKED: return make_error_code(errc::storage_locked);
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB: return make_error_code(errc::storage_corrupt);
    // The system cause where SQLite names one: `== std::errc::...` and `== errc::storage_failed`.
    case SQLITE_FULL: return storage_failure(std::make_error_code(std::errc::no_space_on_device));
    case SQLITE_IOERR: return storage_failure(std::make_error_code(std::errc::io_error));
    default: return make_error_code(errc::storage_failed);
    }
}

struct sqlite_stmt_deleter {
    void operator()(sqlite3_stmt* s) const noexcept { sqlite3_finalize(s); }
};
using sqlite_stmt = std::unique_ptr<sqlite3_stmt, sqlite_stmt_deleter>;

// Resets a statement when a step is over, so its locks and bindings (pointers into the caller's
// strings) never outlive the call.
class sqlite_stmt_scope {
public:
    explicit sqlite_stmt_scope(sqlite3_stmt* s) noexcept : s_(s) {}
    ~sqlite_stmt_scope()
    {
        sqlite3_reset(s_);
        sqlite3_clear_bindings(s_);
    }
    sqlite_stmt_scope(const sqlite_stmt_scope&) = delete;
    sqlite_stmt_scope& operator=(const sqlite_stmt_scope&) = delete;

private:
    sqlite3_stmt* s_;
};

inline std::string headers_to_json(const std::vector<header>& headers)
{
    boost::json::array a;
    a.reserve(headers.size());
    for (const auto& h : headers) a.push_back(boost::json::array{h.name, h.value});
    return boost::json::serialize(a);
}

inline bool headers_from_json(std::string_view text, std::vector<header>& out)
{
    boost::json::parse_options opts;
    opts.allow_invalid_utf8 = true;  // header bytes are kept as given
    boost::system::error_code ec;
    auto v = boost::json::parse(text, ec, {}, opts);
    if (ec || !v.is_array()) return false;
    for (const auto& h : v.get_array()) {
        const auto* pair = h.if_array();
        if (!pair || pair->size() != 2 || !(*pair)[0].is_string() || !(*pair)[1].is_string())
            return false;
        out.push_back({std::string((*pair)[0].get_string()), std::string((*pair)[1].get_string())});
    }
    return true;
}

} // namespace detail

/**
 * A `syncvault::storage` in one SQLite table; see the file comment for the database layout,
 * locking, durability and errors. Models the optional hooks `save_batch`, `flush` and
 * `take_diagnostics`, and is `thread_safe`. Movable; a moved-from instance answers every call with `errc::storage_failed`.
 */
class sqlite_storage {
public:
    /// The `PRAGMA user_version` this code writes and accepts.
    static constexpr int schema_version = 2;
    /// The `PRAGMA application_id` that marks a database as syncvault's ("SyVa").
    static constexpr std::int32_t application_id = 0x53795661;
    /// Calls may come from several threads at once (the vault then lets inserts group-commit).
    static constexpr bool thread_safe = true;

    /**
     * Opens (or creates, 0600) the database `db_file`; its directory must exist.
     * @throws std::system_error `errc::storage_locked` when another connection holds it past
     *         `opts.busy_timeout`; `errc::storage_corrupt` when it is not an SQLite database;
     *         `errc::storage_failed` for an unknown schema version, another application's
     *         database, or an I/O failure. Nothing in the file is changed when it throws.
     */
    explicit sqlite_storage(std::filesystem::path db_file, sqlite_storage_options opts = {})
        : impl_(std::make_unique<impl>(std::move(db_file), opts))
    {
    }

    /**
     * Opens `cfg.storage_path / "syncvault.db"`, creating the directory if missing, with
     * `cfg.storage_durability`.
     * @throws std::invalid_argument when `storage_path` is empty; std::system_error as above, or
     *         when the directory cannot be created.
     */
    explicit sqlite_storage(const vault_config& cfg)
        : sqlite_storage(db_file_of(cfg), options_of(cfg))
    {
    }

    sqlite_storage(sqlite_storage&&) noexcept = default;
    sqlite_storage& operator=(sqlite_storage&&) noexcept = default;
    ~sqlite_storage() = default;

    /** Inserts `a` (synced per the durability mode) or updates the row with `a.id` in place (lazy). */
    std::error_code save(const sync_action& a)
    {
        if (!impl_) return moved_from();
        if (impl_->opts.mode == durability::group_commit) {
            // Updates need no sync: only inserts queue for a shared commit.
            {
                std::lock_guard lock(impl_->db_mutex);
                bool updated = false;
                if (auto ec = impl_->update_lazily(a, updated); ec || updated) return ec;
            }
            return impl_->group_insert(a);
        }
        std::lock_guard lock(impl_->db_mutex);
        bool updated = false;
        if (auto ec = impl_->update_lazily(a, updated); ec || updated) return ec;
        return impl_->insert(a);
    }

    /**
     * Records an attempt (the optional `save_progress` hook): `a` differs from the stored row only
     * in its attempt fields, so only those columns (and `extra`, which holds `answered`) are
     * updated, lazily like any update; the body is not written again. A row that is not there is
     * saved whole.
     */
    std::error_code save_progress(const sync_action& a)
    {
        if (!impl_) return moved_from();
        {
            std::lock_guard lock(impl_->db_mutex);
            bool updated = false;
            if (auto ec = impl_->update_progress(a, updated); ec || updated) return ec;
        }
        return save(a);
    }

    /** Saves every action of `batch` in one transaction and one sync: all or nothing. */
    std::error_code save_batch(std::span<const sync_action> batch)
    {
        if (!impl_) return moved_from();
        if (batch.empty()) return {};
        std::lock_guard lock(impl_->db_mutex);
        return impl_->write_batch(batch.size(), [&](std::size_t i) -> const sync_action& { return batch[i]; });
    }

    /** Deletes the action `id`, if stored (lazy). */
    std::error_code remove(std::string_view id)
    {
        if (!impl_) return moved_from();
        std::lock_guard lock(impl_->db_mutex);
        auto* s = impl_->remove_.get();
        detail::sqlite_stmt_scope scope(s);
        sqlite3_bind_text64(s, 1, id.data(), id.size(), SQLITE_STATIC, SQLITE_UTF8);
        if (auto ec = impl_->run(s, impl::lazy_level, "remove")) return ec;
        impl_->count.fetch_sub(std::size_t(sqlite3_changes(impl_->db)));
        return {};
    }

    /** Every stored action, pending and dead, in insertion order. */
    result<std::vector<sync_action>> load_all()
    {
        if (!impl_) return moved_from();
        std::lock_guard lock(impl_->db_mutex);
        return impl_->load_all();
    }

    /**
     * The stored body of the action `id` (the optional `load_body` hook: the vault then keeps
     * bodies here, not in memory); `errc::storage_failed` if no action has that id.
     */
    result<std::string> load_body(std::string_view id)
    {
        if (!impl_) return moved_from();
        std::lock_guard lock(impl_->db_mutex);
        auto* s = impl_->select_body_.get();
        detail::sqlite_stmt_scope scope(s);
        sqlite3_bind_text64(s, 1, id.data(), id.size(), SQLITE_STATIC, SQLITE_UTF8);
        const int rc = sqlite3_step(s);
        if (rc == SQLITE_DONE) return make_error_code(errc::storage_failed);  // no such action
        if (rc != SQLITE_ROW) return impl_->fail(rc, "load_body");
        const int type = sqlite3_column_type(s, 0);
        if (type != SQLITE_BLOB && type != SQLITE_TEXT) return make_error_code(errc::storage_corrupt);
        const auto* p = static_cast<const char*>(type == SQLITE_BLOB ? sqlite3_column_blob(s, 0)
                                                                      : static_cast<const void*>(sqlite3_column_text(s, 0)));
        const auto n = static_cast<std::size_t>(sqlite3_column_bytes(s, 0));
        return n == 0 ? std::string() : std::string(p, n);
    }

    /** Deletes every action (lazy). */
    std::error_code clear()
    {
        if (!impl_) return moved_from();
        std::lock_guard lock(impl_->db_mutex);
        detail::sqlite_stmt_scope scope(impl_->clear_.get());
        if (auto ec = impl_->run(impl_->clear_.get(), impl::lazy_level, "clear")) return ec;
        impl_->count = 0;
        return {};
    }

    /** How many actions are stored; never waits for a commit in progress. */
    std::size_t count() const noexcept { return impl_ ? impl_->count.load() : 0; }

    /** Syncs lazy commits: checkpoints the WAL into the database file, fsyncing both. */
    std::error_code flush()
    {
        if (!impl_) return moved_from();
        std::lock_guard lock(impl_->db_mutex);
        return impl_->exec("PRAGMA wal_checkpoint(TRUNCATE)", "flush");
    }

    /** Rows set aside since the last call (see "Rows that cannot be read back"). */
    std::vector<diagnostic> take_diagnostics()
    {
        if (!impl_) return {};
        std::lock_guard lock(impl_->db_mutex);
        return std::exchange(impl_->diagnostics, {});
    }

    /** SQLite's message for the most recent failed call ("database or disk is full"...), or empty. */
    std::string last_error_message() const
    {
        if (!impl_) return "sqlite_storage: moved from";
        std::lock_guard lock(impl_->db_mutex);
        return impl_->last_error;
    }

    /** The database file (empty once moved from). */
    const std::filesystem::path& path() const noexcept
    {
        static const std::filesystem::path none;
        return impl_ ? impl_->path : none;
    }

private:
    static std::error_code moved_from() noexcept { return make_error_code(errc::storage_failed); }

    static sqlite_storage_options options_of(const vault_config& cfg)
    {
        sqlite_storage_options o;
        o.mode = cfg.storage_durability;
        return o;
    }

    static std::filesystem::path db_file_of(const vault_config& cfg)
    {
        if (cfg.storage_path.empty())
            throw std::invalid_argument("vault_config::storage_path is empty: sqlite_storage needs "
                                        "a directory for syncvault.db");
        std::error_code ec;
        std::filesystem::create_directories(cfg.storage_path, ec);
        if (ec)
            throw std::system_error(make_error_code(errc::storage_failed),
                                    "vault_config::storage_path \"" + cfg.storage_path.string() +
                                        "\": cannot create the directory: " + ec.message());
        return cfg.storage_path / "syncvault.db";
    }

    struct impl {
        static constexpr int lazy_level = 1;  // PRAGMA synchronous=NORMAL
        static constexpr int full_level = 2;  // PRAGMA synchronous=FULL

        std::filesystem::path path;
        sqlite_storage_options opts;
        sqlite3* db = nullptr;
        detail::sqlite_stmt update_, progress_, insert_, remove_, clear_, select_, select_body_, begin_, commit_,
            rollback_, sync_full_, sync_normal_, quarantine_, unquarantined_;

        mutable std::mutex db_mutex;  // guards db, its statements, sync_level and last_error
        int sync_level = -1;          // the connection's current PRAGMA synchronous
        std::string last_error;
        std::vector<diagnostic> diagnostics;  // rows set aside, until take_diagnostics()
        std::atomic<std::size_t> count{0};

        // Group commit (LevelDB's writer queue): the front writer commits everyone queued.
        struct writer {
            const sync_action* action;
            std::error_code ec;
            bool done = false;
        };
        std::mutex queue_mutex;
        std::condition_variable queue_cv;
        std::deque<writer*> writers;

        impl(std::filesystem::path p, sqlite_storage_options o) : path(std::move(p)), opts(o)
        {
            try {
                open();
            } catch (...) {
                close();
                throw;
            }
        }
        ~impl() { close(); }
        impl(const impl&) = delete;
        impl& operator=(const impl&) = delete;

        int durable_level() const noexcept
        {
            return opts.mode == durability::none ? lazy_level : full_level;
        }

        void close() noexcept
        {
            // Statements first: sqlite3_close refuses a connection with live statements.
            for (auto* s : {&update_, &progress_, &insert_, &remove_, &clear_, &select_, &select_body_, &begin_, &commit_,
                            &rollback_, &sync_full_, &sync_normal_, &quarantine_, &unquarantined_})
                s->reset();
            if (db) sqlite3_close(db);  // checkpoints the WAL, fsyncing it, and deletes it
            db = nullptr;
        }

        [[noreturn]] void fail_open(int rc, std::string_view what) const
        {
            std::string msg = "sqlite_storage \"" + path.string() + "\": " + std::string(what);
            if (db && rc != SQLITE_OK) msg += std::string(": ") + sqlite3_errmsg(db);
            if (rc != SQLITE_OK) msg += " (SQLite result code " + std::to_string(rc) + ")";
            throw std::system_error(rc == SQLITE_OK ? make_error_code(errc::storage_failed)
                                                    : detail::sqlite_error_code(rc),
                                    msg);
        }

        void open_exec(const char* sql, std::string_view what)
        {
            if (int rc = sqlite3_exec(db, sql, nullptr, nullptr, nullptr); rc != SQLITE_OK)
                fail_open(rc, what);
        }

        // `sql` prepared and stepped to its first row (a missing row is an open failure).
        detail::sqlite_stmt open_query(const char* sql, std::string_view what)
        {
            sqlite3_stmt* raw = nullptr;
            if (int rc = sqlite3_prepare_v2(db, sql, -1, &raw, nullptr); rc != SQLITE_OK)
                fail_open(rc, what);
            detail::sqlite_stmt s(raw);
            int rc = sqlite3_step(raw);
            if (rc != SQLITE_ROW) fail_open(rc == SQLITE_DONE ? SQLITE_OK : rc, what);
            return s;
        }

        // The first column of the first row of `sql`, as an integer or as text.
        std::int64_t open_query_int(const char* sql, std::string_view what)
        {
            return sqlite3_column_int64(open_query(sql, what).get(), 0);
        }

        std::string open_query_text(const char* sql, std::string_view what)
        {
            auto s = open_query(sql, what);
            const auto* text = sqlite3_column_text(s.get(), 0);
            return text ? std::string(reinterpret_cast<const char*>(text)) : std::string{};
        }

        detail::sqlite_stmt prepare(const char* sql)
        {
            sqlite3_stmt* raw = nullptr;
            int rc = sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &raw, nullptr);
            if (rc != SQLITE_OK) fail_open(rc, "cannot prepare a statement");
            return detail::sqlite_stmt(raw);
        }

        void open()
        {
            std::error_code exists_ec;
            const bool existed = std::filesystem::exists(path, exists_ec);
            int rc = sqlite3_open_v2(path.c_str(), &db,
                                     SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                                     nullptr);
            if (rc != SQLITE_OK) fail_open(rc, "cannot open the database");
            // SQLite creates files 0644 (less umask); the WAL copies the database's mode. Nothing
            // has been written yet, so tightening it now leaves no window with data exposed.
            if (!existed && ::chmod(path.c_str(), S_IRUSR | S_IWUSR) != 0)
                throw std::system_error(make_error_code(errc::storage_failed),
                                        "sqlite_storage \"" + path.string() +
                                            "\": cannot make the database file 0600: " +
                                            std::generic_category().message(errno));
            sqlite3_extended_result_codes(db, 1);
            sqlite3_busy_timeout(db, int(opts.busy_timeout.count()));
#ifdef SQLITE_DBCONFIG_DEFENSIVE
            sqlite3_db_config(db, SQLITE_DBCONFIG_DEFENSIVE, 1, nullptr);
#endif
            // Before the first access, so the WAL never uses shared memory and the file lock,
            // once taken, is never released (SPEC 3.15: the store is held exclusively).
            open_exec("PRAGMA locking_mode=EXCLUSIVE", "cannot set the locking mode");

            // Read before writing anything: a file that is not SQLite (NOTADB), another
            // application's database or a newer schema is refused untouched.
            const auto app_id = open_query_int("PRAGMA application_id", "cannot read the database");
            const auto version = open_query_int("PRAGMA user_version", "cannot read the database");
            const auto objects = open_query_int("SELECT count(*) FROM sqlite_master",
                                                "cannot read the database schema");
            const bool fresh = app_id == 0 && version == 0 && objects == 0;
            if (!fresh && app_id != application_id)
                fail_open(SQLITE_OK, "not a syncvault database (application_id " +
                                         std::to_string(app_id) + ", " + std::to_string(objects) +
                                         " schema objects): give sqlite_storage a file of its own");
            if (!fresh && version != schema_version && version != 1)
                fail_open(SQLITE_OK, "unknown schema version " + std::to_string(version) +
                                         " (this syncvault reads version " +
                                         std::to_string(schema_version) +
                                         "; was it written by a newer syncvault?)");

            if (open_query_text("PRAGMA journal_mode=WAL", "cannot enter WAL mode") != "wal")
                fail_open(SQLITE_OK, "cannot enter WAL mode");
            // Bounds the WAL left behind by checkpoints after large bodies.
            open_exec("PRAGMA journal_size_limit=4194304", "cannot set the journal size limit");
            open_exec("PRAGMA synchronous=FULL", "cannot set synchronous");
            sync_level = full_level;
            // Takes the exclusive write lock now rather than at the first save.
            open_exec("BEGIN IMMEDIATE", "cannot lock the database");
            if (fresh) {
                open_exec("CREATE TABLE syncvault_actions ("
                          " position INTEGER PRIMARY KEY," // rowid: insertion (FIFO) order
                          " id TEXT NOT NULL UNIQUE,"
                          " method TEXT NOT NULL,"
                          " path TEXT NOT NULL,"
                          " body BLOB NOT NULL,"
                          " headers TEXT NOT NULL,"  // JSON [[name, value], ...]
                          " idempotency_key TEXT NOT NULL,"
                          " attempts INTEGER NOT NULL,"
                          " sequence INTEGER NOT NULL,"
                          " state TEXT NOT NULL,"  // 'pending' | 'dead'
                          " created_at_ms INTEGER NOT NULL,"
                          " next_attempt_at_ms INTEGER NOT NULL,"
                          " last_status INTEGER NOT NULL,"
                          " last_error INTEGER NOT NULL,"
                          " extra TEXT)",  // JSON object of the 0.2+ fields, NULL when none
                          "cannot create the table");
                open_exec(("PRAGMA application_id=" + std::to_string(application_id)).c_str(),
                          "cannot mark the database");
                open_exec(("PRAGMA user_version=" + std::to_string(schema_version)).c_str(),
                          "cannot set the schema version");
            } else if (open_query_int("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND "
                                      "name = 'syncvault_actions'",
                                      "cannot read the database schema") != 1) {
                fail_open(SQLITE_CORRUPT, "the syncvault_actions table is missing");
            } else if (version == 1) {
                // 0.1's schema: the same table without `extra`. ALTER TABLE ADD COLUMN rewrites
                // no row; the whole migration commits with the transaction, or not at all.
                if (open_query_int("SELECT count(*) FROM pragma_table_info('syncvault_actions') "
                                   "WHERE name = 'extra'",
                                   "cannot read the database schema") == 0)
                    open_exec("ALTER TABLE syncvault_actions ADD COLUMN extra TEXT",
                              "cannot migrate the table to schema version 2");
                open_exec(("PRAGMA user_version=" + std::to_string(schema_version)).c_str(),
                          "cannot set the schema version");
            }
            open_exec("COMMIT", "cannot lock the database");
            count = std::size_t(open_query_int("SELECT count(*) FROM syncvault_actions",
                                               "cannot count the actions"));

            constexpr const char* columns =
                "id, method, path, body, headers, idempotency_key, attempts, sequence, state, "
                "created_at_ms, next_attempt_at_ms, last_status, last_error, extra";
            update_ = prepare("UPDATE syncvault_actions SET method = ?2, path = ?3, body = ?4, "
                              "headers = ?5, idempotency_key = ?6, attempts = ?7, sequence = ?8, "
                              "state = ?9, created_at_ms = ?10, next_attempt_at_ms = ?11, "
                              "last_status = ?12, last_error = ?13, extra = ?14 WHERE id = ?1");
            progress_ = prepare("UPDATE syncvault_actions SET attempts = ?2, next_attempt_at_ms = ?3, "
                                "last_status = ?4, last_error = ?5, extra = ?6 WHERE id = ?1");
            insert_ = prepare((std::string("INSERT INTO syncvault_actions (") + columns +
                               ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)")
                                  .c_str());
            remove_ = prepare("DELETE FROM syncvault_actions WHERE id = ?1");
            clear_ = prepare("DELETE FROM syncvault_actions");
            select_ = prepare((std::string("SELECT ") + columns +
                               ", position FROM syncvault_actions ORDER BY position")
                                  .c_str());
            select_body_ = prepare("SELECT body FROM syncvault_actions WHERE id = ?1");
            unquarantined_ = prepare("DELETE FROM syncvault_actions WHERE position = ?1");
            begin_ = prepare("BEGIN IMMEDIATE");
            commit_ = prepare("COMMIT");
            rollback_ = prepare("ROLLBACK");
            sync_full_ = prepare("PRAGMA synchronous=FULL");
            sync_normal_ = prepare("PRAGMA synchronous=NORMAL");
        }

        // Where rows that cannot be decoded are kept, as they were: the actions table's columns
        // without types (a misfit value is kept as is), why, and when. Created with the first
        // such row (inside its transaction), so a healthy database keeps one table.
        std::error_code prepare_quarantine()
        {
            if (quarantine_) return {};
            if (auto ec = exec("CREATE TABLE IF NOT EXISTS syncvault_quarantine ("
                               " position, id, method, path, body, headers, idempotency_key, attempts,"
                               " sequence, state, created_at_ms, next_attempt_at_ms, last_status,"
                               " last_error, extra, reason TEXT NOT NULL, quarantined_at_ms INTEGER NOT NULL)",
                               "set aside a row"))
                return ec;
            constexpr const char* columns =
                "id, method, path, body, headers, idempotency_key, attempts, sequence, state, "
                "created_at_ms, next_attempt_at_ms, last_status, last_error, extra";
            const std::string sql = std::string("INSERT INTO syncvault_quarantine (position, ") + columns +
                                    ", reason, quarantined_at_ms) SELECT position, " + columns +
                                    ", ?2, ?3 FROM syncvault_actions WHERE position = ?1";
            sqlite3_stmt* raw = nullptr;
            if (int rc = sqlite3_prepare_v2(db, sql.c_str(), -1, &raw, nullptr); rc != SQLITE_OK)
                return fail(rc, "set aside a row");
            quarantine_.reset(raw);
            return {};
        }

        std::error_code fail(int rc, std::string_view op)
        {
            last_error = "sqlite_storage " + std::string(op) + ": " + sqlite3_errmsg(db) +
                         " (SQLite result code " + std::to_string(rc) + ")";
            return detail::sqlite_error_code(rc);
        }

        std::error_code exec(const char* sql, std::string_view op)
        {
            if (int rc = sqlite3_exec(db, sql, nullptr, nullptr, nullptr); rc != SQLITE_OK)
                return fail(rc, op);
            return {};
        }

        std::error_code set_sync(int level)
        {
            if (sync_level == level) return {};
            auto* s = level == full_level ? sync_full_.get() : sync_normal_.get();
            detail::sqlite_stmt_scope scope(s);
            auto ec = step(s, "set synchronous");
            if (!ec) sync_level = level;
            return ec;
        }

        // Steps `s` (already bound) to completion as its own transaction at `level`.
        std::error_code run(sqlite3_stmt* s, int level, std::string_view op)
        {
            if (auto ec = set_sync(level)) return ec;
            return step(s, op);
        }

        std::error_code step(sqlite3_stmt* s, std::string_view op)
        {
            int rc = sqlite3_step(s);
            if (rc != SQLITE_DONE && rc != SQLITE_ROW) return fail(rc, op);
            return {};
        }

        // The `extra` column of `a`: its 0.2+ fields as a JSON object, or empty for NULL.
        static std::string extra_of(const sync_action& a)
        {
            boost::json::object o;
            detail::encode_action_extras(a, o);
            return o.empty() ? std::string() : boost::json::serialize(o);
        }

        static void bind(sqlite3_stmt* s, const sync_action& a, const std::string& headers,
                         const std::string& extra)
        {
            auto text = [&](int i, std::string_view v) {
                sqlite3_bind_text64(s, i, v.data(), v.size(), SQLITE_STATIC, SQLITE_UTF8);
            };
            text(1, a.id);
            text(2, to_string(a.method));
            text(3, a.path);
            sqlite3_bind_blob64(s, 4, a.body.data(), a.body.size(), SQLITE_STATIC);
            text(5, headers);
            text(6, a.idempotency_key);
            sqlite3_bind_int64(s, 7, a.attempts);
            // Two's complement round trip: sequences past INT64_MAX read back unchanged.
            sqlite3_bind_int64(s, 8, static_cast<std::int64_t>(a.sequence));
            text(9, a.state == action_state::dead ? "dead" : "pending");
            sqlite3_bind_int64(s, 10, detail::to_epoch_ms(a.created_at));
            sqlite3_bind_int64(s, 11, detail::to_epoch_ms(a.next_attempt_at));
            sqlite3_bind_int64(s, 12, a.last_status);
            sqlite3_bind_int64(s, 13, a.last_error);
            if (extra.empty())
                sqlite3_bind_null(s, 14);
            else
                text(14, extra);
        }

        // Updates the row `a.id` if there is one, in its own lazily synced transaction.
        std::error_code update_lazily(const sync_action& a, bool& updated)
        {
            const auto headers = detail::headers_to_json(a.headers);
            const auto extra = extra_of(a);
            detail::sqlite_stmt_scope scope(update_.get());
            bind(update_.get(), a, headers, extra);
            if (auto ec = run(update_.get(), lazy_level, "save")) return ec;
            updated = sqlite3_changes(db) > 0;
            return {};
        }

        // Updates the attempt columns of the row `a.id` if there is one, lazily.
        std::error_code update_progress(const sync_action& a, bool& updated)
        {
            const auto extra = extra_of(a);
            auto* s = progress_.get();
            detail::sqlite_stmt_scope scope(s);
            sqlite3_bind_text64(s, 1, a.id.data(), a.id.size(), SQLITE_STATIC, SQLITE_UTF8);
            sqlite3_bind_int64(s, 2, a.attempts);
            sqlite3_bind_int64(s, 3, detail::to_epoch_ms(a.next_attempt_at));
            sqlite3_bind_int64(s, 4, a.last_status);
            sqlite3_bind_int64(s, 5, a.last_error);
            if (extra.empty())
                sqlite3_bind_null(s, 6);
            else
                sqlite3_bind_text64(s, 6, extra.data(), extra.size(), SQLITE_STATIC, SQLITE_UTF8);
            if (auto ec = run(s, lazy_level, "save")) return ec;
            updated = sqlite3_changes(db) > 0;
            return {};
        }

        // Inserts `a`, known to be absent, in its own transaction synced per the mode.
        std::error_code insert(const sync_action& a)
        {
            if (auto ec = set_sync(durable_level())) return ec;
            const auto headers = detail::headers_to_json(a.headers);
            const auto extra = extra_of(a);
            detail::sqlite_stmt_scope scope(insert_.get());
            bind(insert_.get(), a, headers, extra);
            if (auto ec = step(insert_.get(), "save")) return ec;
            ++count;
            return {};
        }

        // Saves `get(0)...get(n-1)` (update in place or insert) in one transaction synced per the
        // mode: all or nothing.
        template <class Get>
        std::error_code write_batch(std::size_t n, Get&& get)
        {
            if (auto ec = set_sync(durable_level())) return ec;
            {
                detail::sqlite_stmt_scope scope(begin_.get());
                if (auto ec = step(begin_.get(), "save")) return ec;
            }
            std::size_t inserted = 0;
            std::error_code ec;
            for (std::size_t i = 0; i < n && !ec; ++i) {
                const sync_action& a = get(i);
                const auto headers = detail::headers_to_json(a.headers);
                const auto extra = extra_of(a);
                {
                    detail::sqlite_stmt_scope scope(update_.get());
                    bind(update_.get(), a, headers, extra);
                    if ((ec = step(update_.get(), "save"))) break;
                }
                if (sqlite3_changes(db) > 0) continue;
                detail::sqlite_stmt_scope scope(insert_.get());
                bind(insert_.get(), a, headers, extra);
                if (!(ec = step(insert_.get(), "save"))) ++inserted;
            }
            if (!ec) {
                detail::sqlite_stmt_scope scope(commit_.get());
                ec = step(commit_.get(), "save");
            }
            if (ec) {
                // A failed statement or COMMIT may have rolled back already.
                if (!sqlite3_get_autocommit(db)) {
                    detail::sqlite_stmt_scope scope(rollback_.get());
                    sqlite3_step(rollback_.get());
                }
                return ec;
            }
            count += inserted;
            return {};
        }

        // Group commit: the writer at the front of the queue commits every writer queued behind
        // it in one transaction; the others wait for it.
        std::error_code group_insert(const sync_action& a)
        {
            writer w{&a, {}};
            std::unique_lock q(queue_mutex);
            writers.push_back(&w);
            queue_cv.wait(q, [&] { return w.done || writers.front() == &w; });
            if (w.done) return w.ec;
            // Only leaders pop, so the queue's prefix is this group.
            std::vector<writer*> group(writers.begin(), writers.end());
            q.unlock();
            std::error_code ec;
            {
                std::lock_guard lock(db_mutex);
                ec = write_batch(group.size(),
                                 [&](std::size_t i) -> const sync_action& { return *group[i]->action; });
            }
            q.lock();
            for (auto* x : group) {
                writers.pop_front();
                x->ec = ec;
                x->done = true;
            }
            queue_cv.notify_all();
            return ec;
        }

        struct bad_row {
            std::int64_t position;
            std::string id, why;
        };

        result<std::vector<sync_action>> load_all()
        {
            std::vector<sync_action> out;
            std::vector<bad_row> bad;
            {
                auto* s = select_.get();
                detail::sqlite_stmt_scope scope(s);
                out.reserve(count.load());
                for (;;) {
                    int rc = sqlite3_step(s);
                    if (rc == SQLITE_DONE) break;
                    if (rc != SQLITE_ROW) return fail(rc, "load_all");
                    std::string why;
                    if (auto a = decode_row(s, why))
                        out.push_back(std::move(*a));
                    else
                        bad.push_back({sqlite3_column_int64(s, 14), row_id_text(s), std::move(why)});
                }
            }
            for (auto& b : bad) set_aside(b);
            return out;
        }

        static std::string row_id_text(sqlite3_stmt* s)
        {
            const auto* p = sqlite3_column_text(s, 0);  // whatever the type, as text
            return p ? std::string(reinterpret_cast<const char*>(p), std::size_t(sqlite3_column_bytes(s, 0)))
                     : std::string("NULL");
        }

        // Moves the row at `b.position` into the quarantine table in one durable transaction
        // and reports it; if that fails, the row stays, skipped, and the report says so.
        void set_aside(const bad_row& b)
        {
            const std::string what = "sqlite_storage \"" + path.string() + "\": row " +
                                     std::to_string(b.position) + " (id \"" + b.id +
                                     "\") cannot be read back (" + b.why + ")";
            std::error_code ec = set_sync(full_level);
            if (!ec) {
                detail::sqlite_stmt_scope scope(begin_.get());
                ec = step(begin_.get(), "set aside a row");
            }
            if (!ec) ec = prepare_quarantine();
            if (!ec) {
                const auto now = detail::to_epoch_ms(std::chrono::system_clock::now());
                detail::sqlite_stmt_scope scope(quarantine_.get());
                sqlite3_bind_int64(quarantine_.get(), 1, b.position);
                sqlite3_bind_text64(quarantine_.get(), 2, b.why.data(), b.why.size(), SQLITE_STATIC, SQLITE_UTF8);
                sqlite3_bind_int64(quarantine_.get(), 3, now);
                ec = step(quarantine_.get(), "set aside a row");
            }
            bool moved = false;
            if (!ec) {
                detail::sqlite_stmt_scope scope(unquarantined_.get());
                sqlite3_bind_int64(unquarantined_.get(), 1, b.position);
                ec = step(unquarantined_.get(), "set aside a row");
                moved = !ec && sqlite3_changes(db) > 0;
            }
            if (!ec) {
                detail::sqlite_stmt_scope scope(commit_.get());
                ec = step(commit_.get(), "set aside a row");
            }
            if (ec) {
                moved = false;
                quarantine_.reset();  // its table may have been rolled back with the rest
                if (!sqlite3_get_autocommit(db)) {
                    detail::sqlite_stmt_scope scope(rollback_.get());
                    sqlite3_step(rollback_.get());
                }
            }
            if (moved) count.fetch_sub(1);
            diagnostics.push_back(
                {make_error_code(errc::storage_corrupt),
                 what + (moved ? "; moved as it was to the table syncvault_quarantine"
                               : "; skipped, and left in place: it could not be moved to the table "
                                 "syncvault_quarantine (" + last_error + ")")});
        }

        result<sync_action> decode_row(sqlite3_stmt* s, std::string& why)
        {
            auto corrupt = [&](std::string_view reason) -> std::error_code {
                why = reason;
                return make_error_code(errc::storage_corrupt);
            };
            std::string row_id;
            auto bytes = [&](int i, int type, std::string& out) {
                if (sqlite3_column_type(s, i) != type) return false;
                const void* p = type == SQLITE_BLOB ? sqlite3_column_blob(s, i)
                                                    : static_cast<const void*>(sqlite3_column_text(s, i));
                const auto n = std::size_t(sqlite3_column_bytes(s, i));
                out.assign(p ? static_cast<const char*>(p) : "", p ? n : 0);
                return true;
            };
            auto integer = [&](int i, std::int64_t& out) {
                if (sqlite3_column_type(s, i) != SQLITE_INTEGER) return false;
                out = sqlite3_column_int64(s, i);
                return true;
            };
            sync_action a;
            std::string method, headers, state;
            std::int64_t attempts = 0, sequence = 0, created = 0, next = 0, status = 0, error = 0;
            if (!bytes(0, SQLITE_TEXT, row_id)) return corrupt("id is not text");
            a.id = row_id;
            // An empty BLOB may read back as a zero-length blob; either way no bytes.
            const bool body_ok = sqlite3_column_type(s, 3) == SQLITE_BLOB
                                     ? bytes(3, SQLITE_BLOB, a.body)
                                     : bytes(3, SQLITE_TEXT, a.body);
            if (!bytes(1, SQLITE_TEXT, method) || !bytes(2, SQLITE_TEXT, a.path) || !body_ok ||
                !bytes(4, SQLITE_TEXT, headers) || !bytes(5, SQLITE_TEXT, a.idempotency_key) ||
                !integer(6, attempts) || !integer(7, sequence) || !bytes(8, SQLITE_TEXT, state) ||
                !integer(9, created) || !integer(10, next) || !integer(11, status) ||
                !integer(12, error))
                return corrupt("a column has the wrong type");
            auto m = method_from_string(method);
            if (!m) return corrupt("unknown method \"" + method + "\"");
            a.method = *m;
            if (!detail::headers_from_json(headers, a.headers)) return corrupt("headers are not [[name, value], ...]");
            if (state != "pending" && state != "dead") return corrupt("unknown state \"" + state + "\"");
            auto is_int = [](std::int64_t v) { return v >= INT32_MIN && v <= INT32_MAX; };
            if (attempts < 0 || !is_int(attempts) || !is_int(status) || !is_int(error))
                return corrupt("attempts, last_status or last_error is out of range");
            a.state = state == "dead" ? action_state::dead : action_state::pending;
            a.attempts = int(attempts);
            a.sequence = static_cast<std::uint64_t>(sequence);
            a.created_at = detail::from_epoch_ms(created);
            a.next_attempt_at = detail::from_epoch_ms(next);
            a.last_status = int(status);
            a.last_error = int(error);
            if (sqlite3_column_type(s, 13) != SQLITE_NULL) {
                std::string extra;
                if (!bytes(13, SQLITE_TEXT, extra)) return corrupt("extra is not text");
                boost::json::parse_options opts;
                opts.allow_invalid_utf8 = true;  // lanes and keys are kept as given
                boost::system::error_code jec;
                auto v = boost::json::parse(extra, jec, {}, opts);
                if (jec || !v.is_object() || !detail::decode_action_extras(v.get_object(), a))
                    return corrupt("extra is not a JSON object of 0.2 fields");
            }
            return a;
        }
    };

    std::unique_ptr<impl> impl_;
};

static_assert(syncvault::storage<sqlite_storage>);
static_assert(syncvault::batch_storage<sqlite_storage>);
static_assert(syncvault::flushable_storage<sqlite_storage>);
static_assert(syncvault::thread_safe_storage<sqlite_storage>);
static_assert(syncvault::diagnosing_storage<sqlite_storage>);
static_assert(syncvault::body_reading_storage<sqlite_storage>);
static_assert(syncvault::progress_storage<sqlite_storage>);

} // namespace syncvault

#endif
