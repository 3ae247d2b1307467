// File helpers: whole-file reads and atomic writes.
// Atomic = write everything to a temporary file next to the target, then rename(2) over it, so a
// crash or a full disk never leaves a half-written metrics.json / .npy / .onnx behind.
#pragma once

#include <cstdint>
#include <cstdio>
#include <functional>
#include <string>

#include "core/status.h"

namespace lowbit {

// Writes `contents` to `path` atomically (temp file in the same folder + rename). Temp files of
// the same target left by a killed process (".<name>.tmp.<pid>" whose pid is gone) are removed.
Status write_file_atomic(const std::string& path, const std::string& contents);

// Same, for large outputs written piecewise: `write` receives the open temporary file and returns
// a Status; the rename happens only when it and the final flush/close succeed.
Status write_file_atomic_with(const std::string& path,
                              const std::function<Status(std::FILE*)>& write);

// Reads a whole file into a string; the error names the path. A directory, or a file larger
// than `max_bytes` (core/checked.h's kMaxReadFileBytes, 4 GiB, unless the caller states a
// smaller limit), is an error before anything is read.
Result<std::string> read_file(const std::string& path,
                              uint64_t max_bytes = uint64_t{4} << 30);

// The size of a regular file, or an error naming it (missing, a directory, unreadable).
Result<uint64_t> regular_file_size(const std::string& path);

}  // namespace lowbit
