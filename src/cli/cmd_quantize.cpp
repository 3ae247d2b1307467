// lowbit quantize MODEL: INT8 / FP8 post-training quantization with TensorRT-friendly Q/DQ
// placement (replaces the seed's quantize_yolov10m_{int8,fp8}_onnx.sh around ModelOpt,
// research/seed-spec.md §7). ModelOpt's flag spellings are accepted as aliases so the seed's
// wrapper calls translate one to one; where lowbit's meaning differs the help says so.
// This file declares the flags; the work is run_job(pipeline::QuantizeJob) (pipeline/jobs.h).
#include <memory>

#include "cli/commands.h"
#include "cli/common.h"
#include "cli/options.h"
#include "pipeline/jobs.h"

namespace lowbit::cli {

void add_quantize_command(CLI::App& app, CommandFn& run) {
    auto o = std::make_shared<pipeline::QuantizeJob>();
    CLI::App* sub = app.add_subcommand(
        "quantize",
        "INT8 / FP8 post-training quantization: calibrate (streaming; entropy, max, percentile or "
        "mse), place Q/DQ by TensorRT-friendly rules (ModelOpt's, plus the YOLO SiLU residual "
        "rule), write a QuantizeLinear/DequantizeLinear ONNX model. ModelOpt spellings "
        "(--quantize_mode, --calibration_data_path, ...) are accepted.");
    sub->add_option("model", o->model, "Float ONNX model (default: the bundled model)");
    sub->add_option("--onnx_path", o->onnx_path, "Same as MODEL (ModelOpt spelling)");
    sub->add_option("--mode,--quantize_mode", o->mode,
                    "int8, fp8, w4a16 (INT4 weights of every Conv/Gemm/MatMul, float "
                    "activations, no calibration) or w4a8 (INT4 weights, INT8 activations placed "
                    "and calibrated as int8); INT4 models use opset 21")
        ->capture_default_str();
    sub->add_option("--block-size", o->block_size,
                    "INT4 weights: one scale per block of N input channels (opset 21 "
                    "DequantizeLinear block_size) instead of one per output channel");
    sub->add_option("--weight-method", o->weight_method,
                    "INT4 weight rounding: rtn (round to nearest), gptq (second-order error "
                    "feedback from each Conv's input Gram matrix over the calibration data) or "
                    "adaround (learned up/down rounding minimizing each Conv's output error on "
                    "that Gram matrix); gptq and adaround need --calib, also in w4a16")
        ->capture_default_str();
    sub->add_option("--gptq-samples", o->gptq_samples,
                    "GPTQ / AdaRound / bias correction: gather the Gram matrices and means from "
                    "the first N calibration samples (0: all; 32 "
                    "match all 100 on the bundled model at a third of the time; "
                    "w4a8 still calibrates activations on all)")
        ->capture_default_str();
    sub->add_option("--adaround-iters", o->adaround_iters,
                    "AdaRound: Adam iterations per Conv (the first 20 % without the rounding "
                    "regularizer)")
        ->capture_default_str();
    sub->add_option("--adaround-lambda", o->adaround_lambda,
                    "AdaRound: weight of the regularizer that drives each weight to round up or "
                    "down, against the output error in squared grid steps")
        ->capture_default_str();
    sub->add_flag("--bias-correction", o->bias_correction,
                  "INT4 weights: subtract each Conv's expected output error E[(Wq - W) x] (input "
                  "mean from the first --gptq-samples calibration samples) from its bias; any "
                  "--weight-method, needs --calib");
    sub->add_option("--assign", o->assign,
                    "Per-node formats, JSON {\"default\": \"int8\", \"nodes\": {NODE: "
                    "int4w|int8|fp8|float}} (as `lowbit mixed` writes): over the INT8 placement, "
                    "int4w = INT4 weights (--block-size, --weight-method apply) with INT8 "
                    "activations, fp8 = FP8 activations and weights, float = excluded; weights "
                    "stored quantized. Unknown or unquantizable node names are errors");
    sub->add_option("--out,--output_path", o->out, "Output ONNX path (written atomically)");
    add_calib_input_options(sub, o->calib, true);
    sub->add_option("--imgsz", o->calib.imgsz, "Letterbox size for --calib-list/--calib-images")
        ->capture_default_str();
    add_calib_method_options(sub, o->method);
    sub->add_option("--calib-batch", o->calib_batch,
                    "Samples per engine run when the model's batch axis is free (results do not "
                    "depend on it)")
        ->capture_default_str()
        ->check(CLI::PositiveNumber);
    sub->add_option("--calib-max", o->calib_max, "Use only the first N calibration samples");
    sub->add_flag("--zero-point", o->zero_point,
                  "Asymmetric activations (uint8 by default; TensorRT needs symmetric)");
    sub->add_option("--zero-point-type", o->zero_point_type, "uint8 or int8 for --zero-point")
        ->capture_default_str();
    sub->add_option("--use_zero_point", o->use_zero_point,
                    "ModelOpt spelling of --zero-point, with a True/False value (ModelOpt ignores "
                    "it for INT8/FP8; lowbit honours it)");
    add_placement_options(sub, o->placement);
    sub->add_option("--high-precision,--high_precision_dtype", o->high_precision,
                    "Precision of the non-quantized part: fp32, or fp16 (ModelOpt's default; "
                    "graph I/O types kept via boundary Casts)")
        ->capture_default_str();
    sub->add_option("--exclude-fp16-op-types,--op_types_to_exclude_fp16", o->fp16_keep_ops,
                    "With --high-precision fp16: op types kept float32 between Casts");
    sub->add_option("--ranges", o->ranges,
                    "JSON of calibrated ranges: written after calibration; reused (no "
                    "calibration) when it exists and no calibration data is given");
    sub->add_flag("--dq-only,--dq_only", o->dq_only,
                  "Store weights quantized with only a DequantizeLinear");
    sub->add_flag("--explain", o->explain,
                  "Print every quantized tensor with its rule and every skipped candidate with "
                  "its reason (without --out: placement only, no calibration)");
    sub->add_option("--explain-json", o->explain_json, "Write the --explain account as JSON");
    sub->add_option("--calibration_eps", o->calibration_eps,
                    "Accepted for ModelOpt compatibility; ignored");
    sub->add_option("--input-shape", o->input_shapes, "Fix an input's shape, NAME:D0,D1,...");
    sub->add_option("--threads", o->threads, "Threads (default: all cores)");
    sub->callback([o, &run] {
        run = [o] {
            o->engine = engine_switches_from_env();
            return pipeline::run_job(*o, stdout);
        };
    });
}

}  // namespace lowbit::cli
