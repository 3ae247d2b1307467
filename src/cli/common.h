// Small helpers shared by the commands: mapping a Status to an exit code, the environment
// switches, and opening a model for `info`.
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

struct LoadedModel {
    std::string path;
    Model model;
    std::unique_ptr<Executor> executor;
};

// The executor's environment switches, read here and nowhere else in lowbit:
// LOWBIT_PROFILE=1 (or 2) sets the profile level, LOWBIT_CONV_WINOGRAD=0 turns Winograd convs
// off, LOWBIT_LOWP_KERNELS=0 runs Q/DQ graphs as their float simulation (no int8 kernels),
// LOWBIT_QCONV_DIRECT=0 runs every int8 conv on oneDNN's kernels (ExecutorOptions::int8_direct).
// Every command hands them to its job, which applies them to each executor it makes (the
// calibration run's included), so `LOWBIT_PROFILE=1 lowbit <cmd>` profiles them all.
pipeline::EngineSwitches engine_switches_from_env();

// Loads and plans a model (errors name the file); the environment switches apply.
Result<LoadedModel> open_model(const std::string& path, const ExecutorOptions& opts);

}  // namespace lowbit::cli
