#ifndef SYNCVAULT_TESTS_WINDOWS_CHILD_PROCESS_HPP
#define SYNCVAULT_TESTS_WINDOWS_CHILD_PROCESS_HPP

// A child process for the Windows process tests: this executable re-invoked with
// `--syncvault-child <role> <args...>`, its standard output on a pipe the parent reads, killed
// with TerminateProcess (Windows' kill -9: no destructor, no flush, no atexit).

#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#ifndef NOMINMAX
#define NOMINMAX
#endif
#include <windows.h>

#include <stdexcept>
#include <string>
#include <vector>

namespace syncvault_windows_tests {

inline constexpr const char* child_flag = "--syncvault-child";

/** Runs a child role (defined with the tests); returns its exit code. */
int child_main(int argc, char* argv[]);

/** This executable, started as a child with `args`; its stdout is readable line by line. */
class child_process {
public:
    explicit child_process(const std::vector<std::wstring>& args)
    {
        wchar_t self[MAX_PATH * 4];
        const DWORD n = ::GetModuleFileNameW(nullptr, self, DWORD(sizeof self / sizeof self[0]));
        if (n == 0) throw std::runtime_error("GetModuleFileNameW failed");
        std::wstring cmd = L"\"" + std::wstring(self, n) + L"\" --syncvault-child";
        for (const auto& a : args) cmd += L" \"" + a + L"\"";  // (test arguments hold no quotes)

        SECURITY_ATTRIBUTES sa{sizeof sa, nullptr, TRUE};
        HANDLE write_end = nullptr;
        if (!::CreatePipe(&read_, &write_end, &sa, 0)) throw std::runtime_error("CreatePipe failed");
        ::SetHandleInformation(read_, HANDLE_FLAG_INHERIT, 0);  // the child gets the write end only
        STARTUPINFOW si{};
        si.cb = sizeof si;
        si.dwFlags = STARTF_USESTDHANDLES;
        si.hStdOutput = write_end;
        si.hStdError = ::GetStdHandle(STD_ERROR_HANDLE);
        si.hStdInput = ::GetStdHandle(STD_INPUT_HANDLE);
        const BOOL ok = ::CreateProcessW(nullptr, cmd.data(), nullptr, nullptr, TRUE, 0, nullptr, nullptr, &si, &pi_);
        ::CloseHandle(write_end);  // the parent's copy: end of file once the child is gone
        if (!ok) {
            ::CloseHandle(read_);
            throw std::runtime_error("CreateProcessW failed");
        }
    }
    child_process(const child_process&) = delete;
    child_process& operator=(const child_process&) = delete;
    ~child_process()
    {
        if (running()) kill();
        ::CloseHandle(read_);
        ::CloseHandle(pi_.hThread);
        ::CloseHandle(pi_.hProcess);
    }

    bool running() const { return ::WaitForSingleObject(pi_.hProcess, 0) == WAIT_TIMEOUT; }

    /** The next line of the child's output, without its newline; false at end of output. */
    bool read_line(std::string& line)
    {
        line.clear();
        for (;;) {
            if (auto nl = buf_.find('\n'); nl != std::string::npos) {
                line = buf_.substr(0, nl);
                buf_.erase(0, nl + 1);
                return true;
            }
            char chunk[4096];
            DWORD got = 0;
            if (!::ReadFile(read_, chunk, sizeof chunk, &got, nullptr) || got == 0) return false;
            buf_.append(chunk, got);
        }
    }

    /** Everything left on the pipe, once the child is gone (a last line may be cut short). */
    std::string rest()
    {
        std::string out = std::move(buf_);
        buf_.clear();
        char chunk[4096];
        DWORD got = 0;
        while (::ReadFile(read_, chunk, sizeof chunk, &got, nullptr) && got > 0) out.append(chunk, got);
        return out;
    }

    /** TerminateProcess, then waits until the process is gone. */
    void kill()
    {
        ::TerminateProcess(pi_.hProcess, 137);
        ::WaitForSingleObject(pi_.hProcess, INFINITE);
    }

    /** Waits for the child to exit; its exit code. */
    DWORD wait()
    {
        ::WaitForSingleObject(pi_.hProcess, INFINITE);
        DWORD code = 0;
        ::GetExitCodeProcess(pi_.hProcess, &code);
        return code;
    }

private:
    PROCESS_INFORMATION pi_{};
    HANDLE read_ = nullptr;
    std::string buf_;
};

/** Writes a line to stdout at once (no buffering: a kill must not lose an acknowledgement). */
inline void write_line(const std::string& line)
{
    const std::string s = line + "\n";
    HANDLE out = ::GetStdHandle(STD_OUTPUT_HANDLE);
    const char* p = s.data();
    DWORD left = DWORD(s.size());
    while (left > 0) {
        DWORD n = 0;
        if (!::WriteFile(out, p, left, &n, nullptr) || n == 0) ::ExitProcess(90);
        p += n;
        left -= n;
    }
}

}  // namespace syncvault_windows_tests

#endif
