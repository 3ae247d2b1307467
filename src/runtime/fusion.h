// Fusion matching: which graph nodes one program step computes together. Patterns are matched
// once, at plan time, on the run-time nodes (after constant folding); the backend then decides
// whether it can run the match (runtime/kernel_choice.h), and the program builder falls back to
// one step per node when it cannot.
//
// Patterns today: Conv -> Sigmoid -> Mul(conv, sigmoid) (SiLU), optionally followed by a
// residual Add(that, R). A new pattern (e.g. DequantizeLinear -> Conv -> QuantizeLinear for
// fused low-precision steps, DESIGN.md "Where the next capabilities go") is one more matcher
// function tried by match_fusion(), producing a FusionMatch.
#pragma once

#include <functional>
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
    FusionGraph(const Graph& g, const std::unordered_map<std::string, TensorDesc>& descs,
                const std::vector<size_t>& order, const std::vector<TensorDesc>& outputs);

    // Whether run-time node `node` is the only reader of `t` (and t is no graph output).
    bool sole_consumer(const std::string& t, size_t node) const;
    const std::vector<size_t>* consumers_of(const std::string& t) const;

    const Graph& graph;
    const std::unordered_map<std::string, TensorDesc>& descs;
    std::unordered_map<std::string, std::vector<size_t>> consumers;  // run-time readers
    std::unordered_set<std::string> graph_outputs;
};

// One step computing several nodes: `node` (the anchor, e.g. the Conv) plus `fused`.
struct FusionMatch {
    cpu::ConvFusion conv;               // what the fused conv step computes beyond the conv
    std::vector<size_t> fused;          // the further nodes (graph indices), in pattern order
    std::vector<std::string> inputs;    // the step's inputs (the anchor's, plus extra operands)
    std::vector<std::string> outputs;   // the step's outputs (the last fused node's)

    bool any() const { return !fused.empty(); }
};

// Whether a run-time tensor is already produced by an earlier step (a fused operand must be).
using ProducedBefore = std::function<bool(const std::string&)>;

// The fusion anchored at run-time node `node`; an empty match (any() false) when none applies.
FusionMatch match_fusion(const FusionGraph& g, size_t node, const ProducedBefore& produced);

}  // namespace lowbit
