#include "runtime/fusion.h"

#include <algorithm>

namespace lowbit {

namespace {

constexpr size_t kNone = static_cast<size_t>(-1);

// Conv -> Sigmoid -> Mul(conv, sigmoid) is SiLU, and a following Add(that, R) is a residual
// connection; both are fused into the conv step when the intermediate tensors feed nothing
// else. R must be a float32 run-time tensor of the same shape, produced before the conv runs.
FusionMatch match_conv_silu_residual(const FusionGraph& g, size_t idx,
                                     const ProducedBefore& produced) {
    const Node& node = g.graph.nodes[idx];
    FusionMatch m;
    m.inputs = node.inputs;
    m.outputs = node.outputs;
    if (node.op_type != "Conv" || node.outputs.size() != 1) return m;
    const std::string& c = node.outputs[0];
    size_t sig = kNone;
    const std::vector<size_t>* readers = g.consumers_of(c);
    if (readers && readers->size() == 2 && !g.graph_outputs.count(c)) {
        for (size_t k : *readers) {
            const Node& n = g.graph.nodes[k];
            if (n.op_type == "Sigmoid" && n.inputs.size() == 1 && n.outputs.size() == 1) sig = k;
        }
        for (size_t k : *readers) {
            const Node& n = g.graph.nodes[k];
            if (sig == kNone || n.op_type != "Mul" || n.inputs.size() != 2 ||
                n.outputs.size() != 1) {
                continue;
            }
            const std::string& sg = g.graph.nodes[sig].outputs[0];
            if (((n.inputs[0] == c && n.inputs[1] == sg) ||
                 (n.inputs[1] == c && n.inputs[0] == sg)) &&
                g.sole_consumer(sg, k)) {
                m.conv.silu = true;
                m.fused = {sig, k};
                m.outputs = n.outputs;
            }
        }
    }
    const std::string& t = m.outputs[0];
    const std::vector<size_t>* tr = g.consumers_of(t);
    if (tr && tr->size() == 1 && !g.graph_outputs.count(t)) {
        const Node& n = g.graph.nodes[(*tr)[0]];
        const std::string& r =
            n.inputs.size() == 2 ? (n.inputs[0] == t ? n.inputs[1] : n.inputs[0]) : t;
        if (n.op_type == "Add" && n.outputs.size() == 1 && r != t && !r.empty() && produced(r) &&
            g.descs.at(r).shape == g.descs.at(t).shape &&
            g.descs.at(r).dtype == DType::Float32) {
            m.conv.residual = true;
            m.fused.push_back((*tr)[0]);
            m.outputs = n.outputs;
            m.inputs.resize(3);  // R goes to input 3, after an absent bias if need be
            m.inputs.push_back(r);
        }
    }
    return m;
}

}  // namespace

FusionGraph::FusionGraph(const Graph& g, const std::unordered_map<std::string, TensorDesc>& d,
                         const std::vector<size_t>& order, const std::vector<TensorDesc>& outputs)
    : graph(g), descs(d) {
    for (const auto& o : outputs) graph_outputs.insert(o.name);
    for (size_t idx : order) {
        for (const auto& in : g.nodes[idx].inputs) {
            if (!in.empty()) consumers[in].push_back(idx);
        }
    }
}

const std::vector<size_t>* FusionGraph::consumers_of(const std::string& t) const {
    auto it = consumers.find(t);
    return it == consumers.end() ? nullptr : &it->second;
}

bool FusionGraph::sole_consumer(const std::string& t, size_t node) const {
    const std::vector<size_t>* readers = consumers_of(t);
    return readers && !graph_outputs.count(t) &&
           std::all_of(readers->begin(), readers->end(), [&](size_t c) { return c == node; });
}

FusionMatch match_fusion(const FusionGraph& g, size_t node, const ProducedBefore& produced) {
    return match_conv_silu_residual(g, node, produced);
}

}  // namespace lowbit
