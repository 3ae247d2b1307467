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

#include "core/path_guard.h"
#include "data/coco.h"
#include "onnx/model_io.h"
#include "pipeline/run_modes.h"
#include "pipeline/jobs.h"
#include "pipeline/quantize_variants.h"
#include "pipeline/results_file.h"
#include "core/fs.h"

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

struct Row {
    std::string name;
    int64_t excluded, quantized;
    double map, map50, mean_ms, median_ms, spread_ms;
    std::string onnx;
};

void print_rows(const std::vector<Row>& rows, std::FILE* out) {
    std::fprintf(out, "%-12s %8s %9s %9s %9s %9s %9s %9s  %s\n", "variant", "excluded", "quantized",
                 "mAP50-95", "mAP50", "mean_ms", "median_ms", "spread_ms", "onnx");
    for (const Row& r : rows) {
        std::fprintf(out, "%-12s %8lld %9lld %9.4f %9.4f %9.3f %9.3f %9.3f  %s\n", r.name.c_str(),
                     static_cast<long long>(r.excluded), static_cast<long long>(r.quantized), r.map,
                     r.map50, r.mean_ms, r.median_ms, r.spread_ms, r.onnx.c_str());
    }
    std::fflush(out);
}

}  // namespace

nlohmann::ordered_json candidates_job_json(const CandidatesJob& o) {
    nlohmann::ordered_json eval = eval_job_json(o.eval);
    return {{"model", o.model},
            {"schemes", o.schemes},
            {"mode", o.mode},
            {"ks", o.ks},
            {"calib_npy", o.calib.npy},
            {"calib_list", o.calib.list},
            {"calib_images", o.calib.images},
            {"imgsz", o.calib.imgsz},
            {"calibration_method", o.method.method},
            {"percentile", o.method.percentile},
            {"calib_max", o.calib_max},
            {"high_precision", o.high_precision},
            {"out_dir", o.out_dir},
            {"results_dir", o.results_dir},
            {"eval", eval}};
}

