#include "runtime/fusion.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <optional>

namespace lowbit {

namespace {

constexpr size_t kNone = static_cast<size_t>(-1);

// A BatchNormalization in inference mode with constant float32 per-channel parameters, as
// y = x * scale + shift (the reference kernel's arithmetic), or nullptr.
std::shared_ptr<cpu::BnFold> bn_fold(const FusionGraph& g, const Node& n) {
    if (n.op_type != "BatchNormalization" || n.inputs.size() != 5 || n.outputs.empty() ||
        n.attr_int("training_mode", 0) != 0 || n.attr_int("spatial", 1) != 1 ||
        n.attr_int("is_test", 1) == 0) {
        return nullptr;
    }
    for (size_t i = 1; i < n.outputs.size(); ++i) {
        if (!n.outputs[i].empty()) return nullptr;
    }
    const Tensor* p[4];
    for (size_t i = 0; i < 4; ++i) {
        p[i] = g.constant(n.inputs[i + 1]);
        if (!p[i] || p[i]->dtype() != DType::Float32 || p[i]->rank() != 1 ||
            p[i]->numel() != p[0]->numel()) {
            return nullptr;
        }
    }
    const float eps = n.attr_float("epsilon", 1e-5f);
    auto f = std::make_shared<cpu::BnFold>();
    for (int64_t c = 0; c < p[0]->numel(); ++c) {
        const float a = p[0]->data<float>()[c] / std::sqrt(p[3]->data<float>()[c] + eps);
        f->scale.push_back(a);
        f->shift.push_back(p[1]->data<float>()[c] - p[2]->data<float>()[c] * a);
    }
    return f;
}

// The single-input, single-output node reading `t` alone (t feeds nothing else), or kNone.
size_t sole_reader(const FusionGraph& g, const std::string& t, const char* op) {
    const std::vector<size_t>* readers = g.consumers_of(t);
    if (!readers || readers->size() != 1 || g.graph_outputs.count(t)) return kNone;
    const Node& n = g.graph.nodes[(*readers)[0]];
    if (n.op_type != op || n.inputs.empty() || n.inputs[0] != t || n.outputs.size() != 1) {
        return kNone;
    }
    return (*readers)[0];
}

// Conv -> Sigmoid -> Mul(conv, sigmoid) is SiLU, and a following Add(that, R) is a residual
// connection; both are fused into the conv step when the intermediate tensors feed nothing
// else (ConvTranspose too: its fast kernel has the same epilogue). R must be a float32
// run-time tensor of the same shape, produced before the conv runs. With `float_patterns`
// (float kernels, not the int8 step) also: a BatchNormalization right after the conv (folded
// into its weights), Relu, and hard-swish as HardSigmoid -> Mul(x, hs) or HardSwish, in place
// of SiLU, or HardSigmoid alone, and a Relu after the residual Add.
FusionMatch match_conv_silu_residual(const FusionGraph& g, size_t idx,
                                     const ProducedBefore& produced, bool float_patterns) {
    const Node& node = g.graph.nodes[idx];
    FusionMatch m;
    m.inputs = node.inputs;
    m.outputs = node.outputs;
    if ((node.op_type != "Conv" && node.op_type != "ConvTranspose") || node.outputs.size() != 1) {
        return m;
    }
    if (float_patterns) {
        const size_t bi = sole_reader(g, node.outputs[0], "BatchNormalization");
        if (bi != kNone) {
            if (auto f = bn_fold(g, g.graph.nodes[bi])) {
                m.bn = f;
                m.conv.bn = f.get();
                m.fused.push_back(bi);
                m.outputs = {g.graph.nodes[bi].outputs[0]};
            }
        }
    }
    const std::string c = m.outputs[0];
    size_t sig = kNone;
    const std::vector<size_t>* readers = g.consumers_of(c);
    if (readers && readers->size() == 2 && !g.graph_outputs.count(c)) {
        bool hard = false;
        for (size_t k : *readers) {
            const Node& n = g.graph.nodes[k];
            if (n.inputs.size() != 1 || n.outputs.size() != 1) continue;
            if (n.op_type == "Sigmoid") sig = k;
            if (float_patterns && n.op_type == "HardSigmoid") {
                sig = k;
                hard = true;
            }
        }
        for (size_t k : *readers) {
            const Node& n = g.graph.nodes[k];
            if (sig == kNone || n.op_type != "Mul" || n.inputs.size() != 2 ||
                n.outputs.size() != 1) {
                continue;
            }
            const std::string& sg = g.graph.nodes[sig].outputs[0];
            if (((n.inputs[0] == c && n.inputs[1] == sg) ||
                 (n.inputs[1] == c && n.inputs[0] == sg)) &&
                g.sole_consumer(sg, k)) {
                if (hard) {
                    m.conv.hardswish = true;
                    m.conv.hs_alpha = g.graph.nodes[sig].attr_float("alpha", 0.2f);
                    m.conv.hs_beta = g.graph.nodes[sig].attr_float("beta", 0.5f);
                } else {
                    m.conv.silu = true;
                }
                m.fused.push_back(sig);
                m.fused.push_back(k);
                m.outputs = n.outputs;
            }
        }
    }
    if (float_patterns && !m.conv.silu && !m.conv.hardswish) {
        size_t k = sole_reader(g, c, "Relu");
        if (k != kNone) {
            m.conv.relu = true;
        } else if ((k = sole_reader(g, c, "HardSwish")) != kNone) {
            m.conv.hardswish = true;
            m.conv.hs_alpha = 1.0f / 6.0f;
            m.conv.hs_beta = 0.5f;
        } else if ((k = sole_reader(g, c, "HardSigmoid")) != kNone) {
            m.conv.hardsigmoid = true;
            m.conv.hs_alpha = g.graph.nodes[k].attr_float("alpha", 0.2f);
            m.conv.hs_beta = g.graph.nodes[k].attr_float("beta", 0.5f);
        }
        if (k != kNone) {
            m.fused.push_back(k);
            m.outputs = g.graph.nodes[k].outputs;
        }
    }
    const std::string& t = m.outputs[0];
    const std::vector<size_t>* tr = g.consumers_of(t);
    if (tr && tr->size() == 1 && !g.graph_outputs.count(t)) {
        const Node& n = g.graph.nodes[(*tr)[0]];
        const std::string& r =
            n.inputs.size() == 2 ? (n.inputs[0] == t ? n.inputs[1] : n.inputs[0]) : t;
        if (n.op_type == "Add" && n.outputs.size() == 1 && r != t && !r.empty() && produced(r) &&
            g.descs.at(r).shape == g.descs.at(t).shape &&
            g.descs.at(r).dtype == DType::Float32) {
            m.conv.residual = true;
            m.fused.push_back((*tr)[0]);
            m.outputs = n.outputs;
            m.inputs.resize(3);  // R goes to input 3, after an absent bias if need be
            m.inputs.push_back(r);
            // ResNet's block ends Add -> Relu.
            const size_t k = float_patterns ? sole_reader(g, m.outputs[0], "Relu") : kNone;
            if (k != kNone) {
                m.conv.relu_after = true;
                m.fused.push_back(k);
                m.outputs = g.graph.nodes[k].outputs;
            }
        }
    }
    return m;
}

// A scalar float32 constant (a per-tensor scale), or nullopt.
std::optional<float> scalar_f32(const FusionGraph& g, const std::string& name) {
    const Tensor* t = name.empty() ? nullptr : g.constant(name);
    if (!t || t->dtype() != DType::Float32 || t->numel() != 1) return std::nullopt;
    return t->data<float>()[0];
}

// An absent zero point, or a constant of `dtype` that is all zeros. `absent_is_zero`: the
// node is a DequantizeLinear whose input is known to be `dtype`, so an absent zero point is 0
// of that type (ONNX's default); otherwise an absent one counts as zero only for uint8 (a
// QuantizeLinear without one writes uint8).
bool zero_point_zero(const FusionGraph& g, const Node& n, DType dtype,
                     bool absent_is_zero = false) {
    if (n.inputs.size() < 3 || n.inputs[2].empty()) return absent_is_zero || dtype == DType::UInt8;
    const Tensor* t = g.constant(n.inputs[2]);
    if (!t || t->dtype() != dtype) return false;
    const auto* b = static_cast<const uint8_t*>(t->raw());
    return std::all_of(b, b + t->nbytes(), [](uint8_t v) { return v == 0; });
}

// The Q/DQ conv (fusion.h). Returns a match with `quant` set, or one with only qdq_fallback
// set (the anchor reads a DequantizeLinear output but is not an int8 pattern), or nothing.
FusionMatch match_qdq_conv(const FusionGraph& g, size_t idx, const ProducedBefore& produced) {
    const Node& node = g.graph.nodes[idx];
    FusionMatch none;
    if (node.op_type != "Conv" || node.outputs.size() != 1 || node.inputs.size() < 2) return none;
    const Node* dq = g.runtime_producer(node.inputs[0], "DequantizeLinear");
    if (!dq || dq->inputs.size() < 2) return none;
    auto fallback = [&](std::string why) {
        FusionMatch m;
        m.qdq_fallback = std::move(why);
        return m;
    };
    if (!g.lowp) return fallback("low-precision kernels off (ExecutorOptions::lowp_kernels)");
    const std::string& xq = dq->inputs[0];
    const DType xt = g.descs.at(xq).dtype;
    if (xt == DType::Float8E5M2 || xt == DType::Float8E4M3FNUZ || xt == DType::Float8E5M2FNUZ) {
        return fallback(fmt::format("{} activations: only float8e4m3fn has an FP8 kernel",
                                    dtype_name(xt)));
    }
    if (xt != DType::Int8 && xt != DType::Float8E4M3FN) {
        return fallback(fmt::format("{} activations: only symmetric int8 has a kernel",
                                    dtype_name(xt)));
    }
    auto x_scale = scalar_f32(g, dq->inputs[1]);
    if (!x_scale) return fallback("activation scale is not a float32 constant scalar");
    if (!zero_point_zero(g, *dq, xt)) return fallback("activation zero point is not 0");
    if (g.descs.at(node.inputs[0]).dtype != DType::Float32) {
        return fallback("dequantized activations are not float32");
    }
    // The weights: a constant folded from DequantizeLinear(w_q, scale) at plan time. With int8
    // activations w_q may be INT4 (W4A8): lowbit holds INT4 one sign-extended value a byte
    // (core/int4.h), unpacked at load, so its codes are int8 codes in [-8, 7] as they are.
    auto wp = g.producer.find(node.inputs[1]);
    const Node* wdq = wp == g.producer.end() ? nullptr : &g.graph.nodes[wp->second];
    const Tensor* wq = wdq && wdq->op_type == "DequantizeLinear" && wdq->inputs.size() >= 2
                           ? g.constant(wdq->inputs[0])
                           : nullptr;
    const Tensor* ws = wq ? g.constant(wdq->inputs[1]) : nullptr;
    const bool w4 = wq && xt == DType::Int8 && wq->dtype() == DType::Int4;
    if (!wq || !ws || g.runtime.count(wp->second) || (wq->dtype() != xt && !w4) ||
        wq->rank() != 4 || ws->dtype() != DType::Float32) {
        return fallback(fmt::format("weights are not a DequantizeLinear of constant {} codes{}",
                                    dtype_name(xt), xt == DType::Int8 ? " or int4 codes" : ""));
    }
    const int64_t m_out = wq->shape()[0];
    const int64_t axis = wdq->attr_int("axis", 1);
    if (wdq->attr_int("block_size", 0) != 0) {
        return fallback(
            fmt::format("block-wise {} weight scales (DequantizeLinear block_size): "
                        "the {} kernel takes one scale per output channel",
                        dtype_name(wq->dtype()), dtype_name(xt)));
    }
    if (!(ws->numel() == 1 || (ws->numel() == m_out && ws->rank() == 1 && axis == 0))) {
        return fallback("weight scales are neither per tensor nor per output channel");
    }
    if (!zero_point_zero(g, *wdq, wq->dtype(), true)) {
        return fallback("weight zero point is not 0");
    }

    FusionMatch m = match_conv_silu_residual(g, idx, produced, false);
    auto spec = std::make_shared<cpu::QuantConvSpec>();
    spec->codes = xt;
    spec->w_codes = wq;
    spec->x_scale = *x_scale;
    spec->w_scale.resize(static_cast<size_t>(m_out));
    for (int64_t k = 0; k < m_out; ++k) {
        spec->w_scale[static_cast<size_t>(k)] = ws->data<float>()[ws->numel() == 1 ? 0 : k];
    }
    m.inputs[0] = xq;
    if (m.conv.residual) {
        const Node* rdq = g.runtime_producer(m.inputs[3], "DequantizeLinear");
        if (rdq && rdq->inputs.size() >= 2 && g.descs.at(rdq->inputs[0]).dtype == xt &&
            zero_point_zero(g, *rdq, xt) && produced(rdq->inputs[0])) {
            if (auto rs = scalar_f32(g, rdq->inputs[1])) {
                spec->residual_q = true;
                spec->r_scale = *rs;
                m.inputs[3] = rdq->inputs[0];
            }
        }
    }
    // A QuantizeLinear (x_q's dtype, per tensor, zero point 0) reading the result alone ends it.
    const std::string& t = m.outputs[0];
    const std::vector<size_t>* readers = g.consumers_of(t);
    if (readers && readers->size() == 1 && !g.graph_outputs.count(t)) {
        const size_t qi = (*readers)[0];
        const Node& q = g.graph.nodes[qi];
        if (q.op_type == "QuantizeLinear" && q.inputs.size() >= 3 && q.inputs[0] == t &&
            q.outputs.size() == 1 && g.descs.at(q.outputs[0]).dtype == xt &&
            zero_point_zero(g, q, xt)) {
            if (auto ys = scalar_f32(g, q.inputs[1]); ys && *ys > 0.0f) {
                spec->out_q = true;
                spec->saturate = q.attr_int("saturate", 1) != 0;
                spec->y_scale = *ys;
                m.fused.push_back(qi);
                m.outputs = q.outputs;
            }
        }
    }
    m.quant = spec;
    m.conv.quant = spec.get();
    return m;
}

// The int8 data move (fusion.h): a Concat or MaxPool whose result feeds only an int8
// QuantizeLinear (per tensor, zero point 0). Inputs that are DequantizeLinear outputs (int8,
// per tensor, zero point 0, codes already produced) are read as codes; other inputs must be
// float32 (Concat only: a MaxPool on float values is left to the float kernel).
FusionMatch match_qdq_move(const FusionGraph& g, size_t idx, const ProducedBefore& produced) {
    const Node& node = g.graph.nodes[idx];
    FusionMatch none;
    const bool concat = node.op_type == "Concat";
    if ((!concat && node.op_type != "MaxPool") || node.outputs.empty() || node.inputs.empty()) {
        return none;
    }
    const std::string& t = node.outputs[0];
    const std::vector<size_t>* readers = g.consumers_of(t);
    if (!readers || readers->size() != 1 || g.graph_outputs.count(t)) return none;
    const size_t qi = (*readers)[0];
    const Node& q = g.graph.nodes[qi];
    if (q.op_type != "QuantizeLinear" || q.inputs.size() < 3 || q.inputs[0] != t ||
        q.outputs.size() != 1 || g.descs.at(q.outputs[0]).dtype != DType::Int8 ||
        !zero_point_zero(g, q, DType::Int8) || q.attr_int("block_size", 0) != 0) {
        return none;
    }
    auto ys = scalar_f32(g, q.inputs[1]);
    if (!ys || !(*ys > 0.0f) || !std::isfinite(*ys)) return none;
    auto spec = std::make_shared<cpu::QuantMoveSpec>();
    spec->y_scale = *ys;
    FusionMatch m;
    bool any_codes = false;
    for (const auto& in0 : node.inputs) {
        if (in0.empty() || g.constant(in0)) return none;
        // Concat: a Resize (read by this Concat alone) of dequantized codes is fused too.
        cpu::QuantMoveSpec::Upsample up;
        std::string in = in0;
        if (concat && g.sole_consumer(in0, idx)) {
            const Node* rz = g.runtime_producer(in0, "Resize");
            const Node* rdq = rz && !rz->inputs.empty()
                                  ? g.runtime_producer(rz->inputs[0], "DequantizeLinear")
                                  : nullptr;
            if (rdq && rz->outputs.size() == 1) {
                up.resize = rz;
                up.scales = rz->inputs.size() > 2 ? g.constant(rz->inputs[2]) : nullptr;
                up.out = g.descs.at(in0).shape;
                in = rz->inputs[0];
            }
        }
        const Node* dq = g.runtime_producer(in, "DequantizeLinear");
        std::optional<float> s;
        if (dq && dq->inputs.size() >= 2 && g.descs.at(dq->inputs[0]).dtype == DType::Int8 &&
            zero_point_zero(g, *dq, DType::Int8) && produced(dq->inputs[0])) {
            s = scalar_f32(g, dq->inputs[1]);
        }
        if (s && *s > 0.0f && std::isfinite(*s)) {
            spec->in_scale.push_back(*s);
            m.inputs.push_back(dq->inputs[0]);
            any_codes = true;
            if (up.resize) m.fused.push_back(g.producer.at(in0));
        } else if (up.resize) {
            return none;
        } else if (concat && g.descs.at(in).dtype == DType::Float32 && produced(in)) {
            spec->in_scale.push_back(0.0f);
            m.inputs.push_back(in);
        } else {
            return none;
        }
        spec->upsample.push_back(std::move(up));
    }
    if (!any_codes) return none;  // all float: nothing moves as int8
    m.fused.push_back(qi);
    m.outputs = q.outputs;
    m.qmove = spec;
    m.conv.qmove = spec.get();
    return m;
}

}  // namespace

FusionGraph::FusionGraph(const Graph& g, const std::unordered_map<std::string, TensorDesc>& d,
                         const std::vector<size_t>& order, const std::vector<TensorDesc>& outputs,
                         const std::unordered_map<std::string, Tensor>* consts, bool lowp_kernels)
    : graph(g), descs(d), constants(consts), lowp(lowp_kernels) {
    for (const auto& o : outputs) graph_outputs.insert(o.name);
    for (size_t idx : order) {
        runtime.insert(idx);
        for (const auto& in : g.nodes[idx].inputs) {
            if (!in.empty()) consumers[in].push_back(idx);
        }
    }
    for (size_t i = 0; i < g.nodes.size(); ++i) {
        for (const auto& out : g.nodes[i].outputs) {
            if (!out.empty()) producer[out] = i;
        }
    }
}

const Tensor* FusionGraph::constant(const std::string& t) const {
    if (!constants) return nullptr;
    auto it = constants->find(t);
    return it == constants->end() ? nullptr : &it->second;
}

const Node* FusionGraph::runtime_producer(const std::string& t, const char* op) const {
    auto it = producer.find(t);
    if (it == producer.end() || !runtime.count(it->second)) return nullptr;
    const Node& n = graph.nodes[it->second];
    return n.op_type == op ? &n : nullptr;
}

const std::vector<size_t>* FusionGraph::consumers_of(const std::string& t) const {
    auto it = consumers.find(t);
    return it == consumers.end() ? nullptr : &it->second;
}

bool FusionGraph::sole_consumer(const std::string& t, size_t node) const {
    const std::vector<size_t>* readers = consumers_of(t);
    return readers && !graph_outputs.count(t) &&
           std::all_of(readers->begin(), readers->end(), [&](size_t c) { return c == node; });
}

namespace {

// The one run-time node reading `t` (t feeds nothing else and is no graph output) when it is
// a single-output `op`; kNone otherwise.
size_t sole_op_reader(const FusionGraph& g, const std::string& t, const char* op) {
    const std::vector<size_t>* readers = g.consumers_of(t);
    if (!readers || readers->size() != 1 || g.graph_outputs.count(t)) return kNone;
    const Node& n = g.graph.nodes[(*readers)[0]];
    return n.op_type == op && n.outputs.size() == 1 ? (*readers)[0] : kNone;
}

// The value of `t` when it is a float32 one-element constant.
std::optional<float> scalar_constant(const FusionGraph& g, const std::string& t) {
    const Tensor* c = g.constant(t);
    if (!c || c->dtype() != DType::Float32 || c->numel() != 1) return std::nullopt;
    return c->data<float>()[0];
}

// For a binary node reading `t`: its other operand (empty when it reads t twice or not at all).
std::string other_operand(const Node& n, const std::string& t) {
    if (n.inputs.size() != 2) return {};
    if (n.inputs[0] == t && n.inputs[1] != t) return n.inputs[1];
    if (n.inputs[1] == t && n.inputs[0] != t) return n.inputs[0];
    return {};
}

// GELU as exported from PyTorch (ConvNeXt, ViT): Div(x, c) -> Erf -> Add(., 1) ->
// Mul(x, .) -> Mul(., 0.5), with c a float32 scalar constant (sqrt 2) and every intermediate
// read only by the next node; one elementwise step on x anchored at the Div. The operands of
// the Add and the Muls may be either way round; the shapes must all be x's (no broadcast).
FusionMatch match_gelu(const FusionGraph& g, size_t idx) {
    const Node& div = g.graph.nodes[idx];
    FusionMatch m;
    m.inputs = div.inputs;
    m.outputs = div.outputs;
    if (div.op_type != "Div" || div.inputs.size() != 2 || div.outputs.size() != 1 || !g.constants) {
        return m;
    }
    const std::string& x = div.inputs[0];
    const std::optional<float> c = scalar_constant(g, div.inputs[1]);
    auto xd = g.descs.find(x);
    if (!c || g.constant(x) || xd == g.descs.end() || xd->second.dtype != DType::Float32) return m;
    const Shape& shape = xd->second.shape;
    auto same_shape = [&](const Node& n) {
        auto d = g.descs.find(n.outputs[0]);
        return d != g.descs.end() && d->second.shape == shape &&
               d->second.dtype == DType::Float32;
    };
    if (!same_shape(div)) return m;
    const size_t erf = sole_op_reader(g, div.outputs[0], "Erf");
    if (erf == kNone || !same_shape(g.graph.nodes[erf])) return m;
    const std::string& e = g.graph.nodes[erf].outputs[0];
    const size_t add = sole_op_reader(g, e, "Add");
    if (add == kNone || !same_shape(g.graph.nodes[add])) return m;
    const std::optional<float> one = scalar_constant(g, other_operand(g.graph.nodes[add], e));
    if (!one || *one != 1.0f) return m;
    const std::string& a = g.graph.nodes[add].outputs[0];
    const size_t mul = sole_op_reader(g, a, "Mul");
    if (mul == kNone || other_operand(g.graph.nodes[mul], a) != x ||
        !same_shape(g.graph.nodes[mul])) {
        return m;
    }
    const std::string& xm = g.graph.nodes[mul].outputs[0];
    const size_t half = sole_op_reader(g, xm, "Mul");
    if (half == kNone || !same_shape(g.graph.nodes[half])) return m;
    const std::optional<float> h = scalar_constant(g, other_operand(g.graph.nodes[half], xm));
    if (!h || *h != 0.5f) return m;
    m.conv.gelu = true;
    m.conv.gelu_div = *c;
    m.fused = {erf, add, mul, half};
    m.inputs = {x};
    m.outputs = g.graph.nodes[half].outputs;
    return m;
}

// MatMul -> Add(., bias) (either way round), bias a float32 constant vector along the last
// axis ([N], or [1, ..., N] of no higher rank than the product) and the product read by the
// Add alone: one matmul step with the bias (ConvNeXt's and the transformers' linear layers).
// ConvNeXt's block goes on (each read by the next alone): Transpose [0, 3, 1, 2] of the rank-4
// result (the step then writes [N, C, H, W] channels-last: the same bytes) -> Mul(., layer
// scale), a constant with one value per channel ([C, 1, 1] or [1, C, 1, 1]; [N] or [1, .., N]
// without the Transpose) -> Add(., R), R a float32 run-time tensor of the result's shape
// produced before the MatMul (the residual). Each of the three is optional, in that order.
FusionMatch match_matmul_bias(const FusionGraph& g, size_t idx, const ProducedBefore& produced) {
    const Node& mm = g.graph.nodes[idx];
    FusionMatch m;
    m.inputs = mm.inputs;
    m.outputs = mm.outputs;
    if (mm.op_type != "MatMul" || mm.inputs.size() != 2 || mm.outputs.size() != 1) return m;
    auto yd = g.descs.find(mm.outputs[0]);
    if (yd == g.descs.end() || yd->second.dtype != DType::Float32 || yd->second.shape.empty()) {
        return m;
    }
    const Shape& shape = yd->second.shape;
    const size_t add = sole_op_reader(g, mm.outputs[0], "Add");
    if (add == kNone) return m;
    const Node& an = g.graph.nodes[add];
    const std::string bias = other_operand(an, mm.outputs[0]);
    const Tensor* c = bias.empty() ? nullptr : g.constant(bias);
    auto ad = g.descs.find(an.outputs[0]);
    if (!c || c->dtype() != DType::Float32 || ad == g.descs.end() || ad->second.shape != shape) {
        return m;
    }
    const Shape& bs = c->shape();
    if (bs.empty() || bs.size() > shape.size() || bs.back() != shape.back() ||
        c->numel() != shape.back()) {
        return m;
    }
    m.conv.matmul_bias = true;
    m.fused = {add};
    m.inputs = {mm.inputs[0], mm.inputs[1], bias};
    m.outputs = an.outputs;
    std::string y = an.outputs[0];
    Shape ys = shape;
    const int64_t channels = shape.back();
    const size_t tr = shape.size() == 4 ? sole_op_reader(g, y, "Transpose") : kNone;
    if (tr != kNone && g.graph.nodes[tr].attr_ints("perm") == std::vector<int64_t>{0, 3, 1, 2}) {
        m.conv.matmul_nhwc = true;
        m.fused.push_back(tr);
        y = g.graph.nodes[tr].outputs[0];
        ys = {shape[0], shape[3], shape[1], shape[2]};
    }
    auto full_size = [&](size_t node) {
        auto d = g.descs.find(g.graph.nodes[node].outputs[0]);
        return d != g.descs.end() && d->second.shape == ys && d->second.dtype == DType::Float32;
    };
    std::string scale;
    const size_t mul = sole_op_reader(g, y, "Mul");
    if (mul != kNone && full_size(mul)) {
        const std::string s = other_operand(g.graph.nodes[mul], y);
        const Tensor* c = s.empty() ? nullptr : g.constant(s);
        bool per_channel = false;
        if (c && c->dtype() == DType::Float32 && c->numel() == channels) {
            const Shape& cs = c->shape();
            per_channel = m.conv.matmul_nhwc
                              ? (cs == Shape{channels, 1, 1} || cs == Shape{1, channels, 1, 1})
                              : (!cs.empty() && cs.size() <= ys.size() && cs.back() == channels);
        }
        if (per_channel) {
            scale = s;
            m.conv.matmul_scale = true;
            m.fused.push_back(mul);
            y = g.graph.nodes[mul].outputs[0];
        }
    }
    std::string residual;
    const size_t radd = sole_op_reader(g, y, "Add");
    if (radd != kNone && full_size(radd)) {
        const std::string r = other_operand(g.graph.nodes[radd], y);
        auto rd = g.descs.find(r);
        if (!r.empty() && !g.constant(r) && rd != g.descs.end() && rd->second.shape == ys &&
            rd->second.dtype == DType::Float32 && produced(r)) {
            residual = r;
            m.conv.matmul_residual = true;
            m.fused.push_back(radd);
            y = g.graph.nodes[radd].outputs[0];
        }
    }
    if (m.conv.matmul_scale || m.conv.matmul_residual) {
        m.inputs.push_back(scale);
        m.inputs.push_back(residual);
    }
    m.outputs = {y};
    return m;
}

// The single axis a ReduceMean (keepdims) reduces when it is the last one of a rank-`rank`
// input: the `axes` attribute below opset 18, a constant input from 18 on.
bool reduces_last_axis(const FusionGraph& g, const Node& n, size_t rank) {
    if (n.op_type != "ReduceMean" || n.inputs.empty() || n.outputs.size() != 1 ||
        n.attr_int("keepdims", 1) == 0) {
        return false;
    }
    std::vector<int64_t> axes;
    if (n.inputs.size() >= 2 && !n.inputs[1].empty()) {
        const Tensor* a = g.constant(n.inputs[1]);
        if (!a || a->dtype() != DType::Int64) return false;
        axes.assign(a->data<int64_t>(), a->data<int64_t>() + a->numel());
    } else {
        axes = n.attr_ints("axes");
    }
    const auto r = static_cast<int64_t>(rank);
    return axes.size() == 1 && (axes[0] == -1 || axes[0] == r - 1);
}

// A float32 constant holding one value per element of the last axis (length `len`): [len],
// or [1, ..., len] of rank at most `rank` (so that broadcasting it keeps the shape).
const Tensor* last_axis_vector(const FusionGraph& g, const std::string& name, int64_t len,
                               size_t rank) {
    const Tensor* c = name.empty() ? nullptr : g.constant(name);
    if (!c || c->dtype() != DType::Float32 || c->rank() == 0 || c->rank() > rank ||
        c->shape().back() != len || c->numel() != len) {
        return nullptr;
    }
    return c;
}

// LayerNorm over the last axis as PyTorch exports it below opset 17 (ConvNeXt, the
// transformers), with every intermediate read only inside the pattern:
//   m = ReduceMean(x, last axis), d = Sub(x, m), p = Pow(d, 2), v = ReduceMean(p, last axis),
//   a = Add(v, eps), s = Sqrt(a), n = Div(d, s) [-> Mul(n, gamma)] [-> Add(., beta)]
// eps a scalar constant, gamma and beta constant vectors along the last axis (operands either
// way round where the op commutes), every full-size tensor x's shape, the means x's with the
// last axis 1. Anchored at the first ReduceMean, or at a Transpose [0, 2, 3, 1] producing x
// (read by the pattern alone; ConvNeXt's LayerNorm2d and block), and a Transpose
// [0, 3, 1, 2] reading the result alone ends it: one step over rows (LayerNormSpec).
// The LayerNormalization op (opset 17) is taken the same way when it normalizes the last axis
// only, with constant Scale (and B) of one value per row element, and its optional Mean and
// InvStdDev outputs absent.
FusionMatch match_layer_norm(const FusionGraph& g, size_t idx) {
    const Node& anchor = g.graph.nodes[idx];
    FusionMatch none;
    none.inputs = anchor.inputs;
    none.outputs = anchor.outputs;
    if (!g.constants || anchor.outputs.empty() || anchor.inputs.empty()) return none;
    for (size_t i = 1; i < anchor.outputs.size(); ++i) {
        if (!anchor.outputs[i].empty()) return none;
    }
    auto spec = std::make_shared<cpu::LayerNormSpec>();
    std::vector<size_t> fused;
    std::string x = anchor.inputs[0];
    std::string x_in = x;  // what the step reads
    size_t mean1 = idx;
    if (anchor.op_type == "Transpose") {
        auto xd = g.descs.find(x);
        if (anchor.attr_ints("perm") != std::vector<int64_t>{0, 2, 3, 1} || xd == g.descs.end() ||
            xd->second.shape.size() != 4) {
            return none;
        }
        x = anchor.outputs[0];
        const std::vector<size_t>* readers = g.consumers_of(x);
        if (!readers || readers->empty() || readers->size() > 2 || g.graph_outputs.count(x)) {
            return none;
        }
        mean1 = kNone;
        for (size_t r : *readers) {
            const std::string& op = g.graph.nodes[r].op_type;
            if (readers->size() == 2 ? op == "ReduceMean" : op == "LayerNormalization") mean1 = r;
        }
        if (mean1 == kNone) return none;
        spec->in_nhwc = true;
        fused.push_back(mean1);
    } else if (anchor.op_type != "ReduceMean" && anchor.op_type != "LayerNormalization") {
        return none;
    }
    auto xd = g.descs.find(x);
    if (g.constant(x) || xd == g.descs.end() || xd->second.dtype != DType::Float32 ||
        xd->second.shape.empty() || xd->second.shape.back() <= 0) {
        return none;
    }
    const Shape& shape = xd->second.shape;
    const size_t rank = shape.size();
    const int64_t len = shape.back();
    Shape reduced = shape;
    reduced.back() = 1;
    auto has = [&](const std::string& t, const Shape& want) {
        auto d = g.descs.find(t);
        return d != g.descs.end() && d->second.shape == want && d->second.dtype == DType::Float32;
    };
    const Node& m1 = g.graph.nodes[mean1];
    // The rest: an optional Transpose back, the match.
    auto finish = [&](std::string y, const std::string& gamma, const std::string& beta) {
        const size_t back = rank == 4 ? sole_op_reader(g, y, "Transpose") : kNone;
        if (back != kNone &&
            g.graph.nodes[back].attr_ints("perm") == std::vector<int64_t>{0, 3, 1, 2}) {
            spec->out_nhwc = true;
            fused.push_back(back);
            y = g.graph.nodes[back].outputs[0];
        }
        FusionMatch m;
        m.fused = std::move(fused);
        m.inputs = {x_in, gamma, beta};
        m.outputs = {y};
        m.layer_norm = spec;
        m.conv.layer_norm = spec.get();
        return m;
    };
    if (m1.op_type == "LayerNormalization") {
        for (size_t i = 1; i < m1.outputs.size(); ++i) {
            if (!m1.outputs[i].empty()) return none;
        }
        const int64_t axis = m1.attr_int("axis", -1);
        const std::string beta = m1.inputs.size() > 2 ? m1.inputs[2] : std::string();
        if (m1.inputs[0] != x || m1.inputs.size() < 2 ||
            (axis != -1 && axis != static_cast<int64_t>(rank) - 1) || !has(m1.outputs[0], shape) ||
            !last_axis_vector(g, m1.inputs[1], len, rank) ||
            (!beta.empty() && !last_axis_vector(g, beta, len, rank))) {
            return none;
        }
        const float eps = m1.attr_float("epsilon", 1e-5f);
        if (!(eps >= 0.0f) || !std::isfinite(eps)) return none;
        spec->epsilon = eps;
        return finish(m1.outputs[0], m1.inputs[1], beta);
    }
    if (m1.inputs[0] != x || !reduces_last_axis(g, m1, rank) || !has(m1.outputs[0], reduced)) {
        return none;
    }
    const size_t sub = sole_op_reader(g, m1.outputs[0], "Sub");
    if (sub == kNone || g.graph.nodes[sub].inputs != std::vector<std::string>{x, m1.outputs[0]} ||
        !has(g.graph.nodes[sub].outputs[0], shape)) {
        return none;
    }
    // d feeds the Pow and the Div, nothing else.
    const std::string& d = g.graph.nodes[sub].outputs[0];
    const std::vector<size_t>* dr = g.consumers_of(d);
    if (!dr || dr->size() != 2 || g.graph_outputs.count(d)) return none;
    size_t pow = kNone, div = kNone;
    for (size_t r : *dr) {
        const Node& n = g.graph.nodes[r];
        if (n.op_type == "Pow" && n.inputs.size() == 2 && n.inputs[0] == d) pow = r;
        if (n.op_type == "Div" && n.inputs.size() == 2 && n.inputs[0] == d) div = r;
    }
    if (pow == kNone || div == kNone || g.graph.nodes[pow].outputs.size() != 1 ||
        g.graph.nodes[div].outputs.size() != 1) {
        return none;
    }
    const std::optional<float> two = scalar_constant(g, g.graph.nodes[pow].inputs[1]);
    if (!two || *two != 2.0f || !has(g.graph.nodes[pow].outputs[0], shape)) return none;
    const size_t mean2 = sole_op_reader(g, g.graph.nodes[pow].outputs[0], "ReduceMean");
    if (mean2 == kNone || !reduces_last_axis(g, g.graph.nodes[mean2], rank) ||
        !has(g.graph.nodes[mean2].outputs[0], reduced)) {
        return none;
    }
    const std::string& v = g.graph.nodes[mean2].outputs[0];
    const size_t add = sole_op_reader(g, v, "Add");
    if (add == kNone || !has(g.graph.nodes[add].outputs[0], reduced)) return none;
    const std::optional<float> eps = scalar_constant(g, other_operand(g.graph.nodes[add], v));
    if (!eps || !(*eps >= 0.0f) || !std::isfinite(*eps)) return none;
    const size_t sqrt = sole_op_reader(g, g.graph.nodes[add].outputs[0], "Sqrt");
    if (sqrt == kNone || !has(g.graph.nodes[sqrt].outputs[0], reduced)) return none;
    const std::string& s = g.graph.nodes[sqrt].outputs[0];
    if (!g.sole_consumer(s, div) || g.graph.nodes[div].inputs[1] != s ||
        !has(g.graph.nodes[div].outputs[0], shape)) {
        return none;
    }
    spec->epsilon = *eps;
    fused.insert(fused.end(), {sub, pow, mean2, add, sqrt, div});
    std::string y = g.graph.nodes[div].outputs[0];
    std::string gamma, beta;
    const size_t mul = sole_op_reader(g, y, "Mul");
    if (mul != kNone && has(g.graph.nodes[mul].outputs[0], shape)) {
        const std::string w = other_operand(g.graph.nodes[mul], y);
        if (last_axis_vector(g, w, len, rank)) {
            gamma = w;
            fused.push_back(mul);
            y = g.graph.nodes[mul].outputs[0];
        }
    }
    const size_t bias = sole_op_reader(g, y, "Add");
    if (bias != kNone && has(g.graph.nodes[bias].outputs[0], shape)) {
        const std::string b = other_operand(g.graph.nodes[bias], y);
        if (last_axis_vector(g, b, len, rank)) {
            beta = b;
            fused.push_back(bias);
            y = g.graph.nodes[bias].outputs[0];
        }
    }
    return finish(y, gamma, beta);
}

}  // namespace

FusionMatch match_fusion(const FusionGraph& g, size_t node, const ProducedBefore& produced,
                         bool allow_quant) {
    std::string qdq_fallback;
    if (g.constants && g.lowp && allow_quant) {
        FusionMatch mv = match_qdq_move(g, node, produced);
        if (mv.qmove) return mv;
    }
    if (g.constants) {
        FusionMatch q = match_qdq_conv(g, node, produced);
        if (q.quant && allow_quant) return q;
        qdq_fallback = q.quant ? "the low-precision kernel refused it" : q.qdq_fallback;
    }
    if (g.graph.nodes[node].op_type == "MatMul" && g.constants) {
        FusionMatch bm = match_matmul_bias(g, node, produced);
        if (bm.any()) return bm;
    }
    if (g.graph.nodes[node].op_type == "Div") {
        FusionMatch gm = match_gelu(g, node);
        if (gm.any()) return gm;
    }
    const std::string& op = g.graph.nodes[node].op_type;
    if (op == "ReduceMean" || op == "Transpose" || op == "LayerNormalization") {
        FusionMatch lm = match_layer_norm(g, node);
        if (lm.any()) return lm;
    }
    FusionMatch m = match_conv_silu_residual(g, node, produced, true);
    m.qdq_fallback = std::move(qdq_fallback);
    return m;
}

}  // namespace lowbit
