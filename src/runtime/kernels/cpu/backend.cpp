// CpuBackend: the oneDNN state of one executor and choose(), which walks the kernel table
// (kernel_table.h; the rows and the layout rules are in kernel_table.cpp). Also the list of
// layout-blind elementwise ops that the table's elementwise rows accept.
#include <algorithm>
#include <array>

#include "runtime/kernels/cpu/dnnl_state.h"
#include "runtime/kernels/cpu/fast_ops.h"
#include "runtime/kernels/cpu/kernel_table.h"
#include "runtime/kernels/cpu/ops.h"

namespace lowbit::cpu {

bool is_layout_blind_op(const std::string& op_type) {
    // clang-format off
    static constexpr std::array kOps = {
        "Add", "Sub", "Mul", "Div", "Pow", "Mod", "Max", "Min", "Sum", "Mean", "Equal", "Less",
        "Greater", "LessOrEqual", "GreaterOrEqual", "And", "Or", "Xor", "Not", "Where",
        "Sigmoid", "Relu", "LeakyRelu", "HardSigmoid", "HardSwish", "Sqrt", "Exp", "Log", "Neg",
        "Abs", "Tanh", "Erf", "Floor", "Ceil", "Round", "Reciprocal", "Sign", "Softplus", "Elu",
        "Selu", "Clip", "Cast", "Identity", "QuantizeLinear", "DequantizeLinear"};
    // clang-format on
    return std::find(kOps.begin(), kOps.end(), op_type) != kOps.end();
}

CpuBackend::CpuBackend(int n_threads, bool conv_winograd, bool lowp, bool int8_direct)
    : n_threads_(n_threads), dnnl_(std::make_unique<DnnlState>(n_threads)) {
    dnnl_->conv_winograd = conv_winograd;
    dnnl_->lowp = lowp;
    dnnl_->int8_direct = int8_direct;
}

CpuBackend::~CpuBackend() = default;

FastPlan CpuBackend::choose(const Node& node, int64_t opset, std::span<const Operand> ins,
                            std::span<const Operand> outs, ConvFusion fusion,
                            std::vector<std::string>& warnings) {
    FastPlan p;
    p.in_layouts.assign(ins.size(), Layout::Plain);
    p.out_layouts.assign(outs.size(), Layout::Plain);
    if (!node.domain.empty() && node.domain != "ai.onnx") return p;
    const std::string& t = node.op_type;
    const FastChoice c{*this, node, opset, ins, outs, fusion, warnings};
    if (is_float32_only_fast_op(t) && std::any_of(ins.begin(), ins.end(), [](const Operand& o) {
            return o.dtype == DType::Float16;
        })) {
        // Rows that take float16 operands themselves (conv_fp16_bf16) go first.
        for (const FastEntry& e : fast_kernel_table()) {
            if (!e.takes_float16 || !e.applies(c)) continue;
            if (!(p.op = e.make(c))) continue;
            e.layouts(c, p);
            p.entry = e.name;
            return p;
        }
        return choose_via_float32(ins, outs, [&](auto ins32, auto outs32) {
            return choose(node, opset, ins32, outs32, fusion, warnings);
        });
    }
    // First row that takes the node wins (kernel_table.h).
    for (const FastEntry& e : fast_kernel_table()) {
        if (!e.applies(c)) continue;
        if (e.make) {
            p.op = e.make(c);
            if (!p.op) continue;
        }
        e.layouts(c, p);
        p.entry = e.name;
        return p;
    }
    return p;
}

}  // namespace lowbit::cpu
