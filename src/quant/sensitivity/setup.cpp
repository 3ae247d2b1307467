#include "quant/sensitivity/setup.h"

#include <algorithm>
#include <cstdint>

#include "quant/sensitivity/fake_quant.h"

namespace lowbit::quant {

namespace {

// Calibration, placement and scales exactly as `quantize` computes them; the placed activation
// scales per node.
Status calibrate_and_place(const Model& input, calib::CalibSource& source,
                           const SensitivityOptions& opts, SweepSetup& s, SensitivityReport& rep) {
    QuantizeOptions qo = opts.quant;
    qo.high_precision = DType::Float32;
    qo.dq_only = false;
    LOWBIT_ASSIGN(QuantizeResult qr, quantize_model(input, &source, qo));
    rep.calib_seconds = qr.calib_seconds;
    rep.calib_samples = qr.samples;
    rep.method = calib::calib_method_name(qo.method);
    for (const auto& n : qr.notes) {
        // The quantized model's opset is no concern here: it is never written.
        if (n.find("opset") == std::string::npos) rep.notes.push_back(n);
    }
    if (qr.placement.selected.empty()) {
        return invalid("no node is quantizable with these options (placement selected none)");
    }
    // The same prepared graph the placement indices refer to.
    LOWBIT_ASSIGN(s.model, prepare_float_model(input));
    const Graph& g = s.model.graph;
    s.node_quant.assign(g.nodes.size(), NodeQuant());
    for (size_t a = 0; a < qr.placement.activations.size(); ++a) {
        const float sc = stored_scale(qr.params[a].scale, DType::Float32);
        for (const auto& [node, idx] : qr.placement.activations[a].edges) {
            s.node_quant[node].activations.push_back({idx, sc});
        }
    }
    s.placement = std::move(qr.placement);
    s.exec_options.input_shapes = qo.input_shapes;
    return Status::ok();
}

// The sweep's incremental runner: every tensor kept, batch 1, one float32 input.
Status plan_executor(calib::CalibSource& source, const SensitivityOptions& opts, SweepSetup& s) {
    const Graph& g = s.model.graph;
    ExecutorOptions& eo = s.exec_options;
    eo.n_threads = opts.n_threads;
    eo.profile = opts.quant.run.profile;
    eo.conv_winograd = opts.quant.run.conv_winograd;
    eo.lowp_kernels = false;  // sensitivity measures the float simulation of Q/DQ
    const ValueInfo* image_input = nullptr;
    for (const auto& vi : g.inputs) {
        if (!g.initializer(vi.name)) {
            image_input = &vi;
            break;
        }
    }
    if (!image_input) return invalid("the model has no runtime input");
    if (!eo.input_shapes.count(image_input->name)) {
        bool symbolic = !image_input->has_shape;
        for (const auto& d : image_input->dims) symbolic = symbolic || !d.is_fixed();
        if (symbolic) {
            Shape sh{1};
            sh.insert(sh.end(), source.sample_shape().begin(), source.sample_shape().end());
            eo.input_shapes[image_input->name] = sh;
        }
    }
    auto created = IncrementalRunner::create(s.model, eo);
    if (!created) return created.status().with_context("planning the model for sensitivity");
    s.ex = std::move(created).value();
    const TensorDesc& in_desc = s.ex->inputs().at(0);
    if (s.ex->inputs().size() != 1 || in_desc.dtype != DType::Float32) {
        return invalid("sensitivity feeds models with one float32 input; this one has {} ({})",
                       s.ex->inputs().size(), dtype_name(in_desc.dtype));
    }
    if (in_desc.shape.empty() || in_desc.shape[0] != 1) {
        return invalid("input '{}' has shape {}; sensitivity runs batch 1", in_desc.name,
                       shape_str(in_desc.shape));
    }
    s.input = in_desc;
    for (const WeightQdq& wq : s.placement.weights) {
        const Tensor* w = g.initializer(wq.tensor);
        if (!w || w->dtype() != DType::Float32) {
            return invalid("weight '{}' of {} is not a float32 initializer", wq.tensor,
                           g.nodes[wq.node].describe());
        }
    }
    return Status::ok();
}

// The quantizable nodes in plan order (a deterministic order for ties), their cones, and the
// nodes quantized when measuring each one.
Status plan_nodes(bool all_but_one, SweepSetup& s) {
    const Graph& g = s.model.graph;
    const IncrementalRunner& ex = *s.ex;
    std::vector<size_t> position(g.nodes.size(), SIZE_MAX);
    for (size_t k = 0; k < ex.plan_order().size(); ++k) position[ex.plan_order()[k]] = k;
    std::vector<size_t>& nodes = s.nodes;
    for (const auto& [idx, rule] : s.placement.selected) nodes.push_back(idx);
    std::sort(nodes.begin(), nodes.end());
    nodes.erase(std::unique(nodes.begin(), nodes.end()), nodes.end());
    for (size_t n : nodes) {
        if (position[n] == SIZE_MAX) {
            return invalid("node {} is quantizable but has no run-time step (folded at load)",
                           g.nodes[n].describe());
        }
    }
    std::sort(nodes.begin(), nodes.end(),
              [&](size_t a, size_t b) { return position[a] < position[b]; });
    const size_t N = nodes.size();
    s.cones.assign(N, {});
    for (size_t k = 0; k < N; ++k) s.cones[k] = ex.downstream_nodes({nodes[k]});
    s.active.assign(N, {});
    for (size_t k = 0; k < N; ++k) {
        if (all_but_one) {
            for (size_t j = 0; j < N; ++j) {
                if (j != k) s.active[k].push_back(nodes[j]);
            }
        } else {
            s.active[k] = {nodes[k]};
        }
    }
    s.first_output.assign(N, {});
    for (size_t k = 0; k < N; ++k) s.first_output[k] = g.nodes[nodes[k]].outputs.at(0);
    return Status::ok();
}

}  // namespace

Status FakeQuantOverride::apply(size_t idx, const Node& node, std::vector<Tensor>& ins) {
    NodeQuant& q = nq_[idx];
    q.buffers.resize(q.activations.size());
    for (size_t a = 0; a < q.activations.size(); ++a) {
        const auto [i, s] = q.activations[a];
        if (i >= ins.size() || ins[i].empty()) continue;
        if (ins[i].dtype() != DType::Float32) {
            return unsupported("{}: input {} is {}; sensitivity fake-quantizes float32 only",
                               node.describe(), i, dtype_name(ins[i].dtype()));
        }
        Tensor& buf = q.buffers[a];
        if (buf.shape() != ins[i].shape() || buf.dtype() != DType::Float32) {
            buf = Tensor(DType::Float32, ins[i].shape());
        }
        const std::pair<const void*, float> key{ins[i].data<float>(), s};
        if (share_) {
            auto hit = shared_.find(key);
            if (hit != shared_.end() && hit->second.shape() == ins[i].shape()) {
                ins[i] = hit->second;
                continue;
            }
        }
        fake_quantize_into(ins[i].data<float>(), buf.data<float>(), ins[i].numel(), s, mode_);
        if (share_) shared_[key] = buf;
        ins[i] = buf;
    }
    return Status::ok();
}

Status setup_sweep(const Model& input, calib::CalibSource& source, const SensitivityOptions& opts,
                   SweepSetup& s, SensitivityReport& rep) {
    s.mode = opts.quant.placement.mode;
    s.int4 = opts.quant.int4;
    LOWBIT_TRY(calibrate_and_place(input, source, opts, s, rep));
    LOWBIT_TRY(plan_executor(source, opts, s));
    return plan_nodes(opts.all_but_one, s);
}

Status add_weight_variants(SweepSetup& s, const std::vector<char>& own_weights) {
    const Graph& g = s.model.graph;
    for (const WeightQdq& wq : s.placement.weights) {
        if (!own_weights.empty() && own_weights[wq.node]) continue;
        const Tensor& w = *g.initializer(wq.tensor);
        LOWBIT_TRY(s.ex->add_constant_variant(
            wq.node, wq.input,
            s.int4.enabled ? fake_quantize_weight_int4(w, wq.axis, s.int4.block_size)
                           : fake_quantize_weight(w, wq.axis, s.mode)));
    }
    return Status::ok();
}

}  // namespace lowbit::quant
