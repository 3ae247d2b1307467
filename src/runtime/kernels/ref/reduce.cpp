// Reference kernels for the reductions:
//   ReduceMax ReduceMin ReduceSum ReduceMean ReduceProd ReduceSumSquare
//   ReduceL1 ReduceL2 ReduceLogSum ReduceLogSumExp, ArgMax ArgMin.
//
// Reduce*(data[, axes]) -> reduced: data [d0..dn]; the reduced dims become 1 (keepdims=1) or
// are removed (keepdims=0). 'axes' is an attribute before the opset where it became an optional
// int64 input (13 for ReduceSum, 18 for the others); the input must be known at plan time since
// it sets the output shape. No axes reduces every dim, unless noop_with_empty_axes=1, which
// makes the op an identity. Sums accumulate in double (floats) or 64-bit integers; an empty
// reduction gives the spec's identity element (0 for sums, 1 for Prod, -inf / the lowest value
// for Max, +inf / the largest for Min; Mean of nothing is NaN, or 0 for integers).
// Max and Min propagate NaN, like NumPy and ONNX's reference implementation.
//
// ArgMax/ArgMin(data) -> int64 indices along 'axis' (keepdims, select_last_index). NaN counts as
// the extreme value (NumPy's argmax/argmin): the first NaN, or the last with
// select_last_index=1.
//
// The accumulators (Reduce*) and running bests (Arg*) are sized in prepare() (DTypeScratch), so
// run() allocates nothing.
#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>

#include "core/thread_pool.h"
#include "runtime/kernels/ref/broadcast.h"
#include "runtime/kernels/ref/op_util.h"
#include "runtime/kernels/ref/families.h"
#include "runtime/registry.h"

namespace lowbit {
namespace {

using ref::DTypeList;
using ref::is_nan;

Status internal_dtype(const Node& node, DType t) {
    return Status(StatusCode::Internal, fmt::format("{}: run() got dtype {} that prepare() did "
                                                    "not accept",
                                                    node.describe(), dtype_name(t)));
}

// Accumulator of additive reductions: double for floats, 64-bit (wrapping) for integers.
template <class V>
using SumAcc = std::conditional_t<std::is_floating_point_v<V>, double,
                                  std::conditional_t<std::is_signed_v<V>, int64_t, uint64_t>>;

struct ReduceSumOp {
    using Types = ref::NumericDTypes;
    template <class V>
    using Acc = SumAcc<V>;
    template <class A>
    static A init() {
        return A(0);
    }
    template <class A, class V>
    static A combine(A acc, V v) {
        return ref::add_wrap(acc, static_cast<A>(v));
    }
    template <class A>
    static A finish(A acc, int64_t) {
        return acc;
    }
};

struct ReduceMeanOp : ReduceSumOp {
    template <class A>
    static A finish(A acc, int64_t n) {
        if constexpr (std::is_floating_point_v<A>) {
            return acc / static_cast<A>(n);  // 0/0 = NaN for an empty reduction
        } else {
            return n == 0 ? A(0) : acc / static_cast<A>(n);  // truncates, like ONNX Runtime
        }
    }
};

struct ReduceProdOp : ReduceSumOp {
    template <class A>
    static A init() {
        return A(1);
    }
    template <class A, class V>
    static A combine(A acc, V v) {
        return ref::mul_wrap(acc, static_cast<A>(v));
    }
};

struct ReduceSumSquareOp : ReduceSumOp {
    template <class A, class V>
    static A combine(A acc, V v) {
        const A a = static_cast<A>(v);
        return ref::add_wrap(acc, ref::mul_wrap(a, a));
    }
};

struct ReduceL1Op : ReduceSumOp {
    using Types = ref::FloatDTypes;
    template <class A, class V>
    static A combine(A acc, V v) {
        return acc + std::fabs(static_cast<A>(v));
    }
};

struct ReduceL2Op : ReduceSumSquareOp {
    using Types = ref::FloatDTypes;
    template <class A>
    static A finish(A acc, int64_t) {
        return std::sqrt(acc);
    }
};

struct ReduceLogSumOp : ReduceSumOp {
    using Types = ref::FloatDTypes;
    template <class A>
    static A finish(A acc, int64_t) {
        return std::log(acc);
    }
};

// log(sum(exp(x))) in double: exp overflows double only for x > ~709, far past float inputs
// that matter; NaN/inf behave as in the naive formula.
struct ReduceLogSumExpOp : ReduceSumOp {
    using Types = ref::FloatDTypes;
    template <class A, class V>
    static A combine(A acc, V v) {
        return acc + std::exp(static_cast<A>(v));
    }
    template <class A>
    static A finish(A acc, int64_t) {
        return std::log(acc);
    }
};

struct ReduceMaxOp {
    using Types = ref::NumericDTypes;
    template <class V>
    using Acc = V;
    template <class A>
    static A init() {
        if constexpr (std::is_floating_point_v<A>) {
            return -std::numeric_limits<A>::infinity();
        } else {
            return std::numeric_limits<A>::lowest();
        }
    }
    template <class A, class V>
    static A combine(A acc, V v) {
        return (is_nan(v) || v > acc) ? v : acc;  // once acc is NaN it stays NaN
    }
    template <class A>
    static A finish(A acc, int64_t) {
        return acc;
    }
};

struct ReduceMinOp : ReduceMaxOp {
    template <class A>
    static A init() {
        if constexpr (std::is_floating_point_v<A>) {
            return std::numeric_limits<A>::infinity();
        } else {
            return std::numeric_limits<A>::max();
        }
    }
    template <class A, class V>
    static A combine(A acc, V v) {
        return (is_nan(v) || v < acc) ? v : acc;
    }
};

template <class Op>
class ReduceKernel final : public Kernel {
public:
    // The first opset in which 'axes' is an input rather than an attribute.
    explicit ReduceKernel(int64_t axes_input_since) : axes_input_since_(axes_input_since) {}

