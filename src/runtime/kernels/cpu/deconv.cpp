// ConvTranspose through oneDNN's deconvolution primitive (issue 16): 2-D float32, constant
// weights, X and Y stored NHWC, weights reordered once into the format oneDNN picks, optional
// constant bias, groups, strides, dilations, pads, output_padding, output_shape and auto_pad as
// ONNX defines them (the reference kernel's arithmetic, kernels/ref/conv.cpp). Where oneDNN
// offers only a reference implementation, or rejects the geometry, the op is not created and
// lowbit's reference ConvTranspose runs.
//
// ONNX ConvTranspose W is [C, M/group, kH, kW]: input channels first. oneDNN's deconvolution
// weights are logically [M, C, kH, kW] (or [G, M/G, C/G, kH, kW]); the ONNX array is that
// tensor stored `iohw` (`giohw`). Output padding (extra rows at the end) is a smaller, possibly
// negative, right padding: out = stride * (in - 1) + extent - pad_begin - pad_end.
//
// Threads: like conv.cpp, the output rows are cut into chunks, one single-thread primitive per
// distinct chunk geometry, run as ThreadPool tasks. A band of output rows [oh0, oh1) is
// computed from the input rows that reach it, with the band's own top/bottom padding; chunk
// borders are placed on multiples of the stride, so every chunk starts at the same phase.
// Should oneDNN refuse a chunk's geometry, the op runs as one chunk.
//
// Fusion (the graph patterns of Conv, runtime/fusion.h): a following BatchNormalization is
// folded into the weights and bias; per chunk, while its rows are in cache, SiLU or Relu, a
// residual Add and a Relu after it (hard-swish is not taken: the node then runs unfused).
#include <fmt/format.h>

#include <map>
#include <tuple>

#include "runtime/kernels/cpu/deconv_weights.h"
#include "runtime/kernels/cpu/dnnl_state.h"
#include "runtime/kernels/cpu/ops.h"
#include "runtime/kernels/cpu/vmath.h"

namespace lowbit::cpu {
namespace {

using dnnl::memory;
using Tag = dnnl::memory::format_tag;
using DT = dnnl::memory::data_type;

int64_t floor_div(int64_t a, int64_t b) {
    return a >= 0 ? a / b : -((-a + b - 1) / b);
}

// One spatial axis of the transposed conv: the output size is the planned one.
struct TAxis {
    int64_t in = 1, out = 1, k = 1, stride = 1, dilation = 1, pad_begin = 0, pad_end = 0;
    int64_t extent() const { return (k - 1) * dilation + 1; }
};

// The axes from the node's attributes (ConvTranspose-11 as the reference kernel reads them);
// false on attributes outside the fast path.
bool deconv_axes(const Node& node, const Shape& x, const Shape& w, const Shape& y, TAxis& h,
                 TAxis& wd) {
    const std::vector<int64_t> strides = node.attr_ints("strides", {1, 1});
    const std::vector<int64_t> dilations = node.attr_ints("dilations", {1, 1});
    const std::vector<int64_t> pads = node.attr_ints("pads", {0, 0, 0, 0});
    const std::vector<int64_t> out_pad = node.attr_ints("output_padding", {0, 0});
    std::vector<int64_t> out_shape = node.attr_ints("output_shape", {});
    const std::string auto_pad = node.attr_string("auto_pad", "NOTSET");
    if (strides.size() != 2 || dilations.size() != 2 || pads.size() != 4 || out_pad.size() != 2) {
        return false;
    }
    if (out_shape.size() > 2) out_shape.erase(out_shape.begin(), out_shape.end() - 2);
    if (!out_shape.empty() && out_shape.size() != 2) return false;
    const bool same = auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER";
    if (!same && auto_pad != "NOTSET" && auto_pad != "VALID") return false;
    TAxis* axes[2] = {&h, &wd};
    for (size_t i = 0; i < 2; ++i) {
        TAxis& a = *axes[i];
        a.in = x[2 + i];
        a.out = y[2 + i];
        a.k = w[2 + i];
        a.stride = strides[i];
        a.dilation = dilations[i];
        if (a.k < 1 || a.stride < 1 || a.dilation < 1 || out_pad[i] < 0) return false;
        const int64_t full = a.stride * (a.in - 1) + out_pad[i] + a.extent();
        if (same || !out_shape.empty()) {
            const int64_t total = std::max<int64_t>(0, full - a.out);
            a.pad_begin = auto_pad == "SAME_UPPER" ? total / 2 : total - total / 2;
        } else if (auto_pad == "NOTSET") {
            a.pad_begin = pads[i];
        }
        // What oneDNN calls the right padding: out = stride * (in - 1) + extent - l - r.
        a.pad_end = a.stride * (a.in - 1) + a.extent() - a.pad_begin - a.out;
        if (a.pad_begin < 0 || a.out < 1) return false;
    }
    return true;
}

struct Chunk {
    int64_t oh0 = 0, oh1 = 0;  // output rows
    int64_t ih0 = 0;           // first input row read
    size_t part = 0;
    memory src, dst, bias;     // NHWC views, pointed at the tensors in run()
};

class DeconvOp final : public FastOp {
public:
    explicit DeconvOp(DnnlState& dnnl) : dnnl_(dnnl) {}

