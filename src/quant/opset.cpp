#include "quant/opset.h"

#include <fmt/format.h>

#include <set>
#include <unordered_set>

namespace lowbit::quant {

namespace {

bool is_default_domain(const std::string& d) {
    return d.empty() || d == "ai.onnx";
}

const std::set<std::string>& reduce_ops_18() {
    static const std::set<std::string> ops = {"ReduceL1",        "ReduceL2",   "ReduceLogSum",
                                              "ReduceLogSumExp", "ReduceMax",  "ReduceMean",
                                              "ReduceMin",       "ReduceProd", "ReduceSumSquare"};
    return ops;
}

Status upgrade_graph(Graph& g, int64_t from, int64_t target, std::vector<std::string>* notes,
                     std::unordered_set<std::string>& names) {
    auto take = [&](const std::string& base) {
        std::string name = base;
        for (int k = 1; names.count(name); ++k) name = fmt::format("{}_{}", base, k);
        names.insert(name);
        return name;
    };
    for (auto& n : g.nodes) {
        for (auto& [key, a] : n.attrs) {
            if (a.g) LOWBIT_TRY(upgrade_graph(*a.g, from, target, notes, names));
            for (auto& sg : a.graphs) {
                if (sg) LOWBIT_TRY(upgrade_graph(*sg, from, target, notes, names));
            }
        }
        if (!is_default_domain(n.domain)) continue;
        if (from < 18 && target >= 18 && reduce_ops_18().count(n.op_type)) {
            auto it = n.attrs.find("axes");
            if (it != n.attrs.end()) {
                std::vector<int64_t> axes = it->second.ints;
                n.attrs.erase(it);
                std::string init = take(n.name.empty() ? n.op_type + "_axes" : n.name + "_axes");
                g.set_initializer(
                    init, Tensor::from_vector<int64_t>(DType::Int64,
                                                       {static_cast<int64_t>(axes.size())}, axes));
                if (n.inputs.size() < 2) n.inputs.resize(2);
                n.inputs[1] = init;
                if (notes) {
                    notes->push_back(fmt::format(
                        "{}: axes attribute moved to input '{}' (opset 18)", n.describe(), init));
                }
            }
        }
        if (from < 18 && target >= 18 && n.op_type == "Split") {
            const bool has_split = n.inputs.size() >= 2 && !n.inputs[1].empty();
            if (!has_split && !n.has_attr("num_outputs")) {
                n.attrs["num_outputs"] = Attr::make_int(static_cast<int64_t>(n.outputs.size()));
                if (notes) {
                    notes->push_back(fmt::format("{}: num_outputs={} written out (opset 18)",
                                                 n.describe(), n.outputs.size()));
                }
            }
        }
        if (from < 20 && target >= 20 && n.op_type == "GridSample") {
            // GridSample-20 renamed the interpolation modes (same meaning).
            auto it = n.attrs.find("mode");
            if (it != n.attrs.end() && it->second.kind == Attr::Kind::String &&
                (it->second.s == "bilinear" || it->second.s == "bicubic")) {
                const std::string old = it->second.s;
                it->second.s = old == "bilinear" ? "linear" : "cubic";
                if (notes) {
                    notes->push_back(fmt::format("{}: mode '{}' renamed '{}' (opset 20)",
                                                 n.describe(), old, it->second.s));
                }
            }
        }
        if (from < 20 && target >= 20 && n.op_type == "DFT") {
            return unsupported(
                "{}: DFT changed in opset 20 (axis became an input); lowbit does not rewrite "
                "it, so it cannot raise this model's opset to {}",
                n.describe(), target);
        }
        if (from < 21 && target >= 21 && n.op_type == "GroupNormalization") {
            return unsupported(
                "{}: GroupNormalization's scale and bias became per-channel in opset 21; lowbit "
                "does not rewrite it, so it cannot raise this model's opset to {}",
                n.describe(), target);
        }
        if (from < 16 && target >= 16 && n.op_type == "RoiAlign" &&
            !n.has_attr("coordinate_transformation_mode")) {
            n.attrs["coordinate_transformation_mode"] = Attr::make_string("output_half_pixel");
            if (notes) {
                notes->push_back(
                    fmt::format("{}: old default coordinate_transformation_mode "
                                "written out (opset 16)",
                                n.describe()));
            }
        }
    }
    return Status::ok();
}

}  // namespace

Status upgrade_opset(Model& model, int64_t target, std::vector<std::string>* notes) {
    const int64_t from = model.default_opset();
    if (from >= target) return Status::ok();
    if (from < 13) {
        return unsupported(
            "the model imports default-domain opset {}; lowbit raises opsets only "
            "from 13 upward (re-export the model at opset >= 13)",
            from);
    }
    std::unordered_set<std::string> names;
    for (const auto& n : model.graph.nodes) {
        names.insert(n.name);
        names.insert(n.inputs.begin(), n.inputs.end());
        names.insert(n.outputs.begin(), n.outputs.end());
    }
    for (const auto& [name, t] : model.graph.initializers) names.insert(name);
    LOWBIT_TRY(upgrade_graph(model.graph, from, target, notes, names));
    model.set_default_opset(target);
    if (notes) notes->push_back(fmt::format("default-domain opset {} -> {}", from, target));
    return Status::ok();
}

}  // namespace lowbit::quant
