// Reference nn kernels: Softmax, LogSoftmax, BatchNormalization (inference), InstanceNormalization,
// LayerNormalization, LRN, DepthToSpace, SpaceToDepth; and the registration of the nn family, whose
// other kernels live in conv.cpp (Conv, ConvTranspose), pool.cpp (MaxPool, AveragePool,
// Global*Pool), matmul.cpp (MatMul, Gemm) and resize.cpp (Resize, Upsample).
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "core/thread_pool.h"
#include "runtime/kernels/ref/families.h"
#include "runtime/kernels/ref/op_util.h"
#include "runtime/registry.h"

namespace lowbit {
namespace ref {
namespace {

// Softmax / LogSoftmax. Opset < 13: the input is coerced to 2-D [prod(d[:axis]),
// prod(d[axis:])] (axis default 1) and normalised over the second dim. Opset >= 13: normalised
// over the single dim `axis` (default -1). Float32; max-subtracted, sums in double.
template <bool kLog>
class SoftmaxKernel final : public Kernel {
public:
    Status prepare(PrepareContext& ctx) override {
        const Node& node = ctx.node;
        LOWBIT_TRY(check_known_attrs(node, {"axis"}));
        LOWBIT_TRY(check_input_count(ctx, 1, 1));
        const TensorInfo& x = ctx.inputs[0];
        LOWBIT_TRY(require_dtype(node, "input", x.dtype, {DType::Float32}));
        const auto rank = static_cast<int64_t>(x.shape.size());
        if (rank == 0) return invalid("{}: input must have rank >= 1", node.describe());
        const bool coerce_2d = ctx.opset < 13;
        LOWBIT_ASSIGN(int64_t axis_attr, int_attr(node, "axis", coerce_2d ? 1 : -1));
        LOWBIT_ASSIGN(int64_t axis, normalize_axis(axis_attr, rank, node, "axis"));
        const auto a = static_cast<size_t>(axis);
        outer_ = dims_product(x.shape, 0, a);
        if (coerce_2d) {
            dim_ = dims_product(x.shape, a, x.shape.size());
            inner_ = 1;
        } else {
            dim_ = x.shape[a];
            inner_ = dims_product(x.shape, a + 1, x.shape.size());
        }
        ctx.outputs[0].dtype = DType::Float32;
        ctx.outputs[0].shape = x.shape;
        return Status::ok();
    }

