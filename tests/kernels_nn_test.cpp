// Reference nn kernels (conv.cpp, pool.cpp, matmul.cpp, resize.cpp, nn.cpp) against naive
// double-precision loops written here from the ONNX definitions, hand-worked spec examples, and
// algebraic identities (ConvTranspose is the adjoint of Conv).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>

#include "kernel_test_util.h"

namespace lowbit::test {
namespace {

std::vector<float> random_floats(size_t n, uint32_t seed, float lo = -1.0f, float hi = 1.0f) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> d(lo, hi);
    std::vector<float> v(n);
    for (float& x : v) x = d(rng);
    return v;
}

Tensor random_f32(Shape shape, uint32_t seed) {
    const auto n = static_cast<size_t>(shape_numel(shape));
    return f32(std::move(shape), random_floats(n, seed));
}

void expect_near_all(const std::vector<float>& got, const std::vector<double>& want, double tol) {
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < got.size(); ++i) {
        ASSERT_NEAR(got[i], want[i], tol * (1.0 + std::fabs(want[i]))) << "element " << i;
    }
}

void expect_contains(const std::string& msg, std::initializer_list<const char*> parts) {
    for (const char* p : parts) EXPECT_NE(msg.find(p), std::string::npos) << msg << " lacks " << p;
}

// ---- Conv -----------------------------------------------------------------------------------

struct ConvCase {
    int64_t n, c, h, w, m, kh, kw, group;
    std::vector<int64_t> strides, dilations, pads;  // pads: top, left, bottom, right
    bool bias;
};

// Conv straight from the definition, in double: Y[n, m, oh, ow] = B[m] + sum over the group's
// channels and taps that land inside the unpadded input.
std::vector<double> naive_conv(const ConvCase& k, const std::vector<float>& x,
                               const std::vector<float>& w, const std::vector<float>& b,
                               int64_t oh_n, int64_t ow_n) {
    std::vector<double> y;
    const int64_t cg = k.c / k.group, mg = k.m / k.group;
    for (int64_t n = 0; n < k.n; ++n)
        for (int64_t m = 0; m < k.m; ++m)
            for (int64_t oh = 0; oh < oh_n; ++oh)
                for (int64_t ow = 0; ow < ow_n; ++ow) {
                    double acc = k.bias ? b[static_cast<size_t>(m)] : 0.0;
                    const int64_t g = m / mg;
                    for (int64_t ci = 0; ci < cg; ++ci)
                        for (int64_t i = 0; i < k.kh; ++i)
                            for (int64_t j = 0; j < k.kw; ++j) {
                                const int64_t ih =
                                    oh * k.strides[0] - k.pads[0] + i * k.dilations[0];
                                const int64_t iw =
                                    ow * k.strides[1] - k.pads[1] + j * k.dilations[1];
                                if (ih < 0 || ih >= k.h || iw < 0 || iw >= k.w) continue;
                                const int64_t c = g * cg + ci;
                                acc +=
                                    static_cast<double>(x[static_cast<size_t>(
                                        ((n * k.c + c) * k.h + ih) * k.w + iw)]) *
                                    w[static_cast<size_t>(((m * cg + ci) * k.kh + i) * k.kw + j)];
                            }
                    y.push_back(acc);
                }
    return y;
}

void check_conv(const ConvCase& k, uint32_t seed) {
    SCOPED_TRACE(testing::Message() << "conv c=" << k.c << " m=" << k.m << " group=" << k.group
                                    << " k=" << k.kh << "x" << k.kw << " hw=" << k.h << "x" << k.w);
    Tensor x = random_f32({k.n, k.c, k.h, k.w}, seed);
    Tensor w = random_f32({k.m, k.c / k.group, k.kh, k.kw}, seed + 1);
    Tensor b = random_f32({k.m}, seed + 2);
    KernelCall call{"Conv", {x, w}};
    if (k.bias) call.inputs.push_back(b);
    call.attrs["group"] = attr_i(k.group);
    call.attrs["strides"] = attr_ints(k.strides);
    call.attrs["dilations"] = attr_ints(k.dilations);
    call.attrs["pads"] = attr_ints(k.pads);
    call.attrs["kernel_shape"] = attr_ints({k.kh, k.kw});
    Tensor y = run_one(call);
    const int64_t oh =
        (k.h + k.pads[0] + k.pads[2] - ((k.kh - 1) * k.dilations[0] + 1)) / k.strides[0] + 1;
    const int64_t ow =
        (k.w + k.pads[1] + k.pads[3] - ((k.kw - 1) * k.dilations[1] + 1)) / k.strides[1] + 1;
    ASSERT_EQ(y.shape(), (Shape{k.n, k.m, oh, ow}));
    expect_near_all(values<float>(y),
                    naive_conv(k, values<float>(x), values<float>(w), values<float>(b), oh, ow),
                    1e-5);
}

