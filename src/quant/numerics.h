// Quantization arithmetic of the Q/DQ rewrite, sensitivity and the tests (research/modelopt.md
// §3.7 and §4; ONNX QuantizeLinear/DequantizeLinear-19). The grids themselves (QuantMode) and
// E4M3 rounding are core/numerics.h, which calibration uses as well.
//
//  - INT8 symmetric: range [-127, 127], scale = amax / 127 computed in double and stored as
//    float32 (or float16 when the non-quantized part is float16); a scale below FLT_MIN becomes 1.
//  - Asymmetric activations (--zero-point): the range is widened to contain 0, then
//    uint8: scale = (hi - lo) / 255, zp = round(-lo / scale) in [0, 255];
//    int8:  scale = (hi - lo) / 255, zp = round(-128 - lo / scale) in [-128, 127].
//  - FP8 E4M3FN: scale = amax / 448, zero point 0, saturating round-to-nearest-even cast.
//  - QuantizeLinear: q = saturate(round_half_even(x / scale) + zp); x / scale is evaluated in
//    float32 as ONNX Runtime does (a float16 scale is widened first).
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

#include "core/dtype.h"
#include "core/half.h"
#include "core/numerics.h"

namespace lowbit::quant {

// QuantMode, its dtype and grid maximum, and E4M3 rounding live in core/numerics.h (calibration
// needs them too); quant:: names them as before.
using lowbit::quant_dtype;
using lowbit::quant_max;
using lowbit::QuantMode;
using lowbit::round_to_e4m3;

// Symmetric scale for a calibrated |x| maximum, in double (ORT compute_scale_zp).
double symmetric_scale(double amax, QuantMode mode);

// Scale and zero point of an asymmetric activation range [lo, hi] (0 is forced into it).
struct AsymParams {
    double scale = 1.0;
    int32_t zero_point = 0;
};
AsymParams asymmetric_params(double lo, double hi, DType zp_dtype);

// The scale as it will be stored: float32, or float16 (rounded to nearest even; a scale that
// underflows float16 is raised to the smallest positive float16 so QuantizeLinear never divides
// by zero). Returned as the float value the runtime will use.
float stored_scale(double scale, DType scale_dtype);

// QuantizeLinear of one value with a stored (float) scale.
inline int32_t quantize_int(float x, float scale, int32_t zp, int32_t qmin, int32_t qmax) {
    float v = std::nearbyint(x / scale) + static_cast<float>(zp);
    if (!(v >= static_cast<float>(qmin))) return std::isnan(v) ? zp : qmin;
    if (v > static_cast<float>(qmax)) return qmax;
    return static_cast<int32_t>(v);
}
inline int8_t quantize_int8(float x, float scale) {
    return static_cast<int8_t>(quantize_int(x, scale, 0, -128, 127));
}
inline uint8_t quantize_fp8(float x, float scale) {
    return float_to_fp8(x / scale, DType::Float8E4M3FN, true);
}

// Per-channel weight scales: amax of |w| over each slice along `axis` (all other axes
// reduced), scale = amax / quant_max (1.0 for an all-zero slice).
std::vector<double> per_channel_scales(const float* w, const std::vector<int64_t>& shape,
                                       int64_t axis, QuantMode mode);

}  // namespace lowbit::quant
