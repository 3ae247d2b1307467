// Each lowbit command lives in its own cli/cmd_<name>.cpp and adds itself to the CLI11 app
// through one add_<name>_command() function. The callback it installs returns a Status, which
// main() maps to the exit code: 0 ok, 1 failure, 2 usage (InvalidArgument; cli/common.h).
#pragma once

#include <CLI/CLI.hpp>
#include <functional>

#include "core/status.h"

namespace lowbit::cli {

// The command a subcommand runs when selected; set by add_*_command().
using CommandFn = std::function<Status()>;

// Adds every command (the list is in main.cpp).
void add_all_commands(CLI::App& app, CommandFn& run);

void add_info_command(CLI::App& app, CommandFn& run);
void add_smoke_command(CLI::App& app, CommandFn& run);
void add_latency_command(CLI::App& app, CommandFn& run);
void add_cocoeval_command(CLI::App& app, CommandFn& run);
void add_calib_command(CLI::App& app, CommandFn& run);
void add_eval_command(CLI::App& app, CommandFn& run);
void add_quantize_command(CLI::App& app, CommandFn& run);
void add_head_exclude_command(CLI::App& app, CommandFn& run);
void add_sensitivity_command(CLI::App& app, CommandFn& run);
void add_mixed_command(CLI::App& app, CommandFn& run);
void add_schemes_command(CLI::App& app, CommandFn& run);
void add_compare_command(CLI::App& app, CommandFn& run);
void add_candidates_command(CLI::App& app, CommandFn& run);
void add_run_command(CLI::App& app, CommandFn& run);
void add_merge_command(CLI::App& app, CommandFn& run);

}  // namespace lowbit::cli