    Status init(const Node& node, std::span<const Operand> ins, const Operand& out,
                ConvFusion fusion, int n_threads, std::vector<std::string>& warnings) {
        x_ = ins[0].shape;
        y_ = out.shape;
        const Shape& wt = ins[1].shape;
        group_ = node.attr_int("group", 1);
        if (!deconv_axes(node, x_, wt, y_, h_, w_)) {
            return unsupported("{}: attributes outside the fast path", node.describe());
        }
        silu_ = fusion.silu;
        residual_ = fusion.residual;
        relu_ = fusion.relu;
        relu_after_ = fusion.relu_after;
        has_bias_ = ins.size() > 2 && ins[2].present();
        n_threads_ = std::max(1, n_threads);
        if (fusion.bn) {
            // The BatchNormalization folded in: output channel m's weights times scale[m],
            // B'[m] = B[m] * scale[m] + shift[m] (B = 0 when absent).
            if (fusion.bn->scale.size() != static_cast<size_t>(y_[1])) {
                return unsupported("{}: BatchNormalization of another channel count",
                                   node.describe());
            }
            bn_ = *fusion.bn;
            folded_bias_.resize(static_cast<size_t>(y_[1]));
            for (size_t k = 0; k < folded_bias_.size(); ++k) {
                const float b = has_bias_ ? ins[2].constant->data<float>()[k] : 0.0f;
                folded_bias_[k] = b * bn_.scale[k] + bn_.shift[k];
            }
            has_bias_ = true;
        }
        if (group_ == 1) {
            wei_dims_ = {y_[1], x_[1], wt[2], wt[3]};
            user_wei_md_ = memory::desc(wei_dims_, DT::f32, Tag::iohw);
        } else {
            wei_dims_ = {group_, y_[1] / group_, x_[1] / group_, wt[2], wt[3]};
            user_wei_md_ = memory::desc(wei_dims_, DT::f32, Tag::giohw);
        }
        auto whole = make_pd(x_[2], h_.pad_begin, h_.pad_end, y_[2]);
        impl_ = whole.impl_info_str();
        if (is_dnnl_ref_impl(impl_)) {
            warnings.push_back(fmt::format(
                "{}: oneDNN has only the reference implementation '{}' for input {} weights {}; "
                "using lowbit's reference ConvTranspose",
                node.describe(), impl_, shape_str(x_), shape_str(wt)));
            return unsupported("reference implementation");
        }
        plan_chunks(whole);
        planned_w_ = ins[1].constant->raw();
        weights_ = reorder_weights(planned_w_);
        what_ = fmt::format("ConvTranspose {}x{} s{}{} [{}]{}{}{}{}", wt[2], wt[3], h_.stride,
                            group_ == 1 ? "" : " grouped", impl_,
                            bn_.scale.empty() ? "" : " +BN", silu_ ? " +SiLU" : "",
                            relu_ ? " +Relu" : "",
                            residual_ ? (relu_after_ ? " +Add +Relu" : " +Add") : "");
        return Status::ok();
    }

