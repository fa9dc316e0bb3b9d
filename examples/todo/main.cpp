// A terminal Todo app that keeps working when its server does not.
//
// Every change (add, done, rm) is one request handed to a syncvault vault: sent at once when the
// server answers, otherwise kept in the journal and replayed in order, with backoff, when it is
// back. The status line comes from a `status_watcher`, each item's mark (queued, syncing,
// retrying, synced, failed) from an `event_tracker` that follows the item's latest change by its
// idempotency key.
//
// The server assigns each item's id when it is created. An item added offline has none yet, so
// its later changes name it with `syncvault::response_ref(<the POST's action id>, "/id")`: the
// vault sends them after the POST succeeds, with the id from its response (SPEC 9.4). Renames
// carry a coalesce key: two renames that wait together become one request.
//
// The server wants a bearer token that expires. `before_send` attaches the current one to every
// attempt (the Authorization header is never written to the journal); on a 401 `refresh_auth`
// gets a new one with the refresh token and the action is retried at once. When the refresh is
// refused too, the vault pauses (`is_paused()`) with the queue intact until the user logs in.
//
//   todo --demo    a scripted tour: server down, changes queue, app restarts, server back, drain
//   todo           interactive: add <text> | rename <n> <text> | done <n> | rm <n> | list |
//                  offline | online | expire (server clock +1 h) | revoke (end sessions) |
//                  login | quit

#include "todo_server.hpp"

#include <syncvault.hpp>
#include <syncvault/vault.hpp>  // the defaults: libcurl, file journal, TCP probe, jittered backoff

#include <boost/hana/define_struct.hpp>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace {

using namespace std::chrono_literals;
using syncvault::sync_event;
using syncvault::sync_event_status;
using syncvault::sync_status;

// Request bodies: Hana-reflected structs become JSON objects.
struct new_todo {  // the server assigns the id
    BOOST_HANA_DEFINE_STRUCT(new_todo, (std::string, text));
};
struct todo_patch {
    BOOST_HANA_DEFINE_STRUCT(todo_patch, (bool, done));
};
struct todo_rename {
    BOOST_HANA_DEFINE_STRUCT(todo_rename, (std::string, text));
};

/** Output shared by the main thread and the sync worker's callbacks. */
class console {
public:
    explicit console(bool interactive) : interactive_(interactive) {}

    void line(const std::string& text)
    {
        std::lock_guard lock(mutex_);
        std::cout << text << '\n' << std::flush;
    }
    /** A line from a callback: in interactive mode it goes above the prompt. */
    void live(const std::string& text)
    {
        std::lock_guard lock(mutex_);
        if (interactive_) std::cout << "\r\033[K" << text << "\n> " << std::flush;
        else std::cout << text << '\n' << std::flush;
    }
    void prompt()
    {
        std::lock_guard lock(mutex_);
        std::cout << "> " << std::flush;
    }

private:
    bool interactive_;
    std::mutex mutex_;
};

// Set while a command runs: a request sent at once finishes on the calling thread (SPEC 3.2),
// and the command reports its outcome itself, so the live lines stay for background work.
thread_local bool in_command = false;

std::string reason(const sync_event& e)
{
    if (e.response) return "HTTP " + std::to_string(e.response->status);
    return e.error ? e.error.message() : "no answer";
}

/** The app's credentials. A login gives an access token (sent by `before_send`) and a refresh
 *  token (used by `refresh_auth`); both requests go straight to the server, not through the vault. */
class session {
public:
    explicit session(const syncvault::vault_config& cfg) : base_url_(cfg.base_url), http_(cfg) {}

