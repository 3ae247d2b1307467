// Public entry points of Q/DQ placement (quant/placement.h): the default op sets, the regex
// helpers and place_qdq, which runs the Placer's steps (quant/placement/placer.h) in order.
#include "quant/placement.h"

#include <fmt/format.h>

#include "quant/placement/placer.h"

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

namespace placement_detail {

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

}  // namespace placement_detail

using placement_detail::compile_regex;
using placement_detail::prefix_match;
using placement_detail::Placer;

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

Result<ConvPlacement> parse_conv_placement(const std::string& s) {
    if (s == "modelopt") return ConvPlacement::ModelOpt;
    if (s == "all") return ConvPlacement::All;
    return invalid(
        "--placement '{}': expected modelopt (ModelOpt's Conv rules, the default) or all (every "
        "2-D Conv with constant weights)",
        s);
}

Result<Placement> place_qdq(const Graph& g, const TypeLookup& types, const PlacementOptions& opts) {
    Placer p(g, types, opts);
    return p.run();
}

}  // namespace lowbit::quant
