// Vectorized float32 math for the optimized CPU kernels: exp, sigmoid and SiLU over arrays.
//
// exp uses the Cephes expf scheme (range reduction by n = round(x / ln 2) with ln 2 split into a
// high and a low part, a degree-6 polynomial on the remainder, then scaling by 2^n through the
// exponent bits); its relative error is a few ulp over the clamped range [-87.3, 88]. Sigmoid
// is 1 / (1 + exp(-x)) with the reciprocal from vrcp14ps refined by one Newton step (relative
// error about 2^-28 before rounding). Sigmoid (and so SiLU, the activation after nearly every
// YOLO conv, where it is a third to a half of an int8 conv step) takes its exp(-x) from a
// shorter form of the same scheme (exp_neg512). Both stay within 1e-6 relative of the
// reference kernels' std::exp-based results, far inside the 1e-4 the cross-checks allow.
//
// With AVX-512 the loops process 16 lanes at a time with a masked tail; without it they fall
// back to std::exp, so the library still builds with -DLOWBIT_NATIVE=OFF.
#pragma once

#include <cmath>
#include <cstdint>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace lowbit::cpu {

#if defined(__AVX512F__)

// GCC 12 reports its own _mm512_undefined_ps() inside these intrinsics as "maybe
// uninitialized" (GCC bug 105593); the code is fine.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

inline __m512 exp512(__m512 x) {
    const __m512 hi = _mm512_set1_ps(88.0f);
    const __m512 lo = _mm512_set1_ps(-87.3365478515625f);
    x = _mm512_max_ps(_mm512_min_ps(x, hi), lo);
    const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                          _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    // r = x - n * ln2, with ln2 = 0.693359375 - 2.12194440e-4 (Cephes C1, C2).
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    const __m512 r2 = _mm512_mul_ps(r, r);
    p = _mm512_fmadd_ps(p, r2, _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    // p * 2^n in one instruction (vscalefps); n is an integer-valued float in [-126, 127].
    return _mm512_scalef_ps(p, n);
}

// exp(-x), for sigmoid: x is clamped to [-88, 88] (beyond, 1 + exp(-x) is 1 or overflows the
// sigmoid's reciprocal to 0 either way; one vrangeps, or two ops without AVX512DQ), n =
// round(-x / ln 2) by the 1.5 * 2^23 shifter (an add rounds to an integer, half to even, as
// vrndscaleps would), u = x + n * ln 2 (Cody-Waite, the Cephes split of ln 2: n * C1 is exact),
// so -x = n * ln 2 - u with |u| <= ln2 / 2, and exp(-u) from a degree-6 polynomial in u whose
// odd coefficients carry the sign (no negation of x anywhere). The polynomial is a
// near-minimax relative fit of e^r on [-ln2/2, ln2/2] with the first two coefficients 1
// (iteratively reweighted least squares in float64): 3.8e-9 relative with its float32
// coefficients. 12 vector operations to exp512's 15 plus a negation. Measured over [-100, 100]
// in 1e-4 steps wherever the result is above 1e-30, SiLU's largest relative error against a
// float64 reference is 2.1e-7 (2.5e-7 with exp512). A degree-5 fit (one operation fewer,
// 1.1e-7 relative, SiLU 3.0e-7) moved the W4A8 bundled mAP of the int8 kernels and of the
// float simulation 0.0021 apart (tests/py/test_w4a8_kernels.py allows 0.002; 0.0012 before).
inline __m512 exp_neg512(__m512 x) {
#if defined(__AVX512DQ__)
    // The smaller magnitude of x and 88, with x's sign (imm8 0b0010). A NaN gives 88: SiLU's
    // x * sigmoid(x) brings it back, sigmoid_f32 puts it back (sigmoid512_nan).
    const __m512 s = _mm512_range_ps(x, _mm512_set1_ps(88.0f), 0x2);
#else
    const __m512 s =
        _mm512_max_ps(_mm512_min_ps(x, _mm512_set1_ps(88.0f)), _mm512_set1_ps(-88.0f));
#endif
    const __m512 shifter = _mm512_set1_ps(12582912.0f);  // 1.5 * 2^23
    const __m512 n = _mm512_sub_ps(
        _mm512_fnmadd_ps(s, _mm512_set1_ps(1.44269504088896341f), shifter), shifter);
    __m512 u = _mm512_fmadd_ps(n, _mm512_set1_ps(0.693359375f), s);
    u = _mm512_fmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), u);
    __m512 p = _mm512_set1_ps(1.381461276e-3f);
    p = _mm512_fmadd_ps(p, u, _mm512_set1_ps(-8.368710056e-3f));
    p = _mm512_fmadd_ps(p, u, _mm512_set1_ps(4.166838899e-2f));
    p = _mm512_fmadd_ps(p, u, _mm512_set1_ps(-1.666652113e-1f));
    p = _mm512_fmadd_ps(p, u, _mm512_set1_ps(4.999999404e-1f));
    p = _mm512_fmadd_ps(p, u, _mm512_set1_ps(-1.0f));
    p = _mm512_fmadd_ps(p, u, _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(p, n);
}

