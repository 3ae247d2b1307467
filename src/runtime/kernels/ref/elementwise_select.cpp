// Reference kernels for the elementwise ONNX ops that select or bound values: Where, Clip and
// PRelu. Where broadcasts all three inputs multidirectionally (NumPy rules,
// onnx/docs/Broadcasting.md); PRelu's slope broadcasts unidirectionally to X (Y has X's shape).
// Float16 and bfloat16 compute in float32 and round the result to nearest even. Shared
// helpers: elementwise_common.h.
#include <atomic>
#include <cmath>
#include <limits>
#include <type_traits>

#include "core/thread_pool.h"
#include "runtime/kernels/ref/broadcast.h"
#include "runtime/kernels/ref/elementwise_common.h"
#include "runtime/kernels/ref/families.h"
#include "runtime/registry.h"

namespace lowbit {
namespace {

using ref::broadcast_binary;
using ref::broadcast_inputs;
using ref::BroadcastLoop;
using ref::clamp_nan;
using ref::DTypeList;
using ref::input_shapes;
using ref::kGrain;
using ref::lowest_finite;
using ref::max_finite;
using ref::mul_wrap;
using ref::same_dtype;
using ref::unexpected_dtype;

// ---------------------------------------------------------------------------------------------
// Where(condition, X, Y) -> Z: Z = condition ? X : Y, all three broadcast; X and Y of any one
// dtype (copied as raw elements).

template <class S>
void where_loop(const BroadcastLoop& loop, const uint8_t* c, const S* x, const S* y, S* z,
                const ThreadPool& pool) {
    const int64_t sc = loop.inner_stride(0);
    const int64_t sx = loop.inner_stride(1);
    const int64_t sy = loop.inner_stride(2);
    pool.parallel_for(loop.size(), kGrain, [&](int64_t begin, int64_t end) {
        loop.for_each_run(begin, end, [&](int64_t o, const int64_t* off, int64_t len) {
            const uint8_t* pc = c + off[0];
            const S* px = x + off[1];
            const S* py = y + off[2];
            for (int64_t i = 0; i < len; ++i) z[o + i] = pc[i * sc] ? px[i * sx] : py[i * sy];
        });
    });
}

class WhereKernel final : public Kernel {
public:
    Status prepare(PrepareContext& ctx) override {
        LOWBIT_TRY(ref::check_input_count(ctx, 3, 3));
        if (ctx.inputs[0].dtype != DType::Bool) {
            return ref::dtype_error(ctx.node, 0, ctx.inputs[0].dtype, "bool condition");
        }
        const DType t = ctx.inputs[1].dtype;
        if (!ref::AllDTypes::contains(t)) {
            return ref::dtype_error(ctx.node, 1, t, ref::AllDTypes::names());
        }
        LOWBIT_TRY(same_dtype(ctx, 1, 2));
        LOWBIT_ASSIGN(Shape shape, broadcast_inputs(ctx));
        ctx.outputs[0].dtype = t;
        ctx.outputs[0].shape = std::move(shape);
        return Status::ok();
    }

    Status run(RunContext& ctx) override {
        const Tensor& c = ctx.inputs[0];
        const Tensor& x = ctx.inputs[1];
        const Tensor& y = ctx.inputs[2];
        Tensor& z = ctx.outputs[0];
        const std::vector<Shape> shapes = input_shapes(ctx);
        const BroadcastLoop loop(z.shape(), shapes);
        const uint8_t* pc = c.data<uint8_t>();
        switch (dtype_size(z.dtype())) {
            case 1:
                where_loop(loop, pc, x.data<uint8_t>(), y.data<uint8_t>(), z.data<uint8_t>(),
                           ctx.pool);
                break;
            case 2:
                where_loop(loop, pc, x.data<uint16_t>(), y.data<uint16_t>(), z.data<uint16_t>(),
                           ctx.pool);
                break;
            case 4:
                where_loop(loop, pc, x.data<uint32_t>(), y.data<uint32_t>(), z.data<uint32_t>(),
                           ctx.pool);
                break;
            case 8:
                where_loop(loop, pc, x.data<uint64_t>(), y.data<uint64_t>(), z.data<uint64_t>(),
                           ctx.pool);
                break;
            default: return unexpected_dtype(ctx.node, z.dtype());
        }
        return Status::ok();
    }
};

// ---------------------------------------------------------------------------------------------
// Clip(X[, min][, max]) -> Y, Y = min(max(X, min), max), so min > max gives max everywhere (as
// the spec says). Clip-11+: min and max are optional one-element inputs of X's dtype; absent
// bounds default to the dtype's lowest / largest finite value (the spec's
// numeric_limits::lowest() / max(), so +-inf is clipped to them, as ONNX Runtime does).
// Clip-6 (opset < 11): float attributes 'min'/'max' with defaults -FLT_MAX/FLT_MAX. NaN passes
// through.

class ClipKernel final : public Kernel {
public:
    Status prepare(PrepareContext& ctx) override {
        LOWBIT_TRY(ref::check_input_count(ctx, 1, 3));
        const Node& node = ctx.node;
        const DType t = ctx.inputs[0].dtype;
        const bool has_attrs = node.has_attr("min") || node.has_attr("max");
        use_attrs_ = ctx.opset < 11;
        if (use_attrs_ || has_attrs) {
            if (ctx.num_inputs() > 1) {
                return invalid("{}: bounds given both as inputs and as attributes 'min'/'max'",
                               node.describe());
            }
            use_attrs_ = true;
            if (!ref::FloatDTypes::contains(t)) {
                return ref::dtype_error(node, 0, t,
                                        ref::FloatDTypes::names() + " (Clip-6 attribute form)");
            }
            LOWBIT_ASSIGN(min_attr_,
                          ref::float_attr(node, "min", std::numeric_limits<float>::lowest()));
            LOWBIT_ASSIGN(max_attr_,
                          ref::float_attr(node, "max", std::numeric_limits<float>::max()));
        } else {
            if (!ref::NumericDTypes::contains(t)) {
                return ref::dtype_error(node, 0, t, ref::NumericDTypes::names());
            }
            for (size_t i = 1; i < ctx.num_inputs(); ++i) {
                if (!ctx.has_input(i)) continue;
                LOWBIT_TRY(same_dtype(ctx, 0, i));
                if (shape_numel(ctx.inputs[i].shape) != 1) {
                    return invalid("{}: input {} ({}) must be a scalar, got shape {}",
                                   node.describe(), i, i == 1 ? "min" : "max",
                                   shape_str(ctx.inputs[i].shape));
                }
            }
        }
        ctx.outputs[0].dtype = t;
        ctx.outputs[0].shape = ctx.inputs[0].shape;
        return Status::ok();
    }

