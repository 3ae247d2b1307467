// Small helpers shared by the commands.
#pragma once

#include <fmt/format.h>

#include <string>

#include "core/status.h"

namespace lowbit::cli {

// Prints "lowbit <cmd>: error: <message>" to stderr and returns the exit code for the status:
// 2 for invalid arguments, 1 for everything else, 0 for ok.
int report(const std::string& command, const Status& st);

// The folder of bundled assets: $LOWBIT_ASSETS, else the nearest `assets/` folder above the
// binary (a build tree inside the repository) or `share/lowbit/assets` of an install prefix.
// Empty if none is found.
std::string assets_dir();

// File name, inside assets_dir(), of the model commands use when none is given.
inline constexpr const char* kDefaultModelFile = "shapes-yolov10m-w0p1875-raw.onnx";

// The bundled default model's path; empty if it is not there.
std::string default_model_path();

}  // namespace lowbit::cli

#include <map>
#include <memory>
#include <vector>

#include "calib/calibrate.h"
#include "ir/graph.h"
#include "runtime/executor.h"

namespace lowbit::cli {

// Parses "--input-shape images:1,3,320,320" values into a name -> shape map.
Result<std::map<std::string, Shape>> parse_input_shapes(const std::vector<std::string>& specs);

// Resolves an optional model argument: the given path, or the bundled default model.
Result<std::string> resolve_model_path(const std::string& given);

struct LoadedModel {
    std::string path;
    Model model;
    std::unique_ptr<Executor> executor;
};

// The executor's environment switches, read here and nowhere else in lowbit:
// LOWBIT_PROFILE=1 (or 2) sets ExecutorOptions::profile, LOWBIT_CONV_WINOGRAD=0 clears
// ExecutorOptions::conv_winograd. Every command applies them to the executors it makes or has
// made (the calibration run's included), so `LOWBIT_PROFILE=1 lowbit <cmd>` profiles them all.
void apply_env_switches(ExecutorOptions& eo);
void apply_env_switches(calib::CalibRunOptions& ro);

// Loads and plans a model (errors name the file); the environment switches apply.
Result<LoadedModel> open_model(const std::string& path, const ExecutorOptions& opts);

}  // namespace lowbit::cli
