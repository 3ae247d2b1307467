// lowbit candidates MODEL --schemes DIR --mode fp8: the seed's
// materialize_yolov10m_lowbit_candidates.sh plus the evaluation of each candidate
// (research/seed-spec.md §11). One calibration pass serves every scheme
// (pipeline/quantize_variants.h); each candidate is then written as
// <out-dir>/<model-stem>-<mode>-k{K}.onnx, evaluated exactly as `lowbit eval` does, and its
// metrics.json plus a "variant" object go to <results-dir>/<mode>_k{K}.json.
// This file declares the flags; the work is run_job(pipeline::CandidatesJob) (pipeline/jobs.h).
#include <memory>

#include "cli/commands.h"
#include "cli/common.h"
#include "cli/options.h"
#include "pipeline/jobs.h"

namespace lowbit::cli {

void add_candidates_command(CLI::App& app, CommandFn& run) {
    auto o = std::make_shared<pipeline::CandidatesJob>();
    o->calib.imgsz = 0;
    CLI::App* sub = app.add_subcommand(
        "candidates",
        "Build and evaluate one quantized candidate per exclusion scheme: calibrate once, write "
        "OUT-DIR/<model>-<mode>-k{K}.onnx for every nodes_to_exclude_k{K}.txt of --schemes "
        "(reusing the ranges), evaluate each as `lowbit eval` does and write "
        "RESULTS-DIR/<mode>_k{K}.json (metrics.json + a \"variant\" object).");
    sub->add_option("model", o->model, "Float ONNX model (default: the bundled model)");
    sub->add_option("--schemes", o->schemes,
                    "Folder of nodes_to_exclude_k{K}.txt files (from `lowbit schemes`)")
        ->required();
    sub->add_option("--mode", o->mode, "int8, fp8, w4a16 or w4a8 (INT4 weights)")->capture_default_str();
    sub->add_option("--ks", o->ks, "Only these K (default: every scheme in the folder)");
    add_calib_input_options(sub, o->calib, false);
    sub->add_option("--calib-max", o->calib_max, "Use only the first N calibration samples");
    add_calib_method_options(sub, o->method);
    sub->add_option("--high-precision", o->high_precision,
                    "Precision of the non-quantized part: fp32 or fp16")
        ->capture_default_str();
    sub->add_option("--out-dir", o->out_dir, "Folder for the candidate models")->required();
    sub->add_option("--results-dir", o->results_dir,
                    "Folder for the results JSON (default: OUT-DIR/../results)");
    add_eval_data_options(sub, o->eval);
    sub->add_option("--imgsz", o->calib.imgsz,
                    "Letterbox size of calibration images and evaluation (default: the model's "
                    "input size, else 640)");
    add_eval_decode_options(sub, o->eval);
    sub->add_option("--threads", o->eval.threads, "Threads (default: all cores)")
        ->check(CLI::NonNegativeNumber);
    sub->add_flag("-q,--quiet", o->eval.quiet, "No progress line or notes from the evaluations");
    auto shard_spec = std::make_shared<std::string>();
    add_shard_options(sub, *shard_spec, o->shard, "the schemes i % N == I, in K order");
    sub->callback([o, shard_spec, &run] {
        run = [o, shard_spec] {
            LOWBIT_TRY(pipeline::resolve_shard_options(*shard_spec, o->shard));
            o->engine = engine_switches_from_env();
            return pipeline::run_job(*o, stdout);
        };
    });
}

}  // namespace lowbit::cli
