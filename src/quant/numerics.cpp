#include "quant/numerics.h"

#include <algorithm>
#include <cfloat>
#include <limits>

namespace lowbit::quant {

double symmetric_scale(double amax, QuantMode mode) {
    // ORT's compute_scale_zp with a symmetric range [-a, a] over [-127, 127]: (a - (-a)) / 254.
    // Non-finite or sub-FLT_MIN scales fall back to 1 as ORT does.
    double s = std::fabs(amax) / quant_max(mode);
    if (!std::isfinite(s) || s < static_cast<double>(FLT_MIN)) return 1.0;
    return s;
}

AsymParams asymmetric_params(double lo, double hi, DType zp_dtype) {
    lo = std::min(lo, 0.0);
    hi = std::max(hi, 0.0);
    AsymParams p;
    const double qmin = zp_dtype == DType::UInt8 ? 0.0 : -128.0;
    const double qmax = zp_dtype == DType::UInt8 ? 255.0 : 127.0;
    p.scale = (hi - lo) / (qmax - qmin);
    if (!std::isfinite(p.scale) || p.scale < static_cast<double>(FLT_MIN)) {
        p.scale = 1.0;
        p.zero_point = 0;
        return p;
    }
    // ORT: zero_point = round(qmin - rmin / scale), clipped to the type's range.
    double zp = std::nearbyint(qmin - lo / p.scale);
    p.zero_point = static_cast<int32_t>(std::clamp(zp, qmin, qmax));
    return p;
}

float stored_scale(double scale, DType scale_dtype) {
    float f = static_cast<float>(scale);
    if (scale_dtype != DType::Float16) return f;
    float h = half_to_float(float_to_half(f));
    if (!(h > 0.0f)) h = half_to_float(1);  // smallest positive float16 subnormal, 2^-24
    if (std::isinf(h)) h = 65504.0f;
    return h;
}

std::vector<double> per_channel_scales(const float* w, const std::vector<int64_t>& shape,
                                       int64_t axis, QuantMode mode) {
    int64_t outer = 1, inner = 1;
    for (int64_t i = 0; i < axis; ++i) outer *= shape[static_cast<size_t>(i)];
    for (size_t i = static_cast<size_t>(axis) + 1; i < shape.size(); ++i) inner *= shape[i];
    const int64_t channels = shape[static_cast<size_t>(axis)];
    std::vector<double> amax(static_cast<size_t>(channels), 0.0);
    for (int64_t o = 0; o < outer; ++o) {
        for (int64_t c = 0; c < channels; ++c) {
            const float* p = w + (o * channels + c) * inner;
            float m = 0.0f;
            for (int64_t i = 0; i < inner; ++i) m = std::max(m, std::fabs(p[i]));
            amax[static_cast<size_t>(c)] =
                std::max(amax[static_cast<size_t>(c)], static_cast<double>(m));
        }
    }
    std::vector<double> scales(amax.size());
    for (size_t c = 0; c < amax.size(); ++c) {
        scales[c] = amax[c] > 0 ? symmetric_scale(amax[c], mode) : 1.0;
    }
    return scales;
}

}  // namespace lowbit::quant
