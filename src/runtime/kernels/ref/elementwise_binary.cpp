// Reference kernels for the two-operand and variadic elementwise ONNX ops (opsets 13-19
// semantics, older attribute forms where models still use them):
//   arithmetic  Add Sub Mul Div Mod Pow
//   comparison  Equal Less Greater LessOrEqual GreaterOrEqual (bool output)
//   logic       And Or Xor
//   variadic    Sum Mean Min Max
// They share one broadcast kernel (BinaryKernel) and differ only in the per-element op.
// Shapes: inputs broadcast multidirectionally (NumPy rules, onnx/docs/Broadcasting.md) to the
// output. Float16 and bfloat16 compute in float32 and round the result to nearest even; integer
// arithmetic wraps on overflow (ONNX Runtime's behaviour; in C++ signed overflow would be
// undefined). Shared helpers: elementwise_common.h.
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

using ref::add_wrap;
using ref::broadcast_binary;
using ref::broadcast_inputs;
using ref::BroadcastLoop;
using ref::DTypeList;
using ref::input_shapes;
using ref::is_nan;
using ref::kGrain;
using ref::mul_wrap;
using ref::neg_wrap;
using ref::same_dtype;
using ref::sub_wrap;
using ref::unexpected_dtype;

// ---------------------------------------------------------------------------------------------
// Binary ops: Y = op(A, B), A and B of one dtype, Y of that dtype (or bool for comparisons).

struct BinaryOpBase {
    static constexpr bool kBoolOut = false;
    static constexpr bool kIntegerDivisor = false;  // B must hold no 0 for integer dtypes
    Status init(const Node&, DType) { return Status::ok(); }
};

struct AddOp : BinaryOpBase {
    using Types = ref::NumericDTypes;
    template <class V>
    V apply(V a, V b) const {
        return add_wrap(a, b);
    }
};
struct SubOp : BinaryOpBase {
    using Types = ref::NumericDTypes;
    template <class V>
    V apply(V a, V b) const {
        return sub_wrap(a, b);
    }
};
struct MulOp : BinaryOpBase {
    using Types = ref::NumericDTypes;
    template <class V>
    V apply(V a, V b) const {
        return mul_wrap(a, b);
    }
};
// Integer division truncates toward zero (C++ and ONNX Runtime); INT_MIN / -1 wraps to INT_MIN.
struct DivOp : BinaryOpBase {
    using Types = ref::NumericDTypes;
    static constexpr bool kIntegerDivisor = true;
    template <class V>
    V apply(V a, V b) const {
        if constexpr (std::is_integral_v<V> && std::is_signed_v<V>) {
            if (b == V(-1)) return neg_wrap(a);
        }
        return a / b;
    }
};
// Mod-13: fmod=1 is C fmod (result has the sign of the dividend); fmod=0, integers only, is
// Python's % (result has the sign of the divisor). Floats require fmod=1.
struct ModOp : BinaryOpBase {
    using Types = ref::NumericDTypes;
    static constexpr bool kIntegerDivisor = true;
    bool fmod = false;
    Status init(const Node& node, DType t) {
        LOWBIT_ASSIGN(int64_t f, ref::int_attr(node, "fmod", 0));
        if (f != 0 && f != 1)
            return invalid("{}: attribute 'fmod' must be 0 or 1, got {}", node.describe(), f);
        fmod = f == 1;
        if (!fmod && dtype_is_float(t)) {
            return invalid(
                "{}: attribute 'fmod' is 0 but the input is {}; ONNX Mod requires "
                "fmod=1 for floating point inputs",
                node.describe(), dtype_name(t));
        }
        return Status::ok();
    }
    template <class V>
    V apply(V a, V b) const {
        if constexpr (std::is_floating_point_v<V>) {
            return std::fmod(a, b);
        } else if constexpr (std::is_signed_v<V>) {
            if (b == V(-1)) return V(0);  // INT_MIN % -1 would trap
            V r = static_cast<V>(a % b);
            if (!fmod && r != 0 && ((r < 0) != (b < 0))) r = static_cast<V>(r + b);
            return r;
        } else {
            return static_cast<V>(a % b);
        }
    }
};

