// libFuzzer target: image list files (data/image_list.h). The list's folder holds two image
// files, a subfolder and a dangling link, so mutated lines hit files, folders and missing paths.
#include <cstdint>
#include <filesystem>
#include <string>

#include "data/image_list.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static const std::filesystem::path dir = [] {
        const auto& d = lowbit::fuzz::scratch_dir("image_list");
        const uint8_t jpg[] = {0xFF, 0xD8, 0xFF, 0xD9};
        lowbit::fuzz::write_input(d / "a.jpg", jpg, sizeof jpg);
        lowbit::fuzz::write_input(d / "b.png", jpg, sizeof jpg);
        std::error_code ec;
        std::filesystem::create_directories(d / "sub", ec);
        std::filesystem::create_symlink(d / "missing.jpg", d / "dangling.jpg", ec);
        return d;
    }();
    const std::string list = lowbit::fuzz::write_input(dir / "list.txt", data, size);
    auto r = lowbit::read_image_list(list);
    (void)r;
    return 0;
}
