// lowbit smoke MODEL: the seed's random-tensor smoke test (research/seed-spec.md §6) plus timing
// and per-output statistics.
// This file declares the flags; the work is run_job(pipeline::SmokeJob) (pipeline/jobs.h).
#include <memory>

#include "cli/commands.h"
#include "cli/common.h"
#include "pipeline/jobs.h"

namespace lowbit::cli {

void add_smoke_command(CLI::App& app, CommandFn& run) {
    auto o = std::make_shared<pipeline::SmokeJob>();
    CLI::App* sub = app.add_subcommand(
        "smoke",
        "Run a model on seeded random input (or --input .npy files), time it and print "
        "per-output statistics (min/max/mean/std, NaN/Inf counts) as JSON.");
    sub->add_option("model", o->model, "ONNX model (default: the bundled model)");
    sub->add_option("--input", o->inputs,
                    "Input .npy file, once per graph input, in order; a symbolic dimension "
                    "takes the file's size");
    sub->add_option("--input-shape", o->input_shapes, "Fix an input's shape, NAME:D0,D1,...");
    sub->add_option("--out,--output-root", o->out_dir, "Write DIR/summary.json (and outputs/)");
    sub->add_flag("--save-outputs", o->save_outputs, "Also write DIR/outputs/<index>.npy");
    sub->add_option("--seed", o->seed, "Random seed")->capture_default_str();
    sub->add_option("--warmup", o->warmup, "Untimed runs first")
        ->capture_default_str()
        ->check(CLI::NonNegativeNumber);
    sub->add_option("--runs", o->runs, "Timed runs")
        ->capture_default_str()
        ->check(CLI::PositiveNumber);
    sub->add_option("--threads", o->threads, "Threads (default: all cores)")
        ->check(CLI::NonNegativeNumber);
    sub->add_option("--default-image-size", o->default_image_size,
                    "Size for unknown spatial dims (default 640 for yolo-named models, else 224)");
    sub->add_option("--batch", o->batch,
                    "Batch size of random inputs: the first dimension of each input where the "
                    "model leaves it free (with --input, the files' shapes are used)")
        ->check(CLI::PositiveNumber);
    sub->add_flag("--reference", o->reference, "Use the reference kernels only (slow; for checks)");
    sub->callback([o, &run] {
        run = [o] {
            o->engine = engine_switches_from_env();
            return pipeline::run_job(*o, stdout);
        };
    });
}

}  // namespace lowbit::cli
