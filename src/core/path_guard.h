// Outputs never overwrite inputs: each command declares the paths it reads and the paths it
// writes (PathRoles), and check_path_roles refuses, before any work starts, an output that is the
// same file as an input or as another output. "Same" is decided by identity, not spelling: two
// existing paths are the same file when stat(2) gives the same (device, inode), so hard links and
// symlinks to an input count; a path that does not exist yet is identified by its absolute,
// lexically normalised path with its existing parent folders resolved (weakly_canonical).
#pragma once

#include <string>
#include <vector>

#include "core/status.h"

namespace lowbit {

struct PathRole {
    std::string flag;  // how the user named it: "--out", "MODEL", "--ann", ...
    std::string path;
};

struct PathRoles {
    std::vector<PathRole> inputs;
    std::vector<PathRole> outputs;

    // Empty paths are ignored (an option not given).
    void input(const std::string& flag, const std::string& path);
    void output(const std::string& flag, const std::string& path);
};

// True when `a` and `b` name the same file (see above). Empty paths are never the same.
bool same_file(const std::string& a, const std::string& b);

// InvalidArgument (a usage error, exit 2) naming both flags and paths when an output is the same
// file as an input ("--out X would overwrite the input MODEL X") or as another output.
Status check_path_roles(const PathRoles& roles);

}  // namespace lowbit
