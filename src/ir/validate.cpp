#include "ir/validate.h"

#include <fmt/format.h>

#include <unordered_map>

namespace lowbit {

namespace {

Status validate_graph(const Graph& g, const std::string& where) {
    // tensor name -> who produces it, for the messages.
    std::unordered_map<std::string, std::string> producer;
    for (const auto& [name, t] : g.initializers) {
        if (!producer.emplace(name, "an initializer").second) {
            return invalid("{}: initializer '{}' is defined twice", where, name);
        }
    }
    for (const ValueInfo& in : g.inputs) {
        // Before IR version 4 initializers were also listed as graph inputs (their defaults).
        if (producer.count(in.name) && producer[in.name] == "an initializer") continue;
        if (!producer.emplace(in.name, "a graph input").second) {
            return invalid("{}: graph input '{}' is listed twice", where, in.name);
        }
    }
    for (const Node& n : g.nodes) {
        for (const std::string& out : n.outputs) {
            if (out.empty()) continue;  // an optional output left out
            auto [it, inserted] = producer.emplace(out, "node " + n.describe());
            if (!inserted) {
                return invalid(
                    "{}: tensor '{}' has two producers, {} and {} (ONNX graphs are in SSA form: "
                    "each tensor is written once)",
                    where, out, it->second, "node " + n.describe());
            }
        }
        for (const auto& [key, a] : n.attrs) {
            if (a.g) LOWBIT_TRY(validate_graph(*a.g, n.describe() + " attribute " + key));
            for (const auto& sub : a.graphs) {
                if (sub) LOWBIT_TRY(validate_graph(*sub, n.describe() + " attribute " + key));
            }
        }
    }
    return Status::ok();
}

}  // namespace

Status validate_model(const Model& m) {
    int64_t opset = 0;
    for (const OpsetId& o : m.opsets) {
        if (!o.domain.empty() && o.domain != "ai.onnx") continue;
        if (opset != 0 && o.version != opset) {
            return invalid("the model imports the default ONNX domain twice, at opsets {} and {}",
                           opset, o.version);
        }
        opset = o.version;
    }
    if (opset < 0 || opset > kMaxOpset) {
        return unsupported(
            "default-domain opset {} is not supported: lowbit knows opsets 1 to {} (re-export "
            "the model with opset <= {}, e.g. torch.onnx.export(..., opset_version={}))",
            opset, kMaxOpset, kMaxOpset, kMaxOpset);
    }
    return validate_graph(m.graph, "graph");
}

}  // namespace lowbit
