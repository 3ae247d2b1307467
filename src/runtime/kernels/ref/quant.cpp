// Reference kernels for QuantizeLinear, DequantizeLinear, Cast and CastLike (opsets 10-21
// semantics; blocked quantization in DequantizeLinear only).
//
// QuantizeLinear(x, y_scale[, y_zero_point]) -> y, x:[d0..dn], scale and zero point scalar
// (per tensor) or 1-D of length d_axis (per axis):
//   integer y: y = saturate(round_half_even(x / scale) + zero_point). x / scale is one float32
//              division (not a multiplication by 1/scale), like ONNX Runtime's MLAS kernel; NaN
//              gives the type's minimum, as that kernel does.
//   FP8 y:     y = float_to_fp8(x / scale, saturate) (Quantize-19); the zero point must be 0.
//              The loop runs float_to_fp8_fast, float_to_fp8's exact inline twin (core/half.h).
// DequantizeLinear(x, x_scale[, x_zero_point]) -> y = (x - zero_point) * scale, in float32,
// stored in scale's dtype (float32, float16 or bfloat16; Dequantize-19). Dequantize-21 adds
// int4 / uint4 x (held one value a byte, core/int4.h) and blocked quantization: with
// 'block_size' B > 0 the scale and zero point have x's shape except along `axis`, where they
// have S entries, and x's index j along the axis uses entry j / B (the spec's accepted range
// ceil(D / S) <= B <= ceil(D / (S - 1)) - 1 is checked).
// Cast(x) -> y of dtype 'to' (and CastLike(x, like) -> y of like's dtype): every numeric dtype,
// bool and the four FP8 types to and from each other (ref::convert_value has the rules;
// 'saturate' (Cast-19) applies to FP8 targets only).
#include <cmath>
#include <cstring>
#include <limits>

#include "core/half.h"
#include "core/thread_pool.h"
#include "runtime/kernels/ref/broadcast.h"
#include "runtime/kernels/ref/families.h"
#include "runtime/registry.h"

