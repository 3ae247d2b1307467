// Reference convolution kernels: Conv and ConvTranspose, float32, 1-D and 2-D (a 1-D op runs
// as 2-D with H = 1). 3-D convolutions are rejected.
//
// Conv is an im2col + GEMM per (batch, group, tile of output pixels): the tile's input patches
// are unrolled into rows of `col` (one row per (input channel, kh, kw)), then every output
// channel of the group accumulates W[m, k] * col[k, :] over contiguous pixels. Depthwise convs
// (one input channel per group) use a direct loop instead. The loops are plain enough to read
// and fast enough to run a whole YOLO graph in tests; the optimized kernels (oneDNN) are tested
// against this one. The `col` buffers (one per scratch slot, see plan_im2col()) are sized in
// prepare(), so run() allocates nothing.
#include <algorithm>
#include <cstring>
#include <vector>

#include "core/thread_pool.h"
#include "runtime/kernels/ref/op_util.h"
#include "runtime/registry.h"

namespace lowbit::ref {
namespace {

// The conv problem normalised to 2-D. Input [n, c, ih, iw], weights [m, c / group, kh, kw],
// output [n, m, oh, ow].
struct ConvGeometry {
    int64_t n = 1, c = 1, m = 1, group = 1;
    WindowAxis h, w;
};

// Reads the shared Conv / ConvTranspose attributes for X of rank 3 or 4 and kernel dims from W.
Result<ConvGeometry> conv_geometry(const PrepareContext& ctx, bool transpose) {
    const Node& node = ctx.node;
    const Shape& x = ctx.inputs[0].shape;
    const Shape& wt = ctx.inputs[1].shape;
    if (x.size() == 5) {
        return unsupported("{}: 3-D convolution (input {}) is not supported", node.describe(),
                           shape_str(x));
    }
    LOWBIT_TRY(require_rank(node, "X", x, 3, 4));
    if (wt.size() != x.size()) {
        return invalid("{}: weights {} must have the rank of the input {}", node.describe(),
                       shape_str(wt), shape_str(x));
    }
    LOWBIT_TRY(require_dtype(node, "X", ctx.inputs[0].dtype, {DType::Float32}));
    LOWBIT_TRY(require_dtype(node, "W", ctx.inputs[1].dtype, {DType::Float32}));
    ConvGeometry g;
    LOWBIT_ASSIGN(g.group, int_attr(node, "group", 1));
    g.n = x[0];
    g.c = x[1];
    if (g.group < 1 || g.c % g.group != 0) {
        return invalid("{}: group {} does not divide the {} input channels", node.describe(),
                       g.group, g.c);
    }
    // Conv: W [M, C/group, k...]; ConvTranspose: W [C, M/group, k...].
    if (transpose) {
        if (wt[0] != g.c) {
            return invalid("{}: weights {} need {} input channels, the input {} has {}",
                           node.describe(), shape_str(wt), wt[0], shape_str(x), g.c);
        }
        g.m = wt[1] * g.group;
    } else {
        if (wt[1] * g.group != g.c) {
            return invalid(
                "{}: weights {} with group {} need {} input channels, the input {} "
                "has {}",
                node.describe(), shape_str(wt), g.group, wt[1] * g.group, shape_str(x), g.c);
        }
        g.m = wt[0];
        if (g.m % g.group != 0) {
            return invalid("{}: group {} does not divide the {} output channels", node.describe(),
                           g.group, g.m);
        }
    }
    std::vector<int64_t> kernel(wt.begin() + 2, wt.end());
    if (node.has_attr("kernel_shape")) {
        LOWBIT_ASSIGN(std::vector<int64_t> ks, ints_attr(node, "kernel_shape"));
        if (ks != kernel) {
            return invalid("{}: kernel_shape {} does not match the weights {}", node.describe(),
                           shape_str(ks), shape_str(wt));
        }
    }
    if (ctx.has_input(2)) {
        LOWBIT_TRY(require_dtype(node, "B", ctx.inputs[2].dtype, {DType::Float32}));
        if (ctx.inputs[2].shape != Shape{g.m}) {
            return invalid("{}: bias {} must be [{}]", node.describe(),
                           shape_str(ctx.inputs[2].shape), g.m);
        }
    }
    if (!transpose) {
        LOWBIT_ASSIGN(std::vector<WindowAxis> axes, window_axes(node, x, kernel, false));
        g.w = axes.back();
        if (axes.size() == 2) g.h = axes[0];
    }
    return g;
}

// Conv (opset 1-19): X [N, C, (H,) W], W [M, C/group, (kH,) kW], B? [M] -> Y [N, M, (oH,) oW].
// Attributes: auto_pad, dilations, group (depthwise when group = C = M), kernel_shape, pads,
// strides.
class ConvKernel final : public Kernel {
public:
    Status prepare(PrepareContext& ctx) override {
        LOWBIT_TRY(check_known_attrs(
            ctx.node, {"auto_pad", "dilations", "group", "kernel_shape", "pads", "strides"}));
        LOWBIT_TRY(check_input_count(ctx, 2, 3));
        LOWBIT_ASSIGN(g_, conv_geometry(ctx, false));
        Shape out = {g_.n, g_.m};
        if (ctx.inputs[0].shape.size() == 4) out.push_back(g_.h.out);
        out.push_back(g_.w.out);
        ctx.outputs[0].dtype = DType::Float32;
        ctx.outputs[0].shape = std::move(out);
        plan_im2col();
        return Status::ok();
    }

