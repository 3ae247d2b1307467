// lowbit mixed MODEL: mixed-precision search over per-node formats {INT4 weights + INT8
// activations, INT8, FP8, float} under a weight-byte budget and/or a maximum mAP drop. The work
// is run_job(pipeline::MixedJob) (pipeline/mixed_job.h).
#include <memory>

#include "cli/commands.h"
#include "cli/common.h"
#include "cli/options.h"
#include "pipeline/mixed_job.h"

namespace lowbit::cli {

void add_mixed_command(CLI::App& app, CommandFn& run) {
    auto o = std::make_shared<pipeline::MixedJob>();
    CLI::App* sub = app.add_subcommand(
        "mixed",
        "Mixed-precision search: every quantizable node with a weight gets one of int4w (INT4 "
        "weights, INT8 activations), int8, fp8 or float. (1) Measures each node's output-mse "
        "sensitivity in each format (as `sensitivity --mode w4a8|int8|fp8`). (2) Greedy search: "
        "start from the least-sensitive format per node, then repeatedly move the node whose "
        "smaller format adds the least sensitivity per weight byte saved; the states form an "
        "estimated Pareto front. (3) --budget-bytes picks the first state within the budget; "
        "--max-drop alone bisects the path with real quantize + eval (at most --max-evals) for "
        "the fewest bytes within the drop; with both, the budget state is evaluated and refused "
        "if its measured drop exceeds --max-drop. (4) Writes the model, the assignment (read by "
        "`quantize --assign`) and the measured Pareto front (mAP50-95 against weight bytes). "
        "Weight bytes are the model's initializer bytes as stored (INT4 two a byte). "
        "--budget-ms / --budget-latency: each node's latency in each format is measured from "
        "the real kernels (one profiled model per format, per-step times attributed to nodes, "
        "median of --latency-runs), the search runs against latency, and the chosen model's "
        "measured latency is reported beside the estimate. Every measured point gets its "
        "latency (a front against latency too).");
    sub->add_option("model", o->model, "Float ONNX model (default: the bundled model)");
    sub->add_option("--out", o->out, "The chosen model (written atomically)")->required();
    sub->add_option("--assignment-out", o->assignment_out,
                    "The chosen assignment JSON (default: OUT without .onnx + .assign.json)");
    sub->add_option("--pareto-out", o->pareto_out,
                    "Measured points and estimated path JSON (default: OUT without .onnx + "
                    ".pareto.json)");
    sub->add_option("--budget-bytes", o->budget_bytes,
                    "Weight-byte budget: N bytes, or a fraction of the all-INT8 model's weight "
                    "bytes written as 0.6x");
    sub->add_option("--budget-ms", o->budget_ms,
                    "Latency budget: X ms per image (this machine, --threads), estimated from "
                    "per-node latencies measured with the real kernels");
    sub->add_option("--budget-latency", o->budget_latency,
                    "Latency budget as a fraction of the FP32 model's measured latency, e.g. "
                    "0.5x");
    sub->add_option("--latency-runs", o->latency_runs,
                    "Timed runs per latency measurement (the median; one warm-up run first)")
        ->capture_default_str();
    sub->add_option("--max-drop", o->max_drop,
                    "Maximum mAP50-95 drop against FP32, measured by eval on --max-images")
        ->each([o](const std::string&) { o->max_drop_set = true; });
    sub->add_option("--formats", o->formats, "Formats to choose from: int4w int8 fp8 float")
        ->capture_default_str();
    sub->add_option("--weight-method", o->weight_method,
                    "INT4 rounding of int4w nodes: gptq, rtn or adaround (as quantize "
                    "--weight-method; the sensitivities are measured with RTN)")
        ->capture_default_str();
    sub->add_option("--block-size", o->block_size,
                    "int4w: one scale per block of N input channels (0: per output channel)")
        ->capture_default_str();
    sub->add_option("--gptq-samples", o->gptq_samples,
                    "GPTQ / AdaRound / bias correction: calibration samples for the Gram "
                    "matrices and input means (0: all)")
        ->capture_default_str();
    sub->add_option("--adaround-iters", o->adaround_iters,
                    "AdaRound (--weight-method adaround): Adam iterations per int4w Conv")
        ->capture_default_str();
    sub->add_option("--adaround-lambda", o->adaround_lambda,
                    "AdaRound: weight of the regularizer that drives each weight to round up or "
                    "down")
        ->capture_default_str();
    sub->add_flag("--bias-correction", o->bias_correction,
                  "int4w nodes: subtract each Conv's expected output error E[(Wq - W) x] from its "
                  "bias (as quantize --bias-correction; any --weight-method)");
    sub->add_option("--sens-images", o->sens_images,
                    "Images per sensitivity sweep (the first calibration samples)")
        ->capture_default_str();
    sub->add_option("--sensitivity-dir", o->sensitivity_dir,
                    "Cache the per-format sensitivities in DIR and reuse them when the model, "
                    "images and calibration match");
    sub->add_option("--max-evals", o->max_evals, "--max-drop: evaluations of the bisection")
        ->capture_default_str();
    sub->add_option("--front-points", o->front_points,
                    "Extra path states evaluated for the measured Pareto front")
        ->capture_default_str();
    add_calib_input_options(sub, o->calib, false);
    sub->add_option("--imgsz", o->calib.imgsz,
                    "Letterbox size for --calib-list/--calib-images (default: the model's input "
                    "size)");
    add_calib_method_options(sub, o->method);
    add_placement_options(sub, o->placement);
    add_eval_data_options(sub, o->eval);
    sub->add_option("--threads", o->threads, "Threads (default: all cores)");
    sub->add_flag("--quiet", o->quiet, "No progress on stderr");
    sub->callback([o, &run] {
        run = [o] {
            o->engine = engine_switches_from_env();
            o->eval.engine = o->engine;
            o->eval.threads = o->threads;
            return pipeline::run_job(*o, stdout);
        };
    });
}

}  // namespace lowbit::cli