    /** POST /login; the HTTP status (0: no answer). */
    int login(const std::string& password)
    {
        return exchange("/login", boost::json::serialize(boost::json::object{{"user", "demo"}, {"password", password}}));
    }
    /** POST /token with the refresh token; the HTTP status (0: no answer). */
    int refresh()
    {
        std::string token;
        {
            std::lock_guard lock(mutex_);
            token = refresh_;
        }
        return exchange("/token", boost::json::serialize(boost::json::object{{"refresh_token", token}}));
    }
    /** For `before_send`: the current access token, on whichever thread attempts. */
    void authorize(syncvault::http_request& r)
    {
        std::erase_if(r.headers, [](const syncvault::header& h) { return h.name == "Authorization"; });
        std::lock_guard lock(mutex_);
        if (!access_.empty()) r.headers.push_back({"Authorization", "Bearer " + access_});
    }

private:
    int exchange(const std::string& path, std::string body)
    {
        std::lock_guard transfer(http_mutex_);
        auto r = http_.send({syncvault::http_method::post, base_url_ + path,
                             {{"Content-Type", "application/json"}}, std::move(body)});
        if (!r) return 0;
        if (r->status == 200) {
            boost::system::error_code ec;
            const auto v = boost::json::parse(r->body, ec);
            const auto* o = ec ? nullptr : v.if_object();
            const auto* access = o ? o->if_contains("access_token") : nullptr;
            const auto* refresh = o ? o->if_contains("refresh_token") : nullptr;
            if (!access || !access->is_string() || !refresh || !refresh->is_string()) return 0;
            std::lock_guard lock(mutex_);
            access_ = access->get_string();
            refresh_ = refresh->get_string();
        }
        return r->status;
    }

    std::string base_url_;
    std::mutex http_mutex_;  // one transfer at a time on http_
    syncvault::curl_transport http_;
    std::mutex mutex_;
    std::string access_, refresh_;
};

/** The "id" member of a JSON object (the server's answer to POST /todos). */
std::optional<std::int64_t> id_in(const std::string& body)
{
    boost::system::error_code ec;
    const auto v = boost::json::parse(body, ec);
    const auto* o = ec ? nullptr : v.if_object();
    const auto* id = o ? o->if_contains("id") : nullptr;
    return id && id->is_int64() ? std::optional(id->get_int64()) : std::nullopt;
}

struct item {
    std::int64_t id = 0;  // the app's number for the item (`done <n>`); the server assigns its own
    std::string text;
    bool done = false, deleting = false;
    int revision = 0;    // one idempotency key per change: todo-<id>-<revision>
    std::string change;  // the latest change, for the live lines ("add", "done", "rm")
    std::string key;     // the idempotency key of the latest change: what `tracker` follows
    std::string create_action;  // the POST's action id, while its answer (the id) may be pending
    struct queued_change {
        std::string action_id, key, change;
    };
    std::vector<queued_change> queued;  // changes that were queued (a coalesced one names one)
    syncvault::event_tracker tracker;
    std::optional<sync_event_status> before_restart;  // a new vault's tracker starts empty
};

std::string_view mark(const item& it)
{
    auto s = it.tracker.last_status();
    if (!s) s = it.before_restart;
    if (!s) return "queued";
    switch (*s) {
    case sync_event_status::queued: return "queued";
    case sync_event_status::started: return "syncing";
    case sync_event_status::failed: return "retrying";
    case sync_event_status::success: return "synced";
    case sync_event_status::dead_letter: return "failed";
    case sync_event_status::cancelled: return "cancelled";
    }
    return "?";
}

class todo_app {
public:
    todo_app(syncvault::vault_config cfg, console& out) : cfg_(std::move(cfg)), out_(out), session_(cfg_)
    {
        cfg_.before_send = [this](syncvault::http_request& r) { session_.authorize(r); };
        cfg_.refresh_auth = [this](const syncvault::http_response& r) { return refresh_auth(r); };
        login();
        open();
    }
    ~todo_app() { close(); }

    /** Opens the vault over the journal (again, after `close`) and starts syncing. */
    void open()
    {
        vault_.emplace(cfg_, syncvault::curl_transport(cfg_), syncvault::file_journal(cfg_),
                       syncvault::polling_connectivity(cfg_), syncvault::jittered_backoff({.base = 250ms, .cap = 2s}));
        // Each POST /todos that succeeds tells the id the server assigned (on the worker's thread).
        created_ = vault_->on_event([this](const sync_event& e) {
            if (!e.is_success() || !e.response) return;
            const auto sid = id_in(e.response->body);
            std::lock_guard lock(ids_mutex_);
            if (auto c = creates_.find(e.idempotency_key); c != creates_.end() && sid) server_ids_[c->second] = *sid;
        });
        status_ = syncvault::status_watcher{*vault_, [this](sync_status s) { on_status(s); }};
        for (auto& [id, it] : items_) track(it);
        sync_.emplace(*vault_);
    }

