// COCO evaluation of a model file as `lowbit eval` does it (the seed's eval flags,
// research/seed-spec.md §5.1): data resolution (a COCO folder or the bundled val set), planning,
// evaluate_detector, the text eval prints and metrics.json. `eval`, `candidates` and the
// evaluation steps of `run` all evaluate through here.
#pragma once

#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/status.h"
#include "eval/evaluator.h"
#include "pipeline/job_inputs.h"
#include "pipeline/shard.h"

namespace lowbit::pipeline {

struct EvalJob {
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
    int batch = 1;  // images per run (the model's batch dimension must be free)
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
    EngineSwitches engine;
    // --shard I/N --shard-dir DIR: evaluate block I of N of the images and write a shard file
    // (pipeline/shard.h) instead of the outputs; `lowbit merge DIR` writes them.
    ShardOptions shard;
};

// The options of an eval job that decide its results and outputs (shard aside), as recorded in
// shard files and hashed into their config hash. A new EvalJob field that changes results must
// be added here and in eval_job_from_json.
nlohmann::ordered_json eval_job_json(const EvalJob& o);
Result<EvalJob> eval_job_from_json(const nlohmann::json& j);

// Fills ann/images from data_root or the bundled val set (assets/val/) and checks they exist.
Status resolve_eval_data(EvalJob& o);

struct EvalRun {
    EvalResult result;
    EvalRunInfo info;  // what metrics.json records about the invocation
};

// Loads and plans o.model (default: the bundled model), evaluates it on the resolved data; notes
// go to stderr unless o.quiet.
Result<EvalRun> evaluate_model_file(EvalJob o);

// `lowbit merge` of eval shard files (read, checked): metrics.json and the detections from the
// merged partials, through the same COCOeval; the eval text to `out`.
Status merge_eval_shards(const std::vector<nlohmann::json>& shards, std::FILE* out);

// The COCO summary and the mAP / latency lines `lowbit eval` prints.
void print_eval_result(const EvalResult& r, std::FILE* out);

// Everything evaluate_model_file reads but the model, checked without evaluating: the data
// resolved, the ground truth parsed, --image-ids-list, --head, --scores, --class-map. For jobs
// that must not write anything before they know their evaluations can run (`candidates`).
Status check_eval_inputs(EvalJob o);

// No output (--out, --save-detections) is an input (the model, --ann, --image-ids-list,
// --class-map) or another output; data and model resolved as evaluate_model_file does.
Status check_eval_paths(const EvalJob& o);

// `lowbit eval`: evaluate_model_file, its text to `out`, then the detections (save_detections)
// and metrics.json (out) when asked for.
Status run_job(const EvalJob& o, std::FILE* out);

}  // namespace lowbit::pipeline
