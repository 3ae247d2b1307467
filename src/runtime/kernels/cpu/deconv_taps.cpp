// ConvTranspose whose kernel equals its stride (the 2x2 stride-2 upsamplers of U-Net and FPN
// necks) as one matmul and a scatter (issue 16). With kH = sH, kW = sW, no padding, dilation 1
// and group 1 the windows of the input pixels do not overlap (ConvTranspose-11: out = s * (in -
// 1) + k = s * in), so output pixel (h * kH + th, w * kW + tw) is
//   Y[n, m, h*kH + th, w*kW + tw] = B[m] + sum_c X[n, c, h, w] * W[c, m, th, tw]
// and the whole op is X as an [N*H*W, C] matrix (NHWC storage) times W rearranged to
// [C, kH*kW*M] (columns ordered tap-major, so each tap's M outputs are contiguous), followed by
// a copy of each tap's M values to its output pixel. oneDNN's deconvolution runs this geometry
// as a strided convolution that reads mostly zeros; the matmul does only the useful products.
//
// The scatter writes the dense output and/or, for a channel Concat it feeds, straight into the
// Concat's slice (FastOp::add_concat_slice), so the Concat copies nothing for it. Fusion: a
// BatchNormalization folded into the weights and bias, SiLU or Relu applied to the matmul
// result before the scatter. A residual Add or hard-swish is not taken (deconv.cpp runs those).
//
// Threads: the input rows (over the batch) are cut into chunks, one single-thread matmul
// primitive per distinct chunk size, run as ThreadPool tasks; each chunk's product lives in the
// task thread's ChunkOut workspace until it is scattered.
#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <map>

#include "runtime/kernels/cpu/deconv_weights.h"
#include "runtime/kernels/cpu/dnnl_state.h"
#include "runtime/kernels/cpu/ops.h"
#include "runtime/kernels/cpu/vmath.h"

namespace lowbit::cpu {
namespace {

using dnnl::memory;
using Tag = dnnl::memory::format_tag;
using DT = dnnl::memory::data_type;

// X [N, C, H, W] (NHWC), W [C, M, kH, kW] constant, B [M]? constant -> Y [N, M, H*kH, W*kW]
// (NHWC); kH = sH, kW = sW, no padding, dilation 1, group 1.
class DeconvTapsOp final : public FastOp {
public:
    explicit DeconvTapsOp(DnnlState& dnnl) : dnnl_(dnnl) {}

