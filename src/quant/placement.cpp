#include "quant/placement.h"

#include <fmt/format.h>

#include <algorithm>
#include <deque>
#include <map>
#include <numeric>
#include <regex>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include "quant/graph_view.h"

namespace lowbit::quant {

std::vector<std::string> default_quantizable_ops(QuantMode mode) {
    if (mode == QuantMode::Fp8) return {"Conv", "Gemm", "MatMul", "Add"};
    // ORT's QLinear/QDQ registries plus ModelOpt's additions, minus the ops it deletes
    // (research/modelopt.md §3.1), as effective with ORT 1.2x.
    return {"Conv",
            "ConvTranspose",
            "Gemm",
            "MatMul",
            "Add",
            "Mul",
            "Clip",
            "MaxPool",
            "AveragePool",
            "GlobalAveragePool",
            "Resize",
            "BatchNormalization",
            "LayerNormalization",
            "LRN",
            "HardSwish"};
}

namespace {

// std::regex reports bad patterns by throwing; this is the only place that can, and it never
// lets an exception out.
std::optional<std::regex> compile_regex(const std::string& pattern, std::string* error) {
    try {
        return std::regex(pattern, std::regex::ECMAScript);
    } catch (const std::regex_error& e) {
        if (error) *error = e.what();
        return std::nullopt;
    }
}

bool prefix_match(const std::regex& re, const std::string& name) {
    return std::regex_search(name, re, std::regex_constants::match_continuous);
}

// Elements of the fusible-backbone paths of Step A (walked backwards from the Add's producer).
enum class Elem { Conv, BiasAdd, ConstMul, Relu, BatchNorm, MaxPool, Mul, SiluMul, Sigmoid };

bool optional_elem(Elem e) {
    return e == Elem::BiasAdd || e == Elem::ConstMul;
}

constexpr int kNone = -1;

class Placer {
public:
    Placer(const Graph& g, const TypeLookup& types, const PlacementOptions& o)
        : v_(g), types_(types), o_(o), n_(g.nodes.size()) {}

    Result<Placement> run();

private:
    const GraphView v_;
    const TypeLookup& types_;
    const PlacementOptions& o_;
    const size_t n_;
    std::set<std::string> opset_;

    std::vector<std::string> exclude_reason_;  // non-empty: excluded before placement
    std::vector<bool> hard_;                   // Step B non-quantizable patterns
    std::vector<int> part_;                    // partition id per node
    std::vector<int> part_kind_;               // 0 = CASK, 1 = KGEN
    std::vector<size_t> part_head_;
    std::unordered_map<size_t, size_t> residual_main_;  // Add -> index of its main input
    std::unordered_map<size_t, std::string> residual_note_;
    std::vector<std::string> selected_rule_;              // non-empty: selected
    std::set<std::pair<size_t, size_t>> no_quant_edges_;  // (node, input index)
    // Add-head inputs that keep a Q/DQ only if another consumer quantizes the tensor (Step G).
    std::set<std::pair<size_t, size_t>> conditional_edges_;
    std::vector<std::string> skip_reason_;
    std::unordered_map<size_t, int> backbone_cache_;

    Placement out_;

    bool in_set(const std::string& op) const { return opset_.count(op) > 0; }
    std::optional<TensorType> type_of(const std::string& t) const {
        if (const Tensor* init = v_.graph().initializer(t))
            return TensorType{init->dtype(), init->shape()};
        return types_ ? types_(t) : std::nullopt;
    }
    bool is_float_tensor(const std::string& t) const {
        auto tt = type_of(t);
        if (!tt || tt->dtype == DType::Undefined) return true;
        return tt->dtype == DType::Float32 || tt->dtype == DType::Float16 ||
               tt->dtype == DType::BFloat16 || tt->dtype == DType::Float64;
    }

    Status compute_exclusions();
    std::string conv_exclusion(size_t n) const;
    void mha_exclusions();
    std::string gemv_exclusion(size_t n) const;
    void hard_coded_patterns();

    int match_path(size_t n, const std::vector<Elem>& pat, size_t k, int depth) const;
    bool elem_matches(size_t n, Elem e) const;
    int backbone(size_t n);
    std::pair<long, std::pair<int, int>> lowest_common_ancestor(size_t a, size_t b) const;
    void residual_map();

