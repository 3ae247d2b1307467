// Peak rate of the multiply-add instructions lowbit's kernels are built on, on one core: int8
// (vpdpbusd, 64 multiply-adds a zmm instruction), float32 (vfmadd231ps, 16) and bf16 (vdpbf16ps,
// 32), each as 12 independent accumulator chains (enough to hide the latency), 1.2e9 instructions.
// Used for the README's account of what INT8 and FP8 can gain over FP32 on a given CPU.
//
//   g++ -O2 -march=native bench/isa_peak.cpp -o /tmp/isa_peak && /tmp/isa_peak
//
// Needs AVX-512 VNNI and BF16 (Cooper Lake, Sapphire Rapids, Zen 4 or later).
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

volatile float g_sink = 0;

// Giga-instructions a second of `acc = op(acc, x)` in kChains independent chains. x goes
// through an empty asm every step, so the compiler can neither fold the loop nor hoist the op;
// `reduce` turns each chain's result into a float kept in g_sink.
template <class V, class X, class Op, class Reduce>
double chains(V init, X x, Op op, Reduce reduce) {
    V acc[kChains];
    for (int i = 0; i < kChains; ++i) acc[i] = init;
    const auto t0 = std::chrono::steady_clock::now();
    for (long k = 0; k < kIters; ++k) {
#pragma GCC unroll 12
        for (int i = 0; i < kChains; ++i) acc[i] = op(acc[i], x);
        __asm__ volatile("" : "+v"(x));
    }
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    for (int i = 0; i < kChains; ++i) g_sink = g_sink + reduce(acc[i]);
    return static_cast<double>(kIters) * kChains / s / 1e9;
}

}  // namespace

int main() {
    const auto int_sum = [](__m512i v) { return static_cast<float>(_mm512_reduce_add_epi32(v)); };
    const auto float_sum = [](__m512 v) { return _mm512_reduce_add_ps(v); };
    const __m512bh one_bf16 = (__m512bh)_mm512_set1_epi32(0x3f803f80);  // bf16 1.0 pairs
    for (int rep = 0; rep < 3; ++rep) {
        const double vnni = chains(
            _mm512_set1_epi32(1), _mm512_set1_epi32(0x01010101),
            [](__m512i acc, __m512i x) {
                return _mm512_dpbusd_epi32(acc, x, _mm512_set1_epi32(0x02020202));
            },
            int_sum);
        const double fma = chains(
            _mm512_set1_ps(1.0f), _mm512_set1_ps(1.0001f),
            [](__m512 acc, __m512 x) { return _mm512_fmadd_ps(acc, x, _mm512_set1_ps(0.9999f)); },
            float_sum);
        const double bf16 = chains(
            _mm512_set1_ps(1.0f), one_bf16,
            [&](__m512 acc, __m512bh x) { return _mm512_dpbf16_ps(acc, x, one_bf16); }, float_sum);
        std::printf(
            "vpdpbusd %.2f G/s = %.0f G int8 multiply-adds/s | vfmadd231ps %.2f G/s = %.0f G "
            "float32 | vdpbf16ps %.2f G/s = %.0f G bf16 | int8 / float32 %.2f\n",
            vnni, vnni * 64, fma, fma * 16, bf16, bf16 * 32, vnni * 64 / (fma * 16));
    }
}