    Status run(RunContext& ctx) override {
        const float* x = ctx.inputs[0].data<float>();
        const float* w = ctx.inputs[1].data<float>();
        const float* bias =
            ctx.inputs.size() > 2 && !ctx.inputs[2].empty() ? ctx.inputs[2].data<float>() : nullptr;
        float* y = ctx.outputs[0].data<float>();
        if (g_.c == g_.group) {
            run_depthwise(ctx.pool, x, w, bias, y);
        } else {
            run_im2col(ctx.pool, x, w, bias, y);
        }
        return Status::ok();
    }

private:
    static constexpr int64_t kTile = 256;    // output pixels per task (a multiple of kNr)
    static constexpr int64_t kKBlock = 128;  // col rows unrolled at a time
    static constexpr int64_t kMr = 4;        // output channels per micro-tile
    static constexpr int64_t kNr = 32;       // output pixels per micro-tile

    // One input channel per group (depthwise, with any channel multiplier): a direct loop per
    // output channel and output row; each kernel tap adds a strided input row segment.
    void run_depthwise(ThreadPool& pool, const float* x, const float* w, const float* bias,
                       float* y) const {
        const ConvGeometry& g = g_;
        const WindowAxis& h = g.h;
        const WindowAxis& wd = g.w;
        const int64_t mg = g.m / g.group;
        pool.parallel_for(g.n * g.m, 1, [&](int64_t begin, int64_t end) {
            for (int64_t task = begin; task < end; ++task) {
                const int64_t b = task / g.m;
                const int64_t oc = task % g.m;
                const float* plane = x + (b * g.c + oc / mg) * h.in * wd.in;
                const float* kern = w + oc * h.k * wd.k;
                float* out = y + task * h.out * wd.out;
                std::fill_n(out, h.out * wd.out, bias ? bias[oc] : 0.0f);
                for (int64_t oh = 0; oh < h.out; ++oh) {
                    float* orow = out + oh * wd.out;
                    for (int64_t kh = 0; kh < h.k; ++kh) {
                        const int64_t ih = oh * h.stride - h.pad_begin + kh * h.dilation;
                        if (ih < 0 || ih >= h.in) continue;
                        const float* irow = plane + ih * wd.in;
                        for (int64_t kw = 0; kw < wd.k; ++kw) {
                            const float wv = kern[kh * wd.k + kw];
                            const int64_t iw0 = kw * wd.dilation - wd.pad_begin;
                            int64_t lo = 0;
                            int64_t hi = 0;
                            valid_range(iw0, wd.stride, wd.in, wd.out, lo, hi);
                            for (int64_t ow = lo; ow < hi; ++ow) {
                                orow[ow] += wv * irow[iw0 + ow * wd.stride];
                            }
                        }
                    }
                }
            }
        });
    }

