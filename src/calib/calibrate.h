// Streaming calibration through the executor's observer hook: the model runs sample by sample
// (or in batches when its batch axis is free), and each observed tensor's values are folded into
// its group's TensorStats as soon as the node producing it has run. Only the requested tensors
// are looked at; nothing is kept between samples except the statistics, so peak memory is one
// forward pass plus the histograms.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "calib/calib_source.h"
#include "calib/histogram.h"
#include "core/status.h"
#include "ir/graph.h"
#include "runtime/executor.h"

namespace lowbit::calib {

struct CalibRequest {
    // Tensors whose statistics are pooled together (a Concat group, or a single tensor).
    std::vector<std::vector<std::string>> groups;
    bool histogram = true;
    // Tensors handed to `tap` (plain layout) as they are produced, every sample, beside the
    // statistics (e.g. the Conv inputs whose Gram matrices GPTQ gathers). A tap's error stops
    // the calibration.
    std::vector<std::string> taps;
    std::function<Status(const std::string& tensor, const Tensor& value)> tap;
};

struct CalibRunOptions {
    int64_t batch = 1;        // samples per executor run when the model's batch axis is free
    int64_t max_samples = 0;  // 0: all
    int n_threads = 0;
    bool progress = true;  // progress line on stderr when it is a terminal
    // For the executors that run the model (ExecutorOptions::profile, conv_winograd).
    int profile = 0;
    bool conv_winograd = true;
};

struct CalibResult {
    std::vector<TensorStats> stats;  // one per group
    int64_t samples = 0;
    double seconds = 0;
    std::vector<std::string> unobserved;  // requested tensors never produced at run time
    // Named warnings about suspicious statistics: a tensor that took one value on every sample
    // (all-zero or constant calibration data, a dead channel path) gets a zero-width range.
    std::vector<std::string> warnings;
};

// Runs `model` over the source. The model must have one float input whose shape is
// [B, sample_shape...] (B fixed, or symbolic and then set from `batch`). A calibrated tensor that
// took NaN or infinite values is an error naming it (no range can be calibrated from them, and
// every scale and sensitivity score downstream would be NaN); a constant one is a warning.
Result<CalibResult> calibrate(const Model& model, CalibSource& source, const CalibRequest& req,
                              const CalibRunOptions& opts);

}  // namespace lowbit::calib
