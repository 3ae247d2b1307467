// QuantConv (sensitivity's low-precision conv) against a plain double-precision conv of the
// same values: int8 sums must be exact, bf16-carried FP8 values equal to float rounding. Shapes
// cover YOLOv10m's kinds of Conv: 1x1, 3x3 stride 1 and 2 with padding, depthwise, and channel
// counts that are not multiples of the SIMD width. A machine without the CPU feature for an exact
// kernel (VNNI or AMX-INT8 for int8; AVX512-BF16 or AMX-BF16 for bf16, read from /proc/cpuinfo)
// skips, as sensitivity then keeps the float simulation; with the feature, a create() failure
// fails the test.
#include "runtime/quant_conv.h"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <fstream>
#include <random>
#include <sstream>
#include <string>

#include "core/half.h"

namespace lowbit {
namespace {

struct ConvCase {
    int64_t c, h, w, m, k, stride, pad, group;
};

// acc[p][m] (NHWC) of a conv over NHWC input values x and OIHW weights wv, in double; `mag`
// (optional) receives the sums of |products|.
std::vector<double> reference_conv(const ConvCase& cc, const std::vector<double>& x,
                                   const std::vector<double>& wv, int64_t oh, int64_t ow,
                                   std::vector<double>* mag = nullptr) {
    const int64_t cg = cc.c / cc.group, mg = cc.m / cc.group;
    std::vector<double> acc(static_cast<size_t>(oh * ow * cc.m), 0.0);
    if (mag) mag->assign(acc.size(), 0.0);
    for (int64_t oy = 0; oy < oh; ++oy) {
        for (int64_t ox = 0; ox < ow; ++ox) {
            for (int64_t m = 0; m < cc.m; ++m) {
                const int64_t g = m / mg;
                double s = 0, a = 0;
                for (int64_t ci = 0; ci < cg; ++ci) {
                    for (int64_t ky = 0; ky < cc.k; ++ky) {
                        for (int64_t kx = 0; kx < cc.k; ++kx) {
                            const int64_t iy = oy * cc.stride - cc.pad + ky;
                            const int64_t ix = ox * cc.stride - cc.pad + kx;
                            if (iy < 0 || iy >= cc.h || ix < 0 || ix >= cc.w) continue;
                            const int64_t c = g * cg + ci;
                            const double p =
                                x[static_cast<size_t>((iy * cc.w + ix) * cc.c + c)] *
                                wv[static_cast<size_t>(((m * cg + ci) * cc.k + ky) * cc.k + kx)];
                            s += p;
                            a += std::fabs(p);
                        }
                    }
                }
                acc[static_cast<size_t>((oy * ow + ox) * cc.m + m)] = s;
                if (mag) (*mag)[static_cast<size_t>((oy * ow + ox) * cc.m + m)] = a;
            }
        }
    }
    return acc;
}

Node conv_node(const ConvCase& cc) {
    Node n;
    n.op_type = "Conv";
    n.name = "conv";
    n.inputs = {"x", "w"};
    n.outputs = {"y"};
    n.attrs["kernel_shape"] = Attr::make_ints({cc.k, cc.k});
    n.attrs["strides"] = Attr::make_ints({cc.stride, cc.stride});
    n.attrs["pads"] = Attr::make_ints({cc.pad, cc.pad, cc.pad, cc.pad});
    n.attrs["group"] = Attr::make_int(cc.group);
    return n;
}

// The CPU flags (Linux /proc/cpuinfo's first "flags" line; empty elsewhere).
std::string cpu_flags() {
    std::ifstream f("/proc/cpuinfo");
    std::string line;
    while (std::getline(f, line)) {
        if (line.rfind("flags", 0) == 0) return " " + line.substr(line.find(':') + 1) + " ";
    }
    return "";
}

bool has_flag(const std::string& flags, const char* name) {
    return flags.find(std::string(" ") + name + " ") != std::string::npos;
}

// Whether this CPU has an instruction set for the exact kernel oneDNN must then find.
bool cpu_has_exact_kernel(bool int8) {
    const std::string f = cpu_flags();
    if (int8) {
        return has_flag(f, "avx512_vnni") || has_flag(f, "avx_vnni") || has_flag(f, "amx_int8");
    }
    return has_flag(f, "avx512_bf16") || has_flag(f, "amx_bf16");
}

const ConvCase kCases[] = {
    {24, 20, 20, 24, 1, 1, 0, 1}, {48, 10, 12, 10, 1, 1, 0, 1}, {16, 17, 15, 24, 3, 2, 1, 1},
    {48, 12, 12, 64, 3, 1, 1, 1}, {48, 9, 11, 48, 3, 1, 1, 48}, {96, 8, 8, 96, 3, 2, 1, 96},
    {3, 32, 32, 16, 3, 2, 1, 1},  {20, 7, 7, 12, 7, 1, 3, 1},
};

// Every case of kCases on random values: INT8 codes, or finite E4M3 values. INT8 sums must be
// exact. FP8 sums are float32 sums of exact products: K roundings of at most 2^-24 of the
// running sum, so within K * 2^-24 of the sum of |products| (K <= 980 here: 2^-14 covers it).
void check_cases(QuantConvValues values, uint32_t seed) {
    const bool int8 = values == QuantConvValues::Int8;
    std::mt19937 rng(seed);
    std::uniform_int_distribution<int> code(int8 ? -128 : 0, int8 ? 127 : 255);
    auto value = [&]() -> double {
        for (;;) {
            const double v =
                int8 ? code(rng)
                     : fp8_to_float(static_cast<uint8_t>(code(rng)), DType::Float8E4M3FN);
            if (std::isfinite(v)) return v;
        }
    };
    for (const ConvCase& cc : kCases) {
        SCOPED_TRACE(::testing::Message() << cc.c << "->" << cc.m << " k" << cc.k << " s"
                                          << cc.stride << " g" << cc.group);
        const int64_t oh = (cc.h + 2 * cc.pad - cc.k) / cc.stride + 1;
        const int64_t ow = (cc.w + 2 * cc.pad - cc.k) / cc.stride + 1;
        Tensor wt(int8 ? DType::Int8 : DType::Float32, {cc.m, cc.c / cc.group, cc.k, cc.k});
        std::vector<double> wv(static_cast<size_t>(wt.numel()));
        for (int64_t i = 0; i < wt.numel(); ++i) {
            const double v = value();
            wv[static_cast<size_t>(i)] = v;
            if (int8) {
                wt.data<int8_t>()[i] = static_cast<int8_t>(v);
            } else {
                wt.data<float>()[i] = static_cast<float>(v);
            }
        }
        // The input as QuantConv reads it: int8 codes, or bfloat16 bits (the top half of the
        // float).
        std::vector<double> xv(static_cast<size_t>(cc.h * cc.w * cc.c));
        std::vector<int8_t> x8(xv.size());
        std::vector<uint16_t> x16(xv.size());
        for (size_t i = 0; i < xv.size(); ++i) {
            xv[i] = value();
            // FP8 values reach 448: converting them to int8 would be undefined ([conv.fpint]).
            x8[i] = int8 ? static_cast<int8_t>(xv[i]) : 0;
            x16[i] =
                static_cast<uint16_t>(std::bit_cast<uint32_t>(static_cast<float>(xv[i])) >> 16);
        }
        auto conv =
            QuantConv::create(conv_node(cc), {1, cc.c, cc.h, cc.w}, {1, cc.m, oh, ow}, wt, values);
        if (!conv) {
            if (!cpu_has_exact_kernel(int8)) {
                GTEST_SKIP() << "CPU lacks the feature: " << conv.status().message();
            }
            FAIL() << "the CPU has the feature, yet: " << conv.status().message();
        }
        std::vector<float> acc(static_cast<size_t>(oh * ow * cc.m), -1.0f);
        ASSERT_TRUE(
            (*conv)->run(int8 ? static_cast<const void*>(x8.data()) : x16.data(), acc.data()));
        std::vector<double> mag;
        const std::vector<double> want = reference_conv(cc, xv, wv, oh, ow, &mag);
        for (size_t i = 0; i < acc.size(); ++i) {
            const double tol = int8 ? 0.0 : mag[i] * std::ldexp(1.0, -14);
            ASSERT_NEAR(acc[i], want[i], tol) << "element " << i << " [" << (*conv)->impl() << "]";
        }
    }
}

TEST(QuantConv, Int8SumsAreExact) {
    check_cases(QuantConvValues::Int8, 5);
}

TEST(QuantConv, Fp8ValuesAsBf16MatchFloatConv) {
    check_cases(QuantConvValues::Fp8, 6);
}

// A weight that bfloat16 cannot hold exactly is refused, not silently truncated.
TEST(QuantConv, Fp8RefusesOtherValues) {
    const ConvCase cc{8, 4, 4, 8, 1, 1, 0, 1};
    Tensor wt(DType::Float32, {8, 8, 1, 1});
    for (int64_t i = 0; i < wt.numel(); ++i) wt.data<float>()[i] = 0.1f;
    auto conv =
        QuantConv::create(conv_node(cc), {1, 8, 4, 4}, {1, 8, 4, 4}, wt, QuantConvValues::Fp8);
    ASSERT_FALSE(conv);
    EXPECT_NE(conv.status().message().find("not exact in bfloat16"), std::string::npos)
        << conv.status().message();
}

}  // namespace
}  // namespace lowbit