struct CompareBase : BinaryOpBase {
    static constexpr bool kBoolOut = true;
    using Types = ref::NumericDTypes;
};
struct EqualOp : CompareBase {
    using Types = ref::DTypeConcat<ref::NumericDTypes, DTypeList<DType::Bool>>::type;
    template <class V>
    bool apply(V a, V b) const {
        return a == b;
    }
};
struct LessOp : CompareBase {
    template <class V>
    bool apply(V a, V b) const {
        return a < b;
    }
};
struct GreaterOp : CompareBase {
    template <class V>
    bool apply(V a, V b) const {
        return a > b;
    }
};
struct LessOrEqualOp : CompareBase {
    template <class V>
    bool apply(V a, V b) const {
        return a <= b;
    }
};
struct GreaterOrEqualOp : CompareBase {
    template <class V>
    bool apply(V a, V b) const {
        return a >= b;
    }
};

struct LogicBase : BinaryOpBase {
    static constexpr bool kBoolOut = true;
    using Types = DTypeList<DType::Bool>;
};
struct AndOp : LogicBase {
    bool apply(bool a, bool b) const { return a && b; }
};
struct OrOp : LogicBase {
    bool apply(bool a, bool b) const { return a || b; }
};
struct XorOp : LogicBase {
    bool apply(bool a, bool b) const { return a != b; }
};

// Fails when an integer divisor tensor holds a 0 (undefined in ONNX; ONNX Runtime crashes).
template <class S>
Status check_no_zero(const Tensor& b, const Node& node) {
    const S* p = b.data<S>();
    for (int64_t i = 0; i < b.numel(); ++i) {
        if (p[i] == S(0)) {
            return invalid("{}: integer division by zero (input 1, element {})", node.describe(),
                           i);
        }
    }
    return Status::ok();
}

template <class Op>
class BinaryKernel final : public Kernel {
public:
    Status prepare(PrepareContext& ctx) override {
        LOWBIT_TRY(ref::check_input_count(ctx, 2, 2));
        const DType t = ctx.inputs[0].dtype;
        if (!Op::Types::contains(t)) return ref::dtype_error(ctx.node, 0, t, Op::Types::names());
        LOWBIT_TRY(same_dtype(ctx, 0, 1));
        LOWBIT_TRY(op_.init(ctx.node, t));
        LOWBIT_ASSIGN(Shape shape, broadcast_inputs(ctx));
        ctx.outputs[0].dtype = Op::kBoolOut ? DType::Bool : t;
        ctx.outputs[0].shape = std::move(shape);
        return Status::ok();
    }

    Status run(RunContext& ctx) override {
        const Tensor& a = ctx.inputs[0];
        const Tensor& b = ctx.inputs[1];
        Tensor& y = ctx.outputs[0];
        const std::vector<Shape> shapes = input_shapes(ctx);
        const BroadcastLoop loop(y.shape(), shapes);
        Status st;
        const bool known = Op::Types::visit(a.dtype(), [&](auto tag) {
            using Tag = decltype(tag);
            using S = typename Tag::Storage;
            using Tr = typename Tag::Traits;
            if constexpr (Op::kIntegerDivisor && std::is_integral_v<typename Tag::Value>) {
                st = check_no_zero<S>(b, ctx.node);
                if (!st.is_ok()) return;
            }
            if constexpr (Op::kBoolOut) {
                broadcast_binary(loop, a.data<S>(), b.data<S>(), y.data<uint8_t>(), ctx.pool,
                                 [this](S u, S v) -> uint8_t {
                                     return op_.apply(Tr::load(u), Tr::load(v)) ? 1 : 0;
                                 });
            } else {
                broadcast_binary(loop, a.data<S>(), b.data<S>(), y.data<S>(), ctx.pool,
                                 [this](S u, S v) -> S {
                                     return Tr::store(op_.apply(Tr::load(u), Tr::load(v)));
                                 });
            }
        });
        if (!known) return unexpected_dtype(ctx.node, a.dtype());
        return st;
    }

private:
    Op op_;
};

