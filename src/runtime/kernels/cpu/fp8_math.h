// Per-tensor FP8 E4M3FN arithmetic shared by the FP8 fast ops (fp8conv.cpp, qdq_fp8.cpp),
// exactly the reference QuantizeLinear / DequantizeLinear (kernels/ref/quant.cpp) with a zero
// point of 0: y = float_to_fp8(x / scale, saturate) (one float32 division) and
// x = fp8_to_float(q) * scale; and E4M3FN codes as bfloat16 (exact) for the bf16 convs.
// The AVX-512 loops are the scalar functions of core/half.h written out 16 (32) lanes at a
// time; tests/kernels_fp8_math_test.cpp compares them on every code and on millions of floats.
#pragma once

#include <array>
#include <bit>
#include <cstdint>

#include "core/half.h"

#if defined(__AVX512F__) && defined(__AVX512BW__)
#include <immintrin.h>
#endif

namespace lowbit::cpu {

namespace fp8_math_detail {
constexpr std::array<uint16_t, 256> make_bf16_table() {
    std::array<uint16_t, 256> t{};
    for (size_t c = 0; c < 256; ++c) {
        t[c] =
            static_cast<uint16_t>(std::bit_cast<uint32_t>(fp8_table<DType::Float8E4M3FN>[c]) >> 16);
    }
    return t;
}
}  // namespace fp8_math_detail

// bfloat16 bits of every E4M3FN code: its float32 value's upper half (the lower is zero).
alignas(64) inline constexpr std::array<uint16_t, 256> kE4M3Bf16 =
    fp8_math_detail::make_bf16_table();

#if defined(__AVX512F__) && defined(__AVX512BW__)
// 32 codes (widened to 16-bit lanes) to bfloat16 bits: magnitudes 0..127 from four registers of
// 32 words (bit 6 picks the pair), bit 7 is the sign.
struct E4M3Bf16Lut {
    __m512i t0 = _mm512_load_si512(kE4M3Bf16.data());
    __m512i t1 = _mm512_load_si512(kE4M3Bf16.data() + 32);
    __m512i t2 = _mm512_load_si512(kE4M3Bf16.data() + 64);
    __m512i t3 = _mm512_load_si512(kE4M3Bf16.data() + 96);
    __m512i convert(__m512i v) const {
        const __m512i lo = _mm512_permutex2var_epi16(t0, v, t1);  // index bits 0-5
        const __m512i hi = _mm512_permutex2var_epi16(t2, v, t3);
        const __m512i r =
            _mm512_mask_blend_epi16(_mm512_test_epi16_mask(v, _mm512_set1_epi16(0x40)), lo, hi);
        return _mm512_or_si512(r,
                               _mm512_slli_epi16(_mm512_and_si512(v, _mm512_set1_epi16(0x80)), 8));
    }
};
#endif

// E4M3FN codes to bfloat16 bits, exactly.
inline void e4m3_to_bf16(const uint8_t* x, uint16_t* y, int64_t n) {
    int64_t i = 0;
#if defined(__AVX512F__) && defined(__AVX512BW__)
    const E4M3Bf16Lut lut;
    for (; i + 32 <= n; i += 32) {
        const __m512i v =
            _mm512_cvtepu8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + i)));
        _mm512_storeu_si512(y + i, lut.convert(v));
    }
#endif
    for (; i < n; ++i) y[i] = kE4M3Bf16[x[i]];
}

// DequantizeLinear: fp8_to_float(q[i]) * s.
inline void dequantize_e4m3(const uint8_t* q, float* y, int64_t n, float s) {
    int64_t i = 0;
#if defined(__AVX512F__) && defined(__AVX512BW__)
    const E4M3Bf16Lut lut;
    const __m512 vs = _mm512_set1_ps(s);
    for (; i + 32 <= n; i += 32) {
        const __m512i v =
            _mm512_cvtepu8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(q + i)));
        const __m512i b = lut.convert(v);
        const __m512i lo = _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm512_castsi512_si256(b)), 16);
        const __m512i hi =
            _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm512_extracti64x4_epi64(b, 1)), 16);
        _mm512_storeu_ps(y + i, _mm512_mul_ps(_mm512_castsi512_ps(lo), vs));
        _mm512_storeu_ps(y + i + 16, _mm512_mul_ps(_mm512_castsi512_ps(hi), vs));
    }