inline __m512 sigmoid512(__m512 x) {
    const __m512 d = _mm512_add_ps(_mm512_set1_ps(1.0f), exp_neg512(x));
    // 1/d by rcp14 plus one Newton-Raphson step: y' = y * (2 - d * y).
    const __m512 y = _mm512_rcp14_ps(d);
    return _mm512_mul_ps(y, _mm512_fnmadd_ps(d, y, _mm512_set1_ps(2.0f)));
}

// out[i] = exp(in[i]); in and out may alias.
inline void exp_f32(const float* in, float* out, int64_t n) {
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(out + i, exp512(_mm512_loadu_ps(in + i)));
    if (i < n) {
        const __mmask16 m = static_cast<__mmask16>((1u << (n - i)) - 1);
        _mm512_mask_storeu_ps(out + i, m, exp512(_mm512_maskz_loadu_ps(m, in + i)));
    }
}

// sigmoid512 with NaN lanes kept NaN (its clamp maps NaN to 88); SiLU gets them from x * .
inline __m512 sigmoid512_nan(__m512 x) {
    return _mm512_mask_mov_ps(sigmoid512(x), _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q), x);
}

inline void sigmoid_f32(const float* in, float* out, int64_t n) {
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        _mm512_storeu_ps(out + i, sigmoid512_nan(_mm512_loadu_ps(in + i)));
    }
    if (i < n) {
        const __mmask16 m = static_cast<__mmask16>((1u << (n - i)) - 1);
        _mm512_mask_storeu_ps(out + i, m, sigmoid512_nan(_mm512_maskz_loadu_ps(m, in + i)));
    }
}

// SiLU (x * sigmoid(x)), the activation of every YOLOv8/v10 Conv block.
inline void silu_f32(const float* in, float* out, int64_t n) {
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m512 x = _mm512_loadu_ps(in + i);
        _mm512_storeu_ps(out + i, _mm512_mul_ps(x, sigmoid512(x)));
    }
    if (i < n) {
        const __mmask16 m = static_cast<__mmask16>((1u << (n - i)) - 1);
        const __m512 x = _mm512_maskz_loadu_ps(m, in + i);
        _mm512_mask_storeu_ps(out + i, m, _mm512_mul_ps(x, sigmoid512(x)));
    }
}

#pragma GCC diagnostic pop

#else

inline void exp_f32(const float* in, float* out, int64_t n) {
    for (int64_t i = 0; i < n; ++i) out[i] = std::exp(in[i]);
}
inline void sigmoid_f32(const float* in, float* out, int64_t n) {
    for (int64_t i = 0; i < n; ++i) out[i] = 1.0f / (1.0f + std::exp(-in[i]));
}
inline void silu_f32(const float* in, float* out, int64_t n) {
    for (int64_t i = 0; i < n; ++i) out[i] = in[i] / (1.0f + std::exp(-in[i]));
}

#endif

}  // namespace lowbit::cpu
