// `lowbit mixed`: per-format sensitivities (quant/sensitivity, output-mse), the greedy search
// over formats per node (quant/mixed.h), real quantize + eval of the chosen assignment (and of a
// few more states of the path, for a measured Pareto front), bounded back-off for --max-drop.
// Writes the model, the assignment JSON (quantize --assign reads it) and the Pareto JSON.
#include "pipeline/mixed_job.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <map>
#include <set>

#include "core/fs.h"
#include "core/json_at.h"
#include "core/path_guard.h"
#include "onnx/model_io.h"
#include "pipeline/node_latency.h"
#include "quant/mixed.h"
#include "quant/quantize_model.h"
#include "quant/sensitivity/sensitivity.h"

namespace lowbit::pipeline {

namespace {

namespace fs = std::filesystem;
using quant::NodeFormat;

// "--budget-bytes": N bytes, or F x the INT8 model's ("0.6x").
struct Budget {
    bool set = false;
    bool fraction = false;
    double value = 0;
};

Result<Budget> parse_budget(const std::string& s) {
    Budget b;
    if (s.empty()) return b;
    b.set = true;
    std::string v = s;
    if (!v.empty() && (v.back() == 'x' || v.back() == 'X')) {
        b.fraction = true;
        v.pop_back();
    }
    size_t used = 0;
    try {
        b.value = std::stod(v, &used);
    } catch (...) {
        used = 0;
    }
    if (used == 0 || used != v.size() || !std::isfinite(b.value) || b.value <= 0) {
        return invalid(
            "--budget-bytes '{}': expected a positive number of bytes, or a fraction "
            "of the INT8 model's weight bytes such as 0.6x",
            s);
    }
    if (b.fraction && b.value > 4.0) {
        return invalid(
            "--budget-bytes '{}': a fraction of the INT8 model above 4x (float) "
            "constrains nothing",
            s);
    }
    return b;
}

// "--budget-ms X" (absolute) or "--budget-latency F[x]" (a fraction of the FP32 model's
// measured latency).
struct LatencyBudget {
    bool set = false;
    bool fraction = false;
    double value = 0;
};

Result<LatencyBudget> parse_latency_budget(const std::string& ms, const std::string& frac) {
    LatencyBudget b;
    if (ms.empty() && frac.empty()) return b;
    if (!ms.empty() && !frac.empty()) {
        return invalid("--budget-ms {} and --budget-latency {}: give one latency budget", ms, frac);
    }
    b.set = true;
    b.fraction = !frac.empty();
    std::string v = b.fraction ? frac : ms;
    if (b.fraction && !v.empty() && (v.back() == 'x' || v.back() == 'X')) v.pop_back();
    size_t used = 0;
    try {
        b.value = std::stod(v, &used);
    } catch (...) {
        used = 0;
    }
    if (used == 0 || used != v.size() || !std::isfinite(b.value) || b.value <= 0) {
        if (b.fraction) {
            return invalid(
                "--budget-latency '{}': expected a positive fraction of the FP32 "
                "model's measured latency such as 0.5x",
                frac);
        }
        return invalid("--budget-ms '{}': expected a positive number of milliseconds", ms);
    }
    if (b.fraction && b.value > 4.0) {
        return invalid(
            "--budget-latency '{}': above 4x the FP32 model's latency constrains "
            "nothing",
            frac);
    }
    return b;
}

const char* sensitivity_mode(NodeFormat f) {
    switch (f) {
        case NodeFormat::Int4w: return "w4a8";
        case NodeFormat::Int8: return "int8";
        case NodeFormat::Fp8: return "fp8";
        case NodeFormat::Float: return "";
    }
    return "";
}

// Opens the calibration input (the bundled list at the model's input size by default).
Result<std::unique_ptr<calib::CalibSource>> open_source(const CalibInputOptions& ci) {
    LOWBIT_ASSIGN(std::unique_ptr<calib::CalibSource> s, open_calib_input(ci));
    if (!s) return invalid("no calibration input");
    return s;
}

// Per-node output-mse sensitivity in one format: from the cache file when it matches, else
// measured (and cached).
Result<std::map<std::string, double>> format_sensitivity(const MixedJob& o, const Model& model,
                                                         const CalibInputOptions& ci,
                                                         const quant::QuantizeOptions& base,
                                                         NodeFormat f) {
    const std::string mode = sensitivity_mode(f);
    std::string cache;
    nlohmann::json key = {{"model", o.model},          {"mode", mode},
                          {"images", o.sens_images},   {"method", o.method.method},
                          {"calib", ci.npy + ci.list}, {"placement", o.placement.exclude}};
    // Only a non-default Conv rule enters the key, so caches written before --placement stay valid.
    if (o.placement.placement != "modelopt") key["conv_placement"] = o.placement.placement;
    if (!o.sensitivity_dir.empty()) {
        cache = (fs::path(o.sensitivity_dir) / fmt::format("sensitivity_{}.json", mode)).string();
        std::error_code ec;
        if (fs::is_regular_file(cache, ec)) {
            LOWBIT_ASSIGN(nlohmann::json j, read_json_file(cache));
            if (j.contains("key") && j.at("key") == key && j.contains("scores")) {
                std::map<std::string, double> m;
                for (const auto& [n, v] : j.at("scores").items()) m[n] = v.get<double>();
                if (!o.quiet) {
                    std::fprintf(stderr, "lowbit mixed: %s sensitivity from %s\n", mode.c_str(),
                                 cache.c_str());
                }
                return m;
            }
        }
    }
    quant::SensitivityOptions so;
    so.quant = base;
    so.quant.assignment.reset();
    so.quant.weight_method = quant::WeightMethod::Rtn;
    so.quant.bias_correction = false;
    so.quant.int4 = {};
    if (f == NodeFormat::Int4w) {
        so.quant.int4.enabled = true;
        so.quant.int4.block_size = o.block_size;
        so.local_probes = false;
    } else if (f == NodeFormat::Fp8) {
        so.quant.placement.mode = quant::QuantMode::Fp8;
    }
    so.metric = quant::SensitivityMetric::OutputMse;
    so.images = o.sens_images;
    so.n_threads = o.threads;
    so.progress = !o.quiet;
    if (!o.quiet) {
        std::fprintf(stderr, "lowbit mixed: measuring %s sensitivity (output-mse, %lld images)\n",
                     mode.c_str(), static_cast<long long>(o.sens_images));
    }
    LOWBIT_ASSIGN(std::unique_ptr<calib::CalibSource> src, open_source(ci));
    auto rep = quant::run_sensitivity(model, *src, so);
    if (!rep) return rep.status().with_context(fmt::format("{} sensitivity", mode));
    std::map<std::string, double> m;
    for (const auto& n : rep->nodes) m[n.name] = n.score;
    if (!cache.empty()) {
        nlohmann::ordered_json j = {{"key", key}, {"scores", m}};
        std::error_code ec;
        fs::create_directories(o.sensitivity_dir, ec);
        LOWBIT_TRY(write_file_atomic(cache, j.dump(1) + "\n"));
    }
    return m;
}

struct Point {
    std::string source;  // "int8", "search"
    int state = -1;
    int64_t bytes = 0;
    double latency_ms = 0;     // measured: the sum of per-step medians (node_latency.h)
    double run_median_ms = 0;  // measured: the median whole-run wall time
    double map = 0;
    double cost = 0;
    double int4_share = 0;
    std::map<std::string, int> counts;
};

// The checked options of one run, the loaded model, and the quantize options shared by every
// candidate (INT8 placement, GPTQ / RTN for the int4w nodes).
struct Setup {
    MixedJob o;
    Budget budget;
    LatencyBudget latency;
    std::vector<NodeFormat> formats;
    std::string asg_out, pareto_out;
    CalibInputOptions ci;
    EvalJob ev;
    Model model;
    quant::QuantizeOptions base;
};

Status check_numbers(const MixedJob& o, const Budget& budget, const LatencyBudget& latency) {
    if (!budget.set && !latency.set && !o.max_drop_set) {
        return invalid(
            "give a budget: --budget-bytes N (or 0.6x of the INT8 model's weight "
            "bytes), --budget-ms X or --budget-latency F (0.5x of the FP32 model's "
            "latency), and/or --max-drop D (mAP50-95)");
    }
    if (budget.set && latency.set) {
        return invalid(
            "--budget-bytes and a latency budget (--budget-ms / --budget-latency): "
            "give one of them");
    }
    if (o.latency_runs < 1 || o.latency_runs > 1000) {
        return invalid("--latency-runs {}: expected 1 to 1000 timed runs", o.latency_runs);
    }
    if (o.max_drop_set && (!std::isfinite(o.max_drop) || o.max_drop < 0 || o.max_drop >= 1)) {
        return invalid("--max-drop {}: expected a mAP50-95 drop in [0, 1)", o.max_drop);
    }
    if (o.max_evals < 1) return invalid("--max-evals {}: at least 1", o.max_evals);
    if (o.front_points < 0) return invalid("--front-points {} is negative", o.front_points);
    if (o.sens_images < 1) return invalid("--sens-images {}: at least 1", o.sens_images);
    if (o.block_size < 0) return invalid("--block-size {} must be positive", o.block_size);
    if (o.weight_method != "gptq" && o.weight_method != "rtn" && o.weight_method != "adaround") {
        return invalid("--weight-method '{}': expected rtn, gptq or adaround", o.weight_method);
    }
    if (o.gptq_samples < 0) return invalid("--gptq-samples {} is negative", o.gptq_samples);
    if (o.adaround_iters < 1) {
        return invalid("--adaround-iters {} must be at least 1", o.adaround_iters);
    }
    if (!(o.adaround_lambda >= 0) || !std::isfinite(o.adaround_lambda)) {
        return invalid("--adaround-lambda {} must be a finite number >= 0", o.adaround_lambda);
    }
    if (o.out.empty()) return invalid("--out MODEL.onnx is required");
    return Status::ok();
}

Result<quant::QuantizeOptions> base_options(const MixedJob& o) {
    quant::QuantizeOptions base;
    base.placement.mode = quant::QuantMode::Int8;
    LOWBIT_TRY(apply_placement_options(o.placement, base.placement));
    LOWBIT_ASSIGN(auto method, parse_calib_method_options(o.method));
    std::tie(base.method, base.percentile) = method;
    base.int4.enabled = true;
    base.int4.block_size = o.block_size;
    if (o.weight_method == "gptq") base.weight_method = quant::WeightMethod::Gptq;
    if (o.weight_method == "adaround") base.weight_method = quant::WeightMethod::Adaround;
    base.gptq_samples = o.gptq_samples;
    base.adaround.iters = o.adaround_iters;
    base.adaround.lambda = o.adaround_lambda;
    base.bias_correction = o.bias_correction;
    base.run.n_threads = o.threads;
    base.run.progress = false;
    apply_engine_switches(o.engine, base.run);
    base.model_name = fs::path(o.model).filename().string();
    return base;
}

Result<Setup> set_up(const MixedJob& job) {
    Setup s;
    s.o = job;
    const MixedJob& o = s.o;
    LOWBIT_ASSIGN(s.o.model, resolve_model_path(job.model));
    LOWBIT_ASSIGN(s.budget, parse_budget(o.budget_bytes));
    LOWBIT_ASSIGN(s.latency, parse_latency_budget(o.budget_ms, o.budget_latency));
    LOWBIT_TRY(check_numbers(o, s.budget, s.latency));
    for (const auto& name : o.formats) {
        LOWBIT_ASSIGN(NodeFormat f, quant::parse_node_format(name));
        if (std::find(s.formats.begin(), s.formats.end(), f) == s.formats.end()) {
            s.formats.push_back(f);
        }
    }
    if (s.formats.empty()) {
        return invalid("--formats: give at least one of int4w, int8, fp8, float");
    }
    const std::string stem = fs::path(o.out).replace_extension().string();
    s.asg_out = o.assignment_out.empty() ? stem + ".assign.json" : o.assignment_out;
    s.pareto_out = o.pareto_out.empty() ? stem + ".pareto.json" : o.pareto_out;

    LOWBIT_ASSIGN(s.model, load_model(o.model));
    s.ci = o.calib;
    s.ci.imgsz = image_size_for(s.model, s.ci.imgsz);
    if (s.ci.npy.empty() && s.ci.list.empty() && s.ci.images.empty()) {
        const fs::path list = fs::path(assets_dir()) / "calib" / "calib100.txt";
        std::error_code ec;
        if (assets_dir().empty() || !fs::is_regular_file(list, ec)) {
            return invalid(
                "no calibration data given and the bundled list was not found{}; pass "
                "--calib FILE.npy, --calib-list FILE or --calib-images DIR",
                assets_not_found_note());
        }
        s.ci.list = list.string();
    }
    s.ev = o.eval;
    LOWBIT_TRY(resolve_eval_data(s.ev));
    PathRoles roles;
    roles.input("MODEL", o.model);
    declare_calib_inputs(s.ci, roles);
    roles.input("--data (annotations)", s.ev.ann);
    roles.output("--out", o.out);
    roles.output("--assignment-out", s.asg_out);
    roles.output("--pareto-out", s.pareto_out);
    LOWBIT_TRY(check_path_roles(roles));
    LOWBIT_ASSIGN(s.base, base_options(o));
    return s;
}

// The INT8 placement's weighted nodes, each with its formats' weight bytes and sensitivity.
Result<std::vector<quant::MixedNode>> candidate_nodes(const Setup& s) {
    LOWBIT_ASSIGN(Model prepared, quant::prepare_float_model(s.model));
    quant::QuantizeOptions plain = s.base;
    plain.int4 = {};
    LOWBIT_ASSIGN(quant::Placement pl, quant::plan_placement(prepared, plain));
    std::map<NodeFormat, std::map<std::string, double>> sens;
    for (NodeFormat f : s.formats) {
        if (f == NodeFormat::Float) continue;
        LOWBIT_ASSIGN(sens[f], format_sensitivity(s.o, s.model, s.ci, s.base, f));
    }
    const int64_t block_size = s.o.block_size;
    std::vector<quant::MixedNode> nodes;
    for (const quant::WeightQdq& wq : pl.weights) {
        const Tensor* w = prepared.graph.initializer(wq.tensor);
        if (!w) continue;
        quant::MixedNode mn;
        mn.name = prepared.graph.nodes[wq.node].name;
        mn.params = w->numel();
        const int64_t ch = wq.axis >= 0 ? w->dim(static_cast<size_t>(wq.axis)) : 1;
        int64_t blocks = 1;
        if (block_size > 0 && w->shape().size() >= 2) {
            const int64_t ax = quant::int4_block_axis(w->shape(), wq.axis);
            const int64_t d = w->dim(static_cast<size_t>(ax));
            blocks = (d + block_size - 1) / block_size * (w->numel() / ch / d);
        }
        for (NodeFormat f : s.formats) {
            double cost = 0;
            if (f != NodeFormat::Float) {
                auto it = sens[f].find(mn.name);
                if (it == sens[f].end()) continue;  // that format's placement leaves it out
                cost = it->second;
            }
            mn.choices.push_back({f, quant::format_weight_bytes(f, mn.params, ch, blocks), cost});
        }
        if (mn.choices.empty()) continue;  // stays int8 (the fallback)
        nodes.push_back(std::move(mn));
    }
    return nodes;
}

// How every latency is measured: the run's threads and engine switches, one image (the
// calibration size where the model's input is not fixed), --latency-runs timed runs after one
// warm-up, the sum of the per-step medians (pipeline/node_latency.h).
LatencyOptions latency_options(const Setup& s) {
    LatencyOptions lo;
    lo.runs = s.o.latency_runs;
    lo.exec.n_threads = s.o.threads;
    apply_engine_switches(s.o.engine, lo.exec);
    const ValueInfo* in = image_input(s.model);
    if (in && !fixed_image_shape(in)) lo.exec.input_shapes[in->name] = {1, 3, s.ci.imgsz, s.ci.imgsz};
    return lo;
}

// The latency references of a latency budget, measured in the same interleaved rounds as the
// per-format models.
struct LatencyRefs {
    double other_ms = 0;     // time no candidate owns in the all-INT8 model
    double fp32_ms = 0;      // the FP32 model's estimate (sum of per-step medians)
    double fp32_run_ms = 0;  // its median whole run
};

// Each candidate's latency in each format (MixedChoice::ms), measured on one model per format
// with every candidate in it (the other nodes INT8, as in every mixed model; RTN weights: the
// rounding does not change the kernels), and the time no candidate owns in the all-INT8 model.
// The format models and the FP32 model run in interleaved rounds; every number is a sum of
// per-step medians, so a node's cost, a state's estimate and the FP32 reference are the same
// statistic and no model's whole-run time (which carries the machine's preemptions) enters them.
Result<LatencyRefs> measure_node_costs(const Setup& s, std::vector<quant::MixedNode>& nodes) {
    std::set<std::string> names;
    for (const auto& n : nodes) names.insert(n.name);
    std::vector<NodeFormat> fs = s.formats;
    if (std::find(fs.begin(), fs.end(), NodeFormat::Int8) == fs.end()) {
        fs.push_back(NodeFormat::Int8);
    }
    LatencyOptions lo = latency_options(s);
    std::vector<Model> fmodels;
    for (NodeFormat f : fs) {
        quant::QuantizeOptions q = s.base;
        q.weight_method = quant::WeightMethod::Rtn;
        q.bias_correction = false;  // biases only: the kernels are the same
        q.assignment = quant::Assignment{};
        for (const auto& n : nodes) {
            for (const auto& c : n.choices) {
                if (c.format == f) q.assignment->nodes[n.name] = f;
            }
        }
        q.assignment_source = "mixed latency";
        LOWBIT_ASSIGN(std::unique_ptr<calib::CalibSource> src, open_source(s.ci));
        auto r = quant::quantize_model(s.model, src.get(), q);
        if (!r)
            return r.status().with_context(fmt::format("{} latency model", node_format_name(f)));
        fmodels.push_back(std::move(r->model));
    }
    std::vector<const Model*> models;
    std::vector<std::set<std::string>> cands;
    for (const Model& m : fmodels) {
        models.push_back(&m);
        cands.push_back(names);
    }
    models.push_back(&s.model);  // FP32, last
    if (!s.o.quiet) {
        std::fprintf(stderr,
                     "lowbit mixed: timing %zu format models and FP32 in %d interleaved rounds\n",
                     fmodels.size(), lo.runs);
    }
    Progress progress("mixed: timing", lo.warmup + lo.runs, "round", !s.o.quiet &&
                      Progress::stderr_is_terminal());
    lo.progress = &progress;
    auto lat = measure_interleaved(models, cands, lo);
    progress.finish();
    if (!lat) return lat.status().with_context("latency models");
    LatencyRefs refs;
    for (size_t i = 0; i < fs.size(); ++i) {
        const NodeFormat f = fs[i];
        const NodeLatency& l = (*lat)[i];
        if (f == NodeFormat::Int8) refs.other_ms = l.other_ms;
        for (auto& n : nodes) {
            for (auto& c : n.choices) {
                if (c.format == f) c.ms = l.node_ms.at(n.name);
            }
        }
        if (!s.o.quiet) {
            std::fprintf(stderr,
                         "lowbit mixed: %s latency model: %.3f ms (sum of per-step medians; "
                         "whole-run median %.3f ms), %.3f ms outside the candidates\n",
                         node_format_name(f), l.estimate_ms, l.run_ms, l.other_ms);
        }
    }
    refs.fp32_ms = lat->back().estimate_ms;
    refs.fp32_run_ms = lat->back().run_ms;
    if (!s.o.quiet) {
        std::fprintf(stderr,
                     "lowbit mixed: FP32: %.3f ms (sum of per-step medians; whole-run median "
                     "%.3f ms)\n",
                     refs.fp32_ms, refs.fp32_run_ms);
    }
    return refs;
}

// Real quantize + eval of assignments: the FP32 and all-INT8 references, then states of the
// greedy path, each measured once; every measured state is a point of the Pareto front.
class Measurer {
public:
    Measurer(const Setup& s, const std::vector<quant::MixedNode>& nodes,
             const std::vector<quant::MixedState>& path, fs::path tmp_dir)
        : s_(s), nodes_(nodes), path_(path), tmp_dir_(std::move(tmp_dir)) {}

