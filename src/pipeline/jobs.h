// Each lowbit command's work as a library call ("job"): typed options, the text the command
// prints written to a stream it is given, its files written, a Status returned. cli/cmd_<name>.cpp
// parses flags into the options and runs the job with stdout; the steps of `lowbit run`
// (pipeline/run_workflow.h) run the same jobs with the step's log, so a step does exactly what
// its standalone command line does. Notes and progress go to stderr, as the commands' do.
// (`eval` is in pipeline/eval_job.h.)
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "calib/calibrators.h"
#include "core/status.h"
#include "pipeline/eval_job.h"
#include "pipeline/job_inputs.h"

namespace lowbit::pipeline {

// `lowbit smoke`: the seed's random-tensor smoke test (research/seed-spec.md §6) plus timing and
// per-output statistics; the summary JSON to `out` (and out_dir/summary.json).
struct SmokeJob {
    std::string model;
    std::vector<std::string> inputs;  // .npy files, in graph-input order
    std::vector<std::string> input_shapes;
    std::string out_dir;
    uint64_t seed = 0;
    int warmup = 1;
    int runs = 5;
    int threads = 0;
    int default_image_size = 0;  // 0: 640 for yolo-named models, else 224 (as the seed)
    int batch = 0;  // > 0: the first dim of every input of rank >= 2 (where it is not fixed)
    bool save_outputs = false;
    bool reference = false;
    EngineSwitches engine;
};
Status run_job(const SmokeJob& o, std::FILE* out);

// `lowbit latency`: models timed in one process in interleaved rounds (node_latency.h
// measure_interleaved); per model the whole-run time statistics, per later model its time over
// the first model's, round by round. JSON to the stream.
struct LatencyJob {
    std::vector<std::string> models;
    std::vector<std::string> inputs;        // .npy per graph input, for every model (none: 0.5)
    std::vector<std::string> input_shapes;  // NAME:D0,D1,..., for every model
    int rounds = 20;
    int warmup = 2;
    int warm_runs = 1;  // untimed runs of a model right before each of its timed runs
    int threads = 0;
    EngineSwitches engine;
};
Status run_job(const LatencyJob& o, std::FILE* out);

// `lowbit calib`: image list or folder -> letterboxed float32 [N,3,S,S] .npy.
struct CalibJob {
    std::string list;
    std::string images_dir;
    std::string data_root;
    std::string out;
    int imgsz = 640;
    int max_images = 0;
    int threads = 0;
};
Status run_job(const CalibJob& o, std::FILE* out);

// `lowbit quantize`: quant::quantize_model on a model file, the model written to `out`, the
// summary JSON (or the --explain account) to the stream.
struct QuantizeJob {
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
    PlacementRequest placement;
    std::string high_precision = "fp32";
    std::vector<std::string> fp16_keep_ops;
    std::string ranges;
    bool dq_only = false;
    int64_t block_size = 0;             // INT4 modes: 0 = per output channel
    std::string weight_method = "rtn";  // INT4 modes: rtn, gptq or adaround
    int64_t gptq_samples = 32;          // 0: every calibration sample (also AdaRound's)
    int64_t adaround_iters = 500;
    double adaround_lambda = 5.0;
    bool bias_correction = false;
    std::string assign;  // per-node formats (quant/assignment.h), JSON file
    bool explain = false;
    std::string explain_json;
    std::vector<std::string> calibration_eps;  // accepted, not used
    std::vector<std::string> input_shapes;
    int threads = 0;
    EngineSwitches engine;
};
Status run_job(const QuantizeJob& o, std::FILE* out);

// `lowbit head-exclude`: the detection head's node names to `out` (a file); their count to the
// stream.
struct HeadExcludeJob {
    std::string model;
    std::string out;
    std::string scope;
    std::vector<std::string> op_types = {"Conv"};
};
Status run_job(const HeadExcludeJob& o, std::FILE* out);

// `lowbit sensitivity`: quant::run_sensitivity on a model file; report.json + report.md to `out`
// (a file), or the JSON to the stream when `out` is empty.
struct SensitivityJob {
    std::string model;
    std::string mode = "fp8";
    CalibInputOptions calib = {"", "", {}, 0};  // imgsz 0: the model's input size
    CalibMethodOptions method;
    int64_t images = 32;
    std::string metric = "output-mse";
    bool all_but_one = false;
    bool naive = false;
    bool reference_runs = false;
    std::string out;
    int threads = 0;
    PlacementRequest placement;  // as quantize
    std::vector<std::string> input_shapes;
    std::string data;  // metric map: COCO data root
    int val_images = 50;
    bool quiet = false;
    EngineSwitches engine;
    // --shard I/N --shard-dir DIR: this shard's images (nodes for --metric map) into a shard
    // file (pipeline/shard.h) instead of the report; `lowbit merge DIR` writes it.
    ShardOptions shard;
};
Status run_job(SensitivityJob o, std::FILE* out);
// The options that decide a sensitivity job's results and outputs, as shard files record and
// hash them; a new SensitivityJob field that changes results goes here and in the reader.
nlohmann::ordered_json sensitivity_job_json(const SensitivityJob& o);
Result<SensitivityJob> sensitivity_job_from_json(const nlohmann::json& j);
// `lowbit merge` of sensitivity shard files: report.json + report.md from the merged sums.
Status merge_sensitivity_shards(const std::vector<nlohmann::json>& shards, std::FILE* out);

// `lowbit schemes`: top-K exclusion lists from a sensitivity report; a table to the stream.
struct SchemesJob {
    std::string report;
    std::vector<int> ks = {0, 5, 10, 20};
    std::string out_dir;
    std::string model;
    int top_n_md = 25;
    std::string mode;
    std::string calibration_method = calib::calib_method_name(calib::kDefaultCalibMethod);
    std::string high_precision = "fp32";
};
Status run_job(const SchemesJob& o, std::FILE* out);

// `lowbit candidates`: one calibration pass, one quantized model per scheme, each evaluated as
// `eval` does into results_dir/<mode>_k{K}.json; a table to the stream.
struct CandidatesJob {
    std::string model;
    std::string schemes;
    std::string mode = "fp8";
    std::vector<int> ks;
    CalibInputOptions calib = {"", "", {}, 0};  // imgsz 0: the model's input size
    CalibMethodOptions method;
    int64_t calib_max = 0;
    std::string high_precision = "fp32";
    std::string out_dir;
    std::string results_dir;
    EvalJob eval;  // data, thresholds, threads (imgsz: calib.imgsz)
    EngineSwitches engine;
    // --shard I/N --shard-dir DIR: schemes i % N == I built and evaluated; their results go into
    // a shard file (pipeline/shard.h); `lowbit merge DIR` writes the results files.
    ShardOptions shard;
};
Status run_job(CandidatesJob o, std::FILE* out);
// The options that decide a candidates job's results and outputs, as shard files record and
// hash them; a new CandidatesJob field that changes results goes here.
nlohmann::ordered_json candidates_job_json(const CandidatesJob& o);
// `lowbit merge` of candidates shard files: every results file, and the table.
Status merge_candidates_shards(const std::vector<nlohmann::json>& shards, std::FILE* out);

// `lowbit compare`: the variants table and recommendation to the stream; summary.md and
// report.html when asked for.
struct CompareJob {
    std::vector<std::string> results;
    std::string out;
    std::string html;
    std::string baseline;
    std::vector<std::string> sensitivity;
    std::vector<std::string> mixed;  // `lowbit mixed` Pareto files
    double max_drop = 0.01;
    // > 0: every variant's ONNX model is timed again here, this many interleaved rounds (each
    // round runs every model once: slow phases of the machine hit all of them alike), and those
    // latencies replace the results files' (which were measured one evaluation after another).
    int interleave_rounds = 0;
    int threads = 0;  // engine threads for that timing (<= 0: one per core)
};
Status run_job(const CompareJob& o, std::FILE* out);

}  // namespace lowbit::pipeline