    /** Closes everything, as an app quitting (or crashing) would; the journal keeps the queue. */
    void close()
    {
        sync_.reset();  // the worker goes first: it holds a reference to the vault
        for (auto& [id, it] : items_) {
            if (auto s = it.tracker.last_status()) it.before_restart = s;
            it.tracker.reset();
        }
        status_.reset();
        created_ = {};
        vault_.reset();
    }

    /** POST /todos; the item's number in this app (the server's id comes with its answer). */
    std::int64_t add(const std::string& text)
    {
        auto& it = items_[next_id_];
        it.id = next_id_++;
        it.text = text;
        {
            std::lock_guard lock(ids_mutex_);
            creates_["todo-" + std::to_string(it.id) + "-1"] = it.id;  // send's key for revision 1
        }
        const auto r = send("add", "add \"" + shorten(text, 40) + "\"", it,
                            [&](const auto& opts) { return vault_->post("/todos", new_todo{text}, opts); });
        if (r.is_queued()) it.create_action = r.action_id();
        if (r.is_sent() && r.response()->status < 300) {
            std::lock_guard lock(ids_mutex_);
            if (auto sid = id_in(r.response()->body)) server_ids_[it.id] = *sid;
        }
        return it.id;
    }

    /** PATCH {"text"}: renames that wait together coalesce into one request (SPEC 9.4). */
    void rename(std::int64_t id, const std::string& text)
    {
        auto* it = find(id);
        const auto path = it ? path_of(*it) : std::nullopt;
        if (!path) return;
        it->text = text;
        send("rename", "rename " + std::to_string(id) + " \"" + shorten(text, 40) + "\"", *it, [&](auto opts) {
            opts.coalesce_key = "todo-" + std::to_string(id) + "-text";
            return vault_->patch(*path, todo_rename{text}, opts);
        });
    }

    void toggle(std::int64_t id)
    {
        auto* it = find(id);
        const auto path = it ? path_of(*it) : std::nullopt;
        if (!path) return;
        it->done = !it->done;
        send(it->done ? "done" : "undone", std::string(it->done ? "done " : "undone ") + std::to_string(id), *it,
             [&](const auto& opts) { return vault_->patch(*path, todo_patch{it->done}, opts); });
    }

    void remove(std::int64_t id)
    {
        auto* it = find(id);
        const auto path = it ? path_of(*it) : std::nullopt;
        if (!path) return;
        it->deleting = true;
        send("rm", "rm " + std::to_string(id), *it, [&](const auto& opts) { return vault_->delete_(*path, opts); });
    }

    /** The id the server assigned to item `id`, once its POST has been answered. */
    std::optional<std::int64_t> server_id(std::int64_t id) const
    {
        std::lock_guard lock(ids_mutex_);
        const auto it = server_ids_.find(id);
        return it == server_ids_.end() ? std::nullopt : std::optional(it->second);
    }

    /** The waiting requests, as the journal holds them (placeholders shown by what they name). */
    void show_queue()
    {
        for (const auto& a : vault_->pending_actions()) {
            auto text = std::string(syncvault::to_string(a.method)) + " " + a.path;
            if (!a.body.empty()) text += " " + a.body;
            for (const auto& [n, it] : items_) {
                if (it.create_action.empty()) continue;
                const auto ref = syncvault::response_ref(it.create_action, "/id");
                for (auto at = text.find(ref); at != std::string::npos; at = text.find(ref))
                    text.replace(at, ref.size(), "{id the server gives #" + std::to_string(n) + "}");
            }
            out_.line("  waiting: " + text);
        }
    }

    /** Logs in (again) with the password; a vault paused by a refused refresh resumes. */
    void login()
    {
        const int status = session_.login("demo");
        std::string outcome = status ? "HTTP " + std::to_string(status) : "no answer";
        const bool resume = status == 200 && vault_ && vault_->is_paused();
        if (resume) outcome += ", new tokens; resuming the vault";
        out_.line("  login -> " + outcome);  // before the worker, woken by resume(), prints
        if (resume) vault_->resume();
    }