    void init(const Node& node, std::span<const Operand> ins, const Operand& out,
              const ConvFusion& fusion, int n_threads) {
        x_ = ins[0].shape;
        y_ = out.shape;
        kh_ = ins[1].shape[2];
        kw_ = ins[1].shape[3];
        silu_ = fusion.silu;
        relu_ = fusion.relu;
        const int64_t m = y_[1];
        bias_.assign(static_cast<size_t>(m), 0.0f);
        has_bias_ = ins.size() > 2 && ins[2].present();
        if (has_bias_) std::memcpy(bias_.data(), ins[2].constant->raw(), bias_.size() * 4);
        if (fusion.bn) {
            // B'[m] = B[m] * scale[m] + shift[m]; the weights are scaled in rearrange().
            bn_ = *fusion.bn;
            for (size_t k = 0; k < bias_.size(); ++k) {
                bias_[k] = bias_[k] * bn_.scale[k] + bn_.shift[k];
            }
            has_bias_ = true;
        }
        cols_ = kh_ * kw_ * m;
        // Chunks of input rows: about 4 per thread, none below ~20 us of work (as conv.cpp).
        const int64_t rows = x_[0] * x_[2];
        const double flops =
            2.0 * static_cast<double>(rows * x_[3]) * static_cast<double>(x_[1] * cols_);
        int64_t n = n_threads <= 1
                        ? 1
                        : std::clamp<int64_t>(static_cast<int64_t>(flops / 200e9 / 20e-6), 1,
                                              4 * n_threads);
        n = std::min(n, rows);
        const memory::desc wei_md({x_[1], cols_}, DT::f32, Tag::any);
        dnnl::primitive_attr attr;
        attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
        std::map<int64_t, size_t> part_of;  // chunk rows -> part
        int64_t max_rows = 0;
        for (int64_t i = 0; i < n; ++i) {
            const int64_t r0 = rows * i / n, r1 = rows * (i + 1) / n;
            auto it = part_of.find(r1 - r0);
            if (it == part_of.end()) {
                const int64_t px = (r1 - r0) * x_[3];
                Part p;
                p.a_md = memory::desc({px, x_[1]}, DT::f32, Tag::ab);
                p.y_md = memory::desc({px, cols_}, DT::f32, Tag::ab);
                p.pd = dnnl::matmul::primitive_desc(dnnl::matmul::desc(p.a_md, wei_md, p.y_md),
                                                    attr, dnnl_.engine);
                p.prim = dnnl::matmul(p.pd);
                auto w = std::find(wei_mds_.begin(), wei_mds_.end(), p.pd.weights_desc());
                p.wei = static_cast<size_t>(w - wei_mds_.begin());
                if (w == wei_mds_.end()) wei_mds_.push_back(p.pd.weights_desc());
                dnnl_.reserve(Workspace::Scratchpad, p.pd.scratchpad_desc().get_size());
                for (size_t t = 0; t < dnnl_.streams.size(); ++t) {
                    p.a.push_back(memory(p.a_md, dnnl_.engine, DNNL_MEMORY_NONE));
                    p.y.push_back(memory(p.y_md, dnnl_.engine, DNNL_MEMORY_NONE));
                    p.scratch.push_back(
                        memory(p.pd.scratchpad_desc(), dnnl_.engine, DNNL_MEMORY_NONE));
                }
                it = part_of.emplace(r1 - r0, parts_.size()).first;
                parts_.push_back(std::move(p));
            }
            chunks_.push_back({r0, r1, it->second});
            max_rows = std::max(max_rows, r1 - r0);
        }
        impl_ = parts_[0].pd.impl_info_str();
        dnnl_.reserve(Workspace::ChunkOut, static_cast<size_t>(max_rows * x_[3] * cols_) * 4);
        planned_w_ = ins[1].constant->raw();
        weights_ = rearrange(planned_w_);
        what_ = fmt::format("ConvTranspose {}x{} s{} as matmul+scatter [{}]{}{}{}", kh_, kw_, kh_,
                            impl_, bn_.scale.empty() ? "" : " +BN", silu_ ? " +SiLU" : "",
                            relu_ ? " +Relu" : "");
    }

    bool impl_is_ref() const { return is_dnnl_ref_impl(impl_); }
    const std::string& impl() const { return impl_; }

    Status run(std::span<const Tensor> in, std::span<Tensor> out, const ThreadPool& pool) override {
        const std::vector<memory>* wei = &weights_;
        std::vector<memory> replaced;
        try {
            if (in[1].raw() != planned_w_) {  // a node override handed other weights
                replaced = rearrange(in[1].raw());
                wei = &replaced;
            }
        } catch (const dnnl::error& e) {
            return error(StatusCode::Internal, "{}: oneDNN weight reorder failed: {}", what_,
                         e.what());
        }
        const auto* x = static_cast<const float*>(in[0].raw());
        // Destinations: the dense output (channel stride M, offset 0) and the concat slices.
        std::vector<Dest>& dests = dests_;  // keeps its capacity from run to run
        dests.clear();
        if (dense_) dests.push_back({static_cast<float*>(out[0].raw()), y_[1], 0});
        for (const ConcatSlice& s : slices_) {
            dests.push_back({static_cast<float*>(out[s.slot].raw()), s.total, s.offset});
        }
        TaskFailure failure;
        pool.run(static_cast<int64_t>(chunks_.size()), [&](int64_t task, int thread) {
            const Chunk& c = chunks_[static_cast<size_t>(task)];
            Part& p = parts_[c.part];
            const auto t = static_cast<size_t>(thread);
            auto* prod = static_cast<float*>(dnnl_.data(Workspace::ChunkOut, thread));
            try {
                p.a[t].set_data_handle(const_cast<float*>(x + c.r0 * x_[3] * x_[1]));
                p.y[t].set_data_handle(prod);
                p.scratch[t].set_data_handle(dnnl_.data(Workspace::Scratchpad, thread));
                execute_conv(p.prim, dnnl_.streams[t], p.a[t], (*wei)[p.wei], p.y[t],
                             p.scratch[t]);
                dnnl_.streams[t].wait();
            } catch (const dnnl::error& e) {
                failure.record(e);
                return;
            }
            epilogue(prod, (c.r1 - c.r0) * x_[3] * kh_ * kw_);
            scatter(prod, c, dests);
        });
        if (failure) return failure.status(what_);
        return Status::ok();
    }

