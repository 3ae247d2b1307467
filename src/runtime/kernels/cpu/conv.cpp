// Conv through oneDNN 2.6 (research/engine-perf.md: 90-98% of the FMA peak with
// format_tag::any, which picks NHWC activations and blocked weights on this CPU).
//
// Plan time: the primitive is built for X and Y stored NHWC and weights in whatever format
// oneDNN prefers; the constant weights are reordered into it once. If oneDNN offers only a
// reference implementation for the shape (1000x slower), the op is not created and the
// executor keeps lowbit's reference Conv. Run time: the conv runs on the arena tensors
// directly. When a node override hands the op other weights than the planned constant, they
// are reordered for that call, so overrides of weights (fake-quantized copies for sensitivity)
// are honoured at oneDNN speed.
//
// SiLU (x * sigmoid(x), which Ultralytics exports as Conv -> Sigmoid -> Mul) is applied by a
// vectorized pass over the output right after the conv, while it is still in cache: oneDNN 2.6's
// eltwise_swish post-op costs about a cycle per element and doubles depthwise and stem convs.
#include <fmt/format.h>
#include <omp.h>

#include "runtime/kernels/cpu/dnnl_state.h"
#include "runtime/kernels/cpu/ops.h"
#include "runtime/kernels/cpu/vmath.h"

namespace lowbit::cpu {
namespace {

using dnnl::memory;
using Tag = dnnl::memory::format_tag;
using DT = dnnl::memory::data_type;

class ConvOp final : public FastOp {
public:
    ConvOp(DnnlState& dnnl, std::string what) : dnnl_(dnnl), what_(std::move(what)) {}

    Status init(const Node& node, std::span<const Operand> ins, const Operand& out, bool silu,
                std::vector<std::string>& warnings) {
        const Shape& x = ins[0].shape;
        const Shape& wt = ins[1].shape;
        const Shape& y = out.shape;
        const int64_t group = node.attr_int("group", 1);
        Window h, w;
        if (!window_2d(node, x, y, {wt[2], wt[3]}, h, w)) {
            return unsupported("{}: attributes outside the fast path", node.describe());
        }
        silu_ = silu;
        has_bias_ = ins.size() > 2 && ins[2].present();
        const memory::dims src_dims = {x[0], x[1], x[2], x[3]};
        const memory::dims dst_dims = {y[0], y[1], y[2], y[3]};
        memory::dims wei_dims;
        if (group == 1) {
            wei_dims = {wt[0], wt[1], wt[2], wt[3]};
            user_wei_md_ = memory::desc(wei_dims, DT::f32, Tag::oihw);
        } else {
            wei_dims = {group, wt[0] / group, wt[1], wt[2], wt[3]};
            user_wei_md_ = memory::desc(wei_dims, DT::f32, Tag::goihw);
        }
        const memory::desc src_md(src_dims, DT::f32, Tag::nhwc);
        const memory::desc dst_md(dst_dims, DT::f32, Tag::nhwc);
        const memory::desc wei_any(wei_dims, DT::f32, Tag::any);
        const memory::desc bias_md({y[1]}, DT::f32, Tag::x);
        // oneDNN counts dilation from 0 (no dilation), ONNX from 1.
        const memory::dims strides = {h.stride, w.stride};
        const memory::dims dilates = {h.dilation - 1, w.dilation - 1};
        const memory::dims pad_l = {h.pad_begin, w.pad_begin};
        const memory::dims pad_r = {h.pad_end, w.pad_end};
        dnnl::primitive_attr attr;
        attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
        auto desc = has_bias_
                        ? dnnl::convolution_forward::desc(
                              dnnl::prop_kind::forward_inference,
                              dnnl::algorithm::convolution_direct, src_md, wei_any, bias_md,
                              dst_md, strides, dilates, pad_l, pad_r)
                        : dnnl::convolution_forward::desc(
                              dnnl::prop_kind::forward_inference,
                              dnnl::algorithm::convolution_direct, src_md, wei_any, dst_md,
                              strides, dilates, pad_l, pad_r);
        pd_ = dnnl::convolution_forward::primitive_desc(desc, attr, dnnl_.engine);
        impl_ = pd_.impl_info_str();
        if (is_dnnl_ref_impl(impl_)) {
            warnings.push_back(fmt::format(
                "{}: oneDNN has only the reference implementation '{}' for input {} weights {}; "
                "using lowbit's reference Conv",
                node.describe(), impl_, shape_str(x), shape_str(wt)));
            return unsupported("reference implementation");
        }
        prim_ = dnnl::convolution_forward(pd_);
        dnnl_.reserve_scratch(pd_.scratchpad_desc().get_size());

        planned_w_ = ins[1].constant->raw();
        wei_ = reorder_weights(planned_w_);
        src_ = memory(src_md, dnnl_.engine, DNNL_MEMORY_NONE);
        dst_ = memory(dst_md, dnnl_.engine, DNNL_MEMORY_NONE);
        if (has_bias_) bias_ = memory(bias_md, dnnl_.engine, DNNL_MEMORY_NONE);
        what_ = fmt::format("Conv {}x{} s{} g{} [{}]{}", wt[2], wt[3], h.stride, group, impl_,
                            silu_ ? " +SiLU" : "");
        return Status::ok();
    }

