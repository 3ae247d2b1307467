// The rows of the CPU kernel table (kernel_table.h): which fast op runs a node and in which
// layouts its tensors live.
//
// Layout rules (research/engine-perf.md, "Layout": channels-last end to end, reorders only
// where a non-NHWC op reads an NHWC tensor):
//  - the int8 (also W4A8 and FP8) Q/DQ conv step reads its int8 input and residual NHWC and
//    writes NHWC (int8 or float32), so int8 activations stay channels-last between quantized
//    convs;
//  - Conv and ConvTranspose (float32, 2-D, constant weights) read and write NHWC;
//  - layout-blind elementwise ops whose full-size operands include an NHWC tensor run on NHWC
//    data (their other full-size operands are reordered to NHWC, scalars are read as is), and
//    so do Add/Sub/Mul/Div with a per-channel [1, C, 1, 1] operand (fast kernel only);
//  - Concat/Split on the channel axis, MaxPool, GlobalAveragePool, BatchNormalization,
//    nearest integer-scale Resize and constant Pad of H/W stay NHWC when their (first) input
//    is NHWC;
//  - a Transpose [0,2,3,1] of an NHWC-stored tensor writes it plain, and [0,3,1,2] of a plain
//    4-D tensor writes it NHWC: both are the same bytes, so one copy (ConvNeXt's blocks);
//    fused into a LayerNorm step (before or after it) or a MatMul step (after it), no copy:
//    the step reads or writes the NHWC tensor;
//  - float16 Conv runs as a bf16 conv where the CPU has AVX512-BF16/AMX (conv_fp16_bf16, a row
//    that takes float16 itself; ExecutorOptions::lowp_kernels off: not used);
//  - else float16 Conv, MatMul, Softmax, MaxPool and Resize run their float32 op on widened inputs
//    (fp16_via_fp32.cpp, applied by CpuBackend::choose before the walk), in the float32 op's
//    layouts;
//  - everything else reads plain tensors; the executor inserts one reorder per NHWC tensor
//    that such an op reads.
#include "runtime/kernels/cpu/kernel_table.h"

#include <algorithm>

#include "runtime/kernels/cpu/ops.h"

