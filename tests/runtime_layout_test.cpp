// Layout reorders (runtime/layout.cpp) against the index formula: NCHW <-> NHWC for 1-, 2-, 4-
// and 8-byte elements, on shapes with whole 16x16 tiles (the 4-byte register transpose), partial
// tiles and a batch, and 3-channel 4-byte images (interleaved 16 pixels a step, a scalar tail),
// on one thread and on two.
#include <gtest/gtest.h>

#include <cstring>
#include <random>

#include "core/thread_pool.h"
#include "runtime/layout.h"

namespace lowbit {
namespace {

void check(DType dt, const Shape& s, const ThreadPool& pool) {
    Tensor plain(dt, s), nhwc(dt, s), back(dt, s);
    std::mt19937 rng(11);
    auto* bytes = static_cast<uint8_t*>(plain.raw());
    for (size_t i = 0; i < plain.nbytes(); ++i) bytes[i] = static_cast<uint8_t>(rng());
    convert_layout(plain, Layout::Plain, nhwc, Layout::Nhwc, pool);
    const size_t e = dtype_size(dt);
    const int64_t n = s[0], c = s[1], hw = s[2] * s[3];
    const auto* src = static_cast<const uint8_t*>(plain.raw());
    const auto* got = static_cast<const uint8_t*>(nhwc.raw());
    for (int64_t b = 0; b < n; ++b) {
        for (int64_t ch = 0; ch < c; ++ch) {
            for (int64_t p = 0; p < hw; ++p) {
                const size_t from = static_cast<size_t>((b * c + ch) * hw + p) * e;
                const size_t to = static_cast<size_t>((b * hw + p) * c + ch) * e;
                ASSERT_EQ(std::memcmp(src + from, got + to, e), 0)
                    << dtype_name(dt) << " " << shape_str(s) << " b " << b << " c " << ch << " p "
                    << p;
            }
        }
    }
    convert_layout(nhwc, Layout::Nhwc, back, Layout::Plain, pool);
    EXPECT_EQ(std::memcmp(back.raw(), plain.raw(), plain.nbytes()), 0)
        << dtype_name(dt) << " " << shape_str(s);
}

TEST(Layout, ReordersMatchTheIndexFormula) {
    for (int threads : {1, 2}) {
        ThreadPool pool(threads);
        for (DType dt : {DType::Int8, DType::Float16, DType::Float32, DType::Int64}) {
            for (const Shape& s : {Shape{1, 144, 40, 40}, Shape{2, 32, 16, 8}, Shape{1, 3, 17, 19},
                                   Shape{1, 37, 9, 23}, Shape{2, 80, 5, 5}, Shape{2, 3, 40, 41},
                                   Shape{1, 3, 320, 320}}) {
                check(dt, s, pool);
            }
        }
    }
}

// same_bytes_in_layouts() (the planner then skips the reorder step): exactly the shapes whose
// NHWC copy is byte for byte the plain tensor.
TEST(Layout, SameBytesShapesReorderToThemselves) {
    ThreadPool pool(2);
    for (const Shape& s : {Shape{1, 960, 1, 1}, Shape{3, 40, 1, 1}, Shape{2, 1, 7, 9},
                           Shape{1, 1, 1, 1}, Shape{1, 2, 1, 3}, Shape{2, 5, 3, 1},
                           Shape{2, 16, 2, 2}}) {
        Tensor plain(DType::Float32, s), nhwc(DType::Float32, s);
        std::mt19937 rng(5);
        for (float& v : plain.span<float>()) v = static_cast<float>(rng());
        convert_layout(plain, Layout::Plain, nhwc, Layout::Nhwc, pool);
        const bool same = std::memcmp(plain.raw(), nhwc.raw(), plain.nbytes()) == 0;
        EXPECT_EQ(same_bytes_in_layouts(s), same) << shape_str(s);
    }
    EXPECT_FALSE(same_bytes_in_layouts(Shape{1, 960}));
    EXPECT_FALSE(same_bytes_in_layouts(Shape{960, 1, 1}));
}

}  // namespace
}  // namespace lowbit