    Status prepare(PrepareContext& ctx) override {
        LOWBIT_TRY(ref::check_input_count(ctx, 1, 2));
        const Node& node = ctx.node;
        const DType t = ctx.inputs[0].dtype;
        const Shape& in = ctx.inputs[0].shape;
        if (!Op::Types::contains(t)) return ref::dtype_error(node, 0, t, Op::Types::names());
        LOWBIT_ASSIGN(int64_t keepdims, ref::int_attr(node, "keepdims", 1));
        LOWBIT_ASSIGN(int64_t noop, ref::int_attr(node, "noop_with_empty_axes", 0));

        std::vector<int64_t> axes;
        if (ctx.has_input(1)) {
            if (node.has_attr("axes")) {
                return invalid("{}: axes given both as attribute and as input", node.describe());
            }
            const TensorInfo& a = ctx.inputs[1];
            if (a.dtype != DType::Int64) return ref::dtype_error(node, 1, a.dtype, "int64 axes");
            if (!a.value) {
                return unsupported(
                    "{}: input 'axes' must be known at plan time (an initializer "
                    "or a foldable constant); it sets the output shape",
                    node.describe());
            }
            axes = tensor_to_i64(*a.value);
        } else if (node.has_attr("axes")) {
            if (ctx.opset >= axes_input_since_) {
                return invalid(
                    "{}: attribute 'axes' was replaced by an input in opset {} (model "
                    "has opset {})",
                    node.describe(), axes_input_since_, ctx.opset);
            }
            LOWBIT_ASSIGN(axes, ref::ints_attr(node, "axes"));
        }

        const int64_t rank = static_cast<int64_t>(in.size());
        reduced_.assign(in.size(), false);
        identity_ = axes.empty() && noop != 0;
        if (axes.empty() && !identity_) reduced_.assign(in.size(), true);
        for (int64_t a : axes) {
            LOWBIT_ASSIGN(int64_t ax, ref::normalize_axis(a, rank, node, "axis"));
            if (reduced_[ax]) {
                return invalid("{}: axis {} appears twice in 'axes'", node.describe(), a);
            }
            reduced_[ax] = true;
        }

        Shape out;
        for (size_t d = 0; d < in.size(); ++d) {
            if (!reduced_[d]) {
                out.push_back(in[d]);
            } else if (keepdims != 0) {
                out.push_back(1);
            }
        }
        ctx.outputs[0].dtype = t;
        ctx.outputs[0].shape = identity_ ? in : out;
        acc_.resize(identity_ ? 0 : shape_numel(out));
        return Status::ok();
    }

