// File helpers: whole-file reads and atomic writes.
// Atomic = write everything to a temporary file next to the target, then rename(2) over it, so a
// crash or a full disk never leaves a half-written metrics.json / .npy / .onnx behind.
#pragma once

#include <cstdio>
#include <functional>
#include <string>

#include "core/status.h"

namespace lowbit {

// Writes `contents` to `path` atomically (temp file in the same folder + rename).
Status write_file_atomic(const std::string& path, const std::string& contents);

// Same, for large outputs written piecewise: `write` receives the open temporary file and returns
// a Status; the rename happens only when it and the final flush/close succeed.
Status write_file_atomic_with(const std::string& path,
                              const std::function<Status(std::FILE*)>& write);

// Reads a whole file into a string; the error names the path.
Result<std::string> read_file(const std::string& path);

}  // namespace lowbit
