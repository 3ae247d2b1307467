// lowbit sensitivity MODEL: per-node quantization sensitivity measured on the ONNX graph by
// direct perturbation (replaces the seed's run_yolov10m_layer_sensitivity_sweep.sh Torch proxy,
// research/seed-spec.md §9). quant/sensitivity/ has the method, report/sensitivity_writer.h the
// files. This file declares the flags; the work is run_job(pipeline::SensitivityJob)
// (pipeline/jobs.h).
#include <memory>

#include "cli/commands.h"
#include "cli/common.h"
#include "cli/options.h"
#include "pipeline/jobs.h"

namespace lowbit::cli {

void add_sensitivity_command(CLI::App& app, CommandFn& run) {
    auto o = std::make_shared<pipeline::SensitivityJob>();
    CLI::App* sub = app.add_subcommand(
        "sensitivity",
        "Per-node quantization sensitivity on the ONNX graph: fake-quantize each node that "
        "`quantize` would quantize (alone, or all but it with --all-but-one) with quantize's "
        "exact numerics and measure the change of the outputs against float32. Incremental: "
        "only the part of the graph downstream of the node is re-run. Writes a ranked JSON "
        "report and a markdown table beside it.");
    sub->add_option("model", o->model, "Float ONNX model (default: the bundled model)");
    sub->add_option("--mode", o->mode,
                    "fp8, int8, w4a8 (INT4 weights per channel, RTN, and INT8 activations, as "
                    "quantize --mode w4a8) or int4 / w4a16 (INT4 weights, float activations)")
        ->capture_default_str()
        ->check(CLI::IsMember({"fp8", "int8", "w4a8", "w4a16", "int4"}));
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
                    "precision on the bundled model), detection (task-aware: decoded boxes and "
                    "class scores against float32, squared differences weighted by confidence; "
                    "raw DFL, decoded and end-to-end heads) or map (mAP50-95 drop "
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
    auto shard_spec = std::make_shared<std::string>();
    add_shard_options(sub, *shard_spec, o->shard, "the compared images i % N == I (for --metric map: the nodes)");
    sub->callback([o, shard_spec, &run] {
        run = [o, shard_spec] {
            LOWBIT_TRY(pipeline::resolve_shard_options(*shard_spec, o->shard));
            o->engine = engine_switches_from_env();
            return pipeline::run_job(*o, stdout);
        };
    });
}

}  // namespace lowbit::cli
