// Static facts about a model (what `lowbit info` prints): I/O, parameters, MACs, op histogram,
// opset and the executor's peak activation memory.
#pragma once

#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "runtime/executor.h"

namespace lowbit {

struct ModelInfo {
    std::string path;
    int64_t ir_version = 0;
    int64_t opset = 0;
    std::string producer;
    std::vector<TensorDesc> inputs, outputs;
    int64_t n_params = 0;      // elements of all initializers and Constant node values
    int64_t param_bytes = 0;   // their storage bytes
    int64_t macs = 0;          // multiply-accumulates of Conv, ConvTranspose, MatMul, Gemm
    int64_t n_nodes = 0;
    std::map<std::string, int64_t> op_histogram;
    size_t peak_activation_bytes = 0;
    KernelReport kernels;  // the executor's (runtime/kernel_report.h)
};

// MACs of one node given the planned shapes (0 for ops that are not Conv/MatMul/Gemm).
int64_t node_macs(const Node& node, const Executor& ex);

ModelInfo model_info(const Model& model, const Executor& ex, const std::string& path);
nlohmann::json to_json(const ModelInfo& info);
// {"steps": {kernel: count}, "qdq_convs", "int8_convs", "fp8_convs", "dq_skipped",
//  "fallbacks": [{"node", "reason"}], "fallback_reasons": {reason: count}}
nlohmann::json to_json(const KernelReport& r);
std::string to_text(const ModelInfo& info);

}  // namespace lowbit
