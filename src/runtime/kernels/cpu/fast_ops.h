// The optimized CPU path: oneDNN convolutions and matmuls, vectorized elementwise, softmax and
// channels-last (NHWC) data movement. The executor asks CpuBackend::choose() how to run each
// node; the answer says which layout every input must be stored in, which layout the outputs
// will be stored in, and the op to run (or none: run the node's reference kernel, possibly on
// NHWC-stored data when the op is elementwise and therefore layout-blind).
//
// Fast ops are created at plan time (weights reordered once, oneDNN primitives built with the
// executor's thread count) and run on tensors with logical (ONNX-order) shapes; the layout of
// each tensor is the one the plan assigned.
#pragma once

#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "core/tensor.h"
#include "ir/graph.h"
#include "runtime/layout.h"
#include "core/thread_pool.h"

namespace lowbit::cpu {

class FastOp {
public:
    virtual ~FastOp() = default;
    // inputs/outputs: one per node input/output (absent optional ones empty), stored in the
    // layouts of the plan that created the op.
    virtual Status run(std::span<const Tensor> inputs, std::span<Tensor> outputs,
                       const ThreadPool& pool) = 0;
    // For the profile: "Conv 3x3 s2 g1 brgconv:avx512_core +SiLU".
    virtual std::string describe() const = 0;

    // In-place channel concatenation (planned by the executor after all ops exist). A producer
    // that accepts writes output `out` also into channels [offset, offset + C) of an NHWC
    // buffer with `total` channels, which run() then receives as outputs[slot]; without
    // keep_dense its own outputs[out] is not written (and is passed empty).
    virtual bool add_concat_slice(size_t out, size_t slot, int64_t offset, int64_t total,
                                  bool keep_dense) {
        return false;
    }
    // A channel Concat told that its producer writes input `in` in place: run() must not copy
    // it (the tensor passed for it is then empty).
    virtual bool set_input_in_place(size_t in) { return false; }
    // The int8 Concat -> QuantizeLinear step (qmove.cpp): the scale at which it quantizes float
    // input `in` (0: it reads that input as codes, or not at all). A producer may then write
    // that part's codes itself (add_quantized_concat_slice) and the step is told
    // set_input_in_place(in).
    virtual float quantizes_input(size_t in) const { return 0.0f; }
    // As add_concat_slice, but the slice of the int8 buffer gets output `out` quantized as
    // QuantizeLinear(., scale) does (the int8 Q/DQ conv writing float32, qconv.cpp).
    virtual bool add_quantized_concat_slice(size_t out, size_t slot, int64_t offset, int64_t total,
                                            float scale, bool keep_dense) {
        return false;
    }
    // Split folding: the producer also writes channels [c0, c1) of output `out` as a dense NHWC
    // tensor, passed to run() as outputs[slot]; that slot can then take concat slices too.
    virtual bool add_channel_range_output(size_t out, size_t slot, int64_t c0, int64_t c1) {
        return false;
    }
    // Output `out` (as given to add_concat_slice / add_channel_range_output) is not needed as a
    // tensor of its own; run() then receives it empty. Only called on ops that accepted one of
    // those requests.
    virtual void drop_dense(size_t out) {}
    // Output 0 is to be written NHWC (channels-last) although the op was planned to write it
    // plain, so that the reorder after it can go (the executor asks when that reorder is the
    // output's only reader). Returns false when the op cannot.
    virtual bool write_output_nhwc() { return false; }
};

// Copies `pixels` rows of `c` elements (`elem` bytes each): row p from src + p * src_stride
// to dst + p * dst_stride (strides in elements).
void copy_channel_rows(const void* src, int64_t src_stride, void* dst, int64_t dst_stride,
                       int64_t pixels, int64_t c, size_t elem);

// The channel slices an op writes for in-place concatenation.
struct ConcatSlice {
    size_t out = 0, slot = 0;
    int64_t offset = 0, total = 0;
};

// What the planner knows about a node input or output.
struct Operand {
    DType dtype = DType::Undefined;    // Undefined: absent optional input
    Shape shape;                       // logical (ONNX order)
    Layout layout = Layout::Plain;     // how the producer stores it (inputs only)
    const Tensor* constant = nullptr;  // the value when known at plan time (always Plain)

