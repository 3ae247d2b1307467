// `lowbit quantize` as a job (pipeline/jobs.h): flags -> QuantizeOptions, quant::quantize_model,
// the model written, the summary (or --explain account) printed.
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "calib/calib_source.h"
#include "calib/ranges_file.h"
#include "core/fs.h"
#include "core/json_at.h"
#include "core/path_guard.h"
#include "onnx/model_io.h"
#include "pipeline/jobs.h"
#include "quant/explain.h"
#include "quant/quantize_model.h"
#include "runtime/executor.h"

namespace lowbit::pipeline {

namespace {

namespace fs = std::filesystem;

// ModelOpt parses --use_zero_point with type=bool, so any non-empty word is true; lowbit reads
// the word itself.
Result<bool> parse_bool_word(const std::string& s) {
    std::string l = s;
    for (auto& c : l) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (l == "true" || l == "1" || l == "yes" || l == "on") return true;
    if (l == "false" || l == "0" || l == "no" || l == "off" || l.empty()) return false;
    return invalid("--use_zero_point '{}': expected True or False", s);
}

// The QuantizeOptions the job's flags ask for (`path`: the resolved model), checked.
Result<quant::QuantizeOptions> quantize_options(const QuantizeJob& o, const std::string& path) {
    quant::QuantizeOptions q;
    // w4a16 / w4a8: INT4 weights; activations float, or INT8 as --mode int8 places them.
    if (!o.assign.empty()) {
        // Per-node formats over the INT8 placement; INT4 options apply to the int4w nodes.
        if (o.mode != "int8" && o.mode != "w4a8") {
            return invalid(
                "--assign works over the INT8 placement: --mode int8 or w4a8, not {} "
                "(give fp8 / float per node in the file)",
                o.mode);
        }
        if (o.dq_only) {
            std::fprintf(stderr,
                         "lowbit quantize: note: --assign stores weights quantized "
                         "already (--dq-only is implied)\n");
        }
        q.placement.mode = quant::QuantMode::Int8;
        q.int4.enabled = true;
        LOWBIT_ASSIGN(nlohmann::json j, read_json_file(o.assign));
        LOWBIT_ASSIGN(q.assignment, quant::assignment_from_json(j, o.assign));
        q.assignment_source = o.assign;
    } else if (o.mode == "w4a16" || o.mode == "w4a8") {
        q.placement.mode = quant::QuantMode::Int8;
        q.int4.enabled = true;
        q.weights_only = o.mode == "w4a16";
    } else {
        LOWBIT_ASSIGN(q.placement.mode, parse_quant_mode(o.mode));
    }
    if (o.block_size != 0 && !q.int4.enabled) {
        return invalid("--block-size applies to --mode w4a16 or w4a8 (INT4 weights), not {}",
                       o.mode);
    }
    if (o.block_size < 0) return invalid("--block-size {} must be positive", o.block_size);
    q.int4.block_size = o.block_size;
    if (o.weight_method == "gptq" || o.weight_method == "adaround") {
        if (!q.int4.enabled) {
            return invalid("--weight-method {} applies to --mode w4a16 or w4a8, not {}",
                           o.weight_method, o.mode);
        }
        q.weight_method =
            o.weight_method == "gptq" ? quant::WeightMethod::Gptq : quant::WeightMethod::Adaround;
    } else if (o.weight_method != "rtn") {
        return invalid("--weight-method '{}': expected rtn, gptq or adaround", o.weight_method);
    }
    if (o.bias_correction && !q.int4.enabled) {
        return invalid("--bias-correction applies to --mode w4a16 or w4a8, not {}", o.mode);
    }
    q.bias_correction = o.bias_correction;
    if (o.gptq_samples < 0) return invalid("--gptq-samples {} is negative", o.gptq_samples);
    q.gptq_samples = o.gptq_samples;
    if (o.adaround_iters < 1) {
        return invalid("--adaround-iters {} must be at least 1", o.adaround_iters);
    }
    if (!(o.adaround_lambda >= 0) || !std::isfinite(o.adaround_lambda)) {
        return invalid("--adaround-lambda {} must be a finite number >= 0", o.adaround_lambda);
    }
    q.adaround.iters = o.adaround_iters;
    q.adaround.lambda = o.adaround_lambda;
    LOWBIT_ASSIGN(auto method, parse_calib_method_options(o.method));
    std::tie(q.method, q.percentile) = method;
    LOWBIT_ASSIGN(q.high_precision, parse_high_precision(o.high_precision));
    bool zp = o.zero_point;
    if (!o.use_zero_point.empty()) {
        LOWBIT_ASSIGN(bool b, parse_bool_word(o.use_zero_point));
        if (b) {
            std::fprintf(stderr,
                         "lowbit quantize: note: --use_zero_point True gives asymmetric "
                         "activations; ModelOpt itself ignores this flag for INT8/FP8\n");
        }
        zp = zp || b;
    }
    if (zp) {
        if (q.placement.mode == quant::QuantMode::Fp8) {
            return invalid("--zero-point applies to INT8 only");
        }
        if (o.zero_point_type == "uint8")
            q.zero_point = DType::UInt8;
        else if (o.zero_point_type == "int8")
            q.zero_point = DType::Int8;
        else
            return invalid("--zero-point-type '{}': uint8 or int8", o.zero_point_type);
    }
    LOWBIT_TRY(apply_placement_options(o.placement, q.placement));
    q.fp16_keep_ops = o.fp16_keep_ops;
    q.dq_only = o.dq_only;
    q.run.batch = o.calib_batch;
    q.run.max_samples = o.calib_max;
    q.run.n_threads = o.threads;
    apply_engine_switches(o.engine, q.run);
    q.model_name = fs::path(path).filename().string();
    LOWBIT_ASSIGN(q.input_shapes, parse_input_shapes(o.input_shapes));
    if (!o.calibration_eps.empty()) {
        std::fprintf(stderr,
                     "lowbit quantize: note: --calibration_eps is accepted for ModelOpt "
                     "compatibility and ignored (lowbit calibrates on its own engine)\n");
    }
    return q;
}

// --explain (text to `out`) and --explain-json (a file).
Status write_explain(const QuantizeJob& o, const Graph& g, const quant::Placement& p,
                     const std::vector<double>* amax, std::FILE* out) {
    if (o.explain) std::fputs(quant::placement_to_text(g, p, amax).c_str(), out);
    if (!o.explain_json.empty()) {
        LOWBIT_TRY(
            write_file_atomic(o.explain_json, quant::placement_to_json(g, p, amax).dump(1) + "\n"));
    }
    return Status::ok();
}

// The calibration source the flags name (nullptr when none), or the saved ranges put into `q`.
Result<std::unique_ptr<calib::CalibSource>> open_source_or_ranges(const QuantizeJob& o,
                                                                  quant::QuantizeOptions& q) {
    LOWBIT_ASSIGN(std::unique_ptr<calib::CalibSource> source, open_calib_input(o.calib));
    std::error_code ec;
    if (!source && !o.ranges.empty() && fs::exists(o.ranges, ec)) {
        LOWBIT_ASSIGN(q.ranges, calib::load_ranges(o.ranges));
        std::fprintf(stderr, "lowbit quantize: reusing ranges from %s (%s, %lld samples)\n",
                     o.ranges.c_str(), q.ranges->method.c_str(),
                     static_cast<long long>(q.ranges->samples));
    }
    if (source) {
        std::fprintf(stderr, "lowbit quantize: calibrating on %s\n", source->describe().c_str());
    }
    return source;
}

// "ok", or why lowbit's engine cannot plan a float16 high-precision model (it lacks float16
// kernels; other runtimes have them).
std::string engine_check(const quant::QuantizeOptions& q, const Model& quantized) {
    if (q.high_precision != DType::Float16) return "ok";
    ExecutorOptions eo;
    eo.input_shapes = q.input_shapes;
    eo.profile = q.run.profile;
    eo.conv_winograd = q.run.conv_winograd;
    auto ex = Executor::create(quantized, eo);
    if (ex) return "ok";
    std::fprintf(stderr,
                 "lowbit quantize: warning: lowbit's engine cannot run the float16 "
                 "model yet (%s); ONNX Runtime and TensorRT can\n",
                 ex.status().message().c_str());
    return ex.status().message();
}

}  // namespace

Status run_job(const QuantizeJob& o, std::FILE* out) {
    if (!o.model.empty() && !o.onnx_path.empty() && o.model != o.onnx_path) {
        return invalid("MODEL '{}' and --onnx_path '{}' disagree", o.model, o.onnx_path);
    }
    LOWBIT_ASSIGN(const std::string path,
                  resolve_model_path(o.model.empty() ? o.onnx_path : o.model));
    LOWBIT_ASSIGN(quant::QuantizeOptions q, quantize_options(o, path));
    {
        PathRoles roles;
        roles.input("MODEL", path);
        roles.input("--assign", o.assign);
        declare_calib_inputs(o.calib, roles);
        declare_placement_inputs(o.placement, roles);
        const bool calibrating =
            !o.calib.npy.empty() || !o.calib.list.empty() || !o.calib.images.empty();
        // --ranges is written after calibrating, read when there is nothing to calibrate on.
        if (calibrating) {
            roles.output("--ranges", o.ranges);
        } else {
            roles.input("--ranges", o.ranges);
        }
        roles.output("--out", o.out);
        roles.output("--explain-json", o.explain_json);
        LOWBIT_TRY(check_path_roles(roles));
    }

    using Clock = std::chrono::steady_clock;
    const auto t0 = Clock::now();
    LOWBIT_ASSIGN(Model model, load_model(path));
    LOWBIT_TRY(check_exclusion_files(o.placement, model.graph, path));

    const bool only_explain = (o.explain || !o.explain_json.empty()) && o.out.empty();
    if (o.out.empty() && !only_explain) {
        return invalid("--out OUT.onnx is required (or --explain alone for a dry run)");
    }
    if (only_explain) {
        LOWBIT_ASSIGN(Model prepared, quant::prepare_float_model(model));
        auto p = quant::plan_placement(prepared, q);
        if (!p) return p.status().with_context(path);
        return write_explain(o, prepared.graph, *p, nullptr, out);
    }

    std::unique_ptr<calib::CalibSource> source;
    if (!q.weights_only || q.weight_method != quant::WeightMethod::Rtn || q.bias_correction) {
        LOWBIT_ASSIGN(source, open_source_or_ranges(o, q));
    } else if (!o.calib.npy.empty() || !o.calib.list.empty() || !o.calib.images.empty()) {
        std::fprintf(stderr,
                     "lowbit quantize: note: --mode w4a16 keeps activations float; the "
                     "calibration data is not read\n");
    }
    auto res = quant::quantize_model(model, source.get(), q);
    if (!res) return res.status().with_context(path);
    LOWBIT_TRY(save_model(res->model, o.out));
    if (source && !o.ranges.empty()) LOWBIT_TRY(calib::save_ranges(o.ranges, res->ranges));
    const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    LOWBIT_ASSIGN(Model prepared, quant::prepare_float_model(model));
    LOWBIT_TRY(write_explain(o, prepared.graph, res->placement, &res->amax, out));
    for (const auto& n : res->notes) std::fprintf(stderr, "lowbit quantize: %s\n", n.c_str());
    const std::string engine = engine_check(q, res->model);

    int quantized_convs = 0, convs = 0;
    for (const auto& n : prepared.graph.nodes) convs += n.op_type == "Conv";
    for (const auto& [i, r] : res->placement.selected) {
        quantized_convs += prepared.graph.nodes[i].op_type == "Conv";
    }
    nlohmann::ordered_json summary = {
        {"model", path},
        {"output", o.out},
        {"mode", o.mode},
        {"calibration_method", calib::calib_method_name(q.method)},
        {"calibration_samples", res->samples},
        {"calibration_seconds", res->calib_seconds},
        {"high_precision", o.high_precision},
        {"zero_point", q.zero_point ? dtype_name(*q.zero_point) : "none"},
        {"dq_only", q.dq_only || q.int4.enabled},
        {"weights", q.assignment     ? "assigned"
                    : q.int4.enabled ? "int4"
                                     : o.mode},
        {"block_size", q.int4.block_size},
        {"weight_method", o.weight_method},
        {"gptq_weights", res->gptq_weights},
        {"gptq_seconds", res->gptq_seconds},
        {"adaround_weights", res->adaround_weights},
        {"adaround_seconds", res->adaround_seconds},
        {"adaround_flipped", res->adaround.flipped},
        {"adaround_rows_kept_rtn", res->adaround.rows_kept_rtn},
        {"bias_corrected", res->bias_corrected},
        {"activation_qdq_pairs", res->rewrite.activation_pairs},
        {"weight_qdq", res->rewrite.weight_pairs + res->rewrite.weight_dq},
        {"placement", o.placement.placement},
        {"quantized_nodes", res->placement.selected.size()},
        {"quantized_convs", quantized_convs},
        {"convs", convs},
        {"excluded_nodes", res->placement.excluded.size()},
        {"opset", res->model.default_opset()},
        {"weight_bytes", quant::initializer_bytes(res->model)},
        {"lowbit_engine", engine},
        {"seconds", seconds},
        {"notes", res->notes}};
    if (!o.explain) std::fprintf(out, "%s\n", summary.dump(2).c_str());
    std::fprintf(stderr,
                 "lowbit quantize: wrote %s (%d activation + %d weight Q/DQ, %d/%d Convs "
                 "quantized) in %.1f s\n",
                 o.out.c_str(), res->rewrite.activation_pairs,
                 res->rewrite.weight_pairs + res->rewrite.weight_dq, quantized_convs, convs,
                 seconds);
    return Status::ok();
}

}  // namespace lowbit::pipeline
