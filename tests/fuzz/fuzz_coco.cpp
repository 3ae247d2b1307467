// libFuzzer target: COCO ground-truth and detection-results JSON (data/coco.h, the streaming
// reader of data/json_sax.h), and a round trip of the results it accepts.
#include <cstdint>
#include <string>

#include "data/coco.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string text(reinterpret_cast<const char*>(data), size);
    auto gt = lowbit::parse_coco_gt(text, "fuzz_gt.json");
    (void)gt;
    auto dt = lowbit::parse_coco_results(text, "fuzz_dt.json");
    if (dt) {
        const std::string again = lowbit::coco_results_to_json(*dt);
        auto back = lowbit::parse_coco_results(again, "fuzz_roundtrip.json");
        if (!back || back->size() != dt->size()) __builtin_trap();
    }
    return 0;
}
