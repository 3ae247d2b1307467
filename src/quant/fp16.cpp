// Float16 conversion of a graph's high-precision part (quant/fp16.h): one Fp16Converter per
// call, whose steps each own one part of the rewrite (types, initializers, attributes, output
// boundary Casts, reader Casts).
#include "quant/fp16.h"

#include <fmt/format.h>

#include <map>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include "core/half.h"

namespace lowbit::quant {

namespace {

Tensor to_half(const Tensor& t) {
    Tensor h(DType::Float16, t.shape());
    const float* src = t.data<float>();
    uint16_t* dst = h.data<uint16_t>();
    for (int64_t i = 0; i < t.numel(); ++i) dst[i] = float_to_half(src[i]);
    return h;
}

Node cast_node(const std::string& name, const std::string& in, const std::string& out, DType to) {
    Node n;
    n.op_type = "Cast";
    n.name = name;
    n.inputs = {in};
    n.outputs = {out};
    n.attrs["to"] = Attr::make_int(static_cast<int64_t>(to));
    return n;
}

// One conversion of one graph. The steps run in this order (Fp16Converter::run); names for new
// tensors and Casts are taken in that order too (take()), so the output is deterministic.
class Fp16Converter {
public:
    Fp16Converter(Model& model, const TypeLookup& types, const Fp16Options& o);
    Result<Fp16Stats> run();

private:
    Graph& g_;
    const TypeLookup& types_;
    Fp16Stats stats_;
    std::set<std::string> keep_ops_;
    std::unordered_set<std::string> used_names_;
    std::set<const Node*> kept_constants_;
    std::unordered_map<std::string, DType> after_;   // element type after the conversion
    std::map<std::string, std::string> half_copy_;  // initializer -> its float16 copy
    std::vector<Node> tail_;                        // boundary Casts of graph outputs

    std::string take(const std::string& base);
    DType dtype_before(const std::string& t) const;
    bool kept(const Node& n) const;
    bool slot_fp16(const Node& n, size_t k) const;

