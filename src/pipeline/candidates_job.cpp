// `lowbit candidates` as a job (pipeline/jobs.h): the seed's
// materialize_yolov10m_lowbit_candidates.sh plus the evaluation of each candidate
// (research/seed-spec.md §11). One calibration pass serves every scheme
// (pipeline/quantize_variants.h); each candidate is then written as
// <out-dir>/<model-stem>-<mode>-k{K}.onnx, evaluated exactly as `lowbit eval` does, and its
// metrics.json plus a "variant" object go to <results-dir>/<mode>_k{K}.json.
#include <cstdio>
#include <filesystem>
#include <map>
#include <regex>
#include <unordered_set>

#include "onnx/model_io.h"
#include "pipeline/jobs.h"
#include "pipeline/quantize_variants.h"
#include "pipeline/results_file.h"

namespace lowbit::pipeline {

namespace fs = std::filesystem;

namespace {

struct Scheme {
    int k = 0;
    std::string path;
    std::vector<std::string> nodes;
};

// nodes_to_exclude_k{K}.txt of the --ks given (each must exist), else every one in the folder;
// ascending K either way.
Result<std::vector<Scheme>> find_schemes(const std::string& dir, const std::vector<int>& ks) {
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) return io_error("schemes folder {} does not exist", dir);
    std::map<int, std::string> files;
    if (!ks.empty()) {
        for (int k : ks) {
            if (k < 0) return invalid("--ks {}: K must be >= 0", k);
            fs::path p = fs::path(dir) / fmt::format("nodes_to_exclude_k{}.txt", k);
            if (!fs::is_regular_file(p, ec)) {
                return io_error("{} does not exist (run `lowbit schemes --ks ...` first)",
                                p.string());
            }
            files[k] = p.string();
        }
    } else {
        const std::regex re("nodes_to_exclude_k([0-9]+)\\.txt");
        for (const auto& e : fs::directory_iterator(dir, ec)) {
            std::smatch m;
            const std::string name = e.path().filename().string();
            if (e.is_regular_file() && std::regex_match(name, m, re)) {
                files[std::stoi(m[1].str())] = e.path().string();
            }
        }
        if (ec) return io_error("cannot list {}: {}", dir, ec.message());
        if (files.empty()) return invalid("{} holds no nodes_to_exclude_k{{K}}.txt", dir);
    }
    std::vector<Scheme> out;
    for (const auto& [k, path] : files) {
        Scheme s;
        s.k = k;
        s.path = path;
        LOWBIT_ASSIGN(s.nodes, read_node_list(path));
        out.push_back(std::move(s));
    }
    return out;
}

}  // namespace

