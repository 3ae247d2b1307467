// Exclusions before placement: the user's (--exclude regexes, exact names, op types) and
// ModelOpt's automatic ones (small-channel / FP8 depthwise / large-kernel Convs, GEMV, attention
// MatMuls; research/modelopt.md §3.2, §4), then Step B's patterns kept in high precision.
#include "quant/placement/placer.h"

#include <fmt/format.h>

#include <algorithm>
#include <unordered_set>

namespace lowbit::quant::placement_detail {

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
    // --placement all: the int8 and bf16 kernels (runtime/kernels/cpu/qconv.cpp, fp8conv.cpp)
    // run any 2-D Conv; the rules below exist only for TensorRT's kernel coverage.
    if (o_.conv_placement == ConvPlacement::All && w->rank() == 4) return "";
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

}  // namespace lowbit::quant::placement_detail