    Status run(RunContext& ctx) override {
        const float* x = ctx.inputs[0].data<float>();
        float* y = ctx.outputs[0].data<float>();
        // Work items: (outer index, chunk of `inner`), each normalising kChunk columns at once
        // so that the loops over the softmax dim read contiguous rows.
        const int64_t chunks = (inner_ + kChunk - 1) / kChunk;
        ctx.pool.parallel_for(outer_ * chunks, 1, [&](int64_t begin, int64_t end) {
            // Per-task scratch of a compile-time size (12 KiB): on the stack, no allocation.
            float mx[kChunk];
            double sum[kChunk];
            for (int64_t task = begin; task < end; ++task) {
                const int64_t o = task / chunks;
                const int64_t c0 = task % chunks * kChunk;
                const int64_t len = std::min(kChunk, inner_ - c0);
                const float* src = x + o * dim_ * inner_ + c0;
                float* dst = y + o * dim_ * inner_ + c0;
                std::fill_n(mx, len, -std::numeric_limits<float>::infinity());
                std::fill_n(sum, len, 0.0);
                for (int64_t j = 0; j < dim_; ++j) {
                    for (int64_t i = 0; i < len; ++i) mx[i] = std::max(mx[i], src[j * inner_ + i]);
                }
                for (int64_t j = 0; j < dim_; ++j) {
                    for (int64_t i = 0; i < len; ++i) {
                        const float e = std::exp(src[j * inner_ + i] - mx[i]);
                        sum[i] += e;
                        if constexpr (!kLog) dst[j * inner_ + i] = e;
                    }
                }
                for (int64_t j = 0; j < dim_; ++j) {
                    for (int64_t i = 0; i < len; ++i) {
                        if constexpr (kLog) {
                            dst[j * inner_ + i] =
                                static_cast<float>(src[j * inner_ + i] - mx[i] - std::log(sum[i]));
                        } else {
                            dst[j * inner_ + i] = static_cast<float>(dst[j * inner_ + i] / sum[i]);
                        }
                    }
                }
            }
        });
        return Status::ok();
    }

private:
    static constexpr int64_t kChunk = 1024;
    int64_t outer_ = 1, dim_ = 1, inner_ = 1;
};

// BatchNormalization, inference mode (opset 1-19): X [N, C, ...], scale, B, mean, var [C] ->
// Y = (X - mean) / sqrt(var + epsilon) * scale + B, computed as X * a + b with per-channel
// a = scale / sqrt(var + epsilon), b = B - mean * a (as ORT). Training mode is rejected.
class BatchNormKernel final : public Kernel {
public:
    Status prepare(PrepareContext& ctx) override {
        const Node& node = ctx.node;
        LOWBIT_TRY(check_known_attrs(
            node, {"epsilon", "momentum", "training_mode", "spatial", "is_test"}));
        LOWBIT_TRY(check_input_count(ctx, 5, 5));
        LOWBIT_ASSIGN(int64_t training, int_attr(node, "training_mode", 0));
        LOWBIT_ASSIGN(int64_t spatial, int_attr(node, "spatial", 1));
        LOWBIT_ASSIGN(int64_t is_test, int_attr(node, "is_test", 1));
        if (training != 0 || is_test == 0) {
            return unsupported(
                "{}: attribute 'training_mode' (training-mode batch statistics) "
                "is not supported",
                node.describe());
        }
        if (spatial != 1) {
            return unsupported("{}: attribute 'spatial' = {} is not supported", node.describe(),
                               spatial);
        }
        for (size_t i = 1; i < node.outputs.size(); ++i) {
            if (output_named(node, i)) {
                return unsupported(
                    "{}: output {} (training-mode running statistics) is not "
                    "supported",
                    node.describe(), i);
            }
        }
        LOWBIT_ASSIGN(epsilon_, float_attr(node, "epsilon", 1e-5f));
        const TensorInfo& x = ctx.inputs[0];
        LOWBIT_TRY(require_dtype(node, "X", x.dtype, {DType::Float32}));
        if (x.shape.size() < 2) {
            return invalid("{}: X {} must be [N, C, ...]", node.describe(), shape_str(x.shape));
        }
        static constexpr const char* kNames[] = {"X", "scale", "B", "input_mean", "input_var"};
        for (size_t i = 1; i < 5; ++i) {
            LOWBIT_TRY(require_dtype(node, kNames[i], ctx.inputs[i].dtype, {DType::Float32}));
            if (ctx.inputs[i].shape != Shape{x.shape[1]}) {
                return invalid("{}: input '{}' {} must be [{}]", node.describe(), kNames[i],
                               shape_str(ctx.inputs[i].shape), x.shape[1]);
            }
        }
        ctx.outputs[0].dtype = DType::Float32;
        ctx.outputs[0].shape = x.shape;
        for (size_t i = 1; i < ctx.outputs.size(); ++i) {
            ctx.outputs[i].dtype = DType::Float32;
            ctx.outputs[i].shape = {x.shape[1]};
        }
        return Status::ok();
    }

