// libFuzzer target: ranges files (calib/ranges_file.h, read through core/json_at.h).
#include <cstdint>
#include <string>

#include "calib/ranges_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string text(reinterpret_cast<const char*>(data), size);
    auto r = lowbit::calib::parse_ranges(text, "fuzz_ranges.json");
    (void)r;
    return 0;
}
