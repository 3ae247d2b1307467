// Reference kernels for the one-operand elementwise ONNX ops: math (Sqrt Exp Log Neg Abs Erf
// Sin Cos Floor Ceil Round Reciprocal Sign), activations (Sigmoid Relu LeakyRelu HardSigmoid HardSwish
// Tanh Softplus Elu Selu) and logic Not. Y = f(X), same dtype and shape.
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

using ref::clamp_nan;
using ref::DTypeList;
using ref::is_nan;
using ref::kGrain;
using ref::neg_wrap;
using ref::unexpected_dtype;

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
// Sin-7 / Cos-7 (RT-DETR's sine-cosine position embedding).
struct SinOp : FloatUnaryBase {
    template <class V>
    V apply(V x) const {
        return std::sin(x);
    }
};
struct CosOp : FloatUnaryBase {
    template <class V>
    V apply(V x) const {
        return std::cos(x);
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

}  // namespace

void register_elementwise_unary_kernels(KernelRegistry& r) {
    register_kernel<UnaryKernel<NotOp>>(r, "Not");
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
    register_kernel<UnaryKernel<SinOp>>(r, "Sin");
    register_kernel<UnaryKernel<CosOp>>(r, "Cos");
    register_kernel<UnaryKernel<FloorOp>>(r, "Floor");
    register_kernel<UnaryKernel<CeilOp>>(r, "Ceil");
    register_kernel<UnaryKernel<RoundOp>>(r, "Round");
    register_kernel<UnaryKernel<ReciprocalOp>>(r, "Reciprocal");
    register_kernel<UnaryKernel<SignOp>>(r, "Sign");
    register_kernel<UnaryKernel<SoftplusOp>>(r, "Softplus");
    register_kernel<UnaryKernel<EluOp>>(r, "Elu");
    register_kernel<UnaryKernel<SeluOp>>(r, "Selu");
}

}  // namespace lowbit
