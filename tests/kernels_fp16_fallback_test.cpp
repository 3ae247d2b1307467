// Float16Fallback (runtime/kernels/fp16_fallback.h): a float16 node on a float32-only kernel
// equals the float32 kernel on the widened inputs, rounded to float16 - with the weight given
// as a plan-time constant or at run time, and leaving non-float outputs (MaxPool Indices) alone.
#include <gtest/gtest.h>

#include <random>

#include "core/half.h"
#include "kernel_test_util.h"

namespace lowbit {
namespace {

using test::KernelCall;
using test::run_kernel_full;

Tensor random_half(Shape shape, uint32_t seed) {
    Tensor t(DType::Float16, shape);
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> u(-2.0f, 2.0f);
    for (int64_t i = 0; i < t.numel(); ++i) t.data<uint16_t>()[i] = float_to_half(u(rng));
    return t;
}

Tensor widen(const Tensor& h) {
    Tensor f(DType::Float32, h.shape());
    for (int64_t i = 0; i < h.numel(); ++i)
        f.data<float>()[i] = half_to_float(h.data<uint16_t>()[i]);
    return f;
}

TEST(Float16Fallback, ConvEqualsFloat32ConvRounded) {
    const Tensor x = random_half({1, 3, 7, 6}, 1);
    const Tensor w = random_half({4, 3, 3, 3}, 2);
    KernelCall ref{"Conv", {widen(x), widen(w)}};
    ref.constant_inputs = {1};
    const auto want = run_kernel_full(ref);
    ASSERT_TRUE(want.status.is_ok()) << want.status.message();
    for (bool constant_w : {true, false}) {
        KernelCall c{"Conv", {x, w}};
        if (constant_w) c.constant_inputs = {1};
        const auto got = run_kernel_full(c);
        ASSERT_TRUE(got.status.is_ok()) << got.status.message();
        ASSERT_EQ(got.outputs[0].dtype(), DType::Float16);
        ASSERT_EQ(got.outputs[0].shape(), want.outputs[0].shape());
        for (int64_t i = 0; i < want.outputs[0].numel(); ++i) {
            ASSERT_EQ(got.outputs[0].data<uint16_t>()[i],
                      float_to_half(want.outputs[0].data<float>()[i]))
                << "constant_w=" << constant_w << " element " << i;
        }
    }
}

TEST(Float16Fallback, MaxPoolKeepsIndicesInt64) {
    const Tensor x = random_half({1, 2, 5, 5}, 3);
    KernelCall c{"MaxPool", {x}};
    c.attrs["kernel_shape"] = Attr::make_ints({2, 2});
    c.num_outputs = 2;
    const auto got = run_kernel_full(c);
    ASSERT_TRUE(got.status.is_ok()) << got.status.message();
    EXPECT_EQ(got.outputs[0].dtype(), DType::Float16);
    EXPECT_EQ(got.outputs[1].dtype(), DType::Int64);
    KernelCall r{"MaxPool", {widen(x)}};
    r.attrs = c.attrs;
    r.num_outputs = 2;
    const auto want = run_kernel_full(r);
    ASSERT_TRUE(want.status.is_ok());
    for (int64_t i = 0; i < want.outputs[0].numel(); ++i) {
        EXPECT_EQ(got.outputs[0].data<uint16_t>()[i],
                  float_to_half(want.outputs[0].data<float>()[i]));
        EXPECT_EQ(got.outputs[1].data<int64_t>()[i], want.outputs[1].data<int64_t>()[i]);
    }
}

}  // namespace
}  // namespace lowbit
