#include "quant/explain.h"

#include <fmt/format.h>

#include <array>
#include <map>
#include <set>

namespace lowbit::quant {

namespace {

std::string edge_str(const Graph& g, const std::pair<size_t, size_t>& e) {
    return fmt::format("{}[{}]", g.nodes[e.first].name, e.second);
}

// Per op type: how many nodes, how many quantized, how many skipped (over the op types that
// appear among quantized or skipped nodes).
std::map<std::string, std::array<int, 3>> account(const Graph& g, const Placement& p) {
    std::map<std::string, std::array<int, 3>> acc;
    std::set<std::string> types;
    for (const auto& [i, r] : p.selected) types.insert(g.nodes[i].op_type);
    for (const auto& s : p.skipped) types.insert(s.op_type);
    for (const auto& n : g.nodes) {
        if (types.count(n.op_type)) ++acc[n.op_type][0];
    }
    for (const auto& [i, r] : p.selected) ++acc[g.nodes[i].op_type][1];
    for (const auto& s : p.skipped) ++acc[s.op_type][2];
    return acc;
}

}  // namespace

nlohmann::ordered_json placement_to_json(const Graph& g, const Placement& p,
                                         const std::vector<double>* amax) {
    using J = nlohmann::ordered_json;
    J out;
    J nodes = J::array();
    for (const auto& [i, rule] : p.selected) {
        nodes.push_back({{"node", g.nodes[i].name}, {"op", g.nodes[i].op_type}, {"rule", rule}});
    }
    J acts = J::array();
    for (size_t a = 0; a < p.activations.size(); ++a) {
        const ActivationQdq& q = p.activations[a];
        J consumers = J::array();
        for (const auto& e : q.edges) consumers.push_back(edge_str(g, e));
        J j = {{"tensor", q.tensor},
               {"consumers", consumers},
               {"rule", q.rule},
               {"group", q.group},
               {"constant", q.constant}};
        if (amax && a < amax->size()) j["amax"] = (*amax)[a];
        acts.push_back(j);
    }
    J weights = J::array();
    for (const auto& w : p.weights) {
        weights.push_back({{"tensor", w.tensor},
                           {"node", g.nodes[w.node].name},
                           {"input", w.input},
                           {"axis", w.axis},
                           {"rule", w.rule}});
    }
    auto notes = [](const std::vector<SkipNote>& v) {
        J arr = J::array();
        for (const auto& s : v) {
            arr.push_back({{"node", s.node}, {"op", s.op_type}, {"reason", s.reason}});
        }
        return arr;
    };
    J groups = J::array();
    for (const auto& grp : p.groups) {
        J members = J::array();
        for (size_t a : grp) members.push_back(p.activations[a].tensor);
        groups.push_back(members);
    }
    J acc = J::object();
    for (const auto& [op, c] : account(g, p)) {
        acc[op] = {{"total", c[0]}, {"quantized", c[1]}, {"skipped", c[2]}};
    }
    out["quantized_nodes"] = nodes;
    out["activations"] = acts;
    out["weights"] = weights;
    out["skipped"] = notes(p.skipped);
    out["excluded"] = notes(p.excluded);
    out["concat_groups"] = groups;
    out["account"] = acc;
    return out;
}

std::string placement_to_text(const Graph& g, const Placement& p, const std::vector<double>* amax) {
    std::string s;
    s += fmt::format("# Q/DQ on activations ({} pairs)\n", p.activations.size());
    for (size_t a = 0; a < p.activations.size(); ++a) {
        const ActivationQdq& q = p.activations[a];
        std::string consumers;
        for (const auto& e : q.edges) {
            consumers += (consumers.empty() ? "" : ", ") + edge_str(g, e);
        }
        std::string extra;
        if (q.group >= 0) extra += fmt::format(" [concat group {}]", q.group);
        if (q.constant) extra += " [constant]";
        if (amax && a < amax->size()) extra += fmt::format(" [amax {:.6g}]", (*amax)[a]);
        s +=
            fmt::format("QDQ    {} -> {}{}\n       rule: {}\n", q.tensor, consumers, extra, q.rule);
    }
    s += fmt::format("# Q/DQ on weights ({})\n", p.weights.size());
    for (const auto& w : p.weights) {
        s += fmt::format(
            "WEIGHT {} -> {}[{}] {}\n", w.tensor, g.nodes[w.node].name, w.input,
            w.axis >= 0 ? fmt::format("per channel, axis {}", w.axis) : std::string("per tensor"));
    }
    s += fmt::format("# quantized nodes ({})\n", p.selected.size());
    for (const auto& [i, rule] : p.selected) {
        s += fmt::format("QUANT  {} ({}): {}\n", g.nodes[i].name, g.nodes[i].op_type, rule);
    }
    s += fmt::format("# skipped candidates ({})\n", p.skipped.size());
    for (const auto& k : p.skipped) {
        s += fmt::format("SKIP   {} ({}): {}\n", k.node, k.op_type, k.reason);
    }
    if (!p.groups.empty()) {
        s += fmt::format("# concat groups sharing one scale ({})\n", p.groups.size());
        for (size_t gi = 0; gi < p.groups.size(); ++gi) {
            std::string members;
            for (size_t a : p.groups[gi]) {
                members += (members.empty() ? "" : ", ") + p.activations[a].tensor;
            }
            s += fmt::format("GROUP  {}: {}\n", gi, members);
        }
    }
    s += "# account per op type: total = quantized + skipped\n";
    for (const auto& [op, c] : account(g, p)) {
        s += fmt::format("COUNT  {}: {} total, {} quantized, {} skipped\n", op, c[0], c[1], c[2]);
    }
    return s;
}

}  // namespace lowbit::quant
