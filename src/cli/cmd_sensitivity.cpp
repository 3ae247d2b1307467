// lowbit sensitivity MODEL: per-node quantization sensitivity measured on the ONNX graph by
// direct perturbation (replaces the seed's run_yolov10m_layer_sensitivity_sweep.sh Torch proxy,
// research/seed-spec.md §9). quant/sensitivity.h has the method; this file parses and reports.
#include <cstdio>
#include <filesystem>

#include "calib/calib_source.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "cli/pipeline_steps.h"
#include "core/fs.h"
#include "data/image_list.h"
#include "onnx/model_io.h"
#include "quant/sensitivity.h"

namespace lowbit::cli {

namespace {

namespace fs = std::filesystem;

struct SensitivityCliOptions {
    std::string model;
    std::string mode = "fp8";
    CalibInputOptions calib;  // imgsz 0: the model's input size
    CalibMethodOptions method;
    int64_t images = 32;
    std::string metric = "output-mse";
    bool all_but_one = false;
    bool naive = false;
    bool reference_runs = false;
    std::string out;
    int threads = 0;
    PlacementCliOptions placement;  // as quantize
    std::vector<std::string> input_shapes;
    // metric map
    std::string data;
    int val_images = 50;
    bool quiet = false;
};

Status run_sensitivity_cmd(SensitivityCliOptions o) {
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
    apply_env_switches(so.quant.run);
    so.quant.run.progress = !o.quiet;
    LOWBIT_TRY(apply_placement_options(o.placement, so.quant.placement));
    LOWBIT_ASSIGN(so.quant.input_shapes, parse_input_shapes(o.input_shapes));
    so.quant.model_name = fs::path(o.model).filename().string();

    if (so.metric == quant::SensitivityMetric::Map) {
        EvalCliOptions ev;
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
                "not found; pass --calib FILE.npy, --calib-list FILE or --calib-images DIR");
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

    quant::SensitivityRunInfo info{o.model, o.mode, source_name};
    const nlohmann::ordered_json j = quant::sensitivity_json(info, so, *rep);
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
        std::printf("%s\n", j.dump(1).c_str());
        return Status::ok();
    }
    const fs::path out(o.out);
    if (out.has_parent_path()) {
        std::error_code ec;
        fs::create_directories(out.parent_path(), ec);
        if (ec) {
            return io_error("cannot create folder {} for --out: {}", out.parent_path().string(),
                            ec.message());
        }
    }
    fs::path md = out;
    md.replace_extension(".md");
    if (md == out) md += ".md";
    LOWBIT_TRY(write_file_atomic(o.out, j.dump(1) + "\n"));
    LOWBIT_TRY(write_file_atomic(md.string(), quant::sensitivity_markdown(info, so, *rep)));
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

}  // namespace

void add_sensitivity_command(CLI::App& app, CommandFn& run) {
    auto o = std::make_shared<SensitivityCliOptions>();
    o->calib.imgsz = 0;
    CLI::App* sub = app.add_subcommand(
        "sensitivity",
        "Per-node quantization sensitivity on the ONNX graph: fake-quantize each node that "
        "`quantize` would quantize (alone, or all but it with --all-but-one) with quantize's "
        "exact numerics and measure the change of the outputs against float32. Incremental: "
        "only the part of the graph downstream of the node is re-run. Writes a ranked JSON "
        "report and a markdown table beside it.");
    sub->add_option("model", o->model, "Float ONNX model (default: the bundled model)");
    sub->add_option("--mode", o->mode, "fp8 or int8")
        ->capture_default_str()
        ->check(CLI::IsMember({"fp8", "int8"}));
    add_calib_input_options(sub, o->calib, false);
    sub->add_option("--imgsz", o->calib.imgsz,
                    "Letterbox size for --calib-list/--calib-images (default: the model's input "
                    "size)");
    add_calib_method_options(sub, o->method);
    sub->add_option("--images", o->images,
                    "Images compared (the first ones of the calibration source)")
        ->capture_default_str();
    sub->add_option("--metric", o->metric,
                    "output-mse (MSE of the graph outputs), cosine (1 - cosine similarity), "
                    "local-sqnr (SQNR of the node's own output; cheapest, but blind to how the "
                    "error propagates: no better than random at picking nodes to keep in high "
                    "precision on the bundled model) or map (mAP50-95 drop "
                    "on --val-images validation images)")
        ->capture_default_str();
    sub->add_flag("--all-but-one", o->all_but_one,
                  "Quantize every placed node except the measured one; score = error recovered");
    sub->add_flag("--naive", o->naive,
                  "Run one full pass per node instead of the cone (same results; to measure the "
                  "incremental speedup)");
    sub->add_flag("--reference-runs", o->reference_runs,
                  "local-sqnr: re-run every node through the executor on fake-quantized float32 "
                  "inputs instead of the fast paths (Convs on oneDNN's exact int8 / bf16 kernels, "
                  "MaxPool, Resize and Add computed directly); equal up to float rounding, slower; "
                  "for checking");
    sub->add_option("--out", o->out,
                    "report.json (written atomically, with report.md beside it); default: JSON "
                    "on stdout");
    sub->add_option("--threads", o->threads, "Threads (default: all cores)");
    add_placement_options(sub, o->placement);
    sub->add_option("--input-shape", o->input_shapes, "Fix an input's shape, NAME:D0,D1,...");
    sub->add_option("--data", o->data,
                    "metric map: COCO data root (annotations/instances_val2017.json + val2017/; "
                    "default: the bundled val set)");
    sub->add_option("--val-images", o->val_images, "metric map: validation images used")
        ->capture_default_str();
    sub->add_flag("--quiet", o->quiet, "No progress or summary on stderr");
    sub->callback(
        [o, &run] { run = [o] { return report("sensitivity", run_sensitivity_cmd(*o)); }; });
}

}  // namespace lowbit::cli
