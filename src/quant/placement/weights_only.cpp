// Weight-only placement (w4a16, quant/placement.h place_weights_only): a weight DequantizeLinear
// on every Conv, Gemm and MatMul whose weight is a float32 initializer, minus the user's
// exclusions. No activation is quantized, so none of the partitioning rules apply.
#include <fmt/format.h>

#include <unordered_set>
#include <variant>

#include "quant/placement.h"
#include "quant/placement/placer.h"

namespace lowbit::quant {

using placement_detail::compile_regex;
using placement_detail::prefix_match;

namespace {

// The output-channel axis of node `n`'s weight (its input 1), or a reason it has none.
std::variant<int64_t, std::string> weight_axis(const Graph& g, const Node& n) {
    if (n.inputs.size() < 2 || n.inputs[1].empty()) return std::string("no weight input");
    const Tensor* w = g.initializer(n.inputs[1]);
    if (!w) return std::string("weight is not an initializer");
    if (w->dtype() != DType::Float32) {
        return fmt::format("weight is {}, not float32", dtype_name(w->dtype()));
    }
    const size_t rank = w->shape().size();
    if (n.op_type == "Conv") {
        if (rank < 3) return fmt::format("Conv weight of rank {}", rank);
        return int64_t{0};
    }
    if (rank != 2) return fmt::format("{} weight of rank {} (2-D only)", n.op_type, rank);
    if (n.op_type == "Gemm") {
        const Attr* t = n.attr("transB");
        return int64_t{t && t->kind == Attr::Kind::Int && t->i != 0 ? 0 : 1};
    }
    return int64_t{1};  // MatMul: B is [K, N]
}

}  // namespace

Result<Placement> place_weights_only(const Graph& g, const PlacementOptions& opts) {
    std::vector<std::pair<std::string, std::regex>> regexes;
    for (const auto& p : opts.exclude_regex) {
        std::string err;
        auto re = compile_regex(p, &err);
        if (!re) return invalid("--exclude '{}' is not a valid regular expression: {}", p, err);
        regexes.emplace_back(p, *re);
    }
    std::unordered_set<std::string> ops = {"Conv", "Gemm", "MatMul"};
    if (!opts.op_types.empty()) {
        for (const auto& op : opts.op_types) {
            if (!ops.count(op)) {
                return invalid("--op-types {}: weight-only modes quantize Conv, Gemm and MatMul",
                               op);
            }
        }
        ops = std::unordered_set<std::string>(opts.op_types.begin(), opts.op_types.end());
    }
    const std::unordered_set<std::string> names(opts.exclude_names.begin(),
                                                opts.exclude_names.end());
    const std::unordered_set<std::string> op_types(opts.exclude_op_types.begin(),
                                                   opts.exclude_op_types.end());
    Placement out;
    for (size_t i = 0; i < g.nodes.size(); ++i) {
        const Node& n = g.nodes[i];
        if (!ops.count(n.op_type) || !n.domain.empty()) continue;
        std::string reason;
        if (names.count(n.name)) reason = "listed in the exclusion file (exact name)";
        for (const auto& [p, re] : regexes) {
            if (reason.empty() && !n.name.empty() && prefix_match(re, n.name)) {
                reason = fmt::format("matches --exclude '{}'", p);
            }
        }
        if (reason.empty() && op_types.count(n.op_type)) {
            reason = fmt::format("op type {} excluded by --exclude-op-types", n.op_type);
        }
        if (!reason.empty()) {
            out.excluded.push_back({n.name, n.op_type, reason});
            continue;
        }
        auto axis = weight_axis(g, n);
        if (auto* why = std::get_if<std::string>(&axis)) {
            out.skipped.push_back({n.name, n.op_type, *why});
            continue;
        }
        WeightQdq wq;
        wq.node = i;
        wq.input = 1;
        wq.tensor = n.inputs[1];
        wq.axis = std::get<int64_t>(axis);
        wq.rule = "weight-only: every Conv/Gemm/MatMul weight";
        out.weights.push_back(wq);
        out.selected.emplace_back(i, wq.rule);
    }
    return out;
}

}  // namespace lowbit::quant