TEST(KernelsNn, ConvMatchesNaiveLoop) {
    const std::vector<ConvCase> cases = {
        // plain 3x3, odd sizes, asymmetric pads, no bias
        {1, 3, 7, 9, 5, 3, 3, 1, {1, 1}, {1, 1}, {1, 0, 2, 1}, false},
        // stride 2 with dilation 2, batch 2
        {2, 4, 11, 10, 6, 3, 3, 1, {2, 2}, {2, 2}, {2, 2, 2, 2}, true},
        // grouped (2 groups), rectangular kernel, anisotropic strides
        {1, 6, 9, 13, 4, 2, 5, 2, {1, 3}, {1, 1}, {0, 2, 1, 2}, true},
        // depthwise 3x3 stride 2 (YOLO SCDown)
        {1, 8, 12, 12, 8, 3, 3, 8, {2, 2}, {1, 1}, {1, 1, 1, 1}, true},
        // depthwise with channel multiplier 2
        {1, 3, 6, 7, 6, 3, 3, 3, {1, 1}, {1, 1}, {1, 1, 1, 1}, true},
        // pointwise fast path; more than one pixel tile (20*20 > 256) and K > one block
        {1, 160, 20, 20, 7, 1, 1, 1, {1, 1}, {1, 1}, {0, 0, 0, 0}, true},
        // 3x3 with K = 40*9 = 360 > one k-block and 23*17 = 391 pixels (two tiles)
        {1, 40, 23, 17, 9, 3, 3, 1, {1, 1}, {1, 1}, {1, 1, 1, 1}, true},
        // 1x1 with stride 2 (not the fast path)
        {1, 5, 9, 9, 3, 1, 1, 1, {2, 2}, {1, 1}, {0, 0, 0, 0}, false},
        // kernel as large as the padded input
        {1, 2, 3, 3, 2, 5, 5, 1, {1, 1}, {1, 1}, {1, 1, 1, 1}, true},
    };
    uint32_t seed = 100;
    for (const ConvCase& k : cases) check_conv(k, seed += 10);
}

TEST(KernelsNn, ConvAutoPad) {
    Tensor x = random_f32({1, 2, 7, 8}, 1);
    Tensor w = random_f32({3, 2, 3, 2}, 2);
    auto shape_for = [&](const char* mode, std::vector<int64_t> strides) {
        KernelCall c{"Conv", {x, w}};
        c.attrs["auto_pad"] = attr_s(mode);
        c.attrs["strides"] = attr_ints(strides);
        return run_one(c);
    };
    EXPECT_EQ(shape_for("SAME_UPPER", {2, 3}).shape(), (Shape{1, 3, 4, 3}));
    EXPECT_EQ(shape_for("VALID", {2, 3}).shape(), (Shape{1, 3, 3, 3}));
    // SAME_UPPER with stride 1: total pad (kh-1, kw-1) = (2, 1); the odd extra of W goes to the
    // end (UPPER) or the beginning (LOWER). Compare with explicit pads.
    auto explicit_pads = [&](std::vector<int64_t> pads) {
        KernelCall c{"Conv", {x, w}};
        c.attrs["pads"] = attr_ints(pads);
        return values<float>(run_one(c));
    };
    EXPECT_EQ(values<float>(shape_for("SAME_UPPER", {1, 1})), explicit_pads({1, 0, 1, 1}));
    EXPECT_EQ(values<float>(shape_for("SAME_LOWER", {1, 1})), explicit_pads({1, 1, 1, 0}));
}

TEST(KernelsNn, Conv1dMatchesNaive) {
    Tensor x = random_f32({2, 3, 11}, 5);
    Tensor w = random_f32({4, 3, 3}, 6);
    KernelCall c{"Conv", {x, w}};
    c.attrs["pads"] = attr_ints({2, 1});
    c.attrs["strides"] = attr_ints({2});
    Tensor y = run_one(c);
    ASSERT_EQ(y.shape(), (Shape{2, 4, 6}));
    ConvCase k{2, 3, 1, 11, 4, 1, 3, 1, {1, 2}, {1, 1}, {0, 2, 0, 1}, false};
    expect_near_all(values<float>(y), naive_conv(k, values<float>(x), values<float>(w), {}, 1, 6),
                    1e-5);
}

TEST(KernelsNn, ConvRejections) {
    KernelCall c3{
        "Conv", {Tensor(DType::Float32, {1, 1, 3, 3, 3}), Tensor(DType::Float32, {1, 1, 2, 2, 2})}};
    expect_contains(run_error(c3), {"Conv 'test_Conv'", "3-D"});
    KernelCall ks{"Conv", {random_f32({1, 1, 4, 4}, 1), random_f32({1, 1, 3, 3}, 2)}};
    ks.attrs["kernel_shape"] = attr_ints({2, 2});
    expect_contains(run_error(ks), {"kernel_shape"});
    KernelCall grp{"Conv", {random_f32({1, 4, 4, 4}, 1), random_f32({2, 3, 3, 3}, 2)}};
    grp.attrs["group"] = attr_i(3);
    expect_contains(run_error(grp), {"group 3"});
    KernelCall ap{"Conv", {random_f32({1, 1, 4, 4}, 1), random_f32({1, 1, 3, 3}, 2)}};
    ap.attrs["auto_pad"] = attr_s("SAME");
    expect_contains(run_error(ap), {"'auto_pad'", "SAME"});
    KernelCall i8c{"Conv", {Tensor(DType::Int8, {1, 1, 4, 4}), Tensor(DType::Int8, {1, 1, 3, 3})}};
    expect_contains(run_error(i8c), {"int8"});
}

