// `lowbit mixed`: per-format sensitivities (quant/sensitivity, output-mse), the greedy search
// over formats per node (quant/mixed.h), real quantize + eval of the chosen assignment (and of a
// few more states of the path, for a measured Pareto front), bounded back-off for --max-drop.
// Writes the model, the assignment JSON (quantize --assign reads it) and the Pareto JSON.
#include "pipeline/mixed_job.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <map>
#include <set>
#include <unistd.h>

#include "core/fs.h"
#include "core/json_at.h"
#include "core/path_guard.h"
#include "onnx/model_io.h"
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
        return invalid("--budget-bytes '{}': expected a positive number of bytes, or a fraction "
                       "of the INT8 model's weight bytes such as 0.6x",
                       s);
    }
    if (b.fraction && b.value > 4.0) {
        return invalid("--budget-bytes '{}': a fraction of the INT8 model above 4x (float) "
                       "constrains nothing",
                       s);
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
    const nlohmann::json key = {{"model", o.model},     {"mode", mode},
                                {"images", o.sens_images}, {"method", o.method.method},
                                {"calib", ci.npy + ci.list}, {"placement", o.placement.exclude}};
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
    double map = 0;
    double cost = 0;
    double int4_share = 0;
    std::map<std::string, int> counts;
};

}  // namespace

