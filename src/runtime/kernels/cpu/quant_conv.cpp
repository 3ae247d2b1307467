#include "runtime/quant_conv.h"

#include <fmt/format.h>

#include <cstring>
#include <oneapi/dnnl/dnnl.hpp>
#include <vector>

#include "core/thread_pool.h"
#include "runtime/kernels/cpu/dnnl_state.h"
#include "runtime/kernels/cpu/ops.h"

// QuantConv is a public runtime type (runtime/quant_conv.h); the CPU kernels' helpers are not.
namespace lowbit {

using cpu::is_dnnl_ref_impl;
using cpu::Window;
using cpu::window_2d;
using dnnl::memory;
using Tag = dnnl::memory::format_tag;
using DT = dnnl::memory::data_type;

struct QuantConv::Impl {
    dnnl::engine engine{dnnl::engine::kind::cpu, 0};
    dnnl::stream stream{engine};
    dnnl::convolution_forward prim;
    memory src, dst, weights, scratch;
    std::string impl;
};

QuantConv::QuantConv(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
QuantConv::~QuantConv() = default;

const std::string& QuantConv::impl() const {
    return impl_->impl;
}

Result<std::unique_ptr<QuantConv>> QuantConv::create(const Node& node, const Shape& x,
                                                     const Shape& y, const Tensor& weights,
                                                     QuantConvValues values) {
    const bool int8 = values == QuantConvValues::Int8;
    const Shape& wt = weights.shape();
    if (x.size() != 4 || y.size() != 4 || wt.size() != 4 || x[0] != 1 || y[0] != 1) {
        return unsupported(
            "{}: the quantized conv takes 2-D convs of batch 1 (input {}, "
            "weights {})",
            node.describe(), shape_str(x), shape_str(wt));
    }
    if (weights.dtype() != (int8 ? DType::Int8 : DType::Float32) || wt[0] != y[1]) {
        return invalid("{}: the quantized conv needs {} weights with {} output channels",
                       node.describe(), int8 ? "int8" : "float32", y[1]);
    }
    Window h, w;
    if (!window_2d(node, x, y, {wt[2], wt[3]}, h, w)) {
        return unsupported("{}: attributes outside the quantized conv", node.describe());
    }
    const int64_t group = node.attr_int("group", 1);
    if (group < 1 || x[1] % group != 0 || y[1] % group != 0 || wt[1] != x[1] / group) {
        return invalid("{}: group {} does not divide input {} / weights {}", node.describe(), group,
                       shape_str(x), shape_str(wt));
    }
    // E4M3 values become bfloat16 exactly: their low 16 float bits are zero.
    std::vector<uint16_t> bf16;
    const void* user_data = weights.raw();
    if (!int8) {
        bf16.resize(static_cast<size_t>(weights.numel()));
        const float* wf = weights.data<float>();
        for (size_t i = 0; i < bf16.size(); ++i) {
            uint32_t bits = 0;
            std::memcpy(&bits, &wf[i], 4);
            if ((bits & 0xFFFFu) != 0) {
                return invalid("{}: weight {} is not exact in bfloat16 (FP8 E4M3 values are)",
                               node.describe(), wf[i]);
            }
            bf16[i] = static_cast<uint16_t>(bits >> 16);
        }
        user_data = bf16.data();
    }
    // Primitives size their parallel work by OpenMP's thread count at creation: one thread
    // (this may run outside any ThreadPool).
    single_threaded_openmp();
    auto p = std::make_unique<Impl>();
    try {
        const memory::dims wei_dims = group == 1
                                          ? memory::dims{wt[0], wt[1], wt[2], wt[3]}
                                          : memory::dims{group, wt[0] / group, wt[1], wt[2], wt[3]};
        const DT vt = int8 ? DT::s8 : DT::bf16;
        const memory::desc src_md({1, x[1], x[2], x[3]}, vt, Tag::nhwc);
        const memory::desc dst_md({1, y[1], y[2], y[3]}, DT::f32, Tag::nhwc);
        const memory::desc wei_md(wei_dims, vt, Tag::any);
        dnnl::primitive_attr attr;
        attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
        // oneDNN counts dilation from 0 (no dilation), ONNX from 1.
        const dnnl::convolution_forward::desc desc(
            dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct, src_md, wei_md,
            dst_md, {h.stride, w.stride}, {h.dilation - 1, w.dilation - 1},
            {h.pad_begin, w.pad_begin}, {h.pad_end, w.pad_end});
        const dnnl::convolution_forward::primitive_desc pd(desc, attr, p->engine);
        p->impl = pd.impl_info_str();
        const bool exact = !int8 || p->impl.find("vnni") != std::string::npos ||
                           p->impl.find("amx") != std::string::npos;
        if (is_dnnl_ref_impl(p->impl) || !exact) {
            return unsupported("{}: oneDNN's {} conv here is '{}', not a fast exact kernel",
                               node.describe(), int8 ? "int8" : "bf16", p->impl);
        }
        p->prim = dnnl::convolution_forward(pd);
        p->src = memory(src_md, p->engine, DNNL_MEMORY_NONE);
        p->dst = memory(dst_md, p->engine, DNNL_MEMORY_NONE);
        p->scratch = memory(pd.scratchpad_desc(), p->engine);
        // The weights in oneDNN's preferred format (for int8 src that includes the compensation
        // of the u8 shift, computed by the reorder).
        const memory::desc user_md(wei_dims, vt, group == 1 ? Tag::oihw : Tag::goihw);
        memory user(user_md, p->engine, const_cast<void*>(user_data));
        p->weights = memory(pd.weights_desc(), p->engine);
        dnnl::reorder(user, p->weights).execute(p->stream, user, p->weights);
        p->stream.wait();
    } catch (const dnnl::error& e) {
        return unsupported("{}: oneDNN has no {} conv for input {} weights {}: {}", node.describe(),
                           int8 ? "int8" : "bf16", shape_str(x), shape_str(wt), e.what());
    }
    return std::unique_ptr<QuantConv>(new QuantConv(std::move(p)));
}

Status QuantConv::run(const void* x, float* y) {
    Impl& p = *impl_;
    try {
        p.src.set_data_handle(const_cast<void*>(x));
        p.dst.set_data_handle(y);
        p.prim.execute(p.stream, {{DNNL_ARG_SRC, p.src},
                                  {DNNL_ARG_WEIGHTS, p.weights},
                                  {DNNL_ARG_DST, p.dst},
                                  {DNNL_ARG_SCRATCHPAD, p.scratch}});
        p.stream.wait();
    } catch (const dnnl::error& e) {
        return error(StatusCode::Internal, "quantized conv [{}] failed: {}", p.impl, e.what());
    }
    return Status::ok();
}

}  // namespace lowbit
