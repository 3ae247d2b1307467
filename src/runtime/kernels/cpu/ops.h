// Factories of the fast ops (internal to kernels/cpu; the executor sees only fast_ops.h).
// Each returns nullptr when the node is outside what the op handles; the caller then runs the
// reference kernel. Shapes are logical (ONNX order) throughout.
#pragma once

#include <cstring>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "runtime/kernels/cpu/fast_ops.h"

namespace lowbit::cpu {

struct DnnlState;

// conv.cpp: 2-D float32 Conv through oneDNN, X and Y stored NHWC, constant W [M, C/g, kH, kW]
// reordered once into the blocked format oneDNN picks, optional constant bias, optional fused
// SiLU and residual Add (input 3); split into row chunks for `n_threads` pool threads.
// `warnings` receives a line when oneDNN would use a reference implementation (the op is then
// not created).
std::unique_ptr<FastOp> make_conv(DnnlState& dnnl, const Node& node, std::span<const Operand> ins,
                                  const Operand& out, ConvFusion fusion, int n_threads,
                                  std::vector<std::string>& warnings);

// deconv.cpp: 2-D float32 ConvTranspose through oneDNN's deconvolution, X and Y stored NHWC,
// constant W [C, M/g, kH, kW], optional constant bias, optional fused BatchNormalization,
// SiLU or Relu, residual Add (input 3) and Relu after it; row chunks for `n_threads` pool
// threads. nullptr (and maybe a line in `warnings`) where oneDNN has no fast implementation.
std::unique_ptr<FastOp> make_deconv(DnnlState& dnnl, const Node& node,
                                    std::span<const Operand> ins, const Operand& out,
                                    ConvFusion fusion, int n_threads,
                                    std::vector<std::string>& warnings);

// deconv_taps.cpp: a ConvTranspose whose kernel equals its stride (no padding, dilation 1,
// group 1) as a matmul [N*H*W, C] x [C, kH*kW*M] and a scatter of the taps, X and Y NHWC;
// optional constant bias, fused BatchNormalization, SiLU or Relu; writes concat slices in
// place. nullptr for any other ConvTranspose (make_deconv then takes it).
std::unique_ptr<FastOp> make_deconv_taps(DnnlState& dnnl, const Node& node,
                                         std::span<const Operand> ins, const Operand& out,
                                         const ConvFusion& fusion, int n_threads);

// qconv.cpp: the int8 Q/DQ conv step (fusion.quant set): x_q (input 0, int8) and the residual
// (input 3, float32 or int8 codes) stored NHWC, the output NHWC (int8 when fusion.quant->out_q,
// else float32). `conv_out` is the Conv's own output. When it does not take the match it says
// why in fusion.quant->fallback.
std::unique_ptr<FastOp> make_qconv(DnnlState& dnnl, const Node& node, std::span<const Operand> ins,
                                   const Operand& conv_out, const ConvFusion& fusion,
                                   int n_threads);

// fp8conv.cpp: the same step for FP8 E4M3FN codes (fusion.quant->codes Float8E4M3FN) on
// oneDNN bf16 convs; x_q, R's codes and the output one byte per code. Refuses (saying why in
// fusion.quant->fallback) without AVX512-BF16/AMX.
std::unique_ptr<FastOp> make_fp8conv(DnnlState& dnnl, const Node& node,
                                     std::span<const Operand> ins, const Operand& conv_out,
                                     const ConvFusion& fusion, int n_threads);
// fp8conv.cpp: a float16 Conv (constant float16 weights and bias, +SiLU) as a oneDNN bf16
// conv on operands rounded to bfloat16, float16 output; nullptr without AVX512-BF16/AMX, with
// ExecutorOptions::lowp_kernels off, or for anything else.
std::unique_ptr<FastOp> make_fp16conv(DnnlState& dnnl, const Node& node,
                                      std::span<const Operand> ins, const Operand& out,
                                      const ConvFusion& fusion, int n_threads);

// qdq_fp8.cpp: QuantizeLinear float32 -> float8e4m3fn / DequantizeLinear float8e4m3fn ->
// float32, per-tensor constant scale, zero point 0, any layout, vectorized and in parallel.
std::unique_ptr<FastOp> make_qdq_fp8(const Node& node, std::span<const Operand> ins,
                                     const Operand& out);

// qdq.cpp: QuantizeLinear float32 -> int8 / DequantizeLinear int8 -> float32, per-tensor
// constant scale, zero point 0, operand and result of one shape (any layout).
std::unique_ptr<FastOp> make_qdq_int8(const Node& node, std::span<const Operand> ins,
                                      const Operand& out);

// qmove.cpp: the int8 Concat / MaxPool -> QuantizeLinear step (QuantMoveSpec), NHWC int8
// output; operands NHWC. When it does not take the match it says why in spec.fallback.
std::unique_ptr<FastOp> make_qmove(const Node& node, int64_t opset, std::span<const Operand> ins,
                                   const Operand& out, const QuantMoveSpec& spec);

// matmul.cpp: float32 MatMul of rank 2-4 operands (NumPy batch broadcasting) through oneDNN;
// with fusion.matmul_bias the bias (input 2) and, where set, matmul_nhwc / matmul_scale
// (input 3) / matmul_residual (input 4) (fast_ops.h).
std::unique_ptr<FastOp> make_matmul(DnnlState& dnnl, const Node& node, std::span<const Operand> ins,
                                    const Operand& out, int n_threads, const ConvFusion& fusion,
                                    std::vector<std::string>& warnings);

// gemm.cpp: float32 Gemm (transA/transB, alpha 1, beta 1, C absent or a constant [N] or
// [1, N]) through oneDNN's matmul; plain layout; the columns cut into chunks for `n_threads`
// pool threads when B is large.
std::unique_ptr<FastOp> make_gemm(DnnlState& dnnl, const Node& node, std::span<const Operand> ins,
                                  const Operand& out, int n_threads,
                                  std::vector<std::string>& warnings);

// row_ops.cpp: a 4-D Transpose that only changes the storage layout (perm [0, 2, 3, 1] of an
// NHWC-stored input to a plain output, to_plain; perm [0, 3, 1, 2] of a plain input to an
// NHWC-stored output) as a copy; float32 ReduceMean over the last axis with keepdims, ReduceSum
// and ReduceMax over the last axis, keepdims or not (make_reduce_last takes all three); Pow with
// the constant scalar exponent 2; Erf (vectorized).
bool is_layout_transpose(const Node& node, std::span<const Operand> ins, bool to_plain);
std::unique_ptr<FastOp> make_layout_transpose(const Node& node, std::span<const Operand> ins);
std::unique_ptr<FastOp> make_reduce_last(const Node& node, int64_t opset,
                                         std::span<const Operand> ins, const Operand& out);
std::unique_ptr<FastOp> make_pow_square(const Node& node, std::span<const Operand> ins,
                                        const Operand& out);
std::unique_ptr<FastOp> make_erf(const Node& node, std::span<const Operand> ins);
// layer_norm.cpp: LayerNorm over rows of the last axis (LayerNormSpec; ins: x, gamma, beta,
// the latter two absent or float32 with one value per row element). With spec.in_nhwc x is
// the 4-D tensor before the fused Transpose, its rows its channels.
std::unique_ptr<FastOp> make_layer_norm(std::span<const Operand> ins, const LayerNormSpec& spec);
// The readable reference of its rows kernel, step by step as the unfused reference kernels
// compute (ReduceMean in double, Sub, Pow, ReduceMean, Add, Sqrt, Div, Mul, Add in float).
void layer_norm_rows_ref(const float* x, float* y, int64_t rows, int64_t len, const float* gamma,
                         const float* beta, float eps);
// GELU as matched by fusion.cpp (ConvFusion::gelu): `node` is the chain's Div, `ins` its x.
std::unique_ptr<FastOp> make_gelu(const Node& node, std::span<const Operand> ins,
                                  const Operand& out, float div);

// eltwise.cpp: float32 Add/Sub/Mul/Div whose operands are full-size (the output's shape),
// numel-1 scalars or, for NHWC 4-D outputs, per-channel vectors [1, C, 1, 1]; Sigmoid; and SiLU
// as one op. `layout` is the storage layout of the output and full-size operands.
std::unique_ptr<FastOp> make_binary(const Node& node, std::span<const Operand> ins,
                                    const Operand& out, Layout layout);
std::unique_ptr<FastOp> make_sigmoid(const Node& node, std::span<const Operand> ins);

// parallel_ref.cpp: a layout-blind elementwise op (full-size operands of the output's shape,
// others numel 1) run as its reference kernel over slices of the flat range, in parallel.
std::unique_ptr<FastOp> make_parallel_ref(const Node& node, int64_t opset,
                                          std::span<const Operand> ins,
                                          std::span<const Operand> outs, int n_threads);

// softmax.cpp: float32 Softmax over one axis (opset >= 13) or the flattened trailing dims
// (opset < 13), plain layout.
std::unique_ptr<FastOp> make_softmax(const Node& node, int64_t opset, std::span<const Operand> ins);

// grid_sample.cpp: 4-D float32 GridSample, bilinear, padding zeros or border, plain layout
// (taps computed once per point for every channel).
std::unique_ptr<FastOp> make_grid_sample(const Node& node, int64_t opset,
                                         std::span<const Operand> ins, const Operand& out);

// transpose.cpp: Transpose of a plain tensor whose innermost axis moves (tiled 2-D copy).
std::unique_ptr<FastOp> make_transpose(const Node& node, std::span<const Operand> ins);

// nhwc_ops.cpp: data movement on NHWC-stored 4-D tensors.
// Concat / Split on axis 1 (channels), any dtype.
std::unique_ptr<FastOp> make_concat_nhwc(const Node& node, std::span<const Operand> ins,
                                         const Operand& out);
// Concat of plain tensors along an axis with a dim > 1 before it, any dtype: per index of the
// dims before the axis, each input's block copied (null when the shapes do not concatenate, or
// every dim before the axis is 1: the planner's in-place concat takes those).
std::unique_ptr<FastOp> make_concat_plain(const Node& node, std::span<const Operand> ins,
                                          const Operand& out);
std::unique_ptr<FastOp> make_split_nhwc(const Node& node, std::span<const Operand> ins,
                                        std::span<const Operand> outs);
// MaxPool (float32, no Indices output).
std::unique_ptr<FastOp> make_maxpool_nhwc(const Node& node, std::span<const Operand> ins,
                                          std::span<const Operand> outs);
// Pad (opset 11+), mode constant, non-negative pads on H and W only, any dtype.
std::unique_ptr<FastOp> make_pad_nhwc(const Node& node, int64_t opset, std::span<const Operand> ins,
                                      const Operand& out);
// GlobalAveragePool of a 4-D float32 tensor (output [N, C, 1, 1]).
std::unique_ptr<FastOp> make_global_avgpool_nhwc(std::span<const Operand> ins,
                                                 std::span<const Operand> outs);
// BatchNormalization, inference mode, 4-D float32 (one output).
std::unique_ptr<FastOp> make_batchnorm_nhwc(const Node& node, std::span<const Operand> ins,
                                            std::span<const Operand> outs);
// Resize, mode nearest, integer up-scaling of H and W only.
std::unique_ptr<FastOp> make_resize_nhwc(const Node& node, int64_t opset,
                                         std::span<const Operand> ins, const Operand& out);
// The source row / column of each output row / column of such a Resize; false when it is not
// one (not nearest, not an integer up-scaling of H and W only, unsupported coordinate mode).
bool nearest_resize_maps(const Node& node, int64_t opset, std::span<const Operand> ins,
                         const Operand& out, std::vector<int64_t>& map_h,
                         std::vector<int64_t>& map_w);

// fp16_via_fp32.cpp: ops whose fast kernels are float32-only. choose_via_float32() plans such a
// node with float16 operands: `choose32` plans it with those operands seen as float32, and the
// op it returns is wrapped to widen float16 inputs and round float32 outputs to float16.
bool is_float32_only_fast_op(const std::string& op_type);
FastPlan choose_via_float32(
    std::span<const Operand> ins, std::span<const Operand> outs,
    const std::function<FastPlan(std::span<const Operand>, std::span<const Operand>)>& choose32);

// Spatial geometry of a Conv or pooling window on one axis, from the node's attributes and
// the planned output size (auto_pad NOTSET / VALID / SAME_UPPER / SAME_LOWER).
struct Window {
    int64_t in = 1, out = 1, k = 1, stride = 1, dilation = 1, pad_begin = 0, pad_end = 0;
};
// kernel: kH, kW. Returns false when an attribute has a form this code does not handle.
bool window_2d(const Node& node, const Shape& x, const Shape& y, const std::vector<int64_t>& kernel,
               Window& h, Window& w);

// MaxPool of one output pixel (oh, ow) of an NHWC image `xb` with `c` channels into `yo`: the
// first in-bounds tap is copied, the others folded in by max_row(tap, yo, c). Returns false
// when the window has no in-bounds tap (yo untouched).
template <typename T, typename MaxRow>
bool window_max_nhwc(const T* xb, T* yo, int64_t c, const Window& h, const Window& w,
                     int64_t oh, int64_t ow, MaxRow&& max_row) {
    bool first = true;
    for (int64_t kh = 0; kh < h.k; ++kh) {
        const int64_t ih = oh * h.stride - h.pad_begin + kh * h.dilation;
        if (ih < 0 || ih >= h.in) continue;
        for (int64_t kw = 0; kw < w.k; ++kw) {
            const int64_t iw = ow * w.stride - w.pad_begin + kw * w.dilation;
            if (iw < 0 || iw >= w.in) continue;
            const T* xi = xb + (ih * w.in + iw) * c;
            if (first) {
                std::memcpy(yo, xi, static_cast<size_t>(c) * sizeof(T));
                first = false;
            } else {
                max_row(xi, yo, c);
            }
        }
    }
    return !first;
}

}  // namespace lowbit::cpu
