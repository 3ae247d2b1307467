// lowbit eval MODEL: COCO mAP (pycocotools-exact) + inference latency -> metrics.json, with the
// flags of the seed's eval_yolov10m_onnx_coco.py (research/seed-spec.md §5.1).
// This file declares the flags; the work is run_job(pipeline::EvalJob) (pipeline/eval_job.h).
#include <memory>

#include "cli/commands.h"
#include "cli/common.h"
#include "cli/options.h"
#include "pipeline/jobs.h"

namespace lowbit::cli {

void add_eval_command(CLI::App& app, CommandFn& run) {
    auto o = std::make_shared<pipeline::EvalJob>();
    CLI::App* sub = app.add_subcommand(
        "eval",
        "COCO evaluation of a YOLO ONNX model: letterbox, inference, decode + NMS, "
        "pycocotools-exact mAP and latency -> metrics.json (the seed's schema).");
    sub->add_option("model,--onnx-path", o->model, "ONNX model (default: the bundled model)");
    add_eval_data_options(sub, *o);
    sub->add_option("--imgsz", o->imgsz, "Square input size (default: the model's, else 640)");
    sub->add_option("--batch", o->batch,
                    "Images per run (needs a model with a free batch dimension; each image's "
                    "latency is its batch's time / batch)")
        ->capture_default_str()
        ->check(CLI::PositiveNumber);
    add_eval_decode_options(sub, *o);
    sub->add_option("--threads", o->threads, "Threads (default: all cores)")
        ->check(CLI::NonNegativeNumber);
    sub->add_option("--providers", o->providers,
                    "Accepted for seed compatibility (ONNX Runtime provider names); lowbit runs "
                    "its CPU backend and records the list");
    sub->add_flag("--disable-cpu-fallback", o->disable_cpu_fallback,
                  "Accepted for seed compatibility; no effect");
    sub->add_option("--coco-yaml", o->coco_yaml, "Accepted for seed compatibility; unused");
    sub->add_option("--out", o->out, "Write metrics JSON here");
    sub->add_option("--save-detections,--detections-out", o->save_detections,
                    "Write the COCO results JSON here");
    sub->add_flag("--reference", o->reference, "Use the reference kernels only (slow; for checks)");
    sub->add_flag("-q,--quiet", o->quiet, "No progress line or notes on stderr");
    sub->callback([o, &run] {
        run = [o] {
            o->engine = engine_switches_from_env();
            return pipeline::run_job(*o, stdout);
        };
    });
}

}  // namespace lowbit::cli
