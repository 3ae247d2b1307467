#include "runtime/kernels/cpu/qconv_epilogue.h"

#include <algorithm>
#include <numeric>

#include "runtime/kernels/cpu/qdq_math.h"
#include "runtime/kernels/cpu/vmath.h"

namespace lowbit::cpu {

QConvEpilogue::QConvEpilogue(std::vector<float> bias, int64_t channels, bool silu,
                             Residual residual, float r_scale, bool out_q, float y_scale)
    : bias_(std::move(bias)),
      channels_(channels),
      silu_(silu),
      residual_(residual),
      r_scale_(r_scale),
      out_q_(out_q),
      y_scale_(y_scale) {
    if (!bias_.empty()) {
        const int64_t period = std::lcm<int64_t>(channels_, 16);
        bias_row_.resize(static_cast<size_t>(period));
        for (int64_t i = 0; i < period; ++i) {
            bias_row_[static_cast<size_t>(i)] = bias_[static_cast<size_t>(i % channels_)];
        }
    }
}

void QConvEpilogue::run_reference(float* acc, int64_t pixels, const void* res, int8_t* y) const {
    const int64_t len = pixels * channels_;
    if (!bias_.empty()) {
        for (int64_t p = 0; p < pixels; ++p) {
            float* a = acc + p * channels_;
            for (int64_t m = 0; m < channels_; ++m) a[m] += bias_[static_cast<size_t>(m)];
        }
    }
    if (silu_) silu_f32(acc, acc, len);
    if (residual_ == Residual::Float) {
        const float* r = static_cast<const float*>(res);
        for (int64_t i = 0; i < len; ++i) acc[i] += r[i];
    } else if (residual_ == Residual::Codes) {
        // DequantizeLinear into a buffer, then the Add: two roundings, as the simulation's nodes.
        const int8_t* r = static_cast<const int8_t*>(res);
        float d[256];
        for (int64_t i0 = 0; i0 < len; i0 += 256) {
            const int64_t n = std::min<int64_t>(256, len - i0);
            dequantize_s8(r + i0, d, n, r_scale_);
            for (int64_t i = 0; i < n; ++i) acc[i0 + i] += d[i];
        }
    }
    if (out_q_) quantize_s8(acc, y, len, y_scale_);
}

#if defined(__AVX512F__)

// GCC bug 105593, as in vmath.h.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

namespace {

// The explicitly rounded forms keep the compiler from contracting a multiplication and the
// following addition into one fused multiply-add (the simulation rounds in between).
inline __m512 add_rounded(__m512 a, __m512 b) {
    return _mm512_add_round_ps(a, b, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
}
inline __m512 mul_rounded(__m512 a, __m512 b) {
    return _mm512_mul_round_ps(a, b, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
}

template <bool kBias, bool kSilu, QConvEpilogue::Residual kRes, bool kOutQ>
void fused(float* acc, int64_t len, const float* bias_row, int64_t period, const void* res,
           float r_scale, int8_t* y, float y_scale) {
    const __m512 vs = _mm512_set1_ps(y_scale);
    const __m512 vy = _mm512_set1_ps(1.0f / y_scale);
    const __m512 rs = _mm512_set1_ps(r_scale);
    int64_t j = 0;  // position in the bias period
    for (int64_t i = 0; i < len; i += 16) {
        const __mmask16 m = len - i >= 16 ? __mmask16(0xffff) : __mmask16((1u << (len - i)) - 1);
        __m512 v = _mm512_maskz_loadu_ps(m, acc + i);
        if constexpr (kBias) {
            v = _mm512_add_ps(v, _mm512_loadu_ps(bias_row + j));
            j += 16;
            if (j == period) j = 0;
        }
        if constexpr (kSilu) v = _mm512_mul_ps(v, sigmoid512(v));
        if constexpr (kRes == QConvEpilogue::Residual::Float) {
            v = add_rounded(v, _mm512_maskz_loadu_ps(m, static_cast<const float*>(res) + i));
        } else if constexpr (kRes == QConvEpilogue::Residual::Codes) {
            const __m128i c = _mm_maskz_loadu_epi8(m, static_cast<const int8_t*>(res) + i);
            const __m512 d = mul_rounded(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(c)), rs);
            v = add_rounded(v, d);
        }
        if constexpr (kOutQ) {
            _mm512_mask_cvtsepi32_storeu_epi8(y + i, m, quantize16_s32_recip(v, vs, vy));
        } else {
            _mm512_mask_storeu_ps(acc + i, m, v);
        }
    }
}

using Fused = void (*)(float*, int64_t, const float*, int64_t, const void*, float, int8_t*, float);

template <bool kBias, bool kSilu, QConvEpilogue::Residual kRes>
Fused pick_out(bool out_q) {
    return out_q ? &fused<kBias, kSilu, kRes, true> : &fused<kBias, kSilu, kRes, false>;
}

template <bool kBias, bool kSilu>
Fused pick_res(QConvEpilogue::Residual r, bool out_q) {
    switch (r) {
        case QConvEpilogue::Residual::Float:
            return pick_out<kBias, kSilu, QConvEpilogue::Residual::Float>(out_q);
        case QConvEpilogue::Residual::Codes:
            return pick_out<kBias, kSilu, QConvEpilogue::Residual::Codes>(out_q);
        default: return pick_out<kBias, kSilu, QConvEpilogue::Residual::None>(out_q);
    }
}

Fused pick(bool bias, bool silu, QConvEpilogue::Residual r, bool out_q) {
    if (bias) return silu ? pick_res<true, true>(r, out_q) : pick_res<true, false>(r, out_q);
    return silu ? pick_res<false, true>(r, out_q) : pick_res<false, false>(r, out_q);
}

}  // namespace

void QConvEpilogue::run(float* acc, int64_t pixels, const void* res, int8_t* y) const {
    if (out_q_ && !exact_reciprocal_ok(y_scale_)) {
        run_reference(acc, pixels, res, y);
        return;
    }
    const Fused f = pick(!bias_.empty(), silu_, residual_, out_q_);
    f(acc, pixels * channels_, bias_row_.data(), static_cast<int64_t>(bias_row_.size()), res,
      r_scale_, y, y_scale_);
}

#pragma GCC diagnostic pop

#else

void QConvEpilogue::run(float* acc, int64_t pixels, const void* res, int8_t* y) const {
    run_reference(acc, pixels, res, y);
}

#endif

}  // namespace lowbit::cpu
