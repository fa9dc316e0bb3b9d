#ifndef SYNCVAULT_TESTS_STORAGE_TEMP_DIR_HPP
#define SYNCVAULT_TESTS_STORAGE_TEMP_DIR_HPP

// A fresh directory per test, removed with everything in it when the test ends.

#include <filesystem>
#include <random>
#include <stdexcept>
#include <string>
#include <system_error>

namespace syncvault_tests {

class temp_dir {
public:
    explicit temp_dir(const std::string& prefix = "syncvault")
    {
        // mkdtemp's contract with std::filesystem alone (Windows has no mkdtemp): a new name,
        // created by this call, never one that existed.
        static thread_local std::mt19937_64 rng{std::random_device{}()};
        const auto base = std::filesystem::temp_directory_path();
        for (int attempt = 0; attempt < 100; ++attempt) {
            auto candidate = base / (prefix + "-" + std::to_string(rng() % 1000000000000u));
            std::error_code ec;
            if (std::filesystem::create_directory(candidate, ec)) {
                path_ = std::move(candidate);
                return;
            }
            if (ec && ec != std::errc::file_exists) break;
        }
        throw std::runtime_error("cannot create a temporary directory for " + prefix);
    }
    ~temp_dir()
    {
        std::error_code ec;
        std::filesystem::remove_all(path_, ec);
    }
    temp_dir(const temp_dir&) = delete;
    temp_dir& operator=(const temp_dir&) = delete;

    const std::filesystem::path& path() const noexcept { return path_; }
    std::filesystem::path operator/(const std::filesystem::path& p) const { return path_ / p; }

private:
    std::filesystem::path path_;
};

} // namespace syncvault_tests

#endif
