// Pieces that several commands share, so that `candidates` and `run` do each step exactly as
// the standalone command does: calibration input (quantize, candidates), COCO evaluation of a
// model file (eval, candidates), exclusion lists, and results files (eval metrics + "variant").
#pragma once

#include <CLI/CLI.hpp>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "calib/calib_source.h"
#include "calib/calibrators.h"
#include "core/status.h"
#include "eval/evaluator.h"
#include "ir/graph.h"
#include "quant/numerics.h"
#include "quant/placement.h"

namespace lowbit::cli {

// ---- Calibration input: --calib FILE.npy | --calib-list FILE | --calib-images PATH...

struct CalibInputOptions {
    std::string npy;
    std::string list;
    std::vector<std::string> images;
    int64_t imgsz = 640;  // letterbox size for list/images (<= 0: the caller's default)
};

// Registers --calib (and ModelOpt's --calibration_data_path when `modelopt_spelling`),
// --calib-list, --calib-images. --imgsz is left to the command (its meaning may be wider).
void add_calib_input_options(CLI::App* sub, CalibInputOptions& o, bool modelopt_spelling);

// The calibration source the options name, or nullptr when none is given. More than one given is
// a usage error.
Result<std::unique_ptr<calib::CalibSource>> open_calib_input(const CalibInputOptions& o);

// ---- Calibration method: --calibration-method (ModelOpt: --calibration_method), --percentile
// (quantize, sensitivity, candidates).

struct CalibMethodOptions {
    std::string method = calib::kDefaultCalibMethodName;
    double percentile = 99.99;
};
void add_calib_method_options(CLI::App* sub, CalibMethodOptions& o);
// The parsed method and percentile; errors name the flag.
Result<std::pair<calib::CalibMethod, double>> parse_calib_method_options(
    const CalibMethodOptions& o);

// The image input of a model: its first graph input that is not an initializer (seed-spec
// §5.3); nullptr when there is none.
const ValueInfo* image_input(const Model& m);
// The letterbox size to use: `requested` when > 0, else the model's fixed square input size
// ([N, C, S, S] with S fixed), else 640.
int64_t image_size_for(const Model& m, int64_t requested);

// ---- Placement: which nodes get Q/DQ. quantize and sensitivity register the same flags (with
// ModelOpt's spellings), so that a sweep measures exactly the placement a quantize call writes.

struct PlacementCliOptions {
    std::vector<std::string> exclude_files;     // --exclude-nodes-file
    std::vector<std::string> exclude;           // --exclude (regex, repeatable)
    std::vector<std::string> nodes_to_exclude;  // ModelOpt: several regexes at once
    std::vector<std::string> op_types;
    std::vector<std::string> exclude_op_types;
    bool modelopt_parity = false;
    bool disable_mha_qdq = false;
};
void add_placement_options(CLI::App* sub, PlacementCliOptions& o);
// Sets everything in `p` but the mode: reads the exclusion files, checks the regexes.
Status apply_placement_options(const PlacementCliOptions& o, quant::PlacementOptions& p);

// --mode: int8 | fp8 (int4 refused with the reason).
Result<quant::QuantMode> parse_quant_mode(const std::string& s);
// --high-precision: fp32 | fp16.
Result<DType> parse_high_precision(const std::string& s);

// ---- Exclusion lists

// The seed's exclusion-file format (research/seed-spec.md §7.2): everything from '#' on is a
// comment, surrounding whitespace is trimmed, empty lines are skipped. Names are exact.
Result<std::vector<std::string>> read_node_list(const std::string& path);

// ---- COCO evaluation of a model file (the seed's eval flags, research/seed-spec.md §5.1)

struct EvalCliOptions {
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
};

// Which images: --data-root (also --data), --ann, --images, --image-ids-list, --max-images.
void add_eval_data_options(CLI::App* sub, EvalCliOptions& o);
// How detections are made and timed: --conf, --iou, --max-det, --pre-nms-topk, --warmup-runs,
// --skip-latency, --head, --scores, --class-map.
void add_eval_decode_options(CLI::App* sub, EvalCliOptions& o);

// Fills ann/images from --data-root or the bundled val set (assets/val/) and checks they exist.
Status resolve_eval_data(EvalCliOptions& o);

struct EvalRun {
    EvalResult result;
    EvalRunInfo info;  // what metrics.json records about the invocation
};

// Loads and plans o.model (default: the bundled model), evaluates it on the resolved data; notes
// go to stderr unless o.quiet.
Result<EvalRun> evaluate_model_file(EvalCliOptions o);

// The COCO summary and the mAP / latency lines `lowbit eval` prints on stdout.
void print_eval_result(const EvalResult& r);

// ---- Results files: metrics.json (eval_metrics_json) plus a top-level "variant" object

struct VariantInfo {
    std::string name;  // "baseline", "int8", "fp8_k5", ...
    std::string mode;  // "fp32", "int8", "fp8"
    std::optional<int> k;
    int64_t excluded_nodes = 0;      // names in the exclusion list used
    std::string calibration_method;  // empty for the float model
    std::string scheme;              // exclusion list path; empty when none
};

// Nodes other than Q/DQ (and Casts) that read a DequantizeLinear output, directly or through a
// Cast: the nodes the model runs on quantized inputs.
int64_t count_quantized_nodes(const Graph& g);

// {"name", "mode", "k", "excluded_nodes", "quantized_nodes", "calibration_method",
// "model_bytes", "scheme"}; quantized_nodes counted on `g`, model_bytes = size of the file. Fields
// that do not apply (k, calibration_method and scheme of the float model) are left out.
nlohmann::ordered_json variant_json(const VariantInfo& v, const Graph& g,
                                    const std::string& model_path);

// Writes `metrics` (eval_metrics_json) with "variant" added, atomically (parent folders made).
Status write_results_json(const std::string& path, nlohmann::ordered_json metrics,
                          const nlohmann::ordered_json& variant);

}  // namespace lowbit::cli
