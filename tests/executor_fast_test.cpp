// The optimized CPU path (oneDNN conv/matmul, NHWC layout pass, vectorized elementwise, fused
// SiLU) against the reference kernels: every graph here runs twice, once with
// ExecutorOptions::reference_only, and the outputs must agree within 1e-4 of the output's
// largest magnitude (conv accumulation order differs; everything else is close to exact).
// Graphs are built directly with the IR so that each test names exactly what it exercises.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <map>
#include <random>
#include <regex>
#include <set>

#include "ir/graph.h"
#include "runtime/executor.h"
#include "runtime/kernels/cpu/ops.h"

namespace lowbit {
namespace {

Tensor random_tensor(const Shape& shape, uint32_t seed, float lo = -1.0f, float hi = 1.0f) {
    Tensor t(DType::Float32, shape);
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> u(lo, hi);
    for (float& v : t.span<float>()) v = u(rng);
    return t;
}

Tensor i64_tensor(const std::vector<int64_t>& v) {
    return Tensor::from_vector(DType::Int64, {static_cast<int64_t>(v.size())}, v);
}

// A tiny graph builder: inputs, initializers, nodes with generated output names.
class Builder {
public:
    Builder() { model_.opsets = {{"", 17}}; }

    std::string input(const std::string& name, const Shape& shape) {
        lowbit::ValueInfo vi;
        vi.name = name;
        vi.dtype = DType::Float32;
        vi.has_shape = true;
        for (int64_t d : shape) vi.dims.push_back({d, ""});
        model_.graph.inputs.push_back(vi);
        return name;
    }
    std::string init(const Tensor& t) {
        const std::string name = fmt::format("init{}", counter_++);
        model_.graph.set_initializer(name, t);
        return name;
    }
    std::vector<std::string> node(const std::string& op, const std::vector<std::string>& ins,
                                  std::map<std::string, Attr> attrs = {}, size_t n_out = 1) {
        Node n;
        n.op_type = op;
        n.name = fmt::format("/{}_{}", op, counter_++);
        n.inputs = ins;
        n.attrs = std::move(attrs);
        for (size_t i = 0; i < n_out; ++i) n.outputs.push_back(fmt::format("{}:{}", n.name, i));
        model_.graph.nodes.push_back(n);
        return n.outputs;
    }
    std::string op(const std::string& op, const std::vector<std::string>& ins,
                   std::map<std::string, Attr> attrs = {}) {
        return node(op, ins, std::move(attrs))[0];
    }
    // Conv with random weights (and bias), optionally followed by Sigmoid + Mul (SiLU).
    std::string conv(const std::string& x, int64_t c, int64_t m, int64_t k, int64_t stride = 1,
                     int64_t pad = -1, int64_t group = 1, bool silu = true, bool bias = true,
                     int64_t dilation = 1) {
        if (pad < 0) pad = (k - 1) / 2 * dilation;
        const std::string w = init(random_tensor({m, c / group, k, k}, seed_++, -0.3f, 0.3f));
        std::vector<std::string> ins = {x, w};
        if (bias) ins.push_back(init(random_tensor({m}, seed_++)));
        std::map<std::string, Attr> attrs = {{"kernel_shape", Attr::make_ints({k, k})},
                                             {"strides", Attr::make_ints({stride, stride})},
                                             {"pads", Attr::make_ints({pad, pad, pad, pad})},
                                             {"dilations", Attr::make_ints({dilation, dilation})},
                                             {"group", Attr::make_int(group)}};
        std::string y = op("Conv", ins, attrs);
        if (silu) y = op("Mul", {y, op("Sigmoid", {y})});
        return y;
    }
    void output(const std::string& name) {
        lowbit::ValueInfo vi;
        vi.name = name;
        model_.graph.outputs.push_back(vi);
    }
    const Model& model() const { return model_; }

private:
    Model model_;
    int counter_ = 0;
    uint32_t seed_ = 100;
};

// max |a - b| / max(max |b|, 1e-6) over all elements.
double rel_diff(const Tensor& a, const Tensor& b) {
    EXPECT_EQ(a.shape(), b.shape());
    if (a.shape() != b.shape() || a.dtype() != DType::Float32) return 1e9;
    double mx = 1e-6, d = 0;
    for (int64_t i = 0; i < b.numel(); ++i) {
        mx = std::max(mx, static_cast<double>(std::fabs(b.data<float>()[i])));
        d = std::max(d, static_cast<double>(std::fabs(a.data<float>()[i] - b.data<float>()[i])));
    }
    return d / mx;
}

std::unique_ptr<Executor> make(const Model& m, bool reference, int threads = 2,
                               bool winograd = true) {
    ExecutorOptions o;
    o.reference_only = reference;
    o.n_threads = threads;
    o.conv_winograd = winograd;
    auto ex = Executor::create(m, o);
    EXPECT_TRUE(ex.is_ok()) << ex.status().message();
    return ex.is_ok() ? std::move(ex).value() : nullptr;
}

std::vector<Tensor> run(Executor& e, const std::vector<Tensor>& in) {
    auto r = e.run(in);
    EXPECT_TRUE(r.is_ok()) << r.status().message();
    return r.is_ok() ? std::move(r).value() : std::vector<Tensor>{};
}

// Runs `m` fast and reference on the same random inputs; returns the worst relative
// difference over all outputs.
double compare(const Model& m, int threads = 2, uint32_t seed = 7, bool winograd = true) {
    auto fast = make(m, false, threads, winograd);
    auto ref = make(m, true, threads);
    if (!fast || !ref) return 1e9;
    std::vector<Tensor> in;
    for (const auto& d : fast->inputs()) in.push_back(random_tensor(d.shape, seed++, 0.0f, 1.0f));
    auto a = run(*fast, in);
    auto b = run(*ref, in);
    if (a.size() != b.size() || a.empty()) return 1e9;
    double worst = 0;
    for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, rel_diff(a[i], b[i]));
    return worst;
}

constexpr double kTol = 1e-4;

struct ConvCase {
    int64_t c, m, h, w, k, stride, pad, group, dilation;
    bool silu, bias;
};

TEST(ExecutorFast, ConvGrid) {
    const ConvCase cases[] = {
        {3, 16, 33, 31, 3, 2, 1, 1, 1, true, true},     // stem-like, odd sizes
        {16, 24, 20, 20, 1, 1, 0, 1, 1, true, true},    // 1x1
        {24, 24, 17, 19, 3, 1, 1, 24, 1, true, true},   // depthwise
        {32, 32, 15, 15, 3, 2, 1, 32, 1, false, true},  // depthwise stride 2 (SCDown), no act
        {32, 32, 16, 16, 7, 1, 3, 32, 1, true, true},   // depthwise 7x7 (RepVGGDW)
        {12, 18, 14, 13, 3, 1, 1, 3, 1, true, false},   // grouped, no bias
        {8, 16, 21, 21, 3, 1, 2, 1, 2, true, true},     // dilation 2
        {8, 8, 10, 12, 5, 3, 0, 1, 1, false, true},     // stride 3, no pad
        {8, 8, 9, 9, 2, 1, 0, 1, 1, false, true},       // even kernel
        {5, 7, 11, 8, 3, 1, 1, 1, 1, true, true},       // odd channel counts
        // Large enough to be split into row chunks across threads (first/middle/last chunk
        // geometries differ in padding).
        {16, 32, 64, 61, 3, 1, 1, 1, 1, true, true},
        {16, 32, 67, 65, 3, 2, 1, 1, 1, true, true},
        {8, 16, 45, 45, 5, 2, 2, 1, 1, false, true},
        {16, 16, 50, 50, 3, 1, 2, 1, 2, true, true},
        {64, 64, 48, 48, 3, 1, 1, 64, 1, true, true},
        {320, 320, 14, 14, 3, 1, 1, 320, 1, true, true},  // depthwise, one chunk per thread
        {64, 64, 40, 40, 1, 1, 0, 1, 1, true, false},
        {3, 24, 130, 129, 3, 2, 1, 1, 1, true, true},
    };
    for (const ConvCase& c : cases) {
        Builder b;
        const std::string x = b.input("x", {1, c.c, c.h, c.w});
        b.output(b.conv(x, c.c, c.m, c.k, c.stride, c.pad, c.group, c.silu, c.bias, c.dilation));
        for (int threads : {1, 2}) {
            EXPECT_LT(compare(b.model(), threads), kTol)
                << "conv c" << c.c << " m" << c.m << " k" << c.k << " s" << c.stride << " g"
                << c.group << " d" << c.dilation << " threads " << threads;
        }
    }
}

// Dense 3x3 stride-1 convs run as Winograd when oneDNN accepts the shape (channels in
// multiples of 16 here, big enough to be chunked across threads); conv_winograd = false turns
// it off. Both must match the reference.
TEST(ExecutorFast, WinogradAndDirect3x3) {
    Builder b;
    const std::string x = b.input("x", {1, 32, 44, 37});
    std::string y = b.conv(x, 32, 48, 3);
    y = b.op("Add", {y, b.conv(y, 48, 48, 3)});
    b.output(b.conv(y, 48, 64, 3, 1, -1, 1, false, false));
    for (bool wino : {true, false}) {
        EXPECT_LT(compare(b.model(), 2, 7, wino), kTol) << "winograd " << wino;
        EXPECT_LT(compare(b.model(), 1, 7, wino), kTol) << "winograd " << wino;
    }
}

// The fast executor at 2 and 3 threads gives one thread's outputs bit for bit on `in`.
void expect_threads_match_one(const Model& m, const Tensor& in, const std::string& what) {
    auto one = make(m, false, 1);
    ASSERT_TRUE(one);
    const auto want = run(*one, {in});
    ASSERT_EQ(want.size(), 1u);
    for (int threads : {2, 3}) {
        auto many = make(m, false, threads);
        ASSERT_TRUE(many);
        const auto got = run(*many, {in});
        ASSERT_EQ(got.size(), 1u);
        const auto a = got[0].span<float>();
        const auto e = want[0].span<float>();
        EXPECT_TRUE(std::equal(a.begin(), a.end(), e.begin(), e.end()))
            << what << ", " << threads << " threads: " << rel_diff(got[0], want[0]);
    }
}

// Winograd 3x3 convs (kernels/cpu/conv.cpp): those whose input outweighs their weights are cut
// into 8-row bands at every thread count, each band on whichever Winograd kernel oneDNN picks
// for it (128 channels at 40x40: F(2x2, 3x3) for the whole map, F(4x4, 3x3) for its bands;
// F(2x2, 3x3) bands compute extra padded rows they drop); the plan does not depend on the
// thread count. Small maps with many channels (weights over input: 128 channels at 12x12) keep
// the thread-count plans, whose row or channel chunks must keep the whole conv's kernel. Either
// way 1, 2 and 3 threads must give the same bits, and the reference's values.
TEST(ExecutorFast, WinogradChunksMatchOneThread) {
    for (const Shape& shape : std::vector<Shape>{
             {1, 48, 40, 40}, {1, 40, 42, 37}, {1, 128, 40, 40}, {1, 64, 36, 30}, {1, 128, 12, 12}}) {
        Builder b;
        const int64_t c = shape[1];
        const std::string x = b.input("x", shape);
        std::string y = b.conv(x, c, c, 3);
        y = b.op("Add", {y, b.conv(y, c, c, 3)});
        b.output(b.conv(y, c, 64, 3, 1, -1, 1, false, false));
        EXPECT_LT(compare(b.model(), 1), kTol) << shape_str(shape);
        expect_threads_match_one(b.model(), random_tensor(shape, 11, 0.0f, 1.0f),
                                 shape_str(shape));
    }
}

TEST(ExecutorFast, ConvAsymmetricPadsAndAutoPad) {
    for (const std::string auto_pad : {"NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"}) {
        Builder b;
        const std::string x = b.input("x", {1, 6, 13, 10});
        std::map<std::string, Attr> attrs = {{"kernel_shape", Attr::make_ints({3, 4})},
                                             {"strides", Attr::make_ints({2, 3})},
                                             {"auto_pad", Attr::make_string(auto_pad)}};
        if (auto_pad == "NOTSET") attrs["pads"] = Attr::make_ints({0, 2, 1, 1});
        const std::string w = b.init(random_tensor({8, 6, 3, 4}, 3));
        b.output(b.op("Conv", {x, w}, attrs));
        EXPECT_LT(compare(b.model()), kTol) << auto_pad;
    }
}

TEST(ExecutorFast, Batch2) {
    Builder b;
    const std::string x = b.input("x", {2, 8, 12, 12});
    std::string y = b.conv(x, 8, 16, 3);
    y = b.conv(y, 16, 16, 3, 1, -1, 16);
    b.output(b.op("Add", {y, b.conv(y, 16, 16, 1)}));
    EXPECT_LT(compare(b.model()), kTol);
}

// A C2f/SPPF/FPN-shaped block: NHWC must flow through Split, Add (residual), Concat, MaxPool
// and Resize, with reorders only before the plain-layout tail (Reshape, Transpose).
TEST(ExecutorFast, NhwcPropagation) {
    Builder b;
    const std::string x = b.input("images", {1, 3, 32, 32});
    const std::string a = b.conv(x, 3, 16, 3, 2);  // [1,16,16,16]
    const auto parts =
        b.node("Split", {a, b.init(i64_tensor({6, 10}))}, {{"axis", Attr::make_int(1)}}, 2);
    const std::string r = b.op("Add", {parts[1], b.conv(b.conv(parts[1], 10, 10, 3), 10, 10, 3)});
    const std::string cat = b.op("Concat", {parts[0], parts[1], r}, {{"axis", Attr::make_int(1)}});
    const std::string c = b.conv(cat, 26, 12, 1);
    const std::string p1 = b.op("MaxPool", {c},
                                {{"kernel_shape", Attr::make_ints({5, 5})},
                                 {"strides", Attr::make_ints({1, 1})},
                                 {"pads", Attr::make_ints({2, 2, 2, 2})}});
    const std::string p2 = b.op("MaxPool", {p1},
                                {{"kernel_shape", Attr::make_ints({3, 3})},
                                 {"strides", Attr::make_ints({2, 2})},
                                 {"ceil_mode", Attr::make_int(1)}});
    const Tensor scales = Tensor::from_vector<float>(DType::Float32, {4}, {1, 1, 2, 2});
    const std::string up =
        b.op("Resize", {p2, "", b.init(scales)},
             {{"mode", Attr::make_string("nearest")},
              {"coordinate_transformation_mode", Attr::make_string("asymmetric")},
              {"nearest_mode", Attr::make_string("floor")}});
    const std::string cat2 = b.op("Concat", {up, p1, c}, {{"axis", Attr::make_int(-3)}});
    const std::string h = b.conv(cat2, 36, 8, 3);
    const std::string flat = b.op("Reshape", {h, b.init(i64_tensor({1, 8, -1}))});
    const std::string tr = b.op("Transpose", {flat}, {{"perm", Attr::make_ints({0, 2, 1})}});
    b.output(tr);
    b.output(h);  // an NHWC tensor that is also a graph output
    b.output(p2);
    EXPECT_LT(compare(b.model()), kTol);
    EXPECT_LT(compare(b.model(), 1), kTol);
}

// Elementwise ops the fast path has no kernel for run their reference kernel on NHWC data;
// per-channel operands ([1, C, 1, 1]) broadcast along NHWC rows; a broadcast the fast path
// cannot express forces a reorder.
TEST(ExecutorFast, ElementwiseOnNhwc) {
    Builder b;
    const std::string x = b.input("x", {1, 8, 9, 11});
    const std::string a = b.conv(x, 8, 16, 3);
    const std::string relu = b.op("Relu", {b.op("Sub", {a, b.init(random_tensor({}, 1))})});
    const std::string clip = b.op("Clip", {relu, b.init(random_tensor({}, 2, 0.0f, 0.1f)),
                                           b.init(random_tensor({}, 3, 0.5f, 1.0f))});
    const std::string ch = b.op("Mul", {clip, b.init(random_tensor({1, 16, 1, 1}, 4))});
    const std::string ch2 = b.op("Add", {b.init(random_tensor({16, 1, 1}, 5)), ch});
    const std::string rowb = b.op("Add", {ch2, b.init(random_tensor({1, 1, 1, 11}, 6))});
    const std::string d =
        b.op("Div", {b.conv(rowb, 16, 16, 1), b.init(random_tensor({1}, 7, 1.0f, 2.0f))});
    const std::string t = b.op("Tanh", {b.op("Add", {d, a})});
    b.output(b.conv(t, 16, 4, 3, 1, -1, 1, false));
    EXPECT_LT(compare(b.model()), kTol);
}

// YOLOv10's PSA attention shape: conv -> reshape -> split -> transpose -> matmul -> softmax
// -> matmul -> reshape -> conv, plus a DFL-style softmax over a non-innermost axis.
TEST(ExecutorFast, AttentionAndSoftmax) {
    Builder b;
    const std::string x = b.input("x", {1, 16, 6, 7});
    const std::string qkv = b.conv(x, 16, 48, 1, 1, 0, 1, false);
    const std::string r = b.op("Reshape", {qkv, b.init(i64_tensor({1, 2, 24, 42}))});
    const auto qkv3 =
        b.node("Split", {r, b.init(i64_tensor({4, 4, 16}))}, {{"axis", Attr::make_int(2)}}, 3);
    const std::string qt = b.op("Transpose", {qkv3[0]}, {{"perm", Attr::make_ints({0, 1, 3, 2})}});
    const std::string att =
        b.op("Mul", {b.op("MatMul", {qt, qkv3[1]}), b.init(random_tensor({}, 9))});
    const std::string sm = b.op("Softmax", {att}, {{"axis", Attr::make_int(-1)}});
    const std::string smt = b.op("Transpose", {sm}, {{"perm", Attr::make_ints({0, 1, 3, 2})}});
    const std::string o = b.op("MatMul", {qkv3[2], smt});
    const std::string img = b.op("Reshape", {o, b.init(i64_tensor({1, 32, 6, 7}))});
    const std::string y = b.conv(img, 32, 16, 3, 1, -1, 16);
    const std::string dfl = b.op("Reshape", {y, b.init(i64_tensor({1, 4, 4, 42}))});
    b.output(b.op("Softmax", {dfl}, {{"axis", Attr::make_int(1)}}));
    b.output(b.op("MatMul", {b.op("Reshape", {y, b.init(i64_tensor({16, 42}))}),
                             b.init(random_tensor({42, 5}, 11))}));
    EXPECT_LT(compare(b.model()), kTol);
}

// `m` at 2 and 1 threads against the reference kernels, with `aliases` steps of the fast
// program turned into aliases (memory_plan.h) and `reference` left as reference copies.
void expect_aliased_matches_reference(const Model& m, int64_t aliases, int64_t reference) {
    EXPECT_LT(compare(m), kTol);
    EXPECT_LT(compare(m, 1), kTol);
    auto fast = make(m, false);
    ASSERT_TRUE(fast);
    const auto& kernels = fast->kernel_report().kernels;
    EXPECT_EQ(kernels.count("alias") ? kernels.at("alias") : 0, aliases);
    EXPECT_EQ(kernels.count("reference") ? kernels.at("reference") : 0, reference);
}

// Reshape, Flatten, Squeeze, Unsqueeze and Identity steps, and Splits into runs of their input's
// bytes, become second names of their input's memory (memory_plan.h alias_copy_steps): of a
// graph input, chained, as graph outputs (also of a tensor that is itself a graph output), of
// an NHWC conv output (through its reorder), and read late, after steps that would reuse the
// memory if the root's lifetime ended at the alias step. The outputs equal the reference's
// within kTol (the convs), and every such step is an alias.
TEST(ExecutorFast, ShapeOnlyStepsAlias) {
    Builder b;
    const std::string x = b.input("x", {1, 8, 12, 10});
    const std::string rx = b.op("Reshape", {x, b.init(i64_tensor({1, 8, 120}))});
    const std::string sm = b.op("Softmax", {rx}, {{"axis", Attr::make_int(-1)}});
    const std::string early =
        b.op("Sigmoid", {b.op("Flatten", {sm}, {{"axis", Attr::make_int(1)}})});
    const std::string kept = b.op("Identity", {early});
    const std::string late = b.op("Reshape", {kept, b.init(i64_tensor({1, 8, 12, 10}))});
    std::string y = b.conv(x, 8, 32, 3);
    for (int i = 0; i < 3; ++i) y = b.conv(y, 32, 32, 3);
    const std::string y8 = b.conv(y, 32, 8, 1);
    const std::string sq = b.op("Squeeze", {b.op("Unsqueeze", {y8, b.init(i64_tensor({0}))}),
                                            b.init(i64_tensor({0}))});
    b.output(b.op("Add", {sq, late}));
    b.output(kept);
    b.output(b.op("Identity", {kept}));
    b.output(b.op("Reshape", {rx, b.init(i64_tensor({960}))}));
    // Splits of a [1, 8, 120] softmax along axis 1 (parts of its bytes; the second part is read
    // after the convs) and of a batch-2 reshape (not runs of its bytes: stays a step).
    const auto parts = b.node("Split", {sm, b.init(i64_tensor({3, 5}))},
                              {{"axis", Attr::make_int(1)}}, 2);
    b.output(b.op("Sigmoid", {parts[0]}));
    const std::string y5 = b.op("Reshape", {b.conv(y, 32, 5, 1), b.init(i64_tensor({1, 5, 120}))});
    b.output(b.op("Add", {parts[1], y5}));
    const auto halves = b.node("Split", {b.op("Reshape", {sm, b.init(i64_tensor({2, 4, 120}))}),
                                         b.init(i64_tensor({1, 3}))},
                               {{"axis", Attr::make_int(1)}}, 2);
    b.output(b.op("Sigmoid", {halves[1]}));
    expect_aliased_matches_reference(b.model(), 11, 1);  // the batch-2 Split stays a step
}

// Slices whose output is one run of their input's elements become aliases at that run's
// offset (Kernel::output_runs_of_input): rows 2..5 of a [1, 8, 120] map, one 50-element piece of
// a row (every other dim 1), a negative-index range; across the last axis, with a step of 2 or
// a negative step they stay copies.
TEST(ExecutorFast, ContiguousSlicesAlias) {
    Builder b;
    const std::string x = b.input("x", {1, 8, 12, 10});
    const std::string sm = b.op("Softmax", {b.op("Reshape", {x, b.init(i64_tensor({1, 8, 120}))})},
                                {{"axis", Attr::make_int(-1)}});
    auto slice = [&](std::vector<int64_t> starts, std::vector<int64_t> ends,
                     std::vector<int64_t> axes, std::vector<int64_t> steps) {
        return b.op("Slice", {sm, b.init(i64_tensor(starts)), b.init(i64_tensor(ends)),
                              b.init(i64_tensor(axes)), b.init(i64_tensor(steps))});
    };
    b.output(b.op("Sigmoid", {slice({2}, {6}, {1}, {1})}));
    b.output(slice({3, 10}, {4, 60}, {1, 2}, {1, 1}));
    b.output(slice({-3}, {100}, {-2}, {1}));
    b.output(slice({5}, {50}, {2}, {1}));
    b.output(slice({0}, {8}, {1}, {2}));
    b.output(slice({6}, {1}, {1}, {-1}));
    expect_aliased_matches_reference(b.model(), 4, 3);  // the Reshape and three Slices
}

// Plain Concats whose inputs are runs of the output's bytes (memory_plan.h alias_concat_inputs):
// the producers (a reorder of an NHWC conv, a Softmax, a Sigmoid, a Reshape's root) write into
// the output; an input that is also a graph output, one read again after the Concat, and a
// Concat of a Concat (chained) must come out right; a Concat with a graph input stays a step.
TEST(ExecutorFast, PlainConcatInputsWrittenInPlace) {
    Builder b;
    const std::string x = b.input("x", {1, 8, 12, 10});
    const std::string a = b.op("Reshape", {b.conv(x, 8, 16, 3), b.init(i64_tensor({1, 16, 120}))});
    const std::string sm = b.op("Softmax", {b.op("Reshape", {x, b.init(i64_tensor({1, 8, 120}))})},
                                {{"axis", Attr::make_int(-1)}});
    const std::string sg = b.op("Sigmoid", {sm});
    const std::string cat = b.op("Concat", {a, sm, sg}, {{"axis", Attr::make_int(1)}});
    const std::string cat2 =
        b.op("Concat", {cat, b.op("Relu", {sm})}, {{"axis", Attr::make_int(-2)}});
    b.output(b.op("Softmax", {cat2}, {{"axis", Attr::make_int(1)}}));
    b.output(sg);
    b.output(b.op("Add", {sm, b.init(random_tensor({120}, 5))}));
    b.output(b.op("Concat", {sm, b.op("Reshape", {x, b.init(i64_tensor({1, 8, 120}))})},
                  {{"axis", Attr::make_int(1)}}));
    expect_aliased_matches_reference(b.model(), 5, 1);  // three Reshapes, two Concats
}

// A plain Concat along an axis with a dim > 1 before it (the YOLO heads' per-level anchors,
// [1, 8, A_i] along 2) runs as block copies (concat_plain), one whose dims before the axis are
// all 1 stays a reference step for the in-place plan above (here: it has a graph input), and
// both match the reference kernels at 2 and 1 threads.
TEST(ExecutorFast, PlainConcatAlongAnInnerAxis) {
    Builder b;
    const std::string x = b.input("x", {1, 8, 12, 10});
    const std::string a = b.op("Reshape", {b.conv(x, 8, 8, 3), b.init(i64_tensor({1, 8, 120}))});
    const std::string s = b.op("Reshape", {b.conv(x, 8, 8, 3, 2), b.init(i64_tensor({1, 8, 30}))});
    const std::string g = b.op("Reshape", {x, b.init(i64_tensor({1, 8, 120}))});
    b.output(b.op("Sigmoid", {b.op("Concat", {a, s, a}, {{"axis", Attr::make_int(2)}})}));
    b.output(b.op("Concat", {a, g}, {{"axis", Attr::make_int(1)}}));
    EXPECT_LT(compare(b.model()), kTol);
    EXPECT_LT(compare(b.model(), 1), kTol);
    auto fast = make(b.model(), false);
    ASSERT_TRUE(fast);
    const auto& kernels = fast->kernel_report().kernels;
    EXPECT_EQ(kernels.count("concat_plain") ? kernels.at("concat_plain") : 0, 1);
    EXPECT_EQ(kernels.count("reference") ? kernels.at("reference") : 0, 1);
}

// Producers write their Concat slices in place; inputs that are also read elsewhere, graph
// outputs, repeated inputs, graph inputs (reordered) and constants must all still come out right.
TEST(ExecutorFast, ConcatInPlaceEdgeCases) {
    Builder b;
    const std::string x = b.input("x", {2, 8, 24, 20});
    const std::string a = b.conv(x, 8, 16, 3);                   // read by two concats
    const std::string c = b.conv(x, 8, 12, 1, 1, -1, 1, false);  // also a graph output
    const std::string d = b.conv(a, 16, 16, 3, 1, -1, 16);       // only read by the concat
    const std::string k = b.init(random_tensor({2, 4, 24, 20}, 21));
    const std::string cat1 = b.op("Concat", {a, c, d, a, x, k}, {{"axis", Attr::make_int(1)}});
    const std::string cat2 =
        b.op("Concat", {b.conv(cat1, 72, 8, 1), a}, {{"axis", Attr::make_int(1)}});
    b.output(b.conv(cat2, 24, 8, 3));
    b.output(c);
    b.output(cat1);
    EXPECT_LT(compare(b.model()), kTol);
    EXPECT_LT(compare(b.model(), 1), kTol);
}

// ConvTranspose with kernel == stride runs as a matmul and a scatter of its taps (deconv_taps),
// writing straight into the channel Concat it feeds; it must match the reference kernel with a
// folded BatchNormalization + Relu, as a Concat's second input, when its result is also a graph
// output (the dense tensor is kept), at 1, 2 and 3 threads and batch 2. A ConvTranspose of
// another geometry (4x4 s2 pad 1) into the same Concat stays on oneDNN's deconvolution.
TEST(ExecutorFast, DeconvTapsIntoConcat) {
    Builder b;
    const std::string x = b.input("x", {2, 16, 12, 10});
    const std::string skip = b.input("skip", {2, 8, 24, 20});
    const auto deconv = [&](const std::string& in, int64_t c, int64_t m, int64_t k, int64_t s,
                            int64_t pad) {
        const std::string w = b.init(random_tensor({c, m, k, k}, 300 + k + m, -0.3f, 0.3f));
        const std::string bias = b.init(random_tensor({m}, 400 + m));
        return b.op("ConvTranspose", {in, w, bias},
                    {{"kernel_shape", Attr::make_ints({k, k})},
                     {"strides", Attr::make_ints({s, s})},
                     {"pads", Attr::make_ints({pad, pad, pad, pad})}});
    };
    const std::string f = b.conv(x, 16, 24, 3);
    // Up 1: ConvTranspose -> BatchNormalization -> Relu, read only by the Concat.
    std::string up1 = deconv(f, 24, 12, 2, 2, 0);
    const std::string scale = b.init(random_tensor({12}, 51, 0.5f, 1.5f));
    const std::string shift = b.init(random_tensor({12}, 52));
    const std::string mean = b.init(random_tensor({12}, 53));
    const std::string var = b.init(random_tensor({12}, 54, 0.5f, 2.0f));
    up1 = b.op("Relu", {b.op("BatchNormalization", {up1, scale, shift, mean, var})});
    // Up 2: plain, also a graph output. Up 3: 4x4 s2 pad 1 (not kernel == stride).
    const std::string up2 = deconv(f, 24, 20, 2, 2, 0);
    const std::string up3 = deconv(f, 24, 4, 4, 2, 1);
    const std::string cat = b.op("Concat", {skip, up1, up2, up3}, {{"axis", Attr::make_int(1)}});
    b.output(b.conv(cat, 44, 8, 3));
    b.output(up2);
    // Kernel 3 == stride 3 on a graph input, read by the graph output only.
    b.output(deconv(x, 16, 6, 3, 3, 0));
    for (int threads : {1, 2, 3}) {
        EXPECT_LT(compare(b.model(), threads), kTol) << threads << " threads";
    }
    auto fast = make(b.model(), false, 2);
    ASSERT_TRUE(fast);
    const auto& kernels = fast->kernel_report().kernels;
    EXPECT_EQ(kernels.count("deconv_taps") ? kernels.at("deconv_taps") : 0, 3);
    EXPECT_EQ(kernels.count("deconv") ? kernels.at("deconv") : 0, 1);
}

// Dense convs whose weights exceed the per-core L2 (and at least a quarter of their input; a
// kernel above 1x1) run as several primitives of 64 to 160 output channels, as many as the L2
// holds the weights of (kernels/cpu/conv.cpp, plan_chunks): 512 and 576
// channels, stride 1 and 2, with and without bias, a folded BatchNormalization, SiLU and a
// residual Add, at 1 and 2 threads (row chunks) and batch 2; Winograd off, which would take
// the stride-1 convs. The step label must say so (else the test would pass without exercising
// the split).
TEST(ExecutorFast, ConvOutputChannelParts) {
    struct Case {
        int64_t c, batch, h, w, stride;
        bool bias, bn, residual;
    };
    const Case cases[] = {
        {512, 1, 13, 12, 2, true, false, false},
        {576, 1, 9, 10, 1, false, true, true},
        {512, 2, 10, 9, 1, true, false, true},
    };
    for (const Case& c : cases) {
        Builder b;
        const std::string x = b.input("x", {c.batch, c.c, c.h, c.w});
        std::string y = b.conv(x, c.c, c.c, 3, c.stride, -1, 1, !c.bn, c.bias);
        if (c.bn) {
            const std::vector<std::string> bn = {
                y, b.init(random_tensor({c.c}, 1, 0.5f, 1.5f)), b.init(random_tensor({c.c}, 2)),
                b.init(random_tensor({c.c}, 3)), b.init(random_tensor({c.c}, 4, 0.5f, 2.0f))};
            y = b.op("BatchNormalization", bn);
            y = b.op("Mul", {y, b.op("Sigmoid", {y})});
        }
        if (c.residual) y = b.op("Add", {y, x});
        b.output(y);
        for (int threads : {1, 2}) {
            EXPECT_LT(compare(b.model(), threads, 7, false), kTol)
                << "c" << c.c << " s" << c.stride << " threads " << threads;
            ExecutorOptions o;
            o.n_threads = threads;
            o.conv_winograd = false;
            o.step_times = true;
            auto ex = Executor::create(b.model(), o);
            ASSERT_TRUE(ex.is_ok()) << ex.status().message();
            std::vector<Tensor> in;
            for (const auto& d : (*ex)->inputs()) in.push_back(random_tensor(d.shape, 5));
            run(**ex, in);
            bool split = false;
            for (const StepTime& st : (*ex)->step_times()) {
                std::smatch m;
                split |= std::regex_search(st.label, m, std::regex(R"(x(\d+) channel chunks)")) &&
                         std::stoi(m[1]) >= 4;
            }
            EXPECT_TRUE(split) << "c" << c.c << ": the conv did not run in output-channel parts";
        }
    }
}

// With several threads, convs whose weights outweigh their input (small maps with many
// channels, like ResNet-50's last stages) are cut into ranges of output channels instead of
// rows (kernels/cpu/conv.cpp): Winograd and direct 3x3, a strided 1x1, a folded
// BatchNormalization, a residual Add + Relu, 200 output channels (no multiple of 16) whose
// folded Split feeds an in-place Concat and a graph output, batch 1 and 2. Every output channel
// is computed as with one thread, so the outputs must equal one thread's bit for bit, and match
// the reference.
TEST(ExecutorFast, ChannelChunksMatchOneThread) {
    for (int64_t batch : {1, 2}) {
        Builder b;
        const std::string x = b.input("x", {batch, 128, 14, 14});
        std::string y = b.op("Relu", {b.conv(x, 128, 256, 3, 1, -1, 1, false)});
        y = b.conv(y, 256, 256, 3, 2, -1, 1, false);  // 7x7 from here
        const std::string scale = b.init(random_tensor({256}, 61, 0.5f, 1.5f));
        const std::string shift = b.init(random_tensor({256}, 62));
        const std::string mean = b.init(random_tensor({256}, 63));
        const std::string var = b.init(random_tensor({256}, 64, 0.5f, 2.0f));
        y = b.op("Relu", {b.op("BatchNormalization", {y, scale, shift, mean, var})});
        const std::string down = b.conv(x, 128, 256, 1, 2, 0, 1, false);
        y = b.op("Relu", {b.op("Add", {b.conv(y, 256, 256, 1, 1, 0, 1, false), down})});
        const std::string z = b.conv(y, 256, 200, 1, 1, 0, 1, false);
        const auto parts =
            b.node("Split", {z, b.init(i64_tensor({72, 128}))}, {{"axis", Attr::make_int(1)}}, 2);
        const std::string cat = b.op("Concat", {parts[1], b.conv(y, 256, 64, 3), parts[0]},
                                     {{"axis", Attr::make_int(1)}});
        b.output(b.conv(cat, 264, 32, 3));
        b.output(parts[0]);
        EXPECT_LT(compare(b.model(), 2), kTol) << "batch " << batch;
        std::vector<Tensor> in;
        in.push_back(random_tensor({batch, 128, 14, 14}, 12, 0.0f, 1.0f));
        auto one = make(b.model(), false, 1);
        ASSERT_TRUE(one);
        const auto want = run(*one, in);
        ASSERT_EQ(want.size(), 2u);
        for (int threads : {2, 3}) {
            ExecutorOptions o;
            o.n_threads = threads;
            o.step_times = true;
            auto many = Executor::create(b.model(), o);
            ASSERT_TRUE(many.is_ok()) << many.status().message();
            const auto got = run(**many, in);
            ASSERT_EQ(got.size(), 2u);
            for (size_t i = 0; i < got.size(); ++i) {
                const auto a = got[i].span<float>();
                const auto e = want[i].span<float>();
                EXPECT_TRUE(std::equal(a.begin(), a.end(), e.begin(), e.end()))
                    << "batch " << batch << ", output " << i << ", " << threads
                    << " threads: " << rel_diff(got[i], want[i]);
            }
            int chunked = 0;
            for (const StepTime& st : (*many)->step_times()) {
                chunked += st.label.find("channel chunks") != std::string::npos;
            }
            EXPECT_GE(chunked, 5) << threads << " threads";
        }
        // A node override that hands the convs other weight buffers (of the same values) gets
        // them reordered per chunk at run time: same outputs as the planned weights.
        std::vector<std::vector<Tensor>> hooked;
        for (bool replace : {false, true}) {
            auto e = make(b.model(), false, 2);
            ASSERT_TRUE(e);
            e->set_node_override([replace](size_t, const Node& node, std::vector<Tensor>& ins) {
                if (replace && node.op_type == "Conv") ins[1] = ins[1].clone();
                return Status::ok();
            });
            hooked.push_back(run(*e, in));
            ASSERT_EQ(hooked.back().size(), 2u);
        }
        for (size_t i = 0; i < 2; ++i) {
            const auto a = hooked[1][i].span<float>();
            const auto e = hooked[0][i].span<float>();
            EXPECT_TRUE(std::equal(a.begin(), a.end(), e.begin(), e.end()))
                << "batch " << batch << ", output " << i
                << " with replaced weights: " << rel_diff(hooked[1][i], hooked[0][i]);
        }
    }
}

// Constant Pad of H/W on an NHWC tensor stays NHWC (kernel row pad_nhwc), as in RT-DETR's
// HGStem: Conv -> Pad (bottom/right 1) -> MaxPool 2x2 stride 1 (ceil_mode) and Conv 2x2 ->
// Concat; then a Pad with other begins/ends and a non-zero constant_value, batch 2, 1 and 2
// threads, against the reference.
TEST(ExecutorFast, PadNhwc) {
    Builder b;
    const std::string x = b.input("x", {2, 3, 23, 21});
    const std::string s = b.conv(x, 3, 16, 3, 2);
    const std::string p = b.op("Pad", {s, b.init(i64_tensor({0, 0, 0, 0, 0, 0, 1, 1}))});
    const std::string pool = b.op("MaxPool", {p},
                                  {{"kernel_shape", Attr::make_ints({2, 2})},
                                   {"strides", Attr::make_ints({1, 1})},
                                   {"ceil_mode", Attr::make_int(1)}});
    const std::string c = b.conv(p, 16, 16, 2, 1, 0);
    const std::string cat = b.op("Concat", {pool, c}, {{"axis", Attr::make_int(1)}});
    Tensor value(DType::Float32, {});
    value.data<float>()[0] = -0.75f;
    const std::string p2 =
        b.op("Pad", {cat, b.init(i64_tensor({0, 0, 2, 0, 0, 0, 1, 3})), b.init(value)});
    b.output(b.conv(p2, 32, 8, 3));
    for (int threads : {1, 2}) EXPECT_LT(compare(b.model(), threads), kTol) << threads;
    auto ex = make(b.model(), false);
    ASSERT_TRUE(ex);
    const auto& kernels = ex->kernel_report().kernels;
    EXPECT_EQ(kernels.count("pad_nhwc") ? kernels.at("pad_nhwc") : 0, 2);
    EXPECT_EQ(kernels.count("maxpool_nhwc") ? kernels.at("maxpool_nhwc") : 0, 1);
}

// A squeeze-excitation block (MobileNetV3's shape): GlobalAveragePool over maps of more than
// 1024 pixels (summed in pixel ranges, kernels/cpu/nhwc_ops.cpp) with one and with 15 channel
// blocks, the two 1x1 convs on the 1x1 map (weights large enough to be cut into channel
// chunks), HardSigmoid (fused into the conv before it) and the per-channel Mul; batch 2. The
// result must match the reference, and equal one thread's bit for bit at 2 and 3 threads, with
// no reorder of the [N, C, 1, 1] tensors between layouts.
TEST(ExecutorFast, SqueezeExcitationMatchesOneThread) {
    Builder b;
    const std::string x = b.input("x", {2, 48, 36, 36});
    const std::string pooled = b.op("GlobalAveragePool", {x});
    const std::string a = b.conv(x, 48, 960, 1, 1, 0, 1, false);
    std::string s = b.op("GlobalAveragePool", {a});
    s = b.op("Relu", {b.conv(s, 960, 240, 1, 1, 0, 1, false)});
    s = b.op("HardSigmoid", {b.conv(s, 240, 960, 1, 1, 0, 1, false)},
             {{"alpha", Attr::make_float(1.0f / 6)}});
    b.output(b.conv(b.op("Mul", {a, s}), 960, 32, 1, 1, 0, 1, false));
    b.output(pooled);
    // A HardSigmoid fused into a conv on a whole map, other alpha/beta, values in all three
    // pieces (0, the line, 1).
    b.output(b.op("HardSigmoid", {b.conv(x, 48, 24, 3, 1, -1, 1, false)},
                  {{"alpha", Attr::make_float(0.7f)}, {"beta", Attr::make_float(0.4f)}}));
    for (int threads : {1, 2, 3}) {
        EXPECT_LT(compare(b.model(), threads), kTol) << threads << " threads";
    }
    const std::vector<Tensor> in = {random_tensor({2, 48, 36, 36}, 13, 0.0f, 1.0f)};
    auto one = make(b.model(), false, 1);
    ASSERT_TRUE(one);
    const auto want = run(*one, in);
    ASSERT_EQ(want.size(), 3u);
    // Both HardSigmoids run in their conv's epilogue, as the reference's arithmetic.
    EXPECT_EQ(one->kernel_report().kernels.count("ref_elementwise"), 0u);
    // Reorders: x into the first conv, and the batch-2 Mul (run by the reference kernel, the
    // fast per-channel Mul takes batch 1 only) reads `a` plain and writes plain for the last
    // conv. None for the [2, 960, 1, 1] scale: it has the same bytes in NHWC and plain order,
    // so the Mul reads the HardSigmoid's output itself.
    const auto& kernels = one->kernel_report().kernels;
    EXPECT_EQ(kernels.count("reorder") ? kernels.at("reorder") : 0, 3);
    for (int threads : {2, 3}) {
        ExecutorOptions o;
        o.n_threads = threads;
        o.step_times = true;
        auto many = Executor::create(b.model(), o);
        ASSERT_TRUE(many.is_ok()) << many.status().message();
        const auto got = run(**many, in);
        ASSERT_EQ(got.size(), 3u);
        for (size_t i = 0; i < got.size(); ++i) {
            const auto g = got[i].span<float>();
            const auto e = want[i].span<float>();
            EXPECT_TRUE(std::equal(g.begin(), g.end(), e.begin(), e.end()))
                << "output " << i << ", " << threads << " threads: " << rel_diff(got[i], want[i]);
        }
        int chunked = 0, hardsigmoid = 0;
        for (const StepTime& st : (*many)->step_times()) {
            chunked += st.label.find("channel chunks") != std::string::npos;
            hardsigmoid += st.label.find("+HardSigmoid") != std::string::npos;
        }
        EXPECT_GE(chunked, 2) << threads << " threads";
        EXPECT_EQ(hardsigmoid, 2) << threads << " threads";
    }
}

// Batch 2 with convs large enough to be chunked: chunks loop over the images.
TEST(ExecutorFast, ChunkedConvBatch2) {
    Builder b;
    const std::string x = b.input("x", {2, 16, 40, 36});
    std::string y = b.conv(x, 16, 32, 3, 2);
    y = b.op("Add", {y, b.conv(y, 32, 32, 3)});
    b.output(b.conv(y, 32, 32, 3, 1, -1, 32));
    EXPECT_LT(compare(b.model()), kTol);
}

// Elementwise ops without a fast kernel run their reference kernel over slices in parallel;
// QuantizeLinear/DequantizeLinear (per tensor, as on activations) must stay bit-exact.
TEST(ExecutorFast, ParallelReferenceElementwise) {
    Builder b;
    const std::string x = b.input("x", {1, 16, 96, 90});
    // A 1x1 conv with identity weights: exact in both paths, and its output is stored NHWC.
    // (Quantizing a conv result that differs in the last bit could flip a rounding.)
    std::vector<float> eye(16 * 16, 0.0f);
    for (int i = 0; i < 16; ++i) eye[static_cast<size_t>(i * 16 + i)] = 1.0f;
    const std::string a =
        b.op("Conv", {x, b.init(Tensor::from_vector(DType::Float32, {16, 16, 1, 1}, eye))});
    const std::string scale = b.init(Tensor::from_vector<float>(DType::Float32, {}, {0.02f}));
    const std::string zp = b.init(Tensor::from_vector<int8_t>(DType::Int8, {}, {3}));
    const std::string q = b.op("QuantizeLinear", {a, scale, zp});
    const std::string dq = b.op("DequantizeLinear", {q, scale, zp});
    const std::string c =
        b.op("Clip", {b.op("Relu", {dq}), b.init(random_tensor({}, 1, 0.0f, 0.1f)),
                      b.init(random_tensor({}, 2, 0.4f, 0.6f))});
    b.output(b.conv(c, 16, 8, 3, 1, -1, 1, false));
    b.output(dq);
    b.output(b.op("Tanh", {x}));
    EXPECT_LT(compare(b.model()), kTol);
}

TEST(ExecutorFast, TransposeVariants) {
    const std::vector<std::pair<Shape, std::vector<int64_t>>> cases = {
        {{2, 3, 1, 5, 7}, {3, 0, 4, 2, 1}},
        {{1, 144, 37}, {0, 2, 1}},
        {{3, 17, 19}, {2, 0, 1}},
        {{4, 5, 6, 7}, {0, 3, 2, 1}},
        {{4, 5, 6, 7}, {1, 0, 2, 3}},  // innermost axis kept: reference path
        {{33, 31}, {}},                // default perm: reverse
    };
    for (const auto& [shape, perm] : cases) {
        Builder b;
        const std::string x = b.input("x", shape);
        std::map<std::string, Attr> attrs;
        if (!perm.empty()) attrs["perm"] = Attr::make_ints(perm);
        b.output(b.op("Transpose", {b.op("Neg", {x})}, attrs));
        EXPECT_EQ(compare(b.model()), 0.0) << shape_str(shape);
    }
}

Model observer_model() {
    Builder b;
    const std::string x = b.input("x", {1, 4, 10, 10});
    const std::string a = b.conv(x, 4, 8, 3);
    const auto parts =
        b.node("Split", {a, b.init(i64_tensor({4, 4}))}, {{"axis", Attr::make_int(1)}}, 2);
    const std::string c = b.conv(parts[1], 4, 4, 3, 1, -1, 4);
    const std::string cat =
        b.op("Concat", {parts[0], b.op("Add", {parts[1], c})}, {{"axis", Attr::make_int(1)}});
    const std::string y = b.conv(cat, 8, 6, 3, 2);
    b.output(b.op("Reshape", {y, b.init(i64_tensor({1, 6, 25}))}));
    return b.model();
}

// The observer sees every produced tensor, in ONNX layout, with the reference values — also
// the conv outputs and sigmoids that the fast program fuses away.
TEST(ExecutorFast, ObserverSeesPlainTensors) {
    const Model m = observer_model();
    std::map<std::string, Tensor> seen[2];
    std::vector<std::string> order[2];
    const Tensor in = random_tensor({1, 4, 10, 10}, 5, 0.0f, 1.0f);
    std::vector<Tensor> outs[2];
    for (int ref = 0; ref < 2; ++ref) {
        auto e = make(m, ref == 1);
        ASSERT_TRUE(e);
        e->set_observer([&, ref](size_t, const Node& n, const std::string& name, const Tensor& t) {
            seen[ref][name] = t.clone();
            order[ref].push_back(name);
        });
        outs[ref] = run(*e, {in});
    }
    EXPECT_EQ(order[0], order[1]);
    size_t produced = 0;
    for (const Node& n : m.graph.nodes) produced += n.outputs.size();
    EXPECT_EQ(seen[0].size(), produced);
    for (const auto& [name, t] : seen[1]) {
        ASSERT_TRUE(seen[0].count(name)) << name;
        EXPECT_LT(rel_diff(seen[0][name], t), kTol) << name;
    }
    ASSERT_EQ(outs[0].size(), 1u);
    EXPECT_LT(rel_diff(outs[0][0], outs[1][0]), kTol);
}

// A node override that replaces Conv weights (a fake-quantized copy, as sensitivity does) and
// one that replaces an NHWC-stored activation input must both take effect on the fast path.
TEST(ExecutorFast, OverrideReplacesWeightsAndActivations) {
    const Model m = observer_model();
    std::vector<std::string> convs;
    for (const Node& n : m.graph.nodes) {
        if (n.op_type == "Conv") convs.push_back(n.name);
    }
    ASSERT_GE(convs.size(), 3u);
    auto coarse = [](const Tensor& t) {
        Tensor c = t.clone();
        for (float& v : c.span<float>()) v = std::round(v * 4.0f) / 4.0f;
        return c;
    };
    NodeOverride ov = [&](size_t, const Node& n, std::vector<Tensor>& ins) -> Status {
        if (n.name == convs[1]) ins[1] = coarse(ins[1]);  // depthwise weights
        if (n.name == convs[2]) ins[0] = coarse(ins[0]);  // activation read from an NHWC tensor
        if (n.op_type == "Add") ins[0] = coarse(ins[0]);
        return Status::ok();
    };
    const Tensor in = random_tensor({1, 4, 10, 10}, 5, 0.0f, 1.0f);
    auto plain_fast = make(m, false);
    auto fast = make(m, false);
    auto ref = make(m, true);
    ASSERT_TRUE(plain_fast && fast && ref);
    fast->set_node_override(ov);
    ref->set_node_override(ov);
    const auto base = run(*plain_fast, {in});
    const auto a = run(*fast, {in});
    const auto b = run(*ref, {in});
    ASSERT_EQ(a.size(), 1u);
    ASSERT_EQ(b.size(), 1u);
    EXPECT_LT(rel_diff(a[0], b[0]), kTol);
    EXPECT_GT(rel_diff(base[0], b[0]), 1e-3) << "the override had no visible effect";
    // Clearing the hook returns to the fused program and the unmodified result.
    fast->set_node_override(nullptr);
    const auto again = run(*fast, {in});
    EXPECT_LT(rel_diff(again[0], base[0]), 1e-6);
}

// A conv result that is also read by an op other than SiLU must not be fused away.
TEST(ExecutorFast, NoFusionWhenConvOutputIsShared) {
    Builder b;
    const std::string x = b.input("x", {1, 4, 8, 8});
    const std::string w = b.init(random_tensor({8, 4, 3, 3}, 1));
    const std::string c = b.op("Conv", {x, w}, {{"pads", Attr::make_ints({1, 1, 1, 1})}});
    const std::string s = b.op("Mul", {c, b.op("Sigmoid", {c})});
    b.output(b.op("Add", {s, c}));
    b.output(c);
    EXPECT_LT(compare(b.model()), kTol);
}

// GELU's Erf chain (PyTorch export: Div(x, sqrt 2) -> Erf -> Add(., 1) -> Mul(x, .) -> Mul(., 0.5))
// is one fused step; operands either way round, plain and NHWC inputs, 1-3 threads, a length
// with a masked tail. A chain whose intermediate is also read elsewhere, or with another
// constant, is not fused and still correct.
TEST(ExecutorFast, GeluChainFused) {
    auto gelu = [](Builder& b, const std::string& x, float one, bool swap) {
        const std::string d = b.op("Div", {x, b.init(Tensor::from_vector(DType::Float32, {},
                                                                           std::vector<float>{1.41421356f}))});
        const std::string e = b.op("Erf", {d});
        const std::string c1 = b.init(Tensor::from_vector(DType::Float32, {1}, std::vector<float>{one}));
        const std::string a = swap ? b.op("Add", {c1, e}) : b.op("Add", {e, c1});
        const std::string m = swap ? b.op("Mul", {a, x}) : b.op("Mul", {x, a});
        const std::string h = b.init(Tensor::from_vector(DType::Float32, {}, std::vector<float>{0.5f}));
        return swap ? b.op("Mul", {h, m}) : b.op("Mul", {m, h});
    };
    Builder b;
    const std::string x = b.input("x", {1, 5, 7, 37});
    b.output(gelu(b, b.op("Sub", {x, b.init(random_tensor({}, 3, 0.4f, 0.6f))}), 1.0f, false));
    b.output(gelu(b, b.conv(x, 5, 16, 3, 1, -1, 1, false), 1.0f, true));  // NHWC input
    b.output(gelu(b, b.op("Neg", {x}), 2.0f, false));                      // not GELU
    for (int threads : {1, 2, 3}) {
        EXPECT_LT(compare(b.model(), threads), kTol) << threads << " threads";
    }
    auto fast = make(b.model(), false, 2);
    ASSERT_TRUE(fast);
    const auto& kernels = fast->kernel_report().kernels;
    EXPECT_EQ(kernels.count("gelu") ? kernels.at("gelu") : 0, 2);
    EXPECT_EQ(kernels.count("erf") ? kernels.at("erf") : 0, 1);

    // The Erf output also read by a graph output: no fusion.
    Builder s;
    const std::string y = s.input("y", {2, 40});
    const std::string e = s.op("Erf", {s.op("Div", {y, s.init(Tensor::from_vector(
                                                         DType::Float32, {}, std::vector<float>{1.41421356f}))})});
    const std::string a = s.op("Add", {e, s.init(Tensor::from_vector(DType::Float32, {}, std::vector<float>{1.0f}))});
    s.output(s.op("Mul", {s.op("Mul", {y, a}), s.init(Tensor::from_vector(DType::Float32, {}, std::vector<float>{0.5f}))}));
    s.output(e);
    EXPECT_LT(compare(s.model()), kTol);
    auto fs = make(s.model(), false, 2);
    ASSERT_TRUE(fs);
    EXPECT_EQ(fs->kernel_report().kernels.count("gelu"), 0u);
}

// MatMul -> Add(., bias) along the last axis is one matmul step (bias either side, [N] or
// [1, 1, N]); an Add whose operand is not such a vector, or a product also read elsewhere,
// stays a separate step.
TEST(ExecutorFast, MatMulBiasFused) {
    Builder b;
    const std::string x = b.input("x", {1, 9, 9, 24});
    const std::string w1 = b.init(random_tensor({24, 48}, 1));
    const std::string h = b.op("Add", {b.init(random_tensor({48}, 2)), b.op("MatMul", {x, w1})});
    const std::string w2 = b.init(random_tensor({48, 24}, 3));
    b.output(b.op("Add", {b.op("MatMul", {h, w2}), b.init(random_tensor({1, 1, 24}, 4))}));
    const std::string p = b.op("MatMul", {x, b.init(random_tensor({24, 8}, 5))});
    b.output(b.op("Add", {p, b.init(random_tensor({9, 1, 8}, 6))}));  // not a bias vector
    const std::string q = b.op("MatMul", {x, b.init(random_tensor({24, 8}, 7))});
    b.output(b.op("Add", {q, b.init(random_tensor({8}, 8))}));
    b.output(q);  // the product is an output too
    for (int threads : {1, 2, 3}) {
        EXPECT_LT(compare(b.model(), threads), kTol) << threads << " threads";
    }
    auto fast = make(b.model(), false, 2);
    ASSERT_TRUE(fast);
    const auto& kernels = fast->kernel_report().kernels;
    EXPECT_EQ(kernels.count("matmul") ? kernels.at("matmul") : 0, 4);
    // q's Add (the [9, 1, 8] one runs on another row); the two fused Adds are no steps.
    EXPECT_EQ(kernels.count("binary") ? kernels.at("binary") : 0, 1);
}

// LayerNorm over the last axis as PyTorch exports it below opset 17: ReduceMean -> Sub -> Pow 2
// -> ReduceMean -> Add eps -> Sqrt -> Div [-> Mul gamma] [-> Add beta].
struct LnOptions {
    float eps = 1e-6f;
    bool affine = true;
    int64_t axis = -1;  // both ReduceMeans' axes
    float power = 2.0f;
    bool eps_vector = false;  // eps as a [1] tensor of another rank than a scalar: still fused
};

std::string layer_norm(Builder& b, const std::string& x, int64_t c, const LnOptions& o = {}) {
    const std::map<std::string, Attr> axes = {{"axes", Attr::make_ints({o.axis})}};
    const std::string m = b.op("ReduceMean", {x}, axes);
    const std::string d = b.op("Sub", {x, m});
    const std::string p = b.op(
        "Pow", {d, b.init(Tensor::from_vector(DType::Float32, {}, std::vector<float>{o.power}))});
    const std::string v = b.op("ReduceMean", {p}, axes);
    const Shape eps_shape = o.eps_vector ? Shape{1} : Shape{};
    const std::string a = b.op(
        "Add",
        {v, b.init(Tensor::from_vector(DType::Float32, eps_shape, std::vector<float>{o.eps}))});
    std::string y = b.op("Div", {d, b.op("Sqrt", {a})});
    if (o.affine) {
        y = b.op("Mul", {y, b.init(random_tensor({c}, 31, 0.5f, 1.5f))});
        y = b.op("Add", {b.init(random_tensor({c}, 32)), y});
    }
    return y;
}

size_t kernel_count(const Executor& e, const std::string& kernel) {
    const auto& k = e.kernel_report().kernels;
    return k.count(kernel) ? static_cast<size_t>(k.at(kernel)) : 0;
}

// The decomposed LayerNorm is one fused step (kernels/cpu/layer_norm.cpp): plain rows of
// several lengths (masked tails; 1..3 threads), with and without gamma/beta, and between the
// Transposes of ConvNeXt's LayerNorm2d (reads the conv's NHWC output, writes NHWC for the next
// conv: no transpose step left).
TEST(ExecutorFast, LayerNormFused) {
    Builder b;
    const std::string x = b.input("x", {1, 6, 10, 11});
    const std::string t = b.op("Add", {x, b.init(random_tensor({11}, 3, 2.0f, 4.0f))});
    b.output(layer_norm(b, t, 11));  // plain, 11 per row, offset mean
    b.output(layer_norm(b, b.op("Neg", {x}), 11, {1e-5f, false}));  // no affine
    const std::string c = b.conv(x, 6, 40, 3, 1, -1, 1, false);
    const std::string cl = b.op("Transpose", {c}, {{"perm", Attr::make_ints({0, 2, 3, 1})}});
    const std::string n = layer_norm(b, cl, 40);
    const std::string back = b.op("Transpose", {n}, {{"perm", Attr::make_ints({0, 3, 1, 2})}});
    b.output(b.conv(back, 40, 8, 1, 1, 0, 1, false));
    const std::string y = b.input("y", {3, 17, 100});   // rank 3, rows of 100 (6 + 4 lanes)
    b.output(layer_norm(b, y, 100, {1e-6f, true, 2}));  // axes [2] is the last axis too
    for (int threads : {1, 2, 3}) {
        EXPECT_LT(compare(b.model(), threads), kTol) << threads << " threads";
    }
    auto fast = make(b.model(), false, 2);
    ASSERT_TRUE(fast);
    EXPECT_EQ(kernel_count(*fast, "layer_norm"), 4u);
    EXPECT_EQ(kernel_count(*fast, "transpose_layout"), 0u);
    EXPECT_EQ(kernel_count(*fast, "reduce_mean_last"), 0u);
    EXPECT_EQ(kernel_count(*fast, "reorder"), 1u);  // x into the conv, none around the LayerNorm
}

// Near misses run unfused, and still right: a ReduceMean over another axis, Pow 3, an
// intermediate that is also a graph output, a [1] eps (fused: one value), a gamma of another
// length (the LayerNorm is fused without it, the Mul runs on its own).
TEST(ExecutorFast, LayerNormNearMissesNotFused) {
    Builder b;
    const std::string x = b.input("x", {2, 9, 24});
    b.output(layer_norm(b, x, 24, {1e-6f, true, 1}));                // axes [1]: not the last axis
    b.output(layer_norm(b, x, 24, {1e-6f, true, -1, 3.0f}));         // Pow 3
    b.output(layer_norm(b, x, 24, {1e-6f, false, -1, 2.0f, true}));  // eps [1]: fused
    {
        const std::map<std::string, Attr> axes = {{"axes", Attr::make_ints({-1})}};
        const std::string m = b.op("ReduceMean", {x}, axes);
        const std::string d = b.op("Sub", {x, m});
        const std::string p = b.op(
            "Pow", {d, b.init(Tensor::from_vector(DType::Float32, {}, std::vector<float>{2.0f}))});
        const std::string v = b.op("ReduceMean", {p}, axes);
        const std::string a = b.op(
            "Add", {v, b.init(Tensor::from_vector(DType::Float32, {}, std::vector<float>{1e-5f}))});
        b.output(b.op("Div", {d, b.op("Sqrt", {a})}));
        b.output(v);  // the variance is an output too
    }
    // A gamma that is not one value per row element: the Mul runs on its own.
    b.output(
        b.op("Mul", {layer_norm(b, x, 24, {1e-6f, false}), b.init(random_tensor({9, 1}, 40))}));
    for (int threads : {1, 2}) {
        EXPECT_LT(compare(b.model(), threads), kTol) << threads << " threads";
    }
    auto fast = make(b.model(), false, 2);
    ASSERT_TRUE(fast);
    EXPECT_EQ(kernel_count(*fast, "layer_norm"), 2u);  // the [1] eps one and the last one
}

// The LayerNormalization op (opset 17) over the last axis runs as the same fused step, plain and
// between ConvNeXt's Transposes; over two axes, or with its Mean output used, it runs on the
// reference kernel.
TEST(ExecutorFast, LayerNormalizationOpFused) {
    Builder b;
    auto ln = [&](const std::string& x, const Shape& p, int64_t axis, bool bias, size_t outs = 1) {
        std::vector<std::string> ins = {x, b.init(random_tensor(p, 50, 0.5f, 1.5f))};
        if (bias) ins.push_back(b.init(random_tensor(p, 51)));
        return b.node("LayerNormalization", ins,
                      {{"axis", Attr::make_int(axis)}, {"epsilon", Attr::make_float(1e-6f)}}, outs);
    };
    const std::string x = b.input("x", {2, 7, 37});
    b.output(ln(x, {37}, -1, true)[0]);
    b.output(ln(x, {7, 37}, 1, true)[0]);             // two axes: reference kernel
    const auto with_mean = ln(x, {37}, 2, false, 2);  // Mean used: reference kernel
    b.output(with_mean[0]);
    b.output(with_mean[1]);
    const std::string z = b.input("z", {1, 3, 9, 10});
    const std::string c = b.conv(z, 3, 24, 3, 1, -1, 1, false);
    const std::string cl = b.op("Transpose", {c}, {{"perm", Attr::make_ints({0, 2, 3, 1})}});
    const std::string n = ln(cl, {24}, 3, false)[0];
    const std::string back = b.op("Transpose", {n}, {{"perm", Attr::make_ints({0, 3, 1, 2})}});
    b.output(b.conv(back, 24, 8, 1, 1, 0, 1, false));
    for (int threads : {1, 2}) {
        EXPECT_LT(compare(b.model(), threads), kTol) << threads << " threads";
    }
    auto fast = make(b.model(), false, 2);
    ASSERT_TRUE(fast);
    EXPECT_EQ(kernel_count(*fast, "layer_norm"), 2u);
    EXPECT_EQ(kernel_count(*fast, "transpose_layout"), 0u);
}

// layer_norm_rows_ref, the fused kernel's readable reference, computes what the unfused
// reference kernels compute.
TEST(ExecutorFast, LayerNormRowsRefMatchesUnfusedReference) {
    Builder b;
    const std::string x = b.input("x", {5, 37});
    b.output(layer_norm(b, x, 37));
    const Model& m = b.model();
    auto ref = make(m, true, 1);
    ASSERT_TRUE(ref);
    const Tensor in = random_tensor({5, 37}, 11, -2.0f, 3.0f);
    auto out = run(*ref, {in});
    ASSERT_EQ(out.size(), 1u);
    const Tensor* gamma = nullptr;
    const Tensor* beta = nullptr;
    for (const Node& n : m.graph.nodes) {  // the affine Mul(y, gamma) and Add(beta, y)
        if (n.op_type == "Mul") gamma = m.graph.initializer(n.inputs[1]);
        if (n.op_type == "Add" && m.graph.initializer(n.inputs[0])) {
            beta = m.graph.initializer(n.inputs[0]);
        }
    }
    ASSERT_TRUE(gamma && beta);
    Tensor mine(DType::Float32, {5, 37});
    cpu::layer_norm_rows_ref(in.data<float>(), mine.data<float>(), 5, 37, gamma->data<float>(),
                             beta->data<float>(), 1e-6f);
    EXPECT_LT(rel_diff(mine, out[0]), 1e-6);
}

// ConvNeXt's block end: MatMul -> Add(bias) -> Transpose [0, 3, 1, 2] -> Mul(layer scale
// [C, 1, 1]) -> Add(residual) is one matmul step writing NHWC (row and column chunks; the
// residual a conv's NHWC output); without the Transpose a [C] scale; a residual that is a
// graph input (plain: reordered to NHWC for the step).
TEST(ExecutorFast, MatMulBlockEndFused) {
    for (const Shape& shape : {Shape{1, 24, 9, 10}, Shape{1, 24, 30, 31}}) {
        Builder b;
        const std::string x = b.input("x", shape);
        const std::string r = b.conv(x, 24, 24, 7, 1, 3, 24, false);  // depthwise, NHWC
        const std::string t = b.op("Transpose", {r}, {{"perm", Attr::make_ints({0, 2, 3, 1})}});
        const std::string h = b.op("Add", {b.op("MatMul", {t, b.init(random_tensor({24, 64}, 1))}),
                                           b.init(random_tensor({64}, 2))});
        const std::string p =
            b.op("Add", {b.init(random_tensor({24}, 4)),
                         b.op("MatMul", {h, b.init(random_tensor({64, 24}, 3))})});
        const std::string back = b.op("Transpose", {p}, {{"perm", Attr::make_ints({0, 3, 1, 2})}});
        const std::string s = b.op("Mul", {b.init(random_tensor({24, 1, 1}, 5)), back});
        b.output(b.op("Add", {s, r}));
        // No Transpose: the scale along the last axis, the residual the graph input y.
        const std::string y = b.input("y", {1, 5, 24});
        const std::string q = b.op("Add", {b.op("MatMul", {y, b.init(random_tensor({24, 24}, 6))}),
                                           b.init(random_tensor({24}, 7))});
        b.output(b.op("Add", {y, b.op("Mul", {q, b.init(random_tensor({24}, 8))})}));
        for (int threads : {1, 2, 3}) {
            EXPECT_LT(compare(b.model(), threads), kTol) << shape_str(shape) << " " << threads;
        }
        auto fast = make(b.model(), false, 2);
        ASSERT_TRUE(fast);
        EXPECT_EQ(kernel_count(*fast, "matmul"), 3u);
        EXPECT_EQ(kernel_count(*fast, "binary"), 0u);
        EXPECT_EQ(kernel_count(*fast, "transpose_layout"), 1u);  // t's, read by the MatMul
    }
}

// MatMul with constant weights packed once into oneDNN's format (matmul.cpp): few rows cut by
// columns (49 x [256, 512], each column piece packed on its own), many rows cut by rows, one
// thread one piece; a node override that replaces the weights is honoured (packed for that
// run), and clearing it brings back the planned weights.
TEST(ExecutorFast, MatMulPackedWeights) {
    Builder b;
    const std::string x = b.input("x", {1, 7, 7, 256});
    const std::string w1 = b.init(random_tensor({256, 512}, 1, -0.1f, 0.1f));
    const std::string h = b.op("MatMul", {x, w1});
    const std::string y = b.input("y", {300, 64});
    b.output(b.op("MatMul", {h, b.init(random_tensor({512, 40}, 2, -0.1f, 0.1f))}));
    b.output(b.op("MatMul", {y, b.init(random_tensor({64, 96}, 3))}));
    for (int threads : {1, 2, 3}) {
        EXPECT_LT(compare(b.model(), threads), kTol) << threads << " threads";
    }
    auto coarse = [](const Tensor& t) {
        Tensor c = t.clone();
        for (float& v : c.span<float>()) v = std::round(v * 20.0f) / 20.0f;
        return c;
    };
    NodeOverride ov = [&](size_t, const Node& n, std::vector<Tensor>& ins) -> Status {
        if (n.op_type == "MatMul") ins[1] = coarse(ins[1]);
        return Status::ok();
    };
    auto fast = make(b.model(), false, 2);
    auto ref = make(b.model(), true, 2);
    ASSERT_TRUE(fast && ref);
    const std::vector<Tensor> in = {random_tensor({1, 7, 7, 256}, 8), random_tensor({300, 64}, 9)};
    const auto base = run(*fast, in);
    fast->set_node_override(ov);
    ref->set_node_override(ov);
    const auto a = run(*fast, in);
    const auto r = run(*ref, in);
    ASSERT_EQ(a.size(), 2u);
    ASSERT_EQ(r.size(), 2u);
    for (size_t i = 0; i < 2; ++i) {
        EXPECT_LT(rel_diff(a[i], r[i]), kTol) << i;
        EXPECT_GT(rel_diff(a[i], base[i]), 1e-3) << i << ": the override had no visible effect";
    }
    fast->set_node_override(nullptr);
    const auto again = run(*fast, in);
    for (size_t i = 0; i < 2; ++i) EXPECT_LT(rel_diff(again[i], base[i]), 1e-6) << i;
}

// Not fused past the bias: a scale per row rather than per channel, a residual of another
// shape (broadcast), a product after the Transpose that is also a graph output.
TEST(ExecutorFast, MatMulBlockEndNearMisses) {
    Builder b;
    const std::string x = b.input("x", {1, 6, 5, 16});
    auto linear = [&](uint32_t seed) {
        const std::string mm = b.op("MatMul", {x, b.init(random_tensor({16, 16}, seed))});
        const std::string a = b.op("Add", {mm, b.init(random_tensor({16}, seed + 1))});
        return b.op("Transpose", {a}, {{"perm", Attr::make_ints({0, 3, 1, 2})}});
    };
    b.output(b.op("Mul", {linear(10), b.init(random_tensor({1, 1, 6, 1}, 12))}));
    b.output(b.op("Add", {linear(20), b.init(random_tensor({1, 16, 6, 1}, 22))}));
    const std::string t = linear(30);
    b.output(b.op("Mul", {t, b.init(random_tensor({16, 1, 1}, 32))}));
    b.output(t);
    for (int threads : {1, 2}) {
        EXPECT_LT(compare(b.model(), threads), kTol) << threads << " threads";
    }
}

}  // namespace
}  // namespace lowbit
