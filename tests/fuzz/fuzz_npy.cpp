// libFuzzer target: .npy bytes through the one NPY header reader (data/npy.h), the whole-file
// reader and the streaming calibration source (calib/calib_source.h), which must accept and
// refuse the same files.
#include <cstdint>
#include <string>
#include <vector>

#include "calib/calib_source.h"
#include "data/npy.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string path =
        lowbit::fuzz::write_input(lowbit::fuzz::scratch_dir("npy") / "x.npy", data, size);
    auto t = lowbit::read_npy(path);
    auto src = lowbit::calib::open_npy_source(path);
    if (src) {
        auto& s = **src;
        const int64_t per = lowbit::shape_numel(s.sample_shape());
        // Only small samples: the header is checked against the file, so a sample larger than
        // the input cannot exist, but keep the harness's own memory bounded anyway.
        if (s.size() > 0 && per >= 0 && per <= (int64_t{1} << 22)) {
            std::vector<float> buf(static_cast<size_t>(per));
            auto st = s.read(0, buf.data());
            auto st2 = s.read(s.size() - 1, buf.data());
            (void)st;
            (void)st2;
        }
    }
    return 0;
}