    // For every input element in order: acc[its output element] = combine(acc, x); then
    // y = finish(acc, elements per output).
    Status run(RunContext& ctx) override {
        const Tensor& x = ctx.inputs[0];
        Tensor& y = ctx.outputs[0];
        if (identity_) {
            if (x.nbytes() > 0) std::memcpy(y.raw(), x.raw(), x.nbytes());
            return Status::ok();
        }
        Shape kept = x.shape();
        int64_t n = 1;
        for (size_t d = 0; d < kept.size(); ++d) {
            if (reduced_[d]) {
                n *= kept[d];
                kept[d] = 1;
            }
        }
        const Shape operands[2] = {x.shape(), kept};
        const ref::BroadcastLoop loop(x.shape(), operands);
        const bool known = Op::Types::visit(x.dtype(), [&](auto tag) {
            using S = typename decltype(tag)::Storage;
            using Tr = typename decltype(tag)::Traits;
            using V = typename decltype(tag)::Value;
            using A = typename Op::template Acc<V>;
            A* acc = acc_.as<A>();
            std::fill_n(acc, y.numel(), Op::template init<A>());
            const S* px = x.data<S>();
            const int64_t step = loop.inner_stride(1);
            loop.for_each_run(0, loop.size(), [&](int64_t, const int64_t* off, int64_t len) {
                const S* xr = px + off[0];
                A* ar = acc + off[1];
                for (int64_t i = 0; i < len; ++i) {
                    ar[i * step] = Op::combine(ar[i * step], Tr::load(xr[i]));
                }
            });
            S* py = y.data<S>();
            for (int64_t j = 0; j < y.numel(); ++j) {
                py[j] = Tr::store(static_cast<V>(Op::finish(acc[j], n)));
            }
        });
        if (!known) return internal_dtype(ctx.node, x.dtype());
        return Status::ok();
    }

private:
    int64_t axes_input_since_;
    std::vector<bool> reduced_;
    bool identity_ = false;
    ref::DTypeScratch acc_;  // one accumulator per output element
};

template <class Op, int64_t kAxesInputSince>
class ReduceKernelAt final : public Kernel {
public:
    Status prepare(PrepareContext& ctx) override { return k_.prepare(ctx); }
    Status run(RunContext& ctx) override { return k_.run(ctx); }

private:
    ReduceKernel<Op> k_{kAxesInputSince};
};

// ---------------------------------------------------------------------------------------------
// ArgMax / ArgMin: data [d0..dn] -> int64 [d0..1..dn] (keepdims) or without d_axis.

template <bool kMax>
class ArgKernel final : public Kernel {
public:
    Status prepare(PrepareContext& ctx) override {
        LOWBIT_TRY(ref::check_input_count(ctx, 1, 1));
        const Node& node = ctx.node;
        const DType t = ctx.inputs[0].dtype;
        const Shape& in = ctx.inputs[0].shape;
        if (!ref::NumericDTypes::contains(t)) {
            return ref::dtype_error(node, 0, t, ref::NumericDTypes::names());
        }
        LOWBIT_ASSIGN(int64_t axis, ref::int_attr(node, "axis", 0));
        LOWBIT_ASSIGN(int64_t keepdims, ref::int_attr(node, "keepdims", 1));
        LOWBIT_ASSIGN(int64_t select_last, ref::int_attr(node, "select_last_index", 0));
        LOWBIT_ASSIGN(axis_, ref::normalize_axis(axis, static_cast<int64_t>(in.size()), node,
                                                 "attribute 'axis'"));
        if (in[axis_] == 0) {
            return invalid("{}: axis {} of input shape {} is empty; there is no index to return",
                           node.describe(), axis_, shape_str(in));
        }
        select_last_ = select_last != 0;
        Shape out;
        for (size_t d = 0; d < in.size(); ++d) {
            if (static_cast<int64_t>(d) != axis_) {
                out.push_back(in[d]);
            } else if (keepdims != 0) {
                out.push_back(1);
            }
        }
        ctx.outputs[0].dtype = DType::Int64;
        ctx.outputs[0].shape = std::move(out);
        best_.resize(ref::dims_product(in, static_cast<size_t>(axis_) + 1, in.size()));
        return Status::ok();
    }

