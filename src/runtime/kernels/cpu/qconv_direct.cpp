#include "runtime/kernels/cpu/qconv_direct.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cstring>
#include <utility>

#if defined(__AVX512VNNI__) && defined(__AVX512BW__)
#include <immintrin.h>
#define LOWBIT_DIRECT_VNNI 1
#endif

namespace lowbit::cpu {
namespace {

// Where this kernel measured faster than oneDNN's (paired per-step profiles of the bundled
// YOLOv10m's int8 convs, 1 and 2 threads, each conv on either kernel in alternate runs):
//  - up to 4 blocks of 16 output channels and 64 4-byte groups a pixel (a 3x3 conv of 28 input
//    channels, a 1x1 of 256): the stem (3 channels) and the 12- to 24-channel layers, e.g.
//    model.1 (12 -> 24, 3x3 s2) 0.30 -> 0.22 ms at 2 threads; 3x3 convs of 48 input channels
//    (108 groups) were slower (0.045 -> 0.070 ms) than oneDNN's AMX kernels;
//  - 5 to 9 blocks (up to 144 channels) where the work per call is small, maps of at most
//    1600 pixels with at most 36 groups: the 1x1 convs on 10x10 maps took 0.006-0.012 ms less
//    each (of 0.02-0.035), 96 -> 96 channels at 20x20 up to 0.010 less; 1x1 convs of 192 and
//    240 input channels (48 and 60 groups) at 20x20 took up to 0.020 ms more at one thread;
//  - at least half of the lanes used: YOLOv10m's DFL conv (16 -> 1 channel over 4 x 8400
//    pixels) took 0.08 ms more with 1 of 16 lanes.
// Those were against oneDNN's AMX kernels (Sapphire Rapids). Where oneDNN has no AMX (Zen 4:
// its int8 kernels run on AVX-512 VNNI, as this one does), the 5- to 9-block rule takes any
// number of groups: on Zen 4, paired per-step profiles (4 to 8 rounds of each setting), every
// conv it adds was faster, at 1 and 2 threads: the bundled model's 3x3 convs of 48 to 144 input
// channels on 10x10 to 40x40 maps and 1x1 convs of 192 to 288 on 10x10 and 20x20 (27 steps,
// 0.089 ms a run less at 1 thread, 0.063 at 2), the full-width model's head convs (3x3 384 -> 64
// on 40x40 1.74 -> 1.61 ms, 576 -> 64 on 20x20 0.68 -> 0.60 at 1 thread). Wider or larger convs
// stay with oneDNN there too: 1x1 convs of 288 to 576 channels on 20x20 took 3-9 % more at 2
// threads, 3x3 convs on 160x160 1-2 % more.
constexpr int64_t kMaxBlocks = 4;
constexpr int64_t kMaxGroups = 64;
constexpr int64_t kMaxWideBlocks = 9;
constexpr int64_t kMaxWideGroups = 36;  // against AMX only
constexpr int64_t kMaxWidePixels = 1600;
// Blocks one call of dot_pixels computes (their accumulators fill the registers).
constexpr int64_t kDotBlocks = 4;

#if LOWBIT_DIRECT_VNNI
// GCC 12 reports its own _mm512_undefined_* inside these intrinsics as "(maybe) uninitialized"
// (GCC bug 105593), as in vmath.h.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

// Pixels a call computes at once for nb blocks: the accumulators (P * nb), the block's weights
// (nb) and a broadcast fit the 32 registers.
constexpr int pixels_for(int nb) {
    return nb == 1 ? 16 : nb == 2 ? 10 : nb == 3 ? 7 : 5;
}

// P consecutive output pixels of one row, output blocks [0, NB) of the weights at `w`. in: the
// first pixel's first tap in the padded rows (pixels `step` bytes apart, rows `row_bytes`).
template <int NB, int P>
void dot_pixels(const uint8_t* in, int64_t step, int64_t row_bytes, int64_t kh, int64_t per_row,
                const int32_t* w, int64_t w_stride, const int32_t* comp, const float* scale,
                float* out, int64_t width, __mmask16 last) {
    __m512i acc[P][NB];
#pragma GCC unroll 16
    for (int p = 0; p < P; ++p) {
#pragma GCC unroll 4
        for (int b = 0; b < NB; ++b) acc[p][b] = _mm512_setzero_si512();
    }
    for (int64_t r = 0; r < kh; ++r) {
        const uint8_t* row = in + r * row_bytes;
        for (int64_t j = 0; j < per_row; ++j, w += w_stride) {
            __m512i wv[NB];
#pragma GCC unroll 4
            for (int b = 0; b < NB; ++b) wv[b] = _mm512_load_si512(w + 16 * b);
#pragma GCC unroll 16
            for (int p = 0; p < P; ++p) {
                int32_t four;
                std::memcpy(&four, row + p * step + 4 * j, 4);
                const __m512i x = _mm512_set1_epi32(four);
#pragma GCC unroll 4
                for (int b = 0; b < NB; ++b) acc[p][b] = _mm512_dpbusd_epi32(acc[p][b], x, wv[b]);
            }
        }
    }
#pragma GCC unroll 16
    for (int p = 0; p < P; ++p) {
#pragma GCC unroll 4
        for (int b = 0; b < NB; ++b) {
            const __m512i sum = _mm512_sub_epi32(acc[p][b], _mm512_load_si512(comp + 16 * b));
            const __m512 v = _mm512_mul_ps(_mm512_cvtepi32_ps(sum), _mm512_load_ps(scale + 16 * b));
            _mm512_mask_storeu_ps(out + p * width + b * 16, b + 1 == NB ? last : __mmask16(0xffff),
                                  v);
        }
    }
}

using DotFn = void (*)(const uint8_t*, int64_t, int64_t, int64_t, int64_t, const int32_t*, int64_t,
                       const int32_t*, const float*, float*, int64_t, __mmask16);

// kDot[nb - 1][n - 1] computes n pixels (n <= pixels_for(nb); the rest are null).
template <int NB, size_t... N>
constexpr std::array<DotFn, 16> dot_table(std::index_sequence<N...>) {
    return {&dot_pixels<NB, static_cast<int>(N) + 1>...};
}
constexpr std::array<std::array<DotFn, 16>, kDotBlocks> kDot = {
    dot_table<1>(std::make_index_sequence<pixels_for(1)>()),
    dot_table<2>(std::make_index_sequence<pixels_for(2)>()),
    dot_table<3>(std::make_index_sequence<pixels_for(3)>()),
    dot_table<4>(std::make_index_sequence<pixels_for(4)>())};

// n codes as unsigned bytes (code + 128).
void to_unsigned(const int8_t* x, uint8_t* y, int64_t n) {
    const __m512i flip = _mm512_set1_epi8(static_cast<char>(0x80));
    int64_t i = 0;
    for (; i + 64 <= n; i += 64) {
        _mm512_storeu_si512(y + i, _mm512_xor_si512(_mm512_loadu_si512(x + i), flip));
    }
    if (i < n) {
        const __mmask64 m = (~0ULL) >> (64 - (n - i));
        _mm512_mask_storeu_epi8(y + i, m,
                                _mm512_xor_si512(_mm512_maskz_loadu_epi8(m, x + i), flip));
    }
}
#pragma GCC diagnostic pop
#endif

}  // namespace

bool DirectInt8Conv::init(const Shape& x, int64_t m, const int8_t* w, const Window& h,
                          const Window& wd, const std::vector<float>& scales, bool versus_amx) {
#if !LOWBIT_DIRECT_VNNI
    (void)x, (void)m, (void)w, (void)h, (void)wd, (void)scales, (void)versus_amx;
    return false;
#else
    if (x.size() != 4 || h.dilation != 1 || wd.dilation != 1 || m < 1 ||
        scales.size() != static_cast<size_t>(m)) {
        return false;
    }
    c_ = x[1];
    h_ = h;
    w_ = wd;
    blocks_ = (m + 15) / 16;
    run_bytes_ = (w_.k * c_ + 3) / 4 * 4;
    const int64_t groups = h_.k * run_bytes_ / 4;  // 4-byte groups a pixel
    if (h_.out < 1 || w_.out < 1 || 2 * m < 16 * blocks_) return false;
    const bool narrow = blocks_ <= kMaxBlocks && groups <= kMaxGroups;
    const bool small = blocks_ <= kMaxWideBlocks && (!versus_amx || groups <= kMaxWideGroups) &&
                       h_.out * w_.out <= kMaxWidePixels;
    if (!narrow && !small) return false;
    // Padded row width in pixels; 4 bytes of slack: a pixel's last group may read up to 3 bytes
    // past its run.
    const int64_t pad_cols = std::max(w_.pad_begin + w_.in, (w_.out - 1) * w_.stride + w_.k);
    row_bytes_ = (pad_cols * c_ + 4 + 63) / 64 * 64;
    const int64_t per_row = run_bytes_ / 4;
    wpack_.assign(static_cast<size_t>(groups * blocks_), Lanes{});
    comp_.assign(static_cast<size_t>(blocks_), Lanes{});
    scale_.assign(static_cast<size_t>(blocks_), Lanes{});
    for (int64_t oc = 0; oc < m; ++oc) {
        const int64_t b = oc / 16, lane = oc % 16;
        int32_t sum = 0;
        for (int64_t g = 0; g < groups; ++g) {
            const int64_t kh = g / per_row;
            uint32_t four = 0;
            for (int64_t byte = 0; byte < 4; ++byte) {
                const int64_t r = 4 * (g % per_row) + byte;  // kw * C + channel
                if (r >= w_.k * c_) break;
                const int8_t v = w[((oc * c_ + r % c_) * h_.k + kh) * w_.k + r / c_];
                sum += v;
                four |= static_cast<uint32_t>(static_cast<uint8_t>(v)) << (8 * byte);
            }
            wpack_[static_cast<size_t>(g * blocks_ + b)].v[lane] = static_cast<int32_t>(four);
        }
        comp_[static_cast<size_t>(b)].v[lane] = 128 * sum;
        scale_[static_cast<size_t>(b)].v[lane] =
            std::bit_cast<int32_t>(scales[static_cast<size_t>(oc)]);
    }
    return true;
#endif
}

size_t DirectInt8Conv::scratch_bytes(int64_t rows) const {
    return static_cast<size_t>(((rows - 1) * h_.stride + h_.k) * row_bytes_);
}

void DirectInt8Conv::run(const int8_t* x, int64_t oh0, int64_t oh1, int64_t oc0, int64_t oc1,
                         float* out, uint8_t* scratch) const {
#if LOWBIT_DIRECT_VNNI
    // The input rows the chunk reads, padded on every side with code 0 (byte 128).
    const int64_t first = oh0 * h_.stride - h_.pad_begin;
    const int64_t rows = (oh1 - oh0 - 1) * h_.stride + h_.k;
    const int64_t left = w_.pad_begin * c_, body = w_.in * c_;
    for (int64_t r = 0; r < rows; ++r) {
        uint8_t* d = scratch + r * row_bytes_;
        const int64_t iy = first + r;
        if (iy < 0 || iy >= h_.in) {
            std::memset(d, 0x80, static_cast<size_t>(row_bytes_));
            continue;
        }
        std::memset(d, 0x80, static_cast<size_t>(left));
        to_unsigned(x + iy * body, d + left, body);
        std::memset(d + left + body, 0x80, static_cast<size_t>(row_bytes_ - left - body));
    }
    const int64_t b0 = oc0 / 16, b1 = (oc1 + 15) / 16, width = oc1 - oc0;
    const int64_t step = w_.stride * c_, per_row = run_bytes_ / 4;
    for (int64_t oy = oh0; oy < oh1; ++oy) {
        const uint8_t* row = scratch + (oy - oh0) * h_.stride * row_bytes_;
        float* o = out + (oy - oh0) * w_.out * width;
        // kDotBlocks blocks at a time.
        for (int64_t g = b0; g < b1; g += kDotBlocks) {
            const int64_t nb = std::min(kDotBlocks, b1 - g);
            const auto last = g + nb == b1 ? static_cast<__mmask16>(0xffffu >> (16 * b1 - oc1))
                                           : __mmask16(0xffff);
            const int32_t* w = wpack_[static_cast<size_t>(g)].v;
            const int32_t* comp = comp_[static_cast<size_t>(g)].v;
            const auto* scale = reinterpret_cast<const float*>(scale_[static_cast<size_t>(g)].v);
            const auto& dot = kDot[static_cast<size_t>(nb - 1)];
            const int64_t p = pixels_for(static_cast<int>(nb));
            float* og = o + 16 * (g - b0);
            for (int64_t ox = 0; ox < w_.out; ox += p) {
                const int64_t n = std::min(p, w_.out - ox);
                dot[static_cast<size_t>(n - 1)](row + ox * step, step, row_bytes_, h_.k, per_row, w,
                                                16 * blocks_, comp, scale, og + ox * width, width,
                                                last);
            }
        }
    }
#else
    (void)x, (void)oh0, (void)oh1, (void)oc0, (void)oc1, (void)out, (void)scratch;
#endif
}

}  // namespace lowbit::cpu
