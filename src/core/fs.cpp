#include "core/fs.h"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

namespace lowbit {

namespace {

// "<dir>/.<name>.tmp.<pid>": same folder (rename must not cross file systems), hidden, unique per
// process so two lowbit processes writing the same target do not clobber each other's temp file.
std::string temp_path_for(const std::string& path) {
    std::filesystem::path p(path);
    std::string name = "." + p.filename().string() + ".tmp." + std::to_string(::getpid());
    return (p.parent_path() / name).string();
}

// Removes "<dir>/.<name>.tmp.<pid>" files left by a process that was killed while writing the
// same target (its pid no longer exists). Another live process's temp file is left alone.
void remove_stale_temps(const std::string& path) {
    std::filesystem::path p(path);
    const std::string prefix = "." + p.filename().string() + ".tmp.";
    std::filesystem::path dir = p.parent_path().empty() ? "." : p.parent_path();
    std::error_code ec;
    std::filesystem::directory_iterator it(dir, ec);
    for (; !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
        const std::string name = it->path().filename().string();
        if (name.size() <= prefix.size() || name.compare(0, prefix.size(), prefix) != 0) continue;
        const std::string digits = name.substr(prefix.size());
        if (digits.size() > 9 || digits.find_first_not_of("0123456789") != std::string::npos) {
            continue;
        }
        const pid_t pid = static_cast<pid_t>(std::stol(digits));
        if (pid <= 0 || pid == ::getpid()) continue;
        if (::kill(pid, 0) == 0 || errno != ESRCH) continue;  // alive, or not ours to judge
        std::error_code rm_ec;
        std::filesystem::remove(it->path(), rm_ec);
    }
}

}  // namespace

Status write_file_atomic_with(const std::string& path,
                              const std::function<Status(std::FILE*)>& write) {
    if (path.empty()) return invalid("empty output path");
    std::string tmp = temp_path_for(path);
    remove_stale_temps(path);
    std::FILE* f = std::fopen(tmp.c_str(), "wb");
    if (f == nullptr) {
        return io_error("cannot open {} for writing (for {}): {}", tmp, path, std::strerror(errno));
    }
    Status st = write(f);
    if (st.is_ok() && std::fflush(f) != 0) {
        st = io_error("cannot write {}: {}", path, std::strerror(errno));
    }
    if (std::fclose(f) != 0 && st.is_ok()) {
        st = io_error("cannot write {}: {}", path, std::strerror(errno));
    }
    if (!st.is_ok()) {
        std::remove(tmp.c_str());
        return st;
    }
    if (std::rename(tmp.c_str(), path.c_str()) != 0) {
        int err = errno;
        std::remove(tmp.c_str());
        return io_error("cannot rename {} to {}: {}", tmp, path, std::strerror(err));
    }
    return Status::ok();
}

Status write_file_atomic(const std::string& path, const std::string& contents) {
    return write_file_atomic_with(path, [&](std::FILE* f) -> Status {
        if (!contents.empty() &&
            std::fwrite(contents.data(), 1, contents.size(), f) != contents.size()) {
            return io_error("cannot write {}: {}", path, std::strerror(errno));
        }
        return Status::ok();
    });
}

Result<std::string> read_file(const std::string& path, uint64_t max_bytes) {
    std::FILE* f = std::fopen(path.c_str(), "rb");
    if (f == nullptr) return io_error("cannot open {}: {}", path, std::strerror(errno));
    struct stat st {};
    if (::fstat(::fileno(f), &st) != 0) {
        std::fclose(f);
        return io_error("cannot read {}: {}", path, std::strerror(errno));
    }
    if (S_ISDIR(st.st_mode)) {
        std::fclose(f);
        return io_error("{} is a directory, not a file", path);
    }
    if (S_ISREG(st.st_mode) && static_cast<uint64_t>(st.st_size) > max_bytes) {
        std::fclose(f);
        return io_error("{} is {} bytes, above the limit of {} bytes for this kind of file", path,
                        static_cast<uint64_t>(st.st_size), max_bytes);
    }
    std::string out;
    if (S_ISREG(st.st_mode)) out.reserve(static_cast<size_t>(st.st_size));
    char buf[1 << 16];
    size_t n = 0;
    while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0) {
        if (out.size() + n > max_bytes) {  // a pipe or a file that grows while we read it
            std::fclose(f);
            return io_error("{} is larger than the limit of {} bytes for this kind of file", path,
                            max_bytes);
        }
        out.append(buf, n);
    }
    bool failed = std::ferror(f) != 0;
    std::fclose(f);
    if (failed) return io_error("cannot read {}", path);
    return out;
}

Result<uint64_t> regular_file_size(const std::string& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) {
        return io_error("cannot open {}: {}", path, std::strerror(errno));
    }
    if (S_ISDIR(st.st_mode)) return io_error("{} is a directory, not a file", path);
    if (!S_ISREG(st.st_mode)) return io_error("{} is not a regular file", path);
    return static_cast<uint64_t>(st.st_size);
}

}  // namespace lowbit
