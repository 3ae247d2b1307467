// Step A (residual Adds: which input is the fusible backbone, with lowest common ancestors) and
// Steps C-D (CASK partitions seeded by Conv/ConvTranspose/Gemm/MatMul, KGEN pointwise groups)
// of ModelOpt's partitioner (research/modelopt.md §3.3-§3.4).
#include "quant/placement/placer.h"

#include <fmt/format.h>

#include <algorithm>
#include <deque>
#include <numeric>
#include <unordered_set>

namespace lowbit::quant::placement_detail {

namespace {

bool optional_elem(Elem e) {
    return e == Elem::BiasAdd || e == Elem::ConstMul;
}

}  // namespace

bool Placer::elem_matches(size_t n, Elem e) const {
    const Node& node = v_.node(n);
    const std::string& op = node.op_type;
    switch (e) {
        case Elem::Conv: return op == "Conv" || op == "ConvTranspose";
        case Elem::BiasAdd: return op == "Add" && v_.has_constant_input(n);
        case Elem::ConstMul: return op == "Mul" && v_.has_constant_input(n);
        case Elem::Relu: return op == "Relu";
        case Elem::BatchNorm: return op == "BatchNormalization";
        case Elem::MaxPool: return op == "MaxPool";
        case Elem::Mul: return op == "Mul";
        case Elem::Sigmoid: return op == "Sigmoid";
        case Elem::SiluMul: {
            // x * Sigmoid(x): one input is a Sigmoid of the other.
            if (op != "Mul" || node.inputs.size() != 2) return false;
            for (size_t k = 0; k < 2; ++k) {
                long p = v_.producer(node.inputs[k]);
                if (p >= 0 && v_.node(static_cast<size_t>(p)).op_type == "Sigmoid" &&
                    v_.node(static_cast<size_t>(p)).inputs[0] == node.inputs[1 - k]) {
                    return true;
                }
            }
            return false;
        }
    }
    return false;
}

// Walks backwards from n along `pat` (copy ops are wildcards, BiasAdd/ConstMul optional).
// Returns the Conv that ends the path, or kNone.
int Placer::match_path(size_t n, const std::vector<Elem>& pat, size_t k, int depth) const {
    if (k >= pat.size() || depth > 24) return kNone;
    const Elem e = pat[k];
    if (elem_matches(n, e)) {
        if (e == Elem::Conv) return static_cast<int>(n);
        for (const auto& in : v_.node(n).inputs) {
            if (in.empty() || v_.is_constant(in)) continue;
            long p = v_.producer(in);
            if (p < 0) continue;
            int r = match_path(static_cast<size_t>(p), pat, k + 1, depth + 1);
            if (r != kNone) return r;
        }
    }
    if (optional_elem(e)) {
        int r = match_path(n, pat, k + 1, depth + 1);
        if (r != kNone) return r;
    }
    if (is_copy_op(v_.node(n).op_type)) {
        for (const auto& in : v_.node(n).inputs) {
            if (in.empty() || v_.is_constant(in)) continue;
            long p = v_.producer(in);
            if (p < 0) continue;
            int r = match_path(static_cast<size_t>(p), pat, k, depth + 1);
            if (r != kNone) return r;
        }
    }
    return kNone;
}

// The Conv a node's output is fused onto by TensorRT, if any (Step A's fusible backbone).
int Placer::backbone(size_t n) {
    auto hit = backbone_cache_.find(n);
    if (hit != backbone_cache_.end()) return hit->second;
    using E = Elem;
    std::vector<std::vector<Elem>> paths = {
        {E::BiasAdd, E::ConstMul, E::Conv},
        {E::Relu, E::BiasAdd, E::ConstMul, E::Conv},
        {E::BatchNorm, E::BiasAdd, E::Conv},
        {E::Relu, E::BatchNorm, E::BiasAdd, E::Conv},
        {E::MaxPool, E::Relu, E::BatchNorm, E::BiasAdd, E::Conv},
        {E::Mul, E::Sigmoid, E::BatchNorm, E::Conv},
    };
    // lowbit's addition: the BN-folded SiLU block of YOLO exports.
    if (!o_.modelopt_parity) paths.push_back({E::SiluMul, E::Sigmoid, E::BiasAdd, E::Conv});
    int r = kNone;
    for (const auto& p : paths) {
        r = match_path(n, p, 0, 0);
        if (r != kNone) break;
    }
    backbone_cache_[n] = r;
    return r;
}

// Nearest common ancestor of two nodes (each counts as its own ancestor) and the backward path
// lengths from a and from b. As ModelOpt's find_lowest_common_ancestor: the common ancestor
// closest to a (shortest paths here; ModelOpt's DFS distances are order-dependent), ties broken
// by the distance from b, then by the later node in topological order.
std::pair<long, std::pair<int, int>> Placer::lowest_common_ancestor(size_t a, size_t b) const {
    auto bfs = [&](size_t s) {
        std::unordered_map<size_t, int> d{{s, 0}};
        std::deque<size_t> q{s};
        while (!q.empty()) {
            size_t x = q.front();
            q.pop_front();
            for (size_t p : v_.parents(x)) {
                if (!d.count(p)) {
                    d[p] = d[x] + 1;
                    q.push_back(p);
                }
            }
        }
        return d;
    };
    auto da = bfs(a), db = bfs(b);
    long best = -1;
    std::pair<int, int> dist{0, 0};
    for (const auto& [node, d1] : da) {
        auto it = db.find(node);
        if (it == db.end()) continue;
        const std::pair<int, int> d{d1, it->second};
        if (best < 0 || d < dist ||
            (d == dist && v_.topo_rank(node) > v_.topo_rank(static_cast<size_t>(best)))) {
            best = static_cast<long>(node);
            dist = d;
        }
    }
    return {best, dist};
}

// Step A: for each Add of two produced, non-constant tensors decide which input is the main
// (fusible) branch; the other is the residual (skip) input.
void Placer::residual_map() {
    for (size_t i = 0; i < n_; ++i) {
        const Node& node = v_.node(i);
        if (node.op_type != "Add" || node.inputs.size() != 2) continue;
        if (v_.is_constant(node.inputs[0]) || v_.is_constant(node.inputs[1])) continue;
        long p0 = v_.producer(node.inputs[0]), p1 = v_.producer(node.inputs[1]);
        if (p0 < 0 || p1 < 0) continue;
        int b0 = backbone(static_cast<size_t>(p0)), b1 = backbone(static_cast<size_t>(p1));
        if (b0 == kNone && b1 == kNone) continue;
        auto [lca, d] = lowest_common_ancestor(static_cast<size_t>(p0), static_cast<size_t>(p1));
        size_t main;
        if (b0 != kNone && b1 != kNone) {
            if (b0 == b1) continue;
            main = d.first > d.second ? 0 : 1;  // the longer path to the LCA is the main branch
        } else {
            int b = b0 != kNone ? b0 : b1;
            if (lca == b) continue;  // the other branch hangs off the backbone's own output
            main = b0 != kNone ? 0 : 1;
        }
        residual_main_[i] = main;
        const int bb = main == 0 ? b0 : b1;
        const Node& conv = v_.node(static_cast<size_t>(bb));
        const bool silu =
            !o_.modelopt_parity && v_.producer(node.inputs[main]) >= 0 &&
            elem_matches(static_cast<size_t>(v_.producer(node.inputs[main])), Elem::SiluMul) &&
            backbone(static_cast<size_t>(v_.producer(node.inputs[main]))) == bb;
        residual_note_[i] = fmt::format("main input '{}' is fused into {}{}", node.inputs[main],
                                        conv.name, silu ? " through Sigmoid->Mul (SiLU rule)" : "");
    }
}

// Whether a Mul may join a partition (§3.3 Step C): one variable input, or a sigmoid gate
// Mul <- Sigmoid <- (Conv | BatchNormalization <- Conv | Add); any other gate fed by Sigmoid or
// HardSigmoid is rejected; every other Mul is accepted.
bool Placer::sigmoid_gate(size_t mul) const {
    if (v_.variable_inputs(mul).size() <= 1) return true;
    bool gated = false;
    for (const auto& in : v_.node(mul).inputs) {
        long s = v_.producer(in);
        if (s < 0) continue;
        const std::string& sop = v_.node(static_cast<size_t>(s)).op_type;
        if (sop == "HardSigmoid") gated = true;
        if (sop != "Sigmoid") continue;
        gated = true;
        for (size_t p : v_.parents(static_cast<size_t>(s))) {
            const std::string& op = v_.node(p).op_type;
            if (op == "Conv" || op == "Add") return true;
            if (op == "BatchNormalization") {
                for (size_t c : v_.parents(p)) {
                    if (v_.node(c).op_type == "Conv") return true;
                }
            }
        }
    }
    return !gated;
}

void Placer::grow(size_t seed, int pid) {
    std::vector<size_t> stack{seed};
    while (!stack.empty()) {
        size_t n = stack.back();
        stack.pop_back();
        for (size_t c : v_.children(n)) {
            if (part_[c] != kNone || !exclude_reason_[c].empty() || hard_[c]) continue;
            const Node& cn = v_.node(c);
            const std::string& op = cn.op_type;
            if (is_copy_op(op) || is_pointwise_op(op)) {
                auto vars = v_.variable_inputs(c);
                bool all_in = !vars.empty();
                for (const auto& t : vars) {
                    long p = v_.producer(t);
                    all_in = all_in && p >= 0 && part_[static_cast<size_t>(p)] == pid;
                }
                if (all_in) {
                    if (op == "Mul" && !sigmoid_gate(c)) continue;
                    part_[c] = pid;
                    // A residual Add ends the fused group.
                    if (!(op == "Add" && residual_main_.count(c))) stack.push_back(c);
                    continue;
                }
                auto r = residual_main_.find(c);
                if (op == "Add" && r != residual_main_.end() &&
                    v_.producer(cn.inputs[r->second]) == static_cast<long>(n)) {
                    part_[c] = pid;  // the residual Add ends the fused group
                }
            } else if ((op == "BatchNormalization" || op == "Relu" || op == "MaxPool") &&
                       backbone(c) != kNone) {
                part_[c] = pid;
                stack.push_back(c);
            }
        }
    }
}

void Placer::partitions() {
    part_.assign(n_, kNone);
    auto new_partition = [&](size_t seed, int kind) {
        int pid = static_cast<int>(part_kind_.size());
        part_kind_.push_back(kind);
        part_head_.push_back(seed);
        part_[seed] = pid;
        if (!(v_.node(seed).op_type == "Add" && residual_main_.count(seed))) grow(seed, pid);
    };
    // Step C: CASK partitions, seeded by linear ops in topological order.
    for (size_t n : v_.topo()) {
        if (part_[n] != kNone || !exclude_reason_[n].empty() || hard_[n]) continue;
        if (is_linear_op(v_.node(n).op_type)) new_partition(n, 0);
    }
    // Step D: KGEN partitions, seeded by the remaining pointwise ops.
    for (size_t n : v_.topo()) {
        if (part_[n] != kNone || !exclude_reason_[n].empty() || hard_[n]) continue;
        const std::string& op = v_.node(n).op_type;
        if (is_pointwise_op(op) && (op != "Mul" || sigmoid_gate(n))) new_partition(n, 1);
    }
}

// Step G's parent test: in a CASK partition, a copy op all of whose parents follow one (depth
// <= 10), or one of the ops TensorRT fuses a pointwise tail onto.
bool Placer::follows_cask(size_t p, int depth) const {
    if (part_[p] != kNone && part_kind_[static_cast<size_t>(part_[p])] == 0) return true;
    const std::string& op = v_.node(p).op_type;
    if (op == "AveragePool" || op == "BatchNormalization" || op == "GlobalAveragePool" ||
        op == "MaxPool" || op == "Mul") {
        return true;
    }
    if (is_copy_op(op) && depth < 10) {
        auto ps = v_.parents(p);
        if (ps.empty()) return false;
        return std::all_of(ps.begin(), ps.end(),
                           [&](size_t q) { return follows_cask(q, depth + 1); });
    }
    return false;
}

}  // namespace lowbit::quant::placement_detail
