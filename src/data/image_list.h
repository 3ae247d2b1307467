// Lists of images: the seed's list files (quant100.txt, research/seed-spec.md §3.5, §4.1) and
// image folders.
#pragma once

#include <string>
#include <vector>

#include "core/status.h"

namespace lowbit {

// Reads a list file: one path per line, blank lines and '#' comment lines skipped, a leading
// '~' expanded from $HOME. Relative paths are resolved against `base_dir`, or against the list
// file's own folder when `base_dir` is empty. Every listed file must exist (the error names the
// first missing one and its line); an empty list is an error.
Result<std::vector<std::string>> read_image_list(const std::string& list_path,
                                                 const std::string& base_dir = "");

// The image files (jpg, jpeg, png, bmp, tif, tiff, webp; any case) directly inside `dir`,
// sorted by file name. An empty folder is an error.
Result<std::vector<std::string>> list_image_dir(const std::string& dir);

}  // namespace lowbit