    // FP32 and the all-INT8 model (the first point).
    Status references() {
        EvalJob e32 = s_.ev;
        e32.model = s_.o.model;
        e32.quiet = true;
        LOWBIT_ASSIGN(EvalRun fp32_run, evaluate_model_file(e32));
        fp32_map = fp32_run.result.coco.stats[0];
        if (fp32_ms <= 0) {  // no latency budget: timed alone, the same statistic
            LOWBIT_ASSIGN(NodeLatency fp32_lat,
                          measure_node_latency(s_.model, {}, latency_options(s_)));
            fp32_ms = fp32_lat.estimate_ms;
            fp32_run_ms = fp32_lat.run_ms;
        }
        LOWBIT_ASSIGN(Measured int8_m, measure(quant::Assignment{}, nullptr));
        int8_bytes = int8_m.bytes;
        int8_map = int8_m.map;
        Point p;
        p.source = "int8";
        p.bytes = int8_bytes;
        p.map = int8_map;
        p.latency_ms = int8_m.ms;
        p.run_median_ms = int8_m.run_ms;
        p.counts["int8"] = static_cast<int>(nodes_.size());
        points.push_back(p);
        return Status::ok();
    }

    bool measured(int k) const { return index_.count(k) != 0; }
    const Point& point(int k) const { return points[index_.at(k)]; }
    double drop(double map) const { return fp32_map - map; }

