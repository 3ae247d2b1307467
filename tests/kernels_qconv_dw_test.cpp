// kernels/cpu/qconv_dw.h against an integer reference: each output is the exact int32 sum of
// its channel's code products over the window (padding contributes code 0), converted to
// float32 and multiplied by the channel's scale, compared bit for bit; over channel counts that
// leave partial 16-channel blocks, 1x5 to 8x8 windows, asymmetric padding, widths that leave
// every tail of a row's 12-pixel groups, row bands and channel ranges, int4 codes and the
// extreme codes (the largest sums the kernel accepts). Also the convs it refuses (strided ones
// among them). Skipped where the build has no AVX-512.
#include <gtest/gtest.h>

#include <bit>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "runtime/kernels/cpu/qconv_dw.h"

namespace lowbit {
namespace {

using cpu::DirectInt8Dw;
using cpu::Window;

struct Geometry {
    int64_t c, h, w, kh, kw, sh = 1, sw = 1, pt = 0, pl = 0, pb = 0, pr = 0;
};

// A kh x kw depthwise conv with pads top, left, bottom, right.
Geometry padded(int64_t c, int64_t h, int64_t w, int64_t kh, int64_t kw, int64_t pt, int64_t pl,
                int64_t pb, int64_t pr) {
    return {.c = c, .h = h, .w = w, .kh = kh, .kw = kw, .pt = pt, .pl = pl, .pb = pb, .pr = pr};
}

// A k x k depthwise conv with "same" padding k / 2 on every side.
Geometry same(int64_t c, int64_t h, int64_t w, int64_t k, int64_t stride = 1) {
    Geometry g = padded(c, h, w, k, k, k / 2, k / 2, k / 2, k / 2);
    g.sh = g.sw = stride;
    return g;
}

Window window(int64_t in, int64_t k, int64_t stride, int64_t pb, int64_t pe) {
    Window a;
    a.in = in;
    a.k = k;
    a.stride = stride;
    a.pad_begin = pb;
    a.pad_end = pe;
    a.out = (in + pb + pe - k) / stride + 1;
    return a;
}

struct Conv {
    Geometry g;
    Window h, w;
    std::vector<int8_t> x;        // NHWC
    std::vector<int8_t> weights;  // [c, 1, kh, kw]
    std::vector<float> scales;
};

Conv make_conv(const Geometry& g, uint32_t seed, int lo = -128, int hi = 127) {
    Conv c{g, window(g.h, g.kh, g.sh, g.pt, g.pb), window(g.w, g.kw, g.sw, g.pl, g.pr), {}, {}, {}};
    std::mt19937 rng(seed);
    std::uniform_int_distribution<int> code(-128, 127), wcode(lo, hi);
    c.x.resize(static_cast<size_t>(g.h * g.w * g.c));
    for (int8_t& v : c.x) v = static_cast<int8_t>(code(rng));
    c.weights.resize(static_cast<size_t>(g.c * g.kh * g.kw));
    for (int8_t& v : c.weights) v = static_cast<int8_t>(wcode(rng));
    std::uniform_real_distribution<float> s(1e-5f, 1e-2f);
    for (int64_t i = 0; i < g.c; ++i) c.scales.push_back(s(rng));
    return c;
}

// Output pixel (oy, ox), channel ch: float(exact sum) * scale.
float reference(const Conv& c, int64_t oy, int64_t ox, int64_t ch) {
    const Geometry& g = c.g;
    int32_t sum = 0;
    for (int64_t ky = 0; ky < g.kh; ++ky) {
        for (int64_t kx = 0; kx < g.kw; ++kx) {
            const int64_t iy = oy * g.sh - g.pt + ky, ix = ox * g.sw - g.pl + kx;
            if (iy < 0 || iy >= g.h || ix < 0 || ix >= g.w) continue;
            sum += int32_t{c.x[static_cast<size_t>((iy * g.w + ix) * g.c + ch)]} *
                   int32_t{c.weights[static_cast<size_t>((ch * g.kh + ky) * g.kw + kx)]};
        }
    }
    return static_cast<float>(sum) * c.scales[static_cast<size_t>(ch)];
}

// Runs rows [oh0, oh1) and channels [oc0, oc1) and compares every value's bits.
void expect_exact(const Conv& c, int64_t oh0, int64_t oh1, int64_t oc0, int64_t oc1) {
    DirectInt8Dw k;
    ASSERT_TRUE(k.init({1, c.g.c, c.g.h, c.g.w}, c.weights.data(), c.h, c.w, c.scales));
    const int64_t width = oc1 - oc0, ow = c.w.out;
    std::vector<float> out(static_cast<size_t>((oh1 - oh0) * ow * width), -1.0f);
    // The scratch buffer starts dirty (a NaN pattern): every float the kernel reads must be
    // its own.
    std::vector<uint8_t> scratch(k.scratch_bytes(oh1 - oh0), 0xff);
    k.run(c.x.data(), oh0, oh1, oc0, oc1, out.data(), scratch.data());
    int64_t wrong = 0;
    for (int64_t oy = oh0; oy < oh1; ++oy) {
        for (int64_t ox = 0; ox < ow; ++ox) {
            for (int64_t ch = oc0; ch < oc1; ++ch) {
                const float got =
                    out[static_cast<size_t>(((oy - oh0) * ow + ox) * width + ch - oc0)];
                const float want = reference(c, oy, ox, ch);
                if (std::bit_cast<uint32_t>(got) != std::bit_cast<uint32_t>(want) && ++wrong <= 3) {
                    ADD_FAILURE() << "pixel (" << oy << ", " << ox << ") channel " << ch << ": "
                                  << got << " vs " << want;
                }
            }
        }
    }
    EXPECT_EQ(wrong, 0);
}

bool have_kernel() {
    DirectInt8Dw k;
    const Conv c = make_conv(same(16, 4, 4, 3), 1);
    return k.init({1, 16, 4, 4}, c.weights.data(), c.h, c.w, c.scales);
}

TEST(QConvDw, SumsMatchTheIntegerReferenceBitForBit) {
    if (!have_kernel()) GTEST_SKIP() << "built without AVX-512";
    const Geometry cases[] = {
        // YOLOv10's depthwise convs: 3x3, 7x7 (large-kernel CIB).
        same(48, 9, 25, 3),
        same(72, 11, 14, 3),
        same(36, 8, 13, 7),
        // One partial block, one block, a partial third block; every tail of the 12-pixel
        // groups across these widths.
        same(12, 7, 23, 3),
        same(16, 5, 12, 3),
        same(40, 6, 11, 5),
        same(1, 5, 7, 3),
        // 1x5 and 5x1, asymmetric and large padding, no padding.
        padded(20, 9, 17, 1, 5, 0, 3, 1, 1),
        padded(17, 9, 14, 5, 1, 2, 0, 3, 0),
        padded(24, 10, 9, 3, 3, 2, 0, 0, 2),
        padded(32, 6, 6, 3, 3, 0, 0, 0, 0),
    };
    uint32_t seed = 20;
    for (const Geometry& g : cases) {
        SCOPED_TRACE("c " + std::to_string(g.c) + " k " + std::to_string(g.kh) + "x" +
                     std::to_string(g.kw) + " s " + std::to_string(g.sh) + "x" +
                     std::to_string(g.sw));
        const Conv c = make_conv(g, seed++);
        expect_exact(c, 0, c.h.out, 0, g.c);
        if (c.h.out > 2) expect_exact(c, 1, c.h.out - 1, 0, g.c);  // a band of rows
        expect_exact(c, c.h.out - 1, c.h.out, 0, g.c);             // the last row alone
        if (g.c > 16) expect_exact(c, 0, c.h.out, 16, g.c);        // channels from 16 on
        if (g.c > 32) expect_exact(c, 0, 2, 16, 32);
    }
}

TEST(QConvDw, ExtremeCodesAndInt4Weights) {
    if (!have_kernel()) GTEST_SKIP() << "built without AVX-512";
    // An 8x8 window (64 taps, the most it takes) on codes -128: 64 products of 2^14, a sum of
    // 2^20, with every tap inside the image for the middle pixels.
    const Geometry g = padded(19, 10, 11, 8, 8, 3, 4, 4, 3);
    Conv c = make_conv(g, 3);
    std::fill(c.x.begin(), c.x.end(), int8_t{-128});
    std::fill(c.weights.begin(), c.weights.end(), int8_t{-128});
    expect_exact(c, 0, c.h.out, 0, g.c);
    std::fill(c.weights.begin(), c.weights.end(), int8_t{127});
    expect_exact(c, 0, c.h.out, 0, g.c);
    // INT4 codes held a byte each (W4A8).
    expect_exact(make_conv(same(48, 6, 9, 3), 4, -8, 7), 0, 6, 0, 48);
}

TEST(QConvDw, RefusesWhatItDoesNotCover) {
    if (!have_kernel()) GTEST_SKIP() << "built without AVX-512";
    const auto fits = [](const Geometry& g, int64_t dilation = 1) {
        Conv c = make_conv(g, 5);
        c.h.dilation = dilation;
        DirectInt8Dw k;
        return k.init({1, g.c, g.h, g.w}, c.weights.data(), c.h, c.w, c.scales);
    };
    EXPECT_TRUE(fits({.c = 16, .h = 9, .w = 9, .kh = 8, .kw = 8}));
    EXPECT_FALSE(fits({.c = 16, .h = 9, .w = 9, .kh = 5, .kw = 13}));  // 65 taps: inexact
    EXPECT_FALSE(fits(same(16, 6, 6, 3), 2));                          // dilated
    EXPECT_FALSE(fits(same(16, 9, 9, 3, 2)));                          // strided
}

}  // namespace
}  // namespace lowbit