// <Conv(x, w), y> == <x, ConvTranspose(y, w)>: ConvTranspose is Conv's adjoint when the
// geometry matches (output_padding restores the input size lost to the stride).
TEST(KernelsNn, ConvTransposeIsConvAdjoint) {
    struct Case {
        int64_t c, h, w, m, k, group;
        std::vector<int64_t> strides, dilations, pads;
    };
    const std::vector<Case> cases = {
        {3, 7, 8, 4, 3, 1, {2, 2}, {1, 1}, {1, 0, 1, 1}},
        {4, 9, 6, 6, 3, 2, {1, 2}, {2, 1}, {2, 1, 0, 1}},
        {2, 5, 5, 2, 2, 2, {3, 3}, {1, 1}, {0, 0, 0, 0}},
    };
    uint32_t seed = 7;
    for (const Case& k : cases) {
        Tensor x = random_f32({1, k.c, k.h, k.w}, ++seed);
        Tensor w = random_f32({k.m, k.c / k.group, k.k, k.k}, ++seed);
        KernelCall conv{"Conv", {x, w}};
        conv.attrs["strides"] = attr_ints(k.strides);
        conv.attrs["dilations"] = attr_ints(k.dilations);
        conv.attrs["pads"] = attr_ints(k.pads);
        conv.attrs["group"] = attr_i(k.group);
        Tensor cx = run_one(conv);
        Tensor y = random_f32(cx.shape(), ++seed);
        std::vector<int64_t> out_pad;
        for (int a = 0; a < 2; ++a) {
            const int64_t in = a == 0 ? k.h : k.w;
            const int64_t full = k.strides[static_cast<size_t>(a)] * (cx.dim(2 + a) - 1) +
                                 (k.k - 1) * k.dilations[static_cast<size_t>(a)] + 1 -
                                 k.pads[static_cast<size_t>(a)] -
                                 k.pads[static_cast<size_t>(a) + 2];
            out_pad.push_back(in - full);
        }
        KernelCall ct{"ConvTranspose", {y, w}};
        ct.attrs["strides"] = attr_ints(k.strides);
        ct.attrs["dilations"] = attr_ints(k.dilations);
        ct.attrs["pads"] = attr_ints(k.pads);
        ct.attrs["group"] = attr_i(k.group);
        ct.attrs["output_padding"] = attr_ints(out_pad);
        Tensor ty = run_one(ct);
        ASSERT_EQ(ty.shape(), x.shape());
        double lhs = 0, rhs = 0;
        const auto vcx = values<float>(cx), vy = values<float>(y);
        const auto vx = values<float>(x), vty = values<float>(ty);
        for (size_t i = 0; i < vcx.size(); ++i) lhs += static_cast<double>(vcx[i]) * vy[i];
        for (size_t i = 0; i < vx.size(); ++i) rhs += static_cast<double>(vx[i]) * vty[i];
        EXPECT_NEAR(lhs, rhs, 1e-4 * (1 + std::fabs(lhs)));
    }
}

TEST(KernelsNn, ConvTransposeOutputShapeAndBias) {
    // ONNX spec example: x 3x3 of ones-free values, W ones, strides 3x2, output_shape 10x8.
    Tensor x = f32({1, 1, 3, 3}, {0, 1, 2, 3, 4, 5, 6, 7, 8});
    Tensor w = f32({1, 2, 3, 3}, std::vector<float>(18, 1.0f));
    KernelCall c{"ConvTranspose", {x, w, f32({2}, {0.5f, -1.0f})}};
    c.attrs["strides"] = attr_ints({3, 2});
    c.attrs["output_shape"] = attr_ints({10, 8});
    Tensor y = run_one(c);
    ASSERT_EQ(y.shape(), (Shape{1, 2, 10, 8}));
    const std::vector<float> v = values<float>(y);
    // Row 0 of channel 0 (ONNX doc): 0 0 1 1 3 2 2 0, plus the bias 0.5.
    const std::vector<float> row0 = {0, 0, 1, 1, 3, 2, 2, 0};
    for (size_t j = 0; j < 8; ++j) EXPECT_FLOAT_EQ(v[j], row0[j] + 0.5f);
    // Row 9 is past every tap: bias only.
    for (size_t j = 0; j < 8; ++j) EXPECT_FLOAT_EQ(v[80 + 72 + j], -1.0f);
}

// ---- Pooling --------------------------------------------------------------------------------

TEST(KernelsNn, MaxPoolCeilModeAndIndices) {
    // ONNX maxpool_2d_ceil: 4x4, kernel 3, stride 2, ceil_mode -> 2x2.
    std::vector<float> v(16);
    for (int i = 0; i < 16; ++i) v[static_cast<size_t>(i)] = static_cast<float>(i + 1);
    KernelCall c{"MaxPool", {f32({1, 1, 4, 4}, v)}};
    c.attrs["kernel_shape"] = attr_ints({3, 3});
    c.attrs["strides"] = attr_ints({2, 2});
    c.attrs["ceil_mode"] = attr_i(1);
    c.num_outputs = 2;
    auto r = run_kernel(c);
    ASSERT_TRUE(r.is_ok()) << r.status().message();
    EXPECT_EQ(values<float>((*r)[0]), (std::vector<float>{11, 12, 15, 16}));
    EXPECT_EQ(values<int64_t>((*r)[1]), (std::vector<int64_t>{10, 11, 14, 15}));
    // Without ceil_mode: one window.
    c.attrs.erase("ceil_mode");
    c.num_outputs = 1;
    EXPECT_EQ(values<float>(run_one(c)), std::vector<float>{11});
    // ceil_mode never starts a window in the end padding: 5 wide, k2 s2 p1 -> 3, not 4.
    KernelCall p{"MaxPool", {f32({1, 1, 1, 5}, {1, 2, 3, 4, 5})}};
    p.attrs["kernel_shape"] = attr_ints({1, 2});
    p.attrs["strides"] = attr_ints({1, 2});
    p.attrs["pads"] = attr_ints({0, 1, 0, 1});
    p.attrs["ceil_mode"] = attr_i(1);
    EXPECT_EQ(values<float>(run_one(p)), (std::vector<float>{1, 3, 5}));
}