    void list()
    {
        std::erase_if(items_, [](const auto& p) { return p.second.deleting && mark(p.second) == "synced"; });
        for (const auto& [id, it] : items_) {
            std::string m(mark(it));
            if (vault_->is_paused() && (m == "queued" || m == "retrying")) m = "paused";
            char row[160];
            std::snprintf(row, sizeof row, "  %s %2lld  %-34.34s %s%s", it.done ? "[x]" : "[ ]",
                          static_cast<long long>(id), it.text.c_str(), m.c_str(),
                          it.deleting ? " (deleting)" : "");
            out_.line(row);
        }
        if (items_.empty()) out_.line("  (no items)");
        out_.line("  " + status_line());
    }

    std::string status_line()
    {
        const auto pending = vault_->pending_count();
        const auto dead = vault_->dead_letters().size();
        std::string s = "status: " + std::string(syncvault::to_string(status_.status()));
        if (vault_->is_paused()) s += " (paused)";
        if (status_.status() == sync_status::synced && pending == 0) s += ", all caught up";
        else s += ", " + std::to_string(pending) + " waiting";
        if (dead) s += " (" + std::to_string(dead) + " failed for good)";
        return s;
    }

    /** Waits (bounded) until `done()` holds; it is checked after each status change or event,
     *  and every 50 ms for what comes with neither (a pause after a status that stays `error`),
     *  with the app's mutex held. */
    template <class Predicate>
    bool wait_until(Predicate done, std::chrono::seconds timeout)
    {
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        std::unique_lock lock(mutex_);
        while (!done()) {
            if (std::chrono::steady_clock::now() >= deadline) return false;
            changed_.wait_for(lock, 50ms);
        }
        return true;
    }

    // For wait_until's predicates (mutex_ held): the status last delivered to, and printed by,
    // the status callback, so a wait ends only after the live line is out.
    bool settled(sync_status s) const { return last_shown_ == s; }
    bool caught_up() const { return settled(sync_status::synced) && vault_->pending_count() == 0; }
    bool paused() const { return vault_->is_paused(); }

    /** Failed attempts of item `id`'s latest change, as its tracker last heard. */
    int failed_attempts(std::int64_t id) const
    {
        auto it = items_.find(id);
        auto last = it == items_.end() ? std::nullopt : it->second.tracker.last();
        return last && last->status == sync_event_status::failed ? last->attempt : 0;
    }

    /** The local view of what the server should hold: items not deleted, not failed, by the
     *  ids the server assigned (an item whose id never came back cannot match). */
    boost::json::array expected() const
    {
        std::map<std::int64_t, boost::json::object> by_server_id;
        for (const auto& [id, it] : items_) {
            if (it.deleting || mark(it) == "failed") continue;
            const auto sid = server_id(id);
            by_server_id[sid ? *sid : -id] = {{"id", sid ? boost::json::value(*sid) : boost::json::value()},
                                              {"text", it.text},
                                              {"done", it.done}};
        }
        boost::json::array out;
        for (auto& [sid, o] : by_server_id) out.push_back(std::move(o));
        return out;
    }

    std::size_t dead_letters() const { return vault_->dead_letters().size(); }
    std::vector<syncvault::sync_action> dead_letter_list() const { return vault_->dead_letters(); }
    std::size_t pending() const { return vault_->pending_count(); }

private:
    static std::string shorten(const std::string& text, std::size_t n)
    {
        return text.size() > n ? text.substr(0, n - 3) + "..." : text;
    }

    /** Where item `it` lives on the server: by its id once known, else by the placeholder for
     *  the id its pending POST will be given. */
    std::optional<std::string> path_of(const item& it) const
    {
        if (const auto sid = server_id(it.id)) return "/todos/" + std::to_string(*sid);
        if (!it.create_action.empty() && mark(it) != "failed")
            return "/todos/" + syncvault::response_ref(it.create_action, "/id");
        out_.line("  item " + std::to_string(it.id) + " was never created on the server");
        return std::nullopt;
    }

