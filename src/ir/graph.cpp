#include "ir/graph.h"

#include <fmt/format.h>

#include <algorithm>
#include <unordered_set>

namespace lowbit {

Attr Attr::make_float(float v) {
    Attr a;
    a.kind = Kind::Float;
    a.f = v;
    return a;
}
Attr Attr::make_int(int64_t v) {
    Attr a;
    a.kind = Kind::Int;
    a.i = v;
    return a;
}
Attr Attr::make_string(std::string v) {
    Attr a;
    a.kind = Kind::String;
    a.s = std::move(v);
    return a;
}
Attr Attr::make_ints(std::vector<int64_t> v) {
    Attr a;
    a.kind = Kind::Ints;
    a.ints = std::move(v);
    return a;
}
Attr Attr::make_floats(std::vector<float> v) {
    Attr a;
    a.kind = Kind::Floats;
    a.floats = std::move(v);
    return a;
}
Attr Attr::make_tensor(lowbit::Tensor v) {
    Attr a;
    a.kind = Kind::Tensor;
    a.t = std::move(v);
    return a;
}

const char* attr_kind_name(Attr::Kind k) {
    switch (k) {
        case Attr::Kind::Undefined: return "undefined";
        case Attr::Kind::Float: return "float";
        case Attr::Kind::Int: return "int";
        case Attr::Kind::String: return "string";
        case Attr::Kind::Tensor: return "tensor";
        case Attr::Kind::Graph: return "graph";
        case Attr::Kind::Floats: return "floats";
        case Attr::Kind::Ints: return "ints";
        case Attr::Kind::Strings: return "strings";
        case Attr::Kind::Tensors: return "tensors";
        case Attr::Kind::Graphs: return "graphs";
        case Attr::Kind::SparseTensor: return "sparse_tensor";
        case Attr::Kind::TypeProto: return "type_proto";
    }
    return "?";
}

const Attr* Node::attr(const std::string& key) const {
    auto it = attrs.find(key);
    return it == attrs.end() ? nullptr : &it->second;
}

int64_t Node::attr_int(const std::string& key, int64_t def) const {
    const Attr* a = attr(key);
    return a ? a->i : def;
}
float Node::attr_float(const std::string& key, float def) const {
    const Attr* a = attr(key);
    return a ? a->f : def;
}
std::string Node::attr_string(const std::string& key, const std::string& def) const {
    const Attr* a = attr(key);
    return a ? a->s : def;
}
std::vector<int64_t> Node::attr_ints(const std::string& key,
                                     const std::vector<int64_t>& def) const {
    const Attr* a = attr(key);
    return a ? a->ints : def;
}
std::vector<float> Node::attr_floats(const std::string& key, const std::vector<float>& def) const {
    const Attr* a = attr(key);
    return a ? a->floats : def;
}

std::string Node::describe() const {
    return fmt::format("{} '{}'", op_type, name.empty() ? "(unnamed)" : name);
}

std::string ValueInfo::shape_str() const {
    if (!has_shape) return "?";
    std::string s = "[";
    for (size_t i = 0; i < dims.size(); ++i) {
        if (i) s += ",";
        s += dims[i].is_fixed() ? std::to_string(dims[i].value)
                                : (dims[i].param.empty() ? "?" : dims[i].param);
    }
    return s + "]";
}

bool ValueInfo::fixed_shape() const {
    return has_shape &&
           std::all_of(dims.begin(), dims.end(), [](const Dim& d) { return d.is_fixed(); });
}

const Tensor* Graph::initializer(const std::string& n) const {
    for (const auto& [k, t] : initializers) {
        if (k == n) return &t;
    }
    return nullptr;
}

void Graph::set_initializer(const std::string& n, Tensor t) {
    for (auto& [k, v] : initializers) {
        if (k == n) {
            v = std::move(t);
            return;
        }
    }
    initializers.emplace_back(n, std::move(t));
}

bool Graph::remove_initializer(const std::string& n) {
    auto it = std::find_if(initializers.begin(), initializers.end(),
                           [&](const auto& p) { return p.first == n; });
    if (it == initializers.end()) return false;
    initializers.erase(it);
    return true;
}

const ValueInfo* Graph::find_input(const std::string& n) const {
    for (const auto& v : inputs) {
        if (v.name == n) return &v;
    }
    return nullptr;
}

std::vector<const ValueInfo*> Graph::data_inputs() const {
    std::vector<const ValueInfo*> out;
    for (const auto& v : inputs) {
        if (!initializer(v.name)) out.push_back(&v);
    }
    return out;
}

int64_t Model::default_opset() const {
    for (const auto& o : opsets) {
        if (o.domain.empty() || o.domain == "ai.onnx") return o.version;
    }
    return 0;
}

void Model::set_default_opset(int64_t v) {
    for (auto& o : opsets) {
        if (o.domain.empty() || o.domain == "ai.onnx") {
            o.version = v;
            return;
        }
    }
    opsets.push_back({"", v});
}

std::unordered_map<std::string, size_t> producer_index(const Graph& g) {
    std::unordered_map<std::string, size_t> m;
    for (size_t i = 0; i < g.nodes.size(); ++i) {
        for (const auto& o : g.nodes[i].outputs) {
            if (!o.empty()) m[o] = i;
        }
    }
    return m;
}

std::unordered_map<std::string, std::vector<size_t>> consumer_index(const Graph& g) {
    std::unordered_map<std::string, std::vector<size_t>> m;
    for (size_t i = 0; i < g.nodes.size(); ++i) {
        for (const auto& in : g.nodes[i].inputs) {
            if (in.empty()) continue;
            auto& v = m[in];
            if (v.empty() || v.back() != i) v.push_back(i);
        }
    }
    return m;
}

Result<std::vector<size_t>> topological_order(const Graph& g) {
    std::unordered_set<std::string> available;
    for (const auto& v : g.inputs) available.insert(v.name);
    for (const auto& [n, t] : g.initializers) available.insert(n);
    const auto producers = producer_index(g);
    // Kahn's algorithm, stable: among ready nodes the lowest index goes first, so a graph that
    // is already sorted keeps its order.
    std::vector<int> missing(g.nodes.size(), 0);
    std::unordered_map<std::string, std::vector<size_t>> waiters;
    for (size_t i = 0; i < g.nodes.size(); ++i) {
        for (const auto& in : g.nodes[i].inputs) {
            if (in.empty() || available.count(in)) continue;
            if (!producers.count(in)) {
                return invalid("node {} reads tensor '{}' that no node, initializer or graph "
                               "input produces",
                               g.nodes[i].describe(), in);
            }
            ++missing[i];
            waiters[in].push_back(i);
        }
    }
    std::vector<size_t> ready, order;
    for (size_t i = 0; i < g.nodes.size(); ++i) {
        if (missing[i] == 0) ready.push_back(i);
    }
    std::make_heap(ready.begin(), ready.end(), std::greater<>());
    while (!ready.empty()) {
        std::pop_heap(ready.begin(), ready.end(), std::greater<>());
        size_t i = ready.back();
        ready.pop_back();
        order.push_back(i);
        for (const auto& o : g.nodes[i].outputs) {
            auto it = waiters.find(o);
            if (it == waiters.end()) continue;
            for (size_t w : it->second) {
                if (--missing[w] == 0) {
                    ready.push_back(w);
                    std::push_heap(ready.begin(), ready.end(), std::greater<>());
                }
            }
            waiters.erase(it);
        }
    }
    if (order.size() != g.nodes.size()) {
        for (size_t i = 0; i < g.nodes.size(); ++i) {
            if (missing[i] > 0) return invalid("graph has a cycle through node {}", g.nodes[i].describe());
        }
    }
    return order;
}

}  // namespace lowbit
