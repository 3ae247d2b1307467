// MatMul through oneDNN's matmul primitive: float32, A [..., M, K] x B [..., K, N] with ranks 2-4
// and NumPy broadcasting of the batch dims (a smaller-rank operand gets leading 1s, which is
// how oneDNN expresses a broadcast batch dim). Plain row-major layouts.
#include <fmt/format.h>

#include "runtime/kernels/cpu/dnnl_state.h"
#include "runtime/kernels/cpu/ops.h"

namespace lowbit::cpu {
namespace {

using dnnl::memory;
using DT = dnnl::memory::data_type;

memory::format_tag plain_tag(size_t rank) {
    switch (rank) {
        case 2: return memory::format_tag::ab;
        case 3: return memory::format_tag::abc;
        default: return memory::format_tag::abcd;
    }
}

memory::dims padded(const Shape& s, size_t rank) {
    memory::dims d(rank - s.size(), 1);
    d.insert(d.end(), s.begin(), s.end());
    return d;
}

class MatMulOp final : public FastOp {
public:
    explicit MatMulOp(DnnlState& dnnl) : dnnl_(dnnl) {}

    bool init(const Node& node, std::span<const Operand> ins, const Operand& out,
              std::vector<std::string>& warnings) {
        const size_t rank = out.shape.size();
        const memory::desc a_md(padded(ins[0].shape, rank), DT::f32, plain_tag(rank));
        const memory::desc b_md(padded(ins[1].shape, rank), DT::f32, plain_tag(rank));
        const memory::desc y_md(padded(out.shape, rank), DT::f32, plain_tag(rank));
        dnnl::primitive_attr attr;
        attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
        pd_ =
            dnnl::matmul::primitive_desc(dnnl::matmul::desc(a_md, b_md, y_md), attr, dnnl_.engine);
        const std::string impl = pd_.impl_info_str();
        if (is_dnnl_ref_impl(impl)) {
            warnings.push_back(fmt::format(
                "{}: oneDNN has only '{}' for {} x {}; using lowbit's "
                "reference MatMul",
                node.describe(), impl, shape_str(ins[0].shape), shape_str(ins[1].shape)));
            return false;
        }
        prim_ = dnnl::matmul(pd_);
        dnnl_.reserve(Workspace::Scratchpad, pd_.scratchpad_desc().get_size());
        a_ = memory(a_md, dnnl_.engine, DNNL_MEMORY_NONE);
        b_ = memory(b_md, dnnl_.engine, DNNL_MEMORY_NONE);
        y_ = memory(y_md, dnnl_.engine, DNNL_MEMORY_NONE);
        what_ = fmt::format("MatMul {}x{} [{}]", shape_str(ins[0].shape), shape_str(ins[1].shape),
                            impl);
        return true;
    }

    Status run(std::span<const Tensor> in, std::span<Tensor> out, const ThreadPool&) override {
        try {
            a_.set_data_handle(const_cast<void*>(in[0].raw()));
            b_.set_data_handle(const_cast<void*>(in[1].raw()));
            y_.set_data_handle(out[0].raw());
            // One primitive call on the calling thread (pool thread 0): YOLO's matmuls are tiny.
            prim_.execute(dnnl_.streams[0],
                          {{DNNL_ARG_SRC, a_},
                           {DNNL_ARG_WEIGHTS, b_},
                           {DNNL_ARG_DST, y_},
                           {DNNL_ARG_SCRATCHPAD, memory(pd_.scratchpad_desc(), dnnl_.engine,
                                                        dnnl_.data(Workspace::Scratchpad, 0))}});
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
    dnnl::matmul::primitive_desc pd_;
    dnnl::matmul prim_;
    memory a_, b_, y_;
};

}  // namespace

std::unique_ptr<FastOp> make_matmul(DnnlState& dnnl, const Node& node, std::span<const Operand> ins,
                                    const Operand& out, std::vector<std::string>& warnings) {
    if (ins.size() != 2 || out.dtype != DType::Float32) return nullptr;
    for (const Operand& o : ins) {
        if (o.dtype != DType::Float32 || o.shape.size() < 2 || o.shape.size() > 4) return nullptr;
    }
    if (out.shape.size() < 2 || out.shape.size() > 4 || shape_numel(out.shape) == 0) {
        return nullptr;
    }
    auto op = std::make_unique<MatMulOp>(dnnl);
    try {
        if (!op->init(node, ins, out, warnings)) return nullptr;
    } catch (const dnnl::error&) {
        return nullptr;  // e.g. a broadcast pattern this oneDNN build rejects: reference kernel
    }
    return op;
}

}  // namespace lowbit::cpu