    Status run(RunContext& ctx) override {
        const Tensor& x = ctx.inputs[0];
        Tensor& y = ctx.outputs[0];
        const bool known = ref::NumericDTypes::visit(x.dtype(), [&](auto tag) {
            using S = typename decltype(tag)::Storage;
            using Tr = typename decltype(tag)::Traits;
            using V = typename decltype(tag)::Value;
            constexpr DType kD = decltype(tag)::value;
            V lo = lowest_finite<kD>();
            V hi = max_finite<kD>();
            if (use_attrs_) {
                if constexpr (std::is_floating_point_v<V>) {
                    lo = static_cast<V>(min_attr_);
                    hi = static_cast<V>(max_attr_);
                }
            } else {
                if (ctx.inputs.size() > 1 && !ctx.inputs[1].empty()) {
                    lo = Tr::load(ctx.inputs[1].template data<S>()[0]);
                }
                if (ctx.inputs.size() > 2 && !ctx.inputs[2].empty()) {
                    hi = Tr::load(ctx.inputs[2].template data<S>()[0]);
                }
            }
            const S* px = x.data<S>();
            S* py = y.data<S>();
            ctx.pool.parallel_for(x.numel(), kGrain, [&](int64_t begin, int64_t end) {
                for (int64_t i = begin; i < end; ++i) {
                    py[i] = Tr::store(clamp_nan(Tr::load(px[i]), lo, hi));
                }
            });
        });
        if (!known) return unexpected_dtype(ctx.node, x.dtype());
        return Status::ok();
    }

private:
    bool use_attrs_ = false;
    float min_attr_ = 0;
    float max_attr_ = 0;
};

// ---------------------------------------------------------------------------------------------
// PRelu(X, slope) -> Y of X's shape: Y = X < 0 ? slope * X : X; slope broadcasts
// unidirectionally to X (e.g. [C,1,1] against [N,C,H,W]).

class PReluKernel final : public Kernel {
public:
    using Types =
        ref::DTypeConcat<ref::FloatDTypes,
                         DTypeList<DType::Int32, DType::Int64, DType::UInt32, DType::UInt64>>::type;

    Status prepare(PrepareContext& ctx) override {
        LOWBIT_TRY(ref::check_input_count(ctx, 2, 2));
        const DType t = ctx.inputs[0].dtype;
        if (!Types::contains(t)) return ref::dtype_error(ctx.node, 0, t, Types::names());
        LOWBIT_TRY(same_dtype(ctx, 0, 1));
        if (!ref::broadcastable_to(ctx.inputs[1].shape, ctx.inputs[0].shape)) {
            return invalid("{}: slope shape {} does not broadcast to X shape {}",
                           ctx.node.describe(), shape_str(ctx.inputs[1].shape),
                           shape_str(ctx.inputs[0].shape));
        }
        ctx.outputs[0].dtype = t;
        ctx.outputs[0].shape = ctx.inputs[0].shape;
        return Status::ok();
    }

    Status run(RunContext& ctx) override {
        const Tensor& x = ctx.inputs[0];
        const Tensor& slope = ctx.inputs[1];
        Tensor& y = ctx.outputs[0];
        const std::vector<Shape> shapes = input_shapes(ctx);
        const BroadcastLoop loop(y.shape(), shapes);
        const bool known = Types::visit(x.dtype(), [&](auto tag) {
            using S = typename decltype(tag)::Storage;
            using Tr = typename decltype(tag)::Traits;
            using V = typename decltype(tag)::Value;
            broadcast_binary(loop, x.data<S>(), slope.data<S>(), y.data<S>(), ctx.pool,
                             [](S u, S s) -> S {
                                 if constexpr (std::is_unsigned_v<V>) {
                                     return u;  // never negative
                                 } else {
                                     const V v = Tr::load(u);
                                     return v < V(0) ? Tr::store(mul_wrap(Tr::load(s), v)) : u;
                                 }
                             });
        });
        if (!known) return unexpected_dtype(ctx.node, x.dtype());
        return Status::ok();
    }
};

}  // namespace

void register_elementwise_select_kernels(KernelRegistry& r) {
    register_kernel<WhereKernel>(r, "Where");
    register_kernel<ClipKernel>(r, "Clip");
    register_kernel<PReluKernel>(r, "PRelu");
}

}  // namespace lowbit
