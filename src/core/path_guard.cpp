#include "core/path_guard.h"

#include <sys/stat.h>

#include <filesystem>
#include <optional>

namespace lowbit {

namespace fs = std::filesystem;

void PathRoles::input(const std::string& flag, const std::string& path) {
    if (!path.empty()) inputs.push_back({flag, path});
}

void PathRoles::output(const std::string& flag, const std::string& path) {
    if (!path.empty()) outputs.push_back({flag, path});
}

namespace {

// What a path refers to: (device, inode) when it exists (symlinks followed), else its resolved
// absolute path.
struct FileId {
    bool exists = false;
    dev_t dev = 0;
    ino_t ino = 0;
    std::string resolved;
};

std::optional<FileId> file_id(const std::string& path) {
    if (path.empty()) return std::nullopt;
    FileId id;
    struct stat st {};
    if (::stat(path.c_str(), &st) == 0) {
        id.exists = true;
        id.dev = st.st_dev;
        id.ino = st.st_ino;
        return id;
    }
    std::error_code ec;
    fs::path p = fs::weakly_canonical(fs::absolute(path, ec), ec);
    if (ec) p = fs::absolute(path, ec).lexically_normal();
    id.resolved = p.string();
    return id;
}

bool same_id(const FileId& a, const FileId& b) {
    if (a.exists != b.exists) return false;
    if (a.exists) return a.dev == b.dev && a.ino == b.ino;
    return a.resolved == b.resolved;
}

std::string named(const PathRole& r) {
    return r.flag.empty() ? r.path : fmt::format("{} {}", r.flag, r.path);
}

}  // namespace

bool same_file(const std::string& a, const std::string& b) {
    auto ia = file_id(a), ib = file_id(b);
    return ia && ib && same_id(*ia, *ib);
}

Status check_path_roles(const PathRoles& roles) {
    std::vector<std::optional<FileId>> in, out;
    for (const PathRole& r : roles.inputs) in.push_back(file_id(r.path));
    for (const PathRole& r : roles.outputs) out.push_back(file_id(r.path));
    for (size_t o = 0; o < out.size(); ++o) {
        if (!out[o]) continue;
        for (size_t i = 0; i < in.size(); ++i) {
            if (in[i] && same_id(*out[o], *in[i])) {
                return invalid(
                    "{} is the same file as the input {}: writing it would destroy the input; "
                    "choose another output path",
                    named(roles.outputs[o]), named(roles.inputs[i]));
            }
        }
        for (size_t p = 0; p < o; ++p) {
            const PathRole& a = roles.outputs[p];
            const PathRole& b = roles.outputs[o];
            if (a.flag == b.flag && a.path == b.path) continue;  // one output declared twice
            if (out[p] && same_id(*out[o], *out[p])) {
                return invalid("{} and {} are the same file: give each output its own path",
                               named(roles.outputs[p]), named(roles.outputs[o]));
            }
        }
    }
    return Status::ok();
}

}  // namespace lowbit