    void find_kept_constants();
    void types_after();
    void convert_initializers();
    void convert_attributes();
    void cast_graph_outputs();
    void insert_casts();
};

Fp16Converter::Fp16Converter(Model& model, const TypeLookup& types, const Fp16Options& o)
    : g_(model.graph), types_(types) {
    keep_ops_ = {"NonMaxSuppression", "Upsample", "Celu", "Scan", "If", "Loop"};
    keep_ops_.insert(o.keep_fp32_op_types.begin(), o.keep_fp32_op_types.end());
    for (const auto& n : g_.nodes) {
        used_names_.insert(n.name);
        used_names_.insert(n.inputs.begin(), n.inputs.end());
        used_names_.insert(n.outputs.begin(), n.outputs.end());
    }
    for (const auto& [name, t] : g_.initializers) used_names_.insert(name);
    for (const auto& v : g_.inputs) used_names_.insert(v.name);
    for (const auto& v : g_.outputs) used_names_.insert(v.name);
}

Result<Fp16Stats> Fp16Converter::run() {
    find_kept_constants();
    types_after();
    convert_initializers();
    convert_attributes();
    cast_graph_outputs();
    insert_casts();
    // Declared intermediate types are stale now; they are optional in ONNX.
    g_.value_info.clear();
    LOWBIT_TRY(sort_nodes(g_));
    return stats_;
}

// `base`, or `base_1`, `base_2`, ... : the first name no tensor, node or new name uses.
std::string Fp16Converter::take(const std::string& base) {
    std::string name = base;
    for (int k = 1; used_names_.count(name); ++k) name = fmt::format("{}_{}", base, k);
    used_names_.insert(name);
    return name;
}

// Element type of a tensor before the conversion.
DType Fp16Converter::dtype_before(const std::string& t) const {
    if (t.empty()) return DType::Undefined;
    if (const Tensor* init = g_.initializer(t)) return init->dtype();
    for (const auto& v : g_.inputs) {
        if (v.name == t) return v.dtype;
    }
    auto tt = types_ ? types_(t) : std::nullopt;
    return tt ? tt->dtype : DType::Undefined;
}

bool Fp16Converter::kept(const Node& n) const {
    return keep_ops_.count(n.op_type) > 0 || kept_constants_.count(&n) > 0;
}

// Whether input slot k of node n computes in float16 (if its tensor is a float).
bool Fp16Converter::slot_fp16(const Node& n, size_t k) const {
    if (kept(n)) return false;
    if (n.op_type == "Resize" && k >= 1) return false;  // roi and scales must stay float32
    return true;
}

// A Constant read only by float32 slots (Resize scales) stays float32: no Cast needed.
void Fp16Converter::find_kept_constants() {
    std::unordered_map<std::string, std::vector<std::pair<const Node*, size_t>>> readers;
    for (const auto& n : g_.nodes) {
        for (size_t k = 0; k < n.inputs.size(); ++k) readers[n.inputs[k]].push_back({&n, k});
    }
    std::unordered_set<std::string> outputs;
    for (const auto& v : g_.outputs) outputs.insert(v.name);
    for (const auto& n : g_.nodes) {
        if (n.op_type != "Constant" || n.outputs.empty() || outputs.count(n.outputs[0])) {
            continue;
        }
        const auto& r = readers[n.outputs[0]];
        bool any16 = r.empty();
        for (const auto& [reader, k] : r) any16 = any16 || slot_fp16(*reader, k);
        if (!any16) kept_constants_.insert(&n);
    }
}

// Element type of each tensor after the conversion.
void Fp16Converter::types_after() {
    for (const auto& v : g_.inputs) after_[v.name] = v.dtype;
    for (const auto& n : g_.nodes) {
        const bool conv = !kept(n);
        for (const auto& out : n.outputs) {
            if (out.empty()) continue;
            DType d = dtype_before(out);
            after_[out] = (conv && d == DType::Float32) ? DType::Float16 : d;
        }
    }
}

// Initializers: converted in place when every reader computes in float16; a float16 copy
// when some readers need float32.
void Fp16Converter::convert_initializers() {
    std::map<std::string, std::pair<bool, bool>> init_use;  // (fp16 readers, fp32 readers)
    for (const auto& n : g_.nodes) {
        for (size_t k = 0; k < n.inputs.size(); ++k) {
            const Tensor* t = g_.initializer(n.inputs[k]);
            if (!t || t->dtype() != DType::Float32) continue;
            auto& u = init_use[n.inputs[k]];
            (slot_fp16(n, k) ? u.first : u.second) = true;
        }
    }
    for (const auto& v : g_.outputs) {
        if (init_use.count(v.name)) init_use[v.name].second = true;
    }
    for (const auto& [name, use] : init_use) {
        const Tensor t = *g_.initializer(name);
        if (use.first && !use.second) {
            g_.set_initializer(name, to_half(t));
            after_[name] = DType::Float16;
            for (auto& v : g_.inputs) {
                if (v.name == name) v.dtype = DType::Float16;
            }
            ++stats_.initializers;
        } else if (use.first) {
            std::string copy = take(name + "_fp16");
            g_.set_initializer(copy, to_half(t));
            after_[copy] = DType::Float16;
            half_copy_[name] = copy;
            ++stats_.initializers;
        } else {
            after_[name] = DType::Float32;
        }
    }
}

// Attributes that carry float32 values or types inside converted nodes.
void Fp16Converter::convert_attributes() {
    for (auto& n : g_.nodes) {
        if (kept(n)) continue;
        if (n.op_type == "Cast" && n.attr_int("to", 0) == static_cast<int64_t>(DType::Float32)) {
            n.attrs["to"] = Attr::make_int(static_cast<int64_t>(DType::Float16));
        }
        if ((n.op_type == "Constant" || n.op_type == "ConstantOfShape")) {
            auto it = n.attrs.find("value");
            if (it != n.attrs.end() && it->second.kind == Attr::Kind::Tensor &&
                it->second.t.dtype() == DType::Float32) {
                it->second.t = to_half(it->second.t);
            }
        }
    }
}

// Graph outputs declared float32 that are now float16: the producer writes <name>_fp16 and a
// boundary Cast restores the declared name and type.
void Fp16Converter::cast_graph_outputs() {
    std::unordered_map<std::string, std::string> renamed;
    for (const auto& v : g_.outputs) {
        auto it = after_.find(v.name);
        if (it == after_.end() || it->second != DType::Float16 || v.dtype != DType::Float32)
            continue;
        if (g_.initializer(v.name)) continue;
        std::string inner = take(v.name + "_fp16");
        renamed[v.name] = inner;
        after_[inner] = DType::Float16;
        tail_.push_back(cast_node(take(v.name + "_cast_to_fp32"), inner, v.name, DType::Float32));
        ++stats_.casts;
    }
    if (renamed.empty()) return;
    for (auto& n : g_.nodes) {
        for (auto& t : n.inputs) {
            auto r = renamed.find(t);
            if (r != renamed.end()) t = r->second;
        }
        for (auto& t : n.outputs) {
            auto r = renamed.find(t);
            if (r != renamed.end()) t = r->second;
        }
    }
    for (const auto& [from, to] : renamed) after_[from] = DType::Float32;
}

// Casts where a reader's precision differs from the tensor's; placed right after the
// producer (or first, for graph inputs and initializers), with the output Casts last.
void Fp16Converter::insert_casts() {
    std::unordered_map<std::string, size_t> producer;
    for (size_t i = 0; i < g_.nodes.size(); ++i) {
        for (const auto& out : g_.nodes[i].outputs) producer[out] = i;
    }
    std::map<std::pair<std::string, DType>, std::string> casts;
    std::map<long, std::vector<Node>> after_node;  // -1: before every node
    for (auto& n : g_.nodes) {
        for (size_t k = 0; k < n.inputs.size(); ++k) {
            std::string& t = n.inputs[k];
            if (t.empty()) continue;
            auto hc = half_copy_.find(t);
            if (hc != half_copy_.end() && slot_fp16(n, k)) {
                t = hc->second;
                continue;
            }
            auto it = after_.find(t);
            if (it == after_.end()) continue;
            const DType cur = it->second;
            DType want = cur;
            if (cur == DType::Float32 && slot_fp16(n, k)) want = DType::Float16;
            if (cur == DType::Float16 && !slot_fp16(n, k)) want = DType::Float32;
            if (want == cur) continue;
            auto key = std::make_pair(t, want);
            auto c = casts.find(key);
            if (c == casts.end()) {
                const std::string suffix =
                    want == DType::Float16 ? "_cast_to_fp16" : "_cast_to_fp32";
                std::string out = take(t + suffix);
                auto p = producer.find(t);
                const long at = p == producer.end() ? -1 : static_cast<long>(p->second);
                after_node[at].push_back(cast_node(out, t, out, want));
                after_[out] = want;
                c = casts.emplace(key, out).first;
                ++stats_.casts;
            }
            t = c->second;
        }
    }
    std::vector<Node> nodes;
    nodes.reserve(g_.nodes.size() + static_cast<size_t>(stats_.casts));
    if (after_node.count(-1)) {
        for (auto& c : after_node[-1]) nodes.push_back(std::move(c));
    }
    for (size_t i = 0; i < g_.nodes.size(); ++i) {
        nodes.push_back(std::move(g_.nodes[i]));
        auto it = after_node.find(static_cast<long>(i));
        if (it != after_node.end()) {
            for (auto& c : it->second) nodes.push_back(std::move(c));
        }
    }
    for (auto& c : tail_) nodes.push_back(std::move(c));
    g_.nodes = std::move(nodes);
}
}  // namespace

Status sort_nodes(Graph& g) {
    LOWBIT_ASSIGN(std::vector<size_t> order, topological_order(g));
    std::vector<Node> sorted;
    sorted.reserve(order.size());
    for (size_t i : order) sorted.push_back(std::move(g.nodes[i]));
    g.nodes = std::move(sorted);
    return Status::ok();
}

Result<Fp16Stats> convert_to_fp16(Model& model, const TypeLookup& types, const Fp16Options& o) {
    Fp16Converter c(model, types, o);
    return c.run();
}

}  // namespace lowbit::quant