    Status run(RunContext& ctx) override {
        const Tensor& xt = ctx.inputs[0];
        const float* x = xt.data<float>();
        const float* scale = ctx.inputs[1].data<float>();
        const float* bias = ctx.inputs[2].data<float>();
        const float* mean = ctx.inputs[3].data<float>();
        const float* var = ctx.inputs[4].data<float>();
        float* y = ctx.outputs[0].data<float>();
        const int64_t c = xt.dim(1);
        const int64_t plane = dims_product(xt.shape(), 2, xt.rank());
        ctx.pool.parallel_for(xt.dim(0) * c, 1, [&](int64_t begin, int64_t end) {
            for (int64_t p = begin; p < end; ++p) {
                const int64_t ch = p % c;
                const float a = scale[ch] / std::sqrt(var[ch] + epsilon_);
                const float b = bias[ch] - mean[ch] * a;
                for (int64_t i = 0; i < plane; ++i) y[p * plane + i] = x[p * plane + i] * a + b;
            }
        });
        return Status::ok();
    }

private:
    float epsilon_ = 1e-5f;
};

// InstanceNormalization (opset 1-19): X [N, C, ...], scale, B [C] -> per (n, c) plane
// Y = scale * (X - mean) / sqrt(var + epsilon) + B, with the plane's mean and (biased) variance.
class InstanceNormKernel final : public Kernel {
public:
    Status prepare(PrepareContext& ctx) override {
        const Node& node = ctx.node;
        LOWBIT_TRY(check_known_attrs(node, {"epsilon"}));
        LOWBIT_TRY(check_input_count(ctx, 3, 3));
        LOWBIT_ASSIGN(epsilon_, float_attr(node, "epsilon", 1e-5f));
        const TensorInfo& x = ctx.inputs[0];
        LOWBIT_TRY(require_dtype(node, "input", x.dtype, {DType::Float32}));
        if (x.shape.size() < 3) {
            return invalid("{}: input {} must be [N, C, spatial...]", node.describe(),
                           shape_str(x.shape));
        }
        for (size_t i = 1; i < 3; ++i) {
            LOWBIT_TRY(
                require_dtype(node, i == 1 ? "scale" : "B", ctx.inputs[i].dtype, {DType::Float32}));
            if (ctx.inputs[i].shape != Shape{x.shape[1]}) {
                return invalid("{}: input {} {} must be [{}]", node.describe(), i,
                               shape_str(ctx.inputs[i].shape), x.shape[1]);
            }
        }
        ctx.outputs[0].dtype = DType::Float32;
        ctx.outputs[0].shape = x.shape;
        return Status::ok();
    }

