// Reference pooling kernels: MaxPool, AveragePool (1-D to 3-D windows), GlobalAveragePool,
// GlobalMaxPool. Windows are walked directly; pooling is a small share of a CNN's time.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "core/thread_pool.h"
#include "runtime/kernels/ref/op_util.h"
#include "runtime/registry.h"

namespace lowbit::ref {
namespace {

// Window geometry normalised to three spatial axes (d, h, w); unused leading axes are size-1
// axes with a size-1 kernel.
struct PoolGeometry {
    int64_t planes = 0;  // N * C
    WindowAxis ax[3];
    int64_t in_plane() const { return ax[0].in * ax[1].in * ax[2].in; }
    int64_t out_plane() const { return ax[0].out * ax[1].out * ax[2].out; }
};

// Reads kernel_shape/pads/strides/dilations/auto_pad/ceil_mode for X [N, C, spatial...] with
// 1 to 3 spatial dims and sets the output shape.
Result<PoolGeometry> pool_geometry(PrepareContext& ctx, bool allow_dilations) {
    const Node& node = ctx.node;
    const Shape& x = ctx.inputs[0].shape;
    LOWBIT_TRY(require_rank(node, "X", x, 3, 5));
    if (!node.has_attr("kernel_shape")) {
        return invalid("{}: attribute 'kernel_shape' is required", node.describe());
    }
    LOWBIT_ASSIGN(std::vector<int64_t> kernel, ints_attr(node, "kernel_shape"));
    if (kernel.size() != x.size() - 2) {
        return invalid("{}: kernel_shape {} does not match the input {}", node.describe(),
                       shape_str(kernel), shape_str(x));
    }
    LOWBIT_ASSIGN(int64_t ceil_mode, int_attr(node, "ceil_mode", 0));
    LOWBIT_ASSIGN(std::vector<WindowAxis> axes,
                  window_axes(node, x, kernel, ceil_mode != 0, allow_dilations));
    PoolGeometry g;
    g.planes = x[0] * x[1];
    const size_t skip = 3 - axes.size();
    for (size_t i = 0; i < axes.size(); ++i) g.ax[skip + i] = axes[i];
    Shape out = {x[0], x[1]};
    for (const WindowAxis& a : axes) out.push_back(a.out);
    ctx.outputs[0].dtype = ctx.inputs[0].dtype;
    ctx.outputs[0].shape = std::move(out);
    return g;
}

// First input coordinate of output position o on axis a.
inline int64_t window_start(const WindowAxis& a, int64_t o) {
    return o * a.stride - a.pad_begin;
}

// MaxPool (opset 1-19): X [N, C, spatial...] (float32, float64, int8, uint8) -> Y [N, C, out...],
// Indices? (int64, flat index into X ignoring padding; storage_order 1 = column-major within
// each spatial plane). Padded positions never win; ties keep the first position.
class MaxPoolKernel final : public Kernel {
public:
    Status prepare(PrepareContext& ctx) override {
        const Node& node = ctx.node;
        LOWBIT_TRY(check_known_attrs(node, {"auto_pad", "ceil_mode", "dilations", "kernel_shape",
                                            "pads", "storage_order", "strides"}));
        LOWBIT_TRY(check_input_count(ctx, 1, 1));
        LOWBIT_TRY(require_dtype(node, "X", ctx.inputs[0].dtype,
                                 {DType::Float32, DType::Float64, DType::Int8, DType::UInt8}));
        LOWBIT_ASSIGN(storage_order_, int_attr(node, "storage_order", 0));
        if (storage_order_ != 0 && storage_order_ != 1) {
            return invalid("{}: attribute 'storage_order' must be 0 or 1, got {}", node.describe(),
                           storage_order_);
        }
        LOWBIT_ASSIGN(g_, pool_geometry(ctx, true));
        if (ctx.outputs.size() > 1) {
            ctx.outputs[1].dtype = DType::Int64;
            ctx.outputs[1].shape = ctx.outputs[0].shape;
        }
        return Status::ok();
    }

