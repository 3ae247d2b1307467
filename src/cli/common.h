// Small helpers shared by the commands: mapping a Status to an exit code, and the library's
// model-path and input-shape helpers (pipeline/job_inputs.h) under their cli names.
#pragma once

#include <fmt/format.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/status.h"
#include "ir/graph.h"
#include "pipeline/job_inputs.h"
#include "runtime/executor.h"

namespace lowbit::cli {

// Prints "lowbit <cmd>: error: <message>" to stderr and returns the exit code for the status:
// 2 for invalid arguments, 1 for everything else, 0 for ok.
int report(const std::string& command, const Status& st);

using pipeline::assets_dir;
using pipeline::default_model_path;
using pipeline::kDefaultModelFile;
using pipeline::parse_input_shapes;
using pipeline::resolve_model_path;

struct LoadedModel {
    std::string path;
    Model model;
    std::unique_ptr<Executor> executor;
};

// Loads and plans a model (errors name the file).
Result<LoadedModel> open_model(const std::string& path, const ExecutorOptions& opts);

}  // namespace lowbit::cli
