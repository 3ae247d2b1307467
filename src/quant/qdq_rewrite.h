// The Q/DQ graph rewrite: inserts QuantizeLinear/DequantizeLinear pairs where the placement put
// them, with ModelOpt's (ORT's) names (research/modelopt.md §6):
//   activation T: T_QuantizeLinear -> T_QuantizeLinear_Output -> T_DequantizeLinear ->
//                 T_DequantizeLinear_Output, scale T_scale (scalar), zero point T_zero_point;
//   weight W:     the same names on W, scale/zero point of shape [C] and an `axis` attribute on
//                 both nodes; with dq_only the quantized values are stored under W's own name
//                 and only W_DequantizeLinear remains.
// A weight initializer shared with another node is first copied (W_1, W_2, ... as ModelOpt's
// shared-constant duplication) so every quantized consumer has its own pair.
#pragma once

#include <map>
#include <set>
#include <string>
#include <vector>

#include "core/status.h"
#include "core/tensor.h"
#include "ir/graph.h"
#include "quant/numerics.h"
#include "quant/placement.h"

namespace lowbit::quant {

// Quantization parameters of one ActivationQdq (same order as Placement::activations).
struct ActivationParams {
    double scale = 1.0;
    int32_t zero_point = 0;
    DType zp_dtype = DType::Int8;  // Int8, UInt8 or Float8E4M3FN
};

// INT4 weights (--mode w4a16 / w4a8): symmetric, grid [-8, 7], scale = amax / 7 per output
// channel, or per block of `block_size` consecutive input channels (block_size > 0; Conv
// [O, I, kh, kw]: blocks along axis 1; a 2-D weight: along the axis that is not the output
// channel's). Stored as ONNX INT4 under the weight's own name with only a DequantizeLinear (no
// zero point; opset 21 for INT4 and 'block_size').
struct Int4Weights {
    bool enabled = false;
    int64_t block_size = 0;  // 0: per output channel
};

// An INT4 weight as the rewrite stores it: values (Int4, w's shape), the scale tensor (shape [C]
// per channel; blocked: w's shape with ceil(D / block_size) along `dq_axis`), and the
// DequantizeLinear's 'axis' (and 'block_size' when blocked).
struct Int4Weight {
    Tensor q;
    Tensor scale;
    int64_t dq_axis = 0;
    int64_t block_size = 0;
};

struct RewriteOptions {
    QuantMode mode = QuantMode::Int8;
    DType scale_dtype = DType::Float32;  // Float16 when the high-precision part is float16
    bool dq_only = false;
    Int4Weights int4;  // weights in INT4 instead of `mode`
    // INT4 weights computed elsewhere (GPTQ), by the index of the node reading the weight;
    // the others are rounded to nearest.
    const std::map<size_t, Int4Weight>* int4_codes = nullptr;
    // Mixed formats (quant/assignment.h), by the index of the node reading the weight: with
    // int4.enabled and int4_nodes set, only these nodes' weights are INT4 (the others `mode`);
    // fp8_weight_nodes' weights are FP8 E4M3FN instead of `mode`.
    const std::set<size_t>* int4_nodes = nullptr;
    const std::set<size_t>* fp8_weight_nodes = nullptr;
};

struct RewriteStats {
    int activation_pairs = 0;
    int weight_pairs = 0;  // weights with Q and DQ
    int weight_dq = 0;     // dq_only weights (stored quantized)
    // Element type of every tensor the rewrite created (Q outputs: the quantized type; DQ
    // outputs: the scale's type).
    std::map<std::string, DType> new_tensors;
};

// Rewrites `model` in place. `placement` must have been computed on model.graph as it is now.
Result<RewriteStats> insert_qdq(Model& model, const Placement& placement,
                                const std::vector<ActivationParams>& params,
                                const RewriteOptions& opts);

// Quantizes a float32 weight per channel (axis < 0: per tensor) exactly as QuantizeLinear does
// with the stored scales; `scales` receives the stored scale values. `values_dtype` float16
// rounds the weight to float16 first (the value QuantizeLinear will see in a float16 graph).
Tensor quantize_weight(const Tensor& w, int64_t axis, QuantMode mode, DType scale_dtype,
                       std::vector<float>* scales);


// The axis blocks run along for a weight whose output channel is `axis`: 1 for Conv weights
// (rank >= 3, the input channels), the other axis for a 2-D weight.
int64_t int4_block_axis(const Shape& shape, int64_t axis);

// Round-to-nearest INT4 quantization of a float32 weight, as QuantizeLinear-21 would do with the
// stored scales (a float16 scale_dtype rounds w to float16 first, like quantize_weight).
// block_size > 0 must be >= 1; a block size above the axis length gives one block.
Int4Weight quantize_weight_int4(const Tensor& w, int64_t axis, int64_t block_size,
                                DType scale_dtype);

}  // namespace lowbit::quant
