#include "runtime/kernels/cpu/qconv_dw.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <utility>

#if defined(__AVX512F__) && defined(__AVX512BW__)
#include <immintrin.h>
#define LOWBIT_DW_AVX512 1
// GCC 12 reports its own _mm512_undefined_* inside these intrinsics as "(maybe) uninitialized"
// (GCC bug 105593), as in vmath.h.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif

namespace lowbit::cpu {
namespace {

// Taps a window may have: 64 products of at most 2^14 stay below 2^20, exact in float32.
constexpr int64_t kMaxTaps = 64;
// Where it measured faster than oneDNN's jit_int8 depthwise kernel (bundled YOLOv10m INT8 at 1
// thread, Zen 4, LOWBIT_PROFILE=1 in alternate runs): its 25 stride-1 3x3 convs (48 to 144
// channels, 10x10 to 40x40 maps) took 0.70 -> 0.56 ms a run, the sums alone 0.36 ns an output
// (48 channels, 40x40); stride 2 is refused: there every output reads 4 input pixels, each
// widened to float32 first, and two of its three SCDown convs took 0.052 -> 0.078 ms.
constexpr int64_t kMaxStride = 1;
// Output pixels a call computes at once: their accumulators, a weight vector and an input
// vector in the 32 registers, with room to spare.
constexpr int kPixels = 12;

#if LOWBIT_DW_AVX512
// P consecutive output pixels of one row, one block of 16 channels. in: the first pixel's first
// tap in the padded float32 rows (pixels `step` floats apart, rows `row` floats, taps along a
// row `cp` floats); w: the block's weights of tap 0 (taps `w_step` floats apart); scale: the
// block's 16 output scales.
template <int P>
void dw_pixels(const float* in, int64_t step, int64_t row, int64_t cp, int64_t kh, int64_t kw,
               const float* w, int64_t w_step, const float* scale, float* out, int64_t width,
               __mmask16 mask) {
    const __m512 s = _mm512_load_ps(scale);
    __m512 acc[P];
#pragma GCC unroll 16
    for (int p = 0; p < P; ++p) acc[p] = _mm512_setzero_ps();
    for (int64_t i = 0; i < kh; ++i) {
        const float* r = in + i * row;
        for (int64_t j = 0; j < kw; ++j, w += w_step) {
            const __m512 wv = _mm512_load_ps(w);
            const float* t = r + j * cp;
#pragma GCC unroll 16
            for (int p = 0; p < P; ++p) {
                acc[p] = _mm512_fmadd_ps(_mm512_loadu_ps(t + p * step), wv, acc[p]);
            }
        }
    }
#pragma GCC unroll 16
    for (int p = 0; p < P; ++p)
        _mm512_mask_storeu_ps(out + p * width, mask, _mm512_mul_ps(acc[p], s));
}

using DwFn = void (*)(const float*, int64_t, int64_t, int64_t, int64_t, int64_t, const float*,
                      int64_t, const float*, float*, int64_t, __mmask16);

template <size_t... N>
constexpr std::array<DwFn, sizeof...(N)> dw_table(std::index_sequence<N...>) {
    return {&dw_pixels<static_cast<int>(N) + 1>...};
}
// kDw[n - 1] computes n pixels.
constexpr auto kDw = dw_table(std::make_index_sequence<kPixels>());
#endif

}  // namespace

bool DirectInt8Dw::init(const Shape& x, const int8_t* w, const Window& h, const Window& wd,
                        const std::vector<float>& scales) {
#if !LOWBIT_DW_AVX512
    (void)x, (void)w, (void)h, (void)wd, (void)scales;
    return false;
#else
    if (x.size() != 4 || x[1] < 1 || h.dilation != 1 || wd.dilation != 1 || h.k * wd.k > kMaxTaps ||
        h.stride > kMaxStride || wd.stride > kMaxStride ||
        scales.size() != static_cast<size_t>(x[1]) || h.out < 1 || wd.out < 1) {
        return false;
    }
    c_ = x[1];
    h_ = h;
    w_ = wd;
    blocks_ = (c_ + 15) / 16;
    cols_ = std::max(w_.pad_begin + w_.in, (w_.out - 1) * w_.stride + w_.k);
    const int64_t taps = h_.k * w_.k;
    wpack_.assign(static_cast<size_t>(taps * blocks_), Lanes{});
    scale_.assign(static_cast<size_t>(blocks_), Lanes{});
    for (int64_t c = 0; c < c_; ++c) {
        for (int64_t t = 0; t < taps; ++t) {
            wpack_[static_cast<size_t>(t * blocks_ + c / 16)].v[c % 16] =
                static_cast<float>(w[c * taps + t]);
        }
        scale_[static_cast<size_t>(c / 16)].v[c % 16] = scales[static_cast<size_t>(c)];
    }
    return true;
#endif
}

size_t DirectInt8Dw::scratch_bytes(int64_t rows) const {
    return static_cast<size_t>(((rows - 1) * h_.stride + h_.k) * cols_ * blocks_ * 16) *
           sizeof(float);
}

void DirectInt8Dw::run(const int8_t* x, int64_t oh0, int64_t oh1, int64_t oc0, int64_t oc1,
                       float* out, void* scratch) const {
#if LOWBIT_DW_AVX512
    // The input rows the chunk reads as float32, 16 * blocks_ channels a pixel (0 past c_),
    // padded with zeros (code 0) on every side.
    const int64_t cp = 16 * blocks_, row = cols_ * cp;
    auto* buf = static_cast<float*>(scratch);
    const int64_t first = oh0 * h_.stride - h_.pad_begin;
    const int64_t rows = (oh1 - oh0 - 1) * h_.stride + h_.k;
    const auto tail = static_cast<__mmask16>(0xffffu >> (16 * blocks_ - c_));
    for (int64_t r = 0; r < rows; ++r) {
        float* d = buf + r * row;
        const int64_t iy = first + r;
        if (iy < 0 || iy >= h_.in) {
            std::memset(d, 0, static_cast<size_t>(row) * sizeof(float));
            continue;
        }
        std::memset(d, 0, static_cast<size_t>(w_.pad_begin * cp) * sizeof(float));
        const int8_t* s = x + iy * w_.in * c_;
        float* p = d + w_.pad_begin * cp;
        for (int64_t ix = 0; ix < w_.in; ++ix, s += c_) {
            for (int64_t b = 0; b < blocks_; ++b, p += 16) {
                const __mmask16 m = b + 1 == blocks_ ? tail : __mmask16(0xffff);
                const __m128i codes = _mm_maskz_loadu_epi8(m, s + 16 * b);
                _mm512_storeu_ps(p, _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(codes)));
            }
        }
        std::memset(p, 0, static_cast<size_t>(d + row - p) * sizeof(float));
    }
    const int64_t b0 = oc0 / 16, b1 = (oc1 + 15) / 16, width = oc1 - oc0;
    const int64_t step = w_.stride * cp;
    for (int64_t oy = oh0; oy < oh1; ++oy) {
        const float* in = buf + (oy - oh0) * h_.stride * row;
        float* o = out + (oy - oh0) * w_.out * width;
        for (int64_t b = b0; b < b1; ++b) {
            const auto mask = b + 1 == b1 ? static_cast<__mmask16>(0xffffu >> (16 * b1 - oc1))
                                          : __mmask16(0xffff);
            const float* wb = wpack_[static_cast<size_t>(b)].v;
            const float* scale = scale_[static_cast<size_t>(b)].v;
            float* ob = o + 16 * (b - b0);
            for (int64_t ox = 0; ox < w_.out; ox += kPixels) {
                const int64_t n = std::min<int64_t>(kPixels, w_.out - ox);
                kDw[static_cast<size_t>(n - 1)](in + ox * step + 16 * b, step, row, cp, h_.k, w_.k,
                                                wb, 16 * blocks_, scale, ob + ox * width, width,
                                                mask);
            }
        }
    }
#else
    (void)x, (void)oh0, (void)oh1, (void)oc0, (void)oc1, (void)out, (void)scratch;
#endif
}

}  // namespace lowbit::cpu

#if LOWBIT_DW_AVX512
#pragma GCC diagnostic pop
#endif