    // The im2col work split, planned in prepare(): the tasks (batch, group, tile of output
    // pixels) are divided into contiguous runs, one per scratch slot, and each slot has its own
    // `col` buffer, so run() allocates nothing. One slot per hardware thread (no more than there
    // are tasks): a pool with more threads cannot run more of them at once anyway.
    void plan_im2col() {
        const ConvGeometry& g = g_;
        const int64_t k_len = g.c / g.group * g.h.k * g.w.k;
        const int64_t out_plane = g.h.out * g.w.out;
        n_tiles_ = (out_plane + kTile - 1) / kTile;
        // A 1x1, stride-1, unpadded conv reads its input rows directly as `col`.
        pointwise_ = g.h.k == 1 && g.w.k == 1 && g.h.stride == 1 && g.w.stride == 1 &&
                     g.h.pad_begin == 0 && g.w.pad_begin == 0 && g.h.pad_end == 0 &&
                     g.w.pad_end == 0;
        const int64_t tasks = g.n * g.group * n_tiles_;
        const bool needs_col = g.c != g.group && !pointwise_ && tasks > 0;
        slots_ = std::max<int64_t>(1, std::min<int64_t>(hardware_threads(), tasks));
        col_stride_ = needs_col ? std::min(k_len, kKBlock) * kTile : 0;
        col_.assign(static_cast<size_t>(slots_ * col_stride_), 0.0f);
    }

    // General case: per (batch, group, tile of output pixels), unroll the input patches into
    // `col` (rows = (channel, kh, kw), kKBlock rows at a time) and accumulate
    // out[m, :] += W[m, k] * col[k, :] with a register-tiled kMr x kNr micro-kernel.
    void run_im2col(ThreadPool& pool, const float* x, const float* w, const float* bias,
                    float* y) {
        const ConvGeometry& g = g_;
        const int64_t cg = g.c / g.group;  // input channels per group
        const int64_t mg = g.m / g.group;  // output channels per group
        const int64_t k_len = cg * g.h.k * g.w.k;
        const int64_t in_plane = g.h.in * g.w.in;
        const int64_t out_plane = g.h.out * g.w.out;
        const int64_t n_tiles = n_tiles_;
        const int64_t tasks = g.n * g.group * n_tiles;
        pool.parallel_for(slots_, 1, [&](int64_t slot_begin, int64_t slot_end) {
            for (int64_t slot = slot_begin; slot < slot_end; ++slot) {
                float* col_buf = col_.data() + slot * col_stride_;
                const int64_t begin = tasks * slot / slots_, end = tasks * (slot + 1) / slots_;
                for (int64_t task = begin; task < end; ++task) {
                    const int64_t tile = task % n_tiles;
                    const int64_t grp = (task / n_tiles) % g.group;
                    const int64_t b = task / n_tiles / g.group;
                    const int64_t p0 = tile * kTile;
                    const int64_t tp = std::min(kTile, out_plane - p0);
                    const float* xg = x + (b * g.c + grp * cg) * in_plane;
                    float* yg = y + (b * g.m + grp * mg) * out_plane + p0;
                    const float* wg = w + grp * mg * k_len;
                    for (int64_t m = 0; m < mg; ++m) {
                        std::fill_n(yg + m * out_plane, tp, bias ? bias[grp * mg + m] : 0.0f);
                    }
                    for (int64_t k0 = 0; k0 < k_len; k0 += kKBlock) {
                        const int64_t kb = std::min(kKBlock, k_len - k0);
                        const float* col = pointwise_ ? xg + k0 * in_plane + p0 : col_buf;
                        const int64_t ld = pointwise_ ? in_plane : kTile;
                        if (!pointwise_) im2col(xg, k0, kb, p0, tp, col_buf);
                        for (int64_t m0 = 0; m0 < mg; m0 += kMr) {
                            for (int64_t t0 = 0; t0 < tp; t0 += kNr) {
                                micro_tile(wg + m0 * k_len + k0, k_len, col + t0, ld,
                                           yg + m0 * out_plane + t0, out_plane,
                                           std::min(kMr, mg - m0), kb, std::min(kNr, tp - t0));
                            }
                        }
                    }
                }
            }
        });
    }