    Status run(std::span<const Tensor> in, std::span<Tensor> out, const ThreadPool& pool) override {
        const std::vector<memory>* wei = &weights_;
        std::vector<memory> replaced;
        try {
            if (in[1].raw() != planned_w_) {  // a node override handed other weights
                replaced = reorder_weights(in[1].raw());
                wei = &replaced;
            }
        } catch (const dnnl::error& e) {
            return error(StatusCode::Internal, "{}: oneDNN weight reorder failed: {}", what_,
                         e.what());
        }
        const auto* x = static_cast<const char*>(in[0].raw());
        auto* y = static_cast<char*>(out[0].raw());
        void* bias = !has_bias_          ? nullptr
                     : bn_.scale.empty() ? const_cast<void*>(in[2].raw())
                                         : static_cast<void*>(folded_bias_.data());
        const auto* res = residual_ ? static_cast<const char*>(in[3].raw()) : nullptr;
        const int64_t x_image = x_[1] * x_[2] * x_[3] * 4;
        const int64_t y_image = y_[1] * y_[2] * y_[3] * 4;
        const int64_t x_row = x_[1] * x_[3] * 4;
        const int64_t y_row = y_[1] * y_[3] * 4;
        TaskFailure failure;
        pool.run(static_cast<int64_t>(chunks_.size()), [&](int64_t task, int thread) {
            Chunk& c = chunks_[static_cast<size_t>(task)];
            const Part& part = parts_[c.part];
            const auto t = static_cast<size_t>(thread);
            for (int64_t b = 0; b < x_[0]; ++b) {
                char* dst = y + b * y_image + c.oh0 * y_row;
                try {
                    c.src.set_data_handle(const_cast<char*>(x + b * x_image + c.ih0 * x_row));
                    c.dst.set_data_handle(dst);
                    part.scratch[t].set_data_handle(dnnl_.data(Workspace::Scratchpad, thread));
                    ExecArgs args;
                    args.add(DNNL_ARG_SRC, c.src)
                        .add(DNNL_ARG_WEIGHTS, (*wei)[part.wei])
                        .add(DNNL_ARG_DST, c.dst)
                        .add(DNNL_ARG_SCRATCHPAD, part.scratch[t]);
                    if (bias) {
                        c.bias.set_data_handle(bias);
                        args.add(DNNL_ARG_BIAS, c.bias);
                    }
                    args.execute(part.prim, dnnl_.streams[t]);
                    dnnl_.streams[t].wait();
                } catch (const dnnl::error& e) {
                    failure.record(e);
                    return;
                }
                auto* yf = reinterpret_cast<float*>(dst);
                const int64_t len = (c.oh1 - c.oh0) * y_row / 4;
                if (silu_) silu_f32(yf, yf, len);
                if (relu_) {
                    for (int64_t i = 0; i < len; ++i) yf[i] = yf[i] > 0.0f ? yf[i] : 0.0f;
                }
                if (res) {
                    const auto* r =
                        reinterpret_cast<const float*>(res + b * y_image + c.oh0 * y_row);
                    for (int64_t i = 0; i < len; ++i) yf[i] += r[i];
                    if (relu_after_) {
                        for (int64_t i = 0; i < len; ++i) yf[i] = yf[i] > 0.0f ? yf[i] : 0.0f;
                    }
                }
            }
        });
        if (failure) return failure.status(what_);
        return Status::ok();
    }

    std::string describe() const override { return what_; }

private:
    struct Part {
        dnnl::deconvolution_forward::primitive_desc pd;
        dnnl::deconvolution_forward prim;
        size_t wei = 0;
        std::vector<memory> scratch;  // per pool thread
    };

    memory::desc nhwc(int64_t c, int64_t rows, int64_t cols) const {
        return memory::desc({1, c, rows, cols}, DT::f32, Tag::nhwc);
    }