TEST(KernelsNn, MaxPoolPadsDilationsAndStorageOrder) {
    // YOLO SPPF: k5 s1 p2 keeps the size; padded taps never win (all values negative).
    Tensor x = f32({1, 1, 3, 4}, {-5, -4, -9, -1, -8, -2, -7, -3, -6, -10, -11, -12});
    KernelCall c{"MaxPool", {x}};
    c.attrs["kernel_shape"] = attr_ints({5, 5});
    c.attrs["pads"] = attr_ints({2, 2, 2, 2});
    EXPECT_EQ(values<float>(run_one(c)),
              (std::vector<float>{-2, -1, -1, -1, -2, -1, -1, -1, -2, -1, -1, -1}));
    // Dilation 2 on a row: windows {0, 2} and {1, 3}.
    KernelCall d{"MaxPool", {f32({1, 1, 1, 4}, {4, 1, 3, 2})}};
    d.attrs["kernel_shape"] = attr_ints({1, 2});
    d.attrs["dilations"] = attr_ints({1, 2});
    EXPECT_EQ(values<float>(run_one(d)), (std::vector<float>{4, 2}));
    // storage_order 1: column-major index within the plane.
    KernelCall s{"MaxPool", {f32({1, 1, 2, 3}, {1, 2, 9, 4, 5, 6})}};
    s.attrs["kernel_shape"] = attr_ints({2, 3});
    s.attrs["storage_order"] = attr_i(1);
    s.num_outputs = 2;
    auto r = run_kernel(s);
    ASSERT_TRUE(r.is_ok());
    EXPECT_EQ(values<int64_t>((*r)[1]), std::vector<int64_t>{4});  // (h0, w2) -> 0 + 2 * 2
    // int8 data.
    KernelCall q{"MaxPool", {i8({1, 1, 2, 2}, {-3, 7, -128, 0})}};
    q.attrs["kernel_shape"] = attr_ints({2, 2});
    EXPECT_EQ(values<int8_t>(run_one(q)), std::vector<int8_t>{7});
    KernelCall bad{"MaxPool", {x}};
    expect_contains(run_error(bad), {"MaxPool 'test_MaxPool'", "kernel_shape"});
}

TEST(KernelsNn, AveragePoolCountIncludePad) {
    Tensor x = f32({1, 1, 3, 3}, {1, 2, 3, 4, 5, 6, 7, 8, 9});
    auto avg = [&](int64_t include_pad, int64_t ceil_mode, std::vector<int64_t> pads) {
        KernelCall c{"AveragePool", {x}};
        c.attrs["kernel_shape"] = attr_ints({2, 2});
        c.attrs["strides"] = attr_ints({2, 2});
        c.attrs["pads"] = attr_ints(pads);
        c.attrs["count_include_pad"] = attr_i(include_pad);
        c.attrs["ceil_mode"] = attr_i(ceil_mode);
        return values<float>(run_one(c));
    };
    // pads 1 on top/left: windows {1}, {2,3}, {4,7}, {5,6,8,9}.
    EXPECT_EQ(avg(0, 0, {1, 1, 0, 0}), (std::vector<float>{1, 2.5f, 5.5f, 7}));
    EXPECT_EQ(avg(1, 0, {1, 1, 0, 0}), (std::vector<float>{0.25f, 1.25f, 2.75f, 7}));
    // ceil_mode overhang past the (zero) end padding never counts, even with count_include_pad.
    EXPECT_EQ(avg(1, 1, {0, 0, 0, 0}), (std::vector<float>{3, 4.5f, 7.5f, 9}));
}

TEST(KernelsNn, GlobalPools) {
    Tensor x = f32({1, 2, 2, 2}, {1, 2, 3, 6, -1, -2, -3, -4});
    Tensor a = run_one({"GlobalAveragePool", {x}});
    EXPECT_EQ(a.shape(), (Shape{1, 2, 1, 1}));
    EXPECT_EQ(values<float>(a), (std::vector<float>{3, -2.5f}));
    EXPECT_EQ(values<float>(run_one({"GlobalMaxPool", {x}})), (std::vector<float>{6, -1}));
}

// ---- MatMul / Gemm ------------------------------------------------------------------------------

TEST(KernelsNn, MatMulBatchedBroadcast) {
    Tensor a = random_f32({2, 1, 3, 4}, 11);
    Tensor b = random_f32({3, 4, 5}, 12);
    Tensor y = run_one({"MatMul", {a, b}});
    ASSERT_EQ(y.shape(), (Shape{2, 3, 3, 5}));
    const auto va = values<float>(a), vb = values<float>(b);
    std::vector<double> want;
    for (int i0 = 0; i0 < 2; ++i0)
        for (int i1 = 0; i1 < 3; ++i1)
            for (int m = 0; m < 3; ++m)
                for (int n = 0; n < 5; ++n) {
                    double acc = 0;
                    for (int k = 0; k < 4; ++k) {
                        acc += static_cast<double>(va[static_cast<size_t>((i0 * 3 + m) * 4 + k)]) *
                               vb[static_cast<size_t>((i1 * 4 + k) * 5 + n)];
                    }
                    want.push_back(acc);
                }
    expect_near_all(values<float>(y), want, 1e-5);
}

