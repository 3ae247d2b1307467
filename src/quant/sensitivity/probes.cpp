#include "quant/sensitivity/probes.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <bit>
#include <map>

#include "quant/sensitivity/fake_quant.h"
#include "runtime/quant_conv.h"

namespace lowbit::quant {

namespace {

// The quantized values of float32 data stored NHWC, as QuantConv reads them: INT8 the codes
// q = saturate(round_half_even(x / s)), FP8 the E4M3FN value of x / s as bfloat16 bits (exact:
// its low 16 float bits are zero); fake_quantize_into's output is that value times s. `x` holds
// c channels of hw pixels, stored NHWC or plain (NCHW, transposed here).
void quantize_values_nhwc(const float* x, bool x_nhwc, int64_t c, int64_t hw, float s,
                          QuantMode mode, void* out) {
    // One loop per mode and layout, so that each vectorizes.
    auto run = [&](auto put) {
        if (x_nhwc) {
            for (int64_t i = 0; i < c * hw; ++i) put(i, x[i]);
            return;
        }
        for (int64_t ch = 0; ch < c; ++ch) {
            for (int64_t p = 0; p < hw; ++p) put(p * c + ch, x[ch * hw + p]);
        }
    };
    if (mode == QuantMode::Int8) {
        auto* q = static_cast<int8_t*>(out);
        run([q, s](int64_t i, float x) {
            q[i] = static_cast<int8_t>(static_cast<int32_t>(round_int8_value(x / s)));
        });
    } else {
        auto* q = static_cast<uint16_t*>(out);
        run([q, s](int64_t i, float x) {
            q[i] = static_cast<uint16_t>(std::bit_cast<uint32_t>(round_to_e4m3(x / s)) >> 16);
        });
    }
}

// Probe work buffers are cut into chunks of this many floats (a few KiB, in L1).
constexpr size_t kProbeChunk = 2048;

// sum(y^2) and sum((fq(y) - y)^2): the quantized output of an op that only picks values of its
// (fake-quantized) input. `buf`: kProbeChunk floats.
SumSquares sum_squares_select(const float* y, int64_t n, float s, QuantMode mode, float* buf) {
    SumSquares r;
    for (int64_t e = 0; e < n; e += static_cast<int64_t>(kProbeChunk)) {
        const int64_t len = std::min<int64_t>(static_cast<int64_t>(kProbeChunk), n - e);
        fake_quantize_into(y + e, buf, len, s, mode);
        const SumSquares c = sum_squares(y + e, buf, len);
        r.signal += c.signal;
        r.noise += c.noise;
    }
    return r;
}

// sum(y^2) and sum((fq(a) + fq(b) - y)^2) for y = a + b (same shapes and storage); an input
// with scale 0 is not quantized. `buf`: 3 * kProbeChunk floats.
SumSquares sum_squares_add(const float* y, const float* a, const float* b, int64_t n,
                           const std::array<float, 2>& scale, QuantMode mode, float* buf) {
    SumSquares r;
    float* qa = buf;
    float* qb = buf + kProbeChunk;
    float* sum = buf + 2 * kProbeChunk;
    for (int64_t e = 0; e < n; e += static_cast<int64_t>(kProbeChunk)) {
        const int64_t len = std::min<int64_t>(static_cast<int64_t>(kProbeChunk), n - e);
        const float* pa = a + e;
        const float* pb = b + e;
        if (scale[0] > 0) {
            fake_quantize_into(pa, qa, len, scale[0], mode);
            pa = qa;
        }
        if (scale[1] > 0) {
            fake_quantize_into(pb, qb, len, scale[1], mode);
            pb = qb;
        }
        for (int64_t i = 0; i < len; ++i) sum[i] = pa[i] + pb[i];
        const SumSquares c = sum_squares(y + e, sum, len);
        r.signal += c.signal;
        r.noise += c.noise;
    }
    return r;
}

// sum(y^2) and sum((yq - y)^2) of a conv output, yq = acc * scale + bias per channel: `acc`
// (QuantConv's sums, NHWC, m channels of hw pixels; turned into yq in place) against `y` stored
// NHWC or plain. An empty bias is zero.
SumSquares sum_squares_conv(const float* y, bool y_nhwc, float* acc,
                            const std::vector<float>& scale, const std::vector<float>& bias,
                            int64_t m, int64_t hw) {
    float* yq = acc;
    const float* sc = scale.data();
    for (int64_t p = 0; p < hw; ++p) {
        float* row = yq + p * m;
        if (bias.empty()) {
            for (int64_t ch = 0; ch < m; ++ch) row[ch] *= sc[ch];
        } else {
            const float* b = bias.data();
            for (int64_t ch = 0; ch < m; ++ch) row[ch] = row[ch] * sc[ch] + b[ch];
        }
    }
    if (y_nhwc) return sum_squares(y, yq, m * hw);
    SumSquares r;
    for (int64_t ch = 0; ch < m; ++ch) {
        for (int64_t p = 0; p < hw; ++p) {
            const double a = y[ch * hw + p];
            const double d = static_cast<double>(yq[p * m + ch]) - a;
            r.signal += a * a;
            r.noise += d * d;
        }
    }
    return r;
}

const TensorDesc* float_desc(const IncrementalRunner& ex, const std::string& name) {
    const TensorDesc* d = name.empty() ? nullptr : ex.tensor_desc(name);
    return d && d->dtype == DType::Float32 ? d : nullptr;
}

}  // namespace

SumSquares sum_squares(const float* a, const float* b, int64_t n) {
    constexpr int kLanes = 8;
    double sg[kLanes] = {}, nz[kLanes] = {};
    int64_t e = 0;
    for (; e + kLanes <= n; e += kLanes) {
        for (int j = 0; j < kLanes; ++j) {
            const double x = a[e + j];
            const double d = static_cast<double>(b[e + j]) - x;
            sg[j] += x * x;
            nz[j] += d * d;
        }
    }
    SumSquares r;
    for (; e < n; ++e) {
        const double d = static_cast<double>(b[e]) - a[e];
        r.signal += static_cast<double>(a[e]) * a[e];
        r.noise += d * d;
    }
    for (int j = 0; j < kLanes; ++j) {
        r.signal += sg[j];
        r.noise += nz[j];
    }
    return r;
}

// A Conv's input quantized once per image, shared by the Convs reading it at the same scale.
struct ProbeSet::CodeInput {
    std::string x;
    float scale = 0;
    int64_t c = 0, hw = 0;
    bool nhwc = false;           // x stored channels-last
    std::vector<uint8_t> codes;  // int8 codes or bfloat16 bits
};

struct ProbeSet::Probe {
    enum class Kind { Conv, Select, Add };
    Kind kind = Kind::Select;
    // Conv
    std::unique_ptr<QuantConv> conv;
    size_t input = 0;                // index into code_inputs_
    std::vector<float> scale, bias;  // per output channel
    int64_t m = 0, ohw = 0;
    bool y_nhwc = false;  // the output stored channels-last
    // Select: the input's scale; Add: each input's scale (0: not quantized)
    float in_scale = 0;
    std::array<std::string, 2> add_in;
    std::array<float, 2> add_scale{0.0f, 0.0f};
};

namespace {

// What planning the Conv probes found, for the note.
struct ConvPlanning {
    std::map<size_t, const WeightQdq*> weight_of;             // Conv node -> its weight (input 1)
    std::map<std::pair<std::string, float>, size_t> slot_of;  // (input, scale) -> code input
    std::string impl, refusal;
};

}  // namespace

ProbeSet::ProbeSet(const SweepSetup& s, int n_threads) : s_(s), n_threads_(n_threads) {}
ProbeSet::~ProbeSet() = default;

bool ProbeSet::has(size_t k) const {
    return k < probes_.size() && probes_[k] != nullptr;
}

std::vector<char> ProbeSet::own_weights() const {
    std::vector<char> own(s_.graph().nodes.size(), 0);
    for (size_t k : probed_) own[s_.nodes[k]] = probes_[k]->kind == Probe::Kind::Conv;
    return own;
}

namespace {

// A Conv probe for node k of `s`, or false when the Conv cannot have one (then it runs through
// the executor).
Result<bool> plan_conv_probe(const SweepSetup& s, size_t k, const TensorDesc& yd, ConvPlanning& cp,
                             ProbeSet::Probe& pr, std::vector<ProbeSet::CodeInput>& code_inputs) {
    const Graph& g = s.graph();
    const IncrementalRunner& ex = *s.ex;
    const Node& node = g.nodes[s.nodes[k]];
    const QuantMode mode = s.mode;
    const WeightQdq& wq = *cp.weight_of.at(s.nodes[k]);
    const TensorDesc* xd = float_desc(ex, node.inputs[0]);
    const Tensor* w = g.initializer(wq.tensor);
    const bool has_bias = node.inputs.size() > 2 && !node.inputs[2].empty();
    const Tensor* b = has_bias ? g.initializer(node.inputs[2]) : nullptr;
    if (!xd || !w || xd->shape.size() != 4 || yd.shape.size() != 4 ||
        (has_bias && (!b || b->dtype() != DType::Float32 || b->numel() != yd.shape[1]))) {
        return false;
    }
    std::vector<float> ws;
    const Tensor codes = quantize_weight(*w, wq.axis, mode, DType::Float32, &ws);
    const int64_t m = yd.shape[1];
    if (ws.size() != 1 && static_cast<int64_t>(ws.size()) != m) return false;
    const float sx = s.node_quant[s.nodes[k]].activations[0].second;
    pr.scale.resize(static_cast<size_t>(m));
    for (int64_t c = 0; c < m; ++c) {
        pr.scale[static_cast<size_t>(c)] = sx * ws[ws.size() == 1 ? 0 : static_cast<size_t>(c)];
    }
    Tensor values = codes;
    if (mode == QuantMode::Fp8) {
        values = Tensor(DType::Float32, codes.shape());
        for (int64_t e = 0; e < codes.numel(); ++e) {
            values.data<float>()[e] = fp8_to_float(codes.data<uint8_t>()[e], DType::Float8E4M3FN);
        }
    }
    auto conv =
        QuantConv::create(node, xd->shape, yd.shape, values,
                          mode == QuantMode::Int8 ? QuantConvValues::Int8 : QuantConvValues::Fp8);
    if (!conv) {
        if (cp.refusal.empty()) cp.refusal = conv.status().message();
        return false;
    }
    if (cp.impl.find((*conv)->impl()) == std::string::npos) {
        cp.impl += (cp.impl.empty() ? "" : ", ") + (*conv)->impl();
    }
    pr.kind = ProbeSet::Probe::Kind::Conv;
    pr.conv = std::move(conv).value();
    if (b) pr.bias.assign(b->data<float>(), b->data<float>() + b->numel());
    pr.m = m;
    pr.ohw = yd.shape[2] * yd.shape[3];
    pr.y_nhwc = ex.stored_channels_last(node.outputs[0]);
    const auto key = std::make_pair(node.inputs[0], sx);
    auto slot = cp.slot_of.find(key);
    if (slot == cp.slot_of.end()) {
        ProbeSet::CodeInput ci;
        ci.x = node.inputs[0];
        ci.scale = sx;
        ci.c = xd->shape[1];
        ci.hw = xd->shape[2] * xd->shape[3];
        ci.nhwc = ex.stored_channels_last(ci.x);
        ci.codes.resize(static_cast<size_t>(ci.c * ci.hw) * (mode == QuantMode::Int8 ? 1 : 2));
        slot = cp.slot_of.emplace(key, code_inputs.size()).first;
        code_inputs.push_back(std::move(ci));
    }
    pr.input = slot->second;
    return true;
}

}  // namespace

Result<std::unique_ptr<ProbeSet>> ProbeSet::plan(const SweepSetup& s, int n_threads,
                                                 std::vector<std::string>& notes) {
    std::unique_ptr<ProbeSet> ps(new ProbeSet(s, n_threads));
    const Graph& g = s.graph();
    const IncrementalRunner& ex = *s.ex;
    const size_t N = s.size();
    ps->probes_.resize(N);
    ConvPlanning cp;
    for (const WeightQdq& wq : s.placement.weights) {
        if (wq.input == 1) cp.weight_of[wq.node] = &wq;
    }
    for (size_t k = 0; k < N; ++k) {
        const Node& node = g.nodes[s.nodes[k]];
        const NodeQuant& q = s.node_quant[s.nodes[k]];
        const TensorDesc* yd = node.outputs.size() == 1 ? float_desc(ex, node.outputs[0]) : nullptr;
        if (!yd || node.inputs.empty()) continue;
        auto pr = std::make_unique<Probe>();
        const bool only_input0 = q.activations.size() == 1 && q.activations[0].first == 0;
        if ((node.op_type == "MaxPool" ||
             (node.op_type == "Resize" && node.attr_string("mode", "nearest") == "nearest")) &&
            only_input0 && float_desc(ex, node.inputs[0])) {
            pr->kind = Probe::Kind::Select;
            pr->in_scale = q.activations[0].second;
        } else if (node.op_type == "Add" && node.inputs.size() == 2 && !q.activations.empty()) {
            bool ok = true;
            for (size_t i = 0; i < 2; ++i) {
                const TensorDesc* d = float_desc(ex, node.inputs[i]);
                ok = ok && d && d->shape == yd->shape &&
                     ex.stored_channels_last(node.inputs[i]) ==
                         ex.stored_channels_last(node.outputs[0]);
                pr->add_in[i] = node.inputs[i];
            }
            for (const auto& [i, sc] : q.activations) {
                if (i < 2) pr->add_scale[i] = sc;
            }
            if (!ok) continue;
            pr->kind = Probe::Kind::Add;
        } else if (node.op_type == "Conv" && only_input0 && cp.weight_of.count(s.nodes[k])) {
            LOWBIT_ASSIGN(const bool planned,
                          plan_conv_probe(s, k, *yd, cp, *pr, ps->code_inputs_));
            if (!planned) continue;
            ++ps->n_conv_;
        } else {
            continue;
        }
        ps->probes_[k] = std::move(pr);
        ps->probed_.push_back(k);
    }
    if (ps->n_conv_ > 0) {
        notes.push_back(fmt::format(
            "local-sqnr: {} of {} nodes (Convs) ran on oneDNN's {} kernels [{}] (equal to "
            "the float simulation up to float rounding)",
            ps->n_conv_, N, s.mode == QuantMode::Int8 ? "int8" : "bf16 (FP8 values)", cp.impl));
    } else if (!cp.refusal.empty()) {
        notes.push_back(fmt::format(
            "local-sqnr: no quantized conv kernel here, Convs ran the float simulation ({})",
            cp.refusal));
    }
    ps->pool_ = std::make_unique<ThreadPool>(ps->probed_.empty() ? 1 : n_threads);
    ps->out_.resize(static_cast<size_t>(ps->pool_->size()));
    for (size_t k : ps->probed_) {
        const Probe& pr = *ps->probes_[k];
        const size_t need =
            pr.kind == Probe::Kind::Conv ? static_cast<size_t>(pr.m * pr.ohw) : 3 * kProbeChunk;
        for (auto& buf : ps->out_) buf.resize(std::max(buf.size(), need));
    }
    return ps;
}

Status ProbeSet::run(int64_t image, std::vector<SumSquares>& sums) {
    if (probed_.empty()) return Status::ok();
    const IncrementalRunner& ex = *s_.ex;
    const size_t N = s_.size();
    const QuantMode mode = s_.mode;
    // Views of the float32 pass (valid until the next run()), taken on this thread.
    std::vector<Tensor> xs(code_inputs_.size()), ys(N);
    std::vector<std::array<Tensor, 2>> adds(N);
    for (size_t c = 0; c < code_inputs_.size(); ++c) {
        LOWBIT_ASSIGN(xs[c], ex.tensor(code_inputs_[c].x, TensorView::Stored));
    }
    for (size_t k : probed_) {
        LOWBIT_ASSIGN(ys[k], ex.tensor(s_.first_output[k], TensorView::Stored));
        if (probes_[k]->kind != Probe::Kind::Add) continue;
        for (size_t j = 0; j < 2; ++j) {
            LOWBIT_ASSIGN(adds[k][j], ex.tensor(probes_[k]->add_in[j], TensorView::Stored));
        }
    }
    pool_->run(static_cast<int64_t>(code_inputs_.size()), [&](int64_t c, int) {
        CodeInput& ci = code_inputs_[static_cast<size_t>(c)];
        quantize_values_nhwc(xs[static_cast<size_t>(c)].data<float>(), ci.nhwc, ci.c, ci.hw,
                             ci.scale, mode, ci.codes.data());
    });
    std::vector<Status> failed(N);
    pool_->run(static_cast<int64_t>(probed_.size()), [&](int64_t j, int thread) {
        const size_t k = probed_[static_cast<size_t>(j)];
        Probe& pr = *probes_[k];
        float* buf = out_[static_cast<size_t>(thread)].data();
        const float* y = ys[k].data<float>();
        SumSquares ss;
        switch (pr.kind) {
            case Probe::Kind::Conv:
                failed[k] = pr.conv->run(code_inputs_[pr.input].codes.data(), buf);
                if (!failed[k]) return;
                ss = sum_squares_conv(y, pr.y_nhwc, buf, pr.scale, pr.bias, pr.m, pr.ohw);
                break;
            case Probe::Kind::Select:
                ss = sum_squares_select(y, ys[k].numel(), pr.in_scale, mode, buf);
                break;
            case Probe::Kind::Add:
                ss = sum_squares_add(y, adds[k][0].data<float>(), adds[k][1].data<float>(),
                                     ys[k].numel(), pr.add_scale, mode, buf);
                break;
        }
        sums[k].signal += ss.signal;
        sums[k].noise += ss.noise;
    });
    for (size_t k : probed_) {
        if (!failed[k]) {
            return failed[k].with_context(
                fmt::format("image {}, node {}", image, s_.graph().nodes[s_.nodes[k]].describe()));
        }
    }
    return Status::ok();
}

}  // namespace lowbit::quant