    // State k's mAP50-95, measured once. With `model`, the quantized model is returned too (a
    // state measured before without it is measured again).
    Result<double> state(int k, Model* model) {
        if (measured(k) && !model) return point(k).map;
        const quant::MixedState& st = path_[static_cast<size_t>(k)];
        LOWBIT_ASSIGN(Measured r, measure(quant::assignment_of(nodes_, st), model));
        if (measured(k)) return r.map;
        Point p;
        p.source = "search";
        p.state = k;
        p.bytes = r.bytes;
        p.map = r.map;
        p.latency_ms = r.ms;
        p.run_median_ms = r.run_ms;
        p.cost = st.cost;
        p.int4_share = quant::params_share(nodes_, st, NodeFormat::Int4w);
        for (size_t i = 0; i < nodes_.size(); ++i) {
            ++p.counts[node_format_name(
                nodes_[i].choices[static_cast<size_t>(st.choice[i])].format)];
        }
        index_[k] = points.size();
        points.push_back(p);
        if (!s_.o.quiet) {
            std::fprintf(stderr,
                         "lowbit mixed: state %d/%zu: %lld weight bytes (%.3fx INT8), INT4 on "
                         "%.1f%% of the weights, %.3f ms/run, mAP50-95 %.4f (drop %.4f)\n",
                         k, path_.size() - 1, static_cast<long long>(p.bytes),
                         static_cast<double>(p.bytes) / static_cast<double>(int8_bytes),
                         100 * p.int4_share, p.latency_ms, p.map, drop(p.map));
        }
        return p.map;
    }