    Status run(RunContext& ctx) override {
        const Tensor& xt = ctx.inputs[0];
        const float* x = xt.data<float>();
        const float* scale = ctx.inputs[1].data<float>();
        const float* bias = ctx.inputs[2].data<float>();
        float* y = ctx.outputs[0].data<float>();
        const int64_t c = xt.dim(1);
        const int64_t plane = dims_product(xt.shape(), 2, xt.rank());
        ctx.pool.parallel_for(xt.dim(0) * c, 1, [&](int64_t begin, int64_t end) {
            for (int64_t p = begin; p < end; ++p) {
                const float* src = x + p * plane;
                double mean = 0;
                for (int64_t i = 0; i < plane; ++i) mean += src[i];
                mean /= static_cast<double>(plane);
                double var = 0;
                for (int64_t i = 0; i < plane; ++i) var += (src[i] - mean) * (src[i] - mean);
                var /= static_cast<double>(plane);
                const double a = scale[p % c] / std::sqrt(var + epsilon_);
                for (int64_t i = 0; i < plane; ++i) {
                    y[p * plane + i] = static_cast<float>((src[i] - mean) * a + bias[p % c]);
                }
            }
        });
        return Status::ok();
    }

private:
    float epsilon_ = 1e-5f;
};

// LayerNormalization (opset 17+): X, Scale, optional B -> Y normalized over the axes [axis,
// rank): per row of those trailing axes Y = (X - mean) * inv_std * Scale + B, inv_std =
// 1 / sqrt(var + epsilon) with the row's biased variance; optional outputs Mean and InvStdDev
// [X.shape[:axis], 1, ...]. Scale and B broadcast to X.shape[axis:] (right-aligned, dims equal
// or 1). Statistics in double, whatever stash_type asks (at least float32's precision).
class LayerNormKernel final : public Kernel {
public:
    Status prepare(PrepareContext& ctx) override {
        const Node& node = ctx.node;
        LOWBIT_TRY(check_known_attrs(node, {"axis", "epsilon", "stash_type"}));
        LOWBIT_TRY(check_input_count(ctx, 2, 3));
        LOWBIT_ASSIGN(epsilon_, float_attr(node, "epsilon", 1e-5f));
        const TensorInfo& x = ctx.inputs[0];
        LOWBIT_TRY(require_dtype(node, "X", x.dtype, {DType::Float32}));
        const auto rank = static_cast<int64_t>(x.shape.size());
        if (rank == 0) return invalid("{}: X must have rank >= 1", node.describe());
        LOWBIT_ASSIGN(int64_t axis_attr, int_attr(node, "axis", -1));
        LOWBIT_ASSIGN(int64_t axis, normalize_axis(axis_attr, rank, node, "axis"));
        const auto a = static_cast<size_t>(axis);
        const Shape norm(x.shape.begin() + axis, x.shape.end());
        rows_ = dims_product(x.shape, 0, a);
        len_ = dims_product(x.shape, a, x.shape.size());
        // Where each element of a row reads Scale and B (broadcast to `norm`).
        for (size_t i = 1; i < 3; ++i) {
            std::vector<int64_t>& idx = i == 1 ? scale_idx_ : bias_idx_;
            idx.clear();
            if (!ctx.has_input(i)) continue;
            const TensorInfo& p = ctx.inputs[i];
            LOWBIT_TRY(require_dtype(node, i == 1 ? "Scale" : "B", p.dtype, {DType::Float32}));
            if (p.shape.size() > norm.size()) {
                return invalid("{}: input {} {} does not broadcast to {}", node.describe(), i,
                               shape_str(p.shape), shape_str(norm));
            }
            const size_t lead = norm.size() - p.shape.size();
            for (size_t d = 0; d < p.shape.size(); ++d) {
                if (p.shape[d] != norm[lead + d] && p.shape[d] != 1) {
                    return invalid("{}: input {} {} does not broadcast to {}", node.describe(), i,
                                   shape_str(p.shape), shape_str(norm));
                }
            }
            idx.resize(static_cast<size_t>(len_));
            for (int64_t j = 0; j < len_; ++j) {
                int64_t rest = j, off = 0, stride = 1;
                for (size_t d = norm.size(); d-- > lead;) {
                    const int64_t coord = rest % norm[d];
                    rest /= norm[d];
                    const int64_t pd = p.shape[d - lead];
                    if (pd != 1) off += coord * stride;
                    stride *= pd;
                }
                idx[static_cast<size_t>(j)] = off;
            }
        }
        ctx.outputs[0].dtype = DType::Float32;
        ctx.outputs[0].shape = x.shape;
        Shape stat = x.shape;
        for (size_t d = a; d < stat.size(); ++d) stat[d] = 1;
        for (size_t i = 1; i < ctx.outputs.size(); ++i) {
            ctx.outputs[i].dtype = DType::Float32;
            ctx.outputs[i].shape = stat;
        }
        return Status::ok();
    }