TEST(KernelsNn, MatMulVectors) {
    Tensor m = f32({2, 3}, {1, 2, 3, 4, 5, 6});
    Tensor v = f32({3}, {1, 0, -1});
    Tensor mv = run_one({"MatMul", {m, v}});
    EXPECT_EQ(mv.shape(), Shape{2});
    EXPECT_EQ(values<float>(mv), (std::vector<float>{-2, -2}));
    Tensor vm = run_one({"MatMul", {f32({2}, {1, 1}), m}});
    EXPECT_EQ(vm.shape(), Shape{3});
    EXPECT_EQ(values<float>(vm), (std::vector<float>{5, 7, 9}));
    Tensor dot = run_one({"MatMul", {v, v}});
    EXPECT_EQ(dot.shape(), Shape{});
    EXPECT_EQ(values<float>(dot), std::vector<float>{2});
    expect_contains(run_error({"MatMul", {m, m}}), {"MatMul 'test_MatMul'", "disagree"});
}

TEST(KernelsNn, GemmTransposesAndBias) {
    Tensor a = random_f32({4, 3}, 21);  // used as A^T (transA): A is [3, 4]
    Tensor b = random_f32({5, 4}, 22);  // used as B^T (transB): B is [4, 5]
    const auto va = values<float>(a), vb = values<float>(b);
    for (const Shape& cs : {Shape{}, Shape{5}, Shape{3, 1}, Shape{3, 5}}) {
        Tensor c = random_f32(cs, 23);
        KernelCall g{"Gemm", {a, b, c}};
        g.attrs["transA"] = attr_i(1);
        g.attrs["transB"] = attr_i(1);
        g.attrs["alpha"] = attr_f(0.5f);
        g.attrs["beta"] = attr_f(-2.0f);
        Tensor y = run_one(g);
        ASSERT_EQ(y.shape(), (Shape{3, 5}));
        const auto vc = values<float>(c);
        std::vector<double> want;
        for (int i = 0; i < 3; ++i)
            for (int j = 0; j < 5; ++j) {
                double acc = 0;
                for (int k = 0; k < 4; ++k) {
                    acc += static_cast<double>(va[static_cast<size_t>(k * 3 + i)]) *
                           vb[static_cast<size_t>(j * 4 + k)];
                }
                size_t ci = 0;
                if (cs.size() == 1) ci = static_cast<size_t>(j);
                if (cs.size() == 2) ci = static_cast<size_t>(cs[1] == 1 ? i : i * 5 + j);
                want.push_back(0.5 * acc - 2.0 * vc[ci]);
            }
        expect_near_all(values<float>(y), want, 1e-5);
    }
    Tensor y = run_one({"Gemm", {f32({1, 2}, {1, 2}), f32({2, 1}, {3, 4})}});
    EXPECT_EQ(values<float>(y), std::vector<float>{11});
}

// ---- Softmax ------------------------------------------------------------------------------------

TEST(KernelsNn, SoftmaxOpset11CoercesTo2dOpset13UsesOneAxis) {
    Tensor x = random_f32({2, 3, 4}, 31);
    const auto v = values<float>(x);
    KernelCall s11{"Softmax", {x}};
    s11.opset = 11;
    s11.attrs["axis"] = attr_i(1);
    KernelCall s13 = s11;
    s13.opset = 13;
    const auto y11 = values<float>(run_one(s11));
    const auto y13 = values<float>(run_one(s13));
    std::vector<double> w11, w13;
    for (int n = 0; n < 2; ++n) {
        double sum = 0;  // opset 11: over the 12 trailing elements of each n
        for (int i = 0; i < 12; ++i)
            sum += std::exp(static_cast<double>(v[static_cast<size_t>(n * 12 + i)]));
        for (int i = 0; i < 12; ++i)
            w11.push_back(std::exp(static_cast<double>(v[static_cast<size_t>(n * 12 + i)])) / sum);
    }
    for (int n = 0; n < 2; ++n)
        for (int c = 0; c < 3; ++c)
            for (int k = 0; k < 4; ++k) {
                double sum = 0;  // opset 13: over axis 1 only
                for (int j = 0; j < 3; ++j)
                    sum +=
                        std::exp(static_cast<double>(v[static_cast<size_t>((n * 3 + j) * 4 + k)]));
                w13.push_back(
                    std::exp(static_cast<double>(v[static_cast<size_t>((n * 3 + c) * 4 + k)])) /
                    sum);
            }
    expect_near_all(y11, w11, 1e-6);
    expect_near_all(y13, w13, 1e-6);
    // Default axes: 1 for opset 11, -1 for opset 13.
    KernelCall d11{"Softmax", {x}};
    d11.opset = 11;
    expect_near_all(values<float>(run_one(d11)), w11, 1e-6);
    KernelCall d13{"Softmax", {x}};
    const auto yd = values<float>(run_one(d13));
    for (int r = 0; r < 6; ++r) {
        double s = 0;
        for (int k = 0; k < 4; ++k) s += yd[static_cast<size_t>(r * 4 + k)];
        EXPECT_NEAR(s, 1.0, 1e-6);
    }
}

TEST(KernelsNn, SoftmaxLargeValuesAndLogSoftmax) {
    Tensor x = f32({1, 3}, {1000, 1001, 1002});
    const auto y = values<float>(run_one({"Softmax", {x}}));
    const double e0 = std::exp(-2.0), e1 = std::exp(-1.0), s = e0 + e1 + 1;
    expect_near_all(y, {e0 / s, e1 / s, 1 / s}, 1e-6);
    const auto l = values<float>(run_one({"LogSoftmax", {x}}));
    expect_near_all(l, {-2 - std::log(s), -1 - std::log(s), -std::log(s)}, 1e-6);
    // DFL layout: softmax over axis 1 of [1, 16, 4, N] with a wide inner dim (> one chunk).
    Tensor d = random_f32({1, 16, 4, 300}, 33);
    KernelCall c{"Softmax", {d}};
    c.attrs["axis"] = attr_i(1);
    const auto yd = values<float>(run_one(c));
    for (int i = 0; i < 1200; ++i) {
        double sum = 0;
        for (int j = 0; j < 16; ++j) sum += yd[static_cast<size_t>(j * 1200 + i)];
        ASSERT_NEAR(sum, 1.0, 1e-5);
    }
}

