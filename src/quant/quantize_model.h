// `lowbit quantize` as a library call: prepare the float model, place Q/DQ, calibrate the
// placed activations (or reuse saved ranges), compute scales, rewrite the graph, raise the
// opset, and optionally convert the high-precision part to float16.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "calib/calib_source.h"
#include "calib/calibrate.h"
#include "calib/calibrators.h"
#include "calib/ranges_file.h"
#include "core/status.h"
#include "ir/graph.h"
#include "quant/adaround.h"
#include "quant/assignment.h"
#include "quant/fp16.h"
#include "quant/gptq.h"
#include "quant/placement.h"
#include "quant/qdq_rewrite.h"

namespace lowbit::quant {

struct QuantizeOptions {
    PlacementOptions placement;  // includes the mode
    calib::CalibMethod method = calib::kDefaultCalibMethod;
    double percentile = 99.99;
    DType high_precision = DType::Float32;  // or Float16
    // With float16: op types kept float32 between Casts (ModelOpt's --op_types_to_exclude_fp16).
    std::vector<std::string> fp16_keep_ops;
    // Asymmetric activations (UInt8 or Int8 zero points); INT8 only.
    std::optional<DType> zero_point;
    bool dq_only = false;
    // INT4 weights (w4a16 / w4a8), always DequantizeLinear-only; opset 21.
    Int4Weights int4;
    // Weights only, activations float (w4a16): place_weights_only, no calibration (`source`
    // may be null).
    bool weights_only = false;
    // How INT4 weights are rounded: to nearest (rtn) or GPTQ (quant/gptq.h; needs calibration
    // data, also in w4a16). GPTQ covers 2-D Convs; Gemm/MatMul weights stay RTN.
    WeightMethod weight_method = WeightMethod::Rtn;
    // GPTQ's Gram matrices from the first N calibration samples only (0: all); activation
    // ranges (w4a8) still use every sample.
    int64_t gptq_samples = 0;
    // AdaRound (weight_method Adaround; quant/adaround.h): iterations and regularizer weight.
    // Its Gram matrices come from the first gptq_samples samples as GPTQ's.
    AdaroundOptions adaround;
    // Bias correction of the INT4 Conv weights (any weight method; needs calibration data):
    // each Conv's bias absorbs the expected output error E[(Ŵ - W) x] over the im2col input
    // mean of the first gptq_samples samples.
    bool bias_correction = false;
    calib::CalibRunOptions run;
    std::map<std::string, Shape> input_shapes;  // for symbolic graph inputs
    // Ranges to reuse instead of calibrating (loaded by the caller).
    std::optional<calib::RangesFile> ranges;
    std::string model_name;  // recorded in the ranges
    // Per-node formats (quant/assignment.h; `quantize --assign`, `lowbit mixed`) over an INT8
    // placement (placement.mode must be int8): float nodes excluded, int4w nodes' weights INT4
    // (int4.block_size, weight_method apply to them), fp8 nodes' activations and weights FP8.
    // Weights are stored quantized (as dq_only). `assignment_source` names it in messages.
    std::optional<Assignment> assignment;
    std::string assignment_source = "assignment";
};

struct QuantizeResult {
    Model model;               // the quantized model
    Placement placement;       // on the prepared float graph
    std::vector<double> amax;  // per Placement::activations entry
    std::vector<ActivationParams> params;
    calib::RangesFile ranges;  // what was used (calibrated or reused)
    RewriteStats rewrite;
    Fp16Stats fp16;
    std::vector<std::string> notes;  // opset rewrites, warnings
    double calib_seconds = 0;
    double gptq_seconds = 0;  // the GPTQ solves after streaming (gathering is in calib_seconds)
    int gptq_weights = 0;
    double adaround_seconds = 0;  // the AdaRound solves after streaming
    int adaround_weights = 0;
    AdaroundStats adaround;
    int bias_corrected = 0;  // Conv biases corrected (--bias-correction)
    int64_t samples = 0;
};

// Copy of `model` ready for placement: refuses models that already hold Q/DQ, names unnamed
// nodes `<OpType>_<k>` as ModelOpt does, and sorts nodes topologically.
Result<Model> prepare_float_model(const Model& model);

// Element types and shapes of every tensor of `model`, from a reference-kernel plan.
Result<TypeLookup> plan_types(const Model& model, const std::map<std::string, Shape>& shapes);

// Placement only (for --explain without calibration). `model` must come from
// prepare_float_model().
Result<Placement> plan_placement(const Model& model, const QuantizeOptions& opts);

// The whole pipeline. `source` may be null when opts.ranges is set or opts.weights_only.
Result<QuantizeResult> quantize_model(const Model& model, calib::CalibSource* source,
                                      const QuantizeOptions& opts);

}  // namespace lowbit::quant