    std::string describe() const override {
        return what_ + (slices_.empty() ? "" : dense_ ? " +concat" : " >concat");
    }

    bool add_concat_slice(size_t out, size_t slot, int64_t offset, int64_t total,
                          bool keep_dense) override {
        if (out != 0) return false;
        slices_.push_back({out, slot, offset, total});
        if (!keep_dense) dense_ = false;
        return true;
    }

    void drop_dense(size_t out) override {
        if (out == 0 && !slices_.empty()) dense_ = false;
    }

private:
    struct Part {
        memory::desc a_md, y_md;
        dnnl::matmul::primitive_desc pd;
        dnnl::matmul prim;
        size_t wei = 0;
        std::vector<memory> a, y, scratch;  // per pool thread (parts are shared by chunks)
    };
    // A destination of the product's scatter: the dense output (channel stride M, offset 0)
    // or a concat slice.
    struct Dest {
        float* base;
        int64_t stride, offset;
    };
    std::vector<Dest> dests_;
    struct Chunk {
        int64_t r0 = 0, r1 = 0;  // input rows over the batch (image n's row h is n * H + h)
        size_t part = 0;
    };

    // Bias and activation on `taps` rows of M values each.
    void epilogue(float* v, int64_t taps) const {
        const int64_t m = y_[1];
        if (has_bias_) {
            for (int64_t i = 0; i < taps; ++i) {
                float* row = v + i * m;
                for (int64_t j = 0; j < m; ++j) row[j] += bias_[static_cast<size_t>(j)];
            }
        }
        const int64_t len = taps * m;
        if (silu_) silu_f32(v, v, len);
        if (relu_) {
            for (int64_t i = 0; i < len; ++i) v[i] = v[i] > 0.0f ? v[i] : 0.0f;
        }
    }

    // prod: [rows * W, kH, kW, M] for input rows [c.r0, c.r1). Tap (th, tw) of input pixel
    // (h, w) of image n is output pixel (n, h * kH + th, w * kW + tw).
    template <typename Dests>
    void scatter(const float* prod, const Chunk& c, const Dests& dests) const {
        const int64_t m = y_[1], h_in = x_[2], w_in = x_[3], ow = y_[3], oh = y_[2];
        const size_t bytes = static_cast<size_t>(m) * 4;
        for (int64_t r = c.r0; r < c.r1; ++r) {
            const int64_t n = r / h_in, h = r % h_in;
            for (int64_t th = 0; th < kh_; ++th) {
                const int64_t out_row = (n * oh + h * kh_ + th) * ow;
                for (int64_t w = 0; w < w_in; ++w) {
                    const float* src = prod + (((r - c.r0) * w_in + w) * kh_ + th) * kw_ * m;
                    for (const auto& d : dests) {
                        float* dst = d.base + (out_row + w * kw_) * d.stride + d.offset;
                        for (int64_t tw = 0; tw < kw_; ++tw) {
                            std::memcpy(dst + tw * d.stride, src + tw * m, bytes);
                        }
                    }
                }
            }
        }
    }