    template <class Request>
    syncvault::send_result send(const char* change, const std::string& what, item& it, Request request)
    {
        it.change = change;
        // Track by key before sending: an immediate send fires all its events inside the call.
        it.key = "todo-" + std::to_string(it.id) + "-" + std::to_string(++it.revision);
        it.before_restart.reset();
        track(it);
        in_command = true;
        auto r = request(syncvault::request_options{.idempotency_key = it.key});
        in_command = false;
        std::string outcome;
        const std::string action(r.action_id());
        const auto earlier = std::find_if(it.queued.begin(), it.queued.end(),
                                          [&](const auto& c) { return c.action_id == action; });
        if (r.is_queued() && earlier != it.queued.end()) {
            // Coalesced (SPEC 9.4): no new action; the waiting one now carries this change too,
            // under its own idempotency key, which the tracker follows from now on.
            it.key = earlier->key;
            track(it);
            outcome = "is_queued() naming action " + action.substr(0, 8) + " (the waiting " + earlier->change +
                      "): merged, still one request";
        } else if (r.is_sent()) {
            outcome = "sent: HTTP " + std::to_string(r.response()->status);
            if (mark(it) == "failed") outcome += ", failed for good";
        } else if (r.is_queued()) {
            const auto last = it.tracker.last();
            const bool tried = last && last->status == sync_event_status::failed;
            outcome = tried ? "queued (" + reason(*last) + (vault_->is_paused() ? "; paused)" : "; will retry)")
                            : "queued";
        } else {
            outcome = "error: " + r.error().message();
        }
        if (r.is_queued() && earlier == it.queued.end()) it.queued.push_back({action, it.key, change});
        out_.line("  " + what + " -> " + outcome);
        return r;
    }

    void track(item& it)
    {
        const std::string label = "#" + std::to_string(it.id) + " " + it.change + " \"" + it.text.substr(0, 24) + "\"";
        it.tracker = syncvault::event_tracker::for_key(*vault_, it.key, [this, label](const sync_event& e) {
            if (in_command || e.status == sync_event_status::queued || e.status == sync_event_status::started) return;
            const char* word = e.status == sync_event_status::success     ? "synced"
                               : e.status == sync_event_status::failed    ? "retrying"
                               : e.status == sync_event_status::cancelled ? "cancelled"
                                                                          : "failed";
            char row[160];
            std::snprintf(row, sizeof row, "    %-36s %-9s(attempt %d%s)", label.c_str(), word, e.attempt,
                          e.is_success() ? "" : (": " + reason(e)).c_str());
            out_.live(row);
            notify();
        });
    }

    // SPEC 9.3: called once per 401, outside the vault's locks, on the thread that attempted.
    bool refresh_auth(const syncvault::http_response& unauthorized)
    {
        const int status = session_.refresh();
        const std::string got = "HTTP " + std::to_string(unauthorized.status) + ": token refresh -> " +
                                (status ? "HTTP " + std::to_string(status) : "no answer");
        if (status == 200) out_.live("    " + got + ", new access token; the action is retried at once");
        else out_.live("    " + got + ": session expired — log in again (vault paused)");
        return status == 200;
    }

    void notify()
    {
        { std::lock_guard lock(mutex_); }  // a waiter is either before its check or asleep
        changed_.notify_all();
    }

    void on_status(sync_status s)
    {
        // The live status line: where sync settles (error, or caught up), not every flicker
        // (a retry goes error -> syncing -> error: the same line is not printed again).
        if (!in_command && s != last_shown_ && (s == sync_status::synced || s == sync_status::error)) {
            auto line = status_line();
            bool repeat;
            {
                std::lock_guard lock(mutex_);
                repeat = s == sync_status::error && line == last_line_;
                last_line_ = line;
            }
            if (!repeat) out_.live("  " + line);
        }
        {
            std::lock_guard lock(mutex_);
            last_shown_ = s;
        }
        changed_.notify_all();
    }

    item* find(std::int64_t id)
    {
        auto it = items_.find(id);
        if (it == items_.end() || it->second.deleting) {
            out_.line("  no item " + std::to_string(id));
            return nullptr;
        }
        return &it->second;
    }