namespace lowbit {
namespace {

using ref::DTypeList;

constexpr int64_t kGrain = 1 << 14;

using QuantInputDTypes = DTypeList<DType::Float32, DType::Float16, DType::BFloat16, DType::Int32>;
using ScaleDTypes = DTypeList<DType::Float32, DType::Float16, DType::BFloat16>;
using IntQuantDTypes = DTypeList<DType::UInt8, DType::Int8, DType::UInt16, DType::Int16>;
using QuantDTypes = ref::DTypeConcat<IntQuantDTypes, ref::Fp8DTypes>::type;
using DequantInputDTypes =
    ref::DTypeConcat<QuantDTypes, DTypeList<DType::Int32, DType::Int4, DType::UInt4>>::type;

Status internal_dtype(const Node& node, DType t) {
    return Status(StatusCode::Internal, fmt::format("{}: run() got dtype {} that prepare() did "
                                                    "not accept",
                                                    node.describe(), dtype_name(t)));
}

// Where a (de)quantization parameter applies: per tensor, or per index along `axis`.
// x is viewed as [outer, channels, inner]; channel c uses scale[c] and zero_point[c].
// Blocked (block > 0): element (o, j, k) uses entry (o * blocks + j / block) * inner + k.
struct QuantLayout {
    bool per_axis = false;
    int64_t axis = 0;
    int64_t outer = 1;
    int64_t channels = 1;
    int64_t inner = 1;
    int64_t block = 0;
    int64_t blocks = 0;
};

// Blocked layout (Dequantize-21 'block_size' > 0): scale of x's rank, equal to x's shape but
// along `axis`, block_size within the spec's accepted range for that many scales.
Result<QuantLayout> blocked_layout(const PrepareContext& ctx, int64_t block_size,
                                   int64_t axis_attr) {
    const Node& node = ctx.node;
    const Shape& x = ctx.inputs[0].shape;
    const Shape& scale = ctx.inputs[1].shape;
    if (block_size < 0) {
        return invalid("{}: attribute 'block_size' = {} must be positive", node.describe(),
                       block_size);
    }
    if (ctx.opset < 21) {
        return invalid("{}: attribute 'block_size' needs opset >= 21 (model has {})",
                       node.describe(), ctx.opset);
    }
    QuantLayout l;
    LOWBIT_ASSIGN(l.axis, ref::normalize_axis(axis_attr, static_cast<int64_t>(x.size()), node,
                                              "attribute 'axis'"));
    bool same = scale.size() == x.size();
    for (size_t d = 0; same && d < x.size(); ++d) {
        same = static_cast<int64_t>(d) == l.axis || scale[d] == x[d];
    }
    if (!same) {
        return invalid(
            "{}: blocked scale of shape {} must equal x's shape {} except along axis {}",
            node.describe(), shape_str(scale), shape_str(x), l.axis);
    }
    const int64_t D = x[static_cast<size_t>(l.axis)];
    const int64_t S = scale[static_cast<size_t>(l.axis)];
    const int64_t lo = S > 0 ? (D + S - 1) / S : 0;
    const int64_t hi = S > 1 ? (D + S - 2) / (S - 1) - 1 : INT64_MAX;
    if (S <= 0 || block_size < lo || block_size > hi) {
        return invalid(
            "{}: block_size {} does not fit {} scales for {} elements along axis {} (accepted: "
            "{}..{})",
            node.describe(), block_size, S, D, l.axis, lo, hi == INT64_MAX ? D : hi);
    }
    l.block = block_size;
    l.blocks = S;
    l.channels = D;
    for (int64_t d = 0; d < l.axis; ++d) l.outer *= x[static_cast<size_t>(d)];
    for (size_t d = static_cast<size_t>(l.axis) + 1; d < x.size(); ++d) l.inner *= x[d];
    if (ctx.has_input(2) && ctx.inputs[2].shape != scale) {
        return invalid("{}: zero point shape {} does not match scale shape {}", node.describe(),
                       shape_str(ctx.inputs[2].shape), shape_str(scale));
    }
    return l;
}

// Validates scale/zero-point shapes against x (Quantize-13 / Dequantize-13 'axis'); blocked
// quantization (Quantize-21 'block_size', or a scale of rank > 1) only where `allow_blocked`.
Result<QuantLayout> quant_layout(const PrepareContext& ctx, bool allow_blocked = false) {
    const Node& node = ctx.node;
    const Shape& x = ctx.inputs[0].shape;
    const Shape& scale = ctx.inputs[1].shape;
    LOWBIT_ASSIGN(int64_t block_size, ref::int_attr(node, "block_size", 0));
    LOWBIT_ASSIGN(int64_t axis_attr, ref::int_attr(node, "axis", 1));
    if (block_size != 0 && allow_blocked) return blocked_layout(ctx, block_size, axis_attr);
    if (block_size != 0) {
        return unsupported(
            "{}: attribute 'block_size' = {}: blocked quantization is not "
            "supported (only per-tensor and per-axis)",
            node.describe(), block_size);
    }
    QuantLayout l;
    const int64_t n_scale = shape_numel(scale);
    if (scale.size() > 1) {
        return allow_blocked
                   ? invalid("{}: scale of shape {} (rank > 1) needs attribute 'block_size'",
                             node.describe(), shape_str(scale))
                   : unsupported(
                         "{}: scale of shape {} (rank > 1) means blocked quantization, which is "
                         "not supported",
                         node.describe(), shape_str(scale));
    }
    if (n_scale == 1) {
        l.outer = 1;
        l.channels = 1;
        l.inner = shape_numel(x);
    } else {
        if (ctx.opset < 13) {
            return invalid(
                "{}: scale of shape {} is per-axis, which needs opset >= 13 (model "
                "has {})",
                node.describe(), shape_str(scale), ctx.opset);
        }
        LOWBIT_ASSIGN(l.axis, ref::normalize_axis(axis_attr, static_cast<int64_t>(x.size()), node,
                                                  "attribute 'axis'"));
        if (scale[0] != x[l.axis]) {
            return invalid("{}: per-axis scale has {} elements but x {} has {} along axis {}",
                           node.describe(), scale[0], shape_str(x), x[l.axis], l.axis);
        }
        l.per_axis = true;
        l.channels = x[l.axis];
        l.outer = 1;
        for (int64_t d = 0; d < l.axis; ++d) l.outer *= x[d];
        l.inner = 1;
        for (size_t d = static_cast<size_t>(l.axis) + 1; d < x.size(); ++d) l.inner *= x[d];
    }
    if (ctx.has_input(2)) {
        const Shape& zp = ctx.inputs[2].shape;
        if (shape_numel(zp) != n_scale || zp.size() > 1) {
            return invalid("{}: zero point shape {} does not match scale shape {}", node.describe(),
                           shape_str(zp), shape_str(scale));
        }
    }
    return l;
}

// FP8 zero points must be 0: ONNX keeps them only to carry the type and ONNX Runtime ignores
// their value, so a non-zero one would make the two disagree. int32 DequantizeLinear has no
// zero point in the spec (it "is supposed to be 0").
Status check_zero_point_is_zero(const Tensor& zp, const Node& node) {
    for (int64_t i = 0; i < zp.numel(); ++i) {
        if (tensor_get_f64(zp, i) != 0.0) {
            return unsupported("{}: {} zero point element {} is {}; only 0 is supported for {}",
                               node.describe(), dtype_name(zp.dtype()), i, tensor_get_f64(zp, i),
                               dtype_name(zp.dtype()));
        }
    }
    return Status::ok();
}

// Scale and zero point of each channel, as float32 (every supported zero point is exact there).
// Blocked: every entry of the scale, in its own order.
void read_params(const Tensor& scale, const Tensor* zp, const QuantLayout& l, std::vector<float>& s,
                 std::vector<float>& z) {
    const int64_t n = l.block > 0 ? scale.numel() : l.channels;
    s.resize(static_cast<size_t>(n));
    z.assign(static_cast<size_t>(n), 0.0f);
    for (int64_t c = 0; c < n; ++c) {
        s[c] = static_cast<float>(tensor_get_f64(scale, c));
        if (zp != nullptr) z[c] = static_cast<float>(tensor_get_f64(*zp, c));
    }
}

// Calls fn(channel, begin, end) in parallel over element ranges [begin, end) of x that lie in
// one channel (x viewed as [outer, channels, inner]), so per-tensor and per-axis tensors split
// across threads alike.
template <class F>
void for_channel_spans(const QuantLayout& l, const ThreadPool& pool, const F& fn) {
    const int64_t inner = std::max<int64_t>(l.inner, 1);
    pool.parallel_for(l.outer * l.channels * l.inner, kGrain, [&](int64_t begin, int64_t end) {
        while (begin < end) {
            const int64_t row = begin / inner;
            const int64_t stop = std::min(end, (row + 1) * inner);
            fn(static_cast<size_t>(row % l.channels), begin, stop);
            begin = stop;
        }
    });
}

// ---------------------------------------------------------------------------------------------

class QuantizeLinearKernel final : public Kernel {
public:
    Status prepare(PrepareContext& ctx) override {
        LOWBIT_TRY(ref::check_input_count(ctx, 2, 3));
        const Node& node = ctx.node;
        const DType xt = ctx.inputs[0].dtype;
        const DType st = ctx.inputs[1].dtype;
        if (!QuantInputDTypes::contains(xt)) {
            return ref::dtype_error(node, 0, xt, QuantInputDTypes::names());
        }
        if (!ScaleDTypes::contains(st)) return ref::dtype_error(node, 1, st, ScaleDTypes::names());
        LOWBIT_ASSIGN(int64_t saturate, ref::int_attr(node, "saturate", 1));
        saturate_ = saturate != 0;
        LOWBIT_ASSIGN(int64_t precision, ref::int_attr(node, "precision", 0));
        if (precision != 0 && precision != static_cast<int64_t>(DType::Float32)) {
            return unsupported(
                "{}: attribute 'precision' = {}: only float32 division is "
                "supported",
                node.describe(), precision);
        }
        LOWBIT_ASSIGN(int64_t output_dtype, ref::int_attr(node, "output_dtype", 0));
        // Quantize-10..19: y has the zero point's dtype, uint8 without one; Quantize-21 adds
        // 'output_dtype', which must agree with the zero point when both are given.
        DType yt = DType::UInt8;
        if (output_dtype != 0) {
            if (!dtype_known(static_cast<int32_t>(output_dtype))) {
                return invalid("{}: attribute 'output_dtype' = {} is not a known dtype",
                               node.describe(), output_dtype);
            }
            yt = static_cast<DType>(output_dtype);
        }
        if (ctx.has_input(2)) {
            const DType zt = ctx.inputs[2].dtype;
            if (output_dtype != 0 && zt != yt) {
                return invalid(
                    "{}: zero point dtype {} differs from attribute 'output_dtype' "
                    "({})",
                    node.describe(), dtype_name(zt), dtype_name(yt));
            }
            yt = zt;
        }
        if (!QuantDTypes::contains(yt)) {
            return unsupported("{}: output dtype {} is not supported; supported: {}",
                               node.describe(), dtype_name(yt), QuantDTypes::names());
        }
        LOWBIT_ASSIGN(layout_, quant_layout(ctx));
        if (ref::Fp8DTypes::contains(yt) && ctx.has_input(2) && ctx.inputs[2].value) {
            LOWBIT_TRY(check_zero_point_is_zero(*ctx.inputs[2].value, node));
        }
        ctx.outputs[0].dtype = yt;
        ctx.outputs[0].shape = ctx.inputs[0].shape;
        return Status::ok();
    }