    // c[r, t] += sum_k a[r * lda + k] * b[k * ldb + t] for r < mr (<= kMr), t < nr (<= kNr).
    // The accumulators stay in registers across k; full tiles have compile-time trip counts so
    // the compiler vectorises the t loop.
    static void micro_tile(const float* a, int64_t lda, const float* b, int64_t ldb, float* c,
                           int64_t ldc, int64_t mr, int64_t kb, int64_t nr) {
        if (mr == kMr && nr == kNr) {
            float acc[kMr][kNr];
            for (int64_t r = 0; r < kMr; ++r) {
                for (int64_t t = 0; t < kNr; ++t) acc[r][t] = c[r * ldc + t];
            }
            for (int64_t k = 0; k < kb; ++k) {
                const float* brow = b + k * ldb;
                for (int64_t r = 0; r < kMr; ++r) {
                    const float av = a[r * lda + k];
                    for (int64_t t = 0; t < kNr; ++t) acc[r][t] += av * brow[t];
                }
            }
            for (int64_t r = 0; r < kMr; ++r) {
                for (int64_t t = 0; t < kNr; ++t) c[r * ldc + t] = acc[r][t];
            }
            return;
        }
        for (int64_t r = 0; r < mr; ++r) {
            float* crow = c + r * ldc;
            for (int64_t k = 0; k < kb; ++k) {
                const float av = a[r * lda + k];
                const float* brow = b + k * ldb;
                for (int64_t t = 0; t < nr; ++t) crow[t] += av * brow[t];
            }
        }
    }

    // Output positions o in [lo, hi) whose input coordinate i0 + o * stride lies in [0, in).
    static void valid_range(int64_t i0, int64_t stride, int64_t in, int64_t out, int64_t& lo,
                            int64_t& hi) {
        lo = i0 >= 0 ? 0 : (-i0 + stride - 1) / stride;
        hi = i0 < in ? (in - i0 + stride - 1) / stride : 0;
        lo = std::min(lo, out);
        hi = std::clamp(hi, lo, out);
    }

    // Unrolls col rows [k0, k0 + kb) for output pixels [p0, p0 + tp) of one group. Row k is
    // (channel, kh, kw) = (k / (kH*kW), k / kW % kH, k % kW); out-of-image taps read 0.
    void im2col(const float* xg, int64_t k0, int64_t kb, int64_t p0, int64_t tp, float* col) const {
        const WindowAxis& h = g_.h;
        const WindowAxis& w = g_.w;
        for (int64_t r = 0; r < kb; ++r) {
            const int64_t k = k0 + r;
            const int64_t ch = k / (h.k * w.k);
            const int64_t kh = k / w.k % h.k;
            const int64_t kw = k % w.k;
            const float* plane = xg + ch * h.in * w.in;
            float* dst = col + r * kTile;
            // Walk the tile one output row segment at a time.
            int64_t oh = p0 / w.out;
            int64_t ow = p0 % w.out;
            for (int64_t t = 0; t < tp;) {
                const int64_t run = std::min(w.out - ow, tp - t);
                const int64_t ih = oh * h.stride - h.pad_begin + kh * h.dilation;
                float* d = dst + t;
                if (ih < 0 || ih >= h.in) {
                    std::fill_n(d, run, 0.0f);
                } else {
                    const float* irow = plane + ih * w.in;
                    const int64_t iw0 = ow * w.stride - w.pad_begin + kw * w.dilation;
                    int64_t lo = 0;
                    int64_t hi = 0;
                    valid_range(iw0, w.stride, w.in, run, lo, hi);
                    std::fill_n(d, lo, 0.0f);
                    for (int64_t j = lo; j < hi; ++j) d[j] = irow[iw0 + j * w.stride];
                    std::fill_n(d + hi, run - hi, 0.0f);
                }
                t += run;
                ow = 0;
                ++oh;
            }
        }
    }