    Status run(RunContext& ctx) override {
        const float* x = ctx.inputs[0].data<float>();
        const float* scale = ctx.inputs[1].data<float>();
        const float* bias =
            ctx.inputs.size() > 2 && !ctx.inputs[2].empty() ? ctx.inputs[2].data<float>() : nullptr;
        float* y = ctx.outputs[0].data<float>();
        float* mean_out = ctx.outputs.size() > 1 && !ctx.outputs[1].empty()
                              ? ctx.outputs[1].data<float>()
                              : nullptr;
        float* inv_out = ctx.outputs.size() > 2 && !ctx.outputs[2].empty()
                             ? ctx.outputs[2].data<float>()
                             : nullptr;
        ctx.pool.parallel_for(rows_, 1, [&](int64_t begin, int64_t end) {
            for (int64_t r = begin; r < end; ++r) {
                const float* src = x + r * len_;
                double mean = 0;
                for (int64_t j = 0; j < len_; ++j) mean += src[j];
                mean /= static_cast<double>(len_);
                double var = 0;
                for (int64_t j = 0; j < len_; ++j) var += (src[j] - mean) * (src[j] - mean);
                var /= static_cast<double>(len_);
                const double inv = 1.0 / std::sqrt(var + epsilon_);
                for (int64_t j = 0; j < len_; ++j) {
                    const auto k = static_cast<size_t>(j);
                    double v = (src[j] - mean) * inv * scale[scale_idx_[k]];
                    if (bias) v += bias[bias_idx_[k]];
                    y[r * len_ + j] = static_cast<float>(v);
                }
                if (mean_out) mean_out[r] = static_cast<float>(mean);
                if (inv_out) inv_out[r] = static_cast<float>(inv);
            }
        });
        return Status::ok();
    }

private:
    float epsilon_ = 1e-5f;
    int64_t rows_ = 0, len_ = 0;
    std::vector<int64_t> scale_idx_, bias_idx_;  // per row element: its Scale / B element
};

// LRN (opset 1-19): X [N, C, ...] -> Y = X / (bias + alpha / size * sum of X^2 over channels
// [c - floor((size - 1) / 2), c + ceil((size - 1) / 2)])^beta.
class LrnKernel final : public Kernel {
public:
    Status prepare(PrepareContext& ctx) override {
        const Node& node = ctx.node;
        LOWBIT_TRY(check_known_attrs(node, {"alpha", "beta", "bias", "size"}));
        LOWBIT_TRY(check_input_count(ctx, 1, 1));
        LOWBIT_TRY(require_dtype(node, "X", ctx.inputs[0].dtype, {DType::Float32}));
        if (ctx.inputs[0].shape.size() < 2) {
            return invalid("{}: X {} must be [N, C, ...]", node.describe(),
                           shape_str(ctx.inputs[0].shape));
        }
        if (!node.has_attr("size")) {
            return invalid("{}: attribute 'size' is required", node.describe());
        }
        LOWBIT_ASSIGN(size_, int_attr(node, "size", 1));
        LOWBIT_ASSIGN(alpha_, float_attr(node, "alpha", 1e-4f));
        LOWBIT_ASSIGN(beta_, float_attr(node, "beta", 0.75f));
        LOWBIT_ASSIGN(bias_, float_attr(node, "bias", 1.0f));
        if (size_ < 1) return invalid("{}: size must be positive", node.describe());
        ctx.outputs[0].dtype = DType::Float32;
        ctx.outputs[0].shape = ctx.inputs[0].shape;
        return Status::ok();
    }