    Status run(RunContext& ctx) override {
        switch (ctx.inputs[0].dtype()) {
            case DType::Float32: return run_typed<float>(ctx);
            case DType::Float64: return run_typed<double>(ctx);
            case DType::Int8: return run_typed<int8_t>(ctx);
            default: return run_typed<uint8_t>(ctx);
        }
    }

private:
    template <typename T>
    Status run_typed(RunContext& ctx) {
        const T* x = ctx.inputs[0].data<T>();
        T* y = ctx.outputs[0].data<T>();
        int64_t* ind = ctx.outputs.size() > 1 && !ctx.outputs[1].empty()
                           ? ctx.outputs[1].data<int64_t>()
                           : nullptr;
        const WindowAxis& ad = g_.ax[0];
        const WindowAxis& ah = g_.ax[1];
        const WindowAxis& aw = g_.ax[2];
        const int64_t in_plane = g_.in_plane();
        const int64_t out_plane = g_.out_plane();
        ctx.pool.parallel_for(g_.planes, 1, [&](int64_t begin, int64_t end) {
            for (int64_t p = begin; p < end; ++p) {
                const T* src = x + p * in_plane;
                int64_t o = p * out_plane;
                for (int64_t od = 0; od < ad.out; ++od) {
                    for (int64_t oh = 0; oh < ah.out; ++oh) {
                        for (int64_t ow = 0; ow < aw.out; ++ow, ++o) {
                            T best = std::numeric_limits<T>::lowest();
                            int64_t best_at = -1;
                            for (int64_t kd = 0; kd < ad.k; ++kd) {
                                const int64_t id = window_start(ad, od) + kd * ad.dilation;
                                if (id < 0 || id >= ad.in) continue;
                                for (int64_t kh = 0; kh < ah.k; ++kh) {
                                    const int64_t ih = window_start(ah, oh) + kh * ah.dilation;
                                    if (ih < 0 || ih >= ah.in) continue;
                                    for (int64_t kw = 0; kw < aw.k; ++kw) {
                                        const int64_t iw = window_start(aw, ow) + kw * aw.dilation;
                                        if (iw < 0 || iw >= aw.in) continue;
                                        const int64_t at = (id * ah.in + ih) * aw.in + iw;
                                        if (best_at < 0 || src[at] > best) {
                                            best = src[at];
                                            best_at = at;
                                        }
                                    }
                                }
                            }
                            y[o] = best;
                            if (ind) ind[o] = p * in_plane + index_of(best_at);
                        }
                    }
                }
            }
        });
        return Status::ok();
    }

    // Index of row-major plane offset `at` in the requested storage order.
    int64_t index_of(int64_t at) const {
        if (storage_order_ == 0 || at < 0) return at;
        const int64_t iw = at % g_.ax[2].in;
        const int64_t ih = at / g_.ax[2].in % g_.ax[1].in;
        const int64_t id = at / g_.ax[2].in / g_.ax[1].in;
        return id + ih * g_.ax[0].in + iw * g_.ax[0].in * g_.ax[1].in;
    }

    PoolGeometry g_;
    int64_t storage_order_ = 0;
};

// AveragePool (opset 1-19): X [N, C, spatial...] float32 -> Y [N, C, out...]. The divisor is the
// number of taps inside the input (count_include_pad=0, default) or inside the explicitly padded
// input [-pad_begin, in + pad_end) (count_include_pad=1); taps of a ceil_mode overhang past the
// end padding never count (as ORT and PyTorch).
class AveragePoolKernel final : public Kernel {
public:
    Status prepare(PrepareContext& ctx) override {
        const Node& node = ctx.node;
        LOWBIT_TRY(check_known_attrs(node, {"auto_pad", "ceil_mode", "count_include_pad",
                                            "dilations", "kernel_shape", "pads", "strides"}));
        LOWBIT_TRY(check_input_count(ctx, 1, 1));
        LOWBIT_TRY(require_dtype(node, "X", ctx.inputs[0].dtype, {DType::Float32}));
        LOWBIT_ASSIGN(int64_t cip, int_attr(node, "count_include_pad", 0));
        include_pad_ = cip != 0;
        LOWBIT_ASSIGN(g_, pool_geometry(ctx, true));
        return Status::ok();
    }

