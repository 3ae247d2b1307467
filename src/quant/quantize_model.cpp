#include "quant/quantize_model.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <set>
#include <unordered_map>

#include "core/thread_pool.h"
#include "quant/opset.h"
#include "runtime/executor.h"

namespace lowbit::quant {

namespace {

// The values of a constant activation (an initializer, or a Constant node's value seen through
// Identity / Squeeze / Unsqueeze), for Q/DQ on constant inputs.
std::optional<Tensor> constant_value(const Graph& g, const std::string& name) {
    if (const Tensor* t = g.initializer(name)) return *t;
    for (const auto& n : g.nodes) {
        if (std::find(n.outputs.begin(), n.outputs.end(), name) == n.outputs.end()) continue;
        if (n.op_type == "Constant") {
            const Attr* a = n.attr("value");
            if (a && a->kind == Attr::Kind::Tensor) return a->t;
            return std::nullopt;
        }
        if ((n.op_type == "Identity" || n.op_type == "Squeeze" || n.op_type == "Unsqueeze") &&
            !n.inputs.empty()) {
            return constant_value(g, n.inputs[0]);
        }
        return std::nullopt;
    }
    return std::nullopt;
}

calib::TensorStats stats_of(const Tensor& t) {
    calib::TensorStats s(false);
    if (t.dtype() == DType::Float32)
        s.add(t.data<float>(), t.numel());
    else if (t.dtype() == DType::Float16)
        s.add_half(t.data<uint16_t>(), t.numel());
    return s;
}

const char* mode_name(QuantMode m) {
    return m == QuantMode::Int8 ? "int8" : "fp8";
}

}  // namespace

Result<Model> prepare_float_model(const Model& model) {
    Model m = model;
    for (const auto& n : m.graph.nodes) {
        if (n.op_type == "QuantizeLinear" || n.op_type == "DequantizeLinear") {
            return invalid("the model already contains {} ({}); quantize the float model",
                           n.op_type, n.name.empty() ? "unnamed" : n.name);
        }
    }
    // ModelOpt names unnamed nodes <OpType>_<k>, k starting at the number of existing names.
    std::set<std::string> names;
    for (const auto& n : m.graph.nodes) {
        if (!n.name.empty()) names.insert(n.name);
    }
    size_t k = names.size();
    for (auto& n : m.graph.nodes) {
        if (!n.name.empty()) continue;
        std::string name;
        do {
            name = fmt::format("{}_{}", n.op_type, k++);
        } while (names.count(name));
        names.insert(name);
        n.name = name;
    }
    LOWBIT_TRY(sort_nodes(m.graph));
    return m;
}

Result<TypeLookup> plan_types(const Model& model, const std::map<std::string, Shape>& shapes) {
    ExecutorOptions eo;
    eo.reference_only = true;
    eo.n_threads = 1;
    eo.input_shapes = shapes;
    auto ex = Executor::create(model, eo);
    if (!ex) return ex.status().with_context("planning the model to learn tensor shapes");
    auto map = std::make_shared<std::unordered_map<std::string, TensorType>>();
    auto add = [&](const std::string& name) {
        if (name.empty() || map->count(name)) return;
        if (const TensorDesc* d = (*ex)->tensor_desc(name)) (*map)[name] = {d->dtype, d->shape};
    };
    for (const auto& vi : model.graph.inputs) add(vi.name);
    for (const auto& n : model.graph.nodes) {
        for (const auto& o : n.outputs) add(o);
    }
    return TypeLookup([map](const std::string& name) -> std::optional<TensorType> {
        auto it = map->find(name);
        if (it == map->end()) return std::nullopt;
        return it->second;
    });
}

Result<Placement> plan_placement(const Model& model, const QuantizeOptions& opts) {
    if (opts.weights_only) return place_weights_only(model.graph, opts.placement);
    LOWBIT_ASSIGN(TypeLookup types, plan_types(model, opts.input_shapes));
    return place_qdq(model.graph, types, opts.placement);
}

namespace {

// Per placed activation: its calibration group (index into CalibRequest::groups; -1 for a
// constant activation), and the observed min / max behind its amax.
struct ActivationRanges {
    std::vector<int> group_of;
    std::vector<double> lo, hi;
};

// Per-node formats (QuantizeOptions::assignment) resolved on the placement: the grid of each
// placed activation, and the nodes whose weights are INT4 or FP8.
struct MixedPlan {
    std::vector<QuantMode> act_mode;  // per Placement::activations entry
    std::set<size_t> int4_nodes, fp8_nodes;
};

// The formats of `a` on the placement: INT4 / FP8 weights by node, and each activation's grid.
// A tensor read by fp8 nodes and by other nodes gets a second pair (same Concat group) for the
// fp8 readers.
MixedPlan plan_mixed(const Graph& g, const Assignment& a, Placement& pl) {
    MixedPlan mp;
    auto fmt_of = [&](size_t node) { return a.of(g.nodes[node].name); };
    for (const WeightQdq& wq : pl.weights) {
        if (fmt_of(wq.node) == NodeFormat::Int4w) mp.int4_nodes.insert(wq.node);
        if (fmt_of(wq.node) == NodeFormat::Fp8) mp.fp8_nodes.insert(wq.node);
    }
    const size_t n0 = pl.activations.size();
    mp.act_mode.assign(n0, QuantMode::Int8);
    for (size_t i = 0; i < n0; ++i) {
        std::vector<std::pair<size_t, size_t>> fp8, other;
        for (const auto& e : pl.activations[i].edges) {
            (fmt_of(e.first) == NodeFormat::Fp8 ? fp8 : other).push_back(e);
        }
        if (fp8.empty()) continue;
        if (other.empty()) {
            mp.act_mode[i] = QuantMode::Fp8;
            continue;
        }
        ActivationQdq extra = pl.activations[i];
        extra.edges = fp8;
        pl.activations[i].edges = other;
        if (extra.group >= 0)
            pl.groups[static_cast<size_t>(extra.group)].push_back(pl.activations.size());
        pl.activations.push_back(std::move(extra));
        mp.act_mode.push_back(QuantMode::Fp8);
    }
    return mp;
}

// Calibration groups: a Concat group pools its members; every other activation is alone.
// Constant activations get their range from their values, not from calibration.
calib::CalibRequest calibration_request(const Placement& pl, calib::CalibMethod method,
                                        ActivationRanges& r) {
    calib::CalibRequest req;
    req.histogram = calib::needs_histogram(method);
    r.group_of.assign(pl.activations.size(), -1);
    std::vector<int> pl_group_to_req(pl.groups.size(), -1);
    for (size_t a = 0; a < pl.activations.size(); ++a) {
        const ActivationQdq& act = pl.activations[a];
        if (act.constant) continue;
        if (act.group >= 0) {
            int& g = pl_group_to_req[static_cast<size_t>(act.group)];
            if (g < 0) {
                g = static_cast<int>(req.groups.size());
                req.groups.emplace_back();
            }
            req.groups[static_cast<size_t>(g)].push_back(act.tensor);
            r.group_of[a] = g;
        } else {
            r.group_of[a] = static_cast<int>(req.groups.size());
            req.groups.push_back({act.tensor});
        }
    }
    return req;
}

// amax / min / max of every calibrated activation from a saved ranges file (--ranges).
Status ranges_from_file(const calib::RangesFile& in, QuantMode mode, QuantizeResult& res,
                        ActivationRanges& r) {
    const Placement& pl = res.placement;
    res.ranges = in;
    for (size_t a = 0; a < pl.activations.size(); ++a) {
        if (pl.activations[a].constant) continue;
        auto it = in.tensors.find(pl.activations[a].tensor);
        if (it == in.tensors.end()) {
            return invalid(
                "the ranges file has no range for tensor '{}' (placed by: {}); "
                "calibrate again",
                pl.activations[a].tensor, pl.activations[a].rule);
        }
        res.amax[a] = it->second.amax;
        r.lo[a] = it->second.min;
        r.hi[a] = it->second.max;
    }
    if (!in.mode.empty() && in.mode != mode_name(mode)) {
        res.notes.push_back(
            fmt::format("ranges were calibrated for {}, used for {}", in.mode, mode_name(mode)));
    }
    return Status::ok();
}

// amax / min / max of every calibrated activation by streaming the calibration source through
// the float model; the ranges file records them.
Status ranges_from_calibration(const Model& m, calib::CalibSource& source,
                               const calib::CalibRequest& req, const calib::CalibConfig& cfg,
                               const QuantizeOptions& opts, QuantizeResult& res,
                               ActivationRanges& r, const MixedPlan* mixed) {
    const Placement& pl = res.placement;
    calib::RangesFile& rf = res.ranges;
    LOWBIT_ASSIGN(calib::CalibResult cr, calib::calibrate(m, source, req, opts.run));
    res.calib_seconds = cr.seconds;
    res.samples = cr.samples;
    rf.samples = cr.samples;
    for (const auto& t : cr.unobserved) {
        res.notes.push_back(
            fmt::format("tensor '{}' was never produced at run time (folded "
                        "constant?); its scale falls back to 1",
                        t));
    }
    for (const auto& w : cr.warnings) res.notes.push_back("warning: " + w);
    std::vector<double> group_amax(req.groups.size());
    for (size_t gi = 0; gi < req.groups.size(); ++gi) {
        group_amax[gi] = calib::compute_amax(cr.stats[gi], cfg);
    }
    for (size_t a = 0; a < pl.activations.size(); ++a) {
        if (r.group_of[a] < 0) continue;
        const calib::TensorStats& s = cr.stats[static_cast<size_t>(r.group_of[a])];
        res.amax[a] = group_amax[static_cast<size_t>(r.group_of[a])];
        if (mixed && mixed->act_mode[a] != cfg.target) {
            calib::CalibConfig c = cfg;  // the range for this activation's own grid (mse)
            c.target = mixed->act_mode[a];
            res.amax[a] = calib::compute_amax(s, c);
        }
        r.lo[a] = s.min();
        r.hi[a] = s.max();
        calib::TensorRange tr;
        tr.amax = res.amax[a];
        tr.min = s.min();
        tr.max = s.max();
        tr.count = s.count();
        tr.group = pl.activations[a].group;
        rf.tensors[pl.activations[a].tensor] = tr;
    }
    return Status::ok();
}

// Scale and zero point of every placed activation: constants from their values, Softmax
// outputs fixed to [0, 1], the rest from their calibrated amax (asymmetric with --zero-point).
void activation_params(const Graph& g, const QuantizeOptions& opts, QuantizeResult& res,
                       ActivationRanges& r, const MixedPlan* mixed) {
    const Placement& pl = res.placement;
    res.params.resize(pl.activations.size());
    for (size_t a = 0; a < pl.activations.size(); ++a) {
        const QuantMode mode = mixed ? mixed->act_mode[a] : opts.placement.mode;
        const ActivationQdq& act = pl.activations[a];
        if (act.constant) {
            auto v = constant_value(g, act.tensor);
            if (v) {
                calib::TensorStats s = stats_of(*v);
                res.amax[a] = s.amax();
                r.lo[a] = s.min();
                r.hi[a] = s.max();
            }
        } else if (act.from_softmax) {
            // Softmax outputs are forced to [0, 1] (research/modelopt.md §3.8.6).
            res.amax[a] = 1.0;
            r.lo[a] = 0.0;
            r.hi[a] = 1.0;
        }
        ActivationParams& p = res.params[a];
        if (opts.zero_point && !act.constant) {
            const double t = res.amax[a];
            auto ap =
                asymmetric_params(std::max(r.lo[a], -t), std::min(r.hi[a], t), *opts.zero_point);
            p.scale = ap.scale;
            p.zero_point = ap.zero_point;
            p.zp_dtype = *opts.zero_point;
        } else {
            p.scale = symmetric_scale(res.amax[a], mode);
            p.zero_point = 0;
            p.zp_dtype = quant_dtype(mode);
        }
    }
}

// Data-driven INT4 rounding (--weight-method gptq|adaround) and --bias-correction: per quantized
// 2-D Conv, a Gram accumulator (GPTQ, AdaRound) and an im2col-mean accumulator (bias correction),
// fed through the calibration pass's taps with the Conv's input; after the pass, one solve per
// Conv.
struct GptqState {
    std::vector<size_t> nodes;  // weight-reading node per Conv
    std::vector<ConvGeometry> geometry;
    std::vector<std::unique_ptr<GramAccumulator>> acc;         // empty for rtn
    std::vector<std::unique_ptr<Im2colMeanAccumulator>> mean;  // empty without bias correction
    std::map<std::string, std::vector<size_t>> by_tensor;      // Conv input -> Convs
    std::unique_ptr<ThreadPool> pool;
    std::map<size_t, Int4Weight> codes;
};

bool needs_conv_statistics(const QuantizeOptions& opts) {
    return opts.weight_method != WeightMethod::Rtn || opts.bias_correction;
}

const char* weight_method_label(const QuantizeOptions& opts) {
    switch (opts.weight_method) {
        case WeightMethod::Gptq: return "GPTQ";
        case WeightMethod::Adaround: return "AdaRound";
        case WeightMethod::Rtn: break;
    }
    return "bias correction";
}

// Accumulators for the placed Conv weights, and the taps that feed them into `req`.
void gptq_setup(const Graph& g, const QuantizeOptions& opts, QuantizeResult& res, GptqState& st,
                calib::CalibRequest& req, const MixedPlan* mixed) {
    st.pool = std::make_unique<ThreadPool>(opts.run.n_threads);
    const char* label = weight_method_label(opts);
    const bool gram = opts.weight_method != WeightMethod::Rtn;
    int skipped = 0;
    for (const WeightQdq& wq : res.placement.weights) {
        if (mixed && !mixed->int4_nodes.count(wq.node)) continue;  // not an INT4 weight
        const Node& n = g.nodes[wq.node];
        const Tensor* w = g.initializer(wq.tensor);
        if (n.op_type != "Conv" || !w || wq.axis != 0) {
            ++skipped;
            continue;
        }
        auto geo = conv_geometry(n, w->shape());
        if (!geo) {
            res.notes.push_back(
                fmt::format("{}: {}; left as without it", label, geo.status().message()));
            continue;
        }
        st.by_tensor[n.inputs[0]].push_back(st.nodes.size());
        st.nodes.push_back(wq.node);
        st.geometry.push_back(*geo);
        if (gram) st.acc.push_back(std::make_unique<GramAccumulator>(*geo));
        if (opts.bias_correction) st.mean.push_back(std::make_unique<Im2colMeanAccumulator>(*geo));
    }
    if (skipped) {
        res.notes.push_back(fmt::format(
            "{} covers Conv weights; {} Gemm/MatMul weight(s) rounded to nearest, uncorrected",
            label, skipped));
    }
    for (const auto& [t, ids] : st.by_tensor) req.taps.push_back(t);
    const int64_t max_samples = opts.gptq_samples;
    req.tap = [&st, max_samples](const std::string& name, const Tensor& x) -> Status {
        auto it = st.by_tensor.find(name);
        if (it == st.by_tensor.end()) return Status::ok();
        for (size_t a : it->second) {
            if (!st.acc.empty() && (max_samples <= 0 || st.acc[a]->samples() < max_samples)) {
                Status s = st.acc[a]->add(x, *st.pool);
                if (!s) return s.with_context(fmt::format("tensor '{}'", name));
            }
            if (!st.mean.empty() && (max_samples <= 0 || st.mean[a]->samples() < max_samples)) {
                Status s = st.mean[a]->add(x, *st.pool);
                if (!s) return s.with_context(fmt::format("tensor '{}'", name));
            }
        }
        return Status::ok();
    };
}

// The bias of Conv `node` minus `err` (per output channel): the initializer is replaced when
// this Conv is its only reader, else (shared, or no bias) the Conv gets a new one.
Status correct_bias(Graph& g, size_t node, const std::vector<double>& err, QuantizeResult& res) {
    Node& n = g.nodes[node];
    const int64_t O = static_cast<int64_t>(err.size());
    std::vector<float> b(static_cast<size_t>(O), 0.0f);
    bool shared = false;
    if (n.inputs.size() > 2 && !n.inputs[2].empty()) {
        const Tensor* t = g.initializer(n.inputs[2]);
        if (!t || t->dtype() != DType::Float32 || t->numel() != O) {
            res.notes.push_back(fmt::format(
                "bias correction: {} has a bias that is not a float32 [{}] initializer; left "
                "uncorrected",
                n.describe(), O));
            return Status::ok();
        }
        std::copy(t->data<float>(), t->data<float>() + O, b.begin());
        int readers = 0;
        for (const auto& m : g.nodes) {
            readers += static_cast<int>(std::count(m.inputs.begin(), m.inputs.end(), n.inputs[2]));
        }
        for (const auto& o : g.outputs) shared = shared || o.name == n.inputs[2];
        shared = shared || readers > 1;
    }
    for (int64_t o = 0; o < O; ++o) {
        b[static_cast<size_t>(o)] =
            static_cast<float>(b[static_cast<size_t>(o)] - err[static_cast<size_t>(o)]);
    }
    std::string name = n.inputs.size() > 2 ? n.inputs[2] : std::string();
    if (name.empty() || shared) {
        const std::string base = n.name + "/bias_corrected";
        name = base;
        for (int k = 1; g.initializer(name); ++k) name = fmt::format("{}_{}", base, k);
        n.inputs.resize(3);
        n.inputs[2] = name;
    }
    g.set_initializer(name, Tensor::from_vector<float>(DType::Float32, {O}, b));
    ++res.bias_corrected;
    return Status::ok();
}

// The GPTQ / AdaRound / RTN codes, Convs in parallel, then the bias corrections.
Status gptq_finish(Graph& g, const QuantizeOptions& opts, QuantizeResult& res, GptqState& st) {
    const auto t0 = std::chrono::steady_clock::now();
    const size_t count = st.nodes.size();
    std::vector<std::optional<Int4Weight>> out(count);
    std::vector<std::vector<double>> err(count);
    std::vector<AdaroundStats> stats(count);
    std::vector<Status> status(count, Status::ok());
    st.pool->run(static_cast<int64_t>(count), [&](int64_t i, int) {
        const size_t k = static_cast<size_t>(i);
        const Node& n = g.nodes[st.nodes[k]];
        const int64_t rows = !st.acc.empty() ? st.acc[k]->rows() : st.mean[k]->rows();
        if (rows == 0) {
            status[k] = invalid("{}: {} never ran during calibration", weight_method_label(opts),
                                n.describe());
            return;
        }
        const Tensor& w = *g.initializer(n.inputs[1]);
        Result<Int4Weight> r = quantize_weight_int4(w, 0, opts.int4.block_size, DType::Float32);
        if (opts.weight_method == WeightMethod::Gptq) {
            r = gptq_conv_int4(w, opts.int4.block_size, st.geometry[k], st.acc[k]->gram());
        } else if (opts.weight_method == WeightMethod::Adaround) {
            r = adaround_conv_int4(w, opts.int4.block_size, st.geometry[k], st.acc[k]->gram(),
                                   opts.adaround, &stats[k]);
        }
        if (!r) {
            status[k] = r.status().with_context(n.describe());
            return;
        }
        if (opts.bias_correction) {
            err[k] = expected_output_error(w, *r, st.geometry[k], st.mean[k]->mean());
        }
        out[k] = std::move(*r);
    });
    for (size_t k = 0; k < count; ++k) {
        LOWBIT_TRY(status[k]);
        if (opts.bias_correction) LOWBIT_TRY(correct_bias(g, st.nodes[k], err[k], res));
        if (opts.weight_method == WeightMethod::Rtn) continue;  // the rewrite rounds itself
        st.codes[st.nodes[k]] = std::move(*out[k]);
        res.adaround.rows += stats[k].rows;
        res.adaround.rows_kept_rtn += stats[k].rows_kept_rtn;
        res.adaround.flipped += stats[k].flipped;
        res.adaround.weights += stats[k].weights;
    }
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (opts.weight_method == WeightMethod::Gptq) {
        res.gptq_weights = static_cast<int>(st.codes.size());
        res.gptq_seconds = seconds;
    } else if (opts.weight_method == WeightMethod::Adaround) {
        res.adaround_weights = static_cast<int>(st.codes.size());
        res.adaround_seconds = seconds;
    }
    return Status::ok();
}

// Q/DQ insertion, the opset and IR version the result needs, and the float16 conversion of the
// high-precision part (--high-precision fp16).
Status rewrite_model(Model& m, const TypeLookup& types, const QuantizeOptions& opts,
                     QuantizeResult& res, const std::map<size_t, Int4Weight>* int4_codes = nullptr,
                     const MixedPlan* mixed = nullptr) {
    const QuantMode mode = opts.placement.mode;
    RewriteOptions ro;
    ro.mode = mode;
    ro.scale_dtype = opts.high_precision == DType::Float16 ? DType::Float16 : DType::Float32;
    ro.dq_only = opts.dq_only;
    ro.int4 = opts.int4;
    ro.int4_codes = int4_codes;
    if (mixed) {
        ro.dq_only = true;
        ro.int4.enabled = !mixed->int4_nodes.empty();
        ro.int4_nodes = &mixed->int4_nodes;
        ro.fp8_weight_nodes = &mixed->fp8_nodes;
    }
    LOWBIT_ASSIGN(res.rewrite, insert_qdq(m, res.placement, res.params, ro));

    // Opset: per-channel Q/DQ need 13; FP8 and float16 scales need QuantizeLinear-19; INT4 and
    // blocked scales DequantizeLinear-21.
    int64_t target = (mode == QuantMode::Fp8 || ro.scale_dtype == DType::Float16) ? 19 : 13;
    if (mixed && !mixed->fp8_nodes.empty()) target = std::max<int64_t>(target, 19);
    if (ro.int4.enabled) target = 21;
    LOWBIT_TRY(upgrade_opset(m, target, &res.notes));
    // ONNX Runtime reads IR 10 (ModelOpt forces it too); opset 19 needs IR >= 9.
    m.ir_version = std::max<int64_t>(m.ir_version, 10);

    if (opts.high_precision == DType::Float16) {
        const TypeLookup new_types = [&](const std::string& name) -> std::optional<TensorType> {
            auto it = res.rewrite.new_tensors.find(name);
            if (it != res.rewrite.new_tensors.end()) return TensorType{it->second, {}};
            return types(name);
        };
        Fp16Options fo;
        fo.keep_fp32_op_types = opts.fp16_keep_ops;
        LOWBIT_ASSIGN(res.fp16, convert_to_fp16(m, new_types, fo));
    }
    return Status::ok();
}

// w4a16: weight-only placement and rewrite, no calibration.
Result<QuantizeResult> quantize_weights_only(const Model& input, calib::CalibSource* source,
                                             const QuantizeOptions& opts) {
    QuantizeResult res;
    LOWBIT_ASSIGN(Model m, prepare_float_model(input));
    LOWBIT_ASSIGN(res.placement, place_weights_only(m.graph, opts.placement));
    const TypeLookup no_types = [](const std::string&) -> std::optional<TensorType> {
        return std::nullopt;
    };
    GptqState gptq;
    if (needs_conv_statistics(opts)) {
        calib::CalibRequest req;
        req.histogram = false;
        gptq_setup(m.graph, opts, res, gptq, req, nullptr);
        calib::CalibRunOptions run = opts.run;  // only the Gram matrices need the samples
        if (opts.gptq_samples > 0) {
            run.max_samples = run.max_samples > 0 ? std::min(run.max_samples, opts.gptq_samples)
                                                  : opts.gptq_samples;
        }
        LOWBIT_ASSIGN(calib::CalibResult cr, calib::calibrate(m, *source, req, run));
        res.calib_seconds = cr.seconds;
        res.samples = cr.samples;
        LOWBIT_TRY(gptq_finish(m.graph, opts, res, gptq));
    }
    LOWBIT_TRY(rewrite_model(m, no_types, opts, res, &gptq.codes));
    res.ranges.mode = "w4a16";
    res.ranges.model = opts.model_name;
    res.model = std::move(m);
    return res;
}

}  // namespace

Result<QuantizeResult> quantize_model(const Model& input, calib::CalibSource* source,
                                      const QuantizeOptions& opts) {
    const QuantMode mode = opts.placement.mode;
    if (opts.zero_point && mode == QuantMode::Fp8) {
        return invalid("--zero-point applies to INT8 only (FP8 E4M3 zero points are 0)");
    }
    if (opts.int4.block_size < 0) {
        return invalid("--block-size {} must be positive", opts.int4.block_size);
    }
    if (opts.int4.block_size > 0 && !opts.int4.enabled) {
        return invalid("--block-size applies to INT4 weights only (--mode w4a16 or w4a8)");
    }
    if (opts.weights_only && !opts.int4.enabled) {
        return invalid("weight-only quantization is implemented for INT4 weights only");
    }
    if (opts.int4.enabled && mode == QuantMode::Fp8) {
        return invalid("INT4 weights pair with INT8 activations (w4a8) or float (w4a16), not FP8");
    }
    if (opts.int4.enabled && opts.high_precision == DType::Float16) {
        return unsupported("--high-precision fp16 with INT4 weights is not supported yet");
    }
    if (needs_conv_statistics(opts)) {
        const std::string what = opts.weight_method == WeightMethod::Gptq ? "--weight-method gptq"
                                 : opts.weight_method == WeightMethod::Adaround
                                     ? "--weight-method adaround"
                                     : "--bias-correction";
        if (!opts.int4.enabled) {
            return invalid("{} applies to INT4 weights (--mode w4a16 or w4a8)", what);
        }
        if (!source) {
            return invalid(
                "{} needs calibration data (--calib FILE.npy, --calib-list or --calib-images): "
                "it gathers each Conv's input statistics from it",
                what);
        }
    }
    if (opts.assignment) {
        if (mode != QuantMode::Int8 || opts.weights_only) {
            return invalid(
                "a per-node format assignment works over the INT8 placement (--mode int8 or "
                "w4a8), not fp8 or w4a16: give fp8 / float per node in the assignment");
        }
        if (opts.zero_point) return invalid("a format assignment uses symmetric activations only");
        if (opts.high_precision == DType::Float16) {
            return unsupported("--high-precision fp16 with a format assignment is not supported");
        }
    }
    if (opts.weights_only) return quantize_weights_only(input, source, opts);
    if (!source && !opts.ranges) {
        return invalid(
            "no calibration data: give --calib FILE.npy, --calib-list/--calib-images, "
            "or --ranges FILE with saved ranges");
    }
    QuantizeResult res;
    LOWBIT_ASSIGN(Model m, prepare_float_model(input));

    std::map<std::string, Shape> shapes = opts.input_shapes;
    if (source) {
        for (const auto& vi : m.graph.inputs) {
            if (m.graph.initializer(vi.name) || shapes.count(vi.name)) continue;
            if (vi.fixed_shape()) continue;
            Shape s{vi.has_shape && vi.dims[0].is_fixed() ? vi.dims[0].value : 1};
            s.insert(s.end(), source->sample_shape().begin(), source->sample_shape().end());
            shapes[vi.name] = s;
        }
    }
    LOWBIT_ASSIGN(TypeLookup types, plan_types(m, shapes));
    const Assignment* asg = opts.assignment ? &*opts.assignment : nullptr;
    PlacementOptions popts = opts.placement;
    if (asg) {
        LOWBIT_TRY(check_assignment_names(m.graph, *asg, opts.assignment_source));
        for (const auto& n : m.graph.nodes) {
            if (asg->of(n.name) == NodeFormat::Float) popts.exclude_names.push_back(n.name);
        }
    }
    LOWBIT_ASSIGN(res.placement, place_qdq(m.graph, types, popts));
    MixedPlan mixed_plan;
    const MixedPlan* mixed = nullptr;
    if (asg) {
        LOWBIT_TRY(
            check_assignment_placement(m.graph, res.placement, *asg, opts.assignment_source));
        mixed_plan = plan_mixed(m.graph, *asg, res.placement);
        mixed = &mixed_plan;
    }
    const size_t n_act = res.placement.activations.size();

    ActivationRanges ranges;
    calib::CalibRequest req = calibration_request(res.placement, opts.method, ranges);
    GptqState gptq;
    if (needs_conv_statistics(opts)) gptq_setup(m.graph, opts, res, gptq, req, mixed);
    calib::CalibConfig cfg;
    cfg.method = opts.method;
    cfg.percentile = opts.percentile;
    cfg.target = mode;
    res.amax.assign(n_act, 0.0);
    ranges.lo.assign(n_act, 0.0);
    ranges.hi.assign(n_act, 0.0);
    calib::RangesFile& rf = res.ranges;
    rf.method = calib::calib_method_name(opts.method);
    rf.mode = mode_name(mode);
    rf.percentile = opts.method == calib::CalibMethod::Percentile ? opts.percentile : 0;
    rf.model = opts.model_name;
    if (opts.ranges && !needs_conv_statistics(opts)) {
        LOWBIT_TRY(ranges_from_file(*opts.ranges, mode, res, ranges));
    } else {
        LOWBIT_TRY(ranges_from_calibration(m, *source, req, cfg, opts, res, ranges, mixed));
    }
    if (needs_conv_statistics(opts)) LOWBIT_TRY(gptq_finish(m.graph, opts, res, gptq));
    activation_params(m.graph, opts, res, ranges, mixed);
    LOWBIT_TRY(rewrite_model(m, types, opts, res, &gptq.codes, mixed));
    res.model = std::move(m);
    return res;
}

}  // namespace lowbit::quant