    Status run(RunContext& ctx) override {
        const Tensor& x = ctx.inputs[0];
        const Tensor* zp =
            ctx.inputs.size() > 2 && !ctx.inputs[2].empty() ? &ctx.inputs[2] : nullptr;
        Tensor& y = ctx.outputs[0];
        if (zp != nullptr && ref::Fp8DTypes::contains(y.dtype())) {
            LOWBIT_TRY(check_zero_point_is_zero(*zp, ctx.node));
        }
        std::vector<float> scale, zero;
        read_params(ctx.inputs[1], zp, layout_, scale, zero);
        const QuantLayout& l = layout_;
        bool known_y = false;
        const bool known_x = QuantInputDTypes::visit(x.dtype(), [&](auto xtag) {
            using XS = typename decltype(xtag)::Storage;
            using XTr = typename decltype(xtag)::Traits;
            known_y = QuantDTypes::visit(y.dtype(), [&](auto ytag) {
                using YS = typename decltype(ytag)::Storage;
                constexpr DType kY = decltype(ytag)::value;
                const XS* px = x.data<XS>();
                YS* py = y.data<YS>();
                const bool saturate = saturate_;
                for_channel_spans(l, ctx.pool, [&](size_t c, int64_t begin, int64_t end) {
                    quantize_span<XTr, kY>(px + begin, py + begin, end - begin, scale[c], zero[c],
                                           saturate);
                });
            });
        });
        if (!known_x) return internal_dtype(ctx.node, x.dtype());
        if (!known_y) return internal_dtype(ctx.node, y.dtype());
        return Status::ok();
    }

private:
    // y[i] = quantize(x[i] / s). Integer targets: round half to even (nearbyint in the default
    // rounding mode; std::round would round half away from zero), add the zero point, saturate.
    // FP8 targets: float_to_fp8 (its inline twin). Written as one flat loop over restrict
    // pointers with no call and no member access so that it vectorizes.
    template <class XTr, DType Y>
    static void quantize_span(const typename XTr::Storage* __restrict px,
                              typename ref::DTypeTraits<Y>::Storage* __restrict py, int64_t n,
                              float s, float z, bool saturate) {
        using S = typename ref::DTypeTraits<Y>::Storage;
        if constexpr (ref::Fp8DTypes::contains(Y)) {
            if (saturate) {
                for (int64_t i = 0; i < n; ++i) {
                    py[i] = float_to_fp8_fast<Y>(static_cast<float>(XTr::load(px[i])) / s, true);
                }
            } else {
                for (int64_t i = 0; i < n; ++i) {
                    py[i] = float_to_fp8_fast<Y>(static_cast<float>(XTr::load(px[i])) / s, false);
                }
            }
        } else {
            constexpr float lo = static_cast<float>(std::numeric_limits<S>::min());
            constexpr float hi = static_cast<float>(std::numeric_limits<S>::max());
            for (int64_t i = 0; i < n; ++i) {
                const float v = static_cast<float>(XTr::load(px[i])) / s;
                float q = std::nearbyint(v) + z;
                q = q < lo ? lo : (q > hi ? hi : q);
                q = v != v ? lo : q;  // NaN gives the minimum, like ORT's MLAS kernel
                py[i] = static_cast<S>(q);
            }
        }
    }