    bool present() const { return dtype != DType::Undefined; }
};

struct FastPlan {
    std::unique_ptr<FastOp> op;       // null: run the node's reference kernel
    std::vector<Layout> in_layouts;   // one per input: how it must be stored when the step runs
    std::vector<Layout> out_layouts;  // one per output
    std::string_view entry;           // the kernel-table row that made the plan ("" for none)
};

struct DnnlState;

// A Q/DQ conv read as one int8 step (runtime/fusion.h matches it): DequantizeLinear(x_q) and
// the weights' DequantizeLinear(w_q) feed the Conv; the step reads x_q (input 0, int8) instead
// of the dequantized tensor, computes with the int8 codes and writes the result, or, when a
// QuantizeLinear ends the pattern, its int8 codes. Zero points are all 0 (symmetric).
// `codes` Float8E4M3FN: the same pattern with FP8 E4M3FN codes everywhere (activations,
// weights, residual, output), run on bf16 kernels (fp8conv.cpp).
struct QuantConvSpec {
    DType codes = DType::Int8;        // Int8 or Float8E4M3FN: x_q, w_q, R's and y's codes
    bool saturate = true;             // the QuantizeLinear's 'saturate' (FP8 only)
    const Tensor* w_codes = nullptr;  // [M, C/g, kH, kW] codes, the weights' DQ input
    std::vector<float> w_scale;       // per output channel (a per-tensor scale repeated)
    float x_scale = 1.0f;             // x_q's scale
    bool out_q = false;               // a QuantizeLinear ends the pattern: int8 output
    float y_scale = 1.0f;             // its scale
    bool residual_q = false;          // the residual is read as int8 codes (its DQ deferred)
    float r_scale = 1.0f;             // their scale
    // Set by the factory when it does not take the match (why the step falls back).
    mutable std::string fallback;
};

// Int8 data movement in a Q/DQ graph (runtime/fusion.h matches it; kernels/cpu/qmove.cpp):
// Concat (channels, its inputs possibly nearest Resizes of dequantized codes) or MaxPool whose result only feeds a QuantizeLinear (int8, per tensor,
// zero point 0) runs as one step writing its int8 codes. An input that is a DequantizeLinear
// output (int8, per tensor, zero point 0) is read as its codes and requantized; Concat also
// takes float32 inputs (quantized as QuantizeLinear does).
struct QuantMoveSpec {
    std::vector<float> in_scale;  // per step input: the codes' scale, or 0 for a float32 input
    float y_scale = 1.0f;         // the QuantizeLinear's scale
    // Concat only: an input that is a nearest Resize of dequantized codes, read by this Concat
    // alone, is fused too: the step reads the codes before the Resize and upsamples them while
    // it copies. Per step input: that Resize node (null: none), its `scales` (null: none) and
    // its output shape.
    struct Upsample {
        const Node* resize = nullptr;
        const Tensor* scales = nullptr;
        Shape out;
    };
    std::vector<Upsample> upsample;
    mutable std::string fallback;  // set by the factory when it does not take the match
};

// LayerNorm over the last axis (runtime/fusion.h matches it; kernels/cpu/layer_norm.cpp): the
// step reads x (input 0) and the affine gamma (1) and beta (2), each absent when the pattern
// has none, and writes the normalized tensor.
struct LayerNormSpec {
    float epsilon = 1e-5f;
    // A Transpose [0, 2, 3, 1] before the LayerNorm is fused: x is its 4-D [N, C, H, W] input,
    // read channels-last (stored NHWC, its bytes are the transposed tensor's).
    bool in_nhwc = false;
    // A Transpose [0, 3, 1, 2] after it is fused: the output is that Transpose's [N, C, H, W],
    // written channels-last (the same bytes as the normalized [N, H, W, C]).
    bool out_nhwc = false;
};

// What a Conv step computes beyond the conv itself (the executor matches the graph pattern).
// A BatchNormalization (inference) read as y = x * scale[c] + shift[c]; folded into the conv's
// weights and bias (float conv kernels only).
struct BnFold {
    std::vector<float> scale, shift;
};

struct ConvFusion {
    bool silu = false;      // Conv -> Sigmoid -> Mul(conv, sigmoid)
    bool residual = false;  // ... -> Add(that, R): R is passed as input 3, stored NHWC
    const QuantConvSpec* quant = nullptr;  // the step is an int8 Q/DQ conv (see above)
    const QuantMoveSpec* qmove = nullptr;  // the step is an int8 Concat/MaxPool (see above)
    // Float conv kernels only (the int8 step never gets these): Conv -> BatchNormalization
    // (folded), and the activation Relu or hard-swish x * HardSigmoid(x) (HardSigmoid's
    // alpha/beta; the HardSwish op is alpha 1/6, beta 0.5), before the residual Add.
    const BnFold* bn = nullptr;
    bool relu = false;
    bool hardswish = false;
    // HardSigmoid alone (MobileNetV3's squeeze-excitation scale): clamp(alpha * x + beta, 0, 1),
    // alpha/beta in hs_alpha/hs_beta.
    bool hardsigmoid = false;
    float hs_alpha = 1.0f / 6.0f, hs_beta = 0.5f;
    bool relu_after = false;  // a Relu after the residual Add (float conv kernels only)
    // Not a conv: the node is Div(x, gelu_div) starting GELU's Erf chain, Div -> Erf ->
    // Add(., 1) -> Mul(x, .) -> Mul(., 0.5), computed as one elementwise step on x.
    bool gelu = false;
    float gelu_div = 1.41421356f;
    // Not a conv: the node is a MatMul whose result only feeds Add(., bias), bias a constant
    // vector along the last axis; the bias is passed as input 2 and added by the matmul.
    bool matmul_bias = false;
    // ... then (fusion.cpp, ConvNeXt's block end) a Transpose [0, 3, 1, 2] of the rank-4
    // result: the step writes the Transpose's [N, C, H, W] channels-last; a Mul by a constant
    // per-channel layer scale (input 3); an Add of a residual (input 4, full-size; channels-last
    // with matmul_nhwc). Inputs 3 and 4 are absent where the pattern has no such op.
    bool matmul_nhwc = false;
    bool matmul_scale = false;
    bool matmul_residual = false;
    // Not a conv: the node starts a LayerNorm pattern (its ReduceMean, a LayerNormalization op,
    // or the Transpose before either), computed as one step (LayerNormSpec).
    const LayerNormSpec* layer_norm = nullptr;
    bool any() const {
        return silu || residual || quant || qmove || bn || relu || hardswish || hardsigmoid ||
               relu_after || gelu || matmul_bias || layer_norm;
    }
    bool float_only() const {
        return bn || relu || hardswish || hardsigmoid || relu_after || gelu || matmul_bias ||
               layer_norm;
    }
};

// Owns the oneDNN engine and stream and the scratch memory shared by the primitives of one
// executor (steps run one at a time).
class CpuBackend {
public:
    // conv_winograd: ExecutorOptions::conv_winograd; lowp: ExecutorOptions::lowp_kernels
    // (float16 convs on bf16 kernels); int8_direct: ExecutorOptions::int8_direct.
    explicit CpuBackend(int n_threads, bool conv_winograd = true, bool lowp = true,
                        bool int8_direct = true);
    ~CpuBackend();
    CpuBackend(const CpuBackend&) = delete;
    CpuBackend& operator=(const CpuBackend&) = delete;

    // How to run `node`: the first row of the kernel table (kernel_table.h) that takes it, after
    // float16 operands of float32-only fast ops are seen as float32 (ops.h). With a fusion the
    // node is a Conv followed by the fused pattern, and `inputs` has the residual R appended at
    // index 3 (after an absent bias if needed); the op must then produce the fused result, or
    // the plan must have no op (the caller then does not fuse). Unsupported cases are not
    // errors: they get a plan without op that runs the reference kernel on plain inputs.
    // Warnings (a oneDNN primitive that fell back to a slow reference implementation) go to
    // `warnings`.
    FastPlan choose(const Node& node, int64_t opset, std::span<const Operand> inputs,
                    std::span<const Operand> outputs, ConvFusion fusion,
                    std::vector<std::string>& warnings);

    int n_threads() const { return n_threads_; }
    DnnlState& dnnl() { return *dnnl_; }

private:
    int n_threads_;
    std::unique_ptr<DnnlState> dnnl_;
};

// Ops whose output element i depends only on input elements i (plus scalar parameters), so
// they can run on NHWC-stored data unchanged when all full-size operands share one layout.
bool is_layout_blind_op(const std::string& op_type);

}  // namespace lowbit::cpu
