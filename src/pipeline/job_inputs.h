// What the jobs of pipeline/jobs.h share in how they read their inputs: the bundled assets and
// default model, input shapes, the calibration input (--calib | --calib-list | --calib-images) and
// method, Q/DQ placement choices, modes, and exclusion lists. The CLI registers flags that fill
// these structs (cli/options.h); `lowbit run` fills them directly.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "calib/calib_source.h"
#include "calib/calibrate.h"
#include "calib/calibrators.h"
#include "core/path_guard.h"
#include "core/status.h"
#include "ir/graph.h"
#include "quant/numerics.h"
#include "quant/placement.h"
#include "runtime/executor.h"

namespace lowbit::pipeline {

// ---- Engine switches

// The executor's diagnostic switches a job passes to every executor it makes (the calibration
// run's included). The library never reads the environment: the CLI fills these from
// LOWBIT_PROFILE / LOWBIT_CONV_WINOGRAD (cli/common.h), and `lowbit run` hands its own to each
// step's job, so a step behaves as its printed command line would.
struct EngineSwitches {
    int profile = 0;            // ExecutorOptions::profile
    bool conv_winograd = true;  // ExecutorOptions::conv_winograd
    bool lowp_kernels = true;   // ExecutorOptions::lowp_kernels (LOWBIT_LOWP_KERNELS)
    bool int8_direct = true;    // ExecutorOptions::int8_direct (LOWBIT_QCONV_DIRECT)
};
void apply_engine_switches(const EngineSwitches& e, ExecutorOptions& eo);
void apply_engine_switches(const EngineSwitches& e, calib::CalibRunOptions& ro);

// ---- Bundled assets

// The folder of bundled assets, the first of: $LOWBIT_ASSETS; the nearest `assets/` holding the
// default model in the binary's folder or above (a build tree inside the repository);
// `../share/lowbit/assets` from the binary's folder (an install prefix); the nearest such
// `assets/` in the current folder or above (a binary built or copied elsewhere, run inside the
// repository). `dir` is empty if none is found; `tried` names each place looked at, in order.
struct AssetsLookup {
    std::string dir;
    std::vector<std::string> tried;
};
AssetsLookup find_assets();
std::string assets_dir();  // find_assets().dir
// For error messages about missing bundled files: " (assets folder: D)" or
// " (no assets folder ... found; looked at: ...)".
std::string assets_not_found_note();

// File name, inside assets_dir(), of the model commands use when none is given.
inline constexpr const char* kDefaultModelFile = "shapes-yolov10m-w0p1875-raw.onnx";

// The bundled default model's path; empty if it is not there.
std::string default_model_path();

// Resolves an optional model argument: the given path, or the bundled default model.
Result<std::string> resolve_model_path(const std::string& given);

// Parses "--input-shape images:1,3,320,320" values into a name -> shape map.
Result<std::map<std::string, Shape>> parse_input_shapes(const std::vector<std::string>& specs);

// The image input of a model: its first graph input that is not an initializer (seed-spec
// §5.3); nullptr when there is none.
const ValueInfo* image_input(const Model& m);
// True when `in` is a 4-D input with every dimension fixed (an executor then plans it as is;
// otherwise callers give ExecutorOptions::input_shapes).
bool fixed_image_shape(const ValueInfo* in);
// The letterbox size to use: `requested` when > 0, else the model's fixed square input size
// ([N, C, S, S] with S fixed), else 640.
int64_t image_size_for(const Model& m, int64_t requested);

// ---- Calibration input: an .npy | a list file | image files or folders

struct CalibInputOptions {
    std::string npy;
    std::string list;
    std::vector<std::string> images;
    int64_t imgsz = 640;  // letterbox size for list/images (<= 0: the caller's default)
};

// Declares the calibration input files (--calib, --calib-list, --calib-images) as inputs.
void declare_calib_inputs(const CalibInputOptions& o, PathRoles& roles);

// The calibration source the options name, or nullptr when none is given. More than one given is
// a usage error. Samples are checked as they are read (calib/checked_source.h): NaN/Inf is an
// error naming the file and sample, a constant sample a warning on stderr.
Result<std::unique_ptr<calib::CalibSource>> open_calib_input(const CalibInputOptions& o);

// ---- Calibration method (quantize, sensitivity, candidates)

struct CalibMethodOptions {
    std::string method = calib::kDefaultCalibMethodName;
    double percentile = 99.99;
};
// The parsed method and percentile; errors name the flag.
Result<std::pair<calib::CalibMethod, double>> parse_calib_method_options(
    const CalibMethodOptions& o);

// ---- Placement: which nodes get Q/DQ. quantize and sensitivity take the same choices, so that
// a sweep measures exactly the placement a quantize call writes.

struct PlacementRequest {
    std::vector<std::string> exclude_files;     // --exclude-nodes-file
    std::vector<std::string> exclude;           // --exclude (regex, repeatable)
    std::vector<std::string> nodes_to_exclude;  // ModelOpt: several regexes at once
    std::vector<std::string> op_types;
    std::vector<std::string> exclude_op_types;
    bool modelopt_parity = false;
    bool disable_mha_qdq = false;
    std::string placement = "modelopt";  // --placement: modelopt | all (quant::ConvPlacement)
};
// Declares the --exclude-nodes-file files as inputs.
void declare_placement_inputs(const PlacementRequest& o, PathRoles& roles);
// Sets everything in `p` but the mode: reads the exclusion files, checks the regexes.
Status apply_placement_options(const PlacementRequest& o, quant::PlacementOptions& p);

// --mode: int8 | fp8 (int4 refused with the reason).
Result<quant::QuantMode> parse_quant_mode(const std::string& s);
// --high-precision: fp32 | fp16.
Result<DType> parse_high_precision(const std::string& s);

// ---- Exclusion lists

// The seed's exclusion-file format (research/seed-spec.md §7.2): everything from '#' on is a
// comment, surrounding whitespace is trimmed, empty lines are skipped. Names are exact.
Result<std::vector<std::string>> read_node_list(const std::string& path);

// Every name of `names` (read from `file`) is a node of `g` (the model as loaded from
// `model_path`, before any preparation). An unknown name -- a typo, or a list made for another
// model -- is an InvalidArgument naming the file, the name, its closest node names and how to
// get valid ones; exclusions are never silently ignored.
Status check_node_names(const std::vector<std::string>& names, const std::string& file,
                        const Graph& g, const std::string& model_path);
// The same for every --exclude-nodes-file of `o`.
Status check_exclusion_files(const PlacementRequest& o, const Graph& g,
                             const std::string& model_path);

}  // namespace lowbit::pipeline
