// lowbit latency MODEL [MODEL...]: models timed in one process, interleaved round by round.
// This file declares the flags; the work is run_job(pipeline::LatencyJob) (pipeline/jobs.h).
#include <memory>

#include "cli/commands.h"
#include "cli/common.h"
#include "pipeline/jobs.h"

namespace lowbit::cli {

void add_latency_command(CLI::App& app, CommandFn& run) {
    auto o = std::make_shared<pipeline::LatencyJob>();
    CLI::App* sub = app.add_subcommand(
        "latency",
        "Time models against each other on this machine: each is loaded and planned once, then "
        "every round times each model once (the order rotating: A B C, B C A, ...) on a constant "
        "input (or --input), so that a slow phase of the machine hits all of them alike. Prints "
        "JSON: each model's whole-run latency (median, its 95% interval, p10/p90, spread, every "
        "sample) and, for every model after the first, its time over the first model's, round by "
        "round (median, 95% interval, range). E.g. `lowbit latency fp32.onnx int8.onnx "
        "--threads 1`.");
    sub->add_option("models", o->models, "ONNX models; ratios are against the first")
        ->required()
        ->check(CLI::ExistingFile);
    sub->add_option("--rounds", o->rounds, "Timed rounds (one run of every model each)")
        ->capture_default_str()
        ->check(CLI::PositiveNumber);
    sub->add_option("--warmup", o->warmup, "Untimed rounds first")
        ->capture_default_str()
        ->check(CLI::NonNegativeNumber);
    sub->add_option("--warm-runs", o->warm_runs,
                    "Untimed runs of a model right before each of its timed runs, so that the "
                    "timed run finds its own data in the caches (0: straight after the previous "
                    "model)")
        ->capture_default_str()
        ->check(CLI::NonNegativeNumber);
    sub->add_option("--threads", o->threads, "Threads (default: all cores)")
        ->check(CLI::NonNegativeNumber);
    sub->add_option("--input", o->inputs,
                    "Input .npy file, once per graph input, in order, fed to every model "
                    "(default: a constant 0.5, a flat grey image); a symbolic dimension takes the "
                    "file's size. A real image (`lowbit calib --max-images 1`) times any kernel "
                    "whose speed depends on the values as it runs")
        ->check(CLI::ExistingFile);
    sub->add_option("--input-shape", o->input_shapes,
                    "Fix an input's shape, NAME:D0,D1,... (applies to every model)");
    sub->callback([o, &run] {
        run = [o] {
            o->engine = engine_switches_from_env();
            return pipeline::run_job(*o, stdout);
        };
    });
}

}  // namespace lowbit::cli