    ConvGeometry g_;
    bool pointwise_ = false;
    int64_t n_tiles_ = 0, slots_ = 1, col_stride_ = 0;
    std::vector<float> col_;  // slots_ buffers of col_stride_ floats
};

// ConvTranspose (opset 1-19): X [N, C, (H,) W], W [C, M/group, (kH,) kW], B? [M] ->
// Y [N, M, (oH,) oW] with, per spatial axis (spec, ConvTranspose-11),
//   out = stride * (in - 1) + output_padding + (k - 1) * dilation + 1 - pad_begin - pad_end.
// With output_shape (or auto_pad SAME_*, which asks for out = in * stride) the total padding
// max(0, that size - out) is split with the odd extra at the end for SAME_UPPER and at the
// beginning otherwise. Computed directly: every input pixel scatters into the output.
class ConvTransposeKernel final : public Kernel {
public:
    Status prepare(PrepareContext& ctx) override {
        const Node& node = ctx.node;
        LOWBIT_TRY(check_known_attrs(node, {"auto_pad", "dilations", "group", "kernel_shape",
                                            "output_padding", "output_shape", "pads", "strides"}));
        LOWBIT_TRY(check_input_count(ctx, 2, 3));
        LOWBIT_ASSIGN(g_, conv_geometry(ctx, true));
        const Shape& x = ctx.inputs[0].shape;
        const Shape& wt = ctx.inputs[1].shape;
        const size_t nsp = x.size() - 2;
        LOWBIT_ASSIGN(std::vector<int64_t> strides,
                      ints_attr(node, "strides", std::vector<int64_t>(nsp, 1)));
        LOWBIT_ASSIGN(std::vector<int64_t> dilations,
                      ints_attr(node, "dilations", std::vector<int64_t>(nsp, 1)));
        LOWBIT_ASSIGN(std::vector<int64_t> pads,
                      ints_attr(node, "pads", std::vector<int64_t>(2 * nsp, 0)));
        LOWBIT_ASSIGN(std::vector<int64_t> out_pad,
                      ints_attr(node, "output_padding", std::vector<int64_t>(nsp, 0)));
        LOWBIT_ASSIGN(std::vector<int64_t> out_shape, ints_attr(node, "output_shape"));
        LOWBIT_ASSIGN(std::string auto_pad, string_attr(node, "auto_pad", "NOTSET"));
        if (strides.size() != nsp || dilations.size() != nsp || pads.size() != 2 * nsp ||
            out_pad.size() != nsp) {
            return invalid(
                "{}: strides, dilations, pads and output_padding must match {} "
                "spatial dims",
                node.describe(), nsp);
        }
        if (out_shape.size() > nsp) out_shape.erase(out_shape.begin(), out_shape.end() - nsp);
        if (!out_shape.empty() && out_shape.size() != nsp) {
            return invalid("{}: output_shape {} must give {} spatial dims", node.describe(),
                           shape_str(out_shape), nsp);
        }
        const bool same = auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER";
        if (!same && auto_pad != "NOTSET" && auto_pad != "VALID") {
            return unsupported("{}: attribute 'auto_pad' value '{}' is not supported",
                               node.describe(), auto_pad);
        }
        std::vector<WindowAxis> axes(nsp);
        for (size_t i = 0; i < nsp; ++i) {
            WindowAxis& a = axes[i];
            a.in = x[2 + i];
            a.k = wt[2 + i];
            a.stride = strides[i];
            a.dilation = dilations[i];
            if (a.stride < 1 || a.dilation < 1 || out_pad[i] < 0) {
                return invalid("{}: strides {}, dilations {} or output_padding {} are invalid",
                               node.describe(), shape_str(strides), shape_str(dilations),
                               shape_str(out_pad));
            }
            const int64_t full = a.stride * (a.in - 1) + out_pad[i] + a.extent();
            if (same || !out_shape.empty()) {
                a.out = same ? a.in * a.stride : out_shape[i];
                // A requested size beyond `full` leaves extra rows at the end (like
                // output_padding), so the total padding never goes negative (as ORT).
                const int64_t total = std::max<int64_t>(0, full - a.out);
                a.pad_begin = auto_pad == "SAME_UPPER" ? total / 2 : total - total / 2;
                a.pad_end = total - a.pad_begin;
            } else {
                if (auto_pad == "NOTSET") {
                    a.pad_begin = pads[i];
                    a.pad_end = pads[i + nsp];
                }
                a.out = full - a.pad_begin - a.pad_end;
            }
            if (a.out < 0) {
                return invalid("{}: output size {} on spatial axis {} is negative", node.describe(),
                               a.out, i);
            }
        }
        g_.w = axes.back();
        if (nsp == 2) g_.h = axes[0];
        Shape out = {g_.n, g_.m};
        for (const WindowAxis& a : axes) out.push_back(a.out);
        ctx.outputs[0].dtype = DType::Float32;
        ctx.outputs[0].shape = std::move(out);
        return Status::ok();
    }