    QuantLayout layout_;
    bool saturate_ = true;
};

// ---------------------------------------------------------------------------------------------

class DequantizeLinearKernel final : public Kernel {
public:
    Status prepare(PrepareContext& ctx) override {
        LOWBIT_TRY(ref::check_input_count(ctx, 2, 3));
        const Node& node = ctx.node;
        const DType xt = ctx.inputs[0].dtype;
        const DType st = ctx.inputs[1].dtype;
        if (!DequantInputDTypes::contains(xt)) {
            return ref::dtype_error(node, 0, xt, DequantInputDTypes::names());
        }
        if (!ScaleDTypes::contains(st)) return ref::dtype_error(node, 1, st, ScaleDTypes::names());
        if (ctx.has_input(2) && ctx.inputs[2].dtype != xt) {
            return invalid("{}: zero point dtype {} differs from x dtype {}", node.describe(),
                           dtype_name(ctx.inputs[2].dtype), dtype_name(xt));
        }
        LOWBIT_ASSIGN(int64_t output_dtype, ref::int_attr(node, "output_dtype", 0));
        if (output_dtype != 0 && output_dtype != static_cast<int64_t>(st)) {
            return unsupported(
                "{}: attribute 'output_dtype' = {} differs from the scale dtype "
                "{}; only the scale's dtype is supported",
                node.describe(), output_dtype, dtype_name(st));
        }
        if ((xt == DType::Int4 || xt == DType::UInt4) && ctx.opset < 21) {
            return invalid("{}: {} x needs opset >= 21 (model has {})", node.describe(),
                           dtype_name(xt), ctx.opset);
        }
        LOWBIT_ASSIGN(layout_, quant_layout(ctx, true));
        const bool zp_must_be_zero = xt == DType::Int32 || ref::Fp8DTypes::contains(xt);
        if (zp_must_be_zero && ctx.has_input(2) && ctx.inputs[2].value) {
            LOWBIT_TRY(check_zero_point_is_zero(*ctx.inputs[2].value, node));
        }
        ctx.outputs[0].dtype = st;
        ctx.outputs[0].shape = ctx.inputs[0].shape;
        return Status::ok();
    }

