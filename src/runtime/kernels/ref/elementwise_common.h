// Helpers shared by the elementwise reference kernels (elementwise_binary.cpp,
// elementwise_unary.cpp, elementwise_select.cpp): dtype checks and errors, broadcasting the
// input shapes, and the parallel broadcast loop of two-operand ops. Internal to kernels/ref.
#pragma once

#include <fmt/format.h>

#include <cstdint>
#include <limits>
#include <vector>

#include "core/status.h"
#include "core/thread_pool.h"
#include "runtime/kernel.h"
#include "runtime/kernels/ref/broadcast.h"

namespace lowbit::ref {

// Elements per parallel chunk: below this a loop stays on the calling thread.
inline constexpr int64_t kGrain = 1 << 14;

// The dtype's lowest and largest finite values (Clip's defaults for absent bounds).
template <DType D>
typename ref::DTypeTraits<D>::Value lowest_finite() {
    if constexpr (D == DType::Float16) {
        return -65504.0f;
    } else if constexpr (D == DType::BFloat16) {
        return -0x1.FEp127f;
    } else {
        return std::numeric_limits<typename ref::DTypeTraits<D>::Value>::lowest();
    }
}
template <DType D>
typename ref::DTypeTraits<D>::Value max_finite() {
    if constexpr (D == DType::Float16) {
        return 65504.0f;
    } else if constexpr (D == DType::BFloat16) {
        return 0x1.FEp127f;
    } else {
        return std::numeric_limits<typename ref::DTypeTraits<D>::Value>::max();
    }
}

// lo <= v <= hi, written so NaN passes through (NumPy's clip and ONNX's reference do that).
template <class V>
V clamp_nan(V v, V lo, V hi) {
    V t = v < lo ? lo : v;
    return t > hi ? hi : t;
}

inline Status unexpected_dtype(const Node& node, DType t) {
    return Status(StatusCode::Internal, fmt::format("{}: run() got dtype {} that prepare() did "
                                                    "not accept",
                                                    node.describe(), dtype_name(t)));
}

inline Status same_dtype(const PrepareContext& ctx, size_t i, size_t j) {
    if (ctx.inputs[i].dtype == ctx.inputs[j].dtype) return Status::ok();
    return invalid("{}: input {} has dtype {} but input {} has {}; they must match",
                   ctx.node.describe(), j, dtype_name(ctx.inputs[j].dtype), i,
                   dtype_name(ctx.inputs[i].dtype));
}

inline Result<Shape> broadcast_inputs(const PrepareContext& ctx) {
    std::vector<Shape> shapes;
    for (const TensorInfo& t : ctx.inputs) shapes.push_back(t.shape);
    auto r = ref::broadcast_shapes(shapes);
    if (!r.is_ok()) return r.status().with_context(ctx.node.describe());
    return r;
}

inline std::vector<Shape> input_shapes(const RunContext& ctx) {
    std::vector<Shape> shapes;
    for (const Tensor& t : ctx.inputs) shapes.push_back(t.shape());
    return shapes;
}

// out[o] = f(a[ia], b[ib]) over a broadcast, on storage values. The inner loops are the plain
// same-shape loop and the two scalar-operand loops, so the common cases vectorize.
template <class A, class B, class O, class F>
void broadcast_binary(const BroadcastLoop& loop, const A* a, const B* b, O* out,
                      const ThreadPool& pool, const F& f) {
    const bool step_a = loop.inner_stride(0) != 0;
    const bool step_b = loop.inner_stride(1) != 0;
    pool.parallel_for(loop.size(), kGrain, [&](int64_t begin, int64_t end) {
        loop.for_each_run(begin, end, [&](int64_t o, const int64_t* off, int64_t len) {
            const A* pa = a + off[0];
            const B* pb = b + off[1];
            O* po = out + o;
            if (step_a && step_b) {
                for (int64_t i = 0; i < len; ++i) po[i] = f(pa[i], pb[i]);
            } else if (step_a) {
                const B vb = *pb;
                for (int64_t i = 0; i < len; ++i) po[i] = f(pa[i], vb);
            } else if (step_b) {
                const A va = *pa;
                for (int64_t i = 0; i < len; ++i) po[i] = f(va, pb[i]);
            } else {
                const O v = f(*pa, *pb);
                for (int64_t i = 0; i < len; ++i) po[i] = v;
            }
        });
    });
}

}  // namespace lowbit::ref