    bool sigmoid_gate(size_t mul) const;
    void grow(size_t seed, int pid);
    void partitions();
    bool follows_cask(size_t n, int depth) const;
    void select();
    void assign_edges();
    void concat_groups();
    void explain_skips();

    void add_edge(std::map<std::string, size_t>& index, const std::string& tensor, size_t node,
                  size_t input, const std::string& rule);
};

Status Placer::compute_exclusions() {
    exclude_reason_.assign(n_, "");
    std::vector<std::pair<std::string, std::regex>> regexes;
    for (const auto& p : o_.exclude_regex) {
        std::string err;
        auto re = compile_regex(p, &err);
        if (!re) return invalid("--exclude '{}' is not a valid regular expression: {}", p, err);
        regexes.emplace_back(p, *re);
    }
    std::unordered_set<std::string> names(o_.exclude_names.begin(), o_.exclude_names.end());
    std::unordered_set<std::string> op_types(o_.exclude_op_types.begin(),
                                             o_.exclude_op_types.end());
    for (size_t i = 0; i < n_; ++i) {
        const Node& node = v_.node(i);
        if (names.count(node.name)) {
            exclude_reason_[i] = "listed in the exclusion file (exact name)";
            continue;
        }
        for (const auto& [p, re] : regexes) {
            if (!node.name.empty() && prefix_match(re, node.name)) {
                exclude_reason_[i] = fmt::format("matches --exclude '{}'", p);
                break;
            }
        }
        if (!exclude_reason_[i].empty()) continue;
        if (op_types.count(node.op_type)) {
            exclude_reason_[i] =
                fmt::format("op type {} excluded by --exclude-op-types", node.op_type);
            continue;
        }
        if (node.op_type == "Conv") exclude_reason_[i] = conv_exclusion(i);
        if (exclude_reason_[i].empty() && (node.op_type == "MatMul" || node.op_type == "Gemm")) {
            exclude_reason_[i] = gemv_exclusion(i);
        }
    }
    mha_exclusions();
    return Status::ok();
}

// ModelOpt's Conv rule (research/modelopt.md §3.2 item 3 for INT8, §4 for FP8; FP8 uses the
// 0.46+ "<= 16 channels" form).
std::string Placer::conv_exclusion(size_t n) const {
    const Node& node = v_.node(n);
    if (node.inputs.size() < 2 || !v_.is_initializer(node.inputs[1])) {
        return "weight is not a constant initializer (ModelOpt Conv rule)";
    }
    const Tensor* w = v_.graph().initializer(node.inputs[1]);
    if (w->rank() < 3) return "weight rank < 3";
    const int64_t oc = w->dim(0), ic = w->dim(1);
    const int64_t group = node.attr_int("group", 1);
    // As ModelOpt: the square / >= 3 tests read the kernel_shape attribute (absent = 1x1), the
    // FP8 filter-size test reads the weight's spatial dims.
    std::vector<int64_t> kernel = node.attr_ints("kernel_shape", {1, 1});
    bool square = true, all_ge3 = true;
    for (int64_t k : kernel) {
        square = square && k == kernel[0];
        all_ge3 = all_ge3 && k >= 3;
    }
    int64_t kprod = 1;
    for (size_t d = 2; d < w->rank(); ++d) kprod *= w->dim(d);
    const std::string dims =
        fmt::format("OC {}, IC/group {}, group {}, kernel {}", oc, ic, group, shape_str(kernel));
    if (o_.mode == QuantMode::Fp8) {
        if (oc <= 16 || ic <= 16) {
            return fmt::format(
                "FP8 small-channel or depthwise Conv ({}): OC or IC/group <= 16 "
                "(ModelOpt FP8 Conv rule)",
                dims);
        }
        if (kprod > 32) {
            return fmt::format(
                "FP8 large-kernel Conv ({}): kernel has {} > 32 elements "
                "(ModelOpt FP8 Conv rule)",
                dims, kprod);
        }
        return "";
    }
    if (oc >= 16 && ic >= 16) return "";
    const bool graph_input =
        std::any_of(node.inputs.begin(), node.inputs.end(),
                    [&](const std::string& t) { return v_.is_graph_input(t); });
    const bool keep = (group == 1 && (oc % 8 == 0 || ic % 8 == 0) &&
                       (graph_input || oc >= 16 || ic >= 16) && square) ||
                      (group > 1 && oc % 8 == 0 && all_ge3);
    if (keep) return "";
    return fmt::format(
        "INT8 small-channel Conv ({}) without a TensorRT INT8 kernel "
        "(ModelOpt Conv rule)",
        dims);
}

// ModelOpt's GEMV / small-GEMM rule (§3.2 item 2, with the 0.46+ N/K < 16 test).
std::string Placer::gemv_exclusion(size_t n) const {
    const Node& node = v_.node(n);
    if (node.inputs.size() < 2 || node.outputs.empty()) return "";
    auto out = type_of(node.outputs[0]);
    if (!out || out->shape.empty()) return "";
    const Shape& s = out->shape;
    const bool c0 = v_.is_constant(node.inputs[0]), c1 = v_.is_constant(node.inputs[1]);
    const size_t r = s.size();
    if (!c0 && !c1 && (s[r - 1] == 1 || (r >= 2 && s[r - 2] == 1))) {
        return fmt::format("GEMV: output {} has a unit inner dimension (ModelOpt GEMV rule)",
                           shape_str(s));
    }
    if ((c0 || c1) && r < 3 && std::find(s.begin(), s.end(), 1) != s.end()) {
        return fmt::format("small GEMM: output {} with a constant operand (ModelOpt GEMV rule)",
                           shape_str(s));
    }
    auto b = type_of(node.inputs[1]);
    if (b && b->shape.size() >= 2) {
        int64_t k = b->shape[b->shape.size() - 2], nn = b->shape.back();
        if (node.op_type == "Gemm" && node.attr_int("transB", 0)) std::swap(k, nn);
        if (k < 16 || nn < 16) {
            return fmt::format("small GEMM: K {} or N {} < 16 (ModelOpt 0.46+ GEMV rule)", k, nn);
        }
    }
    return "";
}

// Attention blocks: MatMul -> (Div|Mul|Add|Reshape|Transpose|Flatten|Cast)* -> Softmax ->
// (...)* -> MatMul (research/modelopt.md §3.2 item 1, §4).
void Placer::mha_exclusions() {
    auto passthrough = [](const std::string& op) {
        return op == "Div" || op == "Mul" || op == "Add" || op == "Reshape" || op == "Transpose" ||
               op == "Flatten" || op == "Cast";
    };
    auto layout_only = [](const std::string& op) {
        return op == "Reshape" || op == "Transpose" || op == "Flatten" || op == "Cast";
    };
    for (size_t m1 = 0; m1 < n_; ++m1) {
        if (v_.node(m1).op_type != "MatMul") continue;
        // Forward walk to a Softmax, then on to a MatMul, recording the compute ops between.
        struct Item {
            size_t node;
            std::vector<std::string> ops;
            bool after_softmax;
            int depth;
        };
        std::deque<Item> q{{m1, {}, false, 0}};
        while (!q.empty()) {
            Item it = q.front();
            q.pop_front();
            if (it.depth > 12) continue;
            for (size_t c : v_.children(it.node)) {
                const std::string& op = v_.node(c).op_type;
                if (op == "Softmax" && !it.after_softmax) {
                    Item nx{c, it.ops, true, it.depth + 1};
                    nx.ops.push_back(op);
                    q.push_back(nx);
                } else if (op == "MatMul" && it.after_softmax) {
                    // Found BMM1 = m1, BMM2 = c.
                    std::string reason;
                    auto k = type_of(v_.node(m1).inputs[1]);
                    if (o_.disable_mha_qdq) {
                        reason = "attention MatMul (--disable-mha-qdq)";
                    } else if (o_.mode == QuantMode::Int8) {
                        if (k && !k->shape.empty() && k->shape.back() > 512) {
                            reason = fmt::format(
                                "attention MatMul with sequence length {} > 512 "
                                "(ModelOpt INT8 MHA rule)",
                                k->shape.back());
                        }
                    } else {
                        std::vector<std::string> core;
                        for (const auto& s : it.ops) {
                            if (!layout_only(s)) core.push_back(s);
                        }
                        // fMHA-v2: optional Mul/Div, optional Add, then Softmax.
                        size_t i = 0;
                        if (i < core.size() && (core[i] == "Mul" || core[i] == "Div")) ++i;
                        if (i < core.size() && core[i] == "Add") ++i;
                        const bool fmha = i + 1 == core.size() && core[i] == "Softmax";
                        int64_t head = -1;
                        if (k && k->shape.size() >= 2) head = k->shape[k->shape.size() - 2];
                        if (!fmha) {
                            reason =
                                "attention MatMul outside the FP8 fMHA pattern "
                                "(ModelOpt FP8 MHA rule)";
                        } else if (head > 256 || (head >= 0 && head <= 8)) {
                            reason = fmt::format(
                                "attention MatMul with head size {} outside "
                                "(8, 256] (ModelOpt FP8 MHA rule)",
                                head);
                        }
                    }
                    if (!reason.empty()) {
                        for (size_t m : {m1, c}) {
                            if (exclude_reason_[m].empty()) exclude_reason_[m] = reason;
                        }
                    }
                } else if (passthrough(op)) {
                    Item nx{c, it.ops, it.after_softmax, it.depth + 1};
                    nx.ops.push_back(op);
                    q.push_back(nx);
                }
            }
        }
    }
}

// Step B: GELU chains, decomposed LayerNorm and masked attention cores are never partitioned.
void Placer::hard_coded_patterns() {
    hard_.assign(n_, false);
    auto single_child = [&](size_t n, const char* op) -> long {
        for (size_t c : v_.children(n)) {
            if (v_.node(c).op_type == op) return static_cast<long>(c);
        }
        return -1;
    };
    for (size_t i = 0; i < n_; ++i) {
        const std::string& op = v_.node(i).op_type;
        if (op == "Erf") {
            // Div -> Erf -> Add -> Mul -> Mul
            auto ps = v_.parents(i);
            long add = single_child(i, "Add");
            long mul1 = add >= 0 ? single_child(static_cast<size_t>(add), "Mul") : -1;
            long mul2 = mul1 >= 0 ? single_child(static_cast<size_t>(mul1), "Mul") : -1;
            if (ps.size() == 1 && v_.node(ps[0]).op_type == "Div" && mul2 >= 0) {
                for (long k : {static_cast<long>(ps[0]), static_cast<long>(i), add, mul1, mul2}) {
                    hard_[static_cast<size_t>(k)] = true;
                }
            }
        } else if (op == "ReduceMean") {
            // ReduceMean -> Sub -> Pow -> ReduceMean -> Add -> Sqrt -> Div
            long sub = single_child(i, "Sub");
            long pw = sub >= 0 ? single_child(static_cast<size_t>(sub), "Pow") : -1;
            long rm = pw >= 0 ? single_child(static_cast<size_t>(pw), "ReduceMean") : -1;
            long ad = rm >= 0 ? single_child(static_cast<size_t>(rm), "Add") : -1;
            long sq = ad >= 0 ? single_child(static_cast<size_t>(ad), "Sqrt") : -1;
            long dv = sq >= 0 ? single_child(static_cast<size_t>(sq), "Div") : -1;
            if (dv >= 0) {
                for (long k : {static_cast<long>(i), sub, pw, rm, ad, sq, dv}) {
                    hard_[static_cast<size_t>(k)] = true;
                }
            }
        } else if (op == "MatMul") {
            // MatMul -> Add(non-constant) -> Softmax -> MatMul
            long add = single_child(i, "Add");
            if (add < 0 || v_.variable_inputs(static_cast<size_t>(add)).size() < 2) continue;
            long sm = single_child(static_cast<size_t>(add), "Softmax");
            long mm = sm >= 0 ? single_child(static_cast<size_t>(sm), "MatMul") : -1;
            if (mm >= 0) {
                for (long k : {static_cast<long>(i), add, sm, mm})
                    hard_[static_cast<size_t>(k)] = true;
            }
        }
    }
}

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

void Placer::select() {
    selected_rule_.assign(n_, "");
    skip_reason_.assign(n_, "");
    for (size_t i = 0; i < n_; ++i) {
        if (!exclude_reason_[i].empty())
            skip_reason_[i] = "excluded: " + exclude_reason_[i];
        else if (hard_[i])
            skip_reason_[i] =
                "part of a GELU / LayerNorm / masked-attention "
                "pattern kept in high precision (ModelOpt Step B)";
    }

    // INT8 --op-types: every node of these types, no partitioning (ModelOpt behaviour).
    if (o_.mode == QuantMode::Int8 && !o_.op_types.empty()) {
        for (size_t i = 0; i < n_; ++i) {
            if (exclude_reason_[i].empty() && in_set(v_.node(i).op_type)) {
                selected_rule_[i] =
                    fmt::format("--op-types selects every {} node", v_.node(i).op_type);
            }
        }
        return;
    }

    // Step E: CASK heads and partially quantizable (residual) nodes.
    std::vector<bool> partial(n_, false);
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

    // Step G: KGEN heads.
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

    // Step H: LayerNormalization fed by a CASK group (through copy ops).
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

    // Step I: leftovers. Pooling ops need a quantized neighbour (fixed point); Resize is taken
    // unconditionally, as ModelOpt does (its constant scales input keeps it from being a KGEN
    // head, and it is not a pooling op).
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
    auto neighbour_selected = [&](size_t n) -> std::string {
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
    };
    // One pass against the non-pooling selection, as ModelOpt's find_quantizable_nodes.
    std::vector<std::string> neighbours;
    for (size_t n : window) neighbours.push_back(neighbour_selected(n));
    for (size_t k = 0; k < window.size(); ++k) {
        const size_t n = window[k];
        if (!neighbours[k].empty()) {
            selected_rule_[n] = fmt::format("{} data input: neighbour {} is quantized",
                                            v_.node(n).op_type, neighbours[k]);
        } else {
            skip_reason_[n] = fmt::format("{} with no quantized neighbour", v_.node(n).op_type);
        }
    }

    // Step J: graph-output producers stay in high precision unless Conv/Gemm/MatMul or partial.
    for (size_t i = 0; i < n_; ++i) {
        if (selected_rule_[i].empty() || !v_.produces_graph_output(i)) continue;
        const std::string& op = v_.node(i).op_type;
        if (op == "Conv" || op == "Gemm" || op == "MatMul" || partial[i]) continue;
        selected_rule_[i].clear();
        skip_reason_[i] = "produces a graph output (left alone)";
    }

    // Add heads: inputs not coming from a fused group, and quantized for no other consumer,
    // stay float on that edge (resolved in assign_edges()).
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

Result<Placement> Placer::run() {
    if (!o_.op_types.empty()) {
        opset_.insert(o_.op_types.begin(), o_.op_types.end());
        if (o_.mode == QuantMode::Fp8) {
            for (const auto& op : o_.op_types) {
                if (op != "Conv" && op != "Gemm" && op != "MatMul" && op != "Add") {
                    return invalid("--op-types {}: FP8 quantizes only Conv, Gemm, MatMul and Add",
                                   op);
                }
            }
        }
    } else {
        auto d = default_quantizable_ops(o_.mode);
        opset_.insert(d.begin(), d.end());
    }
    LOWBIT_TRY(compute_exclusions());
    hard_coded_patterns();
    residual_map();
    partitions();
    select();
    assign_edges();
    concat_groups();
    explain_skips();
    return std::move(out_);
}

}  // namespace

bool regex_prefix_match(const std::string& pattern, const std::string& name) {
    auto re = compile_regex(pattern, nullptr);
    return re && prefix_match(*re, name);
}

Status validate_regexes(const std::vector<std::string>& patterns) {
    for (const auto& p : patterns) {
        std::string err;
        if (!compile_regex(p, &err)) {
            return invalid("--exclude '{}' is not a valid regular expression: {}", p, err);
        }
    }
    return Status::ok();
}

Result<Placement> place_qdq(const Graph& g, const TypeLookup& types, const PlacementOptions& opts) {
    Placer p(g, types, opts);
    return p.run();
}

}  // namespace lowbit::quant