    dnnl::deconvolution_forward::primitive_desc make_pd(int64_t in_rows, int64_t pad_top,
                                                        int64_t pad_bottom,
                                                        int64_t out_rows) const {
        const memory::desc src_md = nhwc(x_[1], in_rows, x_[3]);
        const memory::desc dst_md = nhwc(y_[1], out_rows, y_[3]);
        const memory::desc wei_md(wei_dims_, DT::f32, Tag::any);
        const memory::desc bias_md({y_[1]}, DT::f32, Tag::x);
        const memory::dims strides = {h_.stride, w_.stride};
        const memory::dims dilates = {h_.dilation - 1, w_.dilation - 1};
        const memory::dims pad_l = {pad_top, w_.pad_begin};
        const memory::dims pad_r = {pad_bottom, w_.pad_end};
        dnnl::primitive_attr attr;
        attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
        const auto kind = dnnl::prop_kind::forward_inference;
        const auto alg = dnnl::algorithm::deconvolution_direct;
        auto desc = has_bias_ ? dnnl::deconvolution_forward::desc(kind, alg, src_md, wei_md,
                                                                  bias_md, dst_md, strides,
                                                                  dilates, pad_l, pad_r)
                              : dnnl::deconvolution_forward::desc(kind, alg, src_md, wei_md,
                                                                  dst_md, strides, dilates,
                                                                  pad_l, pad_r);
        return dnnl::deconvolution_forward::primitive_desc(desc, attr, dnnl_.engine);
    }

    // Output rows cut into about 4 chunks per thread (none below ~20 us of work), borders on
    // multiples of the stride.
    void plan_chunks(const dnnl::deconvolution_forward::primitive_desc& whole) {
        const int64_t oh = y_[2];
        const int64_t t = n_threads_;
        const double flops = 2.0 * static_cast<double>(x_[1] * x_[2] * x_[3]) *
                             static_cast<double>(y_[1] / group_ * h_.k * w_.k);
        const int64_t steps = (oh + h_.stride - 1) / h_.stride;
        int64_t n = t == 1 ? 1
                           : std::clamp<int64_t>(static_cast<int64_t>(flops / 200e9 / 20e-6), 1,
                                                 4 * t);
        n = std::min(n, steps);
        bool ok = n > 1;
        if (ok) {
            std::vector<int64_t> bounds;
            for (int64_t i = 0; i <= n; ++i) {
                bounds.push_back(std::min(oh, steps * i / n * h_.stride));
            }
            bounds.back() = oh;
            try {
                ok = make_chunks(bounds);
            } catch (const dnnl::error&) {
                ok = false;
            }
        }
        if (!ok) {
            parts_.clear();
            wei_mds_.clear();
            chunks_ = {Chunk{0, oh, 0, 0, {}, {}, {}}};
            add_part(whole);
        }
        for (Part& p : parts_) {
            dnnl_.reserve(Workspace::Scratchpad, p.pd.scratchpad_desc().get_size());
            for (int th = 0; th < t; ++th) {
                p.scratch.push_back(memory(p.pd.scratchpad_desc(), dnnl_.engine, DNNL_MEMORY_NONE));
            }
        }
        for (Chunk& c : chunks_) {
            const Part& p = parts_[c.part];
            c.src = memory(p.pd.src_desc(), dnnl_.engine, DNNL_MEMORY_NONE);
            c.dst = memory(p.pd.dst_desc(), dnnl_.engine, DNNL_MEMORY_NONE);
            if (has_bias_) c.bias = memory(p.pd.bias_desc(), dnnl_.engine, DNNL_MEMORY_NONE);
        }
    }

    bool make_chunks(const std::vector<int64_t>& bounds) {
        const int64_t s = h_.stride;
        const int64_t reach = (h_.k - 1) * h_.dilation;  // extent - 1
        std::map<std::tuple<int64_t, int64_t, int64_t, int64_t>, size_t> part_of;
        for (size_t i = 0; i + 1 < bounds.size(); ++i) {
            const int64_t oh0 = bounds[i];
            const int64_t oh1 = bounds[i + 1];
            if (oh1 <= oh0) return false;
            // Input row ih reaches output rows ih * s - pad_begin + [0, reach].
            const int64_t ih0 = std::max<int64_t>(0, -floor_div(-(oh0 + h_.pad_begin - reach), s));
            const int64_t ih1 = std::min(x_[2], floor_div(oh1 - 1 + h_.pad_begin, s) + 1);
            if (ih1 <= ih0) return false;
            const int64_t pad_top = h_.pad_begin + oh0 - ih0 * s;
            const int64_t pad_bottom = s * (ih1 - ih0 - 1) + reach + 1 - pad_top - (oh1 - oh0);
            if (pad_top < 0) return false;
            const auto key = std::make_tuple(ih1 - ih0, pad_top, pad_bottom, oh1 - oh0);
            auto it = part_of.find(key);
            if (it == part_of.end()) {
                auto pd = make_pd(ih1 - ih0, pad_top, pad_bottom, oh1 - oh0);
                if (pd.impl_info_str() != impl_) return false;
                it = part_of.emplace(key, parts_.size()).first;
                add_part(pd);
            }
            chunks_.push_back({oh0, oh1, ih0, it->second, {}, {}, {}});
        }
        return true;
    }

