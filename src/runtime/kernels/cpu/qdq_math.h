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

#if defined(__AVX512F__)
// A quantization scale in every lane of a vector, with its float32 reciprocal (NaN where that
// is not a normal number, which sends every vector to the division).
struct QScale16 {
    explicit QScale16(float scale)
        : s(_mm512_set1_ps(scale)),
          inv(_mm512_set1_ps(std::isnormal(1.0f / scale) ? 1.0f / scale : std::nanf(""))) {}
    __m512 s, inv;
};

// 16 values to 16 codes, as int32 lanes that the caller narrows to int8 with signed saturation
// (vpmovsdb); with that narrowing, the arithmetic of quantize_s8, bit for bit.
//
// The division is the slow part (vdivps: about 10 cycles a vector), so the quotient is first
// taken as t = v * (1/s). That product is within 1.5 * 2^-23 relative of the exact v / s, and
// the correctly rounded quotient within 2^-24, so for |v / s| < 2^11 they are less than 2^-11
// apart: round-half-even gives the same integer unless t lies within 2^-11 of a half-integer.
// Only a vector with such a lane (about 0.1% of lanes), or with a NaN, an infinity or
// |t| >= 2^31 (which convert to INT_MIN, far from t), is divided; beyond 2^11 both saturate.
inline __m512i quantize16_s32(__m512 v, const QScale16& vs) {
    constexpr int kRound = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;
    const __m512 t = _mm512_mul_ps(v, vs.inv);
    const __m512i q = _mm512_cvt_roundps_epi32(t, kRound);
    const __m512 dist = _mm512_abs_ps(_mm512_sub_ps(t, _mm512_cvtepi32_ps(q)));
    if (_mm512_cmp_ps_mask(dist, _mm512_set1_ps(0.5f - 0x1p-11f), _CMP_LT_OQ) == 0xffff) {
        return q;
    }
    __m512 r = _mm512_roundscale_ps(_mm512_div_ps(v, vs.s), kRound);
    // max(NaN, -128) is -128 (the second operand), as the reference maps NaN.
    r = _mm512_min_ps(_mm512_max_ps(r, _mm512_set1_ps(-128.0f)), _mm512_set1_ps(127.0f));
    return _mm512_cvtps_epi32(r);
}
#endif

inline void quantize_s8(const float* v, int8_t* y, int64_t n, float s) {
    int64_t i = 0;
#if defined(__AVX512F__)
    const QScale16 vs(s);
    // The last n % 16 values go through the same vector arithmetic under a mask: the per-pixel
    // rows of an NHWC Concat part are often 8 to 24 channels, where a scalar tail (one division
    // and one nearbyint per value) would cost more than the vector body.
    for (; i < n; i += 16) {
        const __mmask16 m = n - i >= 16 ? __mmask16(0xffff) : __mmask16((1u << (n - i)) - 1);
        _mm512_mask_cvtsepi32_storeu_epi8(y + i, m,
                                          quantize16_s32(_mm512_maskz_loadu_ps(m, v + i), vs));
    }
#endif
    for (; i < n; ++i) {
        const float q = std::nearbyint(v[i] / s);
        y[i] = static_cast<int8_t>(std::isnan(q) ? -128.0f : std::clamp(q, -128.0f, 127.0f));
    }
}

// y[i] = table[x[i] + 128]: the requantization of int8 codes through a 256-entry table (built
// with dequantize_s8 and quantize_s8, so it equals DequantizeLinear -> QuantizeLinear). With
// AVX512-VBMI, 64 codes per step: two 128-entry permutes, the code's sign bit picks one.
inline void requantize_s8(const int8_t* table, const int8_t* x, int8_t* y, int64_t n) {
    int64_t i = 0;
#if defined(__AVX512VBMI__)
    const __m512i t0 = _mm512_loadu_si512(table), t1 = _mm512_loadu_si512(table + 64);
    const __m512i t2 = _mm512_loadu_si512(table + 128), t3 = _mm512_loadu_si512(table + 192);
    const __m512i flip = _mm512_set1_epi8(static_cast<char>(0x80));
    for (; i < n; i += 64) {
        const __mmask64 m = n - i >= 64 ? ~__mmask64(0) : (__mmask64(1) << (n - i)) - 1;
        const __m512i idx = _mm512_xor_si512(_mm512_maskz_loadu_epi8(m, x + i), flip);
        const __m512i lo = _mm512_permutex2var_epi8(t0, idx, t1);  // index bits 0..6
        const __m512i hi = _mm512_permutex2var_epi8(t2, idx, t3);
        _mm512_mask_storeu_epi8(y + i, m, _mm512_mask_blend_epi8(_mm512_movepi8_mask(idx), lo, hi));
    }
#endif
    for (; i < n; ++i) y[i] = table[static_cast<uint8_t>(x[i]) ^ 0x80u];
}

inline void dequantize_s8(const int8_t* q, float* y, int64_t n, float s) {
    for (int64_t i = 0; i < n; ++i) y[i] = static_cast<float>(q[i]) * s;
}

}  // namespace lowbit::cpu
