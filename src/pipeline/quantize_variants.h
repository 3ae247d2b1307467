// Several quantized variants of one float model from a single calibration pass (`lowbit
// candidates`): each variant is a QuantizeOptions (typically the same mode with a different
// exclusion list). Exclusions change the placement, so the variants need different activation
// tensors and may pool different Concat groups. The pass therefore streams the statistics of every
// tensor that any variant places, each tensor on its own; each variant then pools its own groups
// with TensorStats::merge (exact: the same statistics as calibrating that group alone) and gets
// its amax from them. Every variant is thus bit-identical to `lowbit quantize` run on its own with
// the same calibration data and options.
#pragma once

#include <vector>

#include "calib/calib_source.h"
#include "calib/calibrate.h"
#include "core/status.h"
#include "ir/graph.h"
#include "quant/quantize_model.h"

namespace lowbit::pipeline {

struct VariantsResult {
    std::vector<quant::QuantizeResult> variants;  // in the order of the options given
    int64_t samples = 0;
    double calib_seconds = 0;
    size_t calibrated_tensors = 0;      // size of the union over the variants' placements
    std::vector<std::string> warnings;  // calib::CalibResult::warnings of the one calibration
};

// `variants` must not carry saved ranges (each gets the ranges computed here). `run` drives the
// one calibration pass (batch, sample cap, threads, progress).
Result<VariantsResult> quantize_variants(const Model& model, calib::CalibSource& source,
                                         const std::vector<quant::QuantizeOptions>& variants,
                                         const calib::CalibRunOptions& run);

// Input shapes for planning: `given`, plus the calibration sample shape (behind the model's batch
// axis, 1 when symbolic) for every symbolic graph input not in `given`. quantize_model() applies
// the same rule.
std::map<std::string, Shape> calibration_input_shapes(const Model& model, const Shape& sample,
                                                      const std::map<std::string, Shape>& given);

}  // namespace lowbit::pipeline
