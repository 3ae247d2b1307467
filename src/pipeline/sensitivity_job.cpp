// `lowbit sensitivity` as a job (pipeline/jobs.h): quant::run_sensitivity on a model file, the
// ranked report.json and report.md written (or the JSON to the stream when no --out).
#include <cstdio>
#include <filesystem>

#include "calib/calib_source.h"
#include "core/fs.h"
#include "onnx/model_io.h"
#include "pipeline/jobs.h"
#include "quant/sensitivity/sensitivity.h"
#include "report/sensitivity_writer.h"

namespace lowbit::pipeline {

namespace fs = std::filesystem;

Status run_job(SensitivityJob o, std::FILE* out) {
    LOWBIT_ASSIGN(o.model, resolve_model_path(o.model));
    quant::SensitivityOptions so;
    LOWBIT_ASSIGN(so.quant.placement.mode, parse_quant_mode(o.mode));
    LOWBIT_ASSIGN(auto method, parse_calib_method_options(o.method));
    std::tie(so.quant.method, so.quant.percentile) = method;
    LOWBIT_ASSIGN(so.metric, quant::parse_sensitivity_metric(o.metric));
    if (o.images <= 0) return invalid("--images {}: give at least 1", o.images);
    if (o.val_images <= 0) return invalid("--val-images {}: give at least 1", o.val_images);
    so.images = o.images;
    so.all_but_one = o.all_but_one;
    so.naive = o.naive;
    so.local_probes = !o.reference_runs;
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

    auto model = load_model(o.model);
    if (!model) return model.status();

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
    const nlohmann::ordered_json j = report::sensitivity_json(info, so, *rep);
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
    LOWBIT_TRY(write_file_atomic(md.string(), report::sensitivity_markdown(info, so, *rep)));
    if (!o.quiet) {
        std::fprintf(stderr, "lowbit sensitivity: wrote %s and %s; most sensitive:\n",
                     o.out.c_str(), md.string().c_str());
        for (size_t k = 0; k < rep->nodes.size() && k < 5; ++k) {
            const auto& n = rep->nodes[k];
            std::fprintf(stderr, "  %d. %s (%s) score %.4g\n", n.rank, n.name.c_str(),
                         n.op_type.c_str(), n.score);
        }
    }
    return Status::ok();
}

}  // namespace lowbit::pipeline
