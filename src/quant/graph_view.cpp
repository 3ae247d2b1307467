#include "quant/graph_view.h"

#include <algorithm>

namespace lowbit::quant {

namespace {

bool in(const std::string& op, std::initializer_list<const char*> set) {
    return std::any_of(set.begin(), set.end(), [&](const char* s) { return op == s; });
}

}  // namespace

bool is_linear_op(const std::string& op) {
    return in(op, {"Conv", "ConvTranspose", "Gemm", "MatMul"});
}

bool is_pointwise_op(const std::string& op) {
    // Unary list then binary list of modelopt/onnx/op_types.py (Relu and BatchNormalization are
    // deliberately absent there).
    return in(op, {"Neg",   "Sqrt",    "Abs",     "Log",       "Exp",
                   "Not",   "Cast",    "Floor",   "Ceil",      "Round",
                   "Erf",   "Gelu",    "Sin",     "Cos",       "Atan",
                   "Sign",  "IsNaN",   "IsInf",   "LeakyRelu", "Elu",
                   "Tanh",  "Sigmoid", "Softmax", "Softplus",  "InstanceNormalization",
                   "CumSum"}) ||
           in(op, {"Add", "Sub", "Mul", "Pow", "Div", "Min", "Max", "Greater", "GreaterOrEqual",
                   "Less", "LessOrEqual", "Equal", "BitwiseAnd", "BitwiseOr", "BitwiseXor",
                   "BitwiseNot", "BitShift"});
}

bool is_copy_op(const std::string& op) {
    return in(op, {"Flatten", "Transpose", "Concat", "Split", "Squeeze", "Expand",
                   "ReverseSequence", "Reshape", "Tile", "Gather", "Slice", "GatherElements",
                   "GatherND", "ScatterElements", "ScatterND", "OneHot"});
}

bool is_pooling_op(const std::string& op) {
    return in(op, {"AveragePool", "GlobalAveragePool", "MaxPool", "GlobalMaxPool", "GlobalLpPool",
                   "LpPool", "MaxRoiPool", "MaxUnpool"});
}

GraphView::GraphView(const Graph& g) : g_(g) {
    for (size_t i = 0; i < g.nodes.size(); ++i) {
        for (const auto& o : g.nodes[i].outputs) {
            if (!o.empty()) producer_[o] = i;
        }
        for (const auto& in : g.nodes[i].inputs) {
            if (in.empty()) continue;
            auto& v = consumers_[in];
            if (v.empty() || v.back() != i) v.push_back(i);
        }
    }
    for (const auto& [name, t] : g.initializers) initializers_.insert(name);
    for (const auto& vi : g.inputs) inputs_.insert(vi.name);
    for (const auto& vo : g.outputs) outputs_.insert(vo.name);
    auto order = topological_order(g);
    if (order.is_ok()) {
        topo_ = *order;
    } else {
        for (size_t i = 0; i < g.nodes.size(); ++i) topo_.push_back(i);
    }
    rank_.assign(g.nodes.size(), 0);
    for (size_t r = 0; r < topo_.size(); ++r) rank_[topo_[r]] = r;
}

long GraphView::producer(const std::string& tensor) const {
    auto it = producer_.find(tensor);
    return it == producer_.end() ? -1 : static_cast<long>(it->second);
}

const std::vector<size_t>& GraphView::consumers(const std::string& tensor) const {
    auto it = consumers_.find(tensor);
    return it == consumers_.end() ? empty_ : it->second;
}

std::vector<size_t> GraphView::parents(size_t n) const {
    std::vector<size_t> out;
    for (const auto& in : g_.nodes[n].inputs) {
        long p = in.empty() ? -1 : producer(in);
        if (p >= 0 && std::find(out.begin(), out.end(), static_cast<size_t>(p)) == out.end()) {
            out.push_back(static_cast<size_t>(p));
        }
    }
    return out;
}

std::vector<size_t> GraphView::children(size_t n) const {
    std::vector<size_t> out;
    for (const auto& o : g_.nodes[n].outputs) {
        if (o.empty()) continue;
        for (size_t c : consumers(o)) {
            if (std::find(out.begin(), out.end(), c) == out.end()) out.push_back(c);
        }
    }
    std::sort(out.begin(), out.end());
    return out;
}

bool GraphView::is_initializer(const std::string& t) const {
    return initializers_.count(t) > 0;
}
bool GraphView::is_graph_input(const std::string& t) const {
    return inputs_.count(t) > 0 && !initializers_.count(t);
}
bool GraphView::is_graph_output(const std::string& t) const {
    return outputs_.count(t) > 0;
}

bool GraphView::is_constant(const std::string& tensor) const {
    if (tensor.empty()) return false;
    if (initializers_.count(tensor)) return true;
    auto hit = constant_cache_.find(tensor);
    if (hit != constant_cache_.end()) return hit->second;
    bool result = false;
    long p = producer(tensor);
    if (p >= 0) {
        const Node& n = g_.nodes[static_cast<size_t>(p)];
        if (n.op_type == "Constant") {
            result = true;
        } else if (n.op_type == "Identity" || n.op_type == "Squeeze" || n.op_type == "Unsqueeze") {
            result = !n.inputs.empty() && is_constant(n.inputs[0]);
        }
    }
    constant_cache_[tensor] = result;
    return result;
}

std::vector<std::string> GraphView::variable_inputs(size_t n) const {
    std::vector<std::string> out;
    for (const auto& in : g_.nodes[n].inputs) {
        if (!in.empty() && !is_constant(in)) out.push_back(in);
    }
    return out;
}

bool GraphView::has_constant_input(size_t n) const {
    for (const auto& in : g_.nodes[n].inputs) {
        if (!in.empty() && is_constant(in)) return true;
    }
    return false;
}

bool GraphView::produces_graph_output(size_t n) const {
    for (const auto& o : g_.nodes[n].outputs) {
        if (!o.empty() && outputs_.count(o)) return true;
    }
    return false;
}

}  // namespace lowbit::quant