// ---- Normalisation
// --------------------------------------------------------------------------------

TEST(KernelsNn, BatchNormInference) {
    Tensor x = random_f32({2, 3, 2, 2}, 41);
    Tensor scale = f32({3}, {1.0f, 0.5f, -2.0f});
    Tensor bias = f32({3}, {0.0f, 1.0f, 0.25f});
    Tensor mean = f32({3}, {0.1f, -0.2f, 0.3f});
    Tensor var = f32({3}, {1.0f, 0.25f, 4.0f});
    KernelCall c{"BatchNormalization", {x, scale, bias, mean, var}};
    c.attrs["epsilon"] = attr_f(1e-3f);
    const auto y = values<float>(run_one(c));
    const auto vx = values<float>(x);
    const float s[] = {1.0f, 0.5f, -2.0f}, b[] = {0, 1, 0.25f}, m[] = {0.1f, -0.2f, 0.3f},
                va[] = {1, 0.25f, 4};
    std::vector<double> want;
    for (size_t i = 0; i < vx.size(); ++i) {
        const size_t ch = i / 4 % 3;
        want.push_back((vx[i] - m[ch]) / std::sqrt(va[ch] + 1e-3) * s[ch] + b[ch]);
    }
    expect_near_all(y, want, 1e-5);
    c.attrs["training_mode"] = attr_i(1);
    expect_contains(run_error(c),
                    {"BatchNormalization 'test_BatchNormalization'", "training_mode"});
}

TEST(KernelsNn, InstanceNormAndLrn) {
    Tensor x = f32({1, 2, 1, 3}, {1, 2, 3, 10, 10, 10});
    KernelCall c{"InstanceNormalization", {x, f32({2}, {2, 1}), f32({2}, {0, 5})}};
    c.attrs["epsilon"] = attr_f(1e-3f);
    const double sd = std::sqrt(2.0 / 3.0 + 1e-3);  // channel 1 is constant: 0 / sqrt(eps)
    expect_near_all(values<float>(run_one(c)), {-2 / sd, 0, 2 / sd, 5, 5, 5}, 1e-5);

    KernelCall l{"LRN", {f32({1, 3, 1, 1}, {1, 2, 3})}};
    l.attrs["size"] = attr_i(2);
    l.attrs["alpha"] = attr_f(0.5f);
    l.attrs["beta"] = attr_f(1.0f);
    l.attrs["bias"] = attr_f(1.0f);
    // size 2: window [c, c + 1]; divisor 1 + 0.25 * sum of squares.
    expect_near_all(values<float>(run_one(l)), {1 / 2.25, 2 / 4.25, 3 / 3.25}, 1e-6);
}

// ---- Resize / Upsample
// ------------------------------------------------------------------------------

KernelCall resize_scales(Tensor x, std::vector<float> scales, std::map<std::string, Attr> attrs) {
    const auto n = static_cast<int64_t>(scales.size());
    KernelCall c{"Resize", {std::move(x), Tensor(), f32({n}, scales)}};
    c.constant_inputs = {2};
    c.attrs = std::move(attrs);
    return c;
}

TEST(KernelsNn, ResizeNearestUltralytics) {
    // nn.Upsample(scale_factor=2, mode="nearest") exports as nearest/asymmetric/floor, scales
    // [1, 1, 2, 2]: every pixel becomes a 2x2 block.
    Tensor x = f32({1, 2, 2, 3}, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12});
    Tensor y = run_one(resize_scales(x, {1, 1, 2, 2},
                                     {{"mode", attr_s("nearest")},
                                      {"coordinate_transformation_mode", attr_s("asymmetric")},
                                      {"nearest_mode", attr_s("floor")}}));
    ASSERT_EQ(y.shape(), (Shape{1, 2, 4, 6}));
    const auto v = values<float>(y), vx = values<float>(x);
    for (int c = 0; c < 2; ++c)
        for (int i = 0; i < 4; ++i)
            for (int j = 0; j < 6; ++j) {
                ASSERT_EQ(v[static_cast<size_t>((c * 4 + i) * 6 + j)],
                          vx[static_cast<size_t>((c * 2 + i / 2) * 3 + j / 2)]);
            }
}

TEST(KernelsNn, ResizeNearestModes) {
    Tensor x = f32({1, 4}, {10, 20, 30, 40});
    auto run = [&](const char* coord, const char* nearest, std::vector<float> scales) {
        return values<float>(
            run_one(resize_scales(x, scales,
                                  {{"coordinate_transformation_mode", attr_s(coord)},
                                   {"nearest_mode", attr_s(nearest)}})));
    };
    using V = std::vector<float>;
    // half_pixel, scale 0.5: x = 2o + 0.5 -> 0.5, 2.5: ties.
    EXPECT_EQ(run("half_pixel", "round_prefer_floor", {1, 0.5f}), (V{10, 30}));
    EXPECT_EQ(run("half_pixel", "round_prefer_ceil", {1, 0.5f}), (V{20, 40}));
    // asymmetric, scale 1.5 -> 6 outputs; x = o / 1.5 = 0, .67, 1.33, 2, 2.67, 3.33.
    EXPECT_EQ(run("asymmetric", "floor", {1, 1.5f}), (V{10, 10, 20, 30, 30, 40}));
    EXPECT_EQ(run("asymmetric", "ceil", {1, 1.5f}), (V{10, 20, 30, 30, 40, 40}));
    // align_corners, 4 -> 6: x = o * 3 / 5 = 0, .6, 1.2, 1.8, 2.4, 3.
    EXPECT_EQ(run("align_corners", "round_prefer_floor", {1, 1.5f}), (V{10, 20, 20, 30, 30, 40}));
    // int64 data moves as bytes.
    KernelCall i{"Resize", {i64({1, 2}, {7, 9}), Tensor(), f32({2}, {1, 2})}};
    i.constant_inputs = {2};
    i.attrs["nearest_mode"] = attr_s("floor");
    i.attrs["coordinate_transformation_mode"] = attr_s("asymmetric");
    EXPECT_EQ(values<int64_t>(run_one(i)), (std::vector<int64_t>{7, 7, 9, 9}));
}

