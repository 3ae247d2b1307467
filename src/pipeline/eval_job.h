// COCO evaluation of a model file as `lowbit eval` does it (the seed's eval flags,
// research/seed-spec.md §5.1): data resolution (a COCO folder or the bundled val set), planning,
// evaluate_detector, the text eval prints and metrics.json. `eval`, `candidates` and the
// evaluation steps of `run` all evaluate through here.
#pragma once

#include <cstdio>
#include <string>
#include <vector>

#include "core/status.h"
#include "eval/evaluator.h"
#include "pipeline/job_inputs.h"

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
};

// Fills ann/images from data_root or the bundled val set (assets/val/) and checks they exist.
Status resolve_eval_data(EvalJob& o);

struct EvalRun {
    EvalResult result;
    EvalRunInfo info;  // what metrics.json records about the invocation
};

// Loads and plans o.model (default: the bundled model), evaluates it on the resolved data; notes
// go to stderr unless o.quiet.
Result<EvalRun> evaluate_model_file(EvalJob o);

// The COCO summary and the mAP / latency lines `lowbit eval` prints.
void print_eval_result(const EvalResult& r, std::FILE* out);

// `lowbit eval`: evaluate_model_file, its text to `out`, then the detections (save_detections)
// and metrics.json (out) when asked for.
Status run_job(const EvalJob& o, std::FILE* out);

}  // namespace lowbit::pipeline
