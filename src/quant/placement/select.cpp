// Steps E-J of ModelOpt's placement (research/modelopt.md §3.5-§3.6): which nodes get Q/DQ on
// their inputs (selected_rule_, with the rule that chose them) and why the others do not
// (skip_reason_). Each step is its own function; select() runs them in ModelOpt's order, which
// matters: leftovers look at the selection so far, the graph-output rule undoes selections.
#include "quant/placement/placer.h"

#include <fmt/format.h>

namespace lowbit::quant::placement_detail {

void Placer::select() {
    selected_rule_.assign(n_, "");
    skip_reason_.assign(n_, "");
    note_excluded_and_hard();
    if (select_op_types()) return;
    std::vector<bool> partial(n_, false);
    select_cask_heads(partial);
    const std::vector<size_t> add_heads = select_kgen_heads();
    select_layer_norms();
    select_leftovers();
    keep_graph_outputs_float(partial);
    condition_add_head_edges(add_heads);
}

void Placer::note_excluded_and_hard() {
    for (size_t i = 0; i < n_; ++i) {
        if (!exclude_reason_[i].empty())
            skip_reason_[i] = "excluded: " + exclude_reason_[i];
        else if (hard_[i])
            skip_reason_[i] =
                "part of a GELU / LayerNorm / masked-attention "
                "pattern kept in high precision (ModelOpt Step B)";
    }
}

// INT8 --op-types: every node of these types, no partitioning (ModelOpt behaviour). Returns
// whether it applied (and so the selection is complete).
bool Placer::select_op_types() {
    if (o_.mode != QuantMode::Int8 || o_.op_types.empty()) return false;
    for (size_t i = 0; i < n_; ++i) {
        if (exclude_reason_[i].empty() && in_set(v_.node(i).op_type)) {
            selected_rule_[i] = fmt::format("--op-types selects every {} node", v_.node(i).op_type);
        }
    }
    return true;
}

// Step E: CASK heads and partially quantizable (residual) nodes; `partial` marks the latter.
void Placer::select_cask_heads(std::vector<bool>& partial) {
    for (size_t i = 0; i < n_; ++i) {
        if (part_[i] == kNone || part_kind_[static_cast<size_t>(part_[i])] != 0) continue;
        const size_t head = part_head_[static_cast<size_t>(part_[i])];
        bool ext = false, internal = false;
        const Node& node = v_.node(i);
        for (size_t k = 0; k < node.inputs.size(); ++k) {
            const std::string& t = node.inputs[k];
            if (t.empty() || v_.is_constant(t)) continue;
            long p = v_.producer(t);
            if (p >= 0 && part_[static_cast<size_t>(p)] == part_[i]) {
                internal = true;
            } else {
                ext = true;
            }
        }
        if (ext && !internal) {
            if (in_set(node.op_type)) {
                selected_rule_[i] =
                    fmt::format("{} heading a fusible group (CASK partition)", node.op_type);
            } else {
                skip_reason_[i] =
                    fmt::format("op type {} is not quantized in this mode", node.op_type);
            }
        } else if (ext && internal) {
            partial[i] = true;
            if (!in_set(node.op_type)) {
                skip_reason_[i] =
                    fmt::format("op type {} is not quantized in this mode", node.op_type);
                continue;
            }
            auto r = residual_main_.find(i);
            selected_rule_[i] =
                r != residual_main_.end()
                    ? fmt::format("residual Add, skip input only ({})", residual_note_[i])
                    : "partially fused node: external inputs only";
            for (size_t k = 0; k < node.inputs.size(); ++k) {
                long p = node.inputs[k].empty() ? -1 : v_.producer(node.inputs[k]);
                if (p >= 0 && part_[static_cast<size_t>(p)] == part_[i])
                    no_quant_edges_.insert({i, k});
            }
        } else {
            skip_reason_[i] = fmt::format(
                "fused into the group of {} (no Q/DQ inside a "
                "TensorRT-fused group)",
                v_.node(head).name);
        }
    }
}

// Step G: KGEN heads. Returns the selected Add heads (their edges are settled last).
std::vector<size_t> Placer::select_kgen_heads() {
    std::vector<size_t> add_heads;
    for (size_t i = 0; i < n_; ++i) {
        if (part_[i] == kNone || part_kind_[static_cast<size_t>(part_[i])] != 1) continue;
        const size_t head = part_head_[static_cast<size_t>(part_[i])];
        const Node& node = v_.node(i);
        if (head != i) {
            skip_reason_[i] =
                fmt::format("inside the pointwise (KGEN) group of {}", v_.node(head).name);
            continue;
        }
        if (!in_set(node.op_type)) {
            skip_reason_[i] =
                fmt::format("pointwise head {} is not a quantizable op type", node.op_type);
            continue;
        }
        if (v_.has_constant_input(i)) {
            skip_reason_[i] =
                "pointwise op with a constant input (bias/scale arithmetic stays "
                "in high precision)";
            continue;
        }
        bool follows = false;
        for (size_t p : v_.parents(i)) follows = follows || follows_cask(p, 0);
        if (!follows) {
            skip_reason_[i] = "pointwise head not fed by a Conv/Gemm/MatMul group";
            continue;
        }
        if (node.op_type == "Add") {
            bool mask = false;
            for (size_t c : v_.children(i)) {
                if (v_.node(c).op_type != "Softmax") continue;
                for (size_t cc : v_.children(c)) mask = mask || v_.node(cc).op_type == "MatMul";
            }
            if (mask) {
                skip_reason_[i] = "attention-mask Add feeding Softmax -> MatMul";
                continue;
            }
            add_heads.push_back(i);
        }
        selected_rule_[i] = fmt::format(
            "{} heading a pointwise group after a Conv/Gemm/MatMul "
            "output (KGEN head)",
            node.op_type);
    }
    return add_heads;
}

// Step H: LayerNormalization fed by a CASK group (through copy ops).
void Placer::select_layer_norms() {
    for (size_t i = 0; i < n_; ++i) {
        const Node& node = v_.node(i);
        if (node.op_type != "LayerNormalization" || part_[i] != kNone ||
            !exclude_reason_[i].empty() || !in_set(node.op_type)) {
            continue;
        }
        long p = v_.producer(node.inputs[0]);
        if (p >= 0 && follows_cask(static_cast<size_t>(p), 0)) {
            selected_rule_[i] = "LayerNormalization after a Conv/Gemm/MatMul group";
        }
    }
}

// Step I: leftovers. Pooling ops need a quantized neighbour (fixed point); Resize is taken
// unconditionally, as ModelOpt does (its constant scales input keeps it from being a KGEN
// head, and it is not a pooling op).
void Placer::select_leftovers() {
    std::vector<size_t> window;
    for (size_t n : v_.topo()) {
        const Node& node = v_.node(n);
        if (part_[n] != kNone || !exclude_reason_[n].empty() || hard_[n] ||
            !selected_rule_[n].empty() || !in_set(node.op_type)) {
            continue;
        }
        if (is_pointwise_op(node.op_type) && v_.has_constant_input(n)) {
            skip_reason_[n] = "pointwise op with a constant input";
        } else if (is_pooling_op(node.op_type)) {
            window.push_back(n);
        } else if (node.op_type == "Resize") {
            selected_rule_[n] = "Resize data input (ModelOpt quantizes every Resize in INT8)";
        } else {
            selected_rule_[n] = fmt::format("{} outside any fused group", node.op_type);
        }
    }
    // One pass against the non-pooling selection, as ModelOpt's find_quantizable_nodes.
    std::vector<std::string> neighbours;
    for (size_t n : window) neighbours.push_back(selected_neighbour(n));
    for (size_t k = 0; k < window.size(); ++k) {
        const size_t n = window[k];
        if (!neighbours[k].empty()) {
            selected_rule_[n] = fmt::format("{} data input: neighbour {} is quantized",
                                            v_.node(n).op_type, neighbours[k]);
        } else {
            skip_reason_[n] = fmt::format("{} with no quantized neighbour", v_.node(n).op_type);
        }
    }
}

// The name of a selected node next to `n`, or "" when there is none.
std::string Placer::selected_neighbour(size_t n) const {
    // Consumers, directly or through copy ops.
    std::vector<size_t> stack = v_.children(n);
    std::set<size_t> seen;
    while (!stack.empty()) {
        size_t c = stack.back();
        stack.pop_back();
        if (!seen.insert(c).second) continue;
        if (!selected_rule_[c].empty()) return v_.node(c).name;
        if (is_copy_op(v_.node(c).op_type)) {
            for (size_t cc : v_.children(c)) stack.push_back(cc);
        }
    }
    // Producers, directly or through copy ops / Cast.
    stack = v_.parents(n);
    seen.clear();
    while (!stack.empty()) {
        size_t p = stack.back();
        stack.pop_back();
        if (!seen.insert(p).second) continue;
        if (!selected_rule_[p].empty()) return v_.node(p).name;
        if (is_copy_op(v_.node(p).op_type) || v_.node(p).op_type == "Cast") {
            for (size_t pp : v_.parents(p)) stack.push_back(pp);
        }
    }
    return "";
}

// Step J: graph-output producers stay in high precision unless Conv/Gemm/MatMul or partial.
void Placer::keep_graph_outputs_float(const std::vector<bool>& partial) {
    for (size_t i = 0; i < n_; ++i) {
        if (selected_rule_[i].empty() || !v_.produces_graph_output(i)) continue;
        const std::string& op = v_.node(i).op_type;
        if (op == "Conv" || op == "Gemm" || op == "MatMul" || partial[i]) continue;
        selected_rule_[i].clear();
        skip_reason_[i] = "produces a graph output (left alone)";
    }
}

// Add heads: inputs not coming from a fused group, and quantized for no other consumer,
// stay float on that edge (resolved in assign_edges()).
void Placer::condition_add_head_edges(const std::vector<size_t>& add_heads) {
    for (size_t a : add_heads) {
        if (selected_rule_[a].empty()) continue;
        const Node& node = v_.node(a);
        for (size_t k = 0; k < node.inputs.size(); ++k) {
            long p = v_.producer(node.inputs[k]);
            if (p < 0 || follows_cask(static_cast<size_t>(p), 0)) continue;
            conditional_edges_.insert({a, k});
        }
    }
}

}  // namespace lowbit::quant::placement_detail