    Status run(RunContext& ctx) override {
        const Tensor& xt = ctx.inputs[0];
        const float* x = xt.data<float>();
        float* y = ctx.outputs[0].data<float>();
        const int64_t c = xt.dim(1);
        const int64_t plane = dims_product(xt.shape(), 2, xt.rank());
        const int64_t lo = (size_ - 1) / 2;
        const int64_t hi = size_ - 1 - lo;
        ctx.pool.parallel_for(xt.dim(0) * c, 1, [&](int64_t begin, int64_t end) {
            for (int64_t p = begin; p < end; ++p) {
                const int64_t ch = p % c;
                const int64_t base = p - ch;
                for (int64_t i = 0; i < plane; ++i) {
                    double sq = 0;
                    for (int64_t k = std::max<int64_t>(0, ch - lo); k <= std::min(c - 1, ch + hi);
                         ++k) {
                        const double v = x[(base + k) * plane + i];
                        sq += v * v;
                    }
                    const double d = std::pow(bias_ + alpha_ / static_cast<double>(size_) * sq,
                                              static_cast<double>(beta_));
                    y[p * plane + i] = static_cast<float>(x[p * plane + i] / d);
                }
            }
        });
        return Status::ok();
    }

private:
    int64_t size_ = 1;
    float alpha_ = 1e-4f, beta_ = 0.75f, bias_ = 1.0f;
};

// DepthToSpace (opset 1-19): X [N, C, H, W] -> [N, C / b^2, H * b, W * b] with blocksize b.
// DCR (default): X viewed as [N, b, b, C / b^2, H, W], transposed to [N, C/b^2, H, b, W, b].
// CRD (opset 11): X viewed as [N, C / b^2, b, b, H, W], same output order.
// SpaceToDepth (opset 1-19): X [N, C, H, W] -> [N, C * b^2, H / b, W / b], the inverse of DCR.
template <bool kToSpace>
class BlockRearrangeKernel final : public Kernel {
public:
    Status prepare(PrepareContext& ctx) override {
        const Node& node = ctx.node;
        LOWBIT_TRY(check_known_attrs(
            node, kToSpace ? std::initializer_list<std::string_view>{"blocksize", "mode"}
                           : std::initializer_list<std::string_view>{"blocksize"}));
        LOWBIT_TRY(check_input_count(ctx, 1, 1));
        const TensorInfo& x = ctx.inputs[0];
        LOWBIT_TRY(require_movable(node, "input", x.dtype));
        if (x.shape.size() != 4) {
            return invalid("{}: input {} must be [N, C, H, W]", node.describe(),
                           shape_str(x.shape));
        }
        if (!node.has_attr("blocksize")) {
            return invalid("{}: attribute 'blocksize' is required", node.describe());
        }
        LOWBIT_ASSIGN(int64_t b, int_attr(node, "blocksize", 1));
        LOWBIT_ASSIGN(std::string mode, string_attr(node, "mode", "DCR"));
        if (mode != "DCR" && mode != "CRD") {
            return unsupported("{}: attribute 'mode' value '{}' is not supported", node.describe(),
                               mode);
        }
        const int64_t n = x.shape[0], c = x.shape[1], h = x.shape[2], w = x.shape[3];
        if (b < 1) return invalid("{}: blocksize must be positive", node.describe());
        Shape out;
        if (kToSpace) {
            if (c % (b * b) != 0) {
                return invalid("{}: channels {} are not divisible by blocksize^2 = {}",
                               node.describe(), c, b * b);
            }
            const int64_t oc = c / (b * b);
            // Output as 6-D [N, C', H, b, W, b]; input strides per input 6-D view.
            if (mode == "DCR") {
                const std::vector<int64_t> s = contiguous_strides({n, b, b, oc, h, w});
                src_strides_ = {s[0], s[3], s[4], s[1], s[5], s[2]};
            } else {
                const std::vector<int64_t> s = contiguous_strides({n, oc, b, b, h, w});
                src_strides_ = {s[0], s[1], s[4], s[2], s[5], s[3]};
            }
            view_ = {n, oc, h, b, w, b};
            out = {n, oc, h * b, w * b};
        } else {
            if (h % b != 0 || w % b != 0) {
                return invalid("{}: spatial dims {}x{} are not divisible by blocksize {}",
                               node.describe(), h, w, b);
            }
            const int64_t oh = h / b, ow = w / b;
            // Output as 6-D [N, b, b, C, H', W'] from the input viewed as [N, C, H', b, W', b].
            const std::vector<int64_t> s = contiguous_strides({n, c, oh, b, ow, b});
            src_strides_ = {s[0], s[3], s[5], s[1], s[2], s[4]};
            view_ = {n, b, b, c, oh, ow};
            out = {n, c * b * b, oh, ow};
        }
        ctx.outputs[0].dtype = x.dtype;
        ctx.outputs[0].shape = std::move(out);
        return Status::ok();
    }

    Status run(RunContext& ctx) override {
        strided_copy(ctx.inputs[0].raw(), 0, src_strides_, ctx.outputs[0].raw(), view_,
                     dtype_size(ctx.inputs[0].dtype()));
        return Status::ok();
    }

private:
    std::vector<int64_t> src_strides_;
    Shape view_;
};

}  // namespace
}  // namespace ref

void register_nn_kernels(KernelRegistry& r) {
    using namespace ref;
    register_kernel<SoftmaxKernel<false>>(r, "Softmax");
    register_kernel<SoftmaxKernel<true>>(r, "LogSoftmax");
    register_kernel<BatchNormKernel>(r, "BatchNormalization");
    register_kernel<InstanceNormKernel>(r, "InstanceNormalization");
    register_kernel<LayerNormKernel>(r, "LayerNormalization");
    register_kernel<LrnKernel>(r, "LRN");
    register_kernel<BlockRearrangeKernel<true>>(r, "DepthToSpace");
    register_kernel<BlockRearrangeKernel<false>>(r, "SpaceToDepth");
    register_conv_kernels(r);
    register_pool_kernels(r);
    register_matmul_kernels(r);
    register_resize_kernels(r);
    register_grid_sample_kernels(r);
}

}  // namespace lowbit