Status run_job(const MixedJob& o_in, std::FILE* out) {
    using Clock = std::chrono::steady_clock;
    const auto t0 = Clock::now();
    MixedJob o = o_in;
    LOWBIT_ASSIGN(o.model, resolve_model_path(o.model));
    LOWBIT_ASSIGN(const Budget budget, parse_budget(o.budget_bytes));
    if (!budget.set && !o.max_drop_set) {
        return invalid("give a budget: --budget-bytes N (or 0.6x of the INT8 model's weight "
                       "bytes) and/or --max-drop D (mAP50-95)");
    }
    if (o.max_drop_set && (!std::isfinite(o.max_drop) || o.max_drop < 0 || o.max_drop >= 1)) {
        return invalid("--max-drop {}: expected a mAP50-95 drop in [0, 1)", o.max_drop);
    }
    if (o.max_evals < 1) return invalid("--max-evals {}: at least 1", o.max_evals);
    if (o.front_points < 0) return invalid("--front-points {} is negative", o.front_points);
    if (o.sens_images < 1) return invalid("--sens-images {}: at least 1", o.sens_images);
    if (o.out.empty()) return invalid("--out MODEL.onnx is required");
    std::vector<NodeFormat> formats;
    for (const auto& s : o.formats) {
        LOWBIT_ASSIGN(NodeFormat f, quant::parse_node_format(s));
        if (std::find(formats.begin(), formats.end(), f) == formats.end()) formats.push_back(f);
    }
    if (formats.empty()) return invalid("--formats: give at least one of int4w, int8, fp8, float");
    const std::string stem = fs::path(o.out).replace_extension().string();
    const std::string asg_out = o.assignment_out.empty() ? stem + ".assign.json" : o.assignment_out;
    const std::string pareto_out = o.pareto_out.empty() ? stem + ".pareto.json" : o.pareto_out;

    LOWBIT_ASSIGN(Model model, load_model(o.model));
    CalibInputOptions ci = o.calib;
    ci.imgsz = image_size_for(model, ci.imgsz);
    if (ci.npy.empty() && ci.list.empty() && ci.images.empty()) {
        const fs::path list = fs::path(assets_dir()) / "calib" / "calib100.txt";
        std::error_code ec;
        if (assets_dir().empty() || !fs::is_regular_file(list, ec)) {
            return invalid("no calibration data given and the bundled list was not found{}; pass "
                           "--calib FILE.npy, --calib-list FILE or --calib-images DIR",
                           assets_not_found_note());
        }
        ci.list = list.string();
    }
    EvalJob ev = o.eval;
    LOWBIT_TRY(resolve_eval_data(ev));
    {
        PathRoles roles;
        roles.input("MODEL", o.model);
        declare_calib_inputs(ci, roles);
        roles.input("--data (annotations)", ev.ann);
        roles.output("--out", o.out);
        roles.output("--assignment-out", asg_out);
        roles.output("--pareto-out", pareto_out);
        LOWBIT_TRY(check_path_roles(roles));
    }

    // Quantize options shared by every candidate (INT8 placement, GPTQ / RTN for int4w).
    quant::QuantizeOptions base;
    base.placement.mode = quant::QuantMode::Int8;
    LOWBIT_TRY(apply_placement_options(o.placement, base.placement));
    LOWBIT_ASSIGN(auto method, parse_calib_method_options(o.method));
    std::tie(base.method, base.percentile) = method;
    base.int4.enabled = true;
    base.int4.block_size = o.block_size;
    if (o.block_size < 0) return invalid("--block-size {} must be positive", o.block_size);
    if (o.weight_method == "gptq") {
        base.weight_method = quant::WeightMethod::Gptq;
        base.gptq_samples = o.gptq_samples;
    } else if (o.weight_method != "rtn") {
        return invalid("--weight-method '{}': expected rtn or gptq", o.weight_method);
    }
    base.run.n_threads = o.threads;
    base.run.progress = false;
    apply_engine_switches(o.engine, base.run);
    base.model_name = fs::path(o.model).filename().string();

    // Candidates: the INT8 placement's weighted nodes.
    LOWBIT_ASSIGN(Model prepared, quant::prepare_float_model(model));
    quant::QuantizeOptions plain = base;
    plain.int4 = {};
    LOWBIT_ASSIGN(quant::Placement pl, quant::plan_placement(prepared, plain));
    std::map<NodeFormat, std::map<std::string, double>> sens;
    for (NodeFormat f : formats) {
        if (f == NodeFormat::Float) continue;
        LOWBIT_ASSIGN(sens[f], format_sensitivity(o, model, ci, base, f));
    }
    std::vector<quant::MixedNode> nodes;
    for (const quant::WeightQdq& wq : pl.weights) {
        const Tensor* w = prepared.graph.initializer(wq.tensor);
        if (!w) continue;
        quant::MixedNode mn;
        mn.name = prepared.graph.nodes[wq.node].name;
        mn.params = w->numel();
        const int64_t ch = wq.axis >= 0 ? w->dim(static_cast<size_t>(wq.axis)) : 1;
        int64_t blocks = 1;
        if (o.block_size > 0 && w->shape().size() >= 2) {
            const int64_t ax = quant::int4_block_axis(w->shape(), wq.axis);
            const int64_t d = w->dim(static_cast<size_t>(ax));
            blocks = (d + o.block_size - 1) / o.block_size * (w->numel() / ch / d);
        }
        for (NodeFormat f : formats) {
            double cost = 0;
            if (f != NodeFormat::Float) {
                auto it = sens[f].find(mn.name);
                if (it == sens[f].end()) continue;  // that format's placement leaves it out
                cost = it->second;
            }
            mn.choices.push_back(
                {f, quant::format_weight_bytes(f, mn.params, ch, blocks), cost});
        }
        if (mn.choices.empty()) continue;  // stays int8 (the fallback)
        nodes.push_back(std::move(mn));
    }
    LOWBIT_ASSIGN(std::vector<quant::MixedState> path, quant::greedy_path(nodes));

    // Real quantize + eval of one assignment.
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
    int evals = 0;
    auto measure = [&](const quant::Assignment& a, Model* keep) -> Result<std::pair<int64_t, double>> {
        quant::QuantizeOptions q = base;
        q.assignment = a;
        q.assignment_source = "mixed";
        LOWBIT_ASSIGN(std::unique_ptr<calib::CalibSource> src, open_source(ci));
        auto r = quant::quantize_model(model, src.get(), q);
        if (!r) return r.status().with_context(o.model);
        const std::string path = (tmp_dir / fmt::format("c{}.onnx", evals++)).string();
        LOWBIT_TRY(save_model(r->model, path));
        EvalJob e = ev;
        e.model = path;
        e.quiet = true;
        LOWBIT_ASSIGN(EvalRun run, evaluate_model_file(e));
        const int64_t bytes = quant::initializer_bytes(r->model);
        if (keep) *keep = std::move(r->model);
        fs::remove(path, ec);
        return std::make_pair(bytes, run.result.coco.stats[0]);
    };

    // References: FP32 and the all-INT8 model.
    EvalJob e32 = ev;
    e32.model = o.model;
    e32.quiet = true;
    LOWBIT_ASSIGN(EvalRun fp32_run, evaluate_model_file(e32));
    const double fp32_map = fp32_run.result.coco.stats[0];
    quant::Assignment all8;
    LOWBIT_ASSIGN(auto int8_m, measure(all8, nullptr));
    const int64_t int8_bytes = int8_m.first;
    int64_t int8_cand = 0;
    for (const auto& n : nodes) {
        for (const auto& c : n.choices) {
            if (c.format == NodeFormat::Int8) int8_cand += c.bytes;
        }
    }
    const int64_t other_bytes = int8_bytes - int8_cand;  // biases, unquantized weights, ...
    if (!o.quiet) {
        std::fprintf(stderr,
                     "lowbit mixed: %zu candidate nodes, %zu states on the path; FP32 mAP50-95 "
                     "%.4f, INT8 %.4f at %lld weight bytes\n",
                     nodes.size(), path.size(), fp32_map, int8_m.second,
                     static_cast<long long>(int8_bytes));
    }

    std::vector<Point> points;
    {
        Point p;
        p.source = "int8";
        p.bytes = int8_bytes;
        p.map = int8_m.second;
        p.counts["int8"] = static_cast<int>(nodes.size());
        points.push_back(p);
    }
    std::map<int, size_t> measured;  // state -> points index
    Model best_model;
    int best_state = -1;
    auto eval_state = [&](int k, bool keep) -> Result<double> {
        auto hit = measured.find(k);
        if (hit != measured.end() && !keep) return points[hit->second].map;
        const quant::MixedState& s = path[static_cast<size_t>(k)];
        Model m;
        LOWBIT_ASSIGN(auto r, measure(quant::assignment_of(nodes, s), keep ? &m : nullptr));
        if (keep) {
            best_model = std::move(m);
            best_state = k;
        }
        Point p;
        p.source = "search";
        p.state = k;
        p.bytes = r.first;
        p.map = r.second;
        p.cost = s.cost;
        p.int4_share = quant::params_share(nodes, s, NodeFormat::Int4w);
        for (size_t i = 0; i < nodes.size(); ++i) {
            ++p.counts[node_format_name(
                nodes[i].choices[static_cast<size_t>(s.choice[i])].format)];
        }
        if (hit == measured.end()) {
            measured[k] = points.size();
            points.push_back(p);
        }
        if (!o.quiet) {
            std::fprintf(stderr,
                         "lowbit mixed: state %d/%zu: %lld weight bytes (%.3fx INT8), INT4 on "
                         "%.1f%% of the weights, mAP50-95 %.4f (drop %.4f)\n",
                         k, path.size() - 1, static_cast<long long>(p.bytes),
                         static_cast<double>(p.bytes) / static_cast<double>(int8_bytes),
                         100 * p.int4_share, p.map, fp32_map - p.map);
        }
        return p.map;
    };

    // The chosen state.
    const int last = static_cast<int>(path.size()) - 1;
    int chosen = -1;
    std::string verdict;
    const bool want_drop = o.max_drop_set;
    if (budget.set) {
        const double total = budget.fraction ? budget.value * static_cast<double>(int8_bytes)
                                             : budget.value;
        const int64_t b = static_cast<int64_t>(std::floor(total)) - other_bytes;
        const int k = quant::pick_within(path, b);
        if (k < 0) {
            return invalid("--budget-bytes {}: {} weight bytes are below the smallest this model "
                           "reaches with --formats ({} bytes, {:.3f}x INT8)",
                           o.budget_bytes, static_cast<int64_t>(total),
                           path.back().bytes + other_bytes,
                           static_cast<double>(path.back().bytes + other_bytes) /
                               static_cast<double>(int8_bytes));
        }
        LOWBIT_ASSIGN(double m, eval_state(k, true));
        chosen = k;
        if (want_drop && fp32_map - m > o.max_drop) {
            // Interactions: the summed sensitivities under-estimated the drop. Back off along the
            // path within the budget cannot help (the budget state is already the least cost
            // estimated); say so.
            verdict = fmt::format("max-drop not met within the budget: drop {:.4f} > {:.4f}",
                                  fp32_map - m, o.max_drop);
        }
    } else {
        // --max-drop alone: the fewest-bytes state whose measured drop is within it, by bisection
        // over the path (bounded by --max-evals).
        int lo = 0, hi = last;  // state lo assumed within (state 0: least estimated cost)
        int good = -1;
        LOWBIT_ASSIGN(double m_last, eval_state(last, false));
        if (fp32_map - m_last <= o.max_drop) {
            good = last;
        } else {
            hi = last - 1;
            int used = 1;
            while (lo <= hi && used < o.max_evals) {
                const int mid = (lo + hi + 1) / 2;
                LOWBIT_ASSIGN(double m, eval_state(mid, false));
                ++used;
                if (fp32_map - m <= o.max_drop) {
                    good = mid;
                    lo = mid + 1;
                } else {
                    hi = mid - 1;
                }
            }
            if (good < 0) {
                LOWBIT_ASSIGN(double m0, eval_state(0, false));
                if (fp32_map - m0 <= o.max_drop) good = 0;
            }
        }
        if (good < 0) {
            return invalid("--max-drop {}: no state of the search keeps the drop within it (the "
                           "least-cost state drops {:.4f}); allow float (--formats) or a larger "
                           "drop",
                           o.max_drop, fp32_map - points[measured.at(0)].map);
        }
        LOWBIT_ASSIGN(double m, eval_state(good, true));
        (void)m;
        chosen = good;
    }
    // A measured front: more states, spread evenly in bytes over the path.
    for (int i = 1; i <= o.front_points; ++i) {
        const double frac = static_cast<double>(i) / (o.front_points + 1);
        const int64_t target = path.back().bytes +
                               static_cast<int64_t>(frac * static_cast<double>(int8_cand - path.back().bytes));
        const int k = quant::pick_within(path, target);
        if (k >= 0 && !measured.count(k)) LOWBIT_TRY(eval_state(k, false).status());
    }

    // Outputs.
    const quant::Assignment asg = quant::assignment_of(nodes, path[static_cast<size_t>(chosen)]);
    nlohmann::ordered_json aj = quant::assignment_to_json(asg);
    const Point& cp = points[measured.at(chosen)];
    aj["summary"] = {{"weight_bytes", cp.bytes},
                     {"ratio_vs_int8", static_cast<double>(cp.bytes) / static_cast<double>(int8_bytes)},
                     {"map50_95", cp.map},
                     {"drop", fp32_map - cp.map},
                     {"int4w_weight_share", cp.int4_share}};
    // Pareto: non-dominated measured points (fewer bytes, higher mAP).
    nlohmann::ordered_json pts = nlohmann::ordered_json::array();
    for (size_t i = 0; i < points.size(); ++i) {
        const Point& p = points[i];
        bool dominated = false;
        for (const Point& q : points) {
            if (&q != &p && q.bytes <= p.bytes && q.map >= p.map &&
                (q.bytes < p.bytes || q.map > p.map)) {
                dominated = true;
            }
        }
        pts.push_back({{"source", p.source},
                       {"state", p.state},
                       {"weight_bytes", p.bytes},
                       {"ratio_vs_int8", static_cast<double>(p.bytes) / static_cast<double>(int8_bytes)},
                       {"map50_95", p.map},
                       {"drop", fp32_map - p.map},
                       {"estimated_cost", p.cost},
                       {"int4w_weight_share", p.int4_share},
                       {"formats", p.counts},
                       {"on_front", !dominated},
                       {"chosen", p.state == chosen && p.source == "search"}});
    }
    std::sort(pts.begin(), pts.end(), [](const auto& a, const auto& b) {
        return a["weight_bytes"].template get<int64_t>() < b["weight_bytes"].template get<int64_t>();
    });
    nlohmann::ordered_json est = nlohmann::ordered_json::array();
    for (const auto& s : path) est.push_back({s.bytes + other_bytes, s.cost});
    nlohmann::ordered_json nj = nlohmann::ordered_json::array();
    for (const auto& n : nodes) {
        nlohmann::ordered_json ch = nlohmann::ordered_json::array();
        for (const auto& c : n.choices) {
            ch.push_back({{"format", node_format_name(c.format)}, {"bytes", c.bytes}, {"cost", c.cost}});
        }
        nj.push_back({{"name", n.name}, {"params", n.params}, {"choices", ch}});
    }
    nlohmann::ordered_json pj = {
        {"tool", "lowbit mixed"},
        {"model", o.model},
        {"formats", o.formats},
        {"weight_method", o.weight_method},
        {"block_size", o.block_size},
        {"budget_bytes", o.budget_bytes},
        {"max_drop", want_drop ? nlohmann::ordered_json(o.max_drop) : nlohmann::ordered_json()},
        {"eval_images", ev.max_images},
        {"sensitivity", {{"metric", "output-mse"}, {"images", o.sens_images}}},
        {"fp32_map50_95", fp32_map},
        {"int8", {{"weight_bytes", int8_bytes}, {"map50_95", int8_m.second}}},
        {"other_weight_bytes", other_bytes},
        {"verdict", verdict.empty() ? "ok" : verdict},
        {"points", pts},
        {"estimated_path", {{"columns", {"weight_bytes", "cost"}}, {"rows", est}}},
        {"nodes", nj}};
    if (!verdict.empty()) {
        LOWBIT_TRY(write_file_atomic(pareto_out, pj.dump(1) + "\n"));
        return invalid("{} (nothing but the Pareto front {} written: raise --budget-bytes or "
                       "--max-drop)",
                       verdict, pareto_out);
    }
    (void)best_state;
    LOWBIT_TRY(save_model(best_model, o.out));
    LOWBIT_TRY(write_file_atomic(asg_out, aj.dump(1) + "\n"));
    LOWBIT_TRY(write_file_atomic(pareto_out, pj.dump(1) + "\n"));
    const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    nlohmann::ordered_json summary = {{"model", o.out},
                                      {"assignment", asg_out},
                                      {"pareto", pareto_out},
                                      {"fp32_map50_95", fp32_map},
                                      {"int8_weight_bytes", int8_bytes},
                                      {"chosen", aj["summary"]},
                                      {"formats", cp.counts},
                                      {"evaluations", evals},
                                      {"seconds", seconds}};
    std::fprintf(out, "%s\n", summary.dump(2).c_str());
    return Status::ok();
}

}  // namespace lowbit::pipeline