    Status run(std::span<const Tensor> in, std::span<Tensor> out,
               const ThreadPool& pool) override {
        try {
            memory wei = wei_;
            if (in[1].raw() != planned_w_) wei = reorder_weights(in[1].raw());
            src_.set_data_handle(const_cast<void*>(in[0].raw()));
            dst_.set_data_handle(out[0].raw());
            std::unordered_map<int, memory> args = {
                {DNNL_ARG_SRC, src_},
                {DNNL_ARG_WEIGHTS, wei},
                {DNNL_ARG_DST, dst_},
                {DNNL_ARG_SCRATCHPAD, dnnl_.scratch_memory(pd_.scratchpad_desc())}};
            if (has_bias_) {
                bias_.set_data_handle(const_cast<void*>(in[2].raw()));
                args.emplace(DNNL_ARG_BIAS, bias_);
            }
            prim_.execute(dnnl_.stream, args);
            dnnl_.stream.wait();
        } catch (const dnnl::error& e) {
            return error(StatusCode::Internal, "{}: oneDNN failed: {}", what_, e.what());
        }
        if (silu_) {
            float* y = out[0].data<float>();
            pool.parallel_for(out[0].numel(), 16384, [&](int64_t b, int64_t e) {
                silu_f32(y + b, y + b, e - b);
            });
        }
        return Status::ok();
    }

    std::string describe() const override { return what_; }

private:
    memory reorder_weights(const void* w) {
        memory user(user_wei_md_, dnnl_.engine, const_cast<void*>(w));
        memory dst(pd_.weights_desc(), dnnl_.engine);
        dnnl::reorder(user, dst).execute(dnnl_.stream, user, dst);
        dnnl_.stream.wait();
        return dst;
    }

    DnnlState& dnnl_;
    std::string what_;
    std::string impl_;
    bool silu_ = false;
    bool has_bias_ = false;
    dnnl::convolution_forward::primitive_desc pd_;
    dnnl::convolution_forward prim_;
    memory::desc user_wei_md_;
    const void* planned_w_ = nullptr;
    memory wei_, src_, dst_, bias_;
};

}  // namespace

std::unique_ptr<FastOp> make_conv(DnnlState& dnnl, const Node& node, std::span<const Operand> ins,
                                  const Operand& out, bool silu,
                                  std::vector<std::string>& warnings) {
    if (ins.size() < 2 || ins[0].dtype != DType::Float32 || ins[0].shape.size() != 4 ||
        ins[1].dtype != DType::Float32 || ins[1].shape.size() != 4 || ins[1].constant == nullptr ||
        out.dtype != DType::Float32 || out.shape.size() != 4) {
        return nullptr;
    }
    if (ins.size() > 2 && ins[2].present() &&
        (ins[2].dtype != DType::Float32 || ins[2].constant == nullptr)) {
        return nullptr;
    }
    const int64_t group = node.attr_int("group", 1);
    if (group < 1 || ins[0].shape[1] % group != 0 || ins[1].shape[0] % group != 0 ||
        ins[1].shape[1] * group != ins[0].shape[1] || shape_numel(out.shape) == 0) {
        return nullptr;
    }
    auto op = std::make_unique<ConvOp>(dnnl, node.describe());
    try {
        if (!op->init(node, ins, out, silu, warnings).is_ok()) return nullptr;
    } catch (const dnnl::error& e) {
        warnings.push_back(fmt::format("{}: oneDNN cannot run this Conv ({}); using lowbit's "
                                       "reference Conv",
                                       node.describe(), e.what()));
        return nullptr;
    }
    return op;
}

}  // namespace lowbit::cpu
