// Fusion matching: which graph nodes one program step computes together. Patterns are matched
// once, at plan time, on the run-time nodes (after constant folding); the backend then decides
// whether it can run the match (runtime/kernel_choice.h), and the program builder falls back to
// one step per node when it cannot.
//
// Patterns today: Conv (or ConvTranspose) [-> BatchNormalization, folded into the weights]
// [-> SiLU: Sigmoid -> Mul(x, sigmoid) | Relu | hard-swish: HardSigmoid -> Mul(x, hs), or
// HardSwish] [-> residual Add(that, R) [-> Relu]] (the BN and the Relu / hard-swish for float
// kernels only); the int8 data move (Concat on channels or MaxPool reading DequantizeLinear
// outputs, ending in a QuantizeLinear: one step on the int8 codes, requantizing where the scales
// differ); and the Q/DQ conv, read the way TensorRT and ONNX Runtime read a Q/DQ
// graph: DequantizeLinear(x_q) and DequantizeLinear(w_q) (int8, symmetric, weights per tensor
// or per output channel) -> Conv (+bias) [-> SiLU] [-> Add(., R)] [-> QuantizeLinear], one int8
// step (or, with float8e4m3fn codes throughout, one FP8 step: QuantConvSpec::codes) that reads x_q itself (and R's int8 codes when R is a DequantizeLinear output) and, with
// the QuantizeLinear, writes int8 codes. A DequantizeLinear is then executed only where a float
// consumer needs it (program_builder.cpp defers it). Not conv: GELU as
// Div(x, c) -> Erf -> Add(., 1) -> Mul(x, .) -> Mul(., 0.5), one elementwise step on x
// (ConvFusion::gelu); MatMul -> Add(., bias vector) as the matmul's bias
// (ConvFusion::matmul_bias) [-> Transpose to NCHW -> Mul(layer scale) -> Add(residual)];
// LayerNorm over the last axis, decomposed (ReduceMean -> Sub -> Pow -> ReduceMean -> Add ->
// Sqrt -> Div [-> Mul -> Add]) or the LayerNormalization op, with the Transposes around it
// (ConvFusion::layer_norm). A new pattern is one more matcher function
// tried by match_fusion(), producing a FusionMatch.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "ir/graph.h"
#include "runtime/executor.h"
#include "runtime/kernels/cpu/fast_ops.h"

namespace lowbit {

// The graph as fusion matching sees it: run-time nodes and who reads each tensor.
struct FusionGraph {
    // constants: the plan-time values (initializers and folded tensors); without them (or with
    // lowp false) no Q/DQ conv is matched. lowp: ExecutorOptions::lowp_kernels.
    FusionGraph(const Graph& g, const std::unordered_map<std::string, TensorDesc>& descs,
                const std::vector<size_t>& order, const std::vector<TensorDesc>& outputs,
                const std::unordered_map<std::string, Tensor>* constants = nullptr,
                bool lowp = true);

    // Whether run-time node `node` is the only reader of `t` (and t is no graph output).
    bool sole_consumer(const std::string& t, size_t node) const;
    const std::vector<size_t>* consumers_of(const std::string& t) const;

    const Graph& graph;
    const std::unordered_map<std::string, TensorDesc>& descs;
    std::unordered_map<std::string, std::vector<size_t>> consumers;  // run-time readers
    std::unordered_set<std::string> graph_outputs;
    const std::unordered_map<std::string, Tensor>* constants;
    bool lowp;
    std::unordered_map<std::string, size_t> producer;  // every node's outputs, folded ones too
    std::unordered_set<size_t> runtime;                // nodes in `order`

    const Tensor* constant(const std::string& t) const;
    // The run-time node of type `op` producing `t`, or nullptr.
    const Node* runtime_producer(const std::string& t, const char* op) const;
};

// One step computing several nodes: `node` (the anchor, e.g. the Conv) plus `fused`.
struct FusionMatch {
    cpu::ConvFusion conv;               // what the fused conv step computes beyond the conv
    std::vector<size_t> fused;          // the further nodes (graph indices), in pattern order
    std::vector<std::string> inputs;    // the step's inputs (the anchor's, plus extra operands)
    std::vector<std::string> outputs;   // the step's outputs (the last fused node's)
    // A Q/DQ conv run as one int8 step (conv.quant points here); fused may then be empty.
    std::shared_ptr<cpu::QuantConvSpec> quant;
    // An int8 Concat / MaxPool -> QuantizeLinear step (conv.qmove points here).
    std::shared_ptr<cpu::QuantMoveSpec> qmove;
    // A folded BatchNormalization (conv.bn points here).
    std::shared_ptr<cpu::BnFold> bn;
    // A LayerNorm step (conv.layer_norm points here).
    std::shared_ptr<cpu::LayerNormSpec> layer_norm;
    // The anchor is a Conv reading a DequantizeLinear output that is not matched as a Q/DQ
    // conv: why (it then runs as the float simulation).
    std::string qdq_fallback;

    bool any() const {
        return !fused.empty() || quant != nullptr || qmove != nullptr || layer_norm != nullptr;
    }
};

// Whether a run-time tensor is already produced by an earlier step (a fused operand must be).
using ProducedBefore = std::function<bool(const std::string&)>;

// The fusion anchored at run-time node `node`; an empty match (any() false) when none applies.
// With allow_quant false only the float patterns are tried (the backend refused the int8 step).
FusionMatch match_fusion(const FusionGraph& g, size_t node, const ProducedBefore& produced,
                         bool allow_quant = true);

}  // namespace lowbit
