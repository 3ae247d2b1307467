// libFuzzer target: ONNX ModelProto bytes -> IR (onnx/model_io.h), external data included. The
// model's folder holds one 4 KiB weights file ("w.bin") and a symbolic link that points out of
// the folder ("out" -> the scratch folder's parent), so locations inside, outside and through
// the link are all reachable by mutation. A reader must return a Status for every input; a
// crash, a sanitizer report or a leak is a finding.
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "fuzz_util.h"
#include "onnx/model_io.h"

namespace {

const std::string& model_dir() {
    static const std::string dir = [] {
        const auto& d = lowbit::fuzz::scratch_dir("onnx");
        std::vector<uint8_t> w(4096);
        for (size_t i = 0; i < w.size(); ++i) w[i] = static_cast<uint8_t>(i * 7);
        lowbit::fuzz::write_input(d / "w.bin", w.data(), w.size());
        std::error_code ec;
        std::filesystem::create_directory_symlink(d.parent_path(), d / "out", ec);
        return d.string();
    }();
    return dir;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string bytes(reinterpret_cast<const char*>(data), size);
    auto m = lowbit::parse_model(bytes, model_dir(), "fuzz.onnx");
    if (m) {
        // What a read model must survive: serializing it again.
        auto out = lowbit::serialize_model(*m);
        (void)out;
    }
    std::string name;
    auto t = lowbit::parse_tensor(bytes, &name, "fuzz.pb");
    (void)t;
    return 0;
}
