// Per-tensor int8 quantization arithmetic shared by the int8 fast ops (qconv.cpp, qdq.cpp),
// exactly the reference QuantizeLinear / DequantizeLinear (kernels/ref/quant.cpp) with a zero
// point of 0: y = saturate(round_half_even(x / scale)) (one float32 division; NaN gives -128)
// and x = float(q) * scale.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace lowbit::cpu {

inline void quantize_s8(const float* v, int8_t* y, int64_t n, float s) {
    int64_t i = 0;
#if defined(__AVX512F__)
    const __m512 vs = _mm512_set1_ps(s);
    for (; i + 16 <= n; i += 16) {
        __m512 q = _mm512_div_ps(_mm512_loadu_ps(v + i), vs);
        q = _mm512_roundscale_ps(q, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        // max(NaN, -128) is -128 (the second operand), as the reference maps NaN.
        q = _mm512_min_ps(_mm512_max_ps(q, _mm512_set1_ps(-128.0f)), _mm512_set1_ps(127.0f));
        _mm_storeu_si128(reinterpret_cast<__m128i*>(y + i),
                         _mm512_cvtsepi32_epi8(_mm512_cvtps_epi32(q)));
    }
#endif
    for (; i < n; ++i) {
        const float q = std::nearbyint(v[i] / s);
        y[i] = static_cast<int8_t>(std::isnan(q) ? -128.0f : std::clamp(q, -128.0f, 127.0f));
    }
}

inline void dequantize_s8(const int8_t* q, float* y, int64_t n, float s) {
    for (int64_t i = 0; i < n; ++i) y[i] = static_cast<float>(q[i]) * s;
}

}  // namespace lowbit::cpu
