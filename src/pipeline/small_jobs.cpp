// `lowbit calib`, `head-exclude`, `schemes` and `compare` as jobs (pipeline/jobs.h).
#include <cstdio>
#include <filesystem>
#include <optional>

#include "core/fs.h"
#include "core/path_guard.h"
#include "core/progress.h"
#include "data/calib_tensor.h"
#include "data/image_list.h"
#include "eval/latency.h"
#include "onnx/model_io.h"
#include "pipeline/job_inputs.h"
#include "pipeline/jobs.h"
#include "pipeline/node_latency.h"
#include "quant/head_exclude.h"
#include "report/compare.h"
#include "report/html_report.h"
#include "report/mixed_pareto.h"
#include "report/schemes.h"

namespace lowbit::pipeline {

namespace fs = std::filesystem;

namespace {

// The files `schemes` writes into its --out-dir (report/schemes.cpp write_schemes).
std::vector<std::string> schemes_files(const std::vector<int>& ks) {
    std::vector<std::string> out;
    for (int k : ks) {
        out.push_back(fmt::format("nodes_to_exclude_k{}.txt", k));
        out.push_back(fmt::format("scheme_k{}.json", k));
    }
    out.push_back("candidates.md");
    return out;
}

// compare --interleave-rounds: every variant's model timed on this machine in interleaved
// rounds (node_latency.h measure_interleaved: a constant input of the evaluated size, warm-up
// rounds first, each timed run right after an untimed run of the same model, so that it finds
// its own weights in the caches as when it runs back to back, not the previous variant's); each
// model's whole-run times replace its results file's latency.
Status retime_interleaved(std::vector<report::Variant>& variants, const CompareJob& o) {
    std::vector<Model> models;
    models.reserve(variants.size());
    LatencyOptions lo;
    lo.runs = o.interleave_rounds;
    lo.warmup = 2;
    lo.exec.n_threads = o.threads;
    lo.rotate = true;
    lo.turn_warmup = 1;
    for (const report::Variant& v : variants) {
        const std::optional<std::string> path = report::variant_onnx_file(v);
        if (!path) {
            return invalid(
                "{}: --interleave-rounds: its model '{}' was not found (as written, or next to "
                "the results file); drop --interleave-rounds to compare the recorded latencies",
                v.file, v.onnx_path);
        }
        LOWBIT_ASSIGN(Model m, load_model(*path));
        // A symbolic image input runs at the size this variant was evaluated at.
        std::map<std::string, Shape>& shapes = lo.model_input_shapes.emplace_back();
        const ValueInfo* in = image_input(m);
        auto imgsz = v.params.find("imgsz");
        if (in && !fixed_image_shape(in) && imgsz != v.params.end() && imgsz->is_number_integer()) {
            const int64_t s = imgsz->get<int64_t>();
            shapes[in->name] = {1, 3, s, s};
        }
        models.push_back(std::move(m));
    }
    std::vector<const Model*> ptrs;
    for (const Model& m : models) ptrs.push_back(&m);
    std::fprintf(stderr, "lowbit compare: timing %zu models in %d interleaved rounds\n",
                 models.size(), o.interleave_rounds);
    Progress progress("compare: timing", lo.warmup + lo.runs, "round");
    lo.progress = &progress;
    auto timed = measure_interleaved(ptrs, {}, lo);
    progress.finish();
    if (!timed) return timed.status().with_context("compare --interleave-rounds");
    for (size_t i = 0; i < variants.size(); ++i) {
        const LatencyStats s = latency_stats_ms((*timed)[i].run_samples_ms);
        report::Variant& v = variants[i];
        v.mean_ms = s.mean_ms;
        v.median_ms = s.median_ms;
        v.p90_ms = s.p90_ms;
        v.p10_ms = s.p10_ms;
        v.spread_ms = s.spread_ms;
        v.median_ci_ms = std::make_pair(s.median_ci_low_ms, s.median_ci_high_ms);
        v.median_ci_level = s.median_ci_level;
        v.latency_samples = s.samples;
        v.round_ms = (*timed)[i].run_samples_ms;
        v.latency_source = fmt::format(
            "{} interleaved rounds of every variant's model (one timed run each a round, right "
            "after an untimed one of the same model, the order rotating, after 2 warm-up rounds), "
            "{}, constant input; the samples are whole-model run times, and two variants compare "
            "round by round",
            o.interleave_rounds,
            o.threads == 1 ? "1 thread"
                           : (o.threads > 1 ? fmt::format("{} threads", o.threads) : "all cores"));
    }
    return Status::ok();
}

}  // namespace

Status run_job(const CalibJob& o, std::FILE* out) {
    if (o.list.empty() == o.images_dir.empty()) {
        return invalid("give exactly one of --list FILE or --images DIR");
    }
    std::vector<std::string> images;
    if (!o.list.empty()) {
        LOWBIT_ASSIGN(images, read_image_list(o.list, o.data_root));
    } else {
        LOWBIT_ASSIGN(images, list_image_dir(o.images_dir));
    }
    if (o.max_images > 0 && images.size() > static_cast<size_t>(o.max_images)) {
        images.resize(static_cast<size_t>(o.max_images));
    }
    {
        PathRoles roles;
        roles.input("--list", o.list);
        roles.input("--images", o.images_dir);
        for (const std::string& img : images) roles.input("image", img);
        roles.output("--out", o.out);
        LOWBIT_TRY(check_path_roles(roles));
    }
    std::filesystem::path parent = std::filesystem::path(o.out).parent_path();
    if (!parent.empty()) {
        std::error_code ec;
        std::filesystem::create_directories(parent, ec);
        if (ec) return io_error("cannot create {}: {}", parent.string(), ec.message());
    }
    CalibOptions co;
    co.imgsz = o.imgsz;
    co.n_threads = o.threads;
    {
        Progress progress("calib", static_cast<int64_t>(images.size()), "img");
        LOWBIT_TRY(write_calib_npy(images, o.out, co, &progress));
    }
    std::fprintf(out, "%s: float32 [%zu, 3, %d, %d]\n", o.out.c_str(), images.size(), o.imgsz,
                 o.imgsz);
    return Status::ok();
}

Status run_job(const HeadExcludeJob& o, std::FILE* out) {
    auto path = resolve_model_path(o.model);
    if (!path) return path.status();
    {
        PathRoles roles;
        roles.input("MODEL", *path);
        roles.output("--out", o.out);
        LOWBIT_TRY(check_path_roles(roles));
    }
    auto model = load_model(*path);
    if (!model) return model.status();
    quant::HeadExcludeOptions ho;
    ho.scope = o.scope;
    ho.op_types = o.op_types;
    auto r = quant::head_exclusion_list(model->graph, ho);
    if (!r) return r.status().with_context(*path);
    std::string text;
    for (const auto& n : r->nodes) text += n + "\n";
    if (Status st = write_file_atomic(o.out, text); !st) return st;
    std::fprintf(stderr, "lowbit head-exclude: head scope %s (%s)\n",
                 r->scope.empty() ? "-" : r->scope.c_str(), r->method.c_str());
    std::fprintf(out, "%zu\n", r->nodes.size());
    std::fprintf(stderr, "lowbit head-exclude: wrote %zu node names to %s\n", r->nodes.size(),
                 o.out.c_str());
    return Status::ok();
}

Status run_job(const SchemesJob& o, std::FILE* out) {
    LOWBIT_ASSIGN(report::SensitivityReport rep, report::load_sensitivity_report(o.report));
    {
        PathRoles roles;
        roles.input("--report", o.report);
        roles.input("--model", o.model);
        for (const std::string& f : schemes_files(o.ks)) {
            roles.output("--out-dir", (fs::path(o.out_dir) / f).string());
        }
        LOWBIT_TRY(check_path_roles(roles));
    }
    const bool torch = rep.kind == report::SensitivityReport::Kind::Torch;

    report::SchemeOptions so;
    so.ks = o.ks;
    so.top_n_md = o.top_n_md;
    so.calibration_method = o.calibration_method;
    so.high_precision = o.high_precision;
    so.mode = o.mode;
    if (so.mode.empty()) so.mode = (rep.mode == "int8" || rep.mode == "fp8") ? rep.mode : "fp8";
    if (so.mode != "fp8" && so.mode != "int8") {
        return invalid("--mode '{}': expected fp8 or int8", so.mode);
    }

    // The model the names refer to: --model, else (lowbit reports) the report's own model when
    // that file is there.
    std::string model_path = o.model;
    std::error_code ec;
    if (model_path.empty() && !torch && !rep.model.empty()) {
        // As written (relative to the current folder), else relative to the report's folder.
        fs::path beside = fs::path(o.report).parent_path() / rep.model;
        if (fs::is_regular_file(rep.model, ec)) {
            model_path = rep.model;
        } else if (fs::path(rep.model).is_relative() && fs::is_regular_file(beside, ec)) {
            model_path = beside.string();
        }
    }
    if (torch && model_path.empty()) {
        return invalid(
            "{} is the seed's Torch layer-sensitivity report: pass --model MODEL.onnx, the graph "
            "whose Conv nodes its module paths map to",
            o.report);
    }
    so.onnx_path = model_path.empty() ? rep.model : model_path;
    std::optional<report::NodeList> nodes;
    if (!model_path.empty()) {
        LOWBIT_ASSIGN(Model model, load_model(model_path));
        nodes.emplace();
        for (const Node& n : model.graph.nodes) nodes->emplace_back(n.name, n.op_type);
    } else {
        std::fprintf(stderr,
                     "lowbit schemes: note: no --model and the report's model (%s) is not there; "
                     "node names are not checked\n",
                     rep.model.empty() ? "none" : rep.model.c_str());
    }

    LOWBIT_ASSIGN(report::SchemeSet set, report::make_schemes(rep, nodes ? &*nodes : nullptr, so));
    for (const std::string& w : set.warnings) {
        std::fprintf(stderr, "lowbit schemes: warning: %s\n", w.c_str());
    }
    LOWBIT_ASSIGN(std::vector<std::string> written, report::write_schemes(o.out_dir, rep, set, so));
    std::fprintf(out, "| K | nodes kept in high precision | passed over |\n|---:|---:|---:|\n");
    for (const report::Scheme& s : set.schemes) {
        std::fprintf(out, "| %d | %zu | %zu |\n", s.k, s.excluded_onnx_nodes.size(),
                     s.missing_layers.size() + s.missing_onnx_nodes.size());
    }
    std::fprintf(stderr, "lowbit schemes: %s report, %zu entries; wrote %zu files to %s\n",
                 torch ? "Torch" : "lowbit", rep.entries.size(), written.size(), o.out_dir.c_str());
    return Status::ok();
}

Status run_job(const CompareJob& o, std::FILE* out) {
    {
        PathRoles roles;
        for (const std::string& r : o.results) roles.input("RESULTS", r);
        roles.input("--baseline", o.baseline);
        for (const std::string& r : o.sensitivity) roles.input("--sensitivity", r);
        for (const std::string& r : o.mixed) roles.input("--mixed", r);
        roles.output("--out", o.out);
        roles.output("--html", o.html);
        LOWBIT_TRY(check_path_roles(roles));
    }
    report::CompareOptions co;
    co.max_drop = o.max_drop;
    co.baseline = o.baseline;
    std::vector<report::Variant> variants;
    for (const std::string& path : o.results) {
        LOWBIT_ASSIGN(report::Variant v, report::load_variant(path));
        if (!o.baseline.empty() && same_file(path, o.baseline)) co.baseline = path;
        variants.push_back(std::move(v));
    }
    // A baseline file that is not among the results is read and added.
    std::error_code ec;
    if (!o.baseline.empty() && co.baseline == o.baseline && fs::is_regular_file(o.baseline, ec)) {
        bool listed = false;
        for (const std::string& path : o.results) listed = listed || same_file(path, o.baseline);
        if (!listed) {
            LOWBIT_ASSIGN(report::Variant v, report::load_variant(o.baseline));
            variants.push_back(std::move(v));
        }
    }
    if (o.interleave_rounds < 0) {
        return invalid("--interleave-rounds {}: give 0 (off) or a number of rounds",
                       o.interleave_rounds);
    }
    if (o.interleave_rounds > 0) LOWBIT_TRY(retime_interleaved(variants, o));
    std::vector<report::SensitivityReport> sensitivity;
    for (const std::string& path : o.sensitivity) {
        LOWBIT_ASSIGN(report::SensitivityReport r, report::load_sensitivity_report(path));
        sensitivity.push_back(std::move(r));
    }
    std::vector<report::MixedPareto> mixed;
    for (const std::string& path : o.mixed) {
        LOWBIT_ASSIGN(report::MixedPareto m, report::load_mixed_pareto(path));
        mixed.push_back(std::move(m));
    }
    LOWBIT_ASSIGN(report::Comparison c, report::compare_variants(std::move(variants), co));

    // Everything is rendered before the first write.
    std::string md = o.out.empty() ? "" : report::summary_markdown(c, co);
    std::string html = o.html.empty() ? "" : report::html_report(c, co, sensitivity);
    for (const report::MixedPareto& m : mixed) {
        if (!md.empty()) md += report::mixed_pareto_markdown(m);
        const std::string end = "</body>\n</html>\n";
        if (!html.empty() && html.size() >= end.size()) {
            html.insert(html.size() - end.size(), report::mixed_pareto_html(m));
        }
    }
    for (const std::string& path : {o.out, o.html}) {
        fs::path parent = fs::path(path).parent_path();
        if (!path.empty() && !parent.empty()) fs::create_directories(parent, ec);
    }
    if (!o.out.empty()) LOWBIT_TRY(write_file_atomic(o.out, md));
    if (!o.html.empty()) LOWBIT_TRY(write_file_atomic(o.html, html));

    std::fputs(report::markdown_table(c).c_str(), out);
    std::fputs(report::latency_lines(c).c_str(), out);
    if (c.recommendation.index) {
        std::fprintf(out, "recommended: %s (%s)\n",
                     c.variants[*c.recommendation.index].name.c_str(),
                     c.recommendation.reason.c_str());
    } else {
        std::fprintf(out, "recommended: none (%s)\n", c.recommendation.reason.c_str());
    }
    std::fprintf(out, "rule: %s.\n", c.recommendation.rule.c_str());
    std::fflush(out);
    for (const std::string& path : {o.out, o.html}) {
        if (!path.empty()) std::fprintf(stderr, "lowbit compare: wrote %s\n", path.c_str());
    }
    return Status::ok();
}

}  // namespace lowbit::pipeline
