#include "quant/assignment.h"

#include <fmt/format.h>

#include <set>

#include "core/close_matches.h"

namespace lowbit::quant {

Result<NodeFormat> parse_node_format(const std::string& s) {
    if (s == "int4w" || s == "w4a8" || s == "int4") return NodeFormat::Int4w;
    if (s == "int8") return NodeFormat::Int8;
    if (s == "fp8") return NodeFormat::Fp8;
    if (s == "float" || s == "fp32") return NodeFormat::Float;
    return invalid("format '{}': expected int4w (INT4 weights, INT8 activations), int8, fp8 or "
                   "float",
                   s);
}

const char* node_format_name(NodeFormat f) {
    switch (f) {
        case NodeFormat::Int4w: return "int4w";
        case NodeFormat::Int8: return "int8";
        case NodeFormat::Fp8: return "fp8";
        case NodeFormat::Float: return "float";
    }
    return "?";
}

Result<Assignment> assignment_from_json(const nlohmann::json& j, const std::string& where) {
    if (!j.is_object()) return invalid("{}: expected a JSON object", where);
    Assignment a;
    const nlohmann::json* nodes = &j;
    if (j.contains("nodes")) {
        nodes = &j.at("nodes");
        for (const auto& [k, v] : j.items()) {
            if (k != "nodes" && k != "default" && k != "format" && k != "summary") {
                return invalid("{}: unknown key '{}' (expected nodes, default)", where, k);
            }
        }
        if (j.contains("default")) {
            if (!j.at("default").is_string()) return invalid("{}: 'default' is not a string", where);
            auto f = parse_node_format(j.at("default").get<std::string>());
            if (!f) return f.status().with_context(fmt::format("{}: default", where));
            a.fallback = *f;
        }
        if (!nodes->is_object()) return invalid("{}: 'nodes' is not an object", where);
    }
    for (const auto& [name, v] : nodes->items()) {
        if (!v.is_string()) return invalid("{}: node '{}': the format is not a string", where, name);
        auto f = parse_node_format(v.get<std::string>());
        if (!f) return f.status().with_context(fmt::format("{}: node '{}'", where, name));
        a.nodes[name] = *f;
    }
    return a;
}

nlohmann::ordered_json assignment_to_json(const Assignment& a) {
    nlohmann::ordered_json nodes = nlohmann::ordered_json::object();
    for (const auto& [n, f] : a.nodes) nodes[n] = node_format_name(f);
    return {{"format", "lowbit-assignment-1"},
            {"default", node_format_name(a.fallback)},
            {"nodes", nodes}};
}

Status check_assignment_names(const Graph& g, const Assignment& a, const std::string& where) {
    std::vector<std::string> all;
    std::set<std::string> names;
    for (const auto& n : g.nodes) {
        all.push_back(n.name);
        names.insert(n.name);
    }
    for (const auto& [name, f] : a.nodes) {
        if (names.count(name)) continue;
        const std::vector<std::string> near = close_matches(name, all);
        std::string hint;
        for (size_t i = 0; i < near.size(); ++i) hint += (i ? "', '" : "") + near[i];
        return invalid("{}: node '{}' is not in the model{}", where, name,
                       near.empty() ? std::string() : fmt::format(" (did you mean '{}'?)", hint));
    }
    return Status::ok();
}

Status check_assignment_placement(const Graph& g, const Placement& pl, const Assignment& a,
                                  const std::string& where) {
    std::set<size_t> selected, weighted;
    for (const auto& [i, r] : pl.selected) selected.insert(i);
    for (const auto& w : pl.weights) weighted.insert(w.node);
    std::map<std::string, size_t> index;
    for (size_t i = 0; i < g.nodes.size(); ++i) index[g.nodes[i].name] = i;
    for (const auto& [name, f] : a.nodes) {
        if (f == NodeFormat::Float) continue;
        const size_t i = index.at(name);
        if (!selected.count(i)) {
            std::string why = "the INT8 placement does not quantize it";
            for (const auto& s : pl.skipped) {
                if (s.node == name) why = s.reason;
            }
            for (const auto& s : pl.excluded) {
                if (s.node == name) why = "excluded: " + s.reason;
            }
            return invalid("{}: node '{}' ({}) is assigned {} but is not quantizable: {}", where,
                           name, g.nodes[i].op_type, node_format_name(f), why);
        }
        if (f == NodeFormat::Int4w && !weighted.count(i)) {
            return invalid("{}: node '{}' ({}) is assigned int4w but has no quantized weight", where,
                           name, g.nodes[i].op_type);
        }
    }
    return Status::ok();
}

int64_t initializer_bytes(const Model& m) {
    int64_t b = 0;
    for (const auto& [name, t] : m.graph.initializers) {
        if (t.dtype() == DType::Int4 || t.dtype() == DType::UInt4) {
            b += (t.numel() + 1) / 2;
        } else {
            b += static_cast<int64_t>(t.nbytes());
        }
    }
    return b;
}

}  // namespace lowbit::quant