TEST(KernelsNn, ResizeLinear) {
    // ONNX resize_upsample_scales_linear (half_pixel): [[1, 2], [3, 4]] x2.
    Tensor x = f32({1, 1, 2, 2}, {1, 2, 3, 4});
    const auto y =
        values<float>(run_one(resize_scales(x, {1, 1, 2, 2}, {{"mode", attr_s("linear")}})));
    expect_near_all(
        y, {1, 1.25, 1.75, 2, 1.5, 1.75, 2.25, 2.5, 2.5, 2.75, 3.25, 3.5, 3, 3.25, 3.75, 4}, 1e-6);
    // align_corners via sizes: corners are kept exactly, the middle is the mean.
    KernelCall s{"Resize", {x, Tensor(), Tensor(), i64({4}, {1, 1, 3, 3})}};
    s.constant_inputs = {3};
    s.attrs["mode"] = attr_s("linear");
    s.attrs["coordinate_transformation_mode"] = attr_s("align_corners");
    expect_near_all(values<float>(run_one(s)), {1, 1.5, 2, 2, 2.5, 3, 3, 3.5, 4}, 1e-6);
    // align_corners with a scale whose product is not an integer (4 * 0.6 = 2.4 -> 2 outputs)
    // uses the integer output size, as ONNX Runtime and PyTorch: x = o * 3 / 1.
    expect_near_all(values<float>(run_one(resize_scales(
                        f32({1, 4}, {1, 2, 3, 4}), {1, 0.6f},
                        {{"mode", attr_s("linear")},
                         {"coordinate_transformation_mode", attr_s("align_corners")}}))),
                    {1, 4}, 1e-6);
    // pytorch_half_pixel to a single output column samples x = 0.
    KernelCall p{"Resize", {x, Tensor(), Tensor(), i64({4}, {1, 1, 2, 1})}};
    p.constant_inputs = {3};
    p.attrs["mode"] = attr_s("linear");
    p.attrs["coordinate_transformation_mode"] = attr_s("pytorch_half_pixel");
    expect_near_all(values<float>(run_one(p)), {1, 3}, 1e-6);
}

TEST(KernelsNn, ResizeCubicInterpolatesCubicsExactly) {
    // With A = -0.5 (Catmull-Rom), cubic convolution reproduces quadratics at interior points:
    // sample f(i) = i^2 and read f at x = o / 2 (asymmetric, scale 2).
    std::vector<float> v;
    for (int i = 0; i < 8; ++i) v.push_back(static_cast<float>(i * i));
    Tensor x = f32({1, 8}, v);
    const auto y = values<float>(
        run_one(resize_scales(x, {1, 2},
                              {{"mode", attr_s("cubic")},
                               {"cubic_coeff_a", attr_f(-0.5f)},
                               {"coordinate_transformation_mode", attr_s("asymmetric")}})));
    ASSERT_EQ(y.size(), 16u);
    for (int o = 2; o <= 10; ++o)
        EXPECT_NEAR(y[static_cast<size_t>(o)], (o / 2.0) * (o / 2.0), 1e-4);
}

TEST(KernelsNn, ResizeAxesAndRejections) {
    Tensor x = f32({1, 1, 2, 2}, {1, 2, 3, 4});
    KernelCall a{"Resize", {x, Tensor(), f32({1}, {2})}};
    a.opset = 18;
    a.constant_inputs = {2};
    a.attrs["axes"] = attr_ints({-1});
    a.attrs["coordinate_transformation_mode"] = attr_s("asymmetric");
    EXPECT_EQ(values<float>(run_one(a)), (std::vector<float>{1, 1, 2, 2, 3, 3, 4, 4}));

    KernelCall crop = resize_scales(
        x, {1, 1, 2, 2}, {{"coordinate_transformation_mode", attr_s("tf_crop_and_resize")}});
    expect_contains(run_error(crop), {"Resize 'test_Resize'", "coordinate_transformation_mode",
                                      "tf_crop_and_resize"});
    KernelCall runtime{"Resize", {x, Tensor(), f32({4}, {1, 1, 2, 2})}};
    expect_contains(run_error(runtime), {"'scales'", "plan time"});
    KernelCall lin_int{"Resize", {i64({1, 2}, {1, 2}), Tensor(), f32({2}, {1, 2})}};
    lin_int.constant_inputs = {2};
    lin_int.attrs["mode"] = attr_s("linear");
    expect_contains(run_error(lin_int), {"int64"});
}

