#ifndef SYNCVAULT_TESTING_SIMULATION_STORAGE_FACTORIES_HPP
#define SYNCVAULT_TESTING_SIMULATION_STORAGE_FACTORIES_HPP

/**
 * @file
 * How the simulator opens, crashes and reopens a storage (`simulated_storage`), and the
 * power model of each factory: `memory_storage_factory` (a crash keeps memory) and
 * `file_journal_factory` (a power cut keeps the synced prefix and maybe a torn tail).
 */

#include <syncvault/action.hpp>
#include <syncvault/concepts/storage.hpp>
#include <syncvault/storage/memory_storage.hpp>
#include <syncvault/testing/simulation/random.hpp>

#if __has_include(<syncvault/storage/file_journal.hpp>)
#include <syncvault/storage/file_journal.hpp>
#include <fstream>
#include <iterator>
#define SYNCVAULT_SIMULATION_HAS_FILE_JOURNAL 1
#endif

#include <algorithm>
#include <concepts>
#include <cstdint>
#include <filesystem>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

namespace syncvault::testing {

/**
 * How the simulator opens, crashes and reopens a storage model. A factory `f` of type `F`:
 *
 * | expression | meaning |
 * |---|---|
 * | `F::storage_type` | the storage model (`syncvault::storage`) |
 * | `F::image_type` | what a crash leaves behind |
 * | `F::models_power_loss` | `constexpr bool`: `restore` can drop unsynced writes |
 * | `F::durable_inserts` | `constexpr bool`: an inserting `save` survives a power cut once it returned |
 * | `f.reset()` | start over with an empty store (called before each run) |
 * | `f.open()` | a new instance over the same place (the previous one is destroyed first) |
 * | `f.capture(s)` | the image a crash at this instant would leave, from the live instance `s` |
 * | `f.restore(img, power_loss, rng)` | after the instance is destroyed, put the place back as `img` says; with `power_loss`, unsynced writes may be dropped. Returns true when something was dropped. |
 *
 * A crash-consistent model restores exactly what was written before the crash; a model that
 * loses power restores a prefix of the writes at least as long as the last synced insert.
 */
template <class F>
concept simulated_storage = syncvault::storage<typename F::storage_type> && std::copyable<F> &&
    requires(F& f, typename F::storage_type& s, const typename F::image_type& img, sim_random& rng)
{
    {
        F::models_power_loss
        } -> std::convertible_to<bool>;
    {
        F::durable_inserts
        } -> std::convertible_to<bool>;
    f.reset();
    {
        f.open()
        } -> std::same_as<typename F::storage_type>;
    {
        f.capture(s)
        } -> std::same_as<typename F::image_type>;
    {
        f.restore(img, true, rng)
        } -> std::same_as<bool>;
};

/** `memory_storage` in the simulator: a crash keeps the memory (copies share one store). */
class memory_storage_factory {
public:
    using storage_type = memory_storage;
    using image_type = std::vector<sync_action>;
    static constexpr bool models_power_loss = false;
    static constexpr bool durable_inserts = true;

    void reset() { place_ = memory_storage{}; }
    memory_storage open() { return place_; }
    image_type capture(memory_storage&) { return place_.load_all().value(); }
    bool restore(const image_type& image, bool, sim_random&)
    {
        (void)place_.clear();
        for (const auto& a : image) (void)place_.save(a);
        return false;
    }

private:
    memory_storage place_;
};

static_assert(simulated_storage<memory_storage_factory>);

#ifdef SYNCVAULT_SIMULATION_HAS_FILE_JOURNAL
/**
 * `file_journal` in the simulator, in a directory of its own (wiped by `reset()`). A crash
 * keeps every byte written (the page cache survives a process crash); a power loss keeps the
 * synced prefix (`stats().synced_bytes`) plus any part of the unsynced tail, possibly ending in
 * a torn record.
 */
class file_journal_factory {
public:
    using storage_type = file_journal;
    struct image_type {
        std::string bytes;
        std::uint64_t synced = 0;
    };
    static constexpr bool models_power_loss = true;
    static constexpr bool durable_inserts = true;  // per_record and group_commit; not durability::none

    explicit file_journal_factory(std::filesystem::path directory, durability mode = durability::per_record)
        : dir_(std::move(directory)), mode_(mode)
    {}

    void reset()
    {
        std::error_code ec;
        std::filesystem::remove_all(dir_, ec);
    }
    file_journal open() { return file_journal{dir_, mode_}; }
    image_type capture(file_journal& j)
    {
        image_type image;
        std::ifstream in(j.path(), std::ios::binary);
        image.bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
        image.synced = std::min<std::uint64_t>(j.stats().synced_bytes, image.bytes.size());
        return image;
    }
    bool restore(const image_type& image, bool power_loss, sim_random& rng)
    {
        std::size_t keep = image.bytes.size();
        if (power_loss && image.synced < keep)
            keep = static_cast<std::size_t>(image.synced + rng.below(keep - image.synced + 1));
        std::ofstream out(dir_ / file_journal::file_name, std::ios::binary | std::ios::trunc);
        out.write(image.bytes.data(), static_cast<std::streamsize>(keep));
        return keep < image.bytes.size();
    }
    const std::filesystem::path& directory() const noexcept { return dir_; }

private:
    std::filesystem::path dir_;
    durability mode_;
};

static_assert(simulated_storage<file_journal_factory>);
#endif

}  // namespace syncvault::testing

#endif