    Status run(RunContext& ctx) override {
        const Tensor& x = ctx.inputs[0];
        const Tensor* zp =
            ctx.inputs.size() > 2 && !ctx.inputs[2].empty() ? &ctx.inputs[2] : nullptr;
        Tensor& y = ctx.outputs[0];
        if (zp != nullptr && (x.dtype() == DType::Int32 || ref::Fp8DTypes::contains(x.dtype()))) {
            LOWBIT_TRY(check_zero_point_is_zero(*zp, ctx.node));
        }
        std::vector<float> scale, zero;
        read_params(ctx.inputs[1], zp, layout_, scale, zero);
        const QuantLayout& l = layout_;
        bool known_y = false;
        const bool known_x = DequantInputDTypes::visit(x.dtype(), [&](auto xtag) {
            using XS = typename decltype(xtag)::Storage;
            using XTr = typename decltype(xtag)::Traits;
            known_y = ScaleDTypes::visit(y.dtype(), [&](auto ytag) {
                using YS = typename decltype(ytag)::Storage;
                using YTr = typename decltype(ytag)::Traits;
                const XS* px = x.data<XS>();
                YS* py = y.data<YS>();
                if (l.block > 0) {
                    // Blocked: row r = (o, j) of x viewed as [outer * channels, inner] reads
                    // the scale row (o * blocks + j / block).
                    ctx.pool.parallel_for(
                        l.outer * l.channels, std::max<int64_t>(1, kGrain / std::max<int64_t>(l.inner, 1)),
                        [&](int64_t r0, int64_t r1) {
                            for (int64_t r = r0; r < r1; ++r) {
                                const int64_t o = r / l.channels, j = r % l.channels;
                                const size_t sb =
                                    static_cast<size_t>((o * l.blocks + j / l.block) * l.inner);
                                const XS* xr = px + r * l.inner;
                                YS* yr = py + r * l.inner;
                                for (int64_t k = 0; k < l.inner; ++k) {
                                    const float d = static_cast<float>(XTr::load(xr[k])) -
                                                    zero[sb + static_cast<size_t>(k)];
                                    yr[k] = YTr::store(d * scale[sb + static_cast<size_t>(k)]);
                                }
                            }
                        });
                    return;
                }
                for_channel_spans(l, ctx.pool, [&](size_t c, int64_t begin, int64_t end) {
                    const float s = scale[c];
                    if constexpr (std::is_integral_v<typename decltype(xtag)::Value>) {
                        // (x - zero_point) is exact in integers; one rounding to float.
                        const int64_t z = static_cast<int64_t>(zero[c]);
                        for (int64_t i = begin; i < end; ++i) {
                            const int64_t d = static_cast<int64_t>(XTr::load(px[i])) - z;
                            py[i] = YTr::store(static_cast<float>(d) * s);
                        }
                    } else {
                        for (int64_t i = begin; i < end; ++i) {
                            py[i] = YTr::store(XTr::load(px[i]) * s);
                        }
                    }
                });
            });
        });
        if (!known_x) return internal_dtype(ctx.node, x.dtype());
        if (!known_y) return internal_dtype(ctx.node, y.dtype());
        return Status::ok();
    }

private:
    QuantLayout layout_;
};

// ---------------------------------------------------------------------------------------------

Status cast_tensor(const Tensor& x, Tensor& y, bool saturate, const ThreadPool& pool,
                   const Node& node) {
    if (x.dtype() == y.dtype()) {  // bit-exact copy (keeps NaN payloads and FP8 codes)
        if (x.nbytes() > 0) std::memcpy(y.raw(), x.raw(), x.nbytes());
        return Status::ok();
    }
    bool known_y = false;
    const bool known_x = ref::AllDTypes::visit(x.dtype(), [&](auto xtag) {
        using XS = typename decltype(xtag)::Storage;
        using XTr = typename decltype(xtag)::Traits;
        known_y = ref::AllDTypes::visit(y.dtype(), [&](auto ytag) {
            using YS = typename decltype(ytag)::Storage;
            constexpr DType kY = decltype(ytag)::value;
            const XS* px = x.data<XS>();
            YS* py = y.data<YS>();
            pool.parallel_for(x.numel(), kGrain, [&](int64_t begin, int64_t end) {
                for (int64_t i = begin; i < end; ++i) {
                    py[i] = ref::convert_value<kY>(XTr::load(px[i]), saturate);
                }
            });
        });
    });
    if (!known_x) return internal_dtype(node, x.dtype());
    if (!known_y) return internal_dtype(node, y.dtype());
    return Status::ok();
}

// Cast-13 'to'; Cast-19 'saturate' (default 1, FP8 targets only).
class CastKernel final : public Kernel {
public:
    explicit CastKernel(bool like = false) : like_(like) {}