TEST(KernelsNn, UpsampleLegacy) {
    Tensor x = f32({1, 1, 2, 2}, {1, 2, 3, 4});
    KernelCall u9{"Upsample", {x, f32({4}, {1, 1, 2, 3})}};
    u9.opset = 9;
    u9.constant_inputs = {1};
    Tensor y = run_one(u9);
    ASSERT_EQ(y.shape(), (Shape{1, 1, 4, 6}));
    EXPECT_EQ(values<float>(y), (std::vector<float>{1, 1, 1, 2, 2, 2, 1, 1, 1, 2, 2, 2,
                                                    3, 3, 3, 4, 4, 4, 3, 3, 3, 4, 4, 4}));
    KernelCall u7{"Upsample", {x}};
    u7.opset = 7;
    u7.attrs["scales"] = Attr::make_floats({1, 1, 2, 2});
    u7.attrs["mode"] = attr_s("linear");
    // asymmetric linear: x = o / 2, clamped at the last pixel.
    expect_near_all(values<float>(run_one(u7)),
                    {1, 1.5, 2, 2, 2, 2.5, 3, 3, 3, 3.5, 4, 4, 3, 3.5, 4, 4}, 1e-6);
}

// ---- DepthToSpace / SpaceToDepth ----------------------------------------------------------------

TEST(KernelsNn, DepthToSpaceModesAndInverse) {
    // [1, 8, 1, 1] with blocksize 2 -> [1, 2, 2, 2].
    std::vector<float> v = {0, 1, 2, 3, 4, 5, 6, 7};
    KernelCall dcr{"DepthToSpace", {f32({1, 8, 1, 1}, v)}};
    dcr.attrs["blocksize"] = attr_i(2);
    // DCR: out[c, i, j] = in[(i * 2 + j) * 2 + c]
    EXPECT_EQ(values<float>(run_one(dcr)), (std::vector<float>{0, 2, 4, 6, 1, 3, 5, 7}));
    KernelCall crd = dcr;
    crd.attrs["mode"] = attr_s("CRD");
    // CRD: out[c, i, j] = in[c * 4 + i * 2 + j]
    EXPECT_EQ(values<float>(run_one(crd)), v);

    Tensor x = random_f32({2, 3, 4, 6}, 51);
    KernelCall s2d{"SpaceToDepth", {x}};
    s2d.attrs["blocksize"] = attr_i(2);
    Tensor packed = run_one(s2d);
    EXPECT_EQ(packed.shape(), (Shape{2, 12, 2, 3}));
    KernelCall back{"DepthToSpace", {packed}};
    back.attrs["blocksize"] = attr_i(2);
    EXPECT_EQ(values<float>(run_one(back)), values<float>(x));
}

// GridSample's reference on coordinates with no pixel (infinite, or beyond int64 once
// denormalized, which padding "zeros" keeps): every mode and padding gives a defined value
// (converting them to an index was undefined behaviour, which the sanitizer build aborts on).
// Zeros: taps read 0, an infinite coordinate's weights are NaN (so NaN), a huge one's 0;
// nearest zeros 0 for both. Border: the edge pixel. Reflection: an infinite coordinate is
// NaN, a huge finite one some pixel of the image. A NaN coordinate stays NaN everywhere.
TEST(KernelsNn, GridSampleCoordinatesWithoutAPixel) {
    const Tensor x = f32({1, 1, 2, 3}, {1, 2, 3, 4, 5, 6});
    const float inf = std::numeric_limits<float>::infinity();
    const float nan = std::numeric_limits<float>::quiet_NaN();
    // (x, y) points: +inf, -inf, 1e30, -1e30 in x (y = 0), and NaN.
    const Tensor grid =
        f32({1, 1, 5, 2}, {inf, 0.0f, -inf, 0.0f, 1e30f, 0.0f, -1e30f, 0.0f, nan, 0.0f});
    for (const char* mode : {"nearest", "bilinear", "bicubic"}) {
        for (const char* pad : {"zeros", "border", "reflection"}) {
            SCOPED_TRACE(std::string(mode) + " " + pad);
            KernelCall c{"GridSample", {x, grid}};
            c.opset = 16;
            c.attrs = {{"mode", attr_s(mode)}, {"padding_mode", attr_s(pad)},
                       {"align_corners", attr_i(0)}};
            const std::vector<float> y = values<float>(run_one(c));
            ASSERT_EQ(y.size(), 5u);
            EXPECT_TRUE(std::isnan(y[4]));
            const std::string p = pad, m = mode;
            if (p == "zeros" && m == "nearest") {
                for (int i = 0; i < 4; ++i) EXPECT_EQ(y[static_cast<size_t>(i)], 0.0f) << i;
            } else if (p == "zeros") {
                EXPECT_TRUE(std::isnan(y[0]) && std::isnan(y[1]));
                EXPECT_EQ(y[2], 0.0f);
                EXPECT_EQ(y[3], 0.0f);
            } else if (p == "border") {
                // y = 0 (align_corners 0, H = 2) is halfway between the rows: bilinear
                // averages the edge column's two pixels, nearest rounds to row 0 (half to even).
                const float right = m == "nearest" ? 3.0f : 4.5f;
                const float left = m == "nearest" ? 1.0f : 2.5f;
                if (m != "bicubic") {
                    EXPECT_FLOAT_EQ(y[0], right);
                    EXPECT_FLOAT_EQ(y[2], right);
                    EXPECT_FLOAT_EQ(y[1], left);
                    EXPECT_FLOAT_EQ(y[3], left);
                }
                for (int i = 0; i < 4; ++i) EXPECT_TRUE(std::isfinite(y[static_cast<size_t>(i)]));
            } else {
                EXPECT_TRUE(std::isnan(y[0]) && std::isnan(y[1]));
                EXPECT_TRUE(std::isfinite(y[2]) && std::isfinite(y[3]));
            }
        }
    }
}

}  // namespace
}  // namespace lowbit::test
