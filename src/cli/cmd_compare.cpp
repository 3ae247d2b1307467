// lowbit compare results/*.json --out summary.md --html report.html: the variants side by side
// (the seed's summary.md, research/seed-spec.md §12), a recommendation, and a self-contained HTML
// report with mAP vs latency (Pareto front) and per-node sensitivity bars.
// This file declares the flags; the work is run_job(pipeline::CompareJob) (pipeline/jobs.h).
#include <memory>

#include "cli/commands.h"
#include "pipeline/jobs.h"

namespace lowbit::cli {

void add_compare_command(CLI::App& app, CommandFn& run) {
    auto o = std::make_shared<pipeline::CompareJob>();
    CLI::App* sub = app.add_subcommand(
        "compare",
        "Compare evaluated variants (results/*.json from `eval --out`): table with the drop "
        "against the baseline, latency, size and quantized nodes, a recommendation, summary.md "
        "and a self-contained report.html (mAP vs latency with the Pareto front, per-node "
        "sensitivity bars).");
    sub->add_option("results", o->results, "Results JSON files (variant name = file stem)")
        ->required();
    sub->add_option("--out", o->out, "Write summary.md here");
    sub->add_option("--html", o->html, "Write the HTML report here");
    sub->add_option("--baseline", o->baseline,
                    "Baseline results file or variant name (default: the variant named "
                    "baseline*)");
    sub->add_option("--sensitivity", o->sensitivity,
                    "Sensitivity report(s) (lowbit's or the seed's Torch one) to plot");
    sub->add_option("--mixed", o->mixed,
                    "`lowbit mixed` Pareto file(s) (OUT.pareto.json): a mixed-precision section "
                    "(mAP50-95 against weight bytes) in summary.md and report.html");
    sub->add_option("--interleave-rounds", o->interleave_rounds,
                    "Time every variant's ONNX model again on this machine, this many "
                    "interleaved rounds (A B C A B C ...: a slow phase of the machine hits all "
                    "alike), and compare those latencies instead of the results files' (each "
                    "measured during its own evaluation); 0: the recorded ones")
        ->capture_default_str()
        ->check(CLI::NonNegativeNumber);
    sub->add_option("--threads", o->threads,
                    "Engine threads for --interleave-rounds (0: one per core; use the "
                    "evaluations' count)")
        ->capture_default_str();
    sub->add_option("--max-drop", o->max_drop, "mAP_50_95 drop tolerated by the recommendation")
        ->capture_default_str()
        ->check(CLI::NonNegativeNumber);
    sub->callback([o, &run] { run = [o] { return pipeline::run_job(*o, stdout); }; });
}

}  // namespace lowbit::cli