// ---------------------------------------------------------------------------------------------
// Pow(X, Y) -> Z: Z has X's dtype; Y may be any numeric dtype (Pow-12+).
//   float X: computed in double and rounded once to X's dtype;
//   integer X, integer Y >= 0: exact power by squaring (wrapping on overflow);
//   integer X otherwise: double pow converted like ONNX Runtime's static_cast (ref::float_to_int).

template <class V>
V int_pow(V base, uint64_t e) {
    V r = 1;
    while (e != 0) {
        if (e & 1u) r = mul_wrap(r, base);
        base = mul_wrap(base, base);
        e >>= 1;
    }
    return r;
}

template <class V, class E>
V pow_value(V base, E e) {
    if constexpr (std::is_floating_point_v<V>) {
        return static_cast<V>(std::pow(static_cast<double>(base), static_cast<double>(e)));
    } else {
        if constexpr (std::is_integral_v<E>) {
            if constexpr (std::is_signed_v<E>) {
                if (e >= 0) return int_pow(base, static_cast<uint64_t>(e));
            } else {
                return int_pow(base, static_cast<uint64_t>(e));
            }
        }
        return ref::float_to_int<V>(std::pow(static_cast<double>(base), static_cast<double>(e)));
    }
}

class PowKernel final : public Kernel {
public:
    using BaseTypes =
        ref::DTypeConcat<ref::FloatDTypes, DTypeList<DType::Int32, DType::Int64>>::type;
    using ExponentTypes = ref::NumericDTypes;

    Status prepare(PrepareContext& ctx) override {
        LOWBIT_TRY(ref::check_input_count(ctx, 2, 2));
        const DType t = ctx.inputs[0].dtype;
        const DType e = ctx.inputs[1].dtype;
        if (!BaseTypes::contains(t)) return ref::dtype_error(ctx.node, 0, t, BaseTypes::names());
        if (!ExponentTypes::contains(e)) {
            return ref::dtype_error(ctx.node, 1, e, ExponentTypes::names());
        }
        LOWBIT_ASSIGN(Shape shape, broadcast_inputs(ctx));
        ctx.outputs[0].dtype = t;
        ctx.outputs[0].shape = std::move(shape);
        return Status::ok();
    }

    Status run(RunContext& ctx) override {
        const Tensor& x = ctx.inputs[0];
        const Tensor& y = ctx.inputs[1];
        Tensor& z = ctx.outputs[0];
        const std::vector<Shape> shapes = input_shapes(ctx);
        const BroadcastLoop loop(z.shape(), shapes);
        bool known_e = false;
        const bool known = BaseTypes::visit(x.dtype(), [&](auto xt) {
            using XS = typename decltype(xt)::Storage;
            using XTr = typename decltype(xt)::Traits;
            known_e = ExponentTypes::visit(y.dtype(), [&](auto yt) {
                using YS = typename decltype(yt)::Storage;
                using YTr = typename decltype(yt)::Traits;
                broadcast_binary(loop, x.data<XS>(), y.data<YS>(), z.data<XS>(), ctx.pool,
                                 [](XS u, YS v) -> XS {
                                     return XTr::store(pow_value(XTr::load(u), YTr::load(v)));
                                 });
            });
        });
        if (!known) return unexpected_dtype(ctx.node, x.dtype());
        if (!known_e) return unexpected_dtype(ctx.node, y.dtype());
        return Status::ok();
    }
};

// ---------------------------------------------------------------------------------------------
// Variadic ops: Y = op(X0, X1, ..., Xn-1), all broadcast together, one dtype. Sum and Mean add
// left to right (Mean then divides by n); Min and Max propagate NaN like NumPy and ONNX's
// reference implementation.

struct SumOp {
    using Types = ref::FloatDTypes;
    template <class V>
    V combine(V a, V b) const {
        return a + b;
    }
    template <class V>
    V finish(V a, size_t) const {
        return a;
    }
};
struct MeanOp : SumOp {
    template <class V>
    V finish(V a, size_t n) const {
        return a / static_cast<V>(n);
    }
};
struct MaxOp {
    using Types = ref::NumericDTypes;
    template <class V>
    V combine(V a, V b) const {
        return (is_nan(a) || a > b) ? a : b;
    }
    template <class V>
    V finish(V a, size_t) const {
        return a;
    }
};
struct MinOp {
    using Types = ref::NumericDTypes;
    template <class V>
    V combine(V a, V b) const {
        return (is_nan(a) || a < b) ? a : b;
    }
    template <class V>
    V finish(V a, size_t) const {
        return a;
    }
};

