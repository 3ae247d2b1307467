#include "pipeline/eval_job.h"

#include <filesystem>
#include <memory>

#include "core/fs.h"
#include "core/path_guard.h"
#include "core/text_lines.h"
#include "data/coco.h"
#include "eval/cocoeval.h"
#include "onnx/model_io.h"
#include "pipeline/job_inputs.h"
#include "runtime/executor.h"
#include "runtime/model_info.h"

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

namespace {

// A model loaded and planned for evaluation, with the options evaluate_detector takes and what
// metrics.json records about the invocation.
struct EvalSetup {
    Model model;
    std::unique_ptr<Executor> ex;
    EvalOptions eo;
    EvalRunInfo info;
};

Result<EvalSetup> prepare_eval(EvalJob& o) {
    LOWBIT_ASSIGN(o.model, resolve_model_path(o.model));
    LOWBIT_TRY(resolve_eval_data(o));

    EvalSetup s;
    EvalOptions& eo = s.eo;
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
    if (o.shard.active()) {
        eo.shard_index = o.shard.index;
        eo.shard_count = o.shard.count;
    }

    LOWBIT_ASSIGN(s.model, load_model(o.model));
    const Model& model = s.model;
    const ValueInfo* input = image_input(model);
    if (!input) return invalid("{}: the model has no graph input", o.model);
    const bool fixed = fixed_image_shape(input);
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
    s.ex = std::move(*ex);

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

    EvalRunInfo& info = s.info;
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
    info.kernels = s.ex->kernel_report();
    return s;
}

void print_eval_notes(const EvalResult& r) {
    std::fprintf(stderr, "lowbit eval: %s; classes -> categories: %s\n",
                 r.layout.describe().c_str(), r.class_map.c_str());
    for (const std::string& n : r.notes) {
        std::fprintf(stderr, "lowbit eval: note: %s\n", n.c_str());
    }
}

nlohmann::ordered_json info_json(const EvalRunInfo& i) {
    return {{"onnx_path", i.onnx_path},   {"data_root", i.data_root},
            {"instances", i.instances},   {"images_dir", i.images_dir},
            {"providers", i.providers},   {"imgsz", i.imgsz},
            {"max_images", i.max_images}, {"warmup_runs", i.warmup_runs},
            {"skip_latency", i.skip_latency}, {"batch", i.batch},
            {"conf", i.conf},
            {"iou", i.iou},               {"max_det", i.max_det},
            {"pre_nms_topk", i.pre_nms_topk}, {"threads", i.threads},
            {"kernels", to_json(i.kernels)}};
}

// The inverse of to_json(KernelReport) (runtime/model_info.h), for shard files.
KernelReport kernel_report_from_json(const nlohmann::json& j) {
    KernelReport r;
    r.kernels = j.at("steps").get<std::map<std::string, int64_t>>();
    r.qdq_convs = j.at("qdq_convs").get<int64_t>();
    r.int8_convs = j.at("int8_convs").get<int64_t>();
    r.fp8_convs = j.value("fp8_convs", int64_t{0});  // absent in files from before FP8 kernels
    r.qdq_moves = j.value("qdq_moves", int64_t{0});
    r.int8_moves = j.value("int8_moves", int64_t{0});
    r.dq_skipped = j.at("dq_skipped").get<int64_t>();
    for (const auto& f : j.at("fallbacks")) {
        r.fallbacks.push_back({f.at("node").get<std::string>(), f.at("reason").get<std::string>()});
    }
    return r;
}

EvalRunInfo info_from_json(const nlohmann::json& j) {
    EvalRunInfo i;
    i.onnx_path = j.at("onnx_path").get<std::string>();
    i.data_root = j.at("data_root").get<std::string>();
    i.instances = j.at("instances").get<std::string>();
    i.images_dir = j.at("images_dir").get<std::string>();
    i.providers = j.at("providers").get<std::vector<std::string>>();
    i.imgsz = j.at("imgsz").get<int>();
    i.max_images = j.at("max_images").get<int>();
    i.warmup_runs = j.at("warmup_runs").get<int>();
    i.skip_latency = j.at("skip_latency").get<int>();
    i.batch = j.at("batch").get<int>();
    i.conf = j.at("conf").get<double>();
    i.iou = j.at("iou").get<double>();
    i.max_det = j.at("max_det").get<int>();
    i.pre_nms_topk = j.at("pre_nms_topk").get<int>();
    i.threads = j.at("threads").get<int>();
    i.kernels = kernel_report_from_json(j.at("kernels"));
    return i;
}

// A part as stored in a shard file; doubles are written with enough digits to round-trip.
nlohmann::ordered_json part_json(const EvalImagesPart& p) {
    nlohmann::ordered_json dets = nlohmann::ordered_json::array();
    for (const CocoAnnotation& d : p.detections) {
        dets.push_back({d.image_id, d.category_id, d.bbox[0], d.bbox[1], d.bbox[2], d.bbox[3],
                        d.area, d.score});
    }
    return {{"image_ids", p.image_ids},
            {"seconds", p.seconds},
            {"detections", dets},
            {"layout",
             {static_cast<int>(p.layout.kind), p.layout.num_classes, p.layout.num_rows,
              p.layout.channels_first}},
            {"output_name", p.output_name},
            {"class_map", p.class_map},
            {"sigmoid_applied", p.sigmoid_applied},
            {"dropped_unmapped", p.dropped_unmapped},
            {"notes", p.notes}};
}

EvalImagesPart part_from_json(const nlohmann::json& j) {
    EvalImagesPart p;
    p.image_ids = j.at("image_ids").get<std::vector<int64_t>>();
    p.seconds = j.at("seconds").get<std::vector<double>>();
    for (const auto& d : j.at("detections")) {
        CocoAnnotation a;
        a.id = static_cast<int64_t>(p.detections.size()) + 1;
        a.image_id = d.at(0).get<int64_t>();
        a.category_id = d.at(1).get<int64_t>();
        for (size_t k = 0; k < 4; ++k) a.bbox[k] = d.at(2 + k).get<double>();
        a.area = d.at(6).get<double>();
        a.score = d.at(7).get<double>();
        p.detections.push_back(a);
    }
    const auto& l = j.at("layout");
    p.layout.kind = static_cast<HeadKind>(l.at(0).get<int>());
    p.layout.num_classes = l.at(1).get<int>();
    p.layout.num_rows = l.at(2).get<int64_t>();
    p.layout.channels_first = l.at(3).get<bool>();
    p.output_name = j.at("output_name").get<std::string>();
    p.class_map = j.at("class_map").get<std::string>();
    p.sigmoid_applied = j.at("sigmoid_applied").get<bool>();
    p.dropped_unmapped = j.at("dropped_unmapped").get<int64_t>();
    p.notes = j.at("notes").get<std::vector<std::string>>();
    return p;
}

Status write_eval_outputs(const EvalJob& o, const EvalRun& run) {
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

// `lowbit eval --shard`: this shard's images, written as a shard file.
Status run_eval_shard(EvalJob o, std::FILE* out) {
    LOWBIT_ASSIGN(EvalSetup s, prepare_eval(o));
    LOWBIT_ASSIGN(CocoDataset gt, load_coco_gt(o.ann));
    LOWBIT_ASSIGN(EvalImagesPart part, evaluate_images(*s.ex, s.model, gt, s.eo));
    LOWBIT_ASSIGN(ShardHeader h, make_shard_header("eval", eval_job_json(o), {o.model}, o.shard));
    nlohmann::ordered_json partial = {{"info", info_json(s.info)}, {"part", part_json(part)}};
    LOWBIT_TRY(write_shard(o.shard, h, partial));
    std::fprintf(out, "shard %d/%d: %zu images, %zu detections -> %s\n", o.shard.index,
                 o.shard.count, part.image_ids.size(), part.detections.size(),
                 shard_file(o.shard.dir, o.shard.index, o.shard.count).c_str());
    std::fflush(out);
    return Status::ok();
}

}  // namespace

Status check_eval_inputs(EvalJob o) {
    LOWBIT_TRY(resolve_eval_data(o));
    if (!o.image_ids_list.empty()) LOWBIT_TRY(read_image_ids(o.image_ids_list).status());
    LOWBIT_TRY(parse_head_kind(o.head).status());
    LOWBIT_TRY(parse_score_mode(o.scores).status());
    if (!o.class_map.empty()) LOWBIT_TRY(read_file(o.class_map).status());
    return load_coco_gt(o.ann).status();
}

Status check_eval_paths(const EvalJob& job) {
    EvalJob o = job;
    LOWBIT_ASSIGN(o.model, resolve_model_path(o.model));
    LOWBIT_TRY(resolve_eval_data(o));
    PathRoles roles;
    roles.input("MODEL", o.model);
    roles.input("--ann", o.ann);
    roles.input("--images", o.images);
    roles.input("--image-ids-list", o.image_ids_list);
    roles.input("--class-map", o.class_map);
    roles.output("--out", o.out);
    roles.output("--save-detections", o.save_detections);
    return check_path_roles(roles);
}

// Writes what `lowbit eval` writes for a finished evaluation.

nlohmann::ordered_json eval_job_json(const EvalJob& o) {
    return {{"model", o.model},
            {"data_root", o.data_root},
            {"ann", o.ann},
            {"images", o.images},
            {"image_ids_list", o.image_ids_list},
            {"providers", o.providers},
            {"imgsz", o.imgsz},
            {"max_images", o.max_images},
            {"conf", o.conf},
            {"iou", o.iou},
            {"max_det", o.max_det},
            {"pre_nms_topk", o.pre_nms_topk},
            {"warmup_runs", o.warmup_runs},
            {"skip_latency", o.skip_latency},
            {"batch", o.batch},
            {"threads", o.threads},
            {"head", o.head},
            {"scores", o.scores},
            {"class_map", o.class_map},
            {"out", o.out},
            {"save_detections", o.save_detections},
            {"reference", o.reference}};
}

Result<EvalJob> eval_job_from_json(const nlohmann::json& j) {
    EvalJob o;
    try {
        o.model = j.at("model").get<std::string>();
        o.data_root = j.at("data_root").get<std::string>();
        o.ann = j.at("ann").get<std::string>();
        o.images = j.at("images").get<std::string>();
        o.image_ids_list = j.at("image_ids_list").get<std::string>();
        o.providers = j.at("providers").get<std::vector<std::string>>();
        o.imgsz = j.at("imgsz").get<int>();
        o.max_images = j.at("max_images").get<int>();
        o.conf = j.at("conf").get<double>();
        o.iou = j.at("iou").get<double>();
        o.max_det = j.at("max_det").get<int>();
        o.pre_nms_topk = j.at("pre_nms_topk").get<int>();
        o.warmup_runs = j.at("warmup_runs").get<int>();
        o.skip_latency = j.at("skip_latency").get<int>();
        o.batch = j.at("batch").get<int>();
        o.threads = j.at("threads").get<int>();
        o.head = j.at("head").get<std::string>();
        o.scores = j.at("scores").get<std::string>();
        o.class_map = j.at("class_map").get<std::string>();
        o.out = j.at("out").get<std::string>();
        o.save_detections = j.at("save_detections").get<std::string>();
        o.reference = j.at("reference").get<bool>();
    } catch (const std::exception& e) {
        return invalid("eval job record: {}", e.what());
    }
    return o;
}

Result<EvalRun> evaluate_model_file(EvalJob o) {
    LOWBIT_ASSIGN(EvalSetup s, prepare_eval(o));
    EvalRun run;
    LOWBIT_ASSIGN(run.result, evaluate_detector(*s.ex, s.model, s.eo));
    if (!o.quiet) print_eval_notes(run.result);
    run.info = s.info;
    return run;
}

Status merge_eval_shards(const std::vector<nlohmann::json>& shards, std::FILE* out) {
    if (shards.empty()) return invalid("no eval shards");
    LOWBIT_ASSIGN(EvalJob o, eval_job_from_json(shards.front().at("job")));
    std::vector<EvalImagesPart> parts;
    EvalRun run;
    try {
        run.info = info_from_json(shards.front().at("partial").at("info"));
        for (const nlohmann::json& s : shards) {
            parts.push_back(part_from_json(s.at("partial").at("part")));
        }
    } catch (const std::exception& e) {
        return invalid("eval shard record: {}", e.what());
    }
    LOWBIT_ASSIGN(CocoDataset gt, load_coco_gt(run.info.instances));
    LOWBIT_ASSIGN(run.result,
                  summarize_evaluation(gt, std::move(parts), o.skip_latency, o.threads));
    print_eval_result(run.result, out);
    return write_eval_outputs(o, run);
}

void print_eval_result(const EvalResult& r, std::FILE* out) {
    std::fputs(coco_summary(r.coco).c_str(), out);
    std::fprintf(out, "mAP50-95 %.4f  mAP50 %.4f  (%lld images, %zu detections)\n", r.coco.stats[0],
                 r.coco.stats[1], static_cast<long long>(r.num_images), r.detections.size());
    if (!r.bootstrap.values.empty()) {
        std::fprintf(out, "mAP50-95 95%% CI %.4f..%.4f  (bootstrap over images, %d resamples, "
                     "seed %llu)\n", r.bootstrap.lo, r.bootstrap.hi, r.bootstrap.resamples,
                     static_cast<unsigned long long>(r.bootstrap.seed));
    }
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
    LOWBIT_TRY(check_eval_paths(o));
    if (o.shard.active()) return run_eval_shard(o, out);
    LOWBIT_ASSIGN(EvalRun run, evaluate_model_file(o));
    print_eval_result(run.result, out);
    return write_eval_outputs(o, run);
}

}  // namespace lowbit::pipeline
