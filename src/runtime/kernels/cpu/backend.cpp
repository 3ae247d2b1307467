// CpuBackend::choose(): which fast op runs a node and in which layouts its tensors live.
//
// Layout rules (research/engine-perf.md, "Layout": channels-last end to end, reorders only
// where a non-NHWC op reads an NHWC tensor):
//  - Conv (float32, 2-D, constant weights) reads and writes NHWC;
//  - layout-blind elementwise ops whose full-size operands include an NHWC tensor run on NHWC
//    data (their other full-size operands are reordered to NHWC, scalars are read as is), and
//    so do Add/Sub/Mul/Div with a per-channel [1, C, 1, 1] operand (fast kernel only);
//  - Concat/Split on the channel axis, MaxPool and nearest integer-scale Resize stay NHWC when
//    their (first) input is NHWC;
//  - float16 Conv, MatMul, Softmax, MaxPool and Resize run their float32 op on widened inputs
//    (fp16_via_fp32.cpp), in the float32 op's layouts;
//  - everything else reads plain tensors; the executor inserts one reorder per NHWC tensor
//    that such an op reads.
#include <algorithm>
#include <array>

#include "runtime/kernels/cpu/dnnl_state.h"
#include "runtime/kernels/cpu/fast_ops.h"
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

CpuBackend::CpuBackend(int n_threads, bool conv_winograd)
    : n_threads_(n_threads), dnnl_(std::make_unique<DnnlState>(n_threads)) {
    dnnl_->conv_winograd = conv_winograd;
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
    if (is_float32_only_fast_op(t) && std::any_of(ins.begin(), ins.end(), [](const Operand& o) {
            return o.dtype == DType::Float16;
        })) {
        return choose_via_float32(ins, outs, [&](auto ins32, auto outs32) {
            return choose(node, opset, ins32, outs32, fusion, warnings);
        });
    }
    auto nhwc_in = [&](size_t i) { return i < ins.size() && ins[i].layout == Layout::Nhwc; };

    if (t == "Conv") {
        if (outs.size() == 1) {
            p.op = make_conv(*dnnl_, node, ins, outs[0], fusion, n_threads_, warnings);
            if (p.op) {
                p.in_layouts[0] = Layout::Nhwc;
                if (fusion.residual) p.in_layouts[3] = Layout::Nhwc;
                p.out_layouts[0] = Layout::Nhwc;
            }
        }
        return p;
    }
    if (fusion.any()) return p;

    if (is_layout_blind_op(t) && outs.size() == 1) {
        const Operand& out = outs[0];
        bool uniform = true;  // every operand full-size or a scalar
        bool any_nhwc = false;
        for (const Operand& o : ins) {
            if (!o.present()) continue;
            if (o.shape == out.shape) {
                any_nhwc |= o.layout == Layout::Nhwc;
            } else if (shape_numel(o.shape) != 1) {
                uniform = false;
            }
        }
        const bool binary = t == "Add" || t == "Sub" || t == "Mul" || t == "Div";
        const Layout l = any_nhwc && out.shape.size() == 4 ? Layout::Nhwc : Layout::Plain;
        if (binary) p.op = make_binary(node, ins, out, l);
        if (!p.op && !uniform) return p;  // broadcasting beyond scalars: reference, plain
        if (!p.op && t == "Sigmoid") p.op = make_sigmoid(node, ins);
        if (!p.op) p.op = make_parallel_ref(node, opset, ins, outs, n_threads_);
        for (size_t i = 0; i < ins.size(); ++i) {
            if (ins[i].present() && ins[i].shape == out.shape) p.in_layouts[i] = l;
        }
        p.out_layouts[0] = l;
        return p;
    }
    if (t == "Concat" && outs.size() == 1 &&
        std::any_of(ins.begin(), ins.end(),
                    [](const Operand& o) { return o.layout == Layout::Nhwc; })) {
        p.op = make_concat_nhwc(node, ins, outs[0]);
        if (p.op) {
            p.in_layouts.assign(ins.size(), Layout::Nhwc);
            p.out_layouts[0] = Layout::Nhwc;
        }
        return p;
    }
    if (t == "Split" && nhwc_in(0)) {
        p.op = make_split_nhwc(node, ins, outs);
        if (p.op) {
            p.in_layouts[0] = Layout::Nhwc;
            p.out_layouts.assign(outs.size(), Layout::Nhwc);
        }
        return p;
    }
    if (t == "MaxPool" && nhwc_in(0)) {
        p.op = make_maxpool_nhwc(node, ins, outs);
        if (p.op) {
            p.in_layouts[0] = Layout::Nhwc;
            p.out_layouts[0] = Layout::Nhwc;
        }
        return p;
    }
    if (t == "Resize" && nhwc_in(0) && outs.size() == 1) {
        p.op = make_resize_nhwc(node, opset, ins, outs[0]);
        if (p.op) {
            p.in_layouts[0] = Layout::Nhwc;
            p.out_layouts[0] = Layout::Nhwc;
        }
        return p;
    }
    if (t == "MatMul" && outs.size() == 1) {
        p.op = make_matmul(*dnnl_, node, ins, outs[0], warnings);
        return p;
    }
    if (t == "Transpose" && outs.size() == 1) {
        p.op = make_transpose(node, ins);
        return p;
    }
    if (t == "Softmax" && outs.size() == 1) {
        p.op = make_softmax(node, opset, ins);
        return p;
    }
    return p;
}

}  // namespace lowbit::cpu
