// Shared by the libFuzzer targets: a private scratch folder per process (for readers that take a
// path) and a helper that writes the input there.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>

namespace lowbit::fuzz {

// <tmp>/lowbit-fuzz-<target>-<pid>/, created once, removed at exit.
inline const std::filesystem::path& scratch_dir(const char* target) {
    static const std::filesystem::path dir = [&] {
        std::filesystem::path d = std::filesystem::temp_directory_path() /
                                  ("lowbit-fuzz-" + std::string(target) + "-" +
                                   std::to_string(::getpid()));
        std::filesystem::create_directories(d);
        static struct Cleanup {
            std::filesystem::path d;
            ~Cleanup() {
                std::error_code ec;
                std::filesystem::remove_all(d, ec);
            }
        } cleanup{d};
        return d;
    }();
    return dir;
}

inline std::string write_input(const std::filesystem::path& path, const uint8_t* data,
                               size_t size) {
    std::FILE* f = std::fopen(path.c_str(), "wb");
    if (f == nullptr) __builtin_trap();  // the harness itself is broken
    if (size > 0 && std::fwrite(data, 1, size, f) != size) __builtin_trap();
    std::fclose(f);
    return path.string();
}

}  // namespace lowbit::fuzz
