// Peak rate of the multiply-add instructions lowbit's kernels are built on, on one core: int8
// (vpdpbusd, 64 multiply-adds a zmm instruction), float32 (vfmadd231ps, 16) and bf16 (vdpbf16ps,
// 32), each as 12 independent accumulator chains (enough to hide the latency), 1.2e9 instructions.
// Used for the README's account of what INT8 and FP8 can gain over FP32 on a given CPU.
//
//   g++ -O2 -march=native bench/isa_peak.cpp -o /tmp/isa_peak && /tmp/isa_peak
//
// Needs AVX-512 VNNI and BF16 (Cascade Lake / Cooper Lake / Zen 4 / Sapphire Rapids or later).
#include <immintrin.h>

#include <chrono>
#include <cstdio>

// GCC 12 reports its own _mm512_undefined_* inside the reduce intrinsics as uninitialized (GCC
// bug 105593), as in src/runtime/kernels/cpu/vmath.h.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

namespace {

constexpr long kIters = 100000000;
constexpr int kChains = 12;

template <class Step>
double giga_per_second(Step step) {
    const auto t0 = std::chrono::steady_clock::now();
    step();
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return static_cast<double>(kIters) * kChains / s / 1e9;
}

volatile float g_sink = 0;

}  // namespace

int main() {
    for (int rep = 0; rep < 3; ++rep) {
        const double vnni = giga_per_second([] {
            __m512i acc[kChains];
            for (int i = 0; i < kChains; ++i) acc[i] = _mm512_set1_epi32(i);
            __m512i x = _mm512_set1_epi32(0x01010101);
            const __m512i w = _mm512_set1_epi32(0x02020202);
            for (long k = 0; k < kIters; ++k) {
#pragma GCC unroll 12
                for (int i = 0; i < kChains; ++i) acc[i] = _mm512_dpbusd_epi32(acc[i], x, w);
                __asm__ volatile("" : "+v"(x));  // keeps the loop from being folded
            }
            __m512i s = acc[0];
            for (int i = 1; i < kChains; ++i) s = _mm512_add_epi32(s, acc[i]);
            g_sink = static_cast<float>(_mm512_reduce_add_epi32(s));
        });
        const double fma = giga_per_second([] {
            __m512 acc[kChains];
            for (int i = 0; i < kChains; ++i) acc[i] = _mm512_set1_ps(static_cast<float>(i));
            __m512 x = _mm512_set1_ps(1.0001f);
            const __m512 w = _mm512_set1_ps(0.9999f);
            for (long k = 0; k < kIters; ++k) {
#pragma GCC unroll 12
                for (int i = 0; i < kChains; ++i) acc[i] = _mm512_fmadd_ps(acc[i], x, w);
                __asm__ volatile("" : "+v"(x));
            }
            __m512 s = acc[0];
            for (int i = 1; i < kChains; ++i) s = _mm512_add_ps(s, acc[i]);
            g_sink = _mm512_reduce_add_ps(s);
        });
        const double bf16 = giga_per_second([] {
            __m512 acc[kChains];
            for (int i = 0; i < kChains; ++i) acc[i] = _mm512_set1_ps(static_cast<float>(i));
            __m512bh x = (__m512bh)_mm512_set1_epi32(0x3f803f80);  // bf16 1.0 pairs
            const __m512bh w = (__m512bh)_mm512_set1_epi32(0x3f803f80);
            for (long k = 0; k < kIters; ++k) {
#pragma GCC unroll 12
                for (int i = 0; i < kChains; ++i) acc[i] = _mm512_dpbf16_ps(acc[i], x, w);
                __asm__ volatile("" : "+v"(x));
            }
            __m512 s = acc[0];
            for (int i = 1; i < kChains; ++i) s = _mm512_add_ps(s, acc[i]);
            g_sink = _mm512_reduce_add_ps(s);
        });
        std::printf(
            "vpdpbusd %.2f G/s = %.0f G int8 multiply-adds/s | vfmadd231ps %.2f G/s = %.0f G "
            "float32 | vdpbf16ps %.2f G/s = %.0f G bf16 | int8 / float32 %.2f\n",
            vnni, vnni * 64, fma, fma * 16, bf16, bf16 * 32, vnni * 64 / (fma * 16));
    }
}