    syncvault::vault_config cfg_;
    console& out_;
    mutable std::mutex ids_mutex_;  // the two maps below: the worker's callbacks write them
    std::map<std::string, std::int64_t> creates_;      // a POST's idempotency key -> item
    std::map<std::int64_t, std::int64_t> server_ids_;  // item -> the id the server assigned
    session session_;
    std::mutex mutex_;
    std::condition_variable changed_;
    sync_status last_shown_ = sync_status::synced;
    std::string last_line_;  // the last live status line
    std::map<std::int64_t, item> items_;
    std::int64_t next_id_ = 1;
    // The vault first, its worker last: members are destroyed in reverse (and `close` is explicit).
    std::optional<syncvault::vault> vault_;
    syncvault::status_watcher status_;
    syncvault::subscription created_;
    std::optional<syncvault::background_sync<syncvault::vault>> sync_;
};

syncvault::vault_config make_config(const std::string& base_url, const std::filesystem::path& journal)
{
    syncvault::vault_config cfg;
    cfg.base_url = base_url;
    cfg.storage_path = journal;
    cfg.max_retries = 8;
    cfg.connect_timeout = 1s;
    cfg.receive_timeout = 2s;
    cfg.probe_interval = 200ms;  // a loopback server: probe often, so the demo moves along
    cfg.probe_max_interval = 500ms;
    cfg.probe_timeout = 500ms;
    return cfg;
}

int run_demo(todo_example::todo_server& server, const std::filesystem::path& journal)
{
    const auto started = std::chrono::steady_clock::now();
    console out{false};
    out.line("syncvault todo demo");
    out.line("  server   " + server.base_url() + " (a thread of this process)");
    out.line("  journal  " + journal.string());
    out.line("  item marks come from event_trackers, the status line from a status_watcher;");
    out.line("  indented lines are printed live by them as the background worker syncs.");
    todo_app app{make_config(server.base_url(), journal), out};
    auto step = [&](const std::string& title) { out.line("\n== " + title); };

    step("1. Online: each change is sent at once");
    app.add("Buy milk");
    app.add("Write the quarterly report");
    app.toggle(1);
    app.list();

    step("2. The server goes down: changes wait in the journal");
    server.stop();
    out.line("  (server stopped: connections are refused)");
    app.add("Call the plumber");
    app.add("Book flights to Lisbon");
    app.toggle(2);
    app.remove(1);
    app.list();

    step("3. The app restarts while offline: nothing is lost");
    app.close();
    out.line("  (vault closed)");
    app.open();
    out.line("  (vault reopened: " + std::to_string(app.pending()) + " changes loaded from the journal; its worker");
    out.line("   retries the oldest at once, and finds the server still down)");
    if (!app.wait_until([&] { return app.failed_attempts(3) >= 2 && app.settled(sync_status::error); }, 10s)) {
        out.line("  timed out waiting for the retry");
        return 1;
    }
    app.list();

    step("4. The server comes back an hour later, busy at first (503, Retry-After: 1)");
    server.advance_clock(1h);
    server.busy(1);
    server.start();
    out.line("  (server started; its clock is 1 h on: the 15-minute access token has expired)");
    if (!app.wait_until([&] { return app.caught_up(); }, 20s)) {
        out.line("  timed out waiting for the queue to drain");
        return 1;
    }
    app.list();

    step("5. A change the server refuses (422) fails for good: a dead letter the app can inspect");
    app.add("Paste of the meeting notes: agenda, budget, hiring plan, offsite, roadmap, and more");
    app.add("Water the plants");
    if (!app.wait_until([&] { return app.caught_up(); }, 20s)) {
        out.line("  timed out waiting for the queue to drain");
        return 1;
    }
    for (const auto& d : app.dead_letter_list())
        out.line("  dead letter: " + std::string(syncvault::to_string(d.method)) + " " + d.path + ", HTTP " +
                 std::to_string(d.last_status) + ", key " + d.idempotency_key);
    app.list();

    step("6. Signed out elsewhere: the refresh is refused, the vault pauses until the user logs in");
    server.revoke_sessions();
    out.line("  (server: every session ended, as after a password change on another device)");
    app.toggle(4);
    if (!app.wait_until([&] { return app.paused() && app.settled(sync_status::error); }, 10s)) {
        out.line("  timed out waiting for the pause");
        return 1;
    }
    app.list();
    app.login();
    // Each step waits (bounded) for the last change to settle, not only to be sent.
    if (!app.wait_until([&] { return app.caught_up(); }, 20s)) {
        out.line("  timed out waiting for the queue to drain");
        return 1;
    }

    step("7. Offline again: a new item, renamed twice and completed before the server gave it an id");
    server.stop();
    out.line("  (server stopped; the server assigns ids, so the new item's changes name the id its");
    out.line("   POST will be given: response_ref(<the POST's action>, \"/id\"))");
    const auto errand = app.add("Pick up the suit");
    app.rename(errand, "Pick up the suit from the cleaners");
    app.rename(errand, "Pick up the suit and two shirts from the cleaners");  // coalesces into the first
    app.toggle(errand);  // chained on the server's id
    app.show_queue();
    const auto before = server.applied().size();
    server.start();
    out.line("  (server started)");
    if (!app.wait_until([&] { return app.caught_up(); }, 20s)) {
        out.line("  timed out waiting for the queue to drain");
        return 1;
    }
    const auto applied = server.applied();
    for (auto i = before; i < applied.size(); ++i) out.line("  server applied: " + applied[i]);
    const auto errand_id = app.server_id(errand);
    const auto held = errand_id ? server.item(*errand_id) : boost::json::value();
    out.line("  server: item " + std::to_string(errand) + " is " + boost::json::serialize(held));
    const auto* errand_item = held.if_object();
    const bool chained = applied.size() == before + 3 && errand_item && errand_item->at("done") == true &&
                         errand_item->at("text") == "Pick up the suit and two shirts from the cleaners";
    if (!chained) out.line("  UNEXPECTED: want one POST, one PATCH with the last title, one PATCH done");
    app.list();

    const bool same = server.items() == app.expected();
    out.line(std::string("\nserver holds ") + std::to_string(server.items().size()) + " items; " +
             (same ? "they match the app's list" : "MISMATCH with the app's list"));
    const auto secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    char done[64];
    std::snprintf(done, sizeof done, "demo finished in %.1f s", secs);
    out.line(done);
    return same && chained && app.dead_letters() == 1 && !app.paused() ? 0 : 1;
}

