// Each lowbit command lives in its own cli/cmd_<name>.cpp and adds itself to the CLI11 app
// through one add_<name>_command() function. The callback it installs returns the exit code:
// 0 ok, 1 failure, 2 usage (cli/common.h has the helpers that map Status to these).
#pragma once

#include <CLI/CLI.hpp>

#include <functional>

namespace lowbit::cli {

// The command a subcommand runs when selected; set by add_*_command().
using CommandFn = std::function<int()>;

// Adds every command (the list is in main.cpp).
void add_all_commands(CLI::App& app, CommandFn& run);

void add_info_command(CLI::App& app, CommandFn& run);
void add_smoke_command(CLI::App& app, CommandFn& run);
void add_cocoeval_command(CLI::App& app, CommandFn& run);
void add_calib_command(CLI::App& app, CommandFn& run);
void add_eval_command(CLI::App& app, CommandFn& run);
void add_quantize_command(CLI::App& app, CommandFn& run);
void add_head_exclude_command(CLI::App& app, CommandFn& run);
void add_sensitivity_command(CLI::App& app, CommandFn& run);
void add_schemes_command(CLI::App& app, CommandFn& run);
void add_compare_command(CLI::App& app, CommandFn& run);
void add_candidates_command(CLI::App& app, CommandFn& run);
void add_run_command(CLI::App& app, CommandFn& run);

}  // namespace lowbit::cli
