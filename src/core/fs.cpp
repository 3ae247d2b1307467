#include "core/fs.h"

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

}  // namespace

Status write_file_atomic_with(const std::string& path,
                              const std::function<Status(std::FILE*)>& write) {
    if (path.empty()) return invalid("empty output path");
    std::string tmp = temp_path_for(path);
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

Result<std::string> read_file(const std::string& path) {
    std::FILE* f = std::fopen(path.c_str(), "rb");
    if (f == nullptr) return io_error("cannot open {}: {}", path, std::strerror(errno));
    std::string out;
    char buf[1 << 16];
    size_t n = 0;
    while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0) out.append(buf, n);
    bool failed = std::ferror(f) != 0;
    std::fclose(f);
    if (failed) return io_error("cannot read {}", path);
    return out;
}

}  // namespace lowbit
