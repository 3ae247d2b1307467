#include "quant/qdq_rewrite.h"

#include <fmt/format.h>

#include <map>
#include <set>
#include <unordered_set>

#include "core/half.h"

namespace lowbit::quant {

namespace {

// Tensor and node names already in use, so that generated names never collide.
class NameSet {
public:
    explicit NameSet(const Graph& g) {
        for (const auto& n : g.nodes) {
            used_.insert(n.name);
            for (const auto& t : n.inputs) used_.insert(t);
            for (const auto& t : n.outputs) used_.insert(t);
        }
        for (const auto& [name, t] : g.initializers) used_.insert(name);
        for (const auto& v : g.inputs) used_.insert(v.name);
        for (const auto& v : g.outputs) used_.insert(v.name);
    }
    // `base` if free, else base_1, base_2, ...
    std::string take(const std::string& base) {
        std::string name = base;
        for (int k = 1; used_.count(name); ++k) name = fmt::format("{}_{}", base, k);
        used_.insert(name);
        return name;
    }

private:
    std::unordered_set<std::string> used_;
};

Tensor scalar_scale(double scale, DType dt) {
    const float s = stored_scale(scale, dt);
    if (dt == DType::Float16) {
        return Tensor::from_vector<uint16_t>(dt, {}, {float_to_half(s)});
    }
    return Tensor::from_vector<float>(dt, {}, {s});
}

Tensor vector_scale(const std::vector<float>& s, DType dt) {
    const int64_t n = static_cast<int64_t>(s.size());
    if (dt == DType::Float16) {
        std::vector<uint16_t> h(s.size());
        for (size_t i = 0; i < s.size(); ++i) h[i] = float_to_half(s[i]);
        return Tensor::from_vector<uint16_t>(dt, {n}, h);
    }
    return Tensor::from_vector<float>(dt, {n}, s);
}

Tensor zero_point(DType dt, int32_t zp, Shape shape) {
    Tensor t(dt, std::move(shape));
    const int64_t n = t.numel();
    for (int64_t i = 0; i < n; ++i) {
        if (dt == DType::UInt8)
            t.data<uint8_t>()[i] = static_cast<uint8_t>(zp);
        else if (dt == DType::Int8)
            t.data<int8_t>()[i] = static_cast<int8_t>(zp);
        else
            t.data<uint8_t>()[i] = 0;  // FP8 zero (0x00)
    }
    return t;
}

Node make_node(const std::string& op, const std::string& name, std::vector<std::string> in,
               std::vector<std::string> out, int64_t axis) {
    Node n;
    n.op_type = op;
    n.name = name;
    n.inputs = std::move(in);
    n.outputs = std::move(out);
    if (axis >= 0) n.attrs["axis"] = Attr::make_int(axis);  // per-channel only
    return n;
}

}  // namespace

Tensor quantize_weight(const Tensor& w, int64_t axis, QuantMode mode, DType scale_dtype,
                       std::vector<float>* scales) {
    const Shape& shape = w.shape();
    const float* src = w.data<float>();
    std::vector<double> raw;
    if (axis >= 0) {
        raw = per_channel_scales(src, shape, axis, mode);
    } else {
        double amax = 0;
        for (int64_t i = 0; i < w.numel(); ++i) amax = std::max(amax, std::fabs(double(src[i])));
        raw = {amax > 0 ? symmetric_scale(amax, mode) : 1.0};
    }
    scales->resize(raw.size());
    for (size_t c = 0; c < raw.size(); ++c) (*scales)[c] = stored_scale(raw[c], scale_dtype);

    int64_t inner = 1;
    for (size_t i = static_cast<size_t>(std::max<int64_t>(axis, 0)) + 1;
         axis >= 0 && i < shape.size(); ++i) {
        inner *= shape[i];
    }
    const int64_t channels = axis >= 0 ? shape[static_cast<size_t>(axis)] : 1;
    Tensor q(quant_dtype(mode), shape);
    for (int64_t i = 0; i < w.numel(); ++i) {
        const int64_t c = axis >= 0 ? (i / inner) % channels : 0;
        float v = src[i];
        if (scale_dtype == DType::Float16) v = half_to_float(float_to_half(v));
        const float s = (*scales)[static_cast<size_t>(c)];
        if (mode == QuantMode::Int8) {
            q.data<int8_t>()[i] = quantize_int8(v, s);
        } else {
            q.data<uint8_t>()[i] = quantize_fp8(v, s);
        }
    }
    return q;
}

Result<RewriteStats> insert_qdq(Model& model, const Placement& placement,
                                const std::vector<ActivationParams>& params,
                                const RewriteOptions& opts) {
    Graph& g = model.graph;
    if (params.size() != placement.activations.size()) {
        return invalid("insert_qdq: {} activation parameter sets for {} Q/DQ pairs", params.size(),
                       placement.activations.size());
    }
    NameSet names(g);
    RewriteStats stats;
    const DType wq_dtype = quant_dtype(opts.mode);

    // New nodes to emit in front of each original node, and input renames per (node, input).
    std::map<size_t, std::vector<Node>> before;
    std::map<std::pair<size_t, size_t>, std::string> rewire;

    // Activations: one pair per tensor, emitted in front of its first consumer in node order.
    for (size_t a = 0; a < placement.activations.size(); ++a) {
        const ActivationQdq& act = placement.activations[a];
        if (act.edges.empty()) continue;
        const ActivationParams& p = params[a];
        size_t first = act.edges[0].first;
        for (const auto& e : act.edges) first = std::min(first, e.first);
        const std::string& t = act.tensor;
        const std::string scale = names.take(t + "_scale");
        const std::string zp = names.take(t + "_zero_point");
        const std::string q_name = names.take(t + "_QuantizeLinear");
        const std::string q_out = names.take(t + "_QuantizeLinear_Output");
        const std::string dq_name = names.take(t + "_DequantizeLinear");
        const std::string dq_out = names.take(t + "_DequantizeLinear_Output");
        g.set_initializer(scale, scalar_scale(p.scale, opts.scale_dtype));
        g.set_initializer(zp, zero_point(p.zp_dtype, p.zero_point, {}));
        before[first].push_back(make_node("QuantizeLinear", q_name, {t, scale, zp}, {q_out}, -1));
        before[first].push_back(
            make_node("DequantizeLinear", dq_name, {q_out, scale, zp}, {dq_out}, -1));
        for (const auto& e : act.edges) rewire[e] = dq_out;
        stats.new_tensors[q_out] = p.zp_dtype;
        stats.new_tensors[dq_out] = opts.scale_dtype;
        ++stats.activation_pairs;
    }

    // Weights. Count every use of each initializer to find shared ones.
    std::map<std::string, int> uses;
    for (const auto& n : g.nodes) {
        for (const auto& in : n.inputs) {
            if (g.initializer(in)) ++uses[in];
        }
    }
    for (const auto& vo : g.outputs) {
        if (g.initializer(vo.name)) ++uses[vo.name];
    }
    std::map<std::string, int> copies;
    for (const WeightQdq& wq : placement.weights) {
        const Tensor* src = g.initializer(wq.tensor);
        if (!src || src->dtype() != DType::Float32) {
            return invalid("weight '{}' of {} is not a float32 initializer", wq.tensor,
                           g.nodes[wq.node].describe());
        }
        std::string w = wq.tensor;
        if (uses[w] > 1) {
            // Shared initializer: this consumer gets its own copy.
            w = names.take(fmt::format("{}_{}", wq.tensor, ++copies[wq.tensor]));
            g.set_initializer(w, *src);
        }
        const Tensor weight = *g.initializer(w);
        const int64_t axis = wq.axis;
        const Shape cshape =
            wq.axis >= 0 ? Shape{weight.dim(static_cast<size_t>(wq.axis))} : Shape{};
        std::vector<float> scales;
        Tensor q = quantize_weight(weight, wq.axis, opts.mode, opts.scale_dtype, &scales);
        const std::string scale = names.take(w + "_scale");
        const std::string zp = names.take(w + "_zero_point");
        const std::string dq_name = names.take(w + "_DequantizeLinear");
        const std::string dq_out = names.take(w + "_DequantizeLinear_Output");
        g.set_initializer(scale, wq.axis >= 0 ? vector_scale(scales, opts.scale_dtype)
                                              : scalar_scale(scales[0], opts.scale_dtype));
        g.set_initializer(zp, zero_point(wq_dtype, 0, cshape));
        if (opts.dq_only) {
            g.set_initializer(w, q);  // the quantized values under the weight's own name
            for (auto& vi : g.inputs) {
                if (vi.name == w) vi.dtype = q.dtype();  // initializer listed as graph input
            }
            before[wq.node].push_back(
                make_node("DequantizeLinear", dq_name, {w, scale, zp}, {dq_out}, axis));
            stats.new_tensors[dq_out] = opts.scale_dtype;
            ++stats.weight_dq;
        } else {
            const std::string q_name = names.take(w + "_QuantizeLinear");
            const std::string q_out = names.take(w + "_QuantizeLinear_Output");
            before[wq.node].push_back(
                make_node("QuantizeLinear", q_name, {w, scale, zp}, {q_out}, axis));
            before[wq.node].push_back(
                make_node("DequantizeLinear", dq_name, {q_out, scale, zp}, {dq_out}, axis));
            stats.new_tensors[q_out] = wq_dtype;
            stats.new_tensors[dq_out] = opts.scale_dtype;
            ++stats.weight_pairs;
        }
        rewire[{wq.node, wq.input}] = dq_out;
    }

    std::vector<Node> nodes;
    nodes.reserve(g.nodes.size() + 4 * (stats.activation_pairs + placement.weights.size()));
    for (size_t i = 0; i < g.nodes.size(); ++i) {
        auto b = before.find(i);
        if (b != before.end()) {
            for (auto& n : b->second) nodes.push_back(std::move(n));
        }
        Node n = std::move(g.nodes[i]);
        for (size_t k = 0; k < n.inputs.size(); ++k) {
            auto r = rewire.find({i, k});
            if (r != rewire.end()) n.inputs[k] = r->second;
        }
        nodes.push_back(std::move(n));
    }
    g.nodes = std::move(nodes);
    // Initializers nobody reads any more (weights replaced by their copies).
    std::set<std::string> read;
    for (const auto& n : g.nodes) read.insert(n.inputs.begin(), n.inputs.end());
    for (const auto& vo : g.outputs) read.insert(vo.name);
    for (const auto& [w, k] : copies) {
        if (read.count(w)) continue;
        g.remove_initializer(w);
        std::erase_if(g.inputs, [&](const ValueInfo& vi) { return vi.name == w; });
    }
    return stats;
}

}  // namespace lowbit::quant
