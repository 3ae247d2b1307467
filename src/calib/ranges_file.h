// Calibrated ranges saved as JSON (`lowbit quantize --ranges FILE`), so a model can be
// re-quantized (other exclusions, other output form) without running calibration again:
//
//   {"format": "lowbit-ranges", "version": 1, "method": "entropy", "mode": "int8",
//    "percentile": 99.99, "samples": 100, "model": "yolov10m.onnx",
//    "tensors": {"images": {"amax": 1.0, "min": 0.0, "max": 1.0, "count": 122880000,
//                           "group": -1}, ...}}
//
// `amax` is the calibrated |x| threshold the scale is computed from; min/max are the observed
// signed extremes (for --zero-point); members of one Concat group carry the same values and the
// same group number.
#pragma once

#include <map>
#include <string>

#include "core/status.h"

namespace lowbit::calib {

struct TensorRange {
    double amax = 0;
    double min = 0;
    double max = 0;
    int64_t count = 0;
    int group = -1;
};

struct RangesFile {
    std::string method;
    std::string mode;
    double percentile = 0;
    int64_t samples = 0;
    std::string model;
    std::map<std::string, TensorRange> tensors;
};

Status save_ranges(const std::string& path, const RangesFile& r);
// Reads a ranges file; a value of the wrong type is an error naming the file and the key
// ("r.json: tensors.x.min: expected a number, found a string").
Result<RangesFile> load_ranges(const std::string& path);
// Same, from text already in memory; `path` names it in errors.
Result<RangesFile> parse_ranges(const std::string& text, const std::string& path);

}  // namespace lowbit::calib
