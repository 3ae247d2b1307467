#include "pipeline/eval_job.h"

#include <filesystem>

#include "core/fs.h"
#include "core/text_lines.h"
#include "data/coco.h"
#include "eval/cocoeval.h"
#include "onnx/model_io.h"
#include "pipeline/job_inputs.h"
#include "runtime/executor.h"

namespace lowbit::pipeline {

namespace fs = std::filesystem;

namespace {

// One id per line; blank lines and '#' comments skipped (seed-spec §5.2).
Result<std::vector<int64_t>> read_image_ids(const std::string& path) {
    LOWBIT_ASSIGN(std::string text, read_file(path));
    std::vector<int64_t> ids;
    for (const TextLine& line : content_lines(text)) {
        try {
            size_t used = 0;
            ids.push_back(std::stoll(line.text, &used));
            if (used != line.text.size()) throw std::invalid_argument(line.text);
        } catch (const std::exception&) {
            return invalid("{}:{}: expected an image id", path, line.number);
        }
    }
    if (ids.empty()) return invalid("{}: no image ids", path);
    return ids;
}

}  // namespace

Status resolve_eval_data(EvalJob& o) {
    if (!o.data_root.empty()) {
        if (o.ann.empty())
            o.ann = (fs::path(o.data_root) / "annotations/instances_val2017.json").string();
        if (o.images.empty()) o.images = (fs::path(o.data_root) / "val2017").string();
    }
    if (o.ann.empty() && o.images.empty()) {
        std::string assets = assets_dir();
        fs::path ann = fs::path(assets) / "val" / "instances_val.json";
        fs::path img = fs::path(assets) / "val" / "images";
        std::error_code ec;
        if (assets.empty() || !fs::is_regular_file(ann, ec) || !fs::is_directory(img, ec)) {
            return invalid(
                "no data given and the bundled val set (assets/val/instances_val.json + "
                "assets/val/images) was not found{}; pass --data-root DIR (COCO layout) or "
                "--ann FILE --images DIR",
                assets_not_found_note());
        }
        o.ann = ann.string();
        o.images = img.string();
    }
    if (o.ann.empty()) return invalid("--images given without --ann (or --data-root)");
    if (o.images.empty()) return invalid("--ann given without --images (or --data-root)");
    std::error_code ec;
    if (!fs::is_regular_file(o.ann, ec))
        return io_error("annotation file {} does not exist", o.ann);
    if (!fs::is_directory(o.images, ec))
        return io_error("image folder {} does not exist", o.images);
    return Status::ok();
}

Result<EvalRun> evaluate_model_file(EvalJob o) {
    LOWBIT_ASSIGN(o.model, resolve_model_path(o.model));
    LOWBIT_TRY(resolve_eval_data(o));

    EvalOptions eo;
    eo.ann_path = o.ann;
    eo.images_dir = o.images;
    if (!o.image_ids_list.empty()) {
        LOWBIT_ASSIGN(eo.image_ids, read_image_ids(o.image_ids_list));
    }
    eo.max_images = o.max_images;
    eo.decode.conf = static_cast<float>(o.conf);
    eo.decode.iou = static_cast<float>(o.iou);
    eo.decode.max_det = o.max_det;
    eo.decode.pre_nms_topk = o.pre_nms_topk;
    LOWBIT_ASSIGN(eo.head, parse_head_kind(o.head));
    LOWBIT_ASSIGN(eo.scores, parse_score_mode(o.scores));
    eo.class_map_file = o.class_map;
    eo.warmup_runs = o.warmup_runs;
    eo.skip_latency = o.skip_latency;
    eo.n_threads = o.threads;
    eo.progress = !o.quiet;

    LOWBIT_ASSIGN(Model model, load_model(o.model));
    const ValueInfo* input = image_input(model);
    if (!input) return invalid("{}: the model has no graph input", o.model);
    bool fixed = input->has_shape && input->dims.size() == 4;
    for (size_t i = 0; fixed && i < input->dims.size(); ++i) fixed = input->dims[i].is_fixed();
    eo.imgsz = static_cast<int>(image_size_for(model, o.imgsz));
    ExecutorOptions xo;
    xo.n_threads = o.threads;
    xo.reference_only = o.reference;
    apply_engine_switches(o.engine, xo);
    if (o.batch < 1) return invalid("--batch {}: must be positive", o.batch);
    eo.batch = o.batch;
    if (o.batch > 1 && input->has_shape && !input->dims.empty() && input->dims[0].is_fixed() &&
        input->dims[0].value != o.batch) {
        return invalid(
            "{}: --batch {}: input '{}' has a fixed batch size {} ({}); batches need a model "
            "exported with a dynamic batch dimension",
            o.model, o.batch, input->name, input->dims[0].value, input->shape_str());
    }
    if (!fixed || o.batch > 1) xo.input_shapes[input->name] = {o.batch, 3, eo.imgsz, eo.imgsz};
    auto ex = Executor::create(model, xo);
    if (!ex) return ex.status().with_context(o.model);

    std::vector<std::string> providers = o.providers;
    if (providers.empty()) providers = {"CPUExecutionProvider"};
    for (const std::string& p : providers) {
        if (p != "CPUExecutionProvider" && p != "cpu" && !o.quiet) {
            std::fprintf(stderr,
                         "lowbit eval: note: provider %s maps to lowbit's CPU backend in this "
                         "build\n",
                         p.c_str());
        }
    }
    if (!o.coco_yaml.empty() && !o.quiet) {
        std::fprintf(stderr,
                     "lowbit eval: note: --coco-yaml is accepted for compatibility; class names "
                     "come from the model metadata or --class-map\n");
    }

    EvalRun run;
    LOWBIT_ASSIGN(run.result, evaluate_detector(**ex, model, eo));
    const EvalResult& r = run.result;
    if (!o.quiet) {
        std::fprintf(stderr, "lowbit eval: %s; classes -> categories: %s\n",
                     r.layout.describe().c_str(), r.class_map.c_str());
        for (const std::string& n : r.notes) {
            std::fprintf(stderr, "lowbit eval: note: %s\n", n.c_str());
        }
    }
    EvalRunInfo& info = run.info;
    info.onnx_path = o.model;
    info.data_root = o.data_root;
    info.instances = o.ann;
    info.images_dir = o.images;
    info.providers = providers;
    info.imgsz = eo.imgsz;
    info.max_images = o.max_images;
    info.warmup_runs = o.warmup_runs;
    info.batch = o.batch;
    info.skip_latency = o.skip_latency;
    info.conf = o.conf;
    info.iou = o.iou;
    info.max_det = o.max_det;
    info.pre_nms_topk = o.pre_nms_topk;
    info.threads = o.threads;
    return run;
}

void print_eval_result(const EvalResult& r, std::FILE* out) {
    std::fputs(coco_summary(r.coco).c_str(), out);
    std::fprintf(out, "mAP50-95 %.4f  mAP50 %.4f  (%lld images, %zu detections)\n", r.coco.stats[0],
                 r.coco.stats[1], static_cast<long long>(r.num_images), r.detections.size());
    std::fprintf(out, "latency mean %.3f ms  median %.3f ms  p90 %.3f ms  %.3f FPS\n",
                 r.latency.mean_ms, r.latency.median_ms, r.latency.p90_ms,
                 r.latency.throughput_fps);
    std::fprintf(out,
                 "latency spread %.3f ms  p10 %.3f ms  median %.0f%% CI %.3f..%.3f ms  (%lld "
                 "samples)\n",
                 r.latency.spread_ms, r.latency.p10_ms, 100 * r.latency.median_ci_level,
                 r.latency.median_ci_low_ms, r.latency.median_ci_high_ms,
                 static_cast<long long>(r.latency.samples));
    std::fflush(out);
}

Status run_job(const EvalJob& o, std::FILE* out) {
    LOWBIT_ASSIGN(EvalRun run, evaluate_model_file(o));
    print_eval_result(run.result, out);
    if (!o.save_detections.empty()) {
        LOWBIT_TRY(
            write_file_atomic(o.save_detections, coco_results_to_json(run.result.detections)));
    }
    if (!o.out.empty()) {
        fs::path parent = fs::path(o.out).parent_path();
        std::error_code ec;
        if (!parent.empty()) fs::create_directories(parent, ec);
        LOWBIT_TRY(
            write_file_atomic(o.out, eval_metrics_json(run.info, run.result).dump(2) + "\n"));
    }
    return Status::ok();
}

}  // namespace lowbit::pipeline