namespace lowbit::cpu {
namespace {

bool single_output(const FastChoice& c) {
    return c.outs.size() == 1 && !c.fusion.any();
}

// ---- layout-blind elementwise ops ----------------------------------------------------------

// Every present operand is full-size (the output's shape) or a scalar.
bool uniform_operands(const FastChoice& c) {
    for (const Operand& o : c.ins) {
        if (o.present() && o.shape != c.outs[0].shape && shape_numel(o.shape) != 1) return false;
    }
    return true;
}

// NHWC when a full-size operand is stored NHWC (4-D outputs only), else plain.
Layout elementwise_layout(const FastChoice& c) {
    const Operand& out = c.outs[0];
    bool any_nhwc = false;
    for (const Operand& o : c.ins) {
        if (o.present() && o.shape == out.shape) any_nhwc |= o.layout == Layout::Nhwc;
    }
    return any_nhwc && out.shape.size() == 4 ? Layout::Nhwc : Layout::Plain;
}

bool elementwise_uniform(const FastChoice& c) {
    return single_output(c) && is_layout_blind_op(c.node.op_type) && uniform_operands(c);
}

void elementwise_layouts(const FastChoice& c, FastPlan& p) {
    const Layout l = elementwise_layout(c);
    for (size_t i = 0; i < c.ins.size(); ++i) {
        if (c.ins[i].present() && c.ins[i].shape == c.outs[0].shape) p.in_layouts[i] = l;
    }
    p.out_layouts[0] = l;
}

// ---- layout rules of the other rows --------------------------------------------------------

void plain_layouts(const FastChoice&, FastPlan&) {}

void conv_layouts(const FastChoice& c, FastPlan& p) {
    p.in_layouts[0] = Layout::Nhwc;
    if (c.fusion.residual) p.in_layouts[3] = Layout::Nhwc;
    p.out_layouts[0] = Layout::Nhwc;
}

// Input 0 and every output NHWC (Split, MaxPool, Resize); other inputs plain (parameters).
void nhwc_data_layouts(const FastChoice& c, FastPlan& p) {
    p.in_layouts[0] = Layout::Nhwc;
    p.out_layouts.assign(c.outs.size(), Layout::Nhwc);
}

void all_nhwc_layouts(const FastChoice& c, FastPlan& p) {
    p.in_layouts.assign(c.ins.size(), Layout::Nhwc);
    p.out_layouts.assign(c.outs.size(), Layout::Nhwc);
}

bool is_op(const FastChoice& c, std::string_view op) {
    return c.node.op_type == op;
}

// clang-format off
const FastEntry kTable[] = {
    {"qconv_int8", "Q/DQ Conv as one oneDNN int8 conv, +SiLU, +residual Add, ->QuantizeLinear; NHWC",
     [](const FastChoice& c) {
         return is_op(c, "Conv") && c.outs.size() == 1 && c.fusion.quant != nullptr &&
                c.fusion.quant->codes == DType::Int8 && c.fusion.quant->w_codes != nullptr &&
                c.fusion.quant->w_codes->dtype() == DType::Int8;
     },
     [](const FastChoice& c) {
         return make_qconv(c.backend.dnnl(), c.node, c.ins, c.outs[0], c.fusion,
                           c.backend.n_threads());
     },
     conv_layouts},
    {"qconv_w4a8", "Q/DQ Conv, INT4 weights (per output channel) and int8 activations, on the int8 conv; NHWC",
     [](const FastChoice& c) {
         return is_op(c, "Conv") && c.outs.size() == 1 && c.fusion.quant != nullptr &&
                c.fusion.quant->codes == DType::Int8 && c.fusion.quant->w_codes != nullptr &&
                c.fusion.quant->w_codes->dtype() == DType::Int4;
     },
     [](const FastChoice& c) {
         return make_qconv(c.backend.dnnl(), c.node, c.ins, c.outs[0], c.fusion,
                           c.backend.n_threads());
     },
     conv_layouts},
    {"qconv_fp8", "FP8 E4M3 Q/DQ Conv as one oneDNN bf16 conv, +SiLU, +residual Add, ->QuantizeLinear; NHWC",
     [](const FastChoice& c) {
         return is_op(c, "Conv") && c.outs.size() == 1 && c.fusion.quant != nullptr &&
                c.fusion.quant->codes == DType::Float8E4M3FN;
     },
     [](const FastChoice& c) {
         return make_fp8conv(c.backend.dnnl(), c.node, c.ins, c.outs[0], c.fusion,
                             c.backend.n_threads());
     },
     conv_layouts},
    {"conv_fp16_bf16", "Conv 2-D float16, constant weights, as a oneDNN bf16 conv (rounds to bf16), +SiLU; NHWC",
     [](const FastChoice& c) {
         // The bf16 conv applies SiLU and the residual only: a folded BN or another
         // activation (float patterns) goes to the widening path, which applies them all.
         return is_op(c, "Conv") && c.outs.size() == 1 && c.fusion.quant == nullptr &&
                !c.fusion.float_only() && !c.ins.empty() && c.ins[0].dtype == DType::Float16;
     },
     [](const FastChoice& c) {
         return make_fp16conv(c.backend.dnnl(), c.node, c.ins, c.outs[0], c.fusion,
                              c.backend.n_threads());
     },
     conv_layouts, true},
    {"qmove_int8", "Q/DQ Concat (channels) / MaxPool ->QuantizeLinear on int8 codes, requantized by table; NHWC",
     [](const FastChoice& c) {
         return (is_op(c, "Concat") || is_op(c, "MaxPool")) && c.fusion.qmove != nullptr;
     },
     [](const FastChoice& c) { return make_qmove(c.node, c.opset, c.ins, c.outs[0], *c.fusion.qmove); },
     all_nhwc_layouts},
    {"conv", "Conv 2-D float32, constant weights (oneDNN), +SiLU, +residual Add; NHWC",
     [](const FastChoice& c) {
         return is_op(c, "Conv") && c.outs.size() == 1 && c.fusion.quant == nullptr;
     },
     [](const FastChoice& c) {
         return make_conv(c.backend.dnnl(), c.node, c.ins, c.outs[0], c.fusion,
                          c.backend.n_threads(), c.warnings);
     },
     conv_layouts},
    {"deconv_taps", "ConvTranspose kernel == stride float32 as matmul + tap scatter, +BN, +SiLU/Relu, into concat slices; NHWC",
     [](const FastChoice& c) {
         return is_op(c, "ConvTranspose") && c.outs.size() == 1 && c.fusion.quant == nullptr &&
                !c.fusion.residual;
     },
     [](const FastChoice& c) {
         return make_deconv_taps(c.backend.dnnl(), c.node, c.ins, c.outs[0], c.fusion,
                                 c.backend.n_threads());
     },
     conv_layouts},
    {"deconv", "ConvTranspose 2-D float32, constant weights (oneDNN), +BN, +SiLU/Relu, +Add; NHWC",
     [](const FastChoice& c) {
         return is_op(c, "ConvTranspose") && c.outs.size() == 1 && c.fusion.quant == nullptr;
     },
     [](const FastChoice& c) {
         return make_deconv(c.backend.dnnl(), c.node, c.ins, c.outs[0], c.fusion,
                            c.backend.n_threads(), c.warnings);
     },
     conv_layouts},
    {"gelu", "GELU Erf chain Div->Erf->Add->Mul->Mul float32, fused (one pass); any layout",
     [](const FastChoice& c) {
         return is_op(c, "Div") && c.fusion.gelu && c.ins.size() == 1 && c.outs.size() == 1 &&
                c.ins[0].shape == c.outs[0].shape;
     },
     [](const FastChoice& c) {
         return make_gelu(c.node, c.ins, c.outs[0], c.fusion.gelu_div);
     },
     elementwise_layouts},
    {"layer_norm", "LayerNorm over the last axis (ReduceMean..Div [+Mul, Add], or LayerNormalization) float32, fused, [+Transposes NCHW<->NHWC]",
     [](const FastChoice& c) {
         return (is_op(c, "ReduceMean") || is_op(c, "Transpose") ||
                 is_op(c, "LayerNormalization")) &&
                c.fusion.layer_norm != nullptr && c.ins.size() == 3;
     },
     [](const FastChoice& c) { return make_layer_norm(c.ins, *c.fusion.layer_norm); },
     [](const FastChoice& c, FastPlan& p) {
         p.in_layouts[0] = c.fusion.layer_norm->in_nhwc ? Layout::Nhwc : Layout::Plain;
         p.out_layouts[0] = c.fusion.layer_norm->out_nhwc ? Layout::Nhwc : Layout::Plain;
     }},
    {"binary", "Add/Sub/Mul/Div float32: full-size, scalar or per-channel operands; any layout",
     [](const FastChoice& c) {
         const std::string& t = c.node.op_type;
         return single_output(c) && (t == "Add" || t == "Sub" || t == "Mul" || t == "Div");
     },
     [](const FastChoice& c) {
         return make_binary(c.node, c.ins, c.outs[0], elementwise_layout(c));
     },
     elementwise_layouts},
    {"pow_square", "Pow float32 with the constant exponent 2 (x * x); any layout",
     [](const FastChoice& c) { return is_op(c, "Pow") && elementwise_uniform(c); },
     [](const FastChoice& c) { return make_pow_square(c.node, c.ins, c.outs[0]); },
     elementwise_layouts},
    {"erf", "Erf float32 (vectorized); any layout",
     [](const FastChoice& c) { return is_op(c, "Erf") && elementwise_uniform(c); },
     [](const FastChoice& c) { return make_erf(c.node, c.ins); },
     elementwise_layouts},
    {"sigmoid", "Sigmoid float32 (vectorized); any layout",
     [](const FastChoice& c) { return is_op(c, "Sigmoid") && elementwise_uniform(c); },
     [](const FastChoice& c) { return make_sigmoid(c.node, c.ins); },
     elementwise_layouts},
    {"qdq_int8", "QuantizeLinear / DequantizeLinear int8 per-tensor, zero point 0 (vectorized); any layout",
     [](const FastChoice& c) {
         return (is_op(c, "QuantizeLinear") || is_op(c, "DequantizeLinear")) &&
                elementwise_uniform(c);
     },
     [](const FastChoice& c) { return make_qdq_int8(c.node, c.ins, c.outs[0]); },
     elementwise_layouts},
    {"qdq_fp8", "QuantizeLinear / DequantizeLinear float8e4m3fn per-tensor, zero point 0 (vectorized); any layout",
     [](const FastChoice& c) {
         return (is_op(c, "QuantizeLinear") || is_op(c, "DequantizeLinear")) &&
                elementwise_uniform(c);
     },
     [](const FastChoice& c) { return make_qdq_fp8(c.node, c.ins, c.outs[0]); },
     elementwise_layouts},
    {"parallel_ref", "layout-blind elementwise op: its reference kernel over slices, in parallel",
     elementwise_uniform,
     [](const FastChoice& c) {
         return make_parallel_ref(c.node, c.opset, c.ins, c.outs, c.backend.n_threads());
     },
     elementwise_layouts},
    {"ref_elementwise", "layout-blind elementwise op: its reference kernel, in the stored layout",
     elementwise_uniform, nullptr, elementwise_layouts},
    {"concat_nhwc", "Concat on channels of NHWC inputs, any dtype",
     [](const FastChoice& c) {
         return is_op(c, "Concat") && single_output(c) && !c.fusion.any() &&
                std::any_of(c.ins.begin(), c.ins.end(),
                            [](const Operand& o) { return o.layout == Layout::Nhwc; });
     },
     [](const FastChoice& c) { return make_concat_nhwc(c.node, c.ins, c.outs[0]); },
     all_nhwc_layouts},
    {"concat_plain", "Concat of plain inputs along an axis with a dim > 1 before it, any dtype (block copies)",
     [](const FastChoice& c) {
         return is_op(c, "Concat") && single_output(c) && !c.fusion.any() &&
                std::all_of(c.ins.begin(), c.ins.end(),
                            [](const Operand& o) { return o.layout == Layout::Plain; });
     },
     [](const FastChoice& c) { return make_concat_plain(c.node, c.ins, c.outs[0]); },
     plain_layouts},
    {"split_nhwc", "Split on channels of an NHWC input, any dtype",
     [](const FastChoice& c) { return is_op(c, "Split") && !c.fusion.any() && c.nhwc_in(0); },
     [](const FastChoice& c) { return make_split_nhwc(c.node, c.ins, c.outs); },
     nhwc_data_layouts},
    {"maxpool_nhwc", "MaxPool 2-D float32 on an NHWC input",
     [](const FastChoice& c) { return is_op(c, "MaxPool") && !c.fusion.any() && c.nhwc_in(0); },
     [](const FastChoice& c) { return make_maxpool_nhwc(c.node, c.ins, c.outs); },
     nhwc_data_layouts},
    {"pad_nhwc", "Pad constant of H/W on an NHWC input, any dtype",
     [](const FastChoice& c) { return is_op(c, "Pad") && single_output(c) && c.nhwc_in(0); },
     [](const FastChoice& c) { return make_pad_nhwc(c.node, c.opset, c.ins, c.outs[0]); },
     nhwc_data_layouts},
    {"global_avgpool_nhwc", "GlobalAveragePool 2-D float32 on an NHWC input",
     [](const FastChoice& c) {
         return is_op(c, "GlobalAveragePool") && single_output(c) && c.nhwc_in(0);
     },
     [](const FastChoice& c) { return make_global_avgpool_nhwc(c.ins, c.outs); },
     nhwc_data_layouts},
    {"batchnorm_nhwc", "BatchNormalization (inference) 2-D float32 on an NHWC input",
     [](const FastChoice& c) {
         return is_op(c, "BatchNormalization") && single_output(c) && c.nhwc_in(0);
     },
     [](const FastChoice& c) { return make_batchnorm_nhwc(c.node, c.ins, c.outs); },
     nhwc_data_layouts},
    {"resize_nhwc", "Resize nearest, integer H/W up-scaling, on an NHWC input",
     [](const FastChoice& c) { return is_op(c, "Resize") && single_output(c) && c.nhwc_in(0); },
     [](const FastChoice& c) { return make_resize_nhwc(c.node, c.opset, c.ins, c.outs[0]); },
     nhwc_data_layouts},
    {"matmul", "MatMul float32 rank 2-4 (oneDNN), +bias Add along the last axis [+Transpose to NHWC, *scale, +residual]; plain",
     [](const FastChoice& c) {
         return is_op(c, "MatMul") && c.outs.size() == 1 &&
                (!c.fusion.any() || (c.fusion.matmul_bias && !c.fusion.silu &&
                                     !c.fusion.residual && !c.fusion.quant && !c.fusion.qmove &&
                                     !c.fusion.bn && !c.fusion.relu && !c.fusion.hardswish &&
                                     !c.fusion.hardsigmoid &&
                                     !c.fusion.relu_after && !c.fusion.gelu &&
                                     !c.fusion.layer_norm));
     },
     [](const FastChoice& c) {
         return make_matmul(c.backend.dnnl(), c.node, c.ins, c.outs[0], c.backend.n_threads(),
                            c.fusion, c.warnings);
     },
     [](const FastChoice& c, FastPlan& p) {
         // With the Transpose [0, 3, 1, 2] fused the result and the residual are [N, C, H, W]
         // channels-last: as bytes, the plain [N, H, W, C] product.
         if (!c.fusion.matmul_nhwc) return;
         p.out_layouts[0] = Layout::Nhwc;
         if (c.fusion.matmul_residual) p.in_layouts[4] = Layout::Nhwc;
     }},
    {"gemm", "Gemm float32, alpha 1, beta 1, constant C (oneDNN matmul); plain",
     [](const FastChoice& c) { return is_op(c, "Gemm") && single_output(c); },
     [](const FastChoice& c) {
         return make_gemm(c.backend.dnnl(), c.node, c.ins, c.outs[0], c.backend.n_threads(),
                          c.warnings);
     },
     plain_layouts},
    {"transpose_layout", "Transpose [0,2,3,1] of NHWC input / [0,3,1,2] to NHWC output: a copy",
     [](const FastChoice& c) {
         return single_output(c) && (is_layout_transpose(c.node, c.ins, true) ||
                                     is_layout_transpose(c.node, c.ins, false));
     },
     [](const FastChoice& c) { return make_layout_transpose(c.node, c.ins); },
     [](const FastChoice& c, FastPlan& p) {
         const bool to_plain = is_layout_transpose(c.node, c.ins, true);
         p.in_layouts[0] = to_plain ? Layout::Nhwc : Layout::Plain;
         p.out_layouts[0] = to_plain ? Layout::Plain : Layout::Nhwc;
     }},
    {"reduce_mean_last", "ReduceMean float32 over the last axis, keepdims (LayerNorm); plain",
     [](const FastChoice& c) { return is_op(c, "ReduceMean") && single_output(c); },
     [](const FastChoice& c) {
         return make_reduce_last(c.node, c.opset, c.ins, c.outs[0]);
     },
     plain_layouts},
    {"reduce_sum_last", "ReduceSum float32 over the last axis, summed in double; plain",
     [](const FastChoice& c) { return is_op(c, "ReduceSum") && single_output(c); },
     [](const FastChoice& c) {
         return make_reduce_last(c.node, c.opset, c.ins, c.outs[0]);
     },
     plain_layouts},
    {"reduce_max_last", "ReduceMax float32 over the last axis (vectorized); plain",
     [](const FastChoice& c) { return is_op(c, "ReduceMax") && single_output(c); },
     [](const FastChoice& c) {
         return make_reduce_last(c.node, c.opset, c.ins, c.outs[0]);
     },
     plain_layouts},
    {"transpose", "Transpose moving the innermost axis (tiled copy); plain",
     [](const FastChoice& c) { return is_op(c, "Transpose") && single_output(c); },
     [](const FastChoice& c) { return make_transpose(c.node, c.ins); },
     plain_layouts},
    {"softmax", "Softmax float32 over one axis; plain",
     [](const FastChoice& c) { return is_op(c, "Softmax") && single_output(c); },
     [](const FastChoice& c) { return make_softmax(c.node, c.opset, c.ins); },
     plain_layouts},
    {"grid_sample", "GridSample float32 bilinear, zeros or border padding; plain",
     [](const FastChoice& c) { return is_op(c, "GridSample") && single_output(c); },
     [](const FastChoice& c) { return make_grid_sample(c.node, c.opset, c.ins, c.outs[0]); },
     plain_layouts},
};
// clang-format on

}  // namespace

std::span<const FastEntry> fast_kernel_table() {
    return kTable;
}

}  // namespace lowbit::cpu
