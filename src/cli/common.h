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

// Loads and plans a model (errors name the file).
Result<LoadedModel> open_model(const std::string& path, const ExecutorOptions& opts);

}  // namespace lowbit::cli
