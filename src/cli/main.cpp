// lowbit: low-bit post-training quantization toolkit for YOLO detectors in ONNX.
#include <cstdio>
#include <exception>
#include <new>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/common.h"
#include "runtime/engine_info.h"

#ifndef LOWBIT_GIT_REVISION
#define LOWBIT_GIT_REVISION "unknown"
#endif

namespace {

// `lowbit --version`: what was built (version, the source's git revision when it was
// configured) and what it runs on (oneDNN, CPU features).
std::string version_text() {
    const lowbit::EngineInfo e = lowbit::engine_info();
    auto join = [](const std::vector<std::string>& v) {
        std::string s;
        for (const auto& x : v) s += (s.empty() ? "" : " ") + x;
        return s.empty() ? std::string("none") : s;
    };
    return fmt::format(
        "lowbit {}\n"
        "git revision   {}\n"
        "oneDNN         {} (instruction set used here: {})\n"
        "compiled for   {}\n"
        "CPU features   {}\n"
        "L2 cache       {}",
        LOWBIT_VERSION, LOWBIT_GIT_REVISION, e.onednn_version, e.onednn_isa,
        join(e.compiled_features), join(e.cpu_features),
        e.l2_bytes > 0 ? fmt::format("{} KiB per core", e.l2_bytes / 1024)
                       : std::string("not reported (kernels assume 1 MiB)"));
}

}  // namespace

// Every command.
void lowbit::cli::add_all_commands(CLI::App& app, CommandFn& run) {
    using Adder = void (*)(CLI::App&, lowbit::cli::CommandFn&);
    const std::vector<Adder> adders = {
        lowbit::cli::add_info_command,         lowbit::cli::add_smoke_command,
        lowbit::cli::add_cocoeval_command,     lowbit::cli::add_calib_command,
        lowbit::cli::add_eval_command,         lowbit::cli::add_quantize_command,
        lowbit::cli::add_head_exclude_command, lowbit::cli::add_sensitivity_command,
        lowbit::cli::add_schemes_command,      lowbit::cli::add_compare_command,
        lowbit::cli::add_candidates_command,   lowbit::cli::add_run_command,
        lowbit::cli::add_merge_command,        lowbit::cli::add_mixed_command,
        lowbit::cli::add_latency_command,
    };
    for (Adder add : adders) add(app, run);
}

int main(int argc, char** argv) {
    CLI::App app{
        "lowbit " LOWBIT_VERSION
        " - quantize YOLO detectors in ONNX to INT8/FP8, measure accuracy, latency and per-node "
        "sensitivity.\nRun `lowbit <command> --help` for a command's options."};
    app.require_subcommand(1);
    app.set_version_flag("--version", version_text,
                         "Print version, git revision, oneDNN version and CPU features, then exit");

    lowbit::cli::CommandFn run;
    lowbit::cli::add_all_commands(app, run);

    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        int rc = app.exit(e);
        return rc == 0 ? 0 : 2;  // usage errors exit 2
    }
    if (!run) return 2;
    const auto selected = app.get_subcommands();
    const std::string command = selected.empty() ? "lowbit" : selected.front()->get_name();
    // No exception escapes: the library returns Status, but an allocation that cannot be met
    // (a size from an input no reader bounds, e.g. a Reshape to 10^12 elements computed at run
    // time) or a bug in a third-party library must still end as one error line and exit 1.
    lowbit::Status st;
    try {
        st = run();
    } catch (const std::bad_alloc&) {
        st = lowbit::io_error("out of memory (an input asks for more memory than this machine "
                              "has; check sizes and shapes in the input files)");
    } catch (const std::exception& e) {
        st = lowbit::error(lowbit::StatusCode::Internal, "internal error: {}", e.what());
    } catch (...) {
        st = lowbit::error(lowbit::StatusCode::Internal, "internal error: unknown exception");
    }
    return lowbit::cli::report(command, st);
}
