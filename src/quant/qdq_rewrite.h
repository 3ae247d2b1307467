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
#include <string>
#include <vector>

#include "core/status.h"
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

struct RewriteOptions {
    QuantMode mode = QuantMode::Int8;
    DType scale_dtype = DType::Float32;  // Float16 when the high-precision part is float16
    bool dq_only = false;
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

}  // namespace lowbit::quant
