#include "quant/sensitivity/fake_quant.h"

#include <algorithm>
#include <vector>

#include "quant/qdq_rewrite.h"

namespace lowbit::quant {

// Branch-free forms of the executor's QuantizeLinear -> DequantizeLinear so that the loops
// vectorize:
//  - INT8: v = x / s clamped to [-128, 127] and rounded half to even (round_int8_value), times s.
//  - FP8 E4M3FN: |v| clamped to 448 (saturation), then rounded to 3 mantissa bits half to even
//    on the float's bits for normals (|v| >= 2^-6), or to a multiple of 2^-9 by the 2^14 trick
//    for subnormals; sign restored, times s. Equal to round_to_e4m3 (tested).
void fake_quantize_into(const float* x, float* y, int64_t n, float s, QuantMode mode) {
    if (mode == QuantMode::Int8) {
        for (int64_t i = 0; i < n; ++i) y[i] = round_int8_value(x[i] / s) * s;
        return;
    }
    for (int64_t i = 0; i < n; ++i) y[i] = round_to_e4m3(x[i] / s) * s;
}

Tensor fake_quantize(const Tensor& x, float s, QuantMode mode) {
    Tensor y(DType::Float32, x.shape());
    fake_quantize_into(x.data<float>(), y.data<float>(), x.numel(), s, mode);
    return y;
}

Tensor fake_quantize_weight(const Tensor& w, int64_t axis, QuantMode mode) {
    std::vector<float> scales;
    const Tensor q = quantize_weight(w, axis, mode, DType::Float32, &scales);
    const Shape& shape = w.shape();
    int64_t inner = 1;
    for (size_t i = static_cast<size_t>(std::max<int64_t>(axis, 0)) + 1;
         axis >= 0 && i < shape.size(); ++i) {
        inner *= shape[i];
    }
    const int64_t channels = axis >= 0 ? shape[static_cast<size_t>(axis)] : 1;
    Tensor y(DType::Float32, shape);
    float* py = y.data<float>();
    for (int64_t i = 0; i < w.numel(); ++i) {
        const float s = scales[static_cast<size_t>(axis >= 0 ? (i / inner) % channels : 0)];
        const float v = mode == QuantMode::Int8
                            ? static_cast<float>(q.data<int8_t>()[i])
                            : fp8_to_float(q.data<uint8_t>()[i], DType::Float8E4M3FN);
        py[i] = v * s;
    }
    return y;
}

Tensor fake_quantize_weight_int4(const Tensor& w, int64_t axis, int64_t block_size) {
    const Int4Weight q4 = quantize_weight_int4(w, axis, block_size, DType::Float32);
    const Shape& shape = w.shape();
    const int64_t n = w.numel();
    const int8_t* codes = q4.q.data<int8_t>();  // one value a byte in memory
    // The scale of element i: per channel along dq_axis, or per block along it (scale shape =
    // w's shape with ceil(D / B) along dq_axis).
    const Shape& ss = q4.scale.shape();
    const float* sc = q4.scale.data<float>();
    Tensor y(DType::Float32, shape);
    float* py = y.data<float>();
    std::vector<int64_t> idx(shape.size(), 0);
    for (int64_t i = 0; i < n; ++i) {
        int64_t si = 0;
        if (q4.block_size > 0) {
            for (size_t d = 0; d < shape.size(); ++d) {
                const int64_t v = static_cast<int64_t>(d) == q4.dq_axis ? idx[d] / q4.block_size
                                                                        : idx[d];
                si = si * ss[d] + v;
            }
        } else {
            si = idx[static_cast<size_t>(q4.dq_axis)];
        }
        py[i] = static_cast<float>(codes[i]) * sc[si];
        for (size_t d = shape.size(); d-- > 0;) {
            if (++idx[d] < shape[d]) break;
            idx[d] = 0;
        }
    }
    return y;
}

}  // namespace lowbit::quant
