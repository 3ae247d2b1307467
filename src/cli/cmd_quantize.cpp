// lowbit quantize MODEL: INT8 / FP8 post-training quantization with TensorRT-friendly Q/DQ
// placement (replaces the seed's quantize_yolov10m_{int8,fp8}_onnx.sh around ModelOpt,
// research/seed-spec.md §7). ModelOpt's flag spellings are accepted as aliases so the seed's
// wrapper calls translate one to one; where lowbit's meaning differs the help says so.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "calib/calib_source.h"
#include "calib/ranges_file.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "cli/pipeline_steps.h"
#include "core/fs.h"
#include "data/image_list.h"
#include "onnx/model_io.h"
#include "quant/explain.h"
#include "quant/pipeline.h"
#include "runtime/executor.h"

namespace lowbit::cli {

namespace {

namespace fs = std::filesystem;

struct QuantizeCliOptions {
    std::string model;
    std::string onnx_path;  // ModelOpt's --onnx_path
    std::string mode = "int8";
    std::string out;
    CalibInputOptions calib;  // imgsz: --imgsz
    CalibMethodOptions method;
    int64_t calib_batch = 1;
    int64_t calib_max = 0;
    bool zero_point = false;
    std::string zero_point_type = "uint8";
    std::string use_zero_point;  // ModelOpt alias, takes a value
    PlacementCliOptions placement;
    std::string high_precision = "fp32";
    std::vector<std::string> fp16_keep_ops;
    std::string ranges;
    bool dq_only = false;
    bool explain = false;
    std::string explain_json;
    std::vector<std::string> calibration_eps;  // accepted, not used
    std::vector<std::string> input_shapes;
    int threads = 0;
};

// ModelOpt parses --use_zero_point with type=bool, so any non-empty word is true; lowbit reads
// the word itself.
Result<bool> parse_bool_word(const std::string& s) {
    std::string l = s;
    for (auto& c : l) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (l == "true" || l == "1" || l == "yes" || l == "on") return true;
    if (l == "false" || l == "0" || l == "no" || l == "off" || l.empty()) return false;
    return invalid("--use_zero_point '{}': expected True or False", s);
}

int run_quantize(const QuantizeCliOptions& o) {
    const char* cmd = "quantize";
    if (!o.model.empty() && !o.onnx_path.empty() && o.model != o.onnx_path) {
        return report(cmd,
                      invalid("MODEL '{}' and --onnx_path '{}' disagree", o.model, o.onnx_path));
    }
    auto path = resolve_model_path(o.model.empty() ? o.onnx_path : o.model);
    if (!path) return report(cmd, path.status());

    quant::QuantizeOptions q;
    auto mode = parse_quant_mode(o.mode);
    if (!mode) return report(cmd, mode.status());
    q.placement.mode = *mode;
    auto method = parse_calib_method_options(o.method);
    if (!method) return report(cmd, method.status());
    std::tie(q.method, q.percentile) = *method;
    auto high = parse_high_precision(o.high_precision);
    if (!high) return report(cmd, high.status());
    q.high_precision = *high;
    bool zp = o.zero_point;
    if (!o.use_zero_point.empty()) {
        auto b = parse_bool_word(o.use_zero_point);
        if (!b) return report(cmd, b.status());
        if (*b) {
            std::fprintf(stderr,
                         "lowbit quantize: note: --use_zero_point True gives asymmetric "
                         "activations; ModelOpt itself ignores this flag for INT8/FP8\n");
        }
        zp = zp || *b;
    }
    if (zp) {
        if (q.placement.mode == quant::QuantMode::Fp8) {
            return report(cmd, invalid("--zero-point applies to INT8 only"));
        }
        if (o.zero_point_type == "uint8")
            q.zero_point = DType::UInt8;
        else if (o.zero_point_type == "int8")
            q.zero_point = DType::Int8;
        else
            return report(cmd, invalid("--zero-point-type '{}': uint8 or int8", o.zero_point_type));
    }
    if (Status st = apply_placement_options(o.placement, q.placement); !st) {
        return report(cmd, st);
    }
    q.fp16_keep_ops = o.fp16_keep_ops;
    q.dq_only = o.dq_only;
    q.run.batch = o.calib_batch;
    q.run.max_samples = o.calib_max;
    q.run.n_threads = o.threads;
    apply_env_switches(q.run);
    q.model_name = fs::path(*path).filename().string();
    auto shapes = parse_input_shapes(o.input_shapes);
    if (!shapes) return report(cmd, shapes.status());
    q.input_shapes = *shapes;
    if (!o.calibration_eps.empty()) {
        std::fprintf(stderr,
                     "lowbit quantize: note: --calibration_eps is accepted for ModelOpt "
                     "compatibility and ignored (lowbit calibrates on its own engine)\n");
    }

    using Clock = std::chrono::steady_clock;
    const auto t0 = Clock::now();
    auto model = load_model(*path);
    if (!model) return report(cmd, model.status());

    const bool only_explain = (o.explain || !o.explain_json.empty()) && o.out.empty();
    if (o.out.empty() && !only_explain) {
        return report(cmd,
                      invalid("--out OUT.onnx is required (or --explain alone for a dry run)"));
    }
    auto write_explain = [&](const Graph& g, const quant::Placement& p,
                             const std::vector<double>* amax) -> Status {
        if (o.explain) std::fputs(quant::placement_to_text(g, p, amax).c_str(), stdout);
        if (!o.explain_json.empty()) {
            LOWBIT_TRY(write_file_atomic(o.explain_json,
                                         quant::placement_to_json(g, p, amax).dump(1) + "\n"));
        }
        return Status::ok();
    };
    if (only_explain) {
        auto prepared = quant::prepare_float_model(*model);
        if (!prepared) return report(cmd, prepared.status());
        auto p = quant::plan_placement(*prepared, q);
        if (!p) return report(cmd, p.status().with_context(*path));
        return report(cmd, write_explain(prepared->graph, *p, nullptr));
    }

    // Calibration source, or saved ranges.
    auto opened = open_calib_input(o.calib);
    if (!opened) return report(cmd, opened.status());
    std::unique_ptr<calib::CalibSource> source = std::move(opened).value();
    std::error_code ec;
    if (!source && !o.ranges.empty() && fs::exists(o.ranges, ec)) {
        auto r = calib::load_ranges(o.ranges);
        if (!r) return report(cmd, r.status());
        q.ranges = std::move(r).value();
        std::fprintf(stderr, "lowbit quantize: reusing ranges from %s (%s, %lld samples)\n",
                     o.ranges.c_str(), q.ranges->method.c_str(),
                     static_cast<long long>(q.ranges->samples));
    }
    if (source) {
        std::fprintf(stderr, "lowbit quantize: calibrating on %s\n", source->describe().c_str());
    }

    auto res = quant::quantize_model(*model, source.get(), q);
    if (!res) return report(cmd, res.status().with_context(*path));
    if (Status st = save_model(res->model, o.out); !st) return report(cmd, st);
    if (source && !o.ranges.empty()) {
        if (Status st = calib::save_ranges(o.ranges, res->ranges); !st) return report(cmd, st);
    }
    const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    auto prepared = quant::prepare_float_model(*model);
    if (!prepared) return report(cmd, prepared.status());
    if (Status st = write_explain(prepared->graph, res->placement, &res->amax); !st) {
        return report(cmd, st);
    }
    for (const auto& n : res->notes) std::fprintf(stderr, "lowbit quantize: %s\n", n.c_str());

    // A float16 high-precision part needs float16 kernels; say so if this engine lacks them.
    std::string engine = "ok";
    if (q.high_precision == DType::Float16) {
        ExecutorOptions eo;
        eo.input_shapes = q.input_shapes;
        apply_env_switches(eo);
        auto ex = Executor::create(res->model, eo);
        if (!ex) {
            engine = ex.status().message();
            std::fprintf(stderr,
                         "lowbit quantize: warning: lowbit's engine cannot run the float16 "
                         "model yet (%s); ONNX Runtime and TensorRT can\n",
                         engine.c_str());
        }
    }

    int quantized_convs = 0, convs = 0;
    for (const auto& n : prepared->graph.nodes) convs += n.op_type == "Conv";
    for (const auto& [i, r] : res->placement.selected) {
        quantized_convs += prepared->graph.nodes[i].op_type == "Conv";
    }
    nlohmann::ordered_json summary = {
        {"model", *path},
        {"output", o.out},
        {"mode", o.mode},
        {"calibration_method", calib::calib_method_name(q.method)},
        {"calibration_samples", res->samples},
        {"calibration_seconds", res->calib_seconds},
        {"high_precision", o.high_precision},
        {"zero_point", q.zero_point ? dtype_name(*q.zero_point) : "none"},
        {"dq_only", q.dq_only},
        {"activation_qdq_pairs", res->rewrite.activation_pairs},
        {"weight_qdq", res->rewrite.weight_pairs + res->rewrite.weight_dq},
        {"quantized_nodes", res->placement.selected.size()},
        {"quantized_convs", quantized_convs},
        {"convs", convs},
        {"excluded_nodes", res->placement.excluded.size()},
        {"opset", res->model.default_opset()},
        {"lowbit_engine", engine},
        {"seconds", seconds},
        {"notes", res->notes}};
    if (!o.explain) std::printf("%s\n", summary.dump(2).c_str());
    std::fprintf(stderr,
                 "lowbit quantize: wrote %s (%d activation + %d weight Q/DQ, %d/%d Convs "
                 "quantized) in %.1f s\n",
                 o.out.c_str(), res->rewrite.activation_pairs,
                 res->rewrite.weight_pairs + res->rewrite.weight_dq, quantized_convs, convs,
                 seconds);
    return 0;
}

}  // namespace

void add_quantize_command(CLI::App& app, CommandFn& run) {
    auto o = std::make_shared<QuantizeCliOptions>();
    CLI::App* sub = app.add_subcommand(
        "quantize",
        "INT8 / FP8 post-training quantization: calibrate (streaming; entropy, max, percentile or "
        "mse), place Q/DQ by TensorRT-friendly rules (ModelOpt's, plus the YOLO SiLU residual "
        "rule), write a QuantizeLinear/DequantizeLinear ONNX model. ModelOpt spellings "
        "(--quantize_mode, --calibration_data_path, ...) are accepted.");
    sub->add_option("model", o->model, "Float ONNX model (default: the bundled model)");
    sub->add_option("--onnx_path", o->onnx_path, "Same as MODEL (ModelOpt spelling)");
    sub->add_option("--mode,--quantize_mode", o->mode, "int8 or fp8")->capture_default_str();
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
    sub->callback([o, &run] { run = [o] { return run_quantize(*o); }; });
}

}  // namespace lowbit::cli
