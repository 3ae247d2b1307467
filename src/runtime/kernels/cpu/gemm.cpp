// Gemm through oneDNN's matmul primitive (issue 16: the classifier heads of MobileNet, ResNet,
// ConvNeXt): Y = A' * B' + C with A' = A or A^T (transA), B' = B or B^T (transB), float32, plain
// row-major tensors, alpha = 1 and (with C) beta = 1; C absent or a constant [N] or [1, N]
// (the primitive's bias, broadcast over rows). Transposes are strides of the memory
// descriptors, so nothing is copied. Other attribute values: the reference Gemm.
#include <fmt/format.h>

#include "runtime/kernels/cpu/dnnl_state.h"
#include "runtime/kernels/cpu/ops.h"

namespace lowbit::cpu {
namespace {

using dnnl::memory;
using DT = dnnl::memory::data_type;
using Tag = dnnl::memory::format_tag;

class GemmOp final : public FastOp {
public:
    explicit GemmOp(DnnlState& dnnl) : dnnl_(dnnl) {}

    bool init(const Node& node, std::span<const Operand> ins, const Operand& out,
              std::vector<std::string>& warnings) {
        const bool ta = node.attr_int("transA", 0) != 0;
        const bool tb = node.attr_int("transB", 0) != 0;
        const int64_t m = out.shape[0], n = out.shape[1];
        const int64_t k = ta ? ins[0].shape[0] : ins[0].shape[1];
        // Logical [M, K] and [K, N]; a transposed operand is the stored array read column-wise.
        const memory::desc a_md({m, k}, DT::f32, ta ? Tag::ba : Tag::ab);
        const memory::desc b_md({k, n}, DT::f32, tb ? Tag::ba : Tag::ab);
        const memory::desc y_md({m, n}, DT::f32, Tag::ab);
        has_bias_ = ins.size() > 2 && ins[2].present();
        dnnl::primitive_attr attr;
        attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
        if (has_bias_) {
            const memory::desc bias_md({1, n}, DT::f32, Tag::ab);
            pd_ = dnnl::matmul::primitive_desc(dnnl::matmul::desc(a_md, b_md, bias_md, y_md), attr,
                                               dnnl_.engine);
            bias_ = memory(bias_md, dnnl_.engine, DNNL_MEMORY_NONE);
        } else {
            pd_ = dnnl::matmul::primitive_desc(dnnl::matmul::desc(a_md, b_md, y_md), attr,
                                               dnnl_.engine);
        }
        const std::string impl = pd_.impl_info_str();
        if (is_dnnl_ref_impl(impl)) {
            warnings.push_back(fmt::format(
                "{}: oneDNN has only '{}'; using lowbit's reference Gemm", node.describe(), impl));
            return false;
        }
        prim_ = dnnl::matmul(pd_);
        dnnl_.reserve(Workspace::Scratchpad, pd_.scratchpad_desc().get_size());
        a_ = memory(a_md, dnnl_.engine, DNNL_MEMORY_NONE);
        b_ = memory(b_md, dnnl_.engine, DNNL_MEMORY_NONE);
        y_ = memory(y_md, dnnl_.engine, DNNL_MEMORY_NONE);
        what_ = fmt::format("Gemm {}x{}x{}{}{} [{}]", m, k, n, ta ? " A^T" : "", tb ? " B^T" : "",
                            impl);
        return true;
    }

    Status run(std::span<const Tensor> in, std::span<Tensor> out, const ThreadPool&) override {
        try {
            a_.set_data_handle(const_cast<void*>(in[0].raw()));
            b_.set_data_handle(const_cast<void*>(in[1].raw()));
            y_.set_data_handle(out[0].raw());
            std::unordered_map<int, memory> args = {
                {DNNL_ARG_SRC, a_},
                {DNNL_ARG_WEIGHTS, b_},
                {DNNL_ARG_DST, y_},
                {DNNL_ARG_SCRATCHPAD, memory(pd_.scratchpad_desc(), dnnl_.engine,
                                             dnnl_.data(Workspace::Scratchpad, 0))}};
            if (has_bias_) {
                bias_.set_data_handle(const_cast<void*>(in[2].raw()));
                args.emplace(DNNL_ARG_BIAS, bias_);
            }
            // One call on the calling thread: classifier heads are small.
            prim_.execute(dnnl_.streams[0], args);
            dnnl_.streams[0].wait();
        } catch (const dnnl::error& e) {
            return error(StatusCode::Internal, "{}: oneDNN failed: {}", what_, e.what());
        }
        return Status::ok();
    }

    std::string describe() const override { return what_; }

private:
    DnnlState& dnnl_;
    std::string what_;
    bool has_bias_ = false;
    dnnl::matmul::primitive_desc pd_;
    dnnl::matmul prim_;
    memory a_, b_, y_, bias_;
};

}  // namespace

std::unique_ptr<FastOp> make_gemm(DnnlState& dnnl, const Node& node, std::span<const Operand> ins,
                                  const Operand& out, std::vector<std::string>& warnings) {
    if (ins.size() < 2 || ins.size() > 3 || out.dtype != DType::Float32 || out.shape.size() != 2 ||
        shape_numel(out.shape) == 0) {
        return nullptr;
    }
    for (size_t i = 0; i < 2; ++i) {
        if (ins[i].dtype != DType::Float32 || ins[i].shape.size() != 2) return nullptr;
    }
    if (node.attr_float("alpha", 1.0f) != 1.0f) return nullptr;
    if (ins.size() == 3 && ins[2].present()) {
        const Shape& c = ins[2].shape;
        const int64_t n = out.shape[1];
        const bool row = (c.size() == 1 && c[0] == n) || (c.size() == 2 && c[0] == 1 && c[1] == n);
        if (ins[2].dtype != DType::Float32 || ins[2].constant == nullptr ||
            node.attr_float("beta", 1.0f) != 1.0f || !row) {
            return nullptr;
        }
    }
    auto op = std::make_unique<GemmOp>(dnnl);
    try {
        if (!op->init(node, ins, out, warnings)) return nullptr;
    } catch (const dnnl::error&) {
        return nullptr;
    }
    return op;
}

}  // namespace lowbit::cpu
