#ifndef SYNCVAULT_DETAIL_FILE_HANDLE_HPP
#define SYNCVAULT_DETAIL_FILE_HANDLE_HPP

// An owned native file, shared by the file layer's implementations (detail/file_layer.hpp).

#include <utility>

namespace syncvault::detail {

/**
 * Owns one native file and closes it on destruction. `Traits` gives `native` (the handle type),
 * `invalid()` and `close(native)`.
 */
template <class Traits>
class basic_file_handle {
public:
    using native_type = typename Traits::native;

    basic_file_handle() = default;
    explicit basic_file_handle(native_type h) noexcept : h_(h) {}
    basic_file_handle(basic_file_handle&& o) noexcept : h_(std::exchange(o.h_, Traits::invalid())) {}
    basic_file_handle& operator=(basic_file_handle&& o) noexcept
    {
        if (this != &o) {
            reset();
            h_ = std::exchange(o.h_, Traits::invalid());
        }
        return *this;
    }
    basic_file_handle(const basic_file_handle&) = delete;
    basic_file_handle& operator=(const basic_file_handle&) = delete;
    ~basic_file_handle() { reset(); }

    native_type get() const noexcept { return h_; }
    explicit operator bool() const noexcept { return h_ != Traits::invalid(); }
    void reset() noexcept
    {
        if (h_ != Traits::invalid()) Traits::close(h_);
        h_ = Traits::invalid();
    }

private:
    native_type h_ = Traits::invalid();
};

/** How `file_open` treats an existing or missing file. */
enum class file_open_mode {
    create_new,         ///< create; `std::errc::file_exists` if it exists
    open_existing,      ///< open; `std::errc::no_such_file_or_directory` if missing
    open_or_create,     ///< open, creating it if missing
    create_or_truncate  ///< create, or open and empty it
};

}  // namespace syncvault::detail

#endif
