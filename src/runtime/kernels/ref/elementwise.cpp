// Reference kernels for the elementwise ONNX ops (opsets 13-19 semantics, older attribute forms
// where models still use them):
//   binary   Add Sub Mul Div Pow Mod, Equal Less Greater LessOrEqual GreaterOrEqual, And Or Xor
//   variadic Sum Mean Min Max
//   unary    Sigmoid Relu LeakyRelu HardSigmoid HardSwish Sqrt Exp Log Neg Abs Tanh Erf Floor
//            Ceil Round Reciprocal Sign Softplus Elu Selu Not
//   other    Where Clip PRelu
// Shapes: inputs broadcast multidirectionally (NumPy rules, onnx/docs/Broadcasting.md) to the
// output, except PRelu (slope broadcasts unidirectionally to X; Y has X's shape). Float16 and
// bfloat16 compute in float32 and round the result to nearest even; integer arithmetic wraps on
// overflow (ONNX Runtime's behaviour; in C++ signed overflow would be undefined).
#include <atomic>
#include <cmath>
#include <limits>
#include <type_traits>

#include "core/thread_pool.h"
#include "runtime/kernels/ref/broadcast.h"
#include "runtime/kernels/ref/families.h"
#include "runtime/registry.h"

namespace lowbit {
namespace {

using ref::add_wrap;
using ref::BroadcastLoop;
using ref::DTypeList;
using ref::is_nan;
using ref::mul_wrap;
using ref::neg_wrap;
using ref::sub_wrap;

// Elements per parallel chunk: below this a loop stays on the calling thread.
constexpr int64_t kGrain = 1 << 14;

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

Status unexpected_dtype(const Node& node, DType t) {
    return Status(StatusCode::Internal, fmt::format("{}: run() got dtype {} that prepare() did "
                                                    "not accept",
                                                    node.describe(), dtype_name(t)));
}

Status same_dtype(const PrepareContext& ctx, size_t i, size_t j) {
    if (ctx.inputs[i].dtype == ctx.inputs[j].dtype) return Status::ok();
    return invalid("{}: input {} has dtype {} but input {} has {}; they must match",
                   ctx.node.describe(), j, dtype_name(ctx.inputs[j].dtype), i,
                   dtype_name(ctx.inputs[i].dtype));
}

Result<Shape> broadcast_inputs(const PrepareContext& ctx) {
    std::vector<Shape> shapes;
    for (const TensorInfo& t : ctx.inputs) shapes.push_back(t.shape);
    auto r = ref::broadcast_shapes(shapes);
    if (!r.is_ok()) return r.status().with_context(ctx.node.describe());
    return r;
}

std::vector<Shape> input_shapes(const RunContext& ctx) {
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

// ---------------------------------------------------------------------------------------------
// Unary ops: Y = f(X), same dtype and shape. Attributes are read once in prepare().

struct UnaryOpBase {
    Status init(const Node&) { return Status::ok(); }
};
struct FloatUnaryBase : UnaryOpBase {
    using Types = ref::FloatDTypes;
};

struct SigmoidOp : FloatUnaryBase {
    template <class V>
    V apply(V x) const {
        return V(1) / (V(1) + std::exp(-x));
    }
};
// Relu-14 also takes signed integers. `x < 0 ? 0 : x` keeps NaN (as NumPy's maximum does).
struct ReluOp : UnaryOpBase {
    using Types = ref::SignedDTypes;
    template <class V>
    V apply(V x) const {
        return x < V(0) ? V(0) : x;
    }
};
struct LeakyReluOp : FloatUnaryBase {
    float alpha = 0.01f;
    Status init(const Node& node) {
        LOWBIT_ASSIGN(alpha, ref::float_attr(node, "alpha", 0.01f));
        return Status::ok();
    }
    template <class V>
    V apply(V x) const {
        return x < V(0) ? static_cast<V>(alpha) * x : x;
    }
};
// HardSigmoid: max(0, min(1, alpha * x + beta)).
struct HardSigmoidOp : FloatUnaryBase {
    float alpha = 0.2f;
    float beta = 0.5f;
    Status init(const Node& node) {
        LOWBIT_ASSIGN(alpha, ref::float_attr(node, "alpha", 0.2f));
        LOWBIT_ASSIGN(beta, ref::float_attr(node, "beta", 0.5f));
        return Status::ok();
    }
    template <class V>
    V apply(V x) const {
        return clamp_nan(static_cast<V>(alpha) * x + static_cast<V>(beta), V(0), V(1));
    }
};
// HardSwish-14: x * max(0, min(1, alpha * x + beta)) with alpha = 1/6, beta = 0.5.
struct HardSwishOp : FloatUnaryBase {
    template <class V>
    V apply(V x) const {
        return x * clamp_nan(V(1) / V(6) * x + V(0.5), V(0), V(1));
    }
};
struct SqrtOp : FloatUnaryBase {
    template <class V>
    V apply(V x) const {
        return std::sqrt(x);
    }
};
struct ExpOp : FloatUnaryBase {
    template <class V>
    V apply(V x) const {
        return std::exp(x);
    }
};
struct LogOp : FloatUnaryBase {
    template <class V>
    V apply(V x) const {
        return std::log(x);
    }
};
struct TanhOp : FloatUnaryBase {
    template <class V>
    V apply(V x) const {
        return std::tanh(x);
    }
};
struct ErfOp : FloatUnaryBase {
    template <class V>
    V apply(V x) const {
        return std::erf(x);
    }
};
struct FloorOp : FloatUnaryBase {
    template <class V>
    V apply(V x) const {
        return std::floor(x);
    }
};
struct CeilOp : FloatUnaryBase {
    template <class V>
    V apply(V x) const {
        return std::ceil(x);
    }
};
// Round-11: half to even. nearbyint uses the current rounding mode, which is the default
// round-to-nearest-even throughout this library (std::round would round half away from zero).
struct RoundOp : FloatUnaryBase {
    template <class V>
    V apply(V x) const {
        return std::nearbyint(x);
    }
};
struct ReciprocalOp : FloatUnaryBase {
    template <class V>
    V apply(V x) const {
        return V(1) / x;
    }
};
// Softplus: log(1 + exp(x)), in the form that neither overflows for large x nor loses
// precision for very negative x.
struct SoftplusOp : FloatUnaryBase {
    template <class V>
    V apply(V x) const {
        return x > V(0) ? x + std::log1p(std::exp(-x)) : std::log1p(std::exp(x));
    }
};
// Elu: x for x >= 0, alpha * (exp(x) - 1) otherwise.
struct EluOp : FloatUnaryBase {
    float alpha = 1.0f;
    Status init(const Node& node) {
        LOWBIT_ASSIGN(alpha, ref::float_attr(node, "alpha", 1.0f));
        return Status::ok();
    }
    template <class V>
    V apply(V x) const {
        return x < V(0) ? static_cast<V>(alpha) * std::expm1(x) : x;
    }
};
// Selu: gamma * x for x > 0, gamma * (alpha * exp(x) - alpha) otherwise (defaults from the spec).
struct SeluOp : FloatUnaryBase {
    float alpha = 1.67326319217681884765625f;
    float gamma = 1.05070102214813232421875f;
    Status init(const Node& node) {
        LOWBIT_ASSIGN(alpha, ref::float_attr(node, "alpha", 1.67326319217681884765625f));
        LOWBIT_ASSIGN(gamma, ref::float_attr(node, "gamma", 1.05070102214813232421875f));
        return Status::ok();
    }
    template <class V>
    V apply(V x) const {
        const V a = static_cast<V>(alpha);
        const V g = static_cast<V>(gamma);
        return x > V(0) ? g * x : g * (a * std::exp(x) - a);
    }
};
struct NegOp : UnaryOpBase {
    using Types = ref::SignedDTypes;
    template <class V>
    V apply(V x) const {
        return neg_wrap(x);
    }
};
// Abs of the most negative integer wraps to itself (two's complement, as ONNX Runtime).
struct AbsOp : UnaryOpBase {
    using Types = ref::NumericDTypes;
    template <class V>
    V apply(V x) const {
        if constexpr (std::is_floating_point_v<V>) {
            return std::fabs(x);
        } else if constexpr (std::is_signed_v<V>) {
            return x < V(0) ? neg_wrap(x) : x;
        } else {
            return x;
        }
    }
};
// Sign: -1, 0 or 1; NaN stays NaN.
struct SignOp : UnaryOpBase {
    using Types = ref::NumericDTypes;
    template <class V>
    V apply(V x) const {
        if constexpr (std::is_unsigned_v<V>) {
            return x > V(0) ? V(1) : V(0);
        } else {
            if (is_nan(x)) return x;
            return static_cast<V>((V(0) < x) - (x < V(0)));
        }
    }
};
struct NotOp : UnaryOpBase {
    using Types = DTypeList<DType::Bool>;
    bool apply(bool x) const { return !x; }
};

template <class Op>
class UnaryKernel final : public Kernel {
public:
    Status prepare(PrepareContext& ctx) override {
        LOWBIT_TRY(ref::check_input_count(ctx, 1, 1));
        const DType t = ctx.inputs[0].dtype;
        if (!Op::Types::contains(t)) return ref::dtype_error(ctx.node, 0, t, Op::Types::names());
        LOWBIT_TRY(op_.init(ctx.node));
        ctx.outputs[0].dtype = t;
        ctx.outputs[0].shape = ctx.inputs[0].shape;
        return Status::ok();
    }

    Status run(RunContext& ctx) override {
        const Tensor& x = ctx.inputs[0];
        Tensor& y = ctx.outputs[0];
        const bool known = Op::Types::visit(x.dtype(), [&](auto tag) {
            using S = typename decltype(tag)::Storage;
            using Tr = typename decltype(tag)::Traits;
            const S* px = x.data<S>();
            S* py = y.data<S>();
            ctx.pool.parallel_for(x.numel(), kGrain, [&](int64_t begin, int64_t end) {
                for (int64_t i = begin; i < end; ++i) py[i] = Tr::store(op_.apply(Tr::load(px[i])));
            });
        });
        if (!known) return unexpected_dtype(ctx.node, x.dtype());
        return Status::ok();
    }

private:
    Op op_;
};

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

void register_elementwise_kernels(KernelRegistry& r) {
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
    register_kernel<UnaryKernel<NotOp>>(r, "Not");
    register_kernel<VariadicKernel<SumOp>>(r, "Sum");
    register_kernel<VariadicKernel<MeanOp>>(r, "Mean");
    register_kernel<VariadicKernel<MaxOp>>(r, "Max");
    register_kernel<VariadicKernel<MinOp>>(r, "Min");
    register_kernel<UnaryKernel<SigmoidOp>>(r, "Sigmoid");
    register_kernel<UnaryKernel<ReluOp>>(r, "Relu");
    register_kernel<UnaryKernel<LeakyReluOp>>(r, "LeakyRelu");
    register_kernel<UnaryKernel<HardSigmoidOp>>(r, "HardSigmoid");
    register_kernel<UnaryKernel<HardSwishOp>>(r, "HardSwish");
    register_kernel<UnaryKernel<SqrtOp>>(r, "Sqrt");
    register_kernel<UnaryKernel<ExpOp>>(r, "Exp");
    register_kernel<UnaryKernel<LogOp>>(r, "Log");
    register_kernel<UnaryKernel<NegOp>>(r, "Neg");
    register_kernel<UnaryKernel<AbsOp>>(r, "Abs");
    register_kernel<UnaryKernel<TanhOp>>(r, "Tanh");
    register_kernel<UnaryKernel<ErfOp>>(r, "Erf");
    register_kernel<UnaryKernel<FloorOp>>(r, "Floor");
    register_kernel<UnaryKernel<CeilOp>>(r, "Ceil");
    register_kernel<UnaryKernel<RoundOp>>(r, "Round");
    register_kernel<UnaryKernel<ReciprocalOp>>(r, "Reciprocal");
    register_kernel<UnaryKernel<SignOp>>(r, "Sign");
    register_kernel<UnaryKernel<SoftplusOp>>(r, "Softplus");
    register_kernel<UnaryKernel<EluOp>>(r, "Elu");
    register_kernel<UnaryKernel<SeluOp>>(r, "Selu");
    register_kernel<WhereKernel>(r, "Where");
    register_kernel<ClipKernel>(r, "Clip");
    register_kernel<PReluKernel>(r, "PRelu");
}

}  // namespace lowbit