Status run_job(CandidatesJob o, std::FILE* out) {
    o.eval.imgsz = static_cast<int>(o.calib.imgsz);  // 0: the model's, as calibration
    o.eval.engine = o.engine;
    LOWBIT_ASSIGN(std::string path, resolve_model_path(o.model));
    if (o.schemes.empty()) return invalid("--schemes DIR is required");
    if (o.out_dir.empty()) return invalid("--out-dir DIR is required");
    if (o.results_dir.empty()) {
        o.results_dir = (fs::path(o.out_dir) / ".." / "results").lexically_normal().string();
    }
    quant::QuantizeOptions base;
    LOWBIT_ASSIGN(base.placement.mode, parse_quant_mode(o.mode));
    LOWBIT_ASSIGN(auto method, parse_calib_method_options(o.method));
    std::tie(base.method, base.percentile) = method;
    LOWBIT_ASSIGN(base.high_precision, parse_high_precision(o.high_precision));
    base.model_name = fs::path(path).filename().string();
    base.run.max_samples = o.calib_max;
    base.run.n_threads = o.eval.threads;
    apply_engine_switches(o.engine, base.run);

    LOWBIT_ASSIGN(std::vector<Scheme> schemes, find_schemes(o.schemes, o.ks));
    LOWBIT_ASSIGN(Model model, load_model(path));
    std::unordered_set<std::string> names;
    for (const Node& n : model.graph.nodes) names.insert(n.name);
    std::vector<quant::QuantizeOptions> variants;
    for (const Scheme& s : schemes) {
        for (const std::string& n : s.nodes) {
            if (!names.count(n)) {
                std::fprintf(stderr,
                             "lowbit candidates: warning: %s names '%s', not a node of %s\n",
                             s.path.c_str(), n.c_str(), path.c_str());
            }
        }
        quant::QuantizeOptions q = base;
        q.placement.exclude_names = s.nodes;
        variants.push_back(std::move(q));
    }

    o.calib.imgsz = image_size_for(model, o.calib.imgsz);
    LOWBIT_ASSIGN(std::unique_ptr<calib::CalibSource> source, open_calib_input(o.calib));
    if (!source)
        return invalid("no calibration data: give --calib, --calib-list or --calib-images");
    std::fprintf(stderr, "lowbit candidates: %zu schemes from %s; calibrating once on %s\n",
                 schemes.size(), o.schemes.c_str(), source->describe().c_str());
    LOWBIT_ASSIGN(pipeline::VariantsResult vr,
                  pipeline::quantize_variants(model, *source, variants, base.run));
    std::fprintf(stderr, "lowbit candidates: calibrated %zu tensors on %lld samples in %.1f s\n",
                 vr.calibrated_tensors, static_cast<long long>(vr.samples), vr.calib_seconds);

    std::error_code ec;
    fs::create_directories(o.out_dir, ec);
    if (ec) return io_error("cannot create {}: {}", o.out_dir, ec.message());
    const std::string stem = fs::path(path).stem().string();
    struct Row {
        std::string name;
        int64_t excluded, quantized;
        double map, map50, mean_ms, median_ms, spread_ms;
        std::string onnx;
    };
    std::vector<Row> rows;
    for (size_t i = 0; i < schemes.size(); ++i) {
        const Scheme& s = schemes[i];
        quant::QuantizeResult& res = vr.variants[i];
        const std::string name = fmt::format("{}_k{}", o.mode, s.k);
        const std::string onnx =
            (fs::path(o.out_dir) / fmt::format("{}-{}-k{}.onnx", stem, o.mode, s.k)).string();
        for (const auto& n : res.notes) std::fprintf(stderr, "lowbit candidates: %s\n", n.c_str());
        LOWBIT_TRY(save_model(res.model, onnx));
        VariantInfo vi;
        vi.name = name;
        vi.mode = o.mode;
        vi.k = s.k;
        vi.excluded_nodes = static_cast<int64_t>(s.nodes.size());
        vi.calibration_method = calib::calib_method_name(base.method);
        vi.scheme = s.path;
        const nlohmann::ordered_json variant = variant_json(vi, res.model.graph, onnx);
        res = quant::QuantizeResult();  // the model is on disk; free it before evaluating
        std::fprintf(
            stderr, "lowbit candidates: [%zu/%zu] %s: %zu excluded, %lld quantized nodes -> %s\n",
            i + 1, schemes.size(), name.c_str(), s.nodes.size(),
            static_cast<long long>(variant["quantized_nodes"].get<int64_t>()), onnx.c_str());

        EvalJob eo = o.eval;
        eo.model = onnx;
        LOWBIT_ASSIGN(EvalRun er, evaluate_model_file(eo));
        const std::string out = (fs::path(o.results_dir) / (name + ".json")).string();
        LOWBIT_TRY(write_results_json(out, eval_metrics_json(er.info, er.result), variant));
        std::fprintf(stderr,
                     "lowbit candidates: [%zu/%zu] %s: mAP50-95 %.4f, mean %.2f ms, median %.2f "
                     "+/- %.2f ms -> %s\n",
                     i + 1, schemes.size(), name.c_str(), er.result.coco.stats[0],
                     er.result.latency.mean_ms, er.result.latency.median_ms,
                     er.result.latency.spread_ms, out.c_str());
        rows.push_back({name, vi.excluded_nodes, variant["quantized_nodes"].get<int64_t>(),
                        er.result.coco.stats[0], er.result.coco.stats[1], er.result.latency.mean_ms,
                        er.result.latency.median_ms, er.result.latency.spread_ms, onnx});
    }
    std::fprintf(out, "%-12s %8s %9s %9s %9s %9s %9s %9s  %s\n", "variant", "excluded", "quantized",
                 "mAP50-95", "mAP50", "mean_ms", "median_ms", "spread_ms", "onnx");
    for (const Row& r : rows) {
        std::fprintf(out, "%-12s %8lld %9lld %9.4f %9.4f %9.3f %9.3f %9.3f  %s\n", r.name.c_str(),
                     static_cast<long long>(r.excluded), static_cast<long long>(r.quantized), r.map,
                     r.map50, r.mean_ms, r.median_ms, r.spread_ms, r.onnx.c_str());
    }
    std::fflush(out);
    return Status::ok();
}

}  // namespace lowbit::pipeline
