// lowbit eval MODEL: COCO mAP (pycocotools-exact) + inference latency -> metrics.json, with the
// flags of the seed's eval_yolov10m_onnx_coco.py (research/seed-spec.md §5.1).
#include <cstdio>
#include <filesystem>
#include <memory>
#include <sstream>

#include "cli/commands.h"
#include "cli/common.h"
#include "core/fs.h"
#include "eval/cocoeval.h"
#include "eval/evaluator.h"
#include "onnx/model_io.h"

namespace lowbit::cli {

namespace {

namespace fs = std::filesystem;

struct EvalCliOptions {
    std::string model;
    std::string data_root;
    std::string ann;
    std::string images;
    std::string image_ids_list;
    std::vector<std::string> providers;
    std::string coco_yaml;
    bool disable_cpu_fallback = false;
    int imgsz = 0;
    int max_images = 100;
    double conf = 0.001;
    double iou = 0.7;
    int max_det = 300;
    int pre_nms_topk = 30000;
    int warmup_runs = 0;
    int skip_latency = 0;
    int threads = 0;
    std::string head = "auto";
    std::string scores = "auto";
    std::string class_map;
    std::string out;
    std::string save_detections;
    bool reference = false;
    bool quiet = false;
};

// One id per line; blank lines and '#' comments skipped (seed-spec §5.2).
Result<std::vector<int64_t>> read_image_ids(const std::string& path) {
    LOWBIT_ASSIGN(std::string text, read_file(path));
    std::vector<int64_t> ids;
    std::istringstream in(text);
    std::string line;
    int n = 0;
    while (std::getline(in, line)) {
        ++n;
        size_t b = line.find_first_not_of(" \t\r");
        if (b == std::string::npos || line[b] == '#') continue;
        try {
            size_t used = 0;
            std::string tok = line.substr(b, line.find_last_not_of(" \t\r") - b + 1);
            ids.push_back(std::stoll(tok, &used));
            if (used != tok.size()) throw std::invalid_argument(tok);
        } catch (const std::exception&) {
            return invalid("{}:{}: expected an image id", path, n);
        }
    }
    if (ids.empty()) return invalid("{}: no image ids", path);
    return ids;
}

// Fills ann/images from --data-root or the bundled val set (assets/val/).
Status resolve_data(EvalCliOptions& o) {
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
                assets.empty() ? "" : " under " + assets);
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

Status run_eval(EvalCliOptions o) {
    LOWBIT_ASSIGN(o.model, resolve_model_path(o.model));
    LOWBIT_TRY(resolve_data(o));

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
    // The first graph input that is not an initializer is the image (seed-spec §5.3).
    const ValueInfo* image_input = nullptr;
    for (const ValueInfo& vi : model.graph.inputs) {
        if (!model.graph.initializer(vi.name)) {
            image_input = &vi;
            break;
        }
    }
    if (!image_input) return invalid("{}: the model has no graph input", o.model);
    int model_size = 0;
    bool fixed = image_input->has_shape && image_input->dims.size() == 4;
    if (fixed) {
        for (const Dim& d : image_input->dims) fixed = fixed && d.is_fixed();
    }
    if (fixed && image_input->dims[2].value == image_input->dims[3].value) {
        model_size = static_cast<int>(image_input->dims[2].value);
    }
    eo.imgsz = o.imgsz > 0 ? o.imgsz : (model_size > 0 ? model_size : 640);
    ExecutorOptions xo;
    xo.n_threads = o.threads;
    xo.reference_only = o.reference;
    if (!fixed) xo.input_shapes[image_input->name] = {1, 3, eo.imgsz, eo.imgsz};
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

    LOWBIT_ASSIGN(EvalResult r, evaluate_detector(**ex, model, eo));
    if (!o.quiet) {
        std::fprintf(stderr, "lowbit eval: %s; classes -> categories: %s\n",
                     r.layout.describe().c_str(), r.class_map.c_str());
        for (const std::string& n : r.notes) {
            std::fprintf(stderr, "lowbit eval: note: %s\n", n.c_str());
        }
    }

    std::fputs(coco_summary(r.coco).c_str(), stdout);
    std::printf("mAP50-95 %.4f  mAP50 %.4f  (%lld images, %zu detections)\n", r.coco.stats[0],
                r.coco.stats[1], static_cast<long long>(r.num_images), r.detections.size());
    std::printf("latency mean %.3f ms  median %.3f ms  p90 %.3f ms  %.3f FPS\n", r.latency.mean_ms,
                r.latency.median_ms, r.latency.p90_ms, r.latency.throughput_fps);
    std::fflush(stdout);

    if (!o.save_detections.empty()) {
        LOWBIT_TRY(write_file_atomic(o.save_detections, coco_results_to_json(r.detections)));
    }
    if (!o.out.empty()) {
        EvalRunInfo info;
        info.onnx_path = o.model;
        info.data_root = o.data_root;
        info.instances = o.ann;
        info.images_dir = o.images;
        info.providers = providers;
        info.imgsz = eo.imgsz;
        info.max_images = o.max_images;
        info.warmup_runs = o.warmup_runs;
        info.skip_latency = o.skip_latency;
        info.conf = o.conf;
        info.iou = o.iou;
        info.max_det = o.max_det;
        info.pre_nms_topk = o.pre_nms_topk;
        info.threads = o.threads;
        fs::path parent = fs::path(o.out).parent_path();
        std::error_code ec;
        if (!parent.empty()) fs::create_directories(parent, ec);
        LOWBIT_TRY(write_file_atomic(o.out, eval_metrics_json(info, r).dump(2) + "\n"));
    }
    return Status::ok();
}

}  // namespace

void add_eval_command(CLI::App& app, CommandFn& run) {
    auto o = std::make_shared<EvalCliOptions>();
    CLI::App* sub = app.add_subcommand(
        "eval",
        "COCO evaluation of a YOLO ONNX model: letterbox, inference, decode + NMS, "
        "pycocotools-exact mAP and latency -> metrics.json (the seed's schema).");
    sub->add_option("model,--onnx-path", o->model, "ONNX model (default: the bundled model)");
    sub->add_option("--data-root", o->data_root,
                    "COCO folder: annotations/instances_val2017.json + val2017/ (default: the "
                    "bundled val set)");
    sub->add_option("--ann,--instances", o->ann, "Annotation file (overrides --data-root)");
    sub->add_option("--images,--images-dir", o->images, "Image folder (overrides --data-root)");
    sub->add_option("--image-ids-list", o->image_ids_list,
                    "Evaluate these image ids (one per line, file order) instead of the first N");
    sub->add_option("--max-images", o->max_images,
                    "First N image ids in ascending order (<= 0: all)")
        ->capture_default_str();
    sub->add_option("--imgsz", o->imgsz, "Square input size (default: the model's, else 640)");
    sub->add_option("--conf", o->conf, "Score threshold before NMS (inclusive)")
        ->capture_default_str();
    sub->add_option("--iou", o->iou, "NMS IoU threshold")->capture_default_str();
    sub->add_option("--max-det", o->max_det, "Detections per image after NMS")
        ->capture_default_str();
    sub->add_option("--pre-nms-topk", o->pre_nms_topk, "Candidates kept before NMS")
        ->capture_default_str();
    sub->add_option("--warmup-runs", o->warmup_runs, "Untimed runs on zeros first")
        ->check(CLI::NonNegativeNumber);
    sub->add_option("--skip-latency", o->skip_latency, "Drop the first N latency samples")
        ->check(CLI::NonNegativeNumber);
    sub->add_option("--threads", o->threads, "Threads (default: all cores)")
        ->check(CLI::NonNegativeNumber);
    sub->add_option("--providers", o->providers,
                    "Accepted for seed compatibility (ONNX Runtime provider names); lowbit runs "
                    "its CPU backend and records the list");
    sub->add_flag("--disable-cpu-fallback", o->disable_cpu_fallback,
                  "Accepted for seed compatibility; no effect");
    sub->add_option("--coco-yaml", o->coco_yaml, "Accepted for seed compatibility; unused");
    sub->add_option("--head", o->head, "Output layout: auto, dfl, decoded or e2e")
        ->capture_default_str();
    sub->add_option("--scores", o->scores,
                    "Class channels: auto (detect probabilities), logits (sigmoid) or probs")
        ->capture_default_str();
    sub->add_option("--class-map", o->class_map,
                    "Class -> category id: JSON array/object or one id per line")
        ->check(CLI::ExistingFile);
    sub->add_option("--out", o->out, "Write metrics JSON here");
    sub->add_option("--save-detections,--detections-out", o->save_detections,
                    "Write the COCO results JSON here");
    sub->add_flag("--reference", o->reference, "Use the reference kernels only (slow; for checks)");
    sub->add_flag("-q,--quiet", o->quiet, "No progress line or notes on stderr");
    sub->callback([o, &run] { run = [o] { return report("eval", run_eval(*o)); }; });
}

}  // namespace lowbit::cli
