#include "quant/qdq_rewrite.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <unordered_set>

#include "core/half.h"
#include "core/int4.h"

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

int64_t int4_block_axis(const Shape& shape, int64_t axis) {
    if (shape.size() == 2) return 1 - axis;
    return 1;
}

Int4Weight quantize_weight_int4(const Tensor& w, int64_t axis, int64_t block_size,
                                DType scale_dtype) {
    const Shape& shape = w.shape();
    Int4Weight out;
    // x viewed as [outer, D, inner] along the scale's axis; element (o, j, k) uses scale entry
    // (o * S + j / B) * inner + k, S = ceil(D / B) (per channel: axis = the output channel,
    // B = 1, inner reduced away below).
    const bool blocked = block_size > 0;
    const int64_t a = blocked ? int4_block_axis(shape, axis) : axis;
    const int64_t D = shape[static_cast<size_t>(a)];
    const int64_t B = blocked ? std::min(block_size, std::max<int64_t>(D, 1)) : 1;
    const int64_t S = blocked ? (D + B - 1) / B : D;
    int64_t outer = 1, inner = 1;
    for (int64_t d = 0; d < a; ++d) outer *= shape[static_cast<size_t>(d)];
    for (size_t d = static_cast<size_t>(a) + 1; d < shape.size(); ++d) inner *= shape[d];
    auto entry = [&](int64_t i) -> int64_t {
        const int64_t k = i % inner, j = (i / inner) % D, o = i / (inner * D);
        if (!blocked) return j;
        return (o * S + j / B) * inner + k;
    };
    const int64_t n_scale = blocked ? outer * S * inner : D;
    std::vector<float> v(static_cast<size_t>(w.numel()));
    const float* src = w.data<float>();
    for (int64_t i = 0; i < w.numel(); ++i) {
        v[static_cast<size_t>(i)] =
            scale_dtype == DType::Float16 ? half_to_float(float_to_half(src[i])) : src[i];
    }
    std::vector<double> amax(static_cast<size_t>(n_scale), 0.0);
    for (int64_t i = 0; i < w.numel(); ++i) {
        double& m = amax[static_cast<size_t>(entry(i))];
        m = std::max(m, std::fabs(static_cast<double>(v[static_cast<size_t>(i)])));
    }
    std::vector<float> scales(static_cast<size_t>(n_scale));
    for (size_t e = 0; e < scales.size(); ++e) {
        scales[e] = stored_scale(amax[e] > 0 ? amax[e] / kInt4Max : 1.0, scale_dtype);
    }
    out.q = Tensor(DType::Int4, shape);
    for (int64_t i = 0; i < w.numel(); ++i) {
        out.q.data<int8_t>()[i] =
            quantize_int4(v[static_cast<size_t>(i)], scales[static_cast<size_t>(entry(i))]);
    }
    Shape sshape = {D};
    if (blocked) {
        sshape = shape;
        sshape[static_cast<size_t>(a)] = S;
    }
    if (scale_dtype == DType::Float16) {
        std::vector<uint16_t> h(scales.size());
        for (size_t e = 0; e < scales.size(); ++e) h[e] = float_to_half(scales[e]);
        out.scale = Tensor::from_vector<uint16_t>(DType::Float16, sshape, h);
    } else {
        out.scale = Tensor::from_vector<float>(DType::Float32, sshape, scales);
    }
    out.dq_axis = a;
    out.block_size = blocked ? B : 0;
    return out;
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
        const bool int4_weight =
            opts.int4.enabled && (!opts.int4_nodes || opts.int4_nodes->count(wq.node));
        if (int4_weight) {
            // INT4: stored quantized under the weight's name, DequantizeLinear only.
            const auto pre = opts.int4_codes ? opts.int4_codes->find(wq.node)
                                             : std::map<size_t, Int4Weight>::const_iterator{};
            Int4Weight q4 = opts.int4_codes && pre != opts.int4_codes->end()
                                ? pre->second
                                : quantize_weight_int4(weight, axis, opts.int4.block_size,
                                                       opts.scale_dtype);
            const std::string scale = names.take(w + "_scale");
            const std::string dq_name = names.take(w + "_DequantizeLinear");
            const std::string dq_out = names.take(w + "_DequantizeLinear_Output");
            g.set_initializer(scale, q4.scale);
            g.set_initializer(w, q4.q);
            for (auto& vi : g.inputs) {
                if (vi.name == w) vi.dtype = DType::Int4;  // initializer listed as graph input
            }
            Node dq = make_node("DequantizeLinear", dq_name, {w, scale}, {dq_out}, q4.dq_axis);
            if (q4.block_size > 0) dq.attrs["block_size"] = Attr::make_int(q4.block_size);
            before[wq.node].push_back(std::move(dq));
            stats.new_tensors[dq_out] = opts.scale_dtype;
            ++stats.weight_dq;
            rewire[{wq.node, wq.input}] = dq_out;
            continue;
        }
        const Shape cshape =
            wq.axis >= 0 ? Shape{weight.dim(static_cast<size_t>(wq.axis))} : Shape{};
        std::vector<float> scales;
        const QuantMode wmode = opts.fp8_weight_nodes && opts.fp8_weight_nodes->count(wq.node)
                                    ? QuantMode::Fp8
                                    : opts.mode;
        const DType w_dtype = quant_dtype(wmode);
        Tensor q = quantize_weight(weight, wq.axis, wmode, opts.scale_dtype, &scales);
        const std::string scale = names.take(w + "_scale");
        const std::string zp = names.take(w + "_zero_point");
        const std::string dq_name = names.take(w + "_DequantizeLinear");
        const std::string dq_out = names.take(w + "_DequantizeLinear_Output");
        g.set_initializer(scale, wq.axis >= 0 ? vector_scale(scales, opts.scale_dtype)
                                              : scalar_scale(scales[0], opts.scale_dtype));
        g.set_initializer(zp, zero_point(w_dtype, 0, cshape));
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
            stats.new_tensors[q_out] = w_dtype;
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