int run_interactive(todo_example::todo_server& server, const std::filesystem::path& journal)
{
    console out{true};
    out.line("syncvault todo: server " + server.base_url() + ", journal " + journal.string());
    const std::string commands =
        "commands: add <text> | rename <n> <text> | done <n> | rm <n> | list | offline | online | expire | revoke | "
        "login | quit";
    out.line(commands);
    todo_app app{make_config(server.base_url(), journal), out};
    std::string cmd;
    for (out.prompt(); std::getline(std::cin, cmd); out.prompt()) {
        const auto space = cmd.find(' ');
        const std::string verb = cmd.substr(0, space), arg = space == std::string::npos ? "" : cmd.substr(space + 1);
        const auto number = [&] { return std::strtoll(arg.c_str(), nullptr, 10); };
        if (verb == "add" && !arg.empty()) app.add(arg);
        else if (verb == "rename" && arg.find(' ') != std::string::npos)
            app.rename(number(), arg.substr(arg.find(' ') + 1));
        else if (verb == "done") app.toggle(number());
        else if (verb == "rm") app.remove(number());
        else if (verb == "list" || verb.empty()) app.list();
        else if (verb == "offline") { server.stop(); out.line("  server stopped"); }
        else if (verb == "online") { server.start(); out.line("  server started"); }
        else if (verb == "expire") { server.advance_clock(1h); out.line("  server clock +1 h: access tokens expired"); }
        else if (verb == "revoke") { server.revoke_sessions(); out.line("  server: every session ended"); }
        else if (verb == "login") app.login();
        else if (verb == "quit" || verb == "q") break;
        else out.line("  " + commands);
    }
    return 0;
}

} // namespace

int main(int argc, char** argv)
{
    const bool demo = argc > 1 && std::string(argv[1]) == "--demo";
    // A fresh journal per run: this example's server forgets everything when it exits.
    char dir[] = "/tmp/syncvault-todo-XXXXXX";
    if (!mkdtemp(dir)) {
        std::perror("mkdtemp");
        return 1;
    }
    int rc = 1;
    try {
        todo_example::todo_server server;
        server.require_login(true);
        rc = demo ? run_demo(server, dir) : run_interactive(server, dir);
    } catch (const std::exception& e) {
        std::cerr << "todo: " << e.what() << '\n';
    }
    std::filesystem::remove_all(dir);
    return rc;
}
