// Calibration methods: turn a tensor's streamed statistics into the |x| threshold (amax) that
// its scale is computed from (scale = amax / 127 for INT8, amax / 448 for FP8).
//
//  max        amax of |x| over the whole calibration set (ModelOpt/ORT MinMax, symmetric).
//  entropy    TensorRT's KL-divergence calibrator (IInt8EntropyCalibrator2 as NVIDIA describes
//             it): a 2048-bin histogram of |x| over [0, amax]; for every candidate threshold bin
//             i >= 128 the reference distribution P = bins [0, i) with the outliers added to
//             bin i-1, and Q = those bins merged into 128 levels and expanded back uniformly over
//             each level's non-empty bins; the threshold is the upper edge of the i minimising
//             KL(P || Q). The histogram is derived exactly from TensorStats' order-independent
//             fine histogram (g fine bins per bin, g = ceil(used / 2048), so 1821-2048 bins cover
//             [0, amax]); the result depends only on the set of calibration values.
//  percentile |x| value below which `percentile` % of the values lie (upper edge of the fine bin
//             where the cumulative count reaches it), clamped to amax.
//  mse        the threshold (over the same candidates as entropy) minimising the expected squared
//             quantization error of the histogram, each bin's mass at its centre, for the target
//             grid: INT8 (clip to +-127 steps) or FP8 E4M3FN (saturating at 448).
#pragma once

#include <string>

#include "calib/histogram.h"
#include "core/status.h"
#include "core/numerics.h"

namespace lowbit::calib {

enum class CalibMethod { Max, Entropy, Percentile, Mse };

// lowbit's default method: `mse`. TensorRT's KL (`entropy`, ModelOpt's default name) clips the
// sparse, large activations of YOLO detection heads (17-50 % of max on the class branches of the
// bundled model) and loses about 0.11 mAP50-95 there; `mse` loses about 0.003 (INT8) and 0.0015
// (FP8). Numbers and commands: README "Calibration methods".
inline constexpr CalibMethod kDefaultCalibMethod = CalibMethod::Mse;
inline constexpr const char* kDefaultCalibMethodName = "mse";

Result<CalibMethod> parse_calib_method(const std::string& s);
const char* calib_method_name(CalibMethod m);
// Whether the method needs TensorStats' histogram.
bool needs_histogram(CalibMethod m);

struct CalibConfig {
    CalibMethod method = kDefaultCalibMethod;
    double percentile = 99.99;
    QuantMode target = QuantMode::Int8;  // grid for `mse`
};

// The calibrated |x| threshold; 0 when the tensor held only zeros (scale then falls back to 1).
double compute_amax(const TensorStats& stats, const CalibConfig& cfg);

// Building blocks, exposed for tests.
// KL-optimal threshold bin over an explicit histogram (counts per equal-width bin): returns the
// number of bins i kept (threshold = i * bin width); `start` is the first candidate (128).
int64_t entropy_threshold_bins(const std::vector<double>& hist, int64_t start = 128,
                               int64_t levels = 128);
// Expected squared error of quantizing the histogram (bin width w, mass at bin centres) with
// threshold t to the target grid.
double quantization_mse(const std::vector<double>& hist, double w, double t,
                        QuantMode target);

}  // namespace lowbit::calib