template <class Op>
class VariadicKernel final : public Kernel {
public:
    Status prepare(PrepareContext& ctx) override {
        const size_t n = ctx.num_inputs();
        LOWBIT_TRY(ref::check_input_count(ctx, 1, std::max<size_t>(n, 1)));
        for (size_t i = 0; i < n; ++i) {
            if (!ctx.has_input(i)) {
                return invalid("{}: input {} is empty; every input is required",
                               ctx.node.describe(), i);
            }
        }
        const DType t = ctx.inputs[0].dtype;
        if (!Op::Types::contains(t)) return ref::dtype_error(ctx.node, 0, t, Op::Types::names());
        for (size_t i = 1; i < n; ++i) LOWBIT_TRY(same_dtype(ctx, 0, i));
        LOWBIT_ASSIGN(Shape shape, broadcast_inputs(ctx));
        ctx.outputs[0].dtype = t;
        ctx.outputs[0].shape = std::move(shape);
        return Status::ok();
    }

    Status run(RunContext& ctx) override {
        Tensor& y = ctx.outputs[0];
        const std::vector<Shape> shapes = input_shapes(ctx);
        const BroadcastLoop loop(y.shape(), shapes);
        const size_t n = ctx.inputs.size();
        const bool known = Op::Types::visit(y.dtype(), [&](auto tag) {
            using S = typename decltype(tag)::Storage;
            using Tr = typename decltype(tag)::Traits;
            using V = typename decltype(tag)::Value;
            std::vector<const S*> in(n);
            for (size_t k = 0; k < n; ++k) in[k] = ctx.inputs[k].template data<S>();
            S* out = y.data<S>();
            ctx.pool.parallel_for(loop.size(), kGrain, [&](int64_t begin, int64_t end) {
                loop.for_each_run(begin, end, [&](int64_t o, const int64_t* off, int64_t len) {
                    for (int64_t i = 0; i < len; ++i) {
                        V acc = Tr::load(in[0][off[0] + i * loop.inner_stride(0)]);
                        for (size_t k = 1; k < n; ++k) {
                            acc = op_.combine(acc,
                                              Tr::load(in[k][off[k] + i * loop.inner_stride(k)]));
                        }
                        out[o + i] = Tr::store(op_.finish(acc, n));
                    }
                });
            });
        });
        if (!known) return unexpected_dtype(ctx.node, y.dtype());
        return Status::ok();
    }

private:
    Op op_;
};

}  // namespace

void register_elementwise_binary_kernels(KernelRegistry& r) {
    register_kernel<BinaryKernel<AddOp>>(r, "Add");
    register_kernel<BinaryKernel<SubOp>>(r, "Sub");
    register_kernel<BinaryKernel<MulOp>>(r, "Mul");
    register_kernel<BinaryKernel<DivOp>>(r, "Div");
    register_kernel<BinaryKernel<ModOp>>(r, "Mod");
    register_kernel<PowKernel>(r, "Pow");
    register_kernel<BinaryKernel<EqualOp>>(r, "Equal");
    register_kernel<BinaryKernel<LessOp>>(r, "Less");
    register_kernel<BinaryKernel<GreaterOp>>(r, "Greater");
    register_kernel<BinaryKernel<LessOrEqualOp>>(r, "LessOrEqual");
    register_kernel<BinaryKernel<GreaterOrEqualOp>>(r, "GreaterOrEqual");
    register_kernel<BinaryKernel<AndOp>>(r, "And");
    register_kernel<BinaryKernel<OrOp>>(r, "Or");
    register_kernel<BinaryKernel<XorOp>>(r, "Xor");
    register_kernel<VariadicKernel<SumOp>>(r, "Sum");
    register_kernel<VariadicKernel<MeanOp>>(r, "Mean");
    register_kernel<VariadicKernel<MaxOp>>(r, "Max");
    register_kernel<VariadicKernel<MinOp>>(r, "Min");
}

}  // namespace lowbit
