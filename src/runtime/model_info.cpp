#include "runtime/model_info.h"

#include <fmt/format.h>

namespace lowbit {

int64_t node_macs(const Node& node, const Executor& ex) {
    auto shape_of = [&](size_t i) -> const Shape* {
        if (i >= node.inputs.size() || node.inputs[i].empty()) return nullptr;
        const TensorDesc* d = ex.tensor_desc(node.inputs[i]);
        return d ? &d->shape : nullptr;
    };
    const TensorDesc* out = node.outputs.empty() ? nullptr : ex.tensor_desc(node.outputs[0]);
    if (!out) return 0;
    const int64_t out_numel = shape_numel(out->shape);
    if (node.op_type == "Conv") {
        // Each output element sums C_in/group * prod(kernel) products: that is W's per-output
        // filter size, i.e. numel(W) / M.
        const Shape* w = shape_of(1);
        if (!w || w->empty() || (*w)[0] == 0) return 0;
        return out_numel * (shape_numel(*w) / (*w)[0]);
    }
    if (node.op_type == "ConvTranspose") {
        // Each input element scatters into C_out/group * prod(kernel) outputs.
        const Shape* x = shape_of(0);
        const Shape* w = shape_of(1);
        if (!x || !w || w->size() < 2) return 0;
        int64_t per_in = shape_numel(*w) / (*w)[0];
        return shape_numel(*x) * per_in;
    }
    if (node.op_type == "MatMul") {
        const Shape* a = shape_of(0);
        if (!a || a->empty()) return 0;
        return out_numel * a->back();
    }
    if (node.op_type == "Gemm") {
        const Shape* a = shape_of(0);
        if (!a || a->size() != 2) return 0;
        int64_t k = node.attr_int("transA", 0) ? (*a)[0] : (*a)[1];
        return out_numel * k;
    }
    return 0;
}

namespace {

// Parameters are the constant tensors a graph carries: its initializers and the values of its
// Constant nodes (exporters write weights either way), in subgraphs (If/Loop/Scan bodies) too.
void count_params(const Graph& g, ModelInfo& info) {
    auto add = [&](int64_t n, int64_t bytes) {
        info.n_params += n;
        info.param_bytes += bytes;
    };
    for (const auto& [name, t] : g.initializers) {
        add(t.numel(), static_cast<int64_t>(t.nbytes()));
    }
    for (const Node& n : g.nodes) {
        if (n.op_type == "Constant" && n.domain.empty()) {
            for (const auto& [key, a] : n.attrs) {
                switch (a.kind) {
                    case Attr::Kind::Tensor:
                        add(a.t.numel(), static_cast<int64_t>(a.t.nbytes()));
                        break;
                    case Attr::Kind::Float: add(1, 4); break;
                    case Attr::Kind::Int: add(1, 8); break;
                    case Attr::Kind::Floats:
                        add(std::ssize(a.floats), 4 * std::ssize(a.floats));
                        break;
                    case Attr::Kind::Ints: add(std::ssize(a.ints), 8 * std::ssize(a.ints)); break;
                    default: break;  // strings and sparse tensors are not counted
                }
            }
        }
        for (const auto& [key, a] : n.attrs) {
            if (a.g) count_params(*a.g, info);
            for (const auto& sub : a.graphs) {
                if (sub) count_params(*sub, info);
            }
        }
    }
}

}  // namespace

ModelInfo model_info(const Model& model, const Executor& ex, const std::string& path) {
    ModelInfo info;
    info.path = path;
    info.ir_version = model.ir_version;
    info.opset = model.default_opset();
    info.producer =
        model.producer_name + (model.producer_version.empty() ? "" : " " + model.producer_version);
    info.inputs = ex.inputs();
    info.outputs = ex.outputs();
    count_params(model.graph, info);
    info.n_nodes = static_cast<int64_t>(model.graph.nodes.size());
    for (const auto& n : model.graph.nodes) {
        info.op_histogram[n.op_type]++;
        info.macs += node_macs(n, ex);
    }
    info.peak_activation_bytes = ex.peak_activation_bytes();
    info.kernels = ex.kernel_report();
    return info;
}

namespace {

nlohmann::json io_json(const std::vector<TensorDesc>& v) {
    nlohmann::json a = nlohmann::json::array();
    for (const auto& d : v) {
        a.push_back({{"name", d.name}, {"dtype", dtype_name(d.dtype)}, {"shape", d.shape}});
    }
    return a;
}

std::string human_bytes(double b) {
    const char* units[] = {"B", "KiB", "MiB", "GiB"};
    int u = 0;
    while (b >= 1024 && u < 3) {
        b /= 1024;
        ++u;
    }
    return fmt::format("{:.2f} {}", b, units[u]);
}

}  // namespace

nlohmann::json to_json(const KernelReport& r) {
    nlohmann::json fallbacks = nlohmann::json::array();
    std::map<std::string, int64_t> reasons;
    for (const auto& f : r.fallbacks) {
        fallbacks.push_back({{"node", f.node}, {"reason", f.reason}});
        ++reasons[f.reason];
    }
    return {{"steps", r.kernels},
            {"qdq_convs", r.qdq_convs},
            {"int8_convs", r.int8_convs},
            {"fp8_convs", r.fp8_convs},
            {"qdq_moves", r.qdq_moves},
            {"int8_moves", r.int8_moves},
            {"dq_skipped", r.dq_skipped},
            {"fallbacks", fallbacks},
            {"fallback_reasons", reasons}};
}

nlohmann::json to_json(const ModelInfo& info) {
    return {{"path", info.path},
            {"ir_version", info.ir_version},
            {"opset", info.opset},
            {"producer", info.producer},
            {"inputs", io_json(info.inputs)},
            {"outputs", io_json(info.outputs)},
            {"params", info.n_params},
            {"param_bytes", info.param_bytes},
            {"macs", info.macs},
            {"gmacs", static_cast<double>(info.macs) / 1e9},
            {"nodes", info.n_nodes},
            {"op_histogram", info.op_histogram},
            {"peak_activation_bytes", info.peak_activation_bytes},
            {"kernels", to_json(info.kernels)}};
}

std::string to_text(const ModelInfo& info) {
    std::string s;
    s += fmt::format("model       {}\n", info.path);
    s += fmt::format("ir/opset    IR {} / opset {}{}\n", info.ir_version, info.opset,
                     info.producer.empty() ? "" : ", producer " + info.producer);
    for (const auto& d : info.inputs) {
        s += fmt::format("input       {} {} {}\n", d.name, dtype_name(d.dtype), shape_str(d.shape));
    }
    for (const auto& d : info.outputs) {
        s += fmt::format("output      {} {} {}\n", d.name, dtype_name(d.dtype), shape_str(d.shape));
    }
    s += fmt::format("parameters  {} ({})\n", info.n_params,
                     human_bytes(static_cast<double>(info.param_bytes)));
    s += fmt::format("MACs        {:.3f} G (Conv, ConvTranspose, MatMul, Gemm)\n",
                     static_cast<double>(info.macs) / 1e9);
    s += fmt::format("activations {} peak (planned arena)\n",
                     human_bytes(static_cast<double>(info.peak_activation_bytes)));
    s += fmt::format("nodes       {}\n", info.n_nodes);
    std::vector<std::pair<int64_t, std::string>> ops;
    for (const auto& [op, n] : info.op_histogram) ops.emplace_back(-n, op);
    std::sort(ops.begin(), ops.end());
    for (const auto& [n, op] : ops) s += fmt::format("  {:<20} {}\n", op, -n);
    s += fmt::format("{}\n", info.kernels.summary());
    return s;
}

}  // namespace lowbit