    Status prepare(PrepareContext& ctx) override {
        const Node& node = ctx.node;
        LOWBIT_TRY(ref::check_input_count(ctx, like_ ? 2 : 1, like_ ? 2 : 1));
        const DType xt = ctx.inputs[0].dtype;
        if (!ref::AllDTypes::contains(xt)) {
            return ref::dtype_error(node, 0, xt, ref::AllDTypes::names());
        }
        DType yt;
        if (like_) {
            yt = ctx.inputs[1].dtype;
        } else {
            const Attr* to = node.attr("to");
            if (to == nullptr || to->kind != Attr::Kind::Int) {
                return invalid("{}: attribute 'to' (int) is required", node.describe());
            }
            if (!dtype_known(static_cast<int32_t>(to->i))) {
                return unsupported("{}: attribute 'to' = {} ({}) is not a supported dtype",
                                   node.describe(), to->i, dtype_name(static_cast<DType>(to->i)));
            }
            yt = static_cast<DType>(to->i);
        }
        if (!ref::AllDTypes::contains(yt)) {
            return unsupported("{}: cannot cast to {}; supported: {}", node.describe(),
                               dtype_name(yt), ref::AllDTypes::names());
        }
        LOWBIT_ASSIGN(int64_t saturate, ref::int_attr(node, "saturate", 1));
        saturate_ = saturate != 0;
        ctx.outputs[0].dtype = yt;
        ctx.outputs[0].shape = ctx.inputs[0].shape;
        return Status::ok();
    }

    Status run(RunContext& ctx) override {
        return cast_tensor(ctx.inputs[0], ctx.outputs[0], saturate_, ctx.pool, ctx.node);
    }

private:
    bool like_;
    bool saturate_ = true;
};

class CastLikeKernel final : public Kernel {
public:
    Status prepare(PrepareContext& ctx) override { return cast_.prepare(ctx); }
    Status run(RunContext& ctx) override { return cast_.run(ctx); }

private:
    CastKernel cast_{true};
};

}  // namespace

void register_quant_kernels(KernelRegistry& r) {
    register_kernel<QuantizeLinearKernel>(r, "QuantizeLinear");
    register_kernel<DequantizeLinearKernel>(r, "DequantizeLinear");
    register_kernel<CastKernel>(r, "Cast");
    register_kernel<CastLikeKernel>(r, "CastLike");
}

}  // namespace lowbit