Status merge_candidates_shards(const std::vector<nlohmann::json>& shards, std::FILE* out) {
    struct Entry {
        size_t position;
        std::string path;
        nlohmann::ordered_json results;
        Row row;
    };
    std::vector<Entry> entries;
    size_t total = 0;
    try {
        total = shards.front().at("partial").at("schemes").get<size_t>();
        for (const nlohmann::json& s : shards) {
            for (const auto& e : s.at("partial").at("candidates")) {
                const auto& r = e.at("row");
                entries.push_back({e.at("position").get<size_t>(), e.at("path").get<std::string>(),
                                   nlohmann::ordered_json(e.at("results")),
                                   {r.at(0).get<std::string>(), r.at(1).get<int64_t>(),
                                    r.at(2).get<int64_t>(), r.at(3).get<double>(),
                                    r.at(4).get<double>(), r.at(5).get<double>(),
                                    r.at(6).get<double>(), r.at(7).get<double>(),
                                    r.at(8).get<std::string>()}});
            }
        }
    } catch (const std::exception& e) {
        return invalid("candidates shard record: {}", e.what());
    }
    std::sort(entries.begin(), entries.end(),
              [](const Entry& a, const Entry& b) { return a.position < b.position; });
    for (size_t i = 0; i < entries.size() || i < total; ++i) {
        if (i >= entries.size() || entries[i].position != i) {
            return invalid("candidates shards: scheme {} of {} evaluated twice or not at all", i,
                           total);
        }
    }
    std::vector<Row> rows;
    for (const Entry& e : entries) {
        LOWBIT_TRY(write_results_json(e.path, e.results, e.results["variant"]));
        rows.push_back(e.row);
    }
    print_rows(rows, out);
    return Status::ok();
}

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
    LOWBIT_TRY(apply_variant_mode(o.mode, base));
    LOWBIT_ASSIGN(auto method, parse_calib_method_options(o.method));
    std::tie(base.method, base.percentile) = method;
    LOWBIT_ASSIGN(base.high_precision, parse_high_precision(o.high_precision));
    base.model_name = fs::path(path).filename().string();
    base.run.max_samples = o.calib_max;
    base.run.n_threads = o.eval.threads;
    apply_engine_switches(o.engine, base.run);

    // Everything is checked before the first model is written: the schemes, the evaluation's
    // data (ground truth parsed), the paths, the scheme names against the model.
    LOWBIT_ASSIGN(std::vector<Scheme> schemes, find_schemes(o.schemes, o.ks));
    const size_t all_schemes = schemes.size();
    std::vector<size_t> positions;  // of this shard's schemes among all
    {
        std::vector<Scheme> mine;
        for (size_t i = 0; i < schemes.size(); ++i) {
            if (o.shard.active() && static_cast<int>(i % static_cast<size_t>(o.shard.count)) !=
                                        o.shard.index) {
                continue;
            }
            positions.push_back(i);
            mine.push_back(std::move(schemes[i]));
        }
        schemes = std::move(mine);
    }
    LOWBIT_TRY(check_eval_inputs(o.eval));
    const std::string stem = fs::path(path).stem().string();
    auto onnx_path = [&](const Scheme& s) {
        return (fs::path(o.out_dir) / fmt::format("{}-{}-k{}.onnx", stem, o.mode, s.k)).string();
    };
    auto results_path = [&](const Scheme& s) {
        return (fs::path(o.results_dir) / fmt::format("{}_k{}.json", o.mode, s.k)).string();
    };
    {
        EvalJob data = o.eval;
        LOWBIT_TRY(resolve_eval_data(data));
        PathRoles roles;
        roles.input("MODEL", path);
        for (const Scheme& s : schemes) roles.input("--schemes", s.path);
        declare_calib_inputs(o.calib, roles);
        roles.input("--ann", data.ann);
        roles.input("--images", data.images);
        roles.input("--image-ids-list", data.image_ids_list);
        roles.input("--class-map", data.class_map);
        for (const Scheme& s : schemes) {
            roles.output("--out-dir", onnx_path(s));
            roles.output("--results-dir", results_path(s));
        }
        LOWBIT_TRY(check_path_roles(roles));
    }
    LOWBIT_ASSIGN(Model model, load_model(path));
    std::vector<quant::QuantizeOptions> variants;
    for (const Scheme& s : schemes) {
        LOWBIT_TRY(check_node_names(s.nodes, s.path, model.graph, path));
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
    pipeline::VariantsResult vr;  // a shard may have no scheme (more shards than schemes)
    if (!variants.empty()) {
        LOWBIT_ASSIGN(vr, pipeline::quantize_variants(model, *source, variants, base.run));
    }
    for (const std::string& w : vr.warnings) {
        std::fprintf(stderr, "lowbit candidates: warning: %s\n", w.c_str());
    }
    std::fprintf(stderr, "lowbit candidates: calibrated %zu tensors on %lld samples in %.1f s\n",
                 vr.calibrated_tensors, static_cast<long long>(vr.samples), vr.calib_seconds);

    std::error_code ec;
    fs::create_directories(o.out_dir, ec);
    if (ec) return io_error("cannot create {}: {}", o.out_dir, ec.message());
    std::vector<Row> rows;
    nlohmann::ordered_json shard_entries = nlohmann::ordered_json::array();
    for (size_t i = 0; i < schemes.size(); ++i) {
        const Scheme& s = schemes[i];
        quant::QuantizeResult& res = vr.variants[i];
        const std::string name = fmt::format("{}_k{}", o.mode, s.k);
        const std::string onnx = onnx_path(s);
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
        const std::string out = results_path(s);
        nlohmann::ordered_json results = eval_metrics_json(er.info, er.result);
        results["variant"] = variant;
        if (!o.shard.active()) LOWBIT_TRY(write_results_json(out, results, variant));
        std::fprintf(stderr,
                     "lowbit candidates: [%zu/%zu] %s: mAP50-95 %.4f, mean %.2f ms, median %.2f "
                     "+/- %.2f ms -> %s\n",
                     i + 1, schemes.size(), name.c_str(), er.result.coco.stats[0],
                     er.result.latency.mean_ms, er.result.latency.median_ms,
                     er.result.latency.spread_ms, out.c_str());
        rows.push_back({name, vi.excluded_nodes, variant["quantized_nodes"].get<int64_t>(),
                        er.result.coco.stats[0], er.result.coco.stats[1], er.result.latency.mean_ms,
                        er.result.latency.median_ms, er.result.latency.spread_ms, onnx});
        const Row& r = rows.back();
        shard_entries.push_back(
            {{"position", positions[i]},
             {"path", out},
             {"results", results},
             {"row", {r.name, r.excluded, r.quantized, r.map, r.map50, r.mean_ms, r.median_ms,
                      r.spread_ms, r.onnx}}});
    }
    if (o.shard.active()) {
        std::vector<std::string> inputs = {path, o.schemes};
        if (!o.calib.npy.empty()) inputs.push_back(o.calib.npy);
        if (!o.calib.list.empty()) inputs.push_back(o.calib.list);
        LOWBIT_ASSIGN(ShardHeader h,
                      make_shard_header("candidates", candidates_job_json(o), inputs, o.shard));
        LOWBIT_TRY(write_shard(o.shard, h,
                               {{"schemes", all_schemes}, {"candidates", shard_entries}}));
        std::fprintf(out, "shard %d/%d: %zu of %zu candidates -> %s\n", o.shard.index,
                     o.shard.count, rows.size(), all_schemes,
                     shard_file(o.shard.dir, o.shard.index, o.shard.count).c_str());
        std::fflush(out);
        return Status::ok();
    }
    print_rows(rows, out);
    return Status::ok();
}

}  // namespace lowbit::pipeline
