#include "data/image_list.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <sstream>

#include "core/fs.h"
#include "core/text_lines.h"

namespace lowbit {

namespace fs = std::filesystem;

Result<std::vector<std::string>> read_image_list(const std::string& list_path,
                                                 const std::string& base_dir) {
    // A list names files; 64 MiB of text is ~1 million paths.
    LOWBIT_ASSIGN(std::string text, read_file(list_path, uint64_t{64} << 20));
    fs::path base = base_dir.empty() ? fs::path(list_path).parent_path() : fs::path(base_dir);
    std::vector<std::string> out;
    for (const TextLine& line : content_lines(text)) {
        std::string p = line.text;
        if (p[0] == '~' && (p.size() == 1 || p[1] == '/')) {
            const char* home = std::getenv("HOME");
            if (home) p = std::string(home) + p.substr(1);
        }
        fs::path path(p);
        if (path.is_relative()) path = base / path;
        std::error_code ec;
        const fs::file_status st = fs::status(path, ec);
        if (fs::is_directory(st)) {
            return io_error("{}:{}: {} is a directory, not an image file", list_path,
                            line.number, path.string());
        }
        if (!fs::exists(st)) {
            return io_error("{}:{}: image {} does not exist", list_path, line.number,
                            path.string());
        }
        if (!fs::is_regular_file(st)) {
            return io_error("{}:{}: {} is not a regular file", list_path, line.number,
                            path.string());
        }
        out.push_back(path.string());
    }
    if (out.empty()) return invalid("{}: the image list is empty", list_path);
    return out;
}

Result<std::vector<std::string>> list_image_dir(const std::string& dir) {
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) return io_error("image folder {} does not exist", dir);
    static const char* kExts[] = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"};
    std::vector<std::string> out;
    for (const auto& entry : fs::directory_iterator(dir, ec)) {
        if (!entry.is_regular_file(ec)) continue;
        std::string ext = entry.path().extension().string();
        std::transform(ext.begin(), ext.end(), ext.begin(),
                       [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
        if (std::find(std::begin(kExts), std::end(kExts), ext) != std::end(kExts)) {
            out.push_back(entry.path().string());
        }
    }
    if (ec) return io_error("cannot list {}: {}", dir, ec.message());
    if (out.empty()) return invalid("no images (jpg/png/bmp/tif/webp) in {}", dir);
    std::sort(out.begin(), out.end());
    return out;
}

}  // namespace lowbit