    double fp32_map = 0, int8_map = 0;
    double fp32_ms = 0;      // the FP32 model's latency (sum of per-step medians); preset: kept
    double fp32_run_ms = 0;  // its median whole run
    int64_t int8_bytes = 0;
    int evals = 0;
    std::vector<Point> points;

private:
    struct Measured {
        int64_t bytes = 0;
        double map = 0;
        double ms = 0;      // measured latency (sum of per-step medians)
        double run_ms = 0;  // median whole run
    };
    Result<Measured> measure(const quant::Assignment& a, Model* keep) {
        quant::QuantizeOptions q = s_.base;
        q.assignment = a;
        q.assignment_source = "mixed";
        LOWBIT_ASSIGN(std::unique_ptr<calib::CalibSource> src, open_source(s_.ci));
        auto r = quant::quantize_model(s_.model, src.get(), q);
        if (!r) return r.status().with_context(s_.o.model);
        const std::string path = (tmp_dir_ / fmt::format("c{}.onnx", evals++)).string();
        LOWBIT_TRY(save_model(r->model, path));
        EvalJob e = s_.ev;
        e.model = path;
        e.quiet = true;
        LOWBIT_ASSIGN(EvalRun run, evaluate_model_file(e));
        Measured got;
        got.bytes = quant::initializer_bytes(r->model);
        got.map = run.result.coco.stats[0];
        LOWBIT_ASSIGN(NodeLatency lat, measure_node_latency(r->model, {}, latency_options(s_)));
        got.ms = lat.estimate_ms;
        got.run_ms = lat.run_ms;
        if (keep) *keep = std::move(r->model);
        std::error_code ec;
        fs::remove(path, ec);
        return got;
    }