#endif
    const float* tab = fp8_table<DType::Float8E4M3FN>.data();
    for (; i < n; ++i) y[i] = tab[q[i]] * s;
}

// QuantizeLinear: float_to_fp8_fast<Float8E4M3FN>(v[i] / s, saturate), bit for bit.
inline void quantize_e4m3(const float* v, uint8_t* y, int64_t n, float s, bool saturate) {
    int64_t i = 0;
#if defined(__AVX512F__) && defined(__AVX512BW__)
    const __m512 vs = _mm512_set1_ps(s);
    const __m512i abs_mask = _mm512_set1_epi32(0x7FFFFFFF);
    const __m512i one = _mm512_set1_epi32(1);
    const __m512i half_m1 = _mm512_set1_epi32(0x7FFFF);       // 2^19 - 1: RNE on 20 dropped bits
    const __m512i rebias = _mm512_set1_epi32(120 << 3);       // (127 - 7) in code units
    const __m512i min_normal = _mm512_set1_epi32(121 << 23);  // bits of 2^-6
    const __m512 magic = _mm512_set1_ps(16384.0f);            // 2^14: float spacing 2^-9 there
    const __m512i max_code = _mm512_set1_epi32(0x7E);
    const __m512i inf = _mm512_set1_epi32(0x7F800000);
    const __m512i over = _mm512_set1_epi32(saturate ? 0x7E : 0x7F);  // OR'd with the sign
    const __m512i nan = _mm512_set1_epi32(0x7F);
    for (; i + 16 <= n; i += 16) {
        const __m512i u = _mm512_castps_si512(_mm512_div_ps(_mm512_loadu_ps(v + i), vs));
        const __m512i sign = _mm512_and_si512(_mm512_srli_epi32(u, 24), _mm512_set1_epi32(0x80));
        const __m512i a = _mm512_and_si512(u, abs_mask);
        const __m512i odd = _mm512_and_si512(_mm512_srli_epi32(a, 20), one);
        const __m512i rounded =
            _mm512_srli_epi32(_mm512_add_epi32(_mm512_add_epi32(a, half_m1), odd), 20);
        const __m512i sub =
            _mm512_sub_epi32(_mm512_castps_si512(_mm512_add_ps(_mm512_castsi512_ps(a), magic)),
                             _mm512_castps_si512(magic));
        const __m512i code = _mm512_mask_blend_epi32(_mm512_cmplt_epu32_mask(a, min_normal),
                                                     _mm512_sub_epi32(rounded, rebias), sub);
        __m512i out = _mm512_or_si512(sign, code);
        // Past the largest finite value (inf included): +-448 or NaN (the sign kept only when
        // saturating, as the scalar code does); NaN inputs: 0x7F.
        const __m512i over_v =
            saturate ? _mm512_or_si512(sign, over) : (/* no-inf type: NaN */ nan);
        out = _mm512_mask_mov_epi32(out, _mm512_cmpgt_epu32_mask(code, max_code), over_v);
        out = _mm512_mask_mov_epi32(out, _mm512_cmpeq_epi32_mask(a, inf),
                                    _mm512_or_si512(sign, over));
        out = _mm512_mask_mov_epi32(out, _mm512_cmpgt_epu32_mask(a, inf), nan);
        _mm_storeu_si128(reinterpret_cast<__m128i*>(y + i), _mm512_cvtepi32_epi8(out));
    }
#endif
    for (; i < n; ++i) y[i] = float_to_fp8_fast<DType::Float8E4M3FN>(v[i] / s, saturate);
}

}  // namespace lowbit::cpu
