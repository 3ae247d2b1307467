// Reference tensor-op kernels (tensor_ops*.cpp): shape ops, data movement, indexing, TopK.
// Expected values are written out by hand from the ONNX spec (NumPy semantics) or computed by
// independent naive loops here.
#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <numeric>
#include <random>

#include "kernel_test_util.h"

namespace lowbit::test {
namespace {

constexpr int64_t kI64Max = std::numeric_limits<int64_t>::max();
constexpr int64_t kI64Min = std::numeric_limits<int64_t>::min();

std::vector<float> iota_f(int64_t n, float start = 0) {
    std::vector<float> v(static_cast<size_t>(n));
    std::iota(v.begin(), v.end(), start);
    return v;
}

Tensor arange_f32(Shape shape) {
    const int64_t n = shape_numel(shape);
    return f32(std::move(shape), iota_f(n));
}

void expect_contains(const std::string& msg, std::initializer_list<const char*> parts) {
    for (const char* p : parts) EXPECT_NE(msg.find(p), std::string::npos) << msg << " lacks " << p;
}

// ---- Constant / Shape / Size / ConstantOfShape / Range: values known at plan time -----------

TEST(KernelsTensor, ConstantAttributeKinds) {
    KernelCall c{"Constant", {}};
    c.attrs["value"] = Attr::make_tensor(i64({2}, {4, 5}));
    KernelOutcome o = run_kernel_full(c);
    ASSERT_TRUE(o.status.is_ok()) << o.status.message();
    ASSERT_TRUE(o.prepared[0].value.has_value());
    EXPECT_EQ(values<int64_t>(o.outputs[0]), (std::vector<int64_t>{4, 5}));

    KernelCall f{"Constant", {}};
    f.attrs["value_float"] = attr_f(2.5f);
    Tensor t = run_one(f);
    EXPECT_EQ(t.dtype(), DType::Float32);
    EXPECT_EQ(t.shape(), Shape{});
    EXPECT_EQ(values<float>(t), std::vector<float>{2.5f});

    KernelCall is{"Constant", {}};
    is.attrs["value_ints"] = attr_ints({1, -2, 3});
    t = run_one(is);
    EXPECT_EQ(t.shape(), Shape{3});
    EXPECT_EQ(values<int64_t>(t), (std::vector<int64_t>{1, -2, 3}));

    KernelCall fs{"Constant", {}};
    fs.attrs["value_floats"] = Attr::make_floats({0.5f, 1.5f});
    EXPECT_EQ(values<float>(run_one(fs)), (std::vector<float>{0.5f, 1.5f}));

    KernelCall i{"Constant", {}};
    i.attrs["value_int"] = attr_i(7);
    t = run_one(i);
    EXPECT_EQ(t.dtype(), DType::Int64);
    EXPECT_EQ(t.shape(), Shape{});
}

TEST(KernelsTensor, ConstantRejectsSparseAndStrings) {
    KernelCall c{"Constant", {}};
    Attr sparse;
    sparse.kind = Attr::Kind::SparseTensor;
    c.attrs["sparse_value"] = sparse;
    expect_contains(run_error(c), {"Constant 'test_Constant'", "sparse_value"});

    KernelCall s{"Constant", {}};
    s.attrs["value_string"] = attr_s("x");
    expect_contains(run_error(s), {"value_string"});

    KernelCall two{"Constant", {}};
    two.attrs["value_int"] = attr_i(1);
    two.attrs["value_float"] = attr_f(1);
    expect_contains(run_error(two), {"exactly one"});
}

TEST(KernelsTensor, ShapeStartEnd) {
    Tensor x(DType::Float32, {2, 3, 5, 7});
    KernelOutcome o = run_kernel_full({"Shape", {x}});
    ASSERT_TRUE(o.status.is_ok());
    ASSERT_TRUE(o.prepared[0].value.has_value()) << "Shape must be known at plan time";
    EXPECT_EQ(values<int64_t>(o.outputs[0]), (std::vector<int64_t>{2, 3, 5, 7}));

    auto shape_of = [&](std::map<std::string, Attr> attrs) {
        KernelCall c{"Shape", {x}};
        c.attrs = std::move(attrs);
        return values<int64_t>(run_one(c));
    };
    EXPECT_EQ(shape_of({{"start", attr_i(1)}}), (std::vector<int64_t>{3, 5, 7}));
    EXPECT_EQ(shape_of({{"start", attr_i(-1)}}), (std::vector<int64_t>{7}));
    EXPECT_EQ(shape_of({{"end", attr_i(-1)}}), (std::vector<int64_t>{2, 3, 5}));
    EXPECT_EQ(shape_of({{"start", attr_i(1)}, {"end", attr_i(3)}}), (std::vector<int64_t>{3, 5}));
    // Out-of-range values clamp to [0, rank]; start >= end gives an empty shape.
    EXPECT_EQ(shape_of({{"start", attr_i(-10)}, {"end", attr_i(10)}}),
              (std::vector<int64_t>{2, 3, 5, 7}));
    EXPECT_EQ(shape_of({{"start", attr_i(3)}, {"end", attr_i(1)}}), (std::vector<int64_t>{}));
}

TEST(KernelsTensor, Size) {
    KernelOutcome o = run_kernel_full({"Size", {Tensor(DType::Int8, {3, 0, 2})}});
    ASSERT_TRUE(o.status.is_ok());
    EXPECT_TRUE(o.prepared[0].value.has_value());
    EXPECT_EQ(o.outputs[0].shape(), Shape{});
    EXPECT_EQ(values<int64_t>(o.outputs[0]), std::vector<int64_t>{0});
    EXPECT_EQ(values<int64_t>(run_one({"Size", {Tensor(DType::Float16, {3, 5})}})),
              std::vector<int64_t>{15});
}

TEST(KernelsTensor, ConstantOfShape) {
    KernelCall c{"ConstantOfShape", {i64({3}, {2, 1, 3})}};
    c.all_constant = true;
    KernelOutcome o = run_kernel_full(c);
    ASSERT_TRUE(o.status.is_ok()) << o.status.message();
    EXPECT_TRUE(o.prepared[0].value.has_value());
    EXPECT_EQ(o.outputs[0].dtype(), DType::Float32);
    EXPECT_EQ(values<float>(o.outputs[0]), std::vector<float>(6, 0.0f));

    c.attrs["value"] = Attr::make_tensor(i32({1}, {-4}));
    Tensor t = run_one(c);
    EXPECT_EQ(t.dtype(), DType::Int32);
    EXPECT_EQ(values<int32_t>(t), std::vector<int32_t>(6, -4));

    KernelCall scalar{"ConstantOfShape", {i64({0}, {})}};
    scalar.all_constant = true;
    scalar.attrs["value"] = Attr::make_tensor(f32({1}, {3.0f}));
    t = run_one(scalar);
    EXPECT_EQ(t.shape(), Shape{});
    EXPECT_EQ(values<float>(t), std::vector<float>{3.0f});

    KernelCall runtime_shape{"ConstantOfShape", {i64({1}, {4})}};
    expect_contains(run_error(runtime_shape),
                    {"ConstantOfShape 'test_ConstantOfShape'", "plan time"});
}

TEST(KernelsTensor, Range) {
    KernelCall c{"Range", {scalar_i64(10), scalar_i64(1), scalar_i64(-3)}};
    c.all_constant = true;
    KernelOutcome o = run_kernel_full(c);
    ASSERT_TRUE(o.status.is_ok()) << o.status.message();
    EXPECT_TRUE(o.prepared[0].value.has_value());
    EXPECT_EQ(values<int64_t>(o.outputs[0]), (std::vector<int64_t>{10, 7, 4}));

    KernelCall f{"Range", {scalar_f32(1.0f), scalar_f32(2.0f), scalar_f32(0.25f)}};
    f.all_constant = true;
    EXPECT_EQ(values<float>(run_one(f)), (std::vector<float>{1.0f, 1.25f, 1.5f, 1.75f}));

    KernelCall empty{"Range", {i32({}, {5}), i32({}, {5}), i32({}, {1})}};
    empty.all_constant = true;
    EXPECT_EQ(run_one(empty).shape(), Shape{0});

    KernelCall wrong_dir{"Range", {scalar_i64(0), scalar_i64(5), scalar_i64(-1)}};
    wrong_dir.all_constant = true;
    EXPECT_EQ(run_one(wrong_dir).shape(), Shape{0});

    KernelCall zero{"Range", {scalar_i64(0), scalar_i64(5), scalar_i64(0)}};
    zero.all_constant = true;
    expect_contains(run_error(zero), {"delta"});
}

// ---- Reshape family ---------------------------------------------------------------------------

TEST(KernelsTensor, ReshapeZeroAndInfer) {
    Tensor x = arange_f32({2, 3, 4});
    auto reshape = [&](std::vector<int64_t> spec, int64_t allowzero = 0) {
        KernelCall c{"Reshape", {x, i64({static_cast<int64_t>(spec.size())}, spec)}};
        c.constant_inputs = {1};
        if (allowzero) c.attrs["allowzero"] = attr_i(allowzero);
        return c;
    };
    Tensor y = run_one(reshape({0, -1}));
    EXPECT_EQ(y.shape(), (Shape{2, 12}));
    EXPECT_EQ(values<float>(y), iota_f(24));
    EXPECT_EQ(run_one(reshape({-1, 0, 2})).shape(), (Shape{4, 3, 2}));
    EXPECT_EQ(run_one(reshape({4, -1})).shape(), (Shape{4, 6}));
    EXPECT_EQ(run_one(reshape({0, 0, 0})).shape(), (Shape{2, 3, 4}));

    // allowzero=1: a 0 is a real zero-size dim.
    KernelCall z{"Reshape", {Tensor(DType::Float32, {0, 3}), i64({2}, {3, 0})}};
    z.constant_inputs = {1};
    z.attrs["allowzero"] = attr_i(1);
    EXPECT_EQ(run_one(z).shape(), (Shape{3, 0}));

    expect_contains(run_error(reshape({-1, -1})), {"more than one -1"});
    expect_contains(run_error(reshape({5, -1})), {"Reshape 'test_Reshape'", "infer"});
    expect_contains(run_error(reshape({0, -1}, 1)), {"allowzero"});
    expect_contains(run_error(reshape({2, 3, 4, 0})), {"copies dim"});
    KernelCall runtime{"Reshape", {x, i64({2}, {6, 4})}};
    expect_contains(run_error(runtime), {"'shape'", "plan time"});
}

TEST(KernelsTensor, FlattenAxes) {
    Tensor x = arange_f32({2, 3, 4, 5});
    auto flat = [&](int64_t axis) {
        KernelCall c{"Flatten", {x}};
        c.attrs["axis"] = attr_i(axis);
        return run_one(c).shape();
    };
    EXPECT_EQ(run_one({"Flatten", {x}}).shape(), (Shape{2, 60}));
    EXPECT_EQ(flat(0), (Shape{1, 120}));
    EXPECT_EQ(flat(4), (Shape{120, 1}));
    EXPECT_EQ(flat(-1), (Shape{24, 5}));
    EXPECT_EQ(flat(-4), (Shape{1, 120}));
    KernelCall bad{"Flatten", {x}};
    bad.attrs["axis"] = attr_i(5);
    expect_contains(run_error(bad), {"axis"});
}

TEST(KernelsTensor, SqueezeAttributeVersusInput) {
    Tensor x = arange_f32({1, 3, 1, 2});
    KernelCall old{"Squeeze", {x}};
    old.opset = 11;
    old.attrs["axes"] = attr_ints({-2});
    EXPECT_EQ(run_one(old).shape(), (Shape{1, 3, 2}));

    KernelCall neu{"Squeeze", {x, i64({2}, {0, -2})}};
    neu.constant_inputs = {1};
    Tensor y = run_one(neu);
    EXPECT_EQ(y.shape(), (Shape{3, 2}));
    EXPECT_EQ(values<float>(y), iota_f(6));

    EXPECT_EQ(run_one({"Squeeze", {x}}).shape(), (Shape{3, 2}));  // no axes: all 1s

    KernelCall bad{"Squeeze", {x, i64({1}, {1})}};
    bad.constant_inputs = {1};
    expect_contains(run_error(bad), {"Squeeze 'test_Squeeze'", "size 3"});
    // Opset 13 takes axes as an input only.
    KernelCall attr13{"Squeeze", {x}};
    attr13.attrs["axes"] = attr_ints({0});
    expect_contains(run_error(attr13), {"'axes'"});
}

TEST(KernelsTensor, UnsqueezeAttributeVersusInput) {
    Tensor x = arange_f32({3, 4});
    KernelCall old{"Unsqueeze", {x}};
    old.opset = 11;
    old.attrs["axes"] = attr_ints({0, 3});
    EXPECT_EQ(run_one(old).shape(), (Shape{1, 3, 4, 1}));

    KernelCall neu{"Unsqueeze", {x, i64({3}, {-1, 0, 2})}};  // unsorted, negative
    neu.constant_inputs = {1};
    EXPECT_EQ(run_one(neu).shape(), (Shape{1, 3, 1, 4, 1}));

    KernelCall dup{"Unsqueeze", {x, i64({2}, {1, -3})}};
    dup.constant_inputs = {1};
    expect_contains(run_error(dup), {"twice"});
}

// ---- Transpose / Concat / Split ---------------------------------------------------------------

TEST(KernelsTensor, TransposeMatchesNaive) {
    const Shape in = {2, 3, 5, 7};
    Tensor x = arange_f32(in);
    const std::vector<std::vector<int64_t>> perms = {
        {0, 1, 2, 3}, {3, 2, 1, 0}, {0, 2, 3, 1}, {1, 0, 3, 2}, {2, 3, 0, 1}};
    for (const auto& perm : perms) {
        KernelCall c{"Transpose", {x}};
        c.attrs["perm"] = attr_ints(perm);
        Tensor y = run_one(c);
        Shape out;
        for (int64_t p : perm) out.push_back(in[static_cast<size_t>(p)]);
        ASSERT_EQ(y.shape(), out);
        const std::vector<float> got = values<float>(y);
        int64_t o = 0;
        int64_t idx[4];
        for (idx[0] = 0; idx[0] < out[0]; ++idx[0])
            for (idx[1] = 0; idx[1] < out[1]; ++idx[1])
                for (idx[2] = 0; idx[2] < out[2]; ++idx[2])
                    for (idx[3] = 0; idx[3] < out[3]; ++idx[3], ++o) {
                        int64_t src[4];
                        for (int k = 0; k < 4; ++k) src[perm[static_cast<size_t>(k)]] = idx[k];
                        const int64_t at = ((src[0] * 3 + src[1]) * 5 + src[2]) * 7 + src[3];
                        ASSERT_EQ(got[static_cast<size_t>(o)], static_cast<float>(at));
                    }
    }
    // Default perm reverses; int64 data moves as bytes.
    Tensor y = run_one({"Transpose", {i64({2, 3}, {1, 2, 3, 4, 5, 6})}});
    EXPECT_EQ(y.shape(), (Shape{3, 2}));
    EXPECT_EQ(values<int64_t>(y), (std::vector<int64_t>{1, 4, 2, 5, 3, 6}));

    KernelCall bad{"Transpose", {x}};
    bad.attrs["perm"] = attr_ints({0, 1, 1, 2});
    expect_contains(run_error(bad), {"Transpose 'test_Transpose'", "perm"});
}

TEST(KernelsTensor, ConcatNegativeAxisAndEmptyInput) {
    Tensor a = f32({2, 2}, {1, 2, 3, 4});
    Tensor b = f32({2, 1}, {5, 6});
    Tensor e(DType::Float32, {2, 0});
    KernelCall c{"Concat", {a, e, b}};
    c.attrs["axis"] = attr_i(-1);
    Tensor y = run_one(c);
    EXPECT_EQ(y.shape(), (Shape{2, 3}));
    EXPECT_EQ(values<float>(y), (std::vector<float>{1, 2, 5, 3, 4, 6}));

    KernelCall rows{"Concat", {a, f32({1, 2}, {7, 8})}};
    rows.attrs["axis"] = attr_i(0);
    EXPECT_EQ(values<float>(run_one(rows)), (std::vector<float>{1, 2, 3, 4, 7, 8}));

    KernelCall bad{"Concat", {a, b}};
    bad.attrs["axis"] = attr_i(0);
    expect_contains(run_error(bad), {"Concat 'test_Concat'", "incompatible"});
    KernelCall no_axis{"Concat", {a, b}};
    expect_contains(run_error(no_axis), {"'axis'"});
}

TEST(KernelsTensor, SplitVersions) {
    Tensor x = arange_f32({2, 7});
    // Opset 11: sizes as an attribute.
    KernelCall old{"Split", {x}};
    old.opset = 11;
    old.num_outputs = 2;
    old.attrs["axis"] = attr_i(-1);
    old.attrs["split"] = attr_ints({3, 4});
    auto r = run_kernel(old);
    ASSERT_TRUE(r.is_ok()) << r.status().message();
    EXPECT_EQ(values<float>((*r)[0]), (std::vector<float>{0, 1, 2, 7, 8, 9}));
    EXPECT_EQ(values<float>((*r)[1]), (std::vector<float>{3, 4, 5, 6, 10, 11, 12, 13}));

    // Opset 13: sizes as an input, including a zero-size part.
    KernelCall neu{"Split", {x, i64({3}, {5, 0, 2})}};
    neu.opset = 13;
    neu.num_outputs = 3;
    neu.constant_inputs = {1};
    neu.attrs["axis"] = attr_i(1);
    r = run_kernel(neu);
    ASSERT_TRUE(r.is_ok()) << r.status().message();
    EXPECT_EQ((*r)[1].shape(), (Shape{2, 0}));
    EXPECT_EQ(values<float>((*r)[2]), (std::vector<float>{5, 6, 12, 13}));

    // Opset 18: num_outputs with an uneven split gives ceil-sized parts and a short last one.
    KernelCall n18{"Split", {x}};
    n18.opset = 18;
    n18.num_outputs = 3;
    n18.attrs["axis"] = attr_i(1);
    n18.attrs["num_outputs"] = attr_i(3);
    r = run_kernel(n18);
    ASSERT_TRUE(r.is_ok()) << r.status().message();
    EXPECT_EQ((*r)[0].shape(), (Shape{2, 3}));
    EXPECT_EQ((*r)[1].shape(), (Shape{2, 3}));
    EXPECT_EQ((*r)[2].shape(), (Shape{2, 1}));
    EXPECT_EQ(values<float>((*r)[2]), (std::vector<float>{6, 13}));

    // No sizes: equal parts.
    KernelCall eq{"Split", {x}};
    eq.num_outputs = 2;
    r = run_kernel(eq);
    ASSERT_TRUE(r.is_ok());
    EXPECT_EQ(values<float>((*r)[1]), iota_f(7, 7));

    KernelCall bad{"Split", {x, i64({2}, {3, 3})}};
    bad.num_outputs = 2;
    bad.constant_inputs = {1};
    bad.attrs["axis"] = attr_i(1);
    expect_contains(run_error(bad), {"Split 'test_Split'", "sums to 6"});
}

// ---- Slice ------------------------------------------------------------------------------------

std::vector<float> slice_1d(const std::vector<int64_t>& se_step, int64_t n = 10) {
    KernelCall c{"Slice",
                 {arange_f32({n}), i64({1}, {se_step[0]}), i64({1}, {se_step[1]}), i64({1}, {0}),
                  i64({1}, {se_step[2]})}};
    c.constant_inputs = {1, 2, 3, 4};
    return values<float>(run_one(c));
}

TEST(KernelsTensor, SliceClampingAndNegativeSteps) {
    using V = std::vector<float>;
    EXPECT_EQ(slice_1d({2, 8, 1}), (V{2, 3, 4, 5, 6, 7}));
    EXPECT_EQ(slice_1d({8, 2, -2}), (V{8, 6, 4}));
    EXPECT_EQ(slice_1d({-3, kI64Max, 1}), (V{7, 8, 9}));
    EXPECT_EQ(slice_1d({kI64Max, kI64Min, -1}), (V{9, 8, 7, 6, 5, 4, 3, 2, 1, 0}));
    EXPECT_EQ(slice_1d({-1, kI64Min, -3}), (V{9, 6, 3, 0}));
    EXPECT_EQ(slice_1d({5, -20, -1}), (V{5, 4, 3, 2, 1, 0}));
    EXPECT_EQ(slice_1d({-20, 3, 1}), (V{0, 1, 2}));
    EXPECT_EQ(slice_1d({20, 30, 1}), V{});
    EXPECT_EQ(slice_1d({3, 3, 1}), V{});
    EXPECT_EQ(slice_1d({3, 5, -1}), V{});
    EXPECT_EQ(slice_1d({0, 10, kI64Max}), V{0});
    EXPECT_EQ(slice_1d({9, -11, kI64Min}), V{9});
    EXPECT_EQ(slice_1d({0, 10, 4}), (V{0, 4, 8}));
}

TEST(KernelsTensor, SliceMultiAxis) {
    Tensor x = arange_f32({3, 4, 5});
    // axes [-1, 0] (negative, unsorted), steps [-2, 2]: x[0:3:2, :, 4:0:-2]
    KernelCall c{"Slice",
                 {x, i64({2}, {4, 0}), i64({2}, {0, 3}), i64({2}, {-1, 0}), i64({2}, {-2, 2})}};
    c.constant_inputs = {1, 2, 3, 4};
    Tensor y = run_one(c);
    ASSERT_EQ(y.shape(), (Shape{2, 4, 2}));
    std::vector<float> want;
    for (int64_t i : {0, 2})
        for (int64_t j = 0; j < 4; ++j)
            for (int64_t k : {4, 2}) want.push_back(static_cast<float>((i * 4 + j) * 5 + k));
    EXPECT_EQ(values<float>(y), want);

    // Default axes and steps; int8 data.
    KernelCall d{"Slice", {i8({2, 3}, {1, 2, 3, 4, 5, 6}), i64({2}, {1, 1}), i64({2}, {2, 3})}};
    d.constant_inputs = {1, 2};
    EXPECT_EQ(values<int8_t>(run_one(d)), (std::vector<int8_t>{5, 6}));

    // Opset 9: attributes.
    KernelCall old{"Slice", {x}};
    old.opset = 9;
    old.attrs["starts"] = attr_ints({1});
    old.attrs["ends"] = attr_ints({2});
    old.attrs["axes"] = attr_ints({1});
    EXPECT_EQ(run_one(old).shape(), (Shape{3, 1, 5}));

    KernelCall zero{"Slice", {x, i64({1}, {0}), i64({1}, {1}), i64({1}, {0}), i64({1}, {0})}};
    zero.constant_inputs = {1, 2, 3, 4};
    expect_contains(run_error(zero), {"Slice 'test_Slice'", "steps"});
}

// ---- Gather / GatherElements / Expand / Tile ----------------------------------------------

TEST(KernelsTensor, GatherAxesAndNegativeIndices) {
    Tensor x = arange_f32({3, 4});
    KernelCall c{"Gather", {x, i64({2, 2}, {0, -1, 2, 1})}};
    c.attrs["axis"] = attr_i(1);
    Tensor y = run_one(c);
    EXPECT_EQ(y.shape(), (Shape{3, 2, 2}));
    EXPECT_EQ(values<float>(y), (std::vector<float>{0, 3, 2, 1, 4, 7, 6, 5, 8, 11, 10, 9}));

    // Scalar index on axis 0 drops the axis (Shape -> Gather idiom); int32 indices.
    Tensor s = run_one({"Gather", {i64({4}, {1, 3, 640, 640}), i32({}, {-2})}});
    EXPECT_EQ(s.shape(), Shape{});
    EXPECT_EQ(values<int64_t>(s), std::vector<int64_t>{640});

    KernelCall oob{"Gather", {x, i64({1}, {3})}};
    expect_contains(run_error(oob), {"Gather 'test_Gather'", "index 3"});
}

TEST(KernelsTensor, GatherElements) {
    Tensor x = f32({3, 3}, {1, 2, 3, 4, 5, 6, 7, 8, 9});
    KernelCall c{"GatherElements", {x, i64({2, 3}, {1, 2, 0, 2, 0, -3})}};
    EXPECT_EQ(values<float>(run_one(c)), (std::vector<float>{4, 8, 3, 7, 2, 3}));
    KernelCall c1{"GatherElements", {x, i32({3, 2}, {0, 0, 1, 0, 2, -1})}};
    c1.attrs["axis"] = attr_i(-1);
    EXPECT_EQ(values<float>(run_one(c1)), (std::vector<float>{1, 1, 5, 4, 9, 9}));
    KernelCall oob{"GatherElements", {x, i64({1, 1}, {3})}};
    expect_contains(run_error(oob), {"GatherElements 'test_GatherElements'", "out of range"});
}

TEST(KernelsTensor, ExpandBidirectional) {
    Tensor x = f32({3, 1}, {1, 2, 3});
    KernelCall c{"Expand", {x, i64({3}, {2, 1, 4})}};
    c.constant_inputs = {1};
    Tensor y = run_one(c);
    EXPECT_EQ(y.shape(), (Shape{2, 3, 4}));
    std::vector<float> want;
    for (int r = 0; r < 2; ++r)
        for (float v : {1.0f, 2.0f, 3.0f})
            for (int k = 0; k < 4; ++k) want.push_back(v);
    EXPECT_EQ(values<float>(y), want);
    // A shorter or 1-valued shape keeps the input's dims.
    KernelCall keep{"Expand", {x, i64({1}, {1})}};
    keep.constant_inputs = {1};
    EXPECT_EQ(run_one(keep).shape(), (Shape{3, 1}));
    KernelCall bad{"Expand", {x, i64({2}, {2, 2})}};
    bad.constant_inputs = {1};
    expect_contains(run_error(bad), {"Expand 'test_Expand'", "cannot be expanded"});
}

TEST(KernelsTensor, Tile) {
    KernelCall c{"Tile", {f32({2, 2}, {1, 2, 3, 4}), i64({2}, {2, 3})}};
    c.constant_inputs = {1};
    Tensor y = run_one(c);
    EXPECT_EQ(y.shape(), (Shape{4, 6}));
    EXPECT_EQ(values<float>(y), (std::vector<float>{1, 2, 1, 2, 1, 2, 3, 4, 3, 4, 3, 4,
                                                    1, 2, 1, 2, 1, 2, 3, 4, 3, 4, 3, 4}));
    KernelCall one{"Tile", {i64({1, 3}, {7, 8, 9}), i64({2}, {2, 1})}};
    one.constant_inputs = {1};
    EXPECT_EQ(values<int64_t>(run_one(one)), (std::vector<int64_t>{7, 8, 9, 7, 8, 9}));
}

// ---- Pad --------------------------------------------------------------------------------------

TEST(KernelsTensor, PadModes) {
    Tensor x = f32({2, 3}, {1, 2, 3, 4, 5, 6});
    auto pad = [&](const char* mode, std::vector<int64_t> pads) {
        KernelCall c{"Pad", {x, i64({4}, pads), scalar_f32(9)}};
        c.constant_inputs = {1, 2};
        c.attrs["mode"] = attr_s(mode);
        return run_one(c);
    };
    Tensor y = pad("constant", {1, 0, 0, 2});
    EXPECT_EQ(y.shape(), (Shape{3, 5}));
    EXPECT_EQ(values<float>(y), (std::vector<float>{9, 9, 9, 9, 9, 1, 2, 3, 9, 9, 4, 5, 6, 9, 9}));
    // reflect: mirror without repeating the edge.
    EXPECT_EQ(values<float>(pad("reflect", {0, 2, 0, 2})),
              (std::vector<float>{3, 2, 1, 2, 3, 2, 1, 6, 5, 4, 5, 6, 5, 4}));
    EXPECT_EQ(values<float>(pad("edge", {1, 1, 0, 1})),
              (std::vector<float>{1, 1, 2, 3, 3, 1, 1, 2, 3, 3, 4, 4, 5, 6, 6}));
    // Negative pads crop.
    EXPECT_EQ(values<float>(pad("constant", {0, -1, -1, 1})), (std::vector<float>{2, 3, 9}));
}

TEST(KernelsTensor, PadAxesAndWrap) {
    Tensor x = i64({2, 3}, {1, 2, 3, 4, 5, 6});
    KernelCall c{"Pad", {x, i64({2}, {2, 1}), Tensor(), i64({1}, {-1})}};
    c.opset = 19;
    c.constant_inputs = {1, 3};
    c.attrs["mode"] = attr_s("wrap");
    Tensor y = run_one(c);
    EXPECT_EQ(y.shape(), (Shape{2, 6}));
    EXPECT_EQ(values<int64_t>(y), (std::vector<int64_t>{2, 3, 1, 2, 3, 1, 5, 6, 4, 5, 6, 4}));

    // Negative pads crop first; padding then wraps/reflects within the cropped view
    // (ONNX reference and ORT agree).
    auto crop_then_pad = [](const char* mode) {
        KernelCall c{"Pad", {f32({1, 5}, {1, 2, 3, 4, 5}), i64({4}, {0, -2, 0, 2})}};
        c.opset = 19;
        c.constant_inputs = {1};
        c.attrs["mode"] = attr_s(mode);
        return values<float>(run_one(c));
    };
    EXPECT_EQ(crop_then_pad("wrap"), (std::vector<float>{3, 4, 5, 3, 4}));
    EXPECT_EQ(crop_then_pad("reflect"), (std::vector<float>{3, 4, 5, 4, 3}));
    EXPECT_EQ(crop_then_pad("edge"), (std::vector<float>{3, 4, 5, 5, 5}));

    KernelCall old{"Pad", {f32({2}, {1, 2})}};
    old.opset = 7;
    old.attrs["pads"] = attr_ints({1, 1});
    old.attrs["value"] = attr_f(-1);
    EXPECT_EQ(values<float>(run_one(old)), (std::vector<float>{-1, 1, 2, -1}));

    KernelCall bad{"Pad", {f32({2}, {1, 2}), i64({2}, {1, 1})}};
    bad.constant_inputs = {1};
    bad.attrs["mode"] = attr_s("symmetric");
    expect_contains(run_error(bad), {"Pad 'test_Pad'", "'mode'", "symmetric"});
}

// ---- TopK ---------------------------------------------------------------------------------------

TEST(KernelsTensor, TopKTiesPreferLowerIndex) {
    Tensor x = f32({2, 5}, {1, 3, 3, 2, 3, 5, 5, 4, 5, 4});
    KernelCall c{"TopK", {x, i64({1}, {3})}};
    c.num_outputs = 2;
    c.constant_inputs = {1};
    auto r = run_kernel(c);
    ASSERT_TRUE(r.is_ok()) << r.status().message();
    EXPECT_EQ(values<float>((*r)[0]), (std::vector<float>{3, 3, 3, 5, 5, 5}));
    EXPECT_EQ(values<int64_t>((*r)[1]), (std::vector<int64_t>{1, 2, 4, 0, 1, 3}));

    c.attrs["largest"] = attr_i(0);
    r = run_kernel(c);
    ASSERT_TRUE(r.is_ok());
    EXPECT_EQ(values<float>((*r)[0]), (std::vector<float>{1, 2, 3, 4, 4, 5}));
    EXPECT_EQ(values<int64_t>((*r)[1]), (std::vector<int64_t>{0, 3, 1, 2, 4, 0}));
}

TEST(KernelsTensor, TopKAxisAndEdgeCases) {
    // Along axis 0 of [4, 2]; int64 data.
    KernelCall c{"TopK", {i64({4, 2}, {1, 8, 7, 2, 7, 9, 0, 9}), i64({1}, {2})}};
    c.num_outputs = 2;
    c.constant_inputs = {1};
    c.attrs["axis"] = attr_i(0);
    auto r = run_kernel(c);
    ASSERT_TRUE(r.is_ok()) << r.status().message();
    EXPECT_EQ((*r)[0].shape(), (Shape{2, 2}));
    EXPECT_EQ(values<int64_t>((*r)[0]), (std::vector<int64_t>{7, 9, 7, 9}));
    EXPECT_EQ(values<int64_t>((*r)[1]), (std::vector<int64_t>{1, 2, 2, 3}));

    // NaN ranks above every number.
    const float nan = std::numeric_limits<float>::quiet_NaN();
    KernelCall n{"TopK", {f32({4}, {1, nan, 3, 2}), i64({1}, {2})}};
    n.num_outputs = 2;
    n.constant_inputs = {1};
    r = run_kernel(n);
    ASSERT_TRUE(r.is_ok());
    EXPECT_EQ(values<int64_t>((*r)[1]), (std::vector<int64_t>{1, 2}));

    KernelCall k0{"TopK", {f32({3}, {1, 2, 3}), i64({1}, {0})}};
    k0.num_outputs = 2;
    k0.constant_inputs = {1};
    r = run_kernel(k0);
    ASSERT_TRUE(r.is_ok());
    EXPECT_EQ((*r)[0].shape(), Shape{0});

    KernelCall big{"TopK", {f32({3}, {1, 2, 3}), i64({1}, {4})}};
    big.num_outputs = 2;
    big.constant_inputs = {1};
    expect_contains(run_error(big), {"TopK 'test_TopK'", "K 4"});
    KernelCall runtime_k{"TopK", {f32({3}, {1, 2, 3}), i64({1}, {1})}};
    runtime_k.num_outputs = 2;
    expect_contains(run_error(runtime_k), {"'K'", "plan time"});
}

// The YOLOv10 end-to-end tail: TopK over 8400 anchors with k=300, then GatherElements.
TEST(KernelsTensor, TopKLargeMatchesStableSort) {
    std::mt19937 rng(7);
    std::uniform_int_distribution<int> dist(0, 999);  // many ties
    std::vector<float> v(8400);
    for (float& f : v) f = static_cast<float>(dist(rng)) / 1000.0f;
    KernelCall c{"TopK", {f32({1, 8400}, v), i64({1}, {300})}};
    c.num_outputs = 2;
    c.constant_inputs = {1};
    auto r = run_kernel(c);
    ASSERT_TRUE(r.is_ok()) << r.status().message();
    std::vector<int64_t> order(8400);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return v[a] > v[b]; });
    order.resize(300);
    EXPECT_EQ(values<int64_t>((*r)[1]), order);
}

TEST(KernelsTensor, UnknownAttributeIsRejected) {
    KernelCall c{"Identity", {f32({1}, {1})}};
    c.attrs["bogus"] = attr_i(1);
    expect_contains(run_error(c), {"Identity 'test_Identity'", "'bogus'"});
    KernelCall g{"Gather", {f32({2}, {1, 2}), i64({1}, {0})}};
    g.attrs["axis"] = attr_f(1.0f);
    expect_contains(run_error(g), {"Gather 'test_Gather'", "'axis'"});
}

}  // namespace
}  // namespace lowbit::test
