// kernels/cpu/qconv_direct.h against an integer reference: each output is the exact int32 sum
// of code products over the window (padding contributes code 0), converted to float32 and
// multiplied by its channel's scale, compared bit for bit; over channel counts that leave
// partial 4-byte groups and partial 16-channel blocks, kernel sizes 1x1 to 5x5 and 1x3,
// strides 1 and 2 (and 2 x 1), asymmetric padding, widths that leave every tail of a row's
// pixel groups, row ranges and ranges of output channels, int8 and int4 codes, the extreme
// codes. Also the convs the kernel refuses. Skipped where the build has no AVX-512 VNNI.
#include <gtest/gtest.h>

#include <bit>
#include <cstdint>
#include <random>
#include <vector>

#include "runtime/kernels/cpu/qconv_direct.h"

namespace lowbit {
namespace {

using cpu::DirectInt8Conv;
using cpu::Window;

struct Geometry {
    int64_t c, m, h, w, kh, kw, sh = 1, sw = 1, pt = 0, pl = 0, pb = 0, pr = 0;
};

// A 3x3 conv with padding 1 on every side.
Geometry pad1_3x3(int64_t c, int64_t m, int64_t h, int64_t w, int64_t stride = 1) {
    return {.c = c,
            .m = m,
            .h = h,
            .w = w,
            .kh = 3,
            .kw = 3,
            .sh = stride,
            .sw = stride,
            .pt = 1,
            .pl = 1,
            .pb = 1,
            .pr = 1};
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
    std::vector<int8_t> weights;  // oihw
    std::vector<float> scales;
};

Conv make_conv(const Geometry& g, uint32_t seed, int lo = -128, int hi = 127) {
    Conv c{g, window(g.h, g.kh, g.sh, g.pt, g.pb), window(g.w, g.kw, g.sw, g.pl, g.pr), {}, {}, {}};
    std::mt19937 rng(seed);
    std::uniform_int_distribution<int> code(-128, 127), wcode(lo, hi);
    c.x.resize(static_cast<size_t>(g.h * g.w * g.c));
    for (int8_t& v : c.x) v = static_cast<int8_t>(code(rng));
    c.weights.resize(static_cast<size_t>(g.m * g.c * g.kh * g.kw));
    for (int8_t& v : c.weights) v = static_cast<int8_t>(wcode(rng));
    std::uniform_real_distribution<float> s(1e-5f, 1e-2f);
    for (int64_t i = 0; i < g.m; ++i) c.scales.push_back(s(rng));
    return c;
}

// Output pixel (oy, ox), channel oc: float(exact sum) * scale.
float reference(const Conv& c, int64_t oy, int64_t ox, int64_t oc) {
    const Geometry& g = c.g;
    int32_t sum = 0;
    for (int64_t ky = 0; ky < g.kh; ++ky) {
        for (int64_t kx = 0; kx < g.kw; ++kx) {
            const int64_t iy = oy * g.sh - g.pt + ky, ix = ox * g.sw - g.pl + kx;
            if (iy < 0 || iy >= g.h || ix < 0 || ix >= g.w) continue;
            for (int64_t ci = 0; ci < g.c; ++ci) {
                sum +=
                    int32_t{c.x[static_cast<size_t>((iy * g.w + ix) * g.c + ci)]} *
                    int32_t{
                        c.weights[static_cast<size_t>(((oc * g.c + ci) * g.kh + ky) * g.kw + kx)]};
            }
        }
    }
    return static_cast<float>(sum) * c.scales[static_cast<size_t>(oc)];
}

// Runs rows [oh0, oh1) and channels [oc0, oc1) and compares every value's bits (limits as
// against a non-AMX oneDNN kernel, the wider ones).
void expect_exact(const Conv& c, int64_t oh0, int64_t oh1, int64_t oc0, int64_t oc1) {
    DirectInt8Conv k;
    ASSERT_TRUE(
        k.init({1, c.g.c, c.g.h, c.g.w}, c.g.m, c.weights.data(), c.h, c.w, c.scales, false));
    const int64_t width = oc1 - oc0, ow = c.w.out;
    std::vector<float> out(static_cast<size_t>((oh1 - oh0) * ow * width), -1.0f);
    // The scratch buffer starts dirty: every byte the kernel reads must be its own.
    std::vector<uint8_t> scratch(k.scratch_bytes(oh1 - oh0), 0x5a);
    k.run(c.x.data(), oh0, oh1, oc0, oc1, out.data(), scratch.data());
    int64_t wrong = 0;
    for (int64_t oy = oh0; oy < oh1; ++oy) {
        for (int64_t ox = 0; ox < ow; ++ox) {
            for (int64_t oc = oc0; oc < oc1; ++oc) {
                const float got =
                    out[static_cast<size_t>(((oy - oh0) * ow + ox) * width + oc - oc0)];
                const float want = reference(c, oy, ox, oc);
                if (std::bit_cast<uint32_t>(got) != std::bit_cast<uint32_t>(want) && ++wrong <= 3) {
                    ADD_FAILURE() << "pixel (" << oy << ", " << ox << ") channel " << oc << ": "
                                  << got << " vs " << want;
                }
            }
        }
    }
    EXPECT_EQ(wrong, 0);
}

bool have_kernel() {
    DirectInt8Conv k;
    const Conv c = make_conv({.c = 4, .m = 16, .h = 4, .w = 4, .kh = 1, .kw = 1}, 1);
    return k.init({1, 4, 4, 4}, 16, c.weights.data(), c.h, c.w, c.scales, true);
}

TEST(QConvDirect, SumsMatchTheIntegerReferenceBitForBit) {
    if (!have_kernel()) GTEST_SKIP() << "built without AVX-512 VNNI";
    // clang-format off (one conv a line)
    const Geometry cases[] = {
        // The bundled YOLOv10m's stem and model.1 (3 -> 12 and 12 -> 24, 3x3 s2, pads 1).
        pad1_3x3(3, 12, 33, 31, 2),
        pad1_3x3(12, 24, 20, 41, 2),
        // 1x1: 4-byte groups of whole channels, 1 to 4 blocks, partial last blocks.
        {.c = 24, .m = 24, .h = 9, .w = 23, .kh = 1, .kw = 1},
        {.c = 5, .m = 40, .h = 7, .w = 17, .kh = 1, .kw = 1},
        {.c = 64, .m = 64, .h = 5, .w = 11, .kh = 1, .kw = 1},
        {.c = 256, .m = 8, .h = 3, .w = 6, .kh = 1, .kw = 1},
        // 5 to 9 blocks on small maps, computed 4 blocks at a time: 9 blocks with 2 lanes of the
        // last used, 5 blocks.
        pad1_3x3(12, 130, 11, 15),
        {.c = 72, .m = 72, .h = 10, .w = 10, .kh = 1, .kw = 1},
        // Many groups (taken only where oneDNN has no AMX): the full-width YOLOv10m's head conv
        // (576 -> 64, 1296 groups) on a smaller map, 1x1 288 -> 144, 3x3 100 -> 40 (225 groups:
        // a pixel's run of 300 bytes, exactly 75 groups a kernel row).
        pad1_3x3(576, 64, 5, 7),
        {.c = 288, .m = 144, .h = 6, .w = 9, .kh = 1, .kw = 1},
        pad1_3x3(100, 40, 7, 12),
        // 3x3 same padding, every tail length of 16/10/7/5-pixel groups across these widths.
        pad1_3x3(24, 24, 8, 19),
        pad1_3x3(7, 48, 6, 13),
        pad1_3x3(1, 16, 9, 31),
        // 5x5, 1x3, stride 2 x 1, asymmetric and large padding, no padding.
        {.c = 4, .m = 20, .h = 12, .w = 14, .kh = 5, .kw = 5, .pt = 2, .pl = 0, .pb = 3, .pr = 4},
        {.c = 9,
         .m = 33,
         .h = 10,
         .w = 15,
         .kh = 1,
         .kw = 3,
         .sh = 2,
         .sw = 1,
         .pt = 0,
         .pl = 1,
         .pb = 0,
         .pr = 2},
        {.c = 8, .m = 8, .h = 6, .w = 6, .kh = 3, .kw = 3, .sh = 1, .sw = 2},
    };
    // clang-format on
    uint32_t seed = 10;
    for (const Geometry& g : cases) {
        SCOPED_TRACE("c " + std::to_string(g.c) + " m " + std::to_string(g.m) + " k " +
                     std::to_string(g.kh) + "x" + std::to_string(g.kw));
        const Conv c = make_conv(g, seed++);
        expect_exact(c, 0, c.h.out, 0, g.m);
        if (c.h.out > 2) expect_exact(c, 1, c.h.out - 1, 0, g.m);  // a band of rows
        if (g.m > 16) expect_exact(c, 0, c.h.out, 16, g.m);        // channels from 16 on
        if (g.m > 32) expect_exact(c, 0, 1, 16, 32);
    }
}

TEST(QConvDirect, ExtremeCodesAndInt4Weights) {
    if (!have_kernel()) GTEST_SKIP() << "built without AVX-512 VNNI";
    const Geometry g = pad1_3x3(28, 32, 5, 18);
    // Every input and weight -128: 252 products of 16384, the largest sum (4128768).
    Conv c = make_conv(g, 3);
    std::fill(c.x.begin(), c.x.end(), int8_t{-128});
    std::fill(c.weights.begin(), c.weights.end(), int8_t{-128});
    expect_exact(c, 0, c.h.out, 0, g.m);
    std::fill(c.weights.begin(), c.weights.end(), int8_t{127});
    expect_exact(c, 0, c.h.out, 0, g.m);
    // INT4 codes held a byte each (W4A8).
    expect_exact(make_conv(g, 4, -8, 7), 0, c.h.out, 0, g.m);
}

TEST(QConvDirect, RefusesWhatItDoesNotCover) {
    if (!have_kernel()) GTEST_SKIP() << "built without AVX-512 VNNI";
    const auto fits = [](const Geometry& g, int64_t dilation = 1, bool versus_amx = true) {
        Conv c = make_conv(g, 5);
        c.h.dilation = dilation;
        DirectInt8Conv k;
        return k.init({1, g.c, g.h, g.w}, g.m, c.weights.data(), c.h, c.w, c.scales, versus_amx);
    };
    const auto fits_no_amx = [&](const Geometry& g) { return fits(g, 1, false); };
    EXPECT_TRUE(fits({.c = 28, .m = 64, .h = 4, .w = 4, .kh = 3, .kw = 3}));
    EXPECT_FALSE(fits({.c = 29, .m = 64, .h = 4, .w = 4, .kh = 3, .kw = 3}));  // 66 groups
    EXPECT_TRUE(fits({.c = 144, .m = 144, .h = 40, .w = 40, .kh = 1, .kw = 1}));
    EXPECT_FALSE(fits({.c = 144, .m = 144, .h = 41, .w = 40, .kh = 1, .kw = 1}));  // pixels
    EXPECT_FALSE(fits({.c = 148, .m = 80, .h = 10, .w = 10, .kh = 1, .kw = 1}));   // 37 groups
    EXPECT_FALSE(fits({.c = 16, .m = 145, .h = 10, .w = 10, .kh = 1, .kw = 1}));   // 10 blocks
    EXPECT_TRUE(fits({.c = 16, .m = 8, .h = 4, .w = 4, .kh = 1, .kw = 1}));
    EXPECT_FALSE(fits({.c = 16, .m = 7, .h = 4, .w = 4, .kh = 1, .kw = 1}));      // 7 of 16 lanes
    EXPECT_FALSE(fits({.c = 16, .m = 16, .h = 6, .w = 6, .kh = 3, .kw = 3}, 2));  // dilated
    // Without AMX on oneDNN's side, 5 to 9 blocks take any number of groups on small maps, but
    // not more blocks or pixels, and the narrow limits are the same.
    EXPECT_TRUE(fits_no_amx({.c = 148, .m = 80, .h = 10, .w = 10, .kh = 1, .kw = 1}));
    EXPECT_TRUE(fits_no_amx({.c = 576, .m = 64, .h = 42, .w = 42, .kh = 3, .kw = 3}));  // 1600
    EXPECT_FALSE(fits_no_amx({.c = 576, .m = 64, .h = 43, .w = 42, .kh = 3, .kw = 3}));
    EXPECT_FALSE(fits_no_amx({.c = 16, .m = 145, .h = 10, .w = 10, .kh = 1, .kw = 1}));
    EXPECT_FALSE(fits_no_amx({.c = 29, .m = 64, .h = 43, .w = 42, .kh = 3, .kw = 3}));
}

}  // namespace
}  // namespace lowbit