    Status run(RunContext& ctx) override {
        const Tensor& x = ctx.inputs[0];
        int64_t* py = ctx.outputs[0].data<int64_t>();
        const Shape& s = x.shape();
        int64_t outer = 1, inner = 1;
        for (int64_t d = 0; d < axis_; ++d) outer *= s[d];
        for (size_t d = static_cast<size_t>(axis_) + 1; d < s.size(); ++d) inner *= s[d];
        const int64_t n = s[axis_];
        const bool known = ref::NumericDTypes::visit(x.dtype(), [&](auto tag) {
            using S = typename decltype(tag)::Storage;
            using Tr = typename decltype(tag)::Traits;
            using V = typename decltype(tag)::Value;
            const S* px = x.data<S>();
            V* best = best_.as<V>();
            // Walk [outer, n, inner] with the inner dim contiguous, keeping a running best
            // per inner position.
            for (int64_t o = 0; o < outer; ++o) {
                const S* xo = px + o * n * inner;
                int64_t* yo = py + o * inner;
                for (int64_t i = 0; i < inner; ++i) {
                    best[i] = Tr::load(xo[i]);
                    yo[i] = 0;
                }
                for (int64_t k = 1; k < n; ++k) {
                    for (int64_t i = 0; i < inner; ++i) {
                        const V v = Tr::load(xo[k * inner + i]);
                        if (better(v, best[i])) {
                            best[i] = v;
                            yo[i] = k;
                        }
                    }
                }
            }
        });
        if (!known) return internal_dtype(ctx.node, x.dtype());
        return Status::ok();
    }

private:
    template <class V>
    bool better(V v, V best) const {
        if (is_nan(best)) return select_last_ && is_nan(v);
        if (is_nan(v)) return true;
        if (v == best) return select_last_;
        return kMax ? v > best : v < best;
    }

    int64_t axis_ = 0;
    bool select_last_ = false;
    ref::DTypeScratch best_;  // the running best per position after the axis
};

}  // namespace

void register_reduce_kernels(KernelRegistry& r) {
    register_kernel<ReduceKernelAt<ReduceSumOp, 13>>(r, "ReduceSum");
    register_kernel<ReduceKernelAt<ReduceMeanOp, 18>>(r, "ReduceMean");
    register_kernel<ReduceKernelAt<ReduceMaxOp, 18>>(r, "ReduceMax");
    register_kernel<ReduceKernelAt<ReduceMinOp, 18>>(r, "ReduceMin");
    register_kernel<ReduceKernelAt<ReduceProdOp, 18>>(r, "ReduceProd");
    register_kernel<ReduceKernelAt<ReduceSumSquareOp, 18>>(r, "ReduceSumSquare");
    register_kernel<ReduceKernelAt<ReduceL1Op, 18>>(r, "ReduceL1");
    register_kernel<ReduceKernelAt<ReduceL2Op, 18>>(r, "ReduceL2");
    register_kernel<ReduceKernelAt<ReduceLogSumOp, 18>>(r, "ReduceLogSum");
    register_kernel<ReduceKernelAt<ReduceLogSumExpOp, 18>>(r, "ReduceLogSumExp");
    register_kernel<ArgKernel<true>>(r, "ArgMax");
    register_kernel<ArgKernel<false>>(r, "ArgMin");
}

}  // namespace lowbit
