// Edge cases of the reduction reference kernels (runtime/kernels/ref/reduce.cpp): the two
// spellings of 'axes', keepdims, noop_with_empty_axes, empty reductions, NaN, ArgMax ties.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>

#include "kernel_test_util.h"

namespace lowbit {
namespace {

using namespace lowbit::test;

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();

// Reduce with 'axes' as a constant input (ReduceSum >= 13, others >= 18).
KernelCall reduce_in(const std::string& op, Tensor x, std::vector<int64_t> axes,
                     int64_t keepdims = 1, int64_t opset = 18) {
    KernelCall c{op, {std::move(x)}, {{"keepdims", attr_i(keepdims)}}, opset};
    if (!axes.empty()) {
        c.inputs.push_back(i64({static_cast<int64_t>(axes.size())}, axes));
        c.constant_inputs = {1};
    }
    return c;
}

// Reduce with 'axes' as an attribute (before those opsets).
KernelCall reduce_attr(const std::string& op, Tensor x, std::vector<int64_t> axes,
                       int64_t keepdims = 1, int64_t opset = 11) {
    KernelCall c{op, {std::move(x)}, {{"keepdims", attr_i(keepdims)}}, opset};
    if (!axes.empty()) c.attrs["axes"] = attr_ints(std::move(axes));
    return c;
}

Tensor random_f32(Shape shape, uint32_t seed) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> dist(-4.0f, 4.0f);
    Tensor t(DType::Float32, std::move(shape));
    for (float& v : t.span<float>()) v = dist(rng);
    return t;
}

TEST(Reduce, SumOverEverySubsetOfAxesMatchesNaiveLoops) {
    const Shape shape{2, 3, 4, 5};
    Tensor x = random_f32(shape, 3);
    const float* px = x.data<float>();
    for (int mask = 1; mask < 16; ++mask) {
        std::vector<int64_t> axes;
        for (int d = 0; d < 4; ++d) {
            if (mask & (1 << d)) axes.push_back(d - 4 * (d % 2));  // mix negative axes in
        }
        Tensor sum = run_one(reduce_in("ReduceSum", x, axes, 1, 13));
        Tensor mx = run_one(reduce_attr("ReduceMax", x, axes, 0, 17));
        Shape kept = shape;
        for (int d = 0; d < 4; ++d) {
            if (mask & (1 << d)) kept[d] = 1;
        }
        ASSERT_EQ(sum.shape(), kept);
        std::vector<double> want_sum(static_cast<size_t>(shape_numel(kept)), 0.0);
        std::vector<float> want_max(want_sum.size(), -kInf);
        int64_t i = 0;
        for (int64_t a = 0; a < 2; ++a)
            for (int64_t b = 0; b < 3; ++b)
                for (int64_t c = 0; c < 4; ++c)
                    for (int64_t d = 0; d < 5; ++d, ++i) {
                        const int64_t idx[4] = {a, b, c, d};
                        int64_t o = 0;
                        for (int k = 0; k < 4; ++k) o = o * kept[k] + (kept[k] == 1 ? 0 : idx[k]);
                        want_sum[o] += px[i];
                        want_max[o] = std::max(want_max[o], px[i]);
                    }
        for (size_t j = 0; j < want_sum.size(); ++j) {
            EXPECT_FLOAT_EQ(values<float>(sum)[j], static_cast<float>(want_sum[j])) << mask;
        }
        EXPECT_EQ(values<float>(mx), want_max) << mask;
        Shape dropped;
        for (int d = 0; d < 4; ++d) {
            if (!(mask & (1 << d))) dropped.push_back(shape[d]);
        }
        EXPECT_EQ(mx.shape(), dropped);
    }
}

TEST(Reduce, MeanMinAndIntegerTypes) {
    Tensor x = f32({2, 3}, {1, 2, 3, 4, 5, 6});
    EXPECT_EQ(values<float>(run_one(reduce_in("ReduceMean", x, {1}))), (std::vector<float>{2, 5}));
    EXPECT_EQ(values<float>(run_one(reduce_attr("ReduceMin", x, {0}, 0, 13))),
              (std::vector<float>{1, 2, 3}));
    // Integer mean truncates toward zero.
    Tensor n = i64({2, 2}, {-3, -4, 7, 0});
    EXPECT_EQ(values<int64_t>(run_one(reduce_in("ReduceMean", n, {1}, 0))),
              (std::vector<int64_t>{-3, 3}));
    EXPECT_EQ(values<int64_t>(run_one(reduce_in("ReduceSum", n, {0}, 0, 13))),
              (std::vector<int64_t>{4, -4}));
    EXPECT_EQ(values<int64_t>(run_one(reduce_in("ReduceMax", n, {}, 0))), std::vector<int64_t>{7});
    EXPECT_EQ(values<int64_t>(run_one(reduce_in("ReduceProd", n, {1}, 0))),
              (std::vector<int64_t>{12, 0}));
}

TEST(Reduce, OtherReductions) {
    Tensor x = f32({2, 2}, {3, -4, 1, 2});
    EXPECT_EQ(values<float>(run_one(reduce_in("ReduceSumSquare", x, {1}, 0))),
              (std::vector<float>{25, 5}));
    EXPECT_EQ(values<float>(run_one(reduce_in("ReduceL1", x, {1}, 0))), (std::vector<float>{7, 3}));
    EXPECT_EQ(values<float>(run_one(reduce_in("ReduceL2", x, {1}, 0))),
              (std::vector<float>{5, std::sqrt(5.0f)}));
    EXPECT_FLOAT_EQ(values<float>(run_one(reduce_in("ReduceLogSum", x, {0}, 0)))[0],
                    std::log(4.0f));
    EXPECT_FLOAT_EQ(values<float>(run_one(reduce_in("ReduceLogSumExp", x, {1}, 0)))[0],
                    static_cast<float>(std::log(std::exp(3.0) + std::exp(-4.0))));
}

TEST(Reduce, NoAxesReducesAllUnlessNoop) {
    Tensor x = f32({2, 2}, {1, 2, 3, 4});
    Tensor all = run_one(reduce_in("ReduceSum", x, {}, 1, 13));
    EXPECT_EQ(all.shape(), (Shape{1, 1}));
    EXPECT_EQ(values<float>(all), std::vector<float>{10});
    KernelCall noop = reduce_in("ReduceSum", x, {}, 1, 13);
    noop.attrs["noop_with_empty_axes"] = attr_i(1);
    Tensor same = run_one(noop);
    EXPECT_EQ(same.shape(), x.shape());
    EXPECT_EQ(values<float>(same), values<float>(x));
    // An empty axes tensor counts as no axes.
    KernelCall empty_axes{"ReduceMax", {x, i64({0}, {})}, {{"keepdims", attr_i(0)}}, 18};
    empty_axes.constant_inputs = {1};
    Tensor m = run_one(empty_axes);
    EXPECT_EQ(m.shape(), Shape{});
    EXPECT_EQ(values<float>(m), std::vector<float>{4});
}

TEST(Reduce, EmptyReductionsGiveIdentityElements) {
    Tensor x = f32({0, 3}, {});
    EXPECT_EQ(values<float>(run_one(reduce_in("ReduceSum", x, {0}, 0, 13))),
              (std::vector<float>{0, 0, 0}));
    EXPECT_EQ(values<float>(run_one(reduce_in("ReduceMax", x, {0}, 0))),
              (std::vector<float>{-kInf, -kInf, -kInf}));
    EXPECT_EQ(values<float>(run_one(reduce_in("ReduceMin", x, {0}, 0))),
              (std::vector<float>{kInf, kInf, kInf}));
    EXPECT_EQ(values<float>(run_one(reduce_in("ReduceProd", x, {0}, 0))),
              (std::vector<float>{1, 1, 1}));
    EXPECT_TRUE(std::isnan(values<float>(run_one(reduce_in("ReduceMean", x, {0}, 0)))[0]));
    EXPECT_EQ(values<int64_t>(run_one(reduce_in("ReduceMax", i64({0}, {}), {0}, 0))),
              std::vector<int64_t>{std::numeric_limits<int64_t>::min()});
}

TEST(Reduce, MaxMinPropagateNaN) {
    Tensor x = f32({2, 3}, {1, kNaN, 3, 4, 5, 6});
    std::vector<float> mx = values<float>(run_one(reduce_in("ReduceMax", x, {1}, 0)));
    EXPECT_TRUE(std::isnan(mx[0]));
    EXPECT_EQ(mx[1], 6);
    std::vector<float> mn = values<float>(run_one(reduce_in("ReduceMin", x, {1}, 0)));
    EXPECT_TRUE(std::isnan(mn[0]));
    EXPECT_EQ(mn[1], 4);
}

TEST(Reduce, AxesRules) {
    Tensor x = f32({2, 2}, {1, 2, 3, 4});
    // Axes input not known at plan time: the output shape would be unknown.
    KernelCall dyn{"ReduceSum", {x, i64({1}, {0})}, {}, 13};
    std::string msg = run_error(dyn);
    EXPECT_NE(msg.find("axes"), std::string::npos) << msg;
    EXPECT_NE(msg.find("ReduceSum 'test_ReduceSum'"), std::string::npos) << msg;
    // Attribute form after the opset that replaced it.
    msg = run_error(reduce_attr("ReduceSum", x, {0}, 1, 13));
    EXPECT_NE(msg.find("opset 13"), std::string::npos) << msg;
    run_error(reduce_attr("ReduceMean", x, {0}, 1, 18));
    EXPECT_EQ(values<float>(run_one(reduce_attr("ReduceSum", x, {0}, 0, 11))),
              (std::vector<float>{4, 6}));
    // Out of range and duplicate axes.
    run_error(reduce_in("ReduceMax", x, {2}));
    run_error(reduce_in("ReduceMax", x, {1, -1}));
    // Dtypes: L2 is float-only, bool is not reducible.
    run_error(reduce_in("ReduceL2", i64({1}, {1}), {0}));
    run_error(reduce_in("ReduceSum", boolean({1}, {1}), {0}, 1, 13));
}

TEST(Reduce, Float16AccumulatesInWiderPrecision) {
    // 2048 + 1 + 1 + ... in float16 would stay 2048 step by step; accumulating wider it is 2056.
    std::vector<float> v(9, 1.0f);
    v[0] = 2048;
    Tensor s = run_one(reduce_in("ReduceSum", f16({9}, v), {0}, 0, 13));
    EXPECT_EQ(s.dtype(), DType::Float16);
    EXPECT_EQ(values_f32(s), std::vector<float>{2056});
}

TEST(ArgMax, AxisKeepdimsAndTies) {
    Tensor x = f32({2, 3}, {1, 5, 5, 7, 2, 7});
    Tensor a = run_one({"ArgMax", {x}, {{"axis", attr_i(1)}}});
    EXPECT_EQ(a.dtype(), DType::Int64);
    EXPECT_EQ(a.shape(), (Shape{2, 1}));
    EXPECT_EQ(values<int64_t>(a), (std::vector<int64_t>{1, 0}));
    Tensor last = run_one(
        {"ArgMax",
         {x},
         {{"axis", attr_i(-1)}, {"keepdims", attr_i(0)}, {"select_last_index", attr_i(1)}}});
    EXPECT_EQ(last.shape(), (Shape{2}));
    EXPECT_EQ(values<int64_t>(last), (std::vector<int64_t>{2, 2}));
    // Default axis 0.
    EXPECT_EQ(values<int64_t>(run_one({"ArgMin", {x}})), (std::vector<int64_t>{0, 1, 0}));
    EXPECT_EQ(values<int64_t>(run_one(
                  {"ArgMin", {i64({4}, {3, -1, 8, -1})}, {{"select_last_index", attr_i(1)}}})),
              (std::vector<int64_t>{3}));
}

TEST(ArgMax, NaNIsTheExtreme) {
    Tensor x = f32({5}, {1, kNaN, 9, kNaN, -9});
    EXPECT_EQ(values<int64_t>(run_one({"ArgMax", {x}})), std::vector<int64_t>{1});
    EXPECT_EQ(values<int64_t>(run_one({"ArgMin", {x}})), std::vector<int64_t>{1});
    EXPECT_EQ(values<int64_t>(run_one({"ArgMax", {x}, {{"select_last_index", attr_i(1)}}})),
              std::vector<int64_t>{3});
}

TEST(ArgMax, Errors) {
    run_error({"ArgMax", {f32({2}, {1, 2})}, {{"axis", attr_i(1)}}});
    run_error({"ArgMax", {f32({0, 2}, {})}, {{"axis", attr_i(0)}}});
    run_error({"ArgMax", {boolean({2}, {1, 0})}});
    // A YOLO-sized score map: argmax over 80 classes for 8400 anchors.
    Tensor s = random_f32({1, 8400, 80}, 11);
    Tensor a = run_one({"ArgMax", {s}, {{"axis", attr_i(2)}, {"keepdims", attr_i(0)}}});
    ASSERT_EQ(a.shape(), (Shape{1, 8400}));
    const float* p = s.data<float>();
    for (int64_t i = 0; i < 8400; i += 97) {
        int64_t best = 0;
        for (int64_t c = 1; c < 80; ++c) {
            if (p[i * 80 + c] > p[i * 80 + best]) best = c;
        }
        EXPECT_EQ(values<int64_t>(a)[i], best);
    }
}

}  // namespace
}  // namespace lowbit