    Status run(RunContext& ctx) override {
        const float* x = ctx.inputs[0].data<float>();
        float* y = ctx.outputs[0].data<float>();
        const WindowAxis& ad = g_.ax[0];
        const WindowAxis& ah = g_.ax[1];
        const WindowAxis& aw = g_.ax[2];
        const int64_t in_plane = g_.in_plane();
        const int64_t out_plane = g_.out_plane();
        ctx.pool.parallel_for(g_.planes, 1, [&](int64_t begin, int64_t end) {
            for (int64_t p = begin; p < end; ++p) {
                const float* src = x + p * in_plane;
                int64_t o = p * out_plane;
                for (int64_t od = 0; od < ad.out; ++od) {
                    const int64_t nd = count(ad, od);
                    for (int64_t oh = 0; oh < ah.out; ++oh) {
                        const int64_t nh = count(ah, oh);
                        for (int64_t ow = 0; ow < aw.out; ++ow, ++o) {
                            double sum = 0;
                            for (int64_t kd = 0; kd < ad.k; ++kd) {
                                const int64_t id = window_start(ad, od) + kd * ad.dilation;
                                if (id < 0 || id >= ad.in) continue;
                                for (int64_t kh = 0; kh < ah.k; ++kh) {
                                    const int64_t ih = window_start(ah, oh) + kh * ah.dilation;
                                    if (ih < 0 || ih >= ah.in) continue;
                                    for (int64_t kw = 0; kw < aw.k; ++kw) {
                                        const int64_t iw = window_start(aw, ow) + kw * aw.dilation;
                                        if (iw < 0 || iw >= aw.in) continue;
                                        sum += src[(id * ah.in + ih) * aw.in + iw];
                                    }
                                }
                            }
                            const int64_t n = nd * nh * count(aw, ow);
                            y[o] = n > 0 ? static_cast<float>(sum / static_cast<double>(n)) : 0.0f;
                        }
                    }
                }
            }
        });
        return Status::ok();
    }

private:
    // Taps of window o on axis a that count towards the divisor.
    int64_t count(const WindowAxis& a, int64_t o) const {
        const int64_t lo = include_pad_ ? -a.pad_begin : 0;
        const int64_t hi = include_pad_ ? a.in + a.pad_end : a.in;
        int64_t n = 0;
        for (int64_t k = 0; k < a.k; ++k) {
            const int64_t i = window_start(a, o) + k * a.dilation;
            n += (i >= lo && i < hi) ? 1 : 0;
        }
        return n;
    }

    PoolGeometry g_;
    bool include_pad_ = false;
};

// GlobalAveragePool / GlobalMaxPool (opset 1-19): X [N, C, spatial...] float32 ->
// Y [N, C, 1, ...] (mean or max over each spatial plane).
template <bool kMax>
class GlobalPoolKernel final : public Kernel {
public:
    Status prepare(PrepareContext& ctx) override {
        const Node& node = ctx.node;
        LOWBIT_TRY(check_known_attrs(node, {}));
        LOWBIT_TRY(check_input_count(ctx, 1, 1));
        LOWBIT_TRY(require_dtype(node, "X", ctx.inputs[0].dtype, {DType::Float32}));
        const Shape& x = ctx.inputs[0].shape;
        if (x.size() < 3) {
            return invalid("{}: input {} must be [N, C, spatial...]", node.describe(),
                           shape_str(x));
        }
        Shape out(x.size(), 1);
        out[0] = x[0];
        out[1] = x[1];
        ctx.outputs[0].dtype = DType::Float32;
        ctx.outputs[0].shape = std::move(out);
        return Status::ok();
    }

    Status run(RunContext& ctx) override {
        const Tensor& xt = ctx.inputs[0];
        const float* x = xt.data<float>();
        float* y = ctx.outputs[0].data<float>();
        const int64_t planes = xt.dim(0) * xt.dim(1);
        const int64_t plane = dims_product(xt.shape(), 2, xt.rank());
        ctx.pool.parallel_for(planes, 1, [&](int64_t begin, int64_t end) {
            for (int64_t p = begin; p < end; ++p) {
                const float* src = x + p * plane;
                if constexpr (kMax) {
                    float m = -std::numeric_limits<float>::infinity();
                    for (int64_t i = 0; i < plane; ++i) m = std::max(m, src[i]);
                    y[p] = m;
                } else {
                    double s = 0;
                    for (int64_t i = 0; i < plane; ++i) s += src[i];
                    y[p] = static_cast<float>(s / static_cast<double>(plane));
                }
            }
        });
        return Status::ok();
    }
};

}  // namespace

void register_pool_kernels(KernelRegistry& r) {
    register_kernel<MaxPoolKernel>(r, "MaxPool");
    register_kernel<AveragePoolKernel>(r, "AveragePool");
    register_kernel<GlobalPoolKernel<false>>(r, "GlobalAveragePool");
    register_kernel<GlobalPoolKernel<true>>(r, "GlobalMaxPool");
}

}  // namespace lowbit::ref