    void add_part(const dnnl::deconvolution_forward::primitive_desc& pd) {
        Part p;
        p.pd = pd;
        p.prim = dnnl::deconvolution_forward(pd);
        auto it = std::find(wei_mds_.begin(), wei_mds_.end(), pd.weights_desc());
        p.wei = static_cast<size_t>(it - wei_mds_.begin());
        if (it == wei_mds_.end()) wei_mds_.push_back(pd.weights_desc());
        parts_.push_back(std::move(p));
    }

    // The weights `w` (ONNX [C, M/g, kH, kW]) in every format the parts use; with a folded
    // BatchNormalization each output channel's taps are scaled first.
    std::vector<memory> reorder_weights(const void* w) {
        std::vector<float> scaled;
        const float* src = bn_scaled_deconv_weights(static_cast<const float*>(w), x_[1],
                                                    y_[1] / group_, group_, h_.k * w_.k,
                                                    bn_.scale, scaled);
        return dnnl_.reorder_weights(user_wei_md_, src, wei_mds_);
    }

    DnnlState& dnnl_;
    std::string what_, impl_;
    Shape x_, y_;
    int64_t group_ = 1;
    int n_threads_ = 1;
    TAxis h_, w_;
    bool silu_ = false, residual_ = false, has_bias_ = false, relu_ = false, relu_after_ = false;
    BnFold bn_;                       // a folded BatchNormalization (empty: none)
    std::vector<float> folded_bias_;  // with bn_: the bias the primitive reads
    memory::dims wei_dims_;
    memory::desc user_wei_md_;
    std::vector<memory::desc> wei_mds_;
    std::vector<Part> parts_;
    std::vector<Chunk> chunks_;
    const void* planned_w_ = nullptr;
    std::vector<memory> weights_;
};

}  // namespace

std::unique_ptr<FastOp> make_deconv(DnnlState& dnnl, const Node& node,
                                    std::span<const Operand> ins, const Operand& out,
                                    ConvFusion fusion, int n_threads,
                                    std::vector<std::string>& warnings) {
    if (ins.size() < 2 || ins[0].dtype != DType::Float32 || ins[0].shape.size() != 4 ||
        ins[1].dtype != DType::Float32 || ins[1].shape.size() != 4 || ins[1].constant == nullptr ||
        out.dtype != DType::Float32 || out.shape.size() != 4 || fusion.quant != nullptr ||
        fusion.hardswish || fusion.hardsigmoid || (fusion.relu_after && !fusion.residual)) {
        return nullptr;
    }
    if (ins.size() > 2 && ins[2].present() &&
        (ins[2].dtype != DType::Float32 || ins[2].constant == nullptr)) {
        return nullptr;
    }
    if (fusion.residual &&
        (ins.size() != 4 || ins[3].dtype != DType::Float32 || ins[3].shape != out.shape)) {
        return nullptr;
    }
    const Shape& x = ins[0].shape;
    const Shape& w = ins[1].shape;
    const int64_t group = node.attr_int("group", 1);
    if (group < 1 || x[1] % group != 0 || w[0] != x[1] || w[1] * group != out.shape[1] ||
        out.shape[0] != x[0] || shape_numel(out.shape) == 0 || shape_numel(x) == 0) {
        return nullptr;
    }
    auto op = std::make_unique<DeconvOp>(dnnl);
    try {
        if (!op->init(node, ins, out, fusion, n_threads, warnings).is_ok()) return nullptr;
    } catch (const dnnl::error& e) {
        warnings.push_back(fmt::format(
            "{}: oneDNN cannot run this ConvTranspose ({}); using lowbit's reference kernel",
            node.describe(), e.what()));
        return nullptr;
    }
    return op;
}

}  // namespace lowbit::cpu
