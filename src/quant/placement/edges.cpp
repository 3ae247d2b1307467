// From selected nodes to Q/DQ pairs: one activation Q/DQ per tensor shared by its quantized
// consumer edges, weight Q/DQs per output channel, Concat groups that share one scale
// (research/modelopt.md §3.5), and the notes on every candidate left in high precision.
#include "quant/placement/placer.h"

#include <fmt/format.h>

#include <algorithm>
#include <numeric>
#include <unordered_set>

namespace lowbit::quant::placement_detail {

void Placer::add_edge(std::map<std::string, size_t>& index, const std::string& tensor, size_t node,
                      size_t input, const std::string& rule) {
    auto it = index.find(tensor);
    if (it == index.end()) {
        ActivationQdq a;
        a.tensor = tensor;
        a.rule = rule;
        a.constant = v_.is_constant(tensor);
        long p = v_.producer(tensor);
        a.from_softmax = p >= 0 && v_.node(static_cast<size_t>(p)).op_type == "Softmax";
        index[tensor] = out_.activations.size();
        out_.activations.push_back(a);
        it = index.find(tensor);
    }
    auto& edges = out_.activations[it->second].edges;
    if (std::find(edges.begin(), edges.end(), std::make_pair(node, input)) == edges.end()) {
        edges.emplace_back(node, input);
    }
}

// Per-op input rules (research/modelopt.md §3.4), applied the way ORT's QDQ quantizer and
// ModelOpt's post-processing combine them:
//  1. every input a selected node's rule names gets a Q/DQ pair, and by default every reader of
//     that tensor reads the DequantizeLinear output;
//  2. except the edges kept float on purpose: fused internal edges of partially quantized nodes
//     (the residual Add's main input), inputs of excluded Conv/Gemm/MatMul (Step F), and Add-head
//     inputs that no other quantized node reads (Step G);
//  3. a pair that nobody reads any more is dropped.
// (ORT would also re-point a graph output to the DQ output; lowbit keeps graph outputs float.)
void Placer::assign_edges() {
    std::map<std::string, size_t> index;
    std::vector<std::pair<size_t, size_t>> clips;
    for (size_t i : v_.topo()) {
        if (selected_rule_[i].empty()) continue;
        const Node& node = v_.node(i);
        const std::string& op = node.op_type;
        const std::string& rule = selected_rule_[i];
        out_.selected.emplace_back(i, rule);
        auto act = [&](size_t k) {
            if (k >= node.inputs.size() || node.inputs[k].empty()) return;
            if (!is_float_tensor(node.inputs[k])) return;
            add_edge(index, node.inputs[k], i, k, rule);
        };
        auto weight = [&](size_t k, int64_t axis) {
            if (k >= node.inputs.size() || node.inputs[k].empty()) return;
            const std::string& w = node.inputs[k];
            const Tensor* t = v_.graph().initializer(w);
            if (!t || t->dtype() != DType::Float32) {
                act(k);
                return;
            }
            WeightQdq q;
            q.node = i;
            q.input = k;
            q.tensor = w;
            q.axis = axis < static_cast<int64_t>(t->rank()) ? axis : -1;
            q.rule = axis >= 0 ? fmt::format("weight of {}, per output channel (axis {})",
                                             node.name, axis)
                               : fmt::format("weight of {}, per tensor", node.name);
            out_.weights.push_back(q);
        };
        if (op == "Conv") {
            act(0);
            weight(1, 0);
        } else if (op == "ConvTranspose") {
            act(0);
            weight(1, 1);
        } else if (op == "Gemm") {
            act(0);
            if (node.inputs.size() > 1 && v_.is_initializer(node.inputs[1])) {
                weight(1, node.attr_int("transB", 0) ? 0 : 1);
            } else {
                act(1);
            }
        } else if (op == "MatMul") {
            act(0);
            if (node.inputs.size() > 1 && v_.is_initializer(node.inputs[1])) {
                const Tensor* t = v_.graph().initializer(node.inputs[1]);
                weight(1, t->rank() >= 2 ? static_cast<int64_t>(t->rank()) - 1 : -1);
            } else {
                act(1);
            }
        } else if (op == "MaxPool" || op == "AveragePool" || op == "Resize" ||
                   op == "BatchNormalization" || op == "LayerNormalization" || op == "LRN") {
            act(0);
        } else if (op == "Clip") {
            clips.emplace_back(i, 0);
        } else {
            for (size_t k = 0; k < node.inputs.size(); ++k) act(k);
        }
    }
    // Clip quantizes its input only when another node already does.
    for (const auto& [i, k] : clips) {
        const std::string& t = v_.node(i).inputs[k];
        if (index.count(t)) add_edge(index, t, i, k, selected_rule_[i]);
    }
    // Every reader of a quantized tensor, minus the float-on-purpose edges.
    auto quantized_for_other = [&](const ActivationQdq& a, size_t node) {
        for (const auto& [c, k] : a.edges) {
            if (c != node && !selected_rule_[c].empty() && !no_quant_edges_.count({c, k}) &&
                !conditional_edges_.count({c, k})) {
                return true;
            }
        }
        return false;
    };
    for (auto& a : out_.activations) {
        std::vector<std::pair<size_t, size_t>> edges;
        for (size_t c : v_.consumers(a.tensor)) {
            const Node& node = v_.node(c);
            if (!exclude_reason_[c].empty() && is_linear_op(node.op_type)) continue;
            for (size_t k = 0; k < node.inputs.size(); ++k) {
                if (node.inputs[k] != a.tensor || no_quant_edges_.count({c, k})) continue;
                if (conditional_edges_.count({c, k}) && !quantized_for_other(a, c)) continue;
                edges.emplace_back(c, k);
            }
        }
        // The rule shown is that of the first selected reader still reading the DQ output.
        for (const auto& e : edges) {
            if (!selected_rule_[e.first].empty()) {
                a.rule = selected_rule_[e.first];
                break;
            }
        }
        a.edges = std::move(edges);
    }
    std::erase_if(out_.activations, [](const ActivationQdq& a) { return a.edges.empty(); });
}

// Concat groups (ModelOpt's concat_elimination pass): a quantized Concat output and each of its
// quantized inputs share one range, so TensorRT can move the Q above the Concat.
void Placer::concat_groups() {
    std::map<std::string, size_t> index;
    for (size_t a = 0; a < out_.activations.size(); ++a) index[out_.activations[a].tensor] = a;
    std::vector<size_t> parent(out_.activations.size());
    std::iota(parent.begin(), parent.end(), 0);
    std::function<size_t(size_t)> find = [&](size_t x) {
        while (parent[x] != x) x = parent[x] = parent[parent[x]];
        return x;
    };
    std::vector<bool> grouped(out_.activations.size(), false);
    for (size_t i : v_.topo()) {
        const Node& node = v_.node(i);
        if (node.op_type != "Concat" || node.outputs.empty()) continue;
        auto o = index.find(node.outputs[0]);
        if (o == index.end()) continue;
        grouped[o->second] = true;
        for (const auto& in : node.inputs) {
            auto it = index.find(in);
            if (it == index.end()) continue;
            grouped[it->second] = true;
            parent[find(it->second)] = find(o->second);
        }
    }
    std::map<size_t, size_t> root_to_group;
    for (size_t a = 0; a < out_.activations.size(); ++a) {
        if (!grouped[a]) continue;
        size_t r = find(a);
        auto it = root_to_group.find(r);
        if (it == root_to_group.end()) {
            it = root_to_group.emplace(r, out_.groups.size()).first;
            out_.groups.emplace_back();
        }
        out_.groups[it->second].push_back(a);
        out_.activations[a].group = static_cast<int>(it->second);
    }
    // Singleton groups carry no sharing.
    for (auto& a : out_.activations) {
        if (a.group >= 0 && out_.groups[static_cast<size_t>(a.group)].size() < 2) a.group = -2;
    }
    std::vector<std::vector<size_t>> kept;
    std::map<int, int> renumber;
    for (size_t gi = 0; gi < out_.groups.size(); ++gi) {
        if (out_.groups[gi].size() < 2) continue;
        renumber[static_cast<int>(gi)] = static_cast<int>(kept.size());
        kept.push_back(out_.groups[gi]);
    }
    for (auto& a : out_.activations) {
        a.group = a.group >= 0 ? renumber[a.group] : -1;
    }
    out_.groups = std::move(kept);
}

void Placer::explain_skips() {
    const auto int8_set = default_quantizable_ops(QuantMode::Int8);
    std::set<std::string> candidates(int8_set.begin(), int8_set.end());
    candidates.insert(opset_.begin(), opset_.end());
    std::set<size_t> selected;
    for (const auto& [i, r] : out_.selected) selected.insert(i);
    for (size_t i : v_.topo()) {
        const Node& node = v_.node(i);
        if (!exclude_reason_[i].empty()) {
            out_.excluded.push_back({node.name, node.op_type, exclude_reason_[i]});
        }
        if (selected.count(i)) continue;
        if (!candidates.count(node.op_type) && !is_linear_op(node.op_type)) continue;
        std::string reason = skip_reason_[i];
        if (!in_set(node.op_type) && exclude_reason_[i].empty()) {
            reason = fmt::format("op type {} is not quantized in this mode{}", node.op_type,
                                 o_.mode == QuantMode::Fp8 ? " (FP8 quantizes Conv, Gemm, "
                                                             "MatMul and Add only)"
                                                           : "");
        }
        if (reason.empty()) reason = "not selected by the placement rules";
        out_.skipped.push_back({node.name, node.op_type, reason});
    }
}

}  // namespace lowbit::quant::placement_detail