    const Setup& s_;
    const std::vector<quant::MixedNode>& nodes_;
    const std::vector<quant::MixedState>& path_;
    fs::path tmp_dir_;
    std::map<int, size_t> index_;  // state -> points index
};

// The chosen state and its model. With --budget-bytes: the first state of the path within it
// (and, with --max-drop too, `verdict` says when its measured drop is too large). With
// --max-drop alone: the fewest-bytes state whose measured drop is within it, by bisection over
// the path (bounded by --max-evals).
struct Choice {
    int state = -1;
    Model model;
    std::string verdict;
};

Result<Choice> choose_in_budget(const Setup& s, const std::vector<quant::MixedState>& path,
                                int64_t other_bytes, double other_ms, Measurer& m) {
    const MixedJob& o = s.o;
    int k = -1;
    if (s.latency.set) {
        const double total = s.latency.fraction ? s.latency.value * m.fp32_ms : s.latency.value;
        k = quant::pick_within_ms(path, total - other_ms);
        if (k < 0) {
            const double least = path.back().ms + other_ms;
            return invalid(
                "{} {}: {:.3f} ms is below the fastest this model reaches with "
                "--formats (estimated {:.3f} ms; FP32 measured {:.3f} ms)",
                s.latency.fraction ? "--budget-latency" : "--budget-ms",
                s.latency.fraction ? o.budget_latency : o.budget_ms, total, least, m.fp32_ms);
        }
    } else {
        const double total =
            s.budget.fraction ? s.budget.value * static_cast<double>(m.int8_bytes) : s.budget.value;
        k = quant::pick_within(path, static_cast<int64_t>(std::floor(total)) - other_bytes);
        if (k < 0) {
            const int64_t least = path.back().bytes + other_bytes;
            return invalid(
                "--budget-bytes {}: {} weight bytes are below the smallest this model "
                "reaches with --formats ({} bytes, {:.3f}x INT8)",
                o.budget_bytes, static_cast<int64_t>(total), least,
                static_cast<double>(least) / static_cast<double>(m.int8_bytes));
        }
    }
    Choice c;
    c.state = k;
    LOWBIT_ASSIGN(double map, m.state(k, &c.model));
    // Interactions: the summed sensitivities under-estimated the drop. Backing off along the
    // path within the budget cannot help (the budget state is already the least estimated
    // cost); say so.
    if (o.max_drop_set && m.drop(map) > o.max_drop) {
        c.verdict = fmt::format("max-drop not met within the budget: drop {:.4f} > {:.4f}",
                                m.drop(map), o.max_drop);
    }
    return c;
}

Result<Choice> choose_by_drop(const Setup& s, const std::vector<quant::MixedState>& path,
                              Measurer& m) {
    const MixedJob& o = s.o;
    Choice c;
    Model model;
    // A state within the drop keeps its model; the states tried later have fewer bytes, so the
    // last one kept is the choice.
    auto try_state = [&](int k) -> Result<bool> {
        LOWBIT_ASSIGN(double map, m.state(k, &model));
        if (m.drop(map) > o.max_drop) return false;
        c.state = k;
        c.model = std::move(model);
        return true;
    };
    const int last = static_cast<int>(path.size()) - 1;
    LOWBIT_ASSIGN(bool last_ok, try_state(last));
    int lo = 0, hi = last - 1, used = 1;  // state lo assumed within (state 0: least cost)
    while (!last_ok && lo <= hi && used < o.max_evals) {
        const int mid = (lo + hi + 1) / 2;
        LOWBIT_ASSIGN(bool ok, try_state(mid));
        ++used;
        if (ok) {
            lo = mid + 1;
        } else {
            hi = mid - 1;
        }
    }
    if (c.state < 0 && !m.measured(0)) LOWBIT_TRY(try_state(0).status());
    if (c.state < 0) {
        return invalid(
            "--max-drop {}: no state of the search keeps the drop within it (the "
            "least-cost state drops {:.4f}); allow float (--formats) or a larger drop",
            o.max_drop, m.drop(m.point(0).map));
    }
    return c;
}

// The chosen model of a latency budget, timed again with the estimator of the search (sum of
// per-step medians), interleaved with the FP32 model: "estimate vs verified".
struct Verified {
    bool done = false;
    double estimated_ms = 0;             // the search's estimate of the chosen state
    double fp32_estimate_ms = 0;         // the FP32 reference the budget was computed from
    double ms = 0, fp32_ms = 0;          // verified: chosen and FP32, interleaved
    double run_ms = 0, fp32_run_ms = 0;  // their median whole runs in the same rounds
    bool within = false;  // verified within the budget (as a fraction of FP32 verified, or ms)
};

Result<Verified> verify_latency(const Setup& s, const Model& chosen, double estimated_ms,
                                double fp32_estimate_ms) {
    Verified v;
    v.estimated_ms = estimated_ms;
    v.fp32_estimate_ms = fp32_estimate_ms;
    auto lat = measure_interleaved({&chosen, &s.model}, {}, latency_options(s));
    if (!lat) return lat.status().with_context("verifying the chosen model's latency");
    v.done = true;
    v.ms = (*lat)[0].estimate_ms;
    v.run_ms = (*lat)[0].run_ms;
    v.fp32_ms = (*lat)[1].estimate_ms;
    v.fp32_run_ms = (*lat)[1].run_ms;
    v.within = s.latency.fraction ? v.ms <= s.latency.value * v.fp32_ms : v.ms <= s.latency.value;
    if (!s.o.quiet) {
        std::fprintf(stderr,
                     "lowbit mixed: chosen model: estimated %.3f ms (%.3fx FP32 %.3f), verified "
                     "%.3f ms (%.3fx FP32 %.3f, interleaved; whole-run medians %.3f / %.3f ms)\n",
                     v.estimated_ms, v.estimated_ms / v.fp32_estimate_ms, v.fp32_estimate_ms, v.ms,
                     v.ms / v.fp32_ms, v.fp32_ms, v.run_ms, v.fp32_run_ms);
    }
    return v;
}

nlohmann::ordered_json verified_json(const Verified& v) {
    return {{"estimated_ms", v.estimated_ms},
            {"estimated_vs_fp32", v.estimated_ms / v.fp32_estimate_ms},
            {"fp32_estimate_ms", v.fp32_estimate_ms},
            {"verified_ms", v.ms},
            {"verified_fp32_ms", v.fp32_ms},
            {"verified_vs_fp32", v.ms / v.fp32_ms},
            {"run_median_ms", v.run_ms},
            {"fp32_run_median_ms", v.fp32_run_ms},
            {"verified_within_budget", v.within},
            {"statistic", "sum of per-step medians, chosen and FP32 interleaved"}};
}

// The Pareto file: every measured point (on_front: not dominated in bytes and mAP), the
// estimated path and the candidate nodes.
nlohmann::ordered_json pareto_json(const Setup& s, const Measurer& m,
                                   const std::vector<quant::MixedNode>& nodes,
                                   const std::vector<quant::MixedState>& path, int64_t other_bytes,
                                   double other_ms, int chosen, const std::string& verdict,
                                   const Verified& ver) {
    const MixedJob& o = s.o;
    const auto ratio = [&](int64_t bytes) {
        return static_cast<double>(bytes) / static_cast<double>(m.int8_bytes);
    };
    std::vector<const Point*> sorted;
    for (const Point& p : m.points) sorted.push_back(&p);
    std::stable_sort(sorted.begin(), sorted.end(),
                     [](const Point* a, const Point* b) { return a->bytes < b->bytes; });
    nlohmann::ordered_json pts = nlohmann::ordered_json::array();
    for (const Point* p : sorted) {
        bool dominated = false, slower = false;
        for (const Point& q : m.points) {
            dominated = dominated || (&q != p && q.bytes <= p->bytes && q.map >= p->map &&
                                      (q.bytes < p->bytes || q.map > p->map));
            slower = slower || (&q != p && q.latency_ms <= p->latency_ms && q.map >= p->map &&
                                (q.latency_ms < p->latency_ms || q.map > p->map));
        }
        pts.push_back({{"source", p->source},
                       {"state", p->state},
                       {"weight_bytes", p->bytes},
                       {"ratio_vs_int8", ratio(p->bytes)},
                       {"latency_ms", p->latency_ms},
                       {"latency_run_median_ms", p->run_median_ms},
                       {"map50_95", p->map},
                       {"drop", m.drop(p->map)},
                       {"estimated_cost", p->cost},
                       {"int4w_weight_share", p->int4_share},
                       {"formats", p->counts},
                       {"on_front", !dominated},
                       {"on_front_latency", !slower},
                       {"chosen", p->state == chosen && p->source == "search"}});
    }
    nlohmann::ordered_json est = nlohmann::ordered_json::array();
    for (const auto& st : path) {
        if (s.latency.set) {
            est.push_back({st.bytes + other_bytes, st.cost, st.ms + other_ms});
        } else {
            est.push_back({st.bytes + other_bytes, st.cost});
        }
    }
    nlohmann::ordered_json columns = {"weight_bytes", "cost"};
    if (s.latency.set) columns.push_back("latency_ms");
    nlohmann::ordered_json nj = nlohmann::ordered_json::array();
    for (const auto& n : nodes) {
        nlohmann::ordered_json ch = nlohmann::ordered_json::array();
        for (const auto& c : n.choices) {
            nlohmann::ordered_json cj = {
                {"format", node_format_name(c.format)}, {"bytes", c.bytes}, {"cost", c.cost}};
            if (s.latency.set) cj["ms"] = c.ms;
            ch.push_back(cj);
        }
        nj.push_back({{"name", n.name}, {"params", n.params}, {"choices", ch}});
    }
    nlohmann::ordered_json j = {
        {"tool", "lowbit mixed"},
        {"model", o.model},
        {"formats", o.formats},
        {"weight_method", o.weight_method},
        {"bias_correction", o.bias_correction},
        {"block_size", o.block_size},
        {"budget_bytes", o.budget_bytes},
        {"budget_ms", o.budget_ms},
        {"budget_latency", o.budget_latency},
        {"latency",
         {{"runs", o.latency_runs},
          {"threads", o.threads},
          {"statistic", "sum of per-step medians"},
          {"run_median", "latency_run_median_ms: median whole-run wall time"}}},
        {"max_drop",
         o.max_drop_set ? nlohmann::ordered_json(o.max_drop) : nlohmann::ordered_json()},
        {"eval_images", s.ev.max_images},
        {"sensitivity", {{"metric", "output-mse"}, {"images", o.sens_images}}},
        {"fp32_map50_95", m.fp32_map},
        {"fp32_latency_ms", m.fp32_ms},
        {"fp32_latency_run_median_ms", m.fp32_run_ms},
        {"int8",
         {{"weight_bytes", m.int8_bytes},
          {"map50_95", m.int8_map},
          {"latency_ms", m.points.front().latency_ms},
          {"latency_run_median_ms", m.points.front().run_median_ms}}},
        {"other_weight_bytes", other_bytes},
        {"verdict", verdict.empty() ? "ok" : verdict},
        {"points", pts},
        {"estimated_path", {{"columns", columns}, {"rows", est}}},
        {"nodes", nj}};
    if (ver.done) j["chosen_latency"] = verified_json(ver);
    if (o.weight_method == "adaround") {
        j["adaround"] = {{"iters", o.adaround_iters}, {"lambda", o.adaround_lambda}};
    }
    return j;
}

}  // namespace

Status run_job(const MixedJob& job, std::FILE* out) {
    const auto t0 = std::chrono::steady_clock::now();
    LOWBIT_ASSIGN(const Setup s, set_up(job));
    const MixedJob& o = s.o;
    LOWBIT_ASSIGN(std::vector<quant::MixedNode> nodes, candidate_nodes(s));
    LatencyRefs refs;  // with a latency budget: the node costs' references
    if (s.latency.set) {
        LOWBIT_ASSIGN(refs, measure_node_costs(s, nodes));
    }
    const double other_ms = refs.other_ms;  // latency outside the candidates (all-INT8 model)
    const quant::MixedResource resource =
        s.latency.set ? quant::MixedResource::Latency : quant::MixedResource::Bytes;
    LOWBIT_ASSIGN(const std::vector<quant::MixedState> path, quant::greedy_path(nodes, resource));

    const fs::path tmp_dir = fs::path(o.out).parent_path() /
                             fmt::format(".lowbit-mixed-{}", static_cast<long long>(::getpid()));
    std::error_code ec;
    fs::create_directories(tmp_dir, ec);
    if (ec) return io_error("cannot create '{}': {}", tmp_dir.string(), ec.message());
    struct Cleanup {
        fs::path p;
        ~Cleanup() {
            std::error_code e;
            fs::remove_all(p, e);
        }
    } cleanup{tmp_dir};

    Measurer m(s, nodes, path, tmp_dir);
    m.fp32_ms = refs.fp32_ms;  // the budget's reference: timed with the format models
    m.fp32_run_ms = refs.fp32_run_ms;
    LOWBIT_TRY(m.references());
    int64_t int8_cand = 0;  // the candidates' INT8 weight bytes
    for (const auto& n : nodes) {
        for (const auto& c : n.choices) {
            if (c.format == NodeFormat::Int8) int8_cand += c.bytes;
        }
    }
    const int64_t other_bytes = m.int8_bytes - int8_cand;  // biases, unquantized weights, ...
    if (!o.quiet) {
        std::fprintf(stderr,
                     "lowbit mixed: %zu candidate nodes, %zu states on the path; FP32 mAP50-95 "
                     "%.4f, INT8 %.4f at %lld weight bytes\n",
                     nodes.size(), path.size(), m.fp32_map, m.int8_map,
                     static_cast<long long>(m.int8_bytes));
    }

    const bool budgeted = s.budget.set || s.latency.set;
    LOWBIT_ASSIGN(Choice choice, budgeted ? choose_in_budget(s, path, other_bytes, other_ms, m)
                                          : choose_by_drop(s, path, m));
    // A measured front: more states, spread evenly in bytes (in estimated latency for a
    // latency budget) over the path.
    for (int i = 1; i <= o.front_points; ++i) {
        const double frac = static_cast<double>(i) / (o.front_points + 1);
        int k = -1;
        if (s.latency.set) {
            k = quant::pick_within_ms(path,
                                      path.back().ms + frac * (path.front().ms - path.back().ms));
        } else {
            const int64_t target =
                path.back().bytes +
                static_cast<int64_t>(frac * static_cast<double>(int8_cand - path.back().bytes));
            k = quant::pick_within(path, target);
        }
        if (k >= 0 && !m.measured(k)) LOWBIT_TRY(m.state(k, nullptr).status());
    }

    Verified ver;
    if (s.latency.set && choice.verdict.empty()) {
        LOWBIT_ASSIGN(
            ver, verify_latency(s, choice.model,
                                path[static_cast<size_t>(choice.state)].ms + other_ms, m.fp32_ms));
    }
    const nlohmann::ordered_json pj =
        pareto_json(s, m, nodes, path, other_bytes, other_ms, choice.state, choice.verdict, ver);
    if (!choice.verdict.empty()) {
        LOWBIT_TRY(write_file_atomic(s.pareto_out, pj.dump(1) + "\n"));
        return invalid(
            "{} (nothing but the Pareto front {} written: raise the budget or "
            "--max-drop)",
            choice.verdict, s.pareto_out);
    }
    nlohmann::ordered_json aj = quant::assignment_to_json(
        quant::assignment_of(nodes, path[static_cast<size_t>(choice.state)]));
    const Point& cp = m.point(choice.state);
    aj["summary"] = {
        {"weight_bytes", cp.bytes},
        {"ratio_vs_int8", static_cast<double>(cp.bytes) / static_cast<double>(m.int8_bytes)},
        {"map50_95", cp.map},
        {"drop", m.drop(cp.map)},
        {"int4w_weight_share", cp.int4_share},
        {"latency_ms", cp.latency_ms},
        {"latency_vs_fp32", cp.latency_ms / m.fp32_ms},
        {"latency_run_median_ms", cp.run_median_ms}};
    if (s.latency.set) {
        aj["summary"]["estimated_latency_ms"] = ver.estimated_ms;
        aj["summary"]["verified"] = verified_json(ver);
    }
    LOWBIT_TRY(save_model(choice.model, o.out));
    LOWBIT_TRY(write_file_atomic(s.asg_out, aj.dump(1) + "\n"));
    LOWBIT_TRY(write_file_atomic(s.pareto_out, pj.dump(1) + "\n"));
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    nlohmann::ordered_json summary = {{"model", o.out},
                                      {"assignment", s.asg_out},
                                      {"pareto", s.pareto_out},
                                      {"fp32_map50_95", m.fp32_map},
                                      {"int8_weight_bytes", m.int8_bytes},
                                      {"fp32_latency_ms", m.fp32_ms},
                                      {"fp32_latency_run_median_ms", m.fp32_run_ms},
                                      {"chosen", aj["summary"]},
                                      {"formats", cp.counts},
                                      {"evaluations", m.evals},
                                      {"seconds", seconds}};
    std::fprintf(out, "%s\n", summary.dump(2).c_str());
    return Status::ok();
}

}  // namespace lowbit::pipeline
