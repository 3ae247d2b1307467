// libFuzzer target: `lowbit run` step records (pipeline/run_manifest.h), parsed from text and
// through check_step on a run root, as a resume reads them.
#include <cstdint>
#include <filesystem>
#include <string>

#include "fuzz_util.h"
#include "pipeline/run_manifest.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string text(reinterpret_cast<const char*>(data), size);
    auto r = lowbit::pipeline::parse_step_record(text, "fuzz_step.json");
    (void)r;
    const auto& root = lowbit::fuzz::scratch_dir("run_record");
    std::filesystem::create_directories(root / ".lowbit-run");
    lowbit::fuzz::write_input(root / ".lowbit-run" / "step.json", data, size);
    lowbit::pipeline::Fingerprinter fp;
    lowbit::pipeline::StepSpec spec{"step", {{"lowbit", "info"}}, {}, {}};
    auto state = lowbit::pipeline::check_step(fp, root.string(), spec);
    (void)state;
    return 0;
}
