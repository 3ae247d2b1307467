// Small helpers shared by the commands.
#pragma once

#include <fmt/format.h>

#include <string>

#include "core/status.h"

namespace lowbit::cli {

// Prints "lowbit <cmd>: error: <message>" to stderr and returns the exit code for the status:
// 2 for invalid arguments, 1 for everything else, 0 for ok.
int report(const std::string& command, const Status& st);

// The bundled default model (assets/), resolved relative to the binary's source tree or the
// LOWBIT_ASSETS environment variable; empty if not found.
std::string default_model_path();

}  // namespace lowbit::cli
