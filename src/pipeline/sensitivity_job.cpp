// `lowbit sensitivity` as a job (pipeline/jobs.h): quant::run_sensitivity on a model file, the
// ranked report.json and report.md written (or the JSON to the stream when no --out).
#include <cstdio>
#include <filesystem>

#include "calib/calib_source.h"
#include "core/fs.h"
#include "core/path_guard.h"
#include "onnx/model_io.h"
#include "pipeline/jobs.h"
#include "quant/sensitivity/sensitivity.h"
#include "report/sensitivity_writer.h"

namespace lowbit::pipeline {

namespace fs = std::filesystem;

namespace {

// The sweep's options from the job's (o.model resolved).
Result<quant::SensitivityOptions> sensitivity_options(const SensitivityJob& o) {
    quant::SensitivityOptions so;
    if (o.mode == "w4a8" || o.mode == "w4a16" || o.mode == "int4") {
        // INT4 weights (RTN, per channel), fake-quantized one node at a time: with INT8
        // activations (w4a8) or float activations (w4a16 / int4).
        so.quant.placement.mode = quant::QuantMode::Int8;
        so.quant.int4.enabled = true;
        so.quant.weights_only = o.mode != "w4a8";
    } else {
        LOWBIT_ASSIGN(so.quant.placement.mode, parse_quant_mode(o.mode));
    }
    LOWBIT_ASSIGN(auto method, parse_calib_method_options(o.method));
    std::tie(so.quant.method, so.quant.percentile) = method;
    LOWBIT_ASSIGN(so.metric, quant::parse_sensitivity_metric(o.metric));
    if (o.images <= 0) return invalid("--images {}: give at least 1", o.images);
    if (o.val_images <= 0) return invalid("--val-images {}: give at least 1", o.val_images);
    so.images = o.images;
    so.all_but_one = o.all_but_one;
    so.naive = o.naive;
    so.local_probes = !o.reference_runs && !so.quant.int4.enabled;  // probes hold INT8 weights
    so.n_threads = o.threads;
    so.progress = !o.quiet;
    so.quant.run.n_threads = o.threads;
    apply_engine_switches(o.engine, so.quant.run);
    so.quant.run.progress = !o.quiet;
    LOWBIT_TRY(apply_placement_options(o.placement, so.quant.placement));
    LOWBIT_ASSIGN(so.quant.input_shapes, parse_input_shapes(o.input_shapes));
    so.quant.model_name = fs::path(o.model).filename().string();

    if (so.metric == quant::SensitivityMetric::Map) {
        EvalJob ev;
        ev.data_root = o.data;
        LOWBIT_TRY(resolve_eval_data(ev));
        so.eval.ann_path = ev.ann;
        so.eval.images_dir = ev.images;
        so.eval.max_images = o.val_images;
        so.eval.n_threads = o.threads;
    } else if (!o.data.empty()) {
        return invalid("--data is for --metric map");
    }
    if (o.shard.active()) {
        so.shard_index = o.shard.index;
        so.shard_count = o.shard.count;
    }
    return so;
}

// What `lowbit sensitivity` writes (or prints) for a finished sweep.
Status write_sensitivity_outputs(const SensitivityJob& o, const report::SensitivityRunInfo& info,
                                 const quant::SensitivityOptions& so,
                                 const quant::SensitivityReport& r, std::FILE* out) {
    const nlohmann::ordered_json j = report::sensitivity_json(info, so, r);
    if (o.out.empty()) {
        std::fprintf(out, "%s\n", j.dump(1).c_str());
        return Status::ok();
    }
    const fs::path out_path(o.out);
    if (out_path.has_parent_path()) {
        std::error_code ec;
        fs::create_directories(out_path.parent_path(), ec);
        if (ec) {
            return io_error("cannot create folder {} for --out: {}",
                            out_path.parent_path().string(), ec.message());
        }
    }
    fs::path md = out_path;
    md.replace_extension(".md");
    if (md == out_path) md += ".md";
    LOWBIT_TRY(write_file_atomic(o.out, j.dump(1) + "\n"));
    LOWBIT_TRY(write_file_atomic(md.string(), report::sensitivity_markdown(info, so, r)));
    if (!o.quiet) {
        std::fprintf(stderr, "lowbit sensitivity: wrote %s and %s; most sensitive:\n",
                     o.out.c_str(), md.string().c_str());
        for (size_t k = 0; k < r.nodes.size() && k < 5; ++k) {
            const auto& n = r.nodes[k];
            std::fprintf(stderr, "  %d. %s (%s) score %.4g\n", n.rank, n.name.c_str(),
                         n.op_type.c_str(), n.score);
        }
    }
    return Status::ok();
}

nlohmann::ordered_json node_json(const quant::NodeSensitivity& n) {
    return {{"measured", n.measured}, {"node", n.node},         {"name", n.name},
            {"op_type", n.op_type},   {"scope", n.scope},       {"macs", n.macs},
            {"macs_share", n.macs_share}, {"cone_nodes", n.cone_nodes}, {"rank", n.rank},
            {"score", n.score},       {"metrics", n.metrics}};
}

quant::NodeSensitivity node_from_json(const nlohmann::json& j) {
    quant::NodeSensitivity n;
    n.measured = j.at("measured").get<size_t>();
    n.node = j.at("node").get<size_t>();
    n.name = j.at("name").get<std::string>();
    n.op_type = j.at("op_type").get<std::string>();
    n.scope = j.at("scope").get<std::string>();
    n.macs = j.at("macs").get<int64_t>();
    n.macs_share = j.at("macs_share").get<double>();
    n.cone_nodes = j.at("cone_nodes").get<size_t>();
    n.rank = j.at("rank").get<int>();
    n.score = j.at("score").get<double>();
    n.metrics = nlohmann::ordered_json(j.at("metrics"));
    return n;
}

// A shard's report as stored in its shard file (doubles round-trip).
nlohmann::ordered_json report_json(const quant::SensitivityReport& r) {
    nlohmann::ordered_json nodes = nlohmann::ordered_json::array();
    for (const auto& n : r.nodes) nodes.push_back(node_json(n));
    const quant::SensitivityCost& c = r.cost;
    return {{"images", r.images},
            {"calib_samples", r.calib_samples},
            {"calib_seconds", r.calib_seconds},
            {"method", r.method},
            {"reference", r.reference},
            {"notes", r.notes},
            {"cost",
             {c.full_pass_ms, c.fused_full_pass_ms, c.fused_passes_per_image, c.sweep_seconds,
              c.passes_per_image, c.naive_passes_per_image, c.ratio_vs_naive, c.naive_measured,
              c.quant_kernel_nodes}},
            {"sums",
             {{"nodes", r.sums.nodes},
              {"width", r.sums.width},
              {"extra", r.sums.extra},
              {"images", r.sums.images},
              {"rows", r.sums.rows}}},
            {"nodes", nodes}};
}

quant::SensitivityReport report_from_json(const nlohmann::json& j) {
    quant::SensitivityReport r;
    r.images = j.at("images").get<int64_t>();
    r.calib_samples = j.at("calib_samples").get<int64_t>();
    r.calib_seconds = j.at("calib_seconds").get<double>();
    r.method = j.at("method").get<std::string>();
    r.reference = nlohmann::ordered_json(j.at("reference"));
    r.notes = j.at("notes").get<std::vector<std::string>>();
    const auto& c = j.at("cost");
    quant::SensitivityCost& k = r.cost;
    k.full_pass_ms = c.at(0).get<double>();
    k.fused_full_pass_ms = c.at(1).get<double>();
    k.fused_passes_per_image = c.at(2).get<double>();
    k.sweep_seconds = c.at(3).get<double>();
    k.passes_per_image = c.at(4).get<double>();
    k.naive_passes_per_image = c.at(5).get<double>();
    k.ratio_vs_naive = c.at(6).get<double>();
    k.naive_measured = c.at(7).get<bool>();
    k.quant_kernel_nodes = c.at(8).get<int64_t>();
    const auto& s = j.at("sums");
    r.sums.nodes = s.at("nodes").get<size_t>();
    r.sums.width = s.at("width").get<size_t>();
    r.sums.extra = s.at("extra").get<size_t>();
    r.sums.images = s.at("images").get<std::vector<int64_t>>();
    r.sums.rows = s.at("rows").get<std::vector<std::vector<double>>>();
    for (const auto& n : j.at("nodes")) r.nodes.push_back(node_from_json(n));
    return r;
}

}  // namespace

nlohmann::ordered_json sensitivity_job_json(const SensitivityJob& o) {
    return {{"model", o.model},
            {"mode", o.mode},
            {"calib_npy", o.calib.npy},
            {"calib_list", o.calib.list},
            {"calib_images", o.calib.images},
            {"imgsz", o.calib.imgsz},
            {"calibration_method", o.method.method},
            {"percentile", o.method.percentile},
            {"images", o.images},
            {"metric", o.metric},
            {"all_but_one", o.all_but_one},
            {"naive", o.naive},
            {"reference_runs", o.reference_runs},
            {"out", o.out},
            {"threads", o.threads},
            {"exclude_files", o.placement.exclude_files},
            {"exclude", o.placement.exclude},
            {"nodes_to_exclude", o.placement.nodes_to_exclude},
            {"op_types", o.placement.op_types},
            {"exclude_op_types", o.placement.exclude_op_types},
            {"modelopt_parity", o.placement.modelopt_parity},
            {"disable_mha_qdq", o.placement.disable_mha_qdq},
            {"placement", o.placement.placement},
            {"input_shapes", o.input_shapes},
            {"data", o.data},
            {"val_images", o.val_images}};
}

Result<SensitivityJob> sensitivity_job_from_json(const nlohmann::json& j) {
    SensitivityJob o;
    try {
        o.model = j.at("model").get<std::string>();
        o.mode = j.at("mode").get<std::string>();
        o.calib.npy = j.at("calib_npy").get<std::string>();
        o.calib.list = j.at("calib_list").get<std::string>();
        o.calib.images = j.at("calib_images").get<std::vector<std::string>>();
        o.calib.imgsz = j.at("imgsz").get<int64_t>();
        o.method.method = j.at("calibration_method").get<std::string>();
        o.method.percentile = j.at("percentile").get<double>();
        o.images = j.at("images").get<int64_t>();
        o.metric = j.at("metric").get<std::string>();
        o.all_but_one = j.at("all_but_one").get<bool>();
        o.naive = j.at("naive").get<bool>();
        o.reference_runs = j.at("reference_runs").get<bool>();
        o.out = j.at("out").get<std::string>();
        o.threads = j.at("threads").get<int>();
        o.placement.exclude_files = j.at("exclude_files").get<std::vector<std::string>>();
        o.placement.exclude = j.at("exclude").get<std::vector<std::string>>();
        o.placement.nodes_to_exclude = j.at("nodes_to_exclude").get<std::vector<std::string>>();
        o.placement.op_types = j.at("op_types").get<std::vector<std::string>>();
        o.placement.exclude_op_types = j.at("exclude_op_types").get<std::vector<std::string>>();
        o.placement.modelopt_parity = j.at("modelopt_parity").get<bool>();
        o.placement.disable_mha_qdq = j.at("disable_mha_qdq").get<bool>();
        // Records written before --placement existed ran ModelOpt's rules.
        o.placement.placement = j.value("placement", std::string("modelopt"));
        o.input_shapes = j.at("input_shapes").get<std::vector<std::string>>();
        o.data = j.at("data").get<std::string>();
        o.val_images = j.at("val_images").get<int>();
    } catch (const std::exception& e) {
        return invalid("sensitivity job record: {}", e.what());
    }
    return o;
}

Status merge_sensitivity_shards(const std::vector<nlohmann::json>& shards, std::FILE* out) {
    if (shards.empty()) return invalid("no sensitivity shards");
    LOWBIT_ASSIGN(SensitivityJob o, sensitivity_job_from_json(shards.front().at("job")));
    LOWBIT_ASSIGN(quant::SensitivityOptions so, sensitivity_options(o));
    std::vector<quant::SensitivityReport> parts;
    std::string source_name;
    try {
        source_name = shards.front().at("partial").at("source").get<std::string>();
        for (const nlohmann::json& s : shards) {
            parts.push_back(report_from_json(s.at("partial").at("report")));
        }
    } catch (const std::exception& e) {
        return invalid("sensitivity shard record: {}", e.what());
    }
    LOWBIT_ASSIGN(quant::SensitivityReport rep, quant::merge_sensitivity(so, std::move(parts)));
    report::SensitivityRunInfo info{o.model, o.mode, source_name};
    return write_sensitivity_outputs(o, info, so, rep, out);
}

Status run_job(SensitivityJob o, std::FILE* out) {
    LOWBIT_ASSIGN(o.model, resolve_model_path(o.model));
    LOWBIT_ASSIGN(quant::SensitivityOptions so, sensitivity_options(o));

    auto model = load_model(o.model);
    if (!model) return model.status();
    LOWBIT_TRY(check_exclusion_files(o.placement, model->graph, o.model));

    // Calibration input; by default the bundled list at the model's input size.
    CalibInputOptions ci = o.calib;
    ci.imgsz = image_size_for(*model, ci.imgsz);
    std::string source_name;
    if (ci.npy.empty() && ci.list.empty() && ci.images.empty()) {
        const std::string assets = assets_dir();
        const fs::path list = fs::path(assets) / "calib" / "calib100.txt";
        std::error_code ec;
        if (assets.empty() || !fs::is_regular_file(list, ec)) {
            return invalid(
                "no calibration data given and the bundled list (assets/calib/calib100.txt) was "
                "not found{}; pass --calib FILE.npy, --calib-list FILE or --calib-images DIR",
                assets_not_found_note());
        }
        ci.list = list.string();
    }
    // report.md is written beside --out.
    const fs::path out_path(o.out);
    fs::path md = out_path;
    md.replace_extension(".md");
    if (md == out_path) md += ".md";
    {
        PathRoles roles;
        roles.input("MODEL", o.model);
        declare_calib_inputs(ci, roles);
        if (o.calib.list.empty() && !ci.list.empty()) {
            roles.inputs.back().flag = "--calib-list (the bundled default)";
        }
        declare_placement_inputs(o.placement, roles);
        roles.input("--data (annotations)", so.eval.ann_path);
        roles.output("--out", o.out);
        if (!o.out.empty()) roles.output("--out (report.md beside it)", md.string());
        LOWBIT_TRY(check_path_roles(roles));
    }
    source_name = !ci.npy.empty()    ? ci.npy
                  : !ci.list.empty() ? ci.list
                                     : fmt::format("{} (images)", fmt::join(ci.images, " "));
    LOWBIT_ASSIGN(std::unique_ptr<calib::CalibSource> source, open_calib_input(ci));
    if (!source) return invalid("no calibration source");
    if (!o.quiet) {
        std::fprintf(stderr, "lowbit sensitivity: %s, %s, %s; calibrating on %s\n", o.model.c_str(),
                     o.mode.c_str(), o.metric.c_str(), source->describe().c_str());
    }

    auto rep = quant::run_sensitivity(*model, *source, so);
    if (!rep) return rep.status().with_context(o.model);

    report::SensitivityRunInfo info{o.model, o.mode, source_name};
    const quant::SensitivityCost& c = rep->cost;
    std::fprintf(stderr,
                 "lowbit sensitivity: %zu nodes x %lld images in %.1f s: %.2f full-pass "
                 "equivalents per image (full pass %.2f ms; %.2f default fused passes of %.2f "
                 "ms), naive %.1f (%s), ratio %.3f\n",
                 rep->nodes.size(), static_cast<long long>(rep->images), c.sweep_seconds,
                 c.passes_per_image, c.full_pass_ms, c.fused_passes_per_image, c.fused_full_pass_ms,
                 c.naive_passes_per_image, c.naive_measured ? "measured" : "nodes x full pass",
                 c.ratio_vs_naive);
    for (const auto& n : rep->notes) std::fprintf(stderr, "lowbit sensitivity: %s\n", n.c_str());
    if (o.shard.active()) {
        std::vector<std::string> inputs = {o.model};
        if (!o.calib.npy.empty()) inputs.push_back(o.calib.npy);
        if (!o.calib.list.empty()) inputs.push_back(o.calib.list);
        LOWBIT_ASSIGN(ShardHeader h, make_shard_header("sensitivity", sensitivity_job_json(o),
                                                       inputs, o.shard));
        LOWBIT_TRY(write_shard(o.shard, h, {{"source", source_name}, {"report", report_json(*rep)}}));
        std::fprintf(out, "shard %d/%d: %zu nodes, %zu images -> %s\n", o.shard.index,
                     o.shard.count, rep->nodes.size(), rep->sums.images.size(),
                     shard_file(o.shard.dir, o.shard.index, o.shard.count).c_str());
        std::fflush(out);
        return Status::ok();
    }
    return write_sensitivity_outputs(o, info, so, *rep, out);
}

}  // namespace lowbit::pipeline
