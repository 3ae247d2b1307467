// Read-only navigation over a Graph for the placement rules: producers, consumers, constants and
// the op classes ModelOpt's partitioner uses (research/modelopt.md §3.3 "Op classes used").
#pragma once

#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "ir/graph.h"

namespace lowbit::quant {

// ModelOpt's op classes (modelopt/onnx/op_types.py as described in research/modelopt.md §3.3).
bool is_linear_op(const std::string& op);     // Conv, ConvTranspose, Gemm, MatMul
bool is_pointwise_op(const std::string& op);  // unary ∪ binary elementwise (Relu/BN excluded)
bool is_copy_op(const std::string& op);       // Flatten, Transpose, Concat, Split, Reshape, ...
bool is_pooling_op(const std::string& op);    // MaxPool, AveragePool, GlobalAveragePool, ...

class GraphView {
public:
    explicit GraphView(const Graph& g);

    const Graph& graph() const { return g_; }
    const Node& node(size_t i) const { return g_.nodes[i]; }
    size_t size() const { return g_.nodes.size(); }

    // Index of the node producing `tensor`, or -1 (graph input, initializer, absent).
    long producer(const std::string& tensor) const;
    // Nodes reading `tensor` (each node once, in node order).
    const std::vector<size_t>& consumers(const std::string& tensor) const;
    // Distinct producer nodes of the node's non-empty inputs, in input order.
    std::vector<size_t> parents(size_t n) const;
    // Distinct consumers of all the node's outputs, in node order.
    std::vector<size_t> children(size_t n) const;

    bool is_initializer(const std::string& tensor) const;
    bool is_graph_input(const std::string& tensor) const;
    bool is_graph_output(const std::string& tensor) const;
    // ModelOpt's "constant input": an initializer, or produced by Constant / Identity of a
    // constant / Squeeze or Unsqueeze of a constant (research/modelopt.md §3.3).
    bool is_constant(const std::string& tensor) const;
    // Non-empty inputs of node n that are not constant.
    std::vector<std::string> variable_inputs(size_t n) const;
    bool has_constant_input(size_t n) const;
    bool produces_graph_output(size_t n) const;

    // Topological order of the nodes (the model's order when it is already sorted).
    const std::vector<size_t>& topo() const { return topo_; }
    size_t topo_rank(size_t n) const { return rank_[n]; }

private:
    const Graph& g_;
    std::unordered_map<std::string, size_t> producer_;
    std::unordered_map<std::string, std::vector<size_t>> consumers_;
    std::unordered_set<std::string> initializers_, inputs_, outputs_;
    mutable std::unordered_map<std::string, bool> constant_cache_;
    std::vector<size_t> topo_, rank_;
    std::vector<size_t> empty_;
};

}  // namespace lowbit::quant