    // ONNX W [C, M, kH, kW] (times the folded BN scale of m) as [C, kH*kW*M], tap-major
    // columns, reordered into each format the parts use.
    std::vector<memory> rearrange(const void* w) {
        const int64_t c_in = x_[1], m = y_[1], taps = kh_ * kw_;
        std::vector<float> scaled;
        const float* src = bn_scaled_deconv_weights(static_cast<const float*>(w), c_in, m, 1,
                                                    taps, bn_.scale, scaled);
        std::vector<float> b(static_cast<size_t>(c_in * cols_));
        for (int64_t c = 0; c < c_in; ++c) {
            for (int64_t j = 0; j < m; ++j) {
                for (int64_t t = 0; t < taps; ++t) {
                    b[static_cast<size_t>(c * cols_ + t * m + j)] = src[(c * m + j) * taps + t];
                }
            }
        }
        const memory::desc user({c_in, cols_}, DT::f32, Tag::ab);
        return dnnl_.reorder_weights(user, b.data(), wei_mds_);
    }

    DnnlState& dnnl_;
    std::string what_, impl_;
    Shape x_, y_;
    int64_t kh_ = 1, kw_ = 1, cols_ = 0;
    bool silu_ = false, relu_ = false, has_bias_ = false, dense_ = true;
    BnFold bn_;
    std::vector<float> bias_;  // B (folded with the BN), zeros when absent
    std::vector<memory::desc> wei_mds_;
    std::vector<Part> parts_;
    std::vector<Chunk> chunks_;
    std::vector<ConcatSlice> slices_;
    const void* planned_w_ = nullptr;
    std::vector<memory> weights_;
};

// The node is a ConvTranspose with kernel == stride, no padding, dilation 1, group 1 and the
// output s * in on both axes (which output_shape / auto_pad then cannot change).
bool taps_geometry(const Node& node, const Shape& x, const Shape& w, const Shape& y) {
    const std::vector<int64_t> strides = node.attr_ints("strides", {1, 1});
    const std::vector<int64_t> dilations = node.attr_ints("dilations", {1, 1});
    const std::vector<int64_t> pads = node.attr_ints("pads", {0, 0, 0, 0});
    const std::vector<int64_t> out_pad = node.attr_ints("output_padding", {0, 0});
    const std::string auto_pad = node.attr_string("auto_pad", "NOTSET");
    if (node.attr_int("group", 1) != 1 || strides.size() != 2 ||
        dilations != std::vector<int64_t>{1, 1} || pads != std::vector<int64_t>{0, 0, 0, 0} ||
        out_pad != std::vector<int64_t>{0, 0} || (auto_pad != "NOTSET" && auto_pad != "VALID")) {
        return false;
    }
    return w[0] == x[1] && y[0] == x[0] && y[1] == w[1] && w[2] == strides[0] &&
           w[3] == strides[1] && y[2] == x[2] * w[2] && y[3] == x[3] * w[3];
}

}  // namespace

std::unique_ptr<FastOp> make_deconv_taps(DnnlState& dnnl, const Node& node,
                                         std::span<const Operand> ins, const Operand& out,
                                         const ConvFusion& fusion, int n_threads) {
    if (ins.size() < 2 || ins[0].dtype != DType::Float32 || ins[0].shape.size() != 4 ||
        ins[1].dtype != DType::Float32 || ins[1].shape.size() != 4 || ins[1].constant == nullptr ||
        out.dtype != DType::Float32 || out.shape.size() != 4 || fusion.quant != nullptr ||
        fusion.qmove != nullptr || fusion.hardswish || fusion.hardsigmoid || fusion.residual ||
        fusion.relu_after ||
        shape_numel(out.shape) == 0) {
        return nullptr;
    }
    if (ins.size() > 2 && ins[2].present() &&
        (ins[2].dtype != DType::Float32 || ins[2].constant == nullptr ||
         shape_numel(ins[2].shape) != out.shape[1])) {
        return nullptr;
    }
    if (fusion.bn && fusion.bn->scale.size() != static_cast<size_t>(out.shape[1])) return nullptr;
    if (!taps_geometry(node, ins[0].shape, ins[1].shape, out.shape)) return nullptr;
    auto op = std::make_unique<DeconvTapsOp>(dnnl);
    try {
        op->init(node, ins, out, fusion, n_threads);
    } catch (const dnnl::error&) {
        return nullptr;  // deconv.cpp (or the reference kernel) runs it
    }
    if (op->impl_is_ref()) return nullptr;
    return op;
}

}  // namespace lowbit::cpu