    Status run(RunContext& ctx) override {
        const float* x = ctx.inputs[0].data<float>();
        const float* w = ctx.inputs[1].data<float>();
        const float* bias =
            ctx.inputs.size() > 2 && !ctx.inputs[2].empty() ? ctx.inputs[2].data<float>() : nullptr;
        float* y = ctx.outputs[0].data<float>();
        const ConvGeometry& g = g_;
        const WindowAxis& h = g.h;
        const WindowAxis& wd = g.w;
        const int64_t cg = g.c / g.group;
        const int64_t mg = g.m / g.group;
        const int64_t in_plane = h.in * wd.in;
        const int64_t out_plane = h.out * wd.out;
        ctx.pool.parallel_for(g.n * g.m, 1, [&](int64_t begin, int64_t end) {
            for (int64_t task = begin; task < end; ++task) {
                const int64_t b = task / g.m;
                const int64_t oc = task % g.m;
                const int64_t grp = oc / mg;
                float* out = y + task * out_plane;
                std::fill_n(out, out_plane, bias ? bias[oc] : 0.0f);
                for (int64_t ci = 0; ci < cg; ++ci) {
                    const int64_t ic = grp * cg + ci;
                    const float* plane = x + (b * g.c + ic) * in_plane;
                    const float* kern = w + (ic * mg + oc % mg) * h.k * wd.k;
                    for (int64_t kh = 0; kh < h.k; ++kh) {
                        for (int64_t kw = 0; kw < wd.k; ++kw) {
                            const float wv = kern[kh * wd.k + kw];
                            for (int64_t ih = 0; ih < h.in; ++ih) {
                                const int64_t oh = ih * h.stride - h.pad_begin + kh * h.dilation;
                                if (oh < 0 || oh >= h.out) continue;
                                for (int64_t iw = 0; iw < wd.in; ++iw) {
                                    const int64_t ow =
                                        iw * wd.stride - wd.pad_begin + kw * wd.dilation;
                                    if (ow < 0 || ow >= wd.out) continue;
                                    out[oh * wd.out + ow] += plane[ih * wd.in + iw] * wv;
                                }
                            }
                        }
                    }
                }
            }
        });
        return Status::ok();
    }

private:
    ConvGeometry g_;
};

}  // namespace

void register_conv_kernels(KernelRegistry& r) {
    register_kernel<ConvKernel>(r, "Conv");
    register_kernel<ConvTransposeKernel>(r, "ConvTranspose");
}

}  // namespace lowbit::ref
