// Edge cases of the elementwise reference kernels (runtime/kernels/ref/elementwise_*.cpp) and the
// broadcasting helpers (runtime/kernels/ref/broadcast.h). ONNX's own node tests run separately
// through the executor; these target broadcasting, integer semantics, NaN and rounding rules.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>

#include "kernel_test_util.h"
#include "runtime/kernels/ref/broadcast.h"

namespace lowbit {
namespace {

using namespace lowbit::test;

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();

// Element offset of output index `linear` in an input of shape `in` broadcast to `out`, computed
// the slow, obvious way (for checking BroadcastLoop).
int64_t naive_offset(int64_t linear, const Shape& in, const Shape& out) {
    int64_t off = 0, stride = 1;
    for (size_t d = out.size(); d-- > 0;) {
        const int64_t idx = linear % out[d];
        linear /= out[d];
        const size_t shift = out.size() - in.size();
        if (d >= shift) {
            const int64_t id = in[d - shift];
            off += (id == 1 ? 0 : idx) * stride;
            stride *= id;
        }
    }
    return off;
}

Tensor iota_f32(Shape shape, float start = 0.0f, float step = 1.0f) {
    Tensor t(DType::Float32, std::move(shape));
    float* p = t.data<float>();
    for (int64_t i = 0; i < t.numel(); ++i) p[i] = start + step * static_cast<float>(i);
    return t;
}

TEST(Broadcast, ShapesFollowNumpyRules) {
    EXPECT_EQ(*ref::broadcast_shapes(Shape{2, 3, 4}, Shape{4}), (Shape{2, 3, 4}));
    EXPECT_EQ(*ref::broadcast_shapes(Shape{2, 1, 4}, Shape{3, 1}), (Shape{2, 3, 4}));
    EXPECT_EQ(*ref::broadcast_shapes(Shape{}, Shape{5}), (Shape{5}));
    EXPECT_EQ(*ref::broadcast_shapes(Shape{0, 3}, Shape{1, 3}), (Shape{0, 3}));
    EXPECT_EQ(*ref::broadcast_shapes(Shape{1}, Shape{0}), (Shape{0}));
    auto bad = ref::broadcast_shapes(Shape{2, 3}, Shape{4});
    ASSERT_FALSE(bad.is_ok());
    EXPECT_NE(bad.status().message().find("[2,3]"), std::string::npos);
    EXPECT_TRUE(ref::broadcastable_to({3, 1, 1}, {2, 3, 4, 5}));
    EXPECT_FALSE(ref::broadcastable_to({3}, {2, 3, 4, 5}));
    EXPECT_FALSE(ref::broadcastable_to({1, 2, 3, 4, 5}, {2, 3, 4, 5}));
}

TEST(Broadcast, LoopMatchesNaiveIndexingOnRandomShapes) {
    std::mt19937 rng(7);
    for (int iter = 0; iter < 300; ++iter) {
        const size_t rank = rng() % 5;
        Shape out(rank);
        for (auto& d : out) d = 1 + static_cast<int64_t>(rng() % 4);
        // Each operand: a random suffix of `out` with random dims replaced by 1.
        std::vector<Shape> ins(3);
        for (auto& s : ins) {
            const size_t r = rank == 0 ? 0 : rng() % (rank + 1);
            s.assign(out.end() - static_cast<std::ptrdiff_t>(r), out.end());
            for (auto& d : s) {
                if (rng() % 3 == 0) d = 1;
            }
        }
        // The broadcast of the operands may be smaller than `out`; walk that.
        const Shape target = *ref::broadcast_shapes(ins);
        const ref::BroadcastLoop loop(target, ins);
        ASSERT_EQ(loop.size(), shape_numel(target));
        std::vector<int> seen(static_cast<size_t>(loop.size()), 0);
        // Split the walk at a random point to exercise starting mid-run.
        const int64_t split = loop.size() == 0 ? 0 : static_cast<int64_t>(rng() % loop.size());
        for (auto [b, e] : {std::pair<int64_t, int64_t>{0, split}, {split, loop.size()}}) {
            loop.for_each_run(b, e, [&](int64_t o, const int64_t* off, int64_t len) {
                for (int64_t i = 0; i < len; ++i) {
                    ++seen[static_cast<size_t>(o + i)];
                    for (size_t k = 0; k < ins.size(); ++k) {
                        ASSERT_EQ(off[k] + i * loop.inner_stride(k),
                                  naive_offset(o + i, ins[k], target))
                            << "operand " << k << " shape " << shape_str(ins[k]) << " out "
                            << shape_str(target);
                    }
                }
            });
        }
        for (int c : seen) ASSERT_EQ(c, 1);
    }
}

TEST(Broadcast, StridedIndexWalksTransposedView) {
    // A [2,3] tensor walked as its transpose [3,2]: strides {1, 3}.
    ref::StridedIndex it({3, 2}, {{1, 3}});
    std::vector<int64_t> offs;
    it.seek(0);
    for (int i = 0; i < 6; ++i, it.next()) offs.push_back(it.offset(0));
    EXPECT_EQ(offs, (std::vector<int64_t>{0, 3, 1, 4, 2, 5}));
    it.seek(3);
    EXPECT_EQ(it.offset(0), 4);
}

TEST(Elementwise, AddBroadcastsLikeNumpy) {
    // [2,1,3] + [4,1] -> [2,4,3]
    Tensor a = iota_f32({2, 1, 3});
    Tensor b = iota_f32({4, 1}, 10.0f, 10.0f);
    Tensor y = run_one({"Add", {a, b}});
    ASSERT_EQ(y.shape(), (Shape{2, 4, 3}));
    std::vector<float> want;
    for (int i = 0; i < 2; ++i)
        for (int j = 0; j < 4; ++j)
            for (int k = 0; k < 3; ++k) want.push_back(float(i * 3 + k) + 10.0f * float(j + 1));
    EXPECT_EQ(values<float>(y), want);
}

TEST(Elementwise, LargeSameShapeScalarAndPerChannelUseAllPaths) {
    // Large enough to split across threads; per-channel like a BN-folded bias [1,C,1,1].
    const Shape x_shape{2, 16, 40, 40};
    Tensor x = iota_f32(x_shape, -1000.0f, 0.03f);
    Tensor c = iota_f32({1, 16, 1, 1}, 1.0f, 0.5f);
    Tensor s = scalar_f32(0.25f);
    Tensor same = iota_f32(x_shape, 5.0f, -0.01f);
    for (int threads : {1, 2, 4}) {
        Tensor mul_c = run_one({"Mul", {x, c}, {}, 19, 1, {}, false, threads});
        Tensor sub_s = run_one({"Sub", {s, x}, {}, 19, 1, {}, false, threads});
        Tensor add_x = run_one({"Add", {x, same}, {}, 19, 1, {}, false, threads});
        const float* px = x.data<float>();
        const float* pc = c.data<float>();
        const float* pq = same.data<float>();
        for (int64_t i = 0; i < x.numel(); ++i) {
            const int64_t ch = (i / 1600) % 16;
            ASSERT_EQ(mul_c.data<float>()[i], px[i] * pc[ch]) << i;
            ASSERT_EQ(sub_s.data<float>()[i], 0.25f - px[i]) << i;
            ASSERT_EQ(add_x.data<float>()[i], px[i] + pq[i]) << i;
        }
    }
}

TEST(Elementwise, ZeroSizeAndScalarShapes) {
    Tensor y = run_one({"Add", {f32({0, 3}, {}), f32({3}, {1, 2, 3})}});
    EXPECT_EQ(y.shape(), (Shape{0, 3}));
    Tensor z = run_one({"Mul", {scalar_f32(3), scalar_f32(4)}});
    EXPECT_EQ(z.shape(), Shape{});
    EXPECT_EQ(values<float>(z), std::vector<float>{12});
}

TEST(Elementwise, IntegerDivTruncatesTowardZero) {
    Tensor y = run_one({"Div",
                        {i64({6}, {7, -7, 7, -7, std::numeric_limits<int64_t>::min(), 0}),
                         i64({6}, {2, 2, -2, -2, -1, 5})}});
    EXPECT_EQ(values<int64_t>(y),
              (std::vector<int64_t>{3, -3, -3, 3, std::numeric_limits<int64_t>::min(), 0}));
    Tensor z = run_one({"Div", {i32({2}, {9, -9}), i32({}, {4})}});
    EXPECT_EQ(values<int32_t>(z), (std::vector<int32_t>{2, -2}));
}

TEST(Elementwise, IntegerDivisionByZeroFails) {
    std::string msg = run_error({"Div", {i64({2}, {1, 2}), i64({2}, {1, 0})}});
    EXPECT_NE(msg.find("division by zero"), std::string::npos) << msg;
    EXPECT_NE(msg.find("Div 'test_Div'"), std::string::npos) << msg;
    run_error({"Mod", {i32({1}, {1}), i32({1}, {0})}});
    // Floats follow IEEE.
    Tensor y = run_one({"Div", {f32({2}, {1, -1}), f32({2}, {0, 0})}});
    EXPECT_EQ(values<float>(y), (std::vector<float>{kInf, -kInf}));
}

TEST(Elementwise, IntegerArithmeticWraps) {
    const int32_t mx = std::numeric_limits<int32_t>::max();
    const int32_t mn = std::numeric_limits<int32_t>::min();
    EXPECT_EQ(values<int32_t>(run_one({"Add", {i32({1}, {mx}), i32({1}, {1})}})),
              std::vector<int32_t>{mn});
    EXPECT_EQ(values<int32_t>(run_one({"Mul", {i32({1}, {mx}), i32({1}, {2})}})),
              std::vector<int32_t>{-2});
    EXPECT_EQ(values<uint8_t>(run_one({"Sub", {u8({1}, {3}), u8({1}, {5})}})),
              std::vector<uint8_t>{254});
    EXPECT_EQ(values<int32_t>(run_one({"Neg", {i32({2}, {mn, 5})}})),
              (std::vector<int32_t>{mn, -5}));
    EXPECT_EQ(values<int32_t>(run_one({"Abs", {i32({2}, {mn, -5})}})),
              (std::vector<int32_t>{mn, 5}));
}

TEST(Elementwise, ModSignRules) {
    Tensor a = i64({4}, {-7, 7, -7, 7});
    Tensor b = i64({4}, {3, -3, -3, 3});
    // fmod=0: Python %, sign of the divisor.
    EXPECT_EQ(values<int64_t>(run_one({"Mod", {a, b}})), (std::vector<int64_t>{2, -2, -1, 1}));
    // fmod=1: C fmod, sign of the dividend.
    EXPECT_EQ(values<int64_t>(run_one({"Mod", {a, b}, {{"fmod", attr_i(1)}}})),
              (std::vector<int64_t>{-1, 1, -1, 1}));
    EXPECT_EQ(values<int8_t>(run_one({"Mod", {i8({1}, {-128}), i8({1}, {-1})}})),
              std::vector<int8_t>{0});
    Tensor f = run_one({"Mod", {f32({2}, {-7.5f, 7.5f}), scalar_f32(2)}, {{"fmod", attr_i(1)}}});
    EXPECT_EQ(values<float>(f), (std::vector<float>{-1.5f, 1.5f}));
    std::string msg = run_error({"Mod", {f32({1}, {1}), f32({1}, {1})}});
    EXPECT_NE(msg.find("fmod"), std::string::npos) << msg;
}

TEST(Elementwise, PowMixedTypes) {
    // Float base, int exponent; int base, float exponent; exact int powers.
    EXPECT_EQ(values<float>(run_one({"Pow", {f32({3}, {2, -3, 0.5f}), i64({3}, {10, 3, -2})}})),
              (std::vector<float>{1024, -27, 4}));
    EXPECT_EQ(values<int32_t>(run_one({"Pow", {i32({3}, {1, 2, 3}), f32({3}, {4, 5, 6})}})),
              (std::vector<int32_t>{1, 32, 729}));
    // 3^39 needs all 62 bits: a double pow would round it.
    EXPECT_EQ(values<int64_t>(run_one({"Pow", {i64({1}, {3}), i64({1}, {39})}})),
              std::vector<int64_t>{4052555153018976267LL});
    // Negative integer exponents truncate: 2^-1 = 0, (-1)^-3 = -1, 1^-5 = 1.
    EXPECT_EQ(values<int64_t>(run_one({"Pow", {i64({3}, {2, -1, 1}), i64({3}, {-1, -3, -5})}})),
              (std::vector<int64_t>{0, -1, 1}));
    // Pow's output dtype is the base's.
    Tensor h = run_one({"Pow", {f16({2}, {3, 0.5f}), f32({}, {2})}});
    EXPECT_EQ(h.dtype(), DType::Float16);
    EXPECT_EQ(values_f32(h), (std::vector<float>{9, 0.25f}));
    run_error({"Pow", {i8({1}, {2}), i8({1}, {2})}});
}

TEST(Elementwise, VariadicMinMaxSumMean) {
    Tensor a = f32({2, 1}, {1, 5});
    Tensor b = f32({3}, {0, 3, 6});
    Tensor c = scalar_f32(2);
    EXPECT_EQ(values<float>(run_one({"Max", {a, b, c}})), (std::vector<float>{2, 3, 6, 5, 5, 6}));
    EXPECT_EQ(values<float>(run_one({"Min", {a, b, c}})), (std::vector<float>{0, 1, 1, 0, 2, 2}));
    EXPECT_EQ(values<float>(run_one({"Sum", {a, b, c}})), (std::vector<float>{3, 6, 9, 7, 10, 13}));
    EXPECT_EQ(values<float>(run_one({"Mean", {a, b, c}})),
              (std::vector<float>{1, 2, 3, 7.0f / 3, 10.0f / 3, 13.0f / 3}));
    // One input is a copy.
    EXPECT_EQ(values<float>(run_one({"Max", {b}})), values<float>(b));
    // NaN propagates from either side.
    Tensor m = run_one({"Max", {f32({2}, {kNaN, 1}), f32({2}, {1, kNaN})}});
    EXPECT_TRUE(std::isnan(values<float>(m)[0]));
    EXPECT_TRUE(std::isnan(values<float>(m)[1]));
    EXPECT_EQ(values<int64_t>(run_one({"Min", {i64({2}, {-5, 9}), i64({1}, {0})}})),
              (std::vector<int64_t>{-5, 0}));
    run_error({"Sum", {i64({1}, {1}), i64({1}, {1})}});  // Sum is float-only
    run_error({"Max", {f32({1}, {1}), i64({1}, {1})}});
}

TEST(Elementwise, ComparisonsAndLogic) {
    Tensor a = f32({2, 2}, {1, 2, kNaN, 4});
    Tensor b = f32({2}, {2, 2});
    Tensor lt = run_one({"Less", {a, b}});
    EXPECT_EQ(lt.dtype(), DType::Bool);
    EXPECT_EQ(values<uint8_t>(lt), (std::vector<uint8_t>{1, 0, 0, 0}));
    EXPECT_EQ(values<uint8_t>(run_one({"GreaterOrEqual", {a, b}})),
              (std::vector<uint8_t>{0, 1, 0, 1}));
    EXPECT_EQ(values<uint8_t>(run_one({"LessOrEqual", {a, b}})),
              (std::vector<uint8_t>{1, 1, 0, 0}));
    EXPECT_EQ(values<uint8_t>(run_one({"Greater", {a, b}})), (std::vector<uint8_t>{0, 0, 0, 1}));
    EXPECT_EQ(values<uint8_t>(run_one({"Equal", {a, b}})), (std::vector<uint8_t>{0, 1, 0, 0}));
    EXPECT_EQ(values<uint8_t>(run_one({"Equal", {i64({3}, {1, 2, 3}), scalar_i64(2)}})),
              (std::vector<uint8_t>{0, 1, 0}));
    Tensor p = boolean({4}, {0, 0, 1, 1});
    Tensor q = boolean({4}, {0, 1, 0, 1});
    EXPECT_EQ(values<uint8_t>(run_one({"Equal", {p, q}})), (std::vector<uint8_t>{1, 0, 0, 1}));
    EXPECT_EQ(values<uint8_t>(run_one({"And", {p, q}})), (std::vector<uint8_t>{0, 0, 0, 1}));
    EXPECT_EQ(values<uint8_t>(run_one({"Or", {p, q}})), (std::vector<uint8_t>{0, 1, 1, 1}));
    EXPECT_EQ(values<uint8_t>(run_one({"Xor", {p, q}})), (std::vector<uint8_t>{0, 1, 1, 0}));
    EXPECT_EQ(values<uint8_t>(run_one({"Not", {p}})), (std::vector<uint8_t>{1, 1, 0, 0}));
    std::string msg = run_error({"And", {f32({1}, {1}), f32({1}, {1})}});
    EXPECT_NE(msg.find("float32"), std::string::npos) << msg;
}

TEST(Elementwise, WhereBroadcastsThreeWays) {
    // cond [2,1,1], x [1,3,1], y [2] -> [2,3,2]
    Tensor c = boolean({2, 1, 1}, {1, 0});
    Tensor x = i64({1, 3, 1}, {10, 20, 30});
    Tensor y = i64({2}, {-1, -2});
    Tensor z = run_one({"Where", {c, x, y}});
    EXPECT_EQ(z.shape(), (Shape{2, 3, 2}));
    EXPECT_EQ(values<int64_t>(z),
              (std::vector<int64_t>{10, 10, 20, 20, 30, 30, -1, -2, -1, -2, -1, -2}));
    Tensor h = run_one({"Where", {boolean({2}, {0, 1}), f16({2}, {1.5f, 2.5f}), f16({}, {-3})}});
    EXPECT_EQ(h.dtype(), DType::Float16);
    EXPECT_EQ(values_f32(h), (std::vector<float>{-3, 2.5f}));
    run_error({"Where", {f32({1}, {1}), f32({1}, {1}), f32({1}, {1})}});
    run_error({"Where", {boolean({1}, {1}), f32({1}, {1}), i64({1}, {1})}});
}

TEST(Elementwise, RoundIsHalfToEven) {
    Tensor y = run_one(
        {"Round",
         {f32({10}, {0.5f, 1.5f, 2.5f, -2.5f, 3.5f, -0.5f, 2.4999998f, 2.5000002f, -3.5f, 1e8f})}});
    const std::vector<float> got = values<float>(y);
    EXPECT_EQ(got, (std::vector<float>{0, 2, 2, -2, 4, -0.0f, 2, 3, -4, 1e8f}));
    EXPECT_TRUE(std::signbit(got[5]));  // -0.5 -> -0
    EXPECT_EQ(values_f32(run_one({"Round", {f16({2}, {2.5f, -1.5f})}})),
              (std::vector<float>{2, -2}));
}

TEST(Elementwise, UnaryMathMatchesLibm) {
    std::vector<float> xs;
    for (float v = -6.0f; v <= 6.0f; v += 0.375f) xs.push_back(v);
    Tensor x = f32({static_cast<int64_t>(xs.size())}, xs);
    auto check = [&](const char* op, auto f, std::map<std::string, Attr> attrs = {}) {
        std::vector<float> got = values<float>(run_one({op, {x}, attrs}));
        ASSERT_EQ(got.size(), xs.size());
        for (size_t i = 0; i < xs.size(); ++i) {
            const float want = static_cast<float>(f(xs[i]));
            if (std::isnan(want)) {
                EXPECT_TRUE(std::isnan(got[i])) << op << "(" << xs[i] << ")";
            } else if (std::isinf(want)) {
                EXPECT_EQ(got[i], want) << op << "(" << xs[i] << ")";
            } else {
                EXPECT_NEAR(got[i], want, 2e-6f * std::max(1.0f, std::fabs(want)))
                    << op << "(" << xs[i] << ")";
            }
        }
    };
    check("Sigmoid", [](double v) { return 1 / (1 + std::exp(-v)); });
    check("Tanh", [](double v) { return std::tanh(v); });
    check("Exp", [](double v) { return std::exp(v); });
    check("Erf", [](double v) { return std::erf(v); });
    check("Log", [](double v) { return std::log(v); });
    check("Sqrt", [](double v) { return std::sqrt(v); });
    check("Floor", [](double v) { return std::floor(v); });
    check("Ceil", [](double v) { return std::ceil(v); });
    check("Neg", [](double v) { return -v; });
    check("Abs", [](double v) { return std::fabs(v); });
    check("Reciprocal", [](double v) { return 1 / v; });
    check("Sign", [](double v) { return (v > 0) - (v < 0); });
    check("Relu", [](double v) { return v > 0 ? v : 0; });
    check("Softplus", [](double v) { return std::log(1 + std::exp(v)); });
    check("LeakyRelu", [](double v) { return v < 0 ? 0.1 * v : v; }, {{"alpha", attr_f(0.1f)}});
    check("LeakyRelu", [](double v) { return v < 0 ? 0.01 * v : v; });
    check("HardSigmoid", [](double v) { return std::clamp(0.2 * v + 0.5, 0.0, 1.0); });
    check("HardSigmoid", [](double v) { return std::clamp(0.5 * v + 0.25, 0.0, 1.0); },
          {{"alpha", attr_f(0.5f)}, {"beta", attr_f(0.25f)}});
    check("HardSwish", [](double v) { return v * std::clamp(v / 6 + 0.5, 0.0, 1.0); });
    check("Elu", [](double v) { return v < 0 ? 2.0 * (std::exp(v) - 1) : v; },
          {{"alpha", attr_f(2.0f)}});
    check("Selu", [](double v) {
        const double a = 1.67326319217681884765625, g = 1.05070102214813232421875;
        return v > 0 ? g * v : g * (a * std::exp(v) - a);
    });
}

TEST(Elementwise, ActivationEdgeValues) {
    // Softplus neither overflows nor underflows to 0 too early; Sigmoid saturates cleanly.
    std::vector<float> sp = values<float>(run_one({"Softplus", {f32({3}, {100, -100, 0})}}));
    EXPECT_EQ(sp[0], 100.0f);
    EXPECT_NEAR(sp[1], std::exp(-100.0), 1.5e-45);  // float subnormal: one ulp is 1.4e-45
    EXPECT_GT(sp[1], 0.0f);
    EXPECT_FLOAT_EQ(sp[2], std::log(2.0f));
    std::vector<float> sg = values<float>(run_one({"Sigmoid", {f32({2}, {-200, 200})}}));
    EXPECT_EQ(sg, (std::vector<float>{0, 1}));
    // NaN passes through Relu, Sign, HardSigmoid, Clip.
    for (const char* op : {"Relu", "Sign", "HardSigmoid", "HardSwish", "Clip", "Sigmoid"}) {
        std::vector<float> v = values<float>(run_one({op, {f32({1}, {kNaN})}}));
        EXPECT_TRUE(std::isnan(v[0])) << op;
    }
    EXPECT_EQ(values<int64_t>(run_one({"Relu", {i64({3}, {-4, 0, 9})}})),
              (std::vector<int64_t>{0, 0, 9}));
    EXPECT_EQ(values<int32_t>(run_one({"Sign", {i32({3}, {-4, 0, 9})}})),
              (std::vector<int32_t>{-1, 0, 1}));
    std::string msg = run_error({"Sqrt", {i64({1}, {4})}});
    EXPECT_NE(msg.find("int64"), std::string::npos) << msg;
    EXPECT_NE(msg.find("Sqrt 'test_Sqrt'"), std::string::npos) << msg;
    run_error({"LeakyRelu", {f32({1}, {1})}, {{"alpha", attr_i(1)}}});  // int where float due
}

TEST(Elementwise, Float16RoundsResultsToNearestEven) {
    // 1 + 2^-11 is a tie between 1 and 1 + 2^-10 in float16; even mantissa wins (1).
    // 1 + 3 * 2^-11 ties between 1 + 2^-10 and 1 + 2^-9; even wins (1 + 2^-9).
    Tensor y = run_one({"Add", {f16({2}, {1, 1}), f16({2}, {0x1p-11f, 0x3p-11f})}});
    EXPECT_EQ(y.dtype(), DType::Float16);
    EXPECT_EQ(values_f32(y), (std::vector<float>{1.0f, 1.0f + 0x1p-9f}));
    EXPECT_EQ(values_f32(run_one({"Sqrt", {f16({1}, {2})}})),
              std::vector<float>{half_to_float(float_to_half(std::sqrt(2.0f)))});
}

TEST(Elementwise, ClipForms) {
    Tensor x = f32({5}, {-kInf, -2, 0.5f, 3, kInf});
    const float fmax = std::numeric_limits<float>::max();
    // Clip-11+: absent bounds are the dtype's lowest/max (so infinities are clipped, as in ONNX
    // Runtime); min > max gives max everywhere.
    EXPECT_EQ(values<float>(run_one({"Clip", {x, scalar_f32(-1)}})),
              (std::vector<float>{-1, -1, 0.5f, 3, fmax}));
    EXPECT_EQ(values<float>(run_one({"Clip", {x, Tensor(), f32({1}, {1})}})),
              (std::vector<float>{-fmax, -2, 0.5f, 1, 1}));
    EXPECT_EQ(values_f32(run_one({"Clip", {f16({2}, {-kInf, kInf})}})),
              (std::vector<float>{-65504, 65504}));
    EXPECT_EQ(values<float>(run_one({"Clip", {x, scalar_f32(2), scalar_f32(1)}})),
              (std::vector<float>{1, 1, 1, 1, 1}));
    // Clip-6 attributes with the spec's FLT_MAX defaults.
    EXPECT_EQ(values<float>(run_one({"Clip", {x}, {{"min", attr_f(0)}}, 6})),
              (std::vector<float>{0, 0, 0.5f, 3, fmax}));
    // Integer clip (Clip-12+).
    EXPECT_EQ(
        values<int8_t>(run_one({"Clip", {i8({3}, {-100, 5, 100}), i8({}, {-10}), i8({}, {10})}})),
        (std::vector<int8_t>{-10, 5, 10}));
    run_error({"Clip", {x, f32({2}, {0, 1})}});
    run_error({"Clip", {x, i64({}, {0})}});
    run_error({"Clip", {i64({1}, {1})}, {{"min", attr_f(0)}}, 6});
}

TEST(Elementwise, PReluSlopeBroadcastsToX) {
    Tensor x = f32({1, 2, 2, 2}, {-1, 2, -3, 4, -1, 2, -3, 4});
    Tensor slope = f32({2, 1, 1}, {0.5f, 2});
    Tensor y = run_one({"PRelu", {x, slope}});
    EXPECT_EQ(y.shape(), x.shape());
    EXPECT_EQ(values<float>(y), (std::vector<float>{-0.5f, 2, -1.5f, 4, -2, 2, -6, 4}));
    std::string msg = run_error({"PRelu", {x, f32({3}, {1, 2, 3})}});
    EXPECT_NE(msg.find("slope"), std::string::npos) << msg;
    // Slope would make Y larger than X: not unidirectional.
    run_error({"PRelu", {f32({2}, {1, 2}), f32({3, 2}, {1, 2, 3, 4, 5, 6})}});
}

TEST(Elementwise, PrepareRejectsBadInputs) {
    std::string msg = run_error({"Add", {f32({2}, {1, 2}), i64({2}, {1, 2})}});
    EXPECT_NE(msg.find("int64"), std::string::npos) << msg;
    msg = run_error({"Mul", {f32({2, 3}, {1, 2, 3, 4, 5, 6}), f32({2}, {1, 2})}});
    EXPECT_NE(msg.find("Mul 'test_Mul'"), std::string::npos) << msg;
    EXPECT_NE(msg.find("not broadcastable"), std::string::npos) << msg;
    run_error({"Add", {f32({1}, {1})}});
    run_error({"Relu", {f32({1}, {1}), f32({1}, {1})}});
    run_error({"Add", {boolean({1}, {1}), boolean({1}, {1})}});
}

TEST(Elementwise, WorksWithConstantInputsAtPlanTime) {
    // The executor folds all-constant nodes by running them at plan time; prepare must not care.
    KernelCall call{"Sub", {i64({2}, {640, 480}), i64({}, {32})}};
    call.all_constant = true;
    EXPECT_EQ(values<int64_t>(run_one(call)), (std::vector<int64_t>{608, 448}));
}

}  // namespace
}  // namespace lowbit
